//! Reply handling on a live connection: rows, `!empty`, traps, tags, odd values, framing
//! boundaries, and the ways a connection dies (`!fatal`, EOF, reserved prefix).

mod routeros_peer;

use cloudpilot::routeros::{ClientError, Command};
use routeros_peer::{connected, Segmentation};

fn t(tag: &str) -> String {
    format!(".tag={tag}")
}

/// Words of 127 .. 0x200000 bytes travel both ways intact, even cut inside prefixes.
#[tokio::test]
async fn boundary_sized_words_round_trip_through_the_connection() {
    const LENS: [usize; 7] = [127, 128, 255, 256, 0x3FFF, 0x4000, 0x20_0000];
    let (conn, peer) = connected(Segmentation::InsidePrefix, |mut peer| async move {
        for len in LENS {
            let words = peer.read_sentence().await;
            let value = words
                .iter()
                .find(|w| w.starts_with(b"=v="))
                .unwrap()
                .clone();
            assert_eq!(value.len(), len, "client wrote a {len}-byte word");
            let tag = words
                .iter()
                .find(|w| w.starts_with(b".tag="))
                .unwrap()
                .clone();
            peer.send(&[b"!re", &value, &tag]).await;
            peer.send(&[b"!done", &tag]).await;
        }
    })
    .await;
    for len in LENS {
        let value: Vec<u8> = (0..len - 3).map(|i| (i % 256) as u8).collect();
        let resp = conn
            .call(Command::new("/echo").attr("v", &value))
            .await
            .unwrap();
        assert_eq!(resp.rows[0].get("v"), Some(&value[..]), "{len}");
    }
    peer.await.unwrap();
}

/// `!empty` (tagged or not) means zero rows; `!done` may carry `=ret=`.
#[tokio::test]
async fn empty_with_and_without_tag_and_done_with_data() {
    let (conn, peer) = connected(Segmentation::OneByte, |mut peer| async move {
        let tag = peer
            .expect(&["/ip/address/print", "?address=10.9.9.9/32"])
            .await;
        peer.send_str(&["!empty", &t(&tag)]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
        let tag = peer.expect(&["/ip/address/print"]).await;
        peer.send_str(&["!empty"]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
        let tag = peer
            .expect(&["/ip/address/add", "=address=10.0.0.1/24"])
            .await;
        peer.send_str(&["!done", "=ret=*3", &t(&tag)]).await;
    })
    .await;
    let q = Command::new("/ip/address/print").query("?address=10.9.9.9/32");
    let resp = conn.call(q).await.unwrap();
    assert!(resp.empty && resp.rows.is_empty());
    let resp = conn.call(Command::new("/ip/address/print")).await.unwrap();
    assert!(resp.empty && resp.rows.is_empty());
    let add = Command::new("/ip/address/add").attr("address", "10.0.0.1/24");
    let resp = conn.call(add).await.unwrap();
    assert_eq!(resp.done.get("ret"), Some(&b"*3"[..]));
    assert!(!resp.empty);
    peer.await.unwrap();
}

/// Several traps before one `!done`: the first trap is the result, and the next command's
/// replies do not shift by one.
#[tokio::test]
async fn several_traps_then_done_complete_once_with_the_first_trap() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/bad"]).await;
        peer.send_str(&["!trap", "=category=1", "=message=first", &t(&tag)])
            .await;
        peer.send_str(&["!trap", "=category=4", "=message=second", &t(&tag)])
            .await;
        peer.send_str(&["!done", &t(&tag)]).await;
        let tag = peer.expect(&["/good"]).await;
        peer.send_str(&["!re", "=ok=yes", &t(&tag)]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
        peer.wait_for_close().await;
    })
    .await;
    match conn.call(Command::new("/bad")).await.unwrap_err() {
        ClientError::Trap { message, category } => {
            assert_eq!((message.as_str(), category), ("first", Some(1)))
        }
        other => panic!("expected Trap, got {other:?}"),
    }
    let resp = conn.call(Command::new("/good")).await.unwrap();
    assert_eq!(resp.rows.len(), 1);
    assert_eq!(resp.rows[0].get("ok"), Some(&b"yes"[..]));
    assert!(!conn.is_closed());
    drop(conn);
    peer.await.unwrap();
}

/// Replies for two tags interleave, with `.tag` first, middle or last; each command gets
/// exactly its own rows.
#[tokio::test]
async fn interleaved_tags_in_any_position_reach_their_commands() {
    let (conn, peer) = connected(Segmentation::OneByte, |mut peer| async move {
        let a = peer.expect(&["/a"]).await;
        let b = peer.expect(&["/b"]).await;
        peer.send_str(&["!re", &t(&b), "=n=b1"]).await;
        peer.send_str(&["!re", "=n=a1", &t(&a), "=m=x"]).await;
        peer.send_str(&["!re", "=n=b2", &t(&b)]).await;
        peer.send_str(&["!done", &t(&a)]).await;
        peer.send_str(&["!re", &t(&b), "=n=b3"]).await;
        peer.send_str(&["!done", &t(&b)]).await;
    })
    .await;
    let (ra, rb) = tokio::join!(conn.call(Command::new("/a")), async {
        tokio::task::yield_now().await;
        conn.call(Command::new("/b")).await
    });
    let names = |r: &cloudpilot::routeros::Response| -> Vec<String> {
        r.rows.iter().map(|row| row.get_str("n").unwrap()).collect()
    };
    assert_eq!(names(&ra.unwrap()), ["a1"]);
    assert_eq!(names(&rb.unwrap()), ["b1", "b2", "b3"]);
    peer.await.unwrap();
}

/// `=comment=a=b=c`, `=comment=` and non-UTF-8 bytes arrive exactly as sent.
#[tokio::test]
async fn odd_values_arrive_as_raw_bytes() {
    let (conn, peer) = connected(Segmentation::InsidePrefix, |mut peer| async move {
        let tag = peer.expect(&["/x"]).await;
        let tag = t(&tag);
        peer.send(&[
            b"!re",
            b"=comment=a=b=c",
            b"=empty=",
            b"=cp=\xe9t\xe9\xff",
            tag.as_bytes(),
        ])
        .await;
        peer.send(&[b"!re", tag.as_bytes()]).await;
        peer.send(&[b"!done", tag.as_bytes()]).await;
    })
    .await;
    let resp = conn.call(Command::new("/x")).await.unwrap();
    assert_eq!(
        resp.rows.len(),
        2,
        "a row without attributes is still a row"
    );
    let row = &resp.rows[0];
    assert_eq!(row.get("comment"), Some(&b"a=b=c"[..]));
    assert_eq!(row.get("empty"), Some(&b""[..]));
    assert_eq!(row.get("cp"), Some(&b"\xe9t\xe9\xff"[..]));
    assert!(resp.rows[1].is_empty());
    peer.await.unwrap();
}

/// `!fatal` fails everything in flight with its message and closes the connection.
#[tokio::test]
async fn fatal_fails_in_flight_commands_and_closes() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        peer.expect(&["/a"]).await;
        peer.expect(&["/b"]).await;
        peer.send_str(&["!fatal", "session terminated on request"])
            .await;
        peer.wait_for_close().await;
    })
    .await;
    let (a, b) = tokio::join!(conn.call(Command::new("/a")), conn.call(Command::new("/b")));
    for r in [a, b] {
        match r.unwrap_err() {
            ClientError::Fatal { message } => assert_eq!(message, "session terminated on request"),
            other => panic!("expected Fatal, got {other:?}"),
        }
    }
    assert!(matches!(conn.closed().await, ClientError::Fatal { .. }));
    assert!(conn.is_closed());
    assert!(conn
        .call(Command::new("/c"))
        .await
        .unwrap_err()
        .is_connection_failure());
    peer.await.unwrap();
}

/// End of stream mid-sentence or mid-prefix fails in-flight commands with ConnectionLost.
#[tokio::test]
async fn eof_mid_sentence_and_mid_prefix_is_connection_lost() {
    for partial in [
        &[0x03u8, b'!', b'r', b'e', 0x05, b'=', b'a'][..],
        &[0x80][..],
    ] {
        let (conn, peer) = connected(Segmentation::Whole, move |mut peer| async move {
            peer.expect(&["/a"]).await;
            peer.send_raw(partial).await;
        })
        .await;
        let err = conn.call(Command::new("/a")).await.unwrap_err();
        assert!(matches!(err, ClientError::ConnectionLost { .. }), "{err:?}");
        assert!(matches!(
            conn.closed().await,
            ClientError::ConnectionLost { .. }
        ));
        assert_eq!(conn.in_flight(), 0);
        peer.await.unwrap();
    }
}

/// A reserved first byte (F1..FF) is a protocol error that closes the connection.
#[tokio::test]
async fn reserved_prefix_byte_is_a_protocol_error() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        peer.expect(&["/a"]).await;
        peer.send_raw(&[0xF8, 0, 0, 0, 0]).await;
        peer.wait_for_close().await;
    })
    .await;
    let err = conn.call(Command::new("/a")).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    assert!(matches!(conn.closed().await, ClientError::Protocol(_)));
    peer.await.unwrap();
}

/// An unknown reply word is a protocol error too.
#[tokio::test]
async fn unknown_reply_word_is_a_protocol_error() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/a"]).await;
        peer.send_str(&["!bogus", &t(&tag)]).await;
        peer.wait_for_close().await;
    })
    .await;
    let err = conn.call(Command::new("/a")).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    peer.await.unwrap();
}

/// An untagged `!empty` with one command in flight belongs to it; with several it is
/// ignored, and each command still completes on its own tagged `!done`.
#[tokio::test]
async fn untagged_empty_with_one_or_several_commands_in_flight() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let a = peer.expect(&["/a"]).await;
        peer.send_str(&["!empty"]).await;
        peer.send_str(&["!done", &t(&a)]).await;
        let b = peer.expect(&["/b"]).await;
        let c = peer.expect(&["/c"]).await;
        peer.send_str(&["!empty"]).await;
        peer.send_str(&["!re", "=x=1", &t(&c)]).await;
        peer.send_str(&["!done", &t(&b)]).await;
        peer.send_str(&["!done", &t(&c)]).await;
        peer.wait_for_close().await;
    })
    .await;
    let a = conn.call(Command::new("/a")).await.unwrap();
    assert!(a.empty && a.rows.is_empty());
    let (b, c) = tokio::join!(conn.call(Command::new("/b")), async {
        tokio::task::yield_now().await;
        conn.call(Command::new("/c")).await
    });
    assert!(b.unwrap().rows.is_empty());
    assert_eq!(c.unwrap().rows.len(), 1);
    assert!(!conn.is_closed());
    drop(conn);
    peer.await.unwrap();
}
