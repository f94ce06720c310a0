//! Per-request authentication costs: verifying an HS256 access token, checking an API
//! private key against its stored SHA-256, and unsealing a router password (AES-256-GCM).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

use cloudpilot::auth::keys::private_matches;
use cloudpilot::auth::{KeyPair, TokenIssuer, TokenType};
use cloudpilot::store::seal::Sealer;

fn bench(c: &mut Criterion) {
    let day = Duration::from_secs(86_400);
    let issuer = TokenIssuer::new(&[7u8; 32], day, day).expect("32-byte secret");
    let token = issuer.issue_access(42).expect("token issued");
    c.bench_function("jwt_verify_access", |b| {
        b.iter(|| {
            issuer
                .verify(black_box(&token), TokenType::Access)
                .expect("valid")
        })
    });

    let pair = KeyPair::generate();
    let stored = pair.private_sha256();
    c.bench_function("api_key_private_matches", |b| {
        b.iter(|| assert!(private_matches(black_box(&pair.private), &stored)))
    });

    let sealer = Sealer::new(1, [9u8; 32]);
    let sealed = sealer.seal(b"router-password-123").expect("sealed");
    c.bench_function("sealed_secret_open", |b| {
        b.iter(|| sealer.open(black_box(&sealed)).expect("opens"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
