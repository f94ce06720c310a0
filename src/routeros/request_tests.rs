//! Unit tests for `RestRequest::parse`: normalisation and the client-facing refusals.

use serde_json::json;

use super::*;

fn get(command: &str) -> Result<RestRequest, InvalidRequest> {
    RestRequest::parse(None, command, None, None)
}

fn message(r: Result<RestRequest, InvalidRequest>) -> String {
    r.unwrap_err().message
}

#[test]
fn spellings_of_a_menu_normalise_to_one_path() {
    for spelling in [
        "system/resource",
        "/system/resource",
        "/system resource print",
        "/system/resource/print",
        "system/resource/getall",
        "  /system//resource/ ",
    ] {
        let req = get(spelling).unwrap();
        assert_eq!(req.command, "system/resource", "{spelling}");
        assert_eq!(req.method, RestMethod::Get);
    }
    assert_eq!(get("/ip address print").unwrap().command, "ip/address");
}

#[test]
fn post_keeps_its_verb_and_getall_becomes_print() {
    let post = |c| {
        RestRequest::parse(Some("post"), c, None, None)
            .unwrap()
            .command
    };
    assert_eq!(
        post("/interface/monitor-traffic"),
        "interface/monitor-traffic"
    );
    assert_eq!(post("ip/address/getall"), "ip/address/print");
    assert_eq!(post("/ip address print"), "ip/address/print");
}

#[test]
fn method_is_case_insensitive_and_defaults_to_get() {
    let m = |s| {
        RestRequest::parse(s, "ip/address/*1", None, None)
            .unwrap()
            .method
    };
    assert_eq!(m(None), RestMethod::Get);
    assert_eq!(m(Some("delete")), RestMethod::Delete);
    assert_eq!(m(Some("Patch")), RestMethod::Patch);
    assert_eq!(
        message(RestRequest::parse(Some("FETCH"), "ip/address", None, None)),
        "Invalid HTTP method. Must be GET, POST, PUT, PATCH, or DELETE"
    );
}

#[test]
fn empty_command_is_required() {
    for c in ["", "   ", "/", "print"] {
        assert_eq!(message(get(c)), "Command is required", "{c:?}");
    }
}

#[test]
fn record_ids_are_split_from_the_menu() {
    let req = get("/ip/address/*1A").unwrap();
    assert_eq!((req.menu(), req.record_id()), ("ip/address", Some("*1A")));
    let req = get("ip/address").unwrap();
    assert_eq!((req.menu(), req.record_id()), ("ip/address", None));
    assert!(message(get("ip/*1/address")).contains("last part"));
    assert!(message(get("*1")).contains("menu in front"));
}

#[test]
fn ids_required_or_refused_by_method() {
    let parse = |m, c| RestRequest::parse(Some(m), c, None, None);
    assert!(message(parse("DELETE", "ip/address")).contains("needs a record id"));
    assert!(message(parse("PATCH", "ip/address")).contains("needs a record id"));
    assert!(message(parse("PUT", "ip/address/*1")).contains("does not take a record id"));
    assert_eq!(parse("PUT", "ip/address").unwrap().command, "ip/address");
}

#[test]
fn characters_outside_menu_names_are_refused() {
    for c in [
        "ip/address\n",
        "ip/addr\u{0}ess",
        "ip/address;reboot",
        "ip/=x",
        "ip/?a",
        "ip/é",
    ] {
        assert!(get(c).is_err(), "{c:?} should be refused");
    }
}

#[test]
fn values_become_strings_and_other_shapes_are_refused() {
    let params =
        json!({"disabled": false, "mtu": 1500, "comment": "0000", ".proplist": ["address", ".id"]});
    let req = RestRequest::parse(None, "ip/address", Some(&params), None).unwrap();
    assert_eq!(req.params["disabled"], json!("false"));
    assert_eq!(req.params["mtu"], json!("1500"));
    assert_eq!(req.params["comment"], json!("0000"));
    assert_eq!(req.params[".proplist"], json!("address,.id"));

    let bad = |params: serde_json::Value| {
        message(RestRequest::parse(None, "ip/address", Some(&params), None))
    };
    assert!(bad(json!({"a": null})).contains("string, number or boolean"));
    assert!(bad(json!({"a": [1]})).contains("string, number or boolean"));
    assert!(bad(json!({"a": {"b": "c"}})).contains("string, number or boolean"));
    assert!(bad(json!(["a"])).contains("must be a JSON object"));
    assert!(bad(json!({"a=b": "c"})).contains("names may not"));
    assert!(bad(json!({"": "c"})).contains("names may not"));
}

#[test]
fn query_words_only_for_post_and_must_start_with_question_mark() {
    let data = json!({".query": ["?type=ether", "?#|"]});
    let req = RestRequest::parse(Some("POST"), "interface/print", None, Some(&data)).unwrap();
    assert_eq!(req.data[".query"], json!(["?type=ether", "?#|"]));
    let put = RestRequest::parse(Some("PUT"), "ip/address", None, Some(&data));
    assert!(message(put).contains("only honoured with POST"));
    let bad = json!({".query": ["type=ether"]});
    let post = RestRequest::parse(Some("POST"), "interface/print", None, Some(&bad));
    assert!(message(post).contains("starting with '?'"));
}

#[test]
fn params_only_with_get_and_data_not_with_get_or_delete() {
    let p = json!({"a": "b"});
    assert!(RestRequest::parse(Some("POST"), "x/y", Some(&p), None).is_err());
    assert!(RestRequest::parse(Some("GET"), "x/y", None, Some(&p)).is_err());
    assert!(RestRequest::parse(Some("DELETE"), "x/y/*1", None, Some(&p)).is_err());
    assert!(RestRequest::parse(Some("PUT"), "x/y", None, Some(&p)).is_ok());
}

#[test]
fn latin1_list_must_name_present_values_within_u00ff() {
    let ok = json!({"comment": "caf\u{e9}", ".latin1": "comment"});
    assert!(RestRequest::parse(Some("PUT"), "ip/address", None, Some(&ok)).is_ok());
    let wide = json!({"comment": "\u{20ac}", ".latin1": "comment"});
    let err = message(RestRequest::parse(
        Some("PUT"),
        "ip/address",
        None,
        Some(&wide),
    ));
    assert!(err.contains("above U+00FF"), "{err}");
    let missing = json!({"comment": "x", ".latin1": "name"});
    let err = message(RestRequest::parse(
        Some("PUT"),
        "ip/address",
        None,
        Some(&missing),
    ));
    assert!(err.contains("not a value"), "{err}");
}
