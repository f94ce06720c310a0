//! JSON whose strings are bytes: how REST bodies carry RouterOS values, which need not be
//! UTF-8, in both directions. Shared by [`super::RestClient`] and the simulator's REST server.
//!
//! Writing: a string value is written as its raw bytes, with only `"`, `\` and control
//! bytes escaped, so a value that is not UTF-8 makes a body that is not UTF-8 either.
//!
//! Reading: a body that is valid UTF-8 is ordinary JSON and a string's bytes are its UTF-8
//! encoding. A body that is not valid UTF-8 (a router that wrote stored bytes as they are)
//! is read byte for byte as Latin-1, which maps every byte to one character and back, so
//! each string gets back exactly the bytes that were sent. In that mode a `\u00XX` escape
//! also stands for the byte `XX`; an escape above U+00FF stands for its UTF-8 encoding.
//!
//! Objects keep their order, so `".latin1"` lists names in the order the router sent them,
//! the same as over the API (see [`crate::routeros::request`]).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON document whose strings (and object keys) are bytes, objects in wire order.
#[derive(Clone, Debug, PartialEq)]
pub enum RawJson {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(Vec<u8>),
    List(Vec<RawJson>),
    Object(Vec<(Vec<u8>, RawJson)>),
}

/// Reads a body as described in the module doc.
pub fn parse(body: &[u8]) -> Result<RawJson, serde_json::Error> {
    match std::str::from_utf8(body) {
        Ok(text) => Ok(serde_json::from_str::<Tree>(text)?.into_raw(false)),
        Err(_) => {
            let text: String = body.iter().map(|&b| b as char).collect();
            Ok(serde_json::from_str::<Tree>(&text)?.into_raw(true))
        }
    }
}

impl RawJson {
    /// The value the way `execute` shows it: strings as text when they are UTF-8, otherwise
    /// one character per byte, with the object's `".latin1"` naming such attributes.
    pub fn into_value(self) -> Value {
        match self {
            RawJson::Null => Value::Null,
            RawJson::Bool(b) => Value::Bool(b),
            RawJson::Number(n) => Value::Number(n),
            RawJson::Text(bytes) => Value::String(shown(&bytes).0),
            RawJson::List(items) => Value::Array(items.into_iter().map(Self::into_value).collect()),
            RawJson::Object(fields) => {
                let mut object = Map::new();
                let mut latin1 = Vec::new();
                for (name, value) in fields {
                    let name = String::from_utf8_lossy(&name).into_owned();
                    let value = match value {
                        RawJson::Text(bytes) => {
                            let (text, is_latin1) = shown(&bytes);
                            if is_latin1 {
                                latin1.push(name.clone());
                            }
                            Value::String(text)
                        }
                        other => other.into_value(),
                    };
                    object.insert(name, value);
                }
                if !latin1.is_empty() {
                    object.insert(".latin1".into(), Value::String(latin1.join(",")));
                }
                Value::Object(object)
            }
        }
    }

    /// The bytes of a string, or the JSON text of a number or boolean (how RouterOS takes
    /// arguments); `None` for anything else.
    pub fn as_argument(&self) -> Option<Vec<u8>> {
        match self {
            RawJson::Text(bytes) => Some(bytes.clone()),
            RawJson::Number(n) => Some(n.to_string().into_bytes()),
            RawJson::Bool(b) => Some(b.to_string().into_bytes()),
            _ => None,
        }
    }
}

/// UTF-8 text as it is, anything else one character per byte (and `true` to say so).
fn shown(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (bytes.iter().map(|&b| b as char).collect(), true),
    }
}

/// Appends `bytes` as a JSON string, raw except for the escapes JSON requires.
pub fn write_text(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1F | 0x7F => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Appends an object of string values, in the order given.
pub fn write_object<'a>(out: &mut Vec<u8>, fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
    out.push(b'{');
    for (i, (name, value)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_text(out, name);
        out.push(b':');
        write_text(out, value);
    }
    out.push(b'}');
}

/// A parsed document before its strings are turned into bytes (which depends on the mode).
enum Tree {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
    List(Vec<Tree>),
    Object(Vec<(String, Tree)>),
}

impl Tree {
    fn into_raw(self, latin1: bool) -> RawJson {
        let bytes = |text: String| -> Vec<u8> {
            if !latin1 {
                return text.into_bytes();
            }
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                match u8::try_from(u32::from(c)) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                }
            }
            out
        };
        match self {
            Tree::Null => RawJson::Null,
            Tree::Bool(b) => RawJson::Bool(b),
            Tree::Number(n) => RawJson::Number(n),
            Tree::Text(text) => RawJson::Text(bytes(text)),
            Tree::List(items) => {
                RawJson::List(items.into_iter().map(|t| t.into_raw(latin1)).collect())
            }
            Tree::Object(fields) => RawJson::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (bytes(k), v.into_raw(latin1)))
                    .collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tree, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Tree, E> {
        Ok(Tree::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Tree, E> {
        Ok(Tree::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Tree, E> {
        Ok(Tree::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Tree, E> {
        Ok(Tree::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Tree, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Tree::Null, Tree::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
        Ok(Tree::Text(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Tree, E> {
        Ok(Tree::Text(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Tree>()? {
            items.push(item);
        }
        Ok(Tree::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree, A::Error> {
        let mut fields = Vec::new();
        while let Some((name, value)) = map.next_entry::<String, Tree>()? {
            fields.push((name, value));
        }
        Ok(Tree::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_utf8_values_round_trip_and_are_marked_latin1_in_wire_order() {
        let mut body = Vec::new();
        write_object(
            &mut body,
            [
                (&b"name"[..], &b"\xff\x00"[..]),
                (b"comment", b"caf\xe9 \"q\"\\"),
                (b"mtu", b"0000"),
            ],
        );
        assert!(std::str::from_utf8(&body).is_err());
        let raw = parse(&body).unwrap();
        let RawJson::Object(fields) = &raw else {
            panic!("object expected")
        };
        assert_eq!(fields[1].1, RawJson::Text(b"caf\xe9 \"q\"\\".to_vec()));
        assert_eq!(
            raw.into_value(),
            json!({"name": "\u{ff}\u{0}", "comment": "caf\u{e9} \"q\"\\", "mtu": "0000",
                   ".latin1": "name,comment"})
        );
    }

    #[test]
    fn a_utf8_body_is_plain_json_and_escapes_decode_as_text() {
        let raw = parse("{\"comment\":\"été \\u00e9\",\"n\":[1,true,null]}".as_bytes()).unwrap();
        assert_eq!(
            raw.into_value(),
            json!({"comment": "été é", "n": [1, true, null]})
        );
    }

    #[test]
    fn control_bytes_are_escaped_so_the_output_is_valid_json() {
        let mut out = Vec::new();
        write_text(&mut out, b"a\nb\x01\x7f");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\nb\u{1}\u{7f}");
    }
}
