//! Sentence encode/decode throughput of the RouterOS framing codec.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio_util::codec::{Decoder, Encoder};

use cloudpilot::routeros::codec::{Sentence, SentenceCodec};

fn resource_reply() -> Sentence {
    let mut s = Sentence::new().word("!re").word(".tag=42");
    for (k, v) in [
        ("uptime", "1w2d3h4m5s"),
        ("version", "7.18.2 (stable)"),
        ("free-memory", "123456789"),
        ("total-memory", "268435456"),
        ("cpu-load", "3"),
        ("architecture-name", "arm64"),
        ("board-name", "CCR2004-16G-2S+"),
    ] {
        s.push(format!("={k}={v}"));
    }
    s
}

fn bench(c: &mut Criterion) {
    let sentence = resource_reply();
    let mut group = c.benchmark_group("sentence");
    group.throughput(Throughput::Bytes(sentence.encoded_len() as u64));
    group.bench_function("encode", |b| {
        let mut codec = SentenceCodec::default();
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            codec.encode(&sentence, &mut buf).unwrap();
        })
    });
    let mut wire = BytesMut::new();
    SentenceCodec::default()
        .encode(&sentence, &mut wire)
        .unwrap();
    group.bench_function("decode", |b| {
        let mut codec = SentenceCodec::default();
        b.iter(|| {
            let mut buf = wire.clone();
            codec.decode(&mut buf).unwrap().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
