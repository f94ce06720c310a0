//! Framing: the codec decodes the same sentences however the bytes are cut, and rejects
//! reserved prefixes and truncated input.

mod routeros_peer;

use bytes::{Bytes, BytesMut};
use cloudpilot::routeros::codec::{encode_sentence, FrameError, Sentence, SentenceCodec};
use proptest::prelude::*;
use routeros_peer::encode;
use tokio_util::codec::Decoder;

/// Feeds `bytes` to a fresh decoder in the given chunk sizes and collects the sentences.
fn decode_in_chunks(bytes: &[u8], chunks: &[usize]) -> Vec<Sentence> {
    let mut codec = SentenceCodec::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(s) = codec.decode(&mut buf).unwrap() {
            out.push(s);
        }
    }
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
    out
}

fn sentence_strategy() -> impl Strategy<Value = Sentence> {
    let word = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..20),
        prop::collection::vec(any::<u8>(), 120..300),
    ];
    prop::collection::vec(word, 1..6).prop_map(|ws| Sentence {
        words: ws.into_iter().map(Bytes::from).collect(),
    })
}

proptest! {
    /// Encode then decode under random cuts gives back the same sentences.
    #[test]
    fn any_segmentation_decodes_the_same(
        sentences in prop::collection::vec(sentence_strategy(), 1..4),
        chunks in prop::collection::vec(1usize..40, 1..10),
    ) {
        let mut wire = BytesMut::new();
        for s in &sentences {
            encode_sentence(s, &mut wire);
        }
        prop_assert_eq!(decode_in_chunks(&wire, &chunks), sentences.clone());
        prop_assert_eq!(decode_in_chunks(&wire, &[1]), sentences);
    }
}

/// Words at every prefix-size boundary encode to the independent encoder's bytes and decode
/// back, whole and one byte at a time.
#[test]
fn boundary_word_lengths_round_trip() {
    for len in [1, 127, 128, 255, 256, 0x3FFF, 0x4000, 0x1F_FFFF, 0x20_0000] {
        let word: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sentence = Sentence {
            words: vec![Bytes::from_static(b"!re"), Bytes::from(word)],
        };
        let mut wire = BytesMut::new();
        encode_sentence(&sentence, &mut wire);
        let (expected, _) = encode(&[b"!re", &sentence.words[1]]);
        assert_eq!(&wire[..], &expected[..], "wire bytes for {len}");
        assert_eq!(
            decode_in_chunks(&wire, &[usize::MAX]),
            vec![sentence.clone()],
            "{len}"
        );
        let small = if len < 0x4000 { 1 } else { 4093 };
        assert_eq!(
            decode_in_chunks(&wire, &[small, 1, 2]),
            vec![sentence],
            "{len} split"
        );
    }
}

/// A prefix byte of F1..FF is a protocol error, never a length.
#[test]
fn reserved_prefix_bytes_are_rejected() {
    for first in 0xF1..=0xFFu8 {
        let mut buf = BytesMut::from(&[first, 0, 0, 0, 0, 0][..]);
        let err = SentenceCodec::default().decode(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::ReservedPrefix(b) if b == first));
    }
}

/// A zero byte inside a prefix (256 is 81 00) is not the end of a sentence.
#[test]
fn zero_byte_inside_a_prefix_is_not_a_terminator() {
    let word = vec![b'x'; 256];
    let (wire, _) = encode(&[&word]);
    assert_eq!(&wire[..2], &[0x81, 0x00]);
    let got = decode_in_chunks(&wire, &[1]);
    assert_eq!(got[0].words[0].len(), 256);
}

/// End of input in the middle of a prefix or a sentence is reported, not taken as the end.
#[test]
fn eof_mid_prefix_and_mid_sentence_is_truncated() {
    for partial in [
        &[0x80u8][..],
        &[0x03, b'!', b'r', b'e'][..],
        &[0x03, b'!', b'r'][..],
    ] {
        let mut codec = SentenceCodec::default();
        let mut buf = BytesMut::from(partial);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(matches!(
            codec.decode_eof(&mut buf),
            Err(FrameError::Truncated)
        ));
    }
}
