//! Framing of the RouterOS API: length-prefixed words, sentences ended by an empty word.
//!
//! The codec owns only bytes on the wire. It knows nothing of commands, tags or replies
//! (see [`super::sentence`]). Words are raw bytes: RouterOS values are often not UTF-8.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Largest word the decoder accepts by default. RouterOS itself never sends words near
/// this size; the limit keeps a hostile or broken peer from making us buffer gigabytes.
pub const DEFAULT_MAX_WORD: usize = 16 * 1024 * 1024;

/// A sentence: the words between two empty words, without the terminating empty word.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sentence {
    pub words: Vec<Bytes>,
}

impl Sentence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a word; chains for building commands.
    pub fn word(mut self, word: impl Into<Bytes>) -> Self {
        self.words.push(word.into());
        self
    }

    pub fn push(&mut self, word: impl Into<Bytes>) {
        self.words.push(word.into());
    }

    /// Number of bytes this sentence occupies on the wire.
    pub fn encoded_len(&self) -> usize {
        self.words
            .iter()
            .map(|w| length_prefix_len(w.len()) + w.len())
            .sum::<usize>()
            + 1
    }
}

/// Why a byte stream could not be decoded into sentences.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("reserved length prefix byte {0:#04x}")]
    ReservedPrefix(u8),
    #[error("word of {len} bytes exceeds the limit of {max}")]
    WordTooLong { len: usize, max: usize },
    #[error("connection closed in the middle of a sentence")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Bytes taken by the length prefix of a word of `len` bytes.
pub fn length_prefix_len(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        0x20_0000..=0xFFF_FFFF => 4,
        _ => 5,
    }
}

/// Writes the length prefix of a word of `len` bytes.
pub fn put_length(dst: &mut BytesMut, len: usize) {
    let n = len as u32;
    match len {
        0..=0x7F => dst.put_u8(n as u8),
        0x80..=0x3FFF => dst.put_u16((n | 0x8000) as u16),
        0x4000..=0x1F_FFFF => {
            let v = n | 0xC0_0000;
            dst.put_slice(&v.to_be_bytes()[1..]);
        }
        0x20_0000..=0xFFF_FFFF => dst.put_u32(n | 0xE000_0000),
        _ => {
            dst.put_u8(0xF0);
            dst.put_u32(n);
        }
    }
}

/// Reads a length prefix from the start of `src` without consuming it.
/// `Ok(None)` means more bytes are needed; on success returns (prefix bytes, length).
pub fn peek_length(src: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let Some(&first) = src.first() else {
        return Ok(None);
    };
    let (size, mut value) = match first {
        0x00..=0x7F => (1, first as usize),
        0x80..=0xBF => (2, (first & 0x3F) as usize),
        0xC0..=0xDF => (3, (first & 0x1F) as usize),
        0xE0..=0xEF => (4, (first & 0x0F) as usize),
        0xF0 => (5, 0),
        _ => return Err(FrameError::ReservedPrefix(first)),
    };
    if src.len() < size {
        return Ok(None);
    }
    for &b in &src[1..size] {
        value = (value << 8) | b as usize;
    }
    Ok(Some((size, value)))
}

/// Encodes and decodes whole sentences.
///
/// The decoder keeps the words of a sentence in progress between calls so that a sentence
/// split across any number of reads, even inside a length prefix, decodes the same as one
/// delivered whole.
#[derive(Debug)]
pub struct SentenceCodec {
    max_word: usize,
    partial: Vec<Bytes>,
}

impl Default for SentenceCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_WORD)
    }
}

impl SentenceCodec {
    pub fn new(max_word: usize) -> Self {
        Self {
            max_word,
            partial: Vec::new(),
        }
    }
}

impl Decoder for SentenceCodec {
    type Item = Sentence;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Sentence>, FrameError> {
        loop {
            let Some((prefix, len)) = peek_length(src)? else {
                return Ok(None);
            };
            if len > self.max_word {
                return Err(FrameError::WordTooLong {
                    len,
                    max: self.max_word,
                });
            }
            if src.len() < prefix + len {
                src.reserve(prefix + len - src.len());
                return Ok(None);
            }
            src.advance(prefix);
            if len == 0 {
                let words = std::mem::take(&mut self.partial);
                return Ok(Some(Sentence { words }));
            }
            self.partial.push(src.split_to(len).freeze());
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Sentence>, FrameError> {
        match self.decode(src)? {
            Some(sentence) => Ok(Some(sentence)),
            None if src.is_empty() && self.partial.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<&Sentence> for SentenceCodec {
    type Error = FrameError;

    fn encode(&mut self, item: &Sentence, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_sentence(item, dst);
        Ok(())
    }
}

impl Encoder<Sentence> for SentenceCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Sentence, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_sentence(&item, dst);
        Ok(())
    }
}

/// Appends the wire form of `sentence`, terminating empty word included.
pub fn encode_sentence(sentence: &Sentence, dst: &mut BytesMut) {
    dst.reserve(sentence.encoded_len());
    for word in &sentence.words {
        put_length(dst, word.len());
        dst.put_slice(word);
    }
    dst.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(len: usize) -> Vec<u8> {
        let mut b = BytesMut::new();
        put_length(&mut b, len);
        b.to_vec()
    }

    #[test]
    fn length_prefixes_match_the_documented_bytes() {
        assert_eq!(prefix(0), [0x00]);
        assert_eq!(prefix(0x7F), [0x7F]);
        assert_eq!(prefix(128), [0x80, 0x80]);
        assert_eq!(prefix(256), [0x81, 0x00]);
        assert_eq!(prefix(0x3FFF), [0xBF, 0xFF]);
        assert_eq!(prefix(0x4000), [0xC0, 0x40, 0x00]);
        assert_eq!(prefix(0x1F_FFFF), [0xDF, 0xFF, 0xFF]);
        assert_eq!(prefix(0x20_0000), [0xE0, 0x20, 0x00, 0x00]);
        assert_eq!(prefix(0xFFF_FFFF), [0xEF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(prefix(0x1000_0000), [0xF0, 0x10, 0x00, 0x00, 0x00]);
    }
}
