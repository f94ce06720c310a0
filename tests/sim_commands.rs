//! The simulator's model and menus: print/add/set/remove, queries, proplist, `!empty`,
//! tags and unknown commands.

mod sim_client;

use cloudpilot::sim::Faults;
use sim_client::{one_router, Client, Reply};

fn rows(replies: &[Reply]) -> Vec<&Reply> {
    replies.iter().filter(|r| r.is("!re")).collect()
}

#[tokio::test]
async fn addresses_round_trip_through_add_set_print_and_remove_with_ids() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;

    let added = c
        .call(&[
            "/ip/address/add",
            "=address=10.9.8.7/16",
            "=interface=ether2",
        ])
        .await;
    assert_eq!(added.len(), 1);
    assert!(added[0].is("!done"));
    assert_eq!(
        added[0].text("ret"),
        Some("*2"),
        "the default address holds *1"
    );

    let printed = c.call(&["/ip/address/print", "?.id=*2"]).await;
    let row = rows(&printed)[0];
    assert_eq!(row.text("address"), Some("10.9.8.7/16"));
    assert_eq!(row.text("network"), Some("10.9.0.0"));
    assert_eq!(row.text("interface"), Some("ether2"));
    assert_eq!(row.text("disabled"), Some("false"));

    // Values are bytes: a comment in a Windows code page comes back byte for byte.
    c.send_raw(&[
        b"/ip/address/set",
        b"=.id=*2",
        b"=comment=caf\xe9 = bar",
        b"=disabled=yes",
    ])
    .await;
    assert!(c.until_done().await[0].is("!done"));
    let printed = c.call(&["/ip/address/print", "?.id=*2"]).await;
    assert_eq!(
        rows(&printed)[0].get("comment"),
        Some(&b"caf\xe9 = bar"[..])
    );
    assert_eq!(rows(&printed)[0].text("disabled"), Some("true"));

    let removed = c.call(&["/ip/address/remove", "=.id=*2"]).await;
    assert_eq!(removed.len(), 1);
    assert!(removed[0].is("!done"));
    let all = c.call(&["/ip/address/print"]).await;
    assert_eq!(rows(&all).len(), 1);
    assert_eq!(rows(&all)[0].text(".id"), Some("*1"));

    let again = c
        .call(&["/ip/address/add", "=address=10.0.0.1", "=interface=ether3"])
        .await;
    assert_eq!(again[0].text("ret"), Some("*3"), "ids are not reused");
}

#[tokio::test]
async fn bad_address_commands_are_trapped_with_routeros_messages_and_categories() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;

    let missing = c.call(&["/ip/address/add", "=interface=ether1"]).await;
    assert!(missing[0].is("!trap") && missing[1].is("!done"));
    assert_eq!(missing[0].text("category"), Some("1"));
    assert_eq!(
        missing[0].text("message"),
        Some("missing value(s) of argument(s) address")
    );

    let absent_set = c.call(&["/ip/address/set", "=.id=*99", "=comment=x"]).await;
    assert_eq!(absent_set[0].text("message"), Some("no such item"));
    assert_eq!(absent_set[0].text("category"), Some("0"));
    assert!(absent_set[1].is("!done"));

    let absent_remove = c.call(&["/ip/address/remove", "=.id=*99"]).await;
    assert_eq!(absent_remove[0].text("message"), Some("no such item"));

    let bad_interface = c
        .call(&["/ip/address/add", "=address=1.2.3.4/8", "=interface=wlan9"])
        .await;
    assert_eq!(
        bad_interface[0].text("message"),
        Some("input does not match any value of interface")
    );
    assert_eq!(
        rows(&c.call(&["/ip/address/print"]).await).len(),
        1,
        "nothing was added"
    );
}

#[tokio::test]
async fn a_print_matching_nothing_sends_empty_from_7_18_on_only() {
    let new = one_router("7.18.2").await;
    let mut c = Client::logged_in(&new.routers()[0]).await;
    let reply = c.call(&["/interface/print", "?name=nope", ".tag=e"]).await;
    assert_eq!(reply.len(), 2);
    assert!(reply[0].is("!empty") && reply[1].is("!done"));
    assert_eq!((reply[0].tag(), reply[1].tag()), (Some("e"), Some("e")));

    let old = one_router("6.49.10").await;
    let mut c = Client::logged_in(&old.routers()[0]).await;
    let reply = c.call(&["/interface/print", "?name=nope"]).await;
    assert_eq!(reply.len(), 1);
    assert!(reply[0].is("!done"));

    // The fault switch overrides the version.
    old.router(0).set_faults(Faults {
        empty_replies: Some(true),
        ..Faults::default()
    });
    let reply = c.call(&["/interface/print", "?name=nope"]).await;
    assert!(reply[0].is("!empty"));
}

#[tokio::test]
async fn every_reply_to_a_tagged_command_echoes_its_tag_while_many_are_in_flight() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    // Written back to back before reading anything.
    c.send(&[".tag=rows", "/interface/print"]).await;
    c.send(&["/no/such/thing", ".tag=trap"]).await;
    c.send(&["/interface/print", "?name=none", ".tag=empty"])
        .await;
    c.send(&["/system/identity/set", "=name=edge-1", ".tag=plain"])
        .await;
    let mut seen = Vec::new();
    while seen.iter().filter(|r: &&Reply| r.is("!done")).count() < 4 {
        seen.push(c.recv().await);
    }
    for reply in &seen {
        assert!(reply.tag.is_some(), "untagged reply {reply:?}");
    }
    let tagged = |t: &str| {
        seen.iter()
            .filter(|r| r.tag() == Some(t))
            .collect::<Vec<_>>()
    };
    assert_eq!(tagged("rows").len(), 6, "five interfaces and !done");
    assert!(tagged("trap")[0].is("!trap"));
    assert!(tagged("empty")[0].is("!empty"));
    assert!(tagged("plain")[0].is("!done"));
    let identity = c.call(&["/system/identity/print"]).await;
    assert_eq!(identity[0].text("name"), Some("edge-1"));
    assert_eq!(
        identity[0].tag, None,
        "an untagged command gets untagged replies"
    );
}

#[tokio::test]
async fn queries_select_rows_and_proplist_selects_fields() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let names = |replies: Vec<Reply>| -> Vec<String> {
        rows(&replies)
            .iter()
            .map(|r| r.text("name").unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(c.call(&["/interface/print", "?name=ether2"]).await),
        ["ether2"]
    );
    assert_eq!(
        names(c.call(&["/interface/print", "?=name=ether3"]).await),
        ["ether3"]
    );
    assert_eq!(
        names(c.call(&["/interface/print", "?>.id=*3"]).await),
        ["ether4", "ether5"]
    );
    assert_eq!(
        names(c.call(&["/interface/print", "?<.id=*2"]).await),
        ["ether1"]
    );
    assert_eq!(
        names(c.call(&["/interface/print", "?-name"]).await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(c.call(&["/interface/print", "?mtu", "?name=ether5"]).await),
        ["ether5"]
    );
    let either = c
        .call(&["/interface/print", "?name=ether1", "?name=ether4", "?#|"])
        .await;
    assert_eq!(names(either), ["ether1", "ether4"]);

    let slim = c
        .call(&["/interface/print", "=.proplist=name,mtu", "?name=ether1"])
        .await;
    assert_eq!(rows(&slim)[0].names(), ["name", "mtu"]);
    assert_eq!(rows(&slim)[0].text("mtu"), Some("1500"));

    let count = c.call(&["/interface/print", "=count-only="]).await;
    assert_eq!(count[0].text("ret"), Some("5"));
}

#[tokio::test]
async fn system_menus_describe_the_simulated_board_and_version() {
    let sim = one_router("6.49.10").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let resource = c.call(&["/system/resource/print"]).await;
    assert_eq!(resource.len(), 2);
    let r = &resource[0];
    assert_eq!(r.text("version"), Some("6.49.10 (stable)"));
    assert_eq!(r.get(".id"), None, "a one-item menu has no ids");
    for field in [
        "uptime",
        "build-time",
        "free-memory",
        "total-memory",
        "cpu",
        "cpu-count",
        "cpu-frequency",
        "cpu-load",
        "free-hdd-space",
        "total-hdd-space",
        "architecture-name",
        "board-name",
        "platform",
    ] {
        assert!(r.get(field).is_some(), "missing {field}");
    }
    assert_eq!(r.text("cpu"), Some("ARMv7"));
    assert_eq!(r.text("platform"), Some("MikroTik"));

    let board = c.call(&["/system/routerboard/getall"]).await;
    assert!(board[0].text("serial-number").is_some() && board[0].text("model").is_some());

    let ifaces = c.call(&["/interface/print"]).await;
    let ids: Vec<_> = rows(&ifaces)
        .iter()
        .map(|r| r.text(".id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["*1", "*2", "*3", "*4", "*5"]);
    assert!(rows(&ifaces)
        .iter()
        .all(|r| r.text("running") == Some("true")));
}

#[tokio::test]
async fn unknown_commands_name_the_first_unknown_word() {
    let sim = one_router("7.18.2").await;
    let mut c = Client::logged_in(&sim.routers()[0]).await;
    let reply = c.call(&["/ip/route/print", ".tag=u"]).await;
    assert!(reply[0].is("!trap") && reply[1].is("!done"));
    assert_eq!(reply[0].text("category"), Some("0"));
    assert_eq!(
        reply[0].text("message"),
        Some("no such command or directory (route)")
    );
    let verb = c.call(&["/ip/address/frob"]).await;
    assert_eq!(
        verb[0].text("message"),
        Some("no such command or directory (frob)")
    );
}

#[tokio::test]
async fn routers_share_nothing_and_get_versions_in_turn() {
    let cfg = cloudpilot::sim::SimConfig {
        routers: 3,
        versions: vec!["7.18.2".into(), "6.49.10".into()],
        ..cloudpilot::sim::SimConfig::default()
    };
    let sim = cloudpilot::sim::Simulator::start(cfg).await.unwrap();
    let versions: Vec<_> = sim.routers().iter().map(|r| r.version.as_str()).collect();
    assert_eq!(versions, ["7.18.2", "6.49.10", "7.18.2"]);
    let mut ports: Vec<_> = sim.routers().iter().map(|r| r.port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3);

    let mut first = Client::logged_in(&sim.routers()[0]).await;
    first.call(&["/system/identity/set", "=name=changed"]).await;
    let mut third = Client::logged_in(&sim.routers()[2]).await;
    let name = third.call(&["/system/identity/print"]).await;
    assert_eq!(name[0].text("name"), Some("sim-2"));
}
