//! The words of a command sentence, and the reply sentences the simulator sends.
//!
//! Words stay bytes end to end: a value is never required to be UTF-8.

use bytes::{BufMut, Bytes, BytesMut};

use crate::routeros::codec::Sentence;

/// One command as the router reads it.
#[derive(Debug, Default)]
pub(crate) struct Request {
    /// The first word, e.g. `/ip/address/print`.
    pub(crate) command: Bytes,
    pub(crate) tag: Option<Bytes>,
    /// `=name=value` words, and API attributes such as `.proplist` kept with their dot.
    pub(crate) attrs: Vec<(Bytes, Bytes)>,
    /// Query words without their leading `?`.
    pub(crate) queries: Vec<Bytes>,
}

impl Request {
    pub(crate) fn parse(sentence: Sentence) -> Request {
        let mut request = Request::default();
        for word in sentence.words {
            match word.first() {
                Some(b'=') => request.attrs.push(split_attribute(word.slice(1..))),
                Some(b'?') => request.queries.push(word.slice(1..)),
                Some(b'.') if word.starts_with(b".tag=") => request.tag = Some(word.slice(5..)),
                Some(b'.') => request.attrs.push(split_attribute(word)),
                // The command is the first other word; a client may put `.tag` before it.
                _ if request.command.is_empty() => request.command = word,
                _ => {}
            }
        }
        request
    }

    /// The value of attribute `name`; the last one wins when it is repeated.
    pub(crate) fn attr(&self, name: &[u8]) -> Option<&Bytes> {
        self.attrs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// True when the attribute is present with any value but `false` or `no`, the way
    /// RouterOS reads flags such as `=follow=` or `=once=`.
    pub(crate) fn flag(&self, name: &[u8]) -> bool {
        self.attr(name)
            .is_some_and(|v| v.as_ref() != b"false" && v.as_ref() != b"no")
    }

    /// The command path split on `/`, empty parts dropped; `None` when it is not UTF-8.
    pub(crate) fn path(&self) -> Option<Vec<&str>> {
        let text = std::str::from_utf8(&self.command).ok()?;
        Some(text.split('/').filter(|p| !p.is_empty()).collect())
    }
}

/// Splits `name=value` on its first `=`; a word without one is a name with an empty value.
pub(crate) fn split_attribute(word: Bytes) -> (Bytes, Bytes) {
    match word.iter().position(|&b| b == b'=') {
        Some(at) => (word.slice(..at), word.slice(at + 1..)),
        None => (word, Bytes::new()),
    }
}

/// An error the router reports as `!trap` followed by `!done`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Trap {
    pub(crate) category: Option<u8>,
    pub(crate) message: Bytes,
}

impl Trap {
    pub(crate) fn new(category: Option<u8>, message: impl Into<Bytes>) -> Trap {
        Trap {
            category,
            message: message.into(),
        }
    }

    /// Category 0: the item or command does not exist.
    pub(crate) fn missing(message: impl Into<Bytes>) -> Trap {
        Trap::new(Some(0), message)
    }

    /// Category 1: an argument is wrong or absent.
    pub(crate) fn bad_argument(message: impl Into<Bytes>) -> Trap {
        Trap::new(Some(1), message)
    }

    /// Category 2, what a cancelled command answers.
    pub(crate) fn interrupted() -> Trap {
        Trap::new(Some(2), &b"interrupted"[..])
    }

    /// `!trap` then `!done`, both tagged.
    pub(crate) fn into_reply(self, tag: Option<&Bytes>) -> Vec<Sentence> {
        let mut trap = reply_word(b"!trap", tag);
        if let Some(category) = self.category {
            trap.push(attribute(b"category", category.to_string().as_bytes()));
        }
        trap.push(attribute(b"message", &self.message));
        vec![trap, done(tag, None)]
    }
}

/// `=name=value` as one word.
pub(crate) fn attribute(name: &[u8], value: &[u8]) -> Bytes {
    let mut word = BytesMut::with_capacity(name.len() + value.len() + 2);
    word.put_u8(b'=');
    word.put_slice(name);
    word.put_u8(b'=');
    word.put_slice(value);
    word.freeze()
}

/// A reply sentence holding only its reply word and the tag, if any.
pub(crate) fn reply_word(word: &'static [u8], tag: Option<&Bytes>) -> Sentence {
    let mut sentence = Sentence::new().word(Bytes::from_static(word));
    if let Some(tag) = tag {
        let mut tag_word = BytesMut::with_capacity(tag.len() + 5);
        tag_word.put_slice(b".tag=");
        tag_word.put_slice(tag);
        sentence.push(tag_word.freeze());
    }
    sentence
}

/// `!re` carrying `fields` in order.
pub(crate) fn row<'a>(
    tag: Option<&Bytes>,
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Sentence {
    let mut sentence = reply_word(b"!re", tag);
    for (name, value) in fields {
        sentence.push(attribute(name, value));
    }
    sentence
}

/// `!done`, with `=ret=` when the command returns a value.
pub(crate) fn done(tag: Option<&Bytes>, ret: Option<&[u8]>) -> Sentence {
    let mut sentence = reply_word(b"!done", tag);
    if let Some(ret) = ret {
        sentence.push(attribute(b"ret", ret));
    }
    sentence
}

/// `!fatal` and its one raw word; the connection closes after it.
pub(crate) fn fatal(message: &'static [u8]) -> Sentence {
    Sentence::new()
        .word(Bytes::from_static(b"!fatal"))
        .word(Bytes::from_static(message))
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
    fn attributes_split_on_their_second_equals_sign_only_and_keep_raw_bytes() {
        let req = Request::parse(sentence(&[
            b"/ip/address/set",
            b"=comment=a=b=c",
            b".tag=7",
            b"=disabled=",
            b"=note=\xff\xfe",
            b"?>mtu=1400",
            b"=.proplist=name,mtu",
        ]));
        assert_eq!(req.command.as_ref(), b"/ip/address/set");
        assert_eq!(req.tag.as_deref(), Some(&b"7"[..]));
        assert_eq!(req.attr(b"comment").unwrap().as_ref(), b"a=b=c");
        assert_eq!(req.attr(b"disabled").unwrap().as_ref(), b"");
        assert_eq!(req.attr(b"note").unwrap().as_ref(), b"\xff\xfe");
        assert_eq!(req.attr(b".proplist").unwrap().as_ref(), b"name,mtu");
        assert_eq!(req.queries, vec![Bytes::from_static(b">mtu=1400")]);
    }

    #[test]
    fn a_trap_carries_the_tag_on_both_of_its_sentences() {
        let tag = Bytes::from_static(b"t1");
        let reply = Trap::interrupted().into_reply(Some(&tag));
        assert_eq!(
            reply[0],
            sentence(&[
                b"!trap",
                b".tag=t1",
                b"=category=2",
                b"=message=interrupted"
            ])
        );
        assert_eq!(reply[1], sentence(&[b"!done", b".tag=t1"]));
    }
}
