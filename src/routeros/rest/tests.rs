//! Unit tests of the request encoding and answer shaping of the REST client.

use bytes::Bytes;
use http::StatusCode;
use serde_json::json;

use super::answer::{category_of, project, record_of_print, success, Reply};
use super::pool::Answer;
use super::*;

fn map(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn reply(status: u16, body: &str) -> Reply {
    Reply(Answer {
        status: StatusCode::from_u16(status).unwrap(),
        body: Bytes::from(body.to_owned()),
    })
}

#[test]
fn get_params_become_a_query_string_with_raw_bytes_percent_encoded() {
    let params = map(
        json!({".proplist": "address,.id", "comment": "caf\u{e9} x&y",
                            ".latin1": "comment"}),
    );
    let query = query_string(&params);
    let mut parts: Vec<&str> = query.split('&').collect();
    parts.sort();
    assert_eq!(parts, [".proplist=address,.id", "comment=caf%E9%20x%26y"]);
}

#[test]
fn json_bodies_carry_latin1_values_as_single_bytes_and_skip_what_they_are_told() {
    let data = map(
        json!({"comment": "\u{e9}", "name": "\u{e9}", ".latin1": "comment",
                          ".proplist": "name"}),
    );
    let body = json_body(&data, &[".latin1", ".proplist"]);
    let raw = json::parse(&body).unwrap();
    let json::RawJson::Object(mut fields) = raw else {
        panic!("object expected")
    };
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        fields,
        vec![
            (b"comment".to_vec(), json::RawJson::Text(vec![0xE9])),
            (
                b"name".to_vec(),
                json::RawJson::Text("\u{e9}".as_bytes().to_vec())
            ),
        ]
    );
}

#[test]
fn trap_categories_are_restored_for_the_messages_routeros_fixes_them_for() {
    assert_eq!(category_of("no such command or directory (route)"), Some(0));
    assert_eq!(
        category_of("missing value(s) of argument(s) address"),
        Some(1)
    );
    assert_eq!(category_of("invalid value for argument address"), Some(1));
    assert_eq!(category_of("interrupted"), Some(2));
    assert_eq!(category_of("failure: already have such address"), None);
}

#[test]
fn error_answers_map_to_the_failures_the_api_path_gives() {
    let trap = success(
        reply(
            400,
            r#"{"error":400,"message":"Bad Request","detail":"unknown parameter x"}"#,
        ),
        None,
    );
    assert_eq!(
        trap,
        Err(CommandFailure::Trap {
            message: "unknown parameter x".into(),
            category: Some(1)
        })
    );
    let missing = success(
        reply(404, r#"{"error":404,"message":"Not Found"}"#),
        Some("*7"),
    );
    assert_eq!(
        missing,
        Err(CommandFailure::NotFound {
            message: "no such item (*7)".into()
        })
    );
    let by_detail = success(
        reply(
            400,
            r#"{"error":400,"message":"Bad Request","detail":"no such item"}"#,
        ),
        Some("*7"),
    );
    assert!(matches!(by_detail, Err(CommandFailure::NotFound { .. })));
    let refused = success(reply(401, ""), None);
    assert!(matches!(refused, Err(CommandFailure::Unreachable { .. })));
    assert_eq!(success(reply(204, ""), Some("*7")), Ok(Value::Null));
    let garbage = success(reply(502, "<html>"), None);
    assert!(matches!(garbage, Err(CommandFailure::Unreachable { .. })));
}

#[test]
fn projection_keeps_the_proplist_and_its_latin1_names() {
    let record = json!({".id": "*1", "address": "a", "comment": "\u{e9}", "name": "\u{ff}",
                        ".latin1": "comment,name"});
    assert_eq!(
        project(record, "comment,address"),
        json!({"address": "a", "comment": "\u{e9}", ".latin1": "comment"})
    );
}

#[test]
fn printed_rows_shape_like_a_get() {
    let one_item = json!([{"name": "r1"}]);
    assert_eq!(
        record_of_print(one_item, None, false),
        Ok(json!({"name": "r1"}))
    );
    let listed = json!([{".id": "*1", "address": "a"}]);
    assert_eq!(
        record_of_print(listed.clone(), None, true),
        Ok(json!([{"address": "a"}]))
    );
    assert_eq!(
        record_of_print(listed, Some("*1"), false),
        Ok(json!({".id": "*1", "address": "a"}))
    );
    assert!(matches!(
        record_of_print(json!([]), Some("*9"), false),
        Err(CommandFailure::NotFound { .. })
    ));
}
