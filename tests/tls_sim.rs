//! The simulator's API-SSL seen from a bare OpenSSL client: what each mode negotiates
//! and presents, independent of CloudPilot's client.

use std::pin::Pin;

use cloudpilot::sim::{SimConfig, SimRouterInfo, SimTls, Simulator};
use openssl::hash::MessageDigest;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslVerifyMode};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

async fn start(tls: SimTls) -> Simulator {
    Simulator::start(SimConfig {
        tls: Some(tls),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

/// Handshakes with no verification and the given cipher list; returns the stream.
async fn handshake(info: &SimRouterInfo, ciphers: &str) -> Option<SslStream<TcpStream>> {
    let mut ctx = SslContext::builder(SslMethod::tls_client()).unwrap();
    ctx.set_verify(SslVerifyMode::NONE);
    ctx.set_cipher_list(ciphers).unwrap();
    let ssl = Ssl::new(&ctx.build()).unwrap();
    let tcp = TcpStream::connect((info.host.as_str(), info.port))
        .await
        .unwrap();
    let mut stream = SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream).connect().await.ok()?;
    Some(stream)
}

/// Anonymous mode is what a router without a certificate offers: TLS 1.2 with
/// ADH-AES256-GCM-SHA384 and no certificate, and nothing to a client without ADH.
#[tokio::test]
async fn anonymous_mode_negotiates_adh_on_tls_1_2_only() {
    let sim = start(SimTls::Anonymous).await;
    let info = &sim.routers()[0];
    assert_eq!(info.tls.as_deref(), Some("anonymous"));
    let stream = handshake(info, "ADH:@SECLEVEL=0")
        .await
        .expect("ADH handshake");
    let ssl = stream.ssl();
    assert_eq!(ssl.version_str(), "TLSv1.2");
    assert_eq!(
        ssl.current_cipher().unwrap().name(),
        "ADH-AES256-GCM-SHA384"
    );
    assert!(ssl.peer_certificate().is_none());
    assert!(handshake(info, "DEFAULT").await.is_none());
}

/// The certificate the simulator presents is the one whose SHA-256 it advertises, and
/// in certificate mode it is issued by the advertised CA.
#[tokio::test]
async fn presented_certificate_matches_the_advertised_digest_and_ca() {
    for mode in [SimTls::Certificate, SimTls::SelfSigned] {
        let sim = start(mode).await;
        let info = &sim.routers()[0];
        assert_eq!(info.tls.as_deref(), Some(mode.name()));
        let stream = handshake(info, "DEFAULT").await.expect("handshake");
        let leaf = stream.ssl().peer_certificate().expect("a certificate");
        let digest = hex::encode(leaf.digest(MessageDigest::sha256()).unwrap());
        assert_eq!(Some(digest), info.cert_sha256, "{mode:?}");
        match sim.ca_pem() {
            Some(pem) => {
                assert_eq!(mode, SimTls::Certificate);
                let ca = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
                assert!(leaf.verify(&ca.public_key().unwrap()).unwrap());
            }
            None => assert_eq!(mode, SimTls::SelfSigned),
        }
    }
}

/// The JSON line `cloudpilot sim` prints carries the TLS mode and the pin value.
#[tokio::test]
async fn router_info_json_carries_tls_mode_and_certificate_digest() {
    let sim = start(SimTls::SelfSigned).await;
    let json = serde_json::to_value(sim.routers()).unwrap();
    assert_eq!(json[0]["tls"], "self-signed");
    assert_eq!(json[0]["cert_sha256"].as_str().unwrap().len(), 64);
}
