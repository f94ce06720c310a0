//! Commands to send: a path word plus attribute, API-attribute and query words.
//!
//! A [`Command`] is built once and handed to [`super::client::Connection`], which adds the
//! `.tag` it routes replies by. Values are bytes so that anything a router stores can be
//! written back unchanged.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::Sentence;

/// One API command, without its `.tag`.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// First word is the command path (`/ip/address/print`).
    words: Vec<Bytes>,
}

impl Command {
    /// Starts a command with its path word, such as `/ip/address/print`.
    pub fn new(path: impl Into<Bytes>) -> Self {
        Self {
            words: vec![path.into()],
        }
    }

    /// Adds `=name=value`.
    pub fn attr(self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.attr_bytes(name, Bytes::copy_from_slice(value.as_ref()))
    }

    /// Adds `=name=value` with a value that is already bytes (not necessarily UTF-8).
    pub fn attr_bytes(self, name: &str, value: Bytes) -> Self {
        let mut w = BytesMut::with_capacity(name.len() + value.len() + 2);
        w.put_u8(b'=');
        w.put_slice(name.as_bytes());
        w.put_u8(b'=');
        w.put_slice(&value);
        self.word(w.freeze())
    }

    /// Adds an API attribute such as `.proplist=address`. The leading dot is added when
    /// missing. A `.tag` given here is ignored: the connection owns tags.
    pub fn api_attr(self, name: &str, value: impl AsRef<[u8]>) -> Self {
        let name = name.strip_prefix('.').unwrap_or(name);
        let mut w = BytesMut::with_capacity(name.len() + value.as_ref().len() + 2);
        w.put_u8(b'.');
        w.put_slice(name.as_bytes());
        w.put_u8(b'=');
        w.put_slice(value.as_ref());
        self.word(w.freeze())
    }

    /// Adds a query word, sent as given (`?type=ether`, `?#|`).
    pub fn query(self, word: impl AsRef<[u8]>) -> Self {
        self.word(Bytes::copy_from_slice(word.as_ref()))
    }

    /// Adds a raw word, sent as given.
    pub fn word(mut self, word: impl Into<Bytes>) -> Self {
        self.words.push(word.into());
        self
    }

    /// The command path, for logs and metrics.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&self.words[0]).into_owned()
    }

    /// Every word, path first.
    pub fn words(&self) -> &[Bytes] {
        &self.words
    }

    /// The sentence to write: the words without any caller `.tag`, then `.tag=<tag>`.
    pub(crate) fn to_sentence(&self, tag: &str) -> Sentence {
        let mut words: Vec<Bytes> = self
            .words
            .iter()
            .filter(|w| !w.starts_with(b".tag="))
            .cloned()
            .collect();
        words.push(Bytes::from(format!(".tag={tag}")));
        Sentence { words }
    }
}

/// Shows the path and attribute names only: values may be passwords or secrets.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.words[1..]
            .iter()
            .map(|w| {
                let end = w
                    .iter()
                    .skip(1)
                    .position(|&b| b == b'=')
                    .map_or(w.len(), |p| p + 1);
                String::from_utf8_lossy(&w[..end]).into_owned()
            })
            .collect();
        f.debug_struct("Command")
            .field("path", &self.path())
            .field("words", &names)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_produces_wire_words_and_appends_the_tag() {
        let cmd = Command::new("/ip/address/print")
            .attr("address", "10.0.0.1/24")
            .attr_bytes("comment", Bytes::from_static(b"\xe9"))
            .api_attr(".proplist", "address")
            .api_attr("tag", "mine")
            .query("?type=ether");
        let s = cmd.to_sentence("9");
        let words: Vec<&[u8]> = s.words.iter().map(|w| w.as_ref()).collect();
        assert_eq!(
            words,
            [
                &b"/ip/address/print"[..],
                b"=address=10.0.0.1/24",
                b"=comment=\xe9",
                b".proplist=address",
                b"?type=ether",
                b".tag=9"
            ]
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let cmd = Command::new("/user/set").attr("password", "hunter2");
        let shown = format!("{cmd:?}");
        assert!(shown.contains("=password"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
