//! Login against a scripted peer: new form, pre-6.43 challenge, refusal, verbatim passwords.

mod routeros_peer;

use std::time::Duration;

use cloudpilot::routeros::{challenge_response, ClientError, Command, ConnectOptions, Connection};
use routeros_peer::{admin, serve, Segmentation};

async fn login_with(password: &str, port: u16) -> Result<Connection, ClientError> {
    Connection::connect(
        "127.0.0.1",
        port,
        &admin(password),
        &ConnectOptions::default(),
    )
    .await
}

/// The new form carries the password verbatim: `!`, `=`, spaces and non-ASCII included.
#[tokio::test]
async fn new_login_sends_password_verbatim_then_commands_work() {
    let password = "p!a=ss wörd=";
    let (port, peer) = serve(Segmentation::OneByte, |mut peer| async move {
        let words = peer.read_sentence().await;
        assert_eq!(
            words,
            vec![
                b"/login".to_vec(),
                b"=name=admin".to_vec(),
                "=password=p!a=ss wörd=".into()
            ]
        );
        peer.send_str(&["!done"]).await;
        let tag = peer.expect(&["/system/identity/print"]).await;
        peer.send_str(&["!re", "=name=r1", &format!(".tag={tag}")])
            .await;
        peer.send_str(&["!done", &format!(".tag={tag}")]).await;
    })
    .await;
    let conn = login_with(password, port).await.unwrap();
    let resp = conn
        .call(Command::new("/system/identity/print"))
        .await
        .unwrap();
    assert_eq!(resp.rows[0].get("name"), Some(&b"r1"[..]));
    peer.await.unwrap();
}

/// `!done =ret=<challenge>` gets the MD5 answer from ROUTEROS.md's vectors.
#[tokio::test]
async fn old_login_answers_the_challenge_with_the_documented_vector() {
    let (port, peer) = serve(Segmentation::InsidePrefix, |mut peer| async move {
        peer.read_sentence().await;
        peer.send_str(&["!done", "=ret=93b438ec9b80057c06dd9fe67d56aa9a"])
            .await;
        let words = peer.read_sentence().await;
        assert_eq!(
            words,
            vec![
                b"/login".to_vec(),
                b"=name=admin".to_vec(),
                b"=response=00e134102a9d330dd7b1849fedfea3cb57".to_vec()
            ]
        );
        peer.send_str(&["!done"]).await;
        peer.wait_for_close().await;
    })
    .await;
    let conn = login_with("", port).await.unwrap();
    assert!(!conn.is_closed());
    drop(conn);
    peer.await.unwrap();
}

/// The challenge response hashes the password's UTF-8 bytes unchanged.
#[tokio::test]
async fn old_login_with_non_ascii_password() {
    let challenge = "856780b7411eefd3abadee2058c149a3";
    let expected = challenge_response("pä ss!=".as_bytes(), &hex::decode(challenge).unwrap());
    assert_ne!(expected, "005062f7a5ef124d34675bf3e81f56c556");
    let (port, peer) = serve(Segmentation::Whole, move |mut peer| async move {
        peer.read_sentence().await;
        peer.send_str(&["!done", &format!("=ret={challenge}")])
            .await;
        let words = peer.read_sentence().await;
        assert_eq!(words[2], format!("=response={expected}").into_bytes());
        peer.send_str(&["!done"]).await;
    })
    .await;
    login_with("pä ss!=", port).await.unwrap();
    peer.await.unwrap();
}

/// A `!trap` is a refusal carrying the router's message.
#[tokio::test]
async fn trap_during_login_is_login_rejected() {
    let (port, peer) = serve(Segmentation::Whole, |mut peer| async move {
        peer.read_sentence().await;
        peer.send_str(&["!trap", "=message=invalid user name or password (6)"])
            .await;
        peer.send_str(&["!done"]).await;
    })
    .await;
    let err = login_with("wrong", port).await.unwrap_err();
    match err {
        ClientError::LoginRejected { message } => {
            assert_eq!(message, "invalid user name or password (6)")
        }
        other => panic!("expected LoginRejected, got {other:?}"),
    }
    peer.await.unwrap();
}

/// A router that never answers the login is a LoginTimeout, a connection failure.
#[tokio::test]
async fn silent_router_times_out_the_login() {
    let (port, _peer) = serve(Segmentation::Whole, |mut peer| async move {
        peer.read_sentence().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let opts = ConnectOptions {
        login_timeout: Duration::from_millis(100),
        ..Default::default()
    };
    let err = Connection::connect("127.0.0.1", port, &admin("x"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::LoginTimeout), "{err:?}");
    assert!(err.is_connection_failure());
}

/// A refused TCP connection is a Connect error naming the address.
#[tokio::test]
async fn refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = login_with("x", port).await.unwrap_err();
    match err {
        ClientError::Connect { addr, .. } => assert_eq!(addr, format!("127.0.0.1:{port}")),
        other => panic!("expected Connect, got {other:?}"),
    }
}

/// Debug output of credentials never shows the password.
#[test]
fn credentials_debug_hides_the_password() {
    let shown = format!("{:?}", admin("s3cret!"));
    assert!(
        shown.contains("admin") && !shown.contains("s3cret"),
        "{shown}"
    );
}
