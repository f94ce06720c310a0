//! Long-running commands on the simulator: ping, monitor-traffic, listen, print follow,
//! and cancelling them.

mod sim_client;

use std::time::Duration;

use sim_client::{one_router, Client, Reply};

#[tokio::test]
async fn ping_with_a_count_streams_sections_then_finishes() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let replies = c
        .call(&[
            "/ping",
            "=address=127.0.0.9",
            "=count=3",
            "=interval=20ms",
            ".tag=p",
        ])
        .await;
    assert_eq!(replies.len(), 4);
    for (n, row) in replies[..3].iter().enumerate() {
        assert!(row.is("!re"));
        assert_eq!(row.text(".section"), Some(n.to_string().as_str()));
        assert_eq!(row.text("seq"), Some(n.to_string().as_str()));
        assert_eq!(row.text("host"), Some("127.0.0.9"));
        assert_eq!(row.tag(), Some("p"));
    }
    assert!(replies[3].is("!done") && replies[3].tag() == Some("p"));
}

#[tokio::test]
async fn a_cancelled_ping_is_interrupted_and_sends_nothing_after() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    c.send(&["/ping", "=address=10.0.0.1", "=interval=10ms", ".tag=p"])
        .await;
    let first = c.recv().await;
    assert!(first.is("!re") && first.tag() == Some("p"));

    c.send(&["/cancel", "=tag=p", ".tag=c"]).await;
    let mut trap = None;
    let mut target_done = false;
    let mut cancel_done = false;
    while !(target_done && cancel_done) {
        let reply = c.recv().await;
        match (reply.tag(), reply.kind.as_slice()) {
            (Some("p"), b"!re") => assert!(trap.is_none(), "a row after the trap"),
            (Some("p"), b"!trap") => trap = Some(reply),
            (Some("p"), b"!done") => target_done = true,
            (Some("c"), b"!done") => cancel_done = true,
            _ => panic!("unexpected {reply:?}"),
        }
    }
    let trap = trap.expect("the target answers with a trap");
    assert_eq!(trap.text("category"), Some("2"));
    assert_eq!(trap.text("message"), Some("interrupted"));
    assert!(
        c.quiet_for(Duration::from_millis(100)).await,
        "the ping went on"
    );
    assert_eq!(sim.router(0).cancels(), 1);
}

#[tokio::test]
async fn cancelling_an_unknown_tag_is_trapped() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let reply = c.call(&["/cancel", "=tag=nothing", ".tag=c"]).await;
    assert!(reply[0].is("!trap") && reply[1].is("!done"));
    assert_eq!(reply[1].tag(), Some("c"));
}

#[tokio::test]
async fn monitor_traffic_streams_until_cancelled_and_once_answers_one_row() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let once = c
        .call(&["/interface/monitor-traffic", "=interface=ether1", "=once="])
        .await;
    assert_eq!(once.len(), 2);
    assert_eq!(once[0].text("name"), Some("ether1"));
    assert!(once[0].get("rx-bits-per-second").is_some());

    c.send(&[
        "/interface/monitor-traffic",
        "=interface=ether2",
        "=interval=10ms",
        ".tag=m",
    ])
    .await;
    for section in 0..3 {
        let row = c.recv().await;
        assert_eq!(row.text(".section"), Some(section.to_string().as_str()));
        assert_eq!(row.text("name"), Some("ether2"));
    }
    c.send(&["/cancel", "=tag=m", ".tag=c"]).await;
    let mut ended = Vec::new();
    while ended.len() < 2 {
        let reply = c.recv().await;
        if reply.is("!done") {
            ended.push(reply.tag().unwrap().to_owned());
        }
    }
    ended.sort();
    assert_eq!(ended, ["c", "m"]);

    let bad = c
        .call(&["/interface/monitor-traffic", "=interface=ether42"])
        .await;
    assert!(bad[0].is("!trap"));
}

#[tokio::test]
async fn listen_streams_changes_made_on_another_connection() {
    let sim = one_router("7.18.2").await;
    let mut watcher = Client::logged_in(&sim.routers()[0]).await;
    let mut editor = Client::logged_in(&sim.routers()[0]).await;
    watcher.send(&["/ip/address/listen", ".tag=l"]).await;
    // A round trip on the watcher makes sure the listen is registered before editing.
    watcher.call(&["/system/identity/print"]).await;

    let added = editor
        .call(&[
            "/ip/address/add",
            "=address=10.1.1.1/24",
            "=interface=ether4",
        ])
        .await;
    let id = added[0].text("ret").unwrap().to_owned();
    let row = watcher.recv().await;
    assert_eq!((row.tag(), row.text(".id")), (Some("l"), Some(id.as_str())));
    assert_eq!(row.text("address"), Some("10.1.1.1/24"));

    editor
        .call(&["/ip/address/remove", &format!("=.id={id}")])
        .await;
    let gone = watcher.recv().await;
    assert_eq!(gone.text(".id"), Some(id.as_str()));
    assert_eq!(gone.text(".dead"), Some("true"));
}

#[tokio::test]
async fn print_follow_sends_current_rows_then_matching_changes() {
    let sim = one_router("6.49.10").await;
    let mut watcher = Client::logged_in(&sim.routers()[0]).await;
    let mut editor = Client::logged_in(&sim.routers()[0]).await;
    watcher
        .send(&[
            "/ip/address/print",
            "=follow=",
            "?interface=ether5",
            ".tag=f",
        ])
        .await;
    watcher.call(&["/system/identity/print"]).await;
    editor
        .call(&[
            "/ip/address/add",
            "=address=10.2.0.1/24",
            "=interface=ether3",
        ])
        .await;
    editor
        .call(&[
            "/ip/address/add",
            "=address=10.5.0.1/24",
            "=interface=ether5",
        ])
        .await;
    let row: Reply = watcher.recv().await;
    assert_eq!(
        row.text("address"),
        Some("10.5.0.1/24"),
        "the ether3 change is filtered out"
    );
    // Untagged, /cancel stops everything running on the connection.
    watcher.send(&["/cancel"]).await;
    let mut seen = Vec::new();
    while seen.iter().filter(|r: &&Reply| r.is("!done")).count() < 2 {
        seen.push(watcher.recv().await);
    }
    assert!(
        seen.iter().any(|r| r.is("!trap") && r.tag() == Some("f")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|r| r.is("!done") && r.tag.is_none()));
}
