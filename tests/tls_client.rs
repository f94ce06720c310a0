//! API-SSL end to end at library level: the client's three `tls` modes against the
//! simulator's three ways of serving port 8729.

use std::time::Duration;

use cloudpilot::routeros::{
    ClientError, Command, ConnectOptions, Connection, Credentials, TlsError, TlsMode,
};
use cloudpilot::sim::{SimConfig, SimTls, Simulator};

async fn sim(tls: SimTls) -> Simulator {
    sim_on(tls, [127, 0, 0, 1]).await
}

async fn sim_on(tls: SimTls, ip: [u8; 4]) -> Simulator {
    Simulator::start(SimConfig {
        listen_base: (ip, 0).into(),
        tls: Some(tls),
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts")
}

fn creds(sim: &Simulator) -> Credentials {
    let info = &sim.routers()[0];
    Credentials {
        username: info.username.clone(),
        password: info.password.clone(),
    }
}

fn opts(mode: TlsMode) -> ConnectOptions {
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        tls: Some(mode),
        ..ConnectOptions::default()
    }
}

async fn connect(sim: &Simulator, host: &str, mode: TlsMode) -> Result<Connection, ClientError> {
    let port = sim.routers()[0].port;
    Connection::connect(host, port, &creds(sim), &opts(mode)).await
}

/// A logged-in connection answers a real command.
async fn assert_works(conn: &Connection) {
    let resp = conn
        .call(Command::new("/system/identity/print"))
        .await
        .expect("identity over TLS");
    assert!(resp.rows[0].get_str("name").is_some(), "{resp:?}");
}

fn pin_of(sim: &Simulator) -> [u8; 32] {
    let hex = sim.routers()[0]
        .cert_sha256
        .clone()
        .expect("sim has a certificate");
    let mut pin = [0u8; 32];
    hex::decode_to_slice(hex, &mut pin).unwrap();
    pin
}

fn ca_file(sim: &Simulator) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), sim.ca_pem().expect("sim has a CA")).unwrap();
    file
}

/// Verify mode trusts a CA file and checks the IP address, then logs in over TLS.
#[tokio::test]
async fn certificate_verified_with_the_sim_ca_logs_in_over_tls() {
    let sim = sim(SimTls::Certificate).await;
    let ca = ca_file(&sim);
    let mode = TlsMode::Verify {
        ca_file: Some(ca.path().to_path_buf()),
    };
    let conn = connect(&sim, "127.0.0.1", mode.clone())
        .await
        .expect("verified");
    assert_works(&conn).await;
    // The DNS name in the certificate verifies too.
    let by_name = connect(&sim, "localhost", mode)
        .await
        .expect("localhost verified");
    assert_works(&by_name).await;
    assert_eq!(sim.router(0).logins(), 2);
    assert_eq!(sim.routers()[0].tls.as_deref(), Some("certificate"));
}

/// Without the CA file the simulator's CA is unknown, so verify refuses before login.
#[tokio::test]
async fn certificate_from_an_unknown_ca_is_refused_in_verify_mode() {
    let sim = sim(SimTls::Certificate).await;
    let err = connect(&sim, "127.0.0.1", TlsMode::Verify { ca_file: None })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Tls(TlsError::Untrusted { .. })),
        "{err:?}"
    );
    assert!(err.is_connection_failure());
    assert_eq!(sim.router(0).logins(), 0);
}

/// The certificate names 127.0.0.1 and localhost; an address it does not name fails
/// verification even though the chain is trusted.
#[tokio::test]
async fn verify_checks_the_address_against_the_certificate() {
    let sim = sim_on(SimTls::Certificate, [127, 0, 0, 2]).await;
    let ca = ca_file(&sim);
    let mode = TlsMode::Verify {
        ca_file: Some(ca.path().to_path_buf()),
    };
    let err = connect(&sim, "127.0.0.2", mode).await.unwrap_err();
    let ClientError::Tls(TlsError::Untrusted { reason, .. }) = &err else {
        panic!("expected an untrusted certificate, got {err:?}");
    };
    assert!(reason.contains("mismatch"), "{reason}");
    assert_eq!(sim.router(0).logins(), 0);
}

/// A pin of the self-signed certificate's SHA-256 accepts it.
#[tokio::test]
async fn self_signed_certificate_is_accepted_by_its_pin() {
    let sim = sim(SimTls::SelfSigned).await;
    let conn = connect(&sim, "127.0.0.1", TlsMode::Pin(pin_of(&sim)))
        .await
        .expect("pinned");
    assert_works(&conn).await;
    assert_eq!(sim.router(0).logins(), 1);
}

/// Verify refuses a self-signed certificate, says why, and shows the pin that would
/// accept it.
#[tokio::test]
async fn self_signed_certificate_fails_verify_with_an_actionable_message() {
    let sim = sim(SimTls::SelfSigned).await;
    let err = connect(&sim, "127.0.0.1", TlsMode::Verify { ca_file: None })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Tls(TlsError::Untrusted { .. })),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("self-signed") || message.contains("self signed"),
        "{message}"
    );
    let sha = sim.routers()[0].cert_sha256.clone().unwrap();
    assert!(message.contains(&sha), "{message}");
    assert!(message.contains("tls=pin"), "{message}");
    assert_eq!(sim.router(0).logins(), 0);
}

/// A wrong pin fails with both digests, and the router never sees a single word.
#[tokio::test]
async fn pin_mismatch_fails_before_any_api_word_is_sent() {
    let sim = sim(SimTls::SelfSigned).await;
    let mut wrong = pin_of(&sim);
    wrong[0] ^= 0xff;
    let err = connect(&sim, "127.0.0.1", TlsMode::Pin(wrong))
        .await
        .unwrap_err();
    let ClientError::Tls(TlsError::PinMismatch { expected, got, .. }) = &err else {
        panic!("expected a pin mismatch, got {err:?}");
    };
    assert_eq!(expected, &hex::encode(wrong));
    assert_eq!(got, sim.routers()[0].cert_sha256.as_ref().unwrap());
    assert!(err.is_connection_failure());
    assert!(err.to_string().contains("does not match the pin"), "{err}");
    // Give a stray word time to arrive before checking that none did.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sim.router(0).logins(), 0);
    assert_eq!(sim.router(0).commands(), 0);
}

/// A router with no certificate offers only ADH-AES256-GCM-SHA384 on TLS 1.2: insecure
/// mode gets through (so it negotiated that anonymous suite) and logs in.
#[tokio::test]
async fn anonymous_router_works_in_insecure_mode() {
    let sim = sim(SimTls::Anonymous).await;
    assert_eq!(sim.routers()[0].cert_sha256, None);
    let conn = connect(&sim, "127.0.0.1", TlsMode::Insecure)
        .await
        .expect("anonymous TLS");
    assert_works(&conn).await;
    assert_eq!(sim.router(0).logins(), 1);
}

/// Verify (and pin) cannot use anonymous suites: the handshake fails and the message
/// points at tls=insecure.
#[tokio::test]
async fn anonymous_router_fails_verify_and_pin_with_a_hint() {
    let sim = sim(SimTls::Anonymous).await;
    for mode in [TlsMode::Verify { ca_file: None }, TlsMode::Pin([7; 32])] {
        let err = connect(&sim, "127.0.0.1", mode).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Tls(TlsError::Handshake { .. })),
            "{err:?}"
        );
        assert!(err.is_connection_failure());
        assert!(err.to_string().contains("tls=insecure"), "{err}");
    }
    assert_eq!(sim.router(0).logins(), 0);
}

/// Insecure mode still talks to routers with ordinary certificates.
#[tokio::test]
async fn insecure_mode_accepts_certificate_and_self_signed_routers() {
    for tls in [SimTls::Certificate, SimTls::SelfSigned] {
        let sim = sim(tls).await;
        let conn = connect(&sim, "127.0.0.1", TlsMode::Insecure)
            .await
            .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert_works(&conn).await;
    }
}

/// TLS aimed at a plain API port fails as a connection error instead of hanging.
#[tokio::test]
async fn tls_to_a_plain_api_port_is_a_connection_failure() {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let port = sim.routers()[0].port;
    let opts = ConnectOptions {
        connect_timeout: Duration::from_secs(1),
        tls: Some(TlsMode::Insecure),
        ..ConnectOptions::default()
    };
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        Connection::connect("127.0.0.1", port, &creds(&sim), &opts),
    )
    .await
    .expect("bounded by the connect timeout")
    .unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(err.is_connection_failure());
    assert_eq!(sim.router(0).logins(), 0);
}
