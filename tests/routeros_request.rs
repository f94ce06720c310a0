//! execute-command over a scripted router: the sentences each method sends and the JSON
//! each answer becomes.

mod routeros_peer;

use std::time::Duration;

use cloudpilot::routeros::{execute, CommandFailure, RestRequest};
use routeros_peer::{connected, Peer, Segmentation};
use serde_json::{json, Value};

const SECOND: Duration = Duration::from_secs(5);

fn t(tag: &str) -> String {
    format!(".tag={tag}")
}

fn req(method: &str, command: &str, params: Value, data: Value) -> RestRequest {
    RestRequest::parse(Some(method), command, Some(&params), Some(&data)).unwrap()
}

async fn rows(peer: &mut Peer, tag: &str, rows: &[&[&str]]) {
    for row in rows {
        let mut words = vec!["!re"];
        words.extend_from_slice(row);
        let tag = t(tag);
        words.push(&tag);
        peer.send_str(&words).await;
    }
    peer.send_str(&["!done", &t(tag)]).await;
}

/// GET of a list menu prints with equality queries and gives a list of string records.
#[tokio::test]
async fn get_list_menu_gives_a_list_with_values_as_strings() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer
            .expect(&["/ip/address/print", "?interface=ether1"])
            .await;
        rows(
            &mut peer,
            &tag,
            &[&["=.id=*1", "=address=10.0.0.1/24", "=disabled=false"]],
        )
        .await;
        let tag = peer.expect(&["/ip/address/print"]).await;
        peer.send_str(&["!empty", &t(&tag)]).await;
        peer.send_str(&["!done", &t(&tag)]).await;
    })
    .await;
    let r = req(
        "GET",
        "/ip address print",
        json!({"interface": "ether1"}),
        Value::Null,
    );
    let got = execute(&conn, &r, SECOND).await.unwrap();
    assert_eq!(
        got,
        json!([{".id": "*1", "address": "10.0.0.1/24", "disabled": "false"}])
    );
    let got = execute(
        &conn,
        &req("GET", "ip/address", json!({}), Value::Null),
        SECOND,
    )
    .await;
    assert_eq!(got.unwrap(), json!([]));
    peer.await.unwrap();
}

/// GET of a one-item menu (its row has no .id) gives that object; "0000" stays a string.
#[tokio::test]
async fn get_one_item_menu_gives_an_object() {
    let (conn, peer) = connected(Segmentation::OneByte, |mut peer| async move {
        let tag = peer.expect(&["/system/resource/print"]).await;
        rows(
            &mut peer,
            &tag,
            &[&["=uptime=1d", "=cpu-load=0000", "=version=7.18"]],
        )
        .await;
    })
    .await;
    let r = RestRequest::parse(None, "system/resource/getall", None, None).unwrap();
    let got = execute(&conn, &r, SECOND).await.unwrap();
    assert_eq!(
        got,
        json!({"uptime": "1d", "cpu-load": "0000", "version": "7.18"})
    );
    peer.await.unwrap();
}

/// A .proplist without .id still tells a single list row from a one-item menu.
#[tokio::test]
async fn proplist_without_id_keeps_a_single_row_a_list() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer
            .expect(&["/ip/address/print", ".proplist=address,.id"])
            .await;
        rows(&mut peer, &tag, &[&["=address=10.0.0.1/24", "=.id=*1"]]).await;
    })
    .await;
    let r = req(
        "GET",
        "ip/address",
        json!({".proplist": "address"}),
        Value::Null,
    );
    let got = execute(&conn, &r, SECOND).await.unwrap();
    assert_eq!(got, json!([{"address": "10.0.0.1/24"}]));
    peer.await.unwrap();
}

/// GET of a record id gives one object, or NotFound when the print is empty.
#[tokio::test]
async fn get_record_by_id_or_not_found() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/ip/address/print", "?.id=*1"]).await;
        rows(&mut peer, &tag, &[&["=.id=*1", "=address=10.0.0.1/24"]]).await;
        let tag = peer.expect(&["/ip/address/print", "?.id=*9"]).await;
        rows(&mut peer, &tag, &[]).await;
    })
    .await;
    let one = execute(
        &conn,
        &req("GET", "ip/address/*1", json!({}), Value::Null),
        SECOND,
    )
    .await;
    assert_eq!(one.unwrap(), json!({".id": "*1", "address": "10.0.0.1/24"}));
    let none = execute(
        &conn,
        &req("GET", "ip/address/*9", json!({}), Value::Null),
        SECOND,
    )
    .await;
    assert!(
        matches!(none, Err(CommandFailure::NotFound { .. })),
        "{none:?}"
    );
    peer.await.unwrap();
}

/// PUT adds with data, then prints the new id from =ret= and returns it.
#[tokio::test]
async fn put_adds_then_returns_the_new_record() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer
            .expect(&["/ip/address/add", "=address=10.0.0.2/24", "=mtu=1500"])
            .await;
        peer.send_str(&["!done", "=ret=*5", &t(&tag)]).await;
        let tag = peer.expect(&["/ip/address/print", "?.id=*5"]).await;
        rows(&mut peer, &tag, &[&["=.id=*5", "=address=10.0.0.2/24"]]).await;
    })
    .await;
    let r = req(
        "PUT",
        "ip/address",
        Value::Null,
        json!({"address": "10.0.0.2/24", "mtu": 1500}),
    );
    let got = execute(&conn, &r, SECOND).await.unwrap();
    assert_eq!(got, json!({".id": "*5", "address": "10.0.0.2/24"}));
    peer.await.unwrap();
}

/// PATCH sets by id then prints; a `no such item` trap is NotFound.
#[tokio::test]
async fn patch_sets_then_prints_and_missing_id_is_not_found() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer
            .expect(&["/ip/address/set", "=.id=*1", "=comment=x"])
            .await;
        rows(&mut peer, &tag, &[]).await;
        let tag = peer.expect(&["/ip/address/print", "?.id=*1"]).await;
        rows(&mut peer, &tag, &[&["=.id=*1", "=comment=x"]]).await;
        let tag = peer
            .expect(&["/ip/address/set", "=.id=*7", "=comment=x"])
            .await;
        peer.send_str(&["!trap", "=message=no such item", &t(&tag)])
            .await;
        peer.send_str(&["!done", &t(&tag)]).await;
    })
    .await;
    let r = req(
        "PATCH",
        "ip/address/*1",
        Value::Null,
        json!({"comment": "x"}),
    );
    assert_eq!(
        execute(&conn, &r, SECOND).await.unwrap(),
        json!({".id": "*1", "comment": "x"})
    );
    let r = req(
        "PATCH",
        "ip/address/*7",
        Value::Null,
        json!({"comment": "x"}),
    );
    let got = execute(&conn, &r, SECOND).await;
    assert!(
        matches!(got, Err(CommandFailure::NotFound { .. })),
        "{got:?}"
    );
    peer.await.unwrap();
}

/// DELETE removes by id and gives null; another trap stays a Trap with its category.
#[tokio::test]
async fn delete_gives_null_and_other_traps_stay_traps() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/ip/address/remove", "=.id=*1"]).await;
        rows(&mut peer, &tag, &[]).await;
        let tag = peer.expect(&["/ip/address/remove", "=.id=*2"]).await;
        peer.send_str(&["!trap", "=category=1", "=message=cannot remove", &t(&tag)])
            .await;
        peer.send_str(&["!done", &t(&tag)]).await;
    })
    .await;
    let r = req("DELETE", "ip/address/*1", Value::Null, Value::Null);
    assert_eq!(execute(&conn, &r, SECOND).await.unwrap(), Value::Null);
    let r = req("DELETE", "ip/address/*2", Value::Null, Value::Null);
    let got = execute(&conn, &r, SECOND).await.unwrap_err();
    assert_eq!(
        got,
        CommandFailure::Trap {
            message: "cannot remove".into(),
            category: Some(1)
        }
    );
    peer.await.unwrap();
}

/// POST runs the command with data, .proplist and .query; the result is the rows, or the
/// !done data, or [].
#[tokio::test]
async fn post_gives_rows_or_done_data_or_empty_list() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer
            .expect(&["/interface/print", ".proplist=name", "?type=ether", "?#|"])
            .await;
        rows(&mut peer, &tag, &[&["=name=ether1"], &["=name=ether2"]]).await;
        let tag = peer.expect(&["/system/script/add", "=name=s"]).await;
        peer.send_str(&["!done", "=ret=*5", &t(&tag)]).await;
        let tag = peer.expect(&["/system/reboot"]).await;
        rows(&mut peer, &tag, &[]).await;
    })
    .await;
    let data = json!({".proplist": "name", ".query": ["?type=ether", "?#|"]});
    let got = execute(
        &conn,
        &req("POST", "interface/print", Value::Null, data),
        SECOND,
    )
    .await;
    assert_eq!(
        got.unwrap(),
        json!([{"name": "ether1"}, {"name": "ether2"}])
    );
    let add = req(
        "POST",
        "system/script/add",
        Value::Null,
        json!({"name": "s"}),
    );
    assert_eq!(
        execute(&conn, &add, SECOND).await.unwrap(),
        json!({"ret": "*5"})
    );
    let reboot = req("POST", "system/reboot", Value::Null, Value::Null);
    assert_eq!(execute(&conn, &reboot, SECOND).await.unwrap(), json!([]));
    peer.await.unwrap();
}

/// Non-UTF-8 values come back as Latin-1 with ".latin1", and go out as bytes again.
#[tokio::test]
async fn latin1_values_round_trip_losslessly() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        let tag = peer.expect(&["/ip/address/print", "?.id=*1"]).await;
        let tag = t(&tag);
        peer.send(&[b"!re", b"=.id=*1", b"=comment=caf\xe9", tag.as_bytes()])
            .await;
        peer.send(&[b"!done", tag.as_bytes()]).await;
        let words = peer.read_sentence().await;
        assert_eq!(words[0], b"/ip/address/set");
        assert!(words.contains(&b"=comment=caf\xe9".to_vec()), "{words:?}");
        let tag = words
            .iter()
            .find(|w| w.starts_with(b".tag="))
            .unwrap()
            .clone();
        peer.send(&[b"!done", &tag]).await;
        let tag = peer.expect(&["/ip/address/print", "?.id=*1"]).await;
        rows(&mut peer, &tag, &[&["=.id=*1"]]).await;
    })
    .await;
    let r = req("GET", "ip/address/*1", json!({}), Value::Null);
    let got = execute(&conn, &r, SECOND).await.unwrap();
    assert_eq!(
        got,
        json!({".id": "*1", "comment": "caf\u{e9}", ".latin1": "comment"})
    );
    let data = json!({"comment": got["comment"], ".latin1": got[".latin1"]});
    let r = req("PATCH", "ip/address/*1", Value::Null, data);
    execute(&conn, &r, SECOND).await.unwrap();
    peer.await.unwrap();
}

/// No answer in time is Timeout (and a cancel); a dead connection is Unreachable.
#[tokio::test]
async fn timeout_and_unreachable() {
    let (conn, peer) = connected(Segmentation::Whole, |mut peer| async move {
        peer.expect(&["/ip/address/print"]).await;
        let words = peer.read_sentence().await;
        assert_eq!(words[0], b"/cancel");
    })
    .await;
    let r = req("GET", "ip/address", json!({}), Value::Null);
    let got = execute(&conn, &r, Duration::from_millis(100)).await;
    assert_eq!(got, Err(CommandFailure::Timeout));
    peer.await.unwrap();
    conn.closed().await;
    let got = execute(&conn, &r, SECOND).await;
    assert!(
        matches!(got, Err(CommandFailure::Unreachable { .. })),
        "{got:?}"
    );
}
