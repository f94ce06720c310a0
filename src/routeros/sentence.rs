//! Parsed replies: turns a decoded [`Sentence`] into a [`Reply`] the client can route.
//!
//! This module owns the meaning of reply words (`!re`, `!done`, `!trap`, `!empty`,
//! `!fatal`) and of attribute words (`=name=value`, `.tag=x`). It leaves tags and command
//! bookkeeping to [`super::client`]. Values stay raw bytes: RouterOS often stores text in a
//! Windows code page, and nothing here may fail because a value is not UTF-8.

use bytes::Bytes;

use super::codec::Sentence;

/// A reply sentence that is not one the RouterOS API defines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("received an empty sentence")]
    EmptySentence,
    #[error("unknown reply word {0:?}")]
    UnknownReply(String),
    #[error("unexpected word {word:?} in a {reply} reply")]
    StrayWord { reply: &'static str, word: String },
}

/// Which reply word opened the sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// One row of data.
    Re,
    /// The command finished; may carry data such as `=ret=*3`.
    Done,
    /// The command failed; a `!done` for the same tag still follows.
    Trap,
    /// The command matched nothing (RouterOS 7.18+); a `!done` still follows.
    Empty,
    /// The router is closing the connection; the message is one raw word.
    Fatal,
}

impl ReplyKind {
    fn word(self) -> &'static str {
        match self {
            ReplyKind::Re => "!re",
            ReplyKind::Done => "!done",
            ReplyKind::Trap => "!trap",
            ReplyKind::Empty => "!empty",
            ReplyKind::Fatal => "!fatal",
        }
    }
}

/// Attributes of one reply, in the order the router sent them, as raw bytes.
///
/// An ordered list rather than a map because RouterOS rows are small and the order is
/// what a person reading the output expects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs(Vec<(Bytes, Bytes)>);

impl Attrs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Value of the first attribute called `name`.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k.as_ref() == name.as_bytes())
            .map(|(_, v)| v.as_ref())
    }

    /// Value of `name` as text; bytes that are not UTF-8 become U+FFFD.
    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn push(&mut self, k: impl Into<Bytes>, v: impl Into<Bytes>) {
        self.0.push((k.into(), v.into()));
    }

    /// Drops every attribute called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| k.as_ref() != name.as_bytes());
    }
}

/// One reply sentence, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// The `.tag` the command was sent with; `None` for untagged replies.
    pub tag: Option<String>,
    pub attrs: Attrs,
    /// The raw word after `!fatal` (`session terminated on request`, `not logged in`).
    pub message: Option<Bytes>,
}

impl Reply {
    /// Parses a reply. `=name=value` splits on the second `=` only, `.tag=` may stand
    /// anywhere, and an unknown reply word is a protocol error.
    pub fn parse(s: Sentence) -> Result<Reply, ProtocolError> {
        let mut words = s.words.into_iter();
        let first = words.next().ok_or(ProtocolError::EmptySentence)?;
        let kind = match first.as_ref() {
            b"!re" => ReplyKind::Re,
            b"!done" => ReplyKind::Done,
            b"!trap" => ReplyKind::Trap,
            b"!empty" => ReplyKind::Empty,
            b"!fatal" => ReplyKind::Fatal,
            other => {
                return Err(ProtocolError::UnknownReply(
                    String::from_utf8_lossy(other).into(),
                ))
            }
        };
        let mut reply = Reply {
            kind,
            tag: None,
            attrs: Attrs::new(),
            message: None,
        };
        for word in words {
            if let Some(tag) = word.strip_prefix(b".tag=") {
                reply.tag = Some(String::from_utf8_lossy(tag).into_owned());
            } else if word.first() == Some(&b'=') {
                let (name, value) = split_attribute(&word);
                reply.attrs.push(name, value);
            } else if word.first() == Some(&b'.') && word.contains(&b'=') {
                // Other API attributes (`.section=`): kept with their dot, like `.id`.
                let eq = word.iter().position(|&b| b == b'=').unwrap_or(word.len());
                reply.attrs.push(word.slice(..eq), word.slice(eq + 1..));
            } else if kind == ReplyKind::Fatal && reply.message.is_none() {
                reply.message = Some(word);
            } else {
                return Err(ProtocolError::StrayWord {
                    reply: kind.word(),
                    word: String::from_utf8_lossy(&word).into_owned(),
                });
            }
        }
        Ok(reply)
    }

    /// The `=message=` of a trap, as text.
    pub fn trap_message(&self) -> String {
        self.attrs.get_str("message").unwrap_or_default()
    }

    /// The `=category=` of a trap, when the router sent a number.
    pub fn trap_category(&self) -> Option<u32> {
        self.attrs
            .get_str("category")
            .and_then(|c| c.trim().parse().ok())
    }
}

/// Splits `=name=value` into name and value on the second `=`. A word with no second `=`
/// is a name with an empty value.
fn split_attribute(word: &Bytes) -> (Bytes, Bytes) {
    let body = word.slice(1..);
    match body.iter().position(|&b| b == b'=') {
        Some(eq) => (body.slice(..eq), body.slice(eq + 1..)),
        None => (body, Bytes::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentence(words: &[&[u8]]) -> Sentence {
        Sentence {
            words: words.iter().map(|w| Bytes::copy_from_slice(w)).collect(),
        }
    }

    #[test]
    fn attribute_splits_on_the_second_equals_only() {
        let r = Reply::parse(sentence(&[b"!re", b"=comment=a=b=c", b"=name="])).unwrap();
        assert_eq!(r.attrs.get("comment"), Some(&b"a=b=c"[..]));
        assert_eq!(r.attrs.get("name"), Some(&b""[..]));
        assert_eq!(r.attrs.len(), 2);
    }

    #[test]
    fn tag_is_found_in_any_position() {
        for words in [
            &[&b"!re"[..], b".tag=7", b"=a=1"][..],
            &[b"!re", b"=a=1", b".tag=7"],
            &[b"!re", b"=a=1", b".tag=7", b"=b=2"],
        ] {
            let r = Reply::parse(sentence(words)).unwrap();
            assert_eq!(r.tag.as_deref(), Some("7"));
            assert_eq!(r.attrs.get("a"), Some(&b"1"[..]));
            assert!(r.attrs.get(".tag").is_none());
        }
    }

    #[test]
    fn non_utf8_values_are_kept_as_bytes() {
        let r = Reply::parse(sentence(&[b"!re", b"=comment=caf\xe9 \xff"])).unwrap();
        assert_eq!(r.attrs.get("comment"), Some(&b"caf\xe9 \xff"[..]));
        assert_eq!(r.attrs.get_str("comment").unwrap(), "caf\u{fffd} \u{fffd}");
    }

    #[test]
    fn unknown_reply_word_and_empty_sentence_are_protocol_errors() {
        let err = Reply::parse(sentence(&[b"!weird"])).unwrap_err();
        assert_eq!(err, ProtocolError::UnknownReply("!weird".into()));
        assert_eq!(
            Reply::parse(sentence(&[])).unwrap_err(),
            ProtocolError::EmptySentence
        );
        assert!(matches!(
            Reply::parse(sentence(&[b"!re", b"garbage"])),
            Err(ProtocolError::StrayWord { .. })
        ));
    }

    #[test]
    fn fatal_keeps_its_raw_word_and_trap_exposes_category() {
        let r = Reply::parse(sentence(&[b"!fatal", b"not logged in"])).unwrap();
        assert_eq!(r.kind, ReplyKind::Fatal);
        assert_eq!(r.message.as_deref(), Some(&b"not logged in"[..]));

        let r = Reply::parse(sentence(&[
            b"!trap",
            b"=category=2",
            b"=message=interrupted",
        ]));
        let r = r.unwrap();
        assert_eq!(
            (r.trap_message().as_str(), r.trap_category()),
            ("interrupted", Some(2))
        );
    }

    #[test]
    fn empty_and_done_with_data_parse() {
        let r = Reply::parse(sentence(&[b"!empty", b".tag=3"])).unwrap();
        assert_eq!((r.kind, r.tag.as_deref()), (ReplyKind::Empty, Some("3")));
        let r = Reply::parse(sentence(&[b"!empty"])).unwrap();
        assert_eq!((r.kind, r.tag), (ReplyKind::Empty, None));
        let r = Reply::parse(sentence(&[b"!done", b"=ret=*3"])).unwrap();
        assert_eq!(r.attrs.get("ret"), Some(&b"*3"[..]));
    }
}
