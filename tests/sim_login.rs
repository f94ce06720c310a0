//! The simulator's login and session lifecycle, driven over real loopback TCP.

mod sim_client;

use sim_client::{eventually, md5_response, one_router, Client};

#[tokio::test]
async fn new_style_login_is_accepted_and_counted_as_an_active_session() {
    let sim = one_router("7.18.2").await;
    let info = &sim.routers()[0];
    let mut client = Client::connect(info).await;
    let name = format!("=name={}", info.username);
    let password = format!("=password={}", info.password);
    let reply = client.call(&["/login", &name, &password]).await;
    assert_eq!(reply.len(), 1);
    assert!(reply[0].is("!done") && reply[0].get("ret").is_none());
    assert_eq!(sim.router(0).logins(), 1);
    assert_eq!(sim.router(0).active_sessions(), 1);
    drop(client);
    assert!(eventually(|| sim.router(0).active_sessions() == 0).await);
}

#[tokio::test]
async fn old_versions_answer_any_login_with_a_challenge_and_accept_the_md5_response() {
    let sim = one_router("6.42.12").await;
    let info = &sim.routers()[0];
    let mut client = Client::connect(info).await;
    // A client trying the new form first must get the challenge back, its cue to fall back.
    let password = format!("=password={}", info.password);
    let first = client.call(&["/login", "=name=admin", &password]).await;
    let challenge = first[0].text("ret").expect("challenge in =ret=").to_owned();
    assert_eq!(challenge.len(), 32);
    assert!(challenge.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(sim.router(0).logins(), 0);

    let response = format!("=response={}", md5_response(&info.password, &challenge));
    let reply = client.call(&["/login", "=name=admin", &response]).await;
    assert!(reply[0].is("!done"), "{reply:?}");
    assert_eq!(sim.router(0).logins(), 1);
    let identity = client.call(&["/system/identity/print"]).await;
    assert_eq!(identity[0].text("name"), Some("sim-0"));
}

#[tokio::test]
async fn a_challenge_response_for_another_password_is_trapped() {
    let sim = one_router("6.42.12").await;
    let mut client = Client::connect(&sim.routers()[0]).await;
    let challenge = client.call(&["/login"]).await[0]
        .text("ret")
        .unwrap()
        .to_owned();
    let response = format!("=response={}", md5_response("wrong", &challenge));
    let reply = client.call(&["/login", "=name=admin", &response]).await;
    assert!(reply[0].is("!trap"));
    assert_eq!(
        reply[0].text("message"),
        Some("invalid user name or password (6)")
    );
    assert!(reply[1].is("!done"));
    assert_eq!(sim.router(0).logins(), 0);
}

#[tokio::test]
async fn a_wrong_password_is_a_trap_then_done_and_the_connection_may_retry() {
    let sim = one_router("7.18.2").await;
    let info = &sim.routers()[0];
    let mut client = Client::connect(info).await;
    let reply = client
        .call(&["/login", "=name=admin", "=password=nope", ".tag=l1"])
        .await;
    assert_eq!(reply.len(), 2);
    assert!(reply[0].is("!trap") && reply[1].is("!done"));
    assert_eq!(
        reply[0].text("message"),
        Some("invalid user name or password (6)")
    );
    assert_eq!((reply[0].tag(), reply[1].tag()), (Some("l1"), Some("l1")));
    assert_eq!(sim.router(0).active_sessions(), 0);

    let password = format!("=password={}", info.password);
    let retry = client.call(&["/login", "=name=admin", &password]).await;
    assert!(retry[0].is("!done"));
    assert_eq!(sim.router(0).active_sessions(), 1);
}

#[tokio::test]
async fn passwords_are_compared_verbatim_including_symbols_and_spaces() {
    let cfg = cloudpilot::sim::SimConfig {
        password: "p=ss !word".to_owned(),
        ..cloudpilot::sim::SimConfig::default()
    };
    let sim = cloudpilot::sim::Simulator::start(cfg).await.unwrap();
    let mut client = Client::connect(&sim.routers()[0]).await;
    let reply = client
        .call(&["/login", "=name=admin", "=password=p=ss !word"])
        .await;
    assert!(reply[0].is("!done"), "{reply:?}");
}

#[tokio::test]
async fn a_command_before_login_is_fatal_and_closes_the_connection() {
    let sim = one_router("7.18.2").await;
    let mut client = Client::connect(&sim.routers()[0]).await;
    client.send(&["/system/resource/print", ".tag=1"]).await;
    let reply = client.recv().await;
    assert!(reply.is("!fatal"));
    assert_eq!(reply.other, vec![b"not logged in".to_vec()]);
    assert!(client.closed_silently().await);
    assert_eq!(sim.router(0).commands(), 0);
}

#[tokio::test]
async fn quit_is_answered_with_fatal_and_a_close() {
    let sim = one_router("7.18.2").await;
    let mut client = Client::logged_in(&sim.routers()[0]).await;
    client.send(&["/quit"]).await;
    let reply = client.recv().await;
    assert!(reply.is("!fatal"));
    assert_eq!(reply.other, vec![b"session terminated on request".to_vec()]);
    assert!(client.closed_silently().await);
    assert!(eventually(|| sim.router(0).active_sessions() == 0).await);
}

#[tokio::test]
async fn an_offline_router_closes_new_connections_until_it_is_back() {
    let sim = one_router("7.18.2").await;
    sim.router(0).set_offline(true);
    let mut refused = Client::connect(&sim.routers()[0]).await;
    assert!(refused.closed_silently().await);
    sim.router(0).set_offline(false);
    let mut client = Client::logged_in(&sim.routers()[0]).await;
    assert!(client.call(&["/system/identity/print"]).await[0].is("!re"));
}

#[tokio::test]
async fn killing_connections_closes_them_without_a_reply_like_a_reboot() {
    let sim = one_router("7.18.2").await;
    let mut a = Client::logged_in(&sim.routers()[0]).await;
    let mut b = Client::logged_in(&sim.routers()[0]).await;
    assert_eq!(sim.router(0).active_sessions(), 2);
    sim.router(0).kill_connections();
    assert!(a.closed_silently().await);
    assert!(b.closed_silently().await);
    assert!(eventually(|| sim.router(0).active_sessions() == 0).await);
    let mut again = Client::logged_in(&sim.routers()[0]).await;
    assert!(again.call(&["/system/identity/print"]).await[0].is("!re"));
}

#[tokio::test]
async fn shutdown_closes_open_connections_and_stops_listening() {
    let sim = one_router("7.18.2").await;
    let info = sim.routers()[0].clone();
    let mut client = Client::logged_in(&info).await;
    sim.shutdown();
    assert!(client.closed_silently().await);
    let refused =
        eventually(|| std::net::TcpStream::connect((info.host.as_str(), info.port)).is_err()).await;
    assert!(refused, "the listener still accepts after shutdown");
}

#[tokio::test]
async fn a_login_written_one_byte_at_a_time_is_understood() {
    use tokio::io::AsyncWriteExt;
    let sim = one_router("7.18.2").await;
    let info = &sim.routers()[0];
    let mut raw = tokio::net::TcpStream::connect((info.host.as_str(), info.port))
        .await
        .unwrap();
    raw.set_nodelay(true).unwrap();
    let password = format!("=password={}", info.password);
    let words = ["/login", "=name=admin", password.as_str(), ".tag=slow"];
    let mut wire = bytes::BytesMut::new();
    let sentence = cloudpilot::routeros::codec::Sentence {
        words: words
            .iter()
            .map(|w| bytes::Bytes::copy_from_slice(w.as_bytes()))
            .collect(),
    };
    cloudpilot::routeros::codec::encode_sentence(&sentence, &mut wire);
    for byte in wire.iter() {
        raw.write_all(&[*byte]).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert!(eventually(|| sim.router(0).logins() == 1).await);
}
