//! Injected faults on the simulator (dropped and hung commands, slow and fragmented
//! writes) and its counters.

mod sim_client;

use std::time::{Duration, Instant};

use cloudpilot::routeros::codec::FrameError;
use cloudpilot::sim::Faults;
use sim_client::{eventually, one_router, Client};

#[tokio::test]
async fn a_dropped_command_gets_half_a_sentence_then_the_connection_closes() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    sim.router(0).drop_next_command();
    c.send(&["/system/resource/print", ".tag=d"]).await;
    match c.next_frame().await {
        Some(Err(FrameError::Truncated)) => {}
        other => panic!("expected a sentence cut short by a close, got {other:?}"),
    }
    assert!(eventually(|| sim.router(0).active_sessions() == 0).await);

    // The fault is spent: a new connection is served normally.
    let mut again = Client::logged_in(&sim.routers()[0]).await;
    let reply = again.call(&["/system/resource/print"]).await;
    assert!(reply[0].is("!re") && reply[1].is("!done"));
}

#[tokio::test]
async fn drop_every_nth_command_cuts_exactly_those() {
    let sim = one_router("7.18.2").await;
    sim.router(0).set_faults(Faults {
        drop_every: Some(3),
        ..Faults::default()
    });
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    assert!(c.call(&["/system/identity/print"]).await[0].is("!re"));
    assert!(c.call(&["/system/identity/print"]).await[0].is("!re"));
    c.send(&["/system/identity/print"]).await;
    assert!(matches!(
        c.next_frame().await,
        Some(Err(FrameError::Truncated))
    ));
    assert_eq!(sim.router(0).commands(), 3);
}

#[tokio::test]
async fn a_hung_command_is_answered_only_by_its_cancel_while_others_proceed() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    sim.router(0).hang_next_command();
    c.send(&[
        "/ip/address/add",
        "=address=10.3.3.3/24",
        "=interface=ether1",
        ".tag=h",
    ])
    .await;
    assert!(
        c.quiet_for(Duration::from_millis(200)).await,
        "a hung command was answered"
    );

    let other = c.call(&["/system/identity/print", ".tag=o"]).await;
    assert!(other.iter().all(|r| r.tag() == Some("o")));

    c.send(&["/cancel", "=tag=h", ".tag=c"]).await;
    let mut by_tag = Vec::new();
    while by_tag.iter().filter(|(_, kind)| kind == "!done").count() < 2 {
        let r = c.recv().await;
        if r.is("!trap") {
            assert_eq!(r.text("category"), Some("2"));
            assert_eq!(r.text("message"), Some("interrupted"));
        }
        by_tag.push((
            r.tag().unwrap().to_owned(),
            String::from_utf8(r.kind.clone()).unwrap(),
        ));
    }
    assert!(by_tag.contains(&("h".to_owned(), "!trap".to_owned())));
    assert!(by_tag.contains(&("h".to_owned(), "!done".to_owned())));
    assert!(by_tag.contains(&("c".to_owned(), "!done".to_owned())));
    let addresses = c.call(&["/ip/address/print"]).await;
    assert_eq!(addresses.len(), 2, "the hung add never took effect");
}

#[tokio::test]
async fn one_byte_writes_still_decode_to_the_same_replies() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let whole = c.call(&["/interface/print", ".tag=w"]).await;
    sim.router(0).set_faults(Faults {
        one_byte_writes: true,
        ..Faults::default()
    });
    let bytewise = c.call(&["/interface/print", ".tag=w"]).await;
    assert_eq!(whole, bytewise);
    assert_eq!(bytewise.len(), 6);
}

#[tokio::test]
async fn latency_delays_each_reply_but_pipelined_commands_wait_only_once() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let latency = Duration::from_millis(150);
    sim.router(0).set_faults(Faults {
        latency,
        ..Faults::default()
    });
    let started = Instant::now();
    for tag in 0..4 {
        c.send(&["/system/identity/print", &format!(".tag={tag}")])
            .await;
    }
    for _ in 0..4 {
        c.until_done().await;
    }
    let took = started.elapsed();
    assert!(took >= latency, "replied after {took:?}");
    assert!(took < latency * 3, "latency was paid per command: {took:?}");
}

#[tokio::test]
async fn counters_count_logins_commands_and_cancels_separately() {
    let sim = one_router("7.18.2").await;
    let router = sim.router(0);
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let _second = Client::logged_in(&sim.routers()[0]).await;
    c.call(&["/system/identity/print"]).await;
    c.call(&["/nonsense"]).await;
    c.send(&["/ping", "=address=10.0.0.1", ".tag=p"]).await;
    c.recv().await;
    c.send(&["/cancel", "=tag=p", ".tag=c"]).await;
    let mut dones = 0;
    while dones < 2 {
        dones += usize::from(c.recv().await.is("!done"));
    }
    assert_eq!(router.logins(), 2);
    assert_eq!(router.active_sessions(), 2);
    assert_eq!(router.commands(), 3, "print, the unknown command and ping");
    assert_eq!(router.cancels(), 1);
}
