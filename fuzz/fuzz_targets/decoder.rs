//! Feeds arbitrary bytes, in arbitrary segments, to the RouterOS sentence decoder. It may
//! not panic, and every sentence decoded must survive a round trip: encoded again and
//! decoded by a fresh codec, it is the same sentence.
#![no_main]

// The product's codec, compiled in directly so the fuzz build stays small.
#[path = "../../src/routeros/codec.rs"]
#[allow(dead_code)]
mod codec;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

use codec::{encode_sentence, SentenceCodec};

fuzz_target!(|data: &[u8]| {
    // The first byte picks a segment size, so splits inside length prefixes get exercised.
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let step = (split as usize % 7) + 1;
    let mut codec = SentenceCodec::new(1 << 20);
    let mut buf = BytesMut::new();
    for chunk in input.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(sentence)) => {
                    let mut wire = BytesMut::new();
                    encode_sentence(&sentence, &mut wire);
                    let again = SentenceCodec::new(1 << 20).decode(&mut wire);
                    assert_eq!(again.ok().flatten().as_ref(), Some(&sentence));
                    assert!(wire.is_empty());
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
