//! Many commands on one connection: timeouts that cancel and drain, streams, concurrency,
//! and closing.

mod routeros_peer;

use std::time::Duration;

use cloudpilot::routeros::{ClientError, Command};
use routeros_peer::{connected, Segmentation};

fn t(tag: &str) -> String {
    format!(".tag={tag}")
}

/// On timeout the client sends `/cancel =tag=<t>` under a fresh tag; the target's late rows,
/// its interrupted trap and both `!done`s, in any order, never reach the next command.
#[tokio::test]
async fn timeout_cancels_drains_late_replies_and_the_connection_stays_usable() {
    let (conn, peer) = connected(Segmentation::OneByte, |mut peer| async move {
        let ping = peer.expect(&["/ping", "=address=127.0.0.1"]).await;
        peer.send_str(&["!re", "=seq=0", &t(&ping)]).await;
        let words = peer.read_sentence().await;
        let cancel_tag = words
            .iter()
            .find_map(|w| w.strip_prefix(b".tag="))
            .map(|t| String::from_utf8(t.to_vec()).unwrap())
            .unwrap();
        assert_eq!(words[0], b"/cancel");
        assert!(words.contains(&format!("=tag={ping}").into_bytes()));
        assert_ne!(cancel_tag, ping);
        let next = peer.expect(&["/system/identity/print"]).await;
        peer.send_str(&["!re", "=seq=1", &t(&ping)]).await;
        peer.send_str(&["!done", &t(&cancel_tag)]).await;
        peer.send_str(&["!re", "=name=late-for-next?", "=seq=2", &t(&ping)])
            .await;
        peer.send_str(&["!trap", "=category=2", "=message=interrupted", &t(&ping)])
            .await;
        peer.send_str(&["!done", &t(&ping)]).await;
        peer.send_str(&["!re", "=name=router-1", &t(&next)]).await;
        peer.send_str(&["!done", &t(&next)]).await;
        peer.wait_for_close().await;
    })
    .await;
    let ping = Command::new("/ping").attr("address", "127.0.0.1");
    let err = conn
        .call_timeout(ping, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(!err.is_connection_failure());
    let resp = conn
        .call(Command::new("/system/identity/print"))
        .await
        .unwrap();
    assert_eq!(resp.rows.len(), 1);
    assert_eq!(resp.rows[0].get_str("name").as_deref(), Some("router-1"));
    assert_eq!(conn.in_flight(), 0);
    assert!(!conn.is_closed());
    drop(conn);
    peer.await.unwrap();
}

/// A command that finishes in time is not cancelled.
#[tokio::test]
async fn call_timeout_returns_the_answer_when_it_comes_in_time() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/a"]).await;
        peer.send_str(&["!re", "=x=1", &t(&tag)]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
        // The next thing written must be the following command, not a /cancel.
        peer.expect(&["/b"]).await;
    })
    .await;
    let resp = conn
        .call_timeout(Command::new("/a"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.rows.len(), 1);
    let _ = conn
        .call_timeout(Command::new("/b"), Duration::from_millis(50))
        .await;
    peer.await.unwrap();
}

/// 200 commands in flight at once on one connection, answered in reverse order, each get
/// their own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_one_connection() {
    const N: usize = 200;
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let mut seen = Vec::new();
        for _ in 0..N {
            let words = peer.read_sentence().await;
            let tag = words
                .iter()
                .find(|w| w.starts_with(b".tag="))
                .unwrap()
                .clone();
            let n = words
                .iter()
                .find(|w| w.starts_with(b"=n="))
                .unwrap()
                .clone();
            seen.push((tag, n));
        }
        for (tag, n) in seen.into_iter().rev() {
            peer.send(&[b"!re", &n, &tag]).await;
            peer.send(&[b"!done", &tag]).await;
        }
    })
    .await;
    let calls = (0..N).map(|i| {
        let conn = conn.clone();
        tokio::spawn(async move {
            let resp = conn
                .call(Command::new("/echo").attr("n", i.to_string()))
                .await
                .unwrap();
            assert_eq!(resp.rows.len(), 1);
            assert_eq!(resp.rows[0].get_str("n"), Some(i.to_string()));
        })
    });
    for call in futures::future::join_all(calls).await {
        call.unwrap();
    }
    assert_eq!(conn.in_flight(), 0);
    peer.await.unwrap();
}

/// A stream yields each `!re` as it comes; dropping it sends `/cancel` for its tag.
#[tokio::test]
async fn stream_yields_rows_and_dropping_it_cancels_on_the_router() {
    let (conn, peer) = connected(Segmentation::InsidePrefix, |mut peer| async move {
        let tag = peer.expect(&["/ping", "=address=127.0.0.1"]).await;
        for seq in 0..3 {
            peer.send_str(&["!re", &format!("=seq={seq}"), &t(&tag)])
                .await;
        }
        let words = peer.read_sentence().await;
        assert_eq!(words[0], b"/cancel");
        assert!(words.contains(&format!("=tag={tag}").into_bytes()));
    })
    .await;
    let mut rows = conn
        .stream(Command::new("/ping").attr("address", "127.0.0.1"))
        .unwrap();
    for seq in 0..3 {
        let row = rows.next().await.unwrap().unwrap();
        assert_eq!(row.get_str("seq"), Some(seq.to_string()));
    }
    assert_eq!(conn.in_flight(), 1);
    drop(rows);
    assert_eq!(conn.in_flight(), 0);
    peer.await.unwrap();
}

/// A stream ends after `!done`, and reports a `!trap` as an error first.
#[tokio::test]
async fn stream_reports_trap_then_ends_on_done() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/listen"]).await;
        peer.send_str(&["!re", "=a=1", &t(&tag)]).await;
        peer.send_str(&["!trap", "=message=no such command", "=category=0", &t(&tag)])
            .await;
        peer.send_str(&["!done", &t(&tag)]).await;
        peer.wait_for_close().await;
    })
    .await;
    let mut rows = conn.stream(Command::new("/listen")).unwrap();
    assert!(rows.next().await.unwrap().is_ok());
    match rows.next().await.unwrap() {
        Err(ClientError::Trap { message, category }) => {
            assert_eq!((message.as_str(), category), ("no such command", Some(0)))
        }
        other => panic!("expected trap, got {other:?}"),
    }
    assert!(rows.next().await.is_none());
    drop(rows);
    drop(conn);
    peer.await.unwrap();
}

/// close() fails commands in flight with Closed, and later calls are refused.
#[tokio::test]
async fn close_fails_in_flight_with_closed() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        peer.expect(&["/slow"]).await;
        peer.wait_for_close().await;
    })
    .await;
    let pending = tokio::spawn({
        let conn = conn.clone();
        async move { conn.call(Command::new("/slow")).await }
    });
    while conn.in_flight() == 0 {
        tokio::task::yield_now().await;
    }
    conn.close();
    assert!(matches!(pending.await.unwrap(), Err(ClientError::Closed)));
    assert!(matches!(conn.closed().await, ClientError::Closed));
    assert!(matches!(
        conn.call(Command::new("/x")).await,
        Err(ClientError::Closed)
    ));
    // The socket really closes: the peer sees end of stream.
    peer.await.unwrap();
}

/// Without a timeout, a command waits for rows as long as the router takes.
#[tokio::test]
async fn no_client_side_read_timeout_while_waiting() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/slow"]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        peer.send_str(&["!re", "=ok=yes", &t(&tag)]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
    })
    .await;
    let resp = conn.call(Command::new("/slow")).await.unwrap();
    assert_eq!(resp.rows.len(), 1);
    peer.await.unwrap();
}

/// Dropping a call's future before its answer cancels the command on the router.
#[tokio::test]
async fn dropping_a_call_future_cancels_it() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/slow"]).await;
        let words = peer.read_sentence().await;
        assert_eq!(words[0], b"/cancel");
        assert!(words.contains(&format!("=tag={tag}").into_bytes()));
    })
    .await;
    let gave_up = tokio::time::timeout(Duration::from_millis(50), conn.call(Command::new("/slow")));
    assert!(gave_up.await.is_err());
    assert_eq!(conn.in_flight(), 0);
    peer.await.unwrap();
}
