//! What nodes send each other through Redis streams, as bincode 2 (standard config).
//!
//! JSON values (`serde_json::Value`) are self-describing and bincode is not, so they travel
//! as JSON text inside the bincode record.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fleet::ExecError;
use crate::routeros::request::{CommandFailure, RestMethod, RestRequest};
use crate::store::RouterId;

/// An entry of a node's inbox stream.
#[derive(Debug, Serialize, Deserialize)]
pub enum Envelope {
    /// Run a command on a router this node owns and answer on `reply_to`'s reply stream.
    Execute(Forwarded),
    /// A router was added, edited or deleted elsewhere: (re)load or close its session.
    Reload {
        router_id: RouterId,
        reconnect: bool,
    },
    /// Start a long-running command and relay its rows to `reply_to`'s reply stream.
    Stream(StreamStart),
    /// The asker of a relayed stream went away: cancel it.
    Cancel { request_id: String },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StreamStart {
    pub request_id: String,
    pub router_id: RouterId,
    pub request: WireRequest,
    /// Time allowed to start the command on the router.
    pub start_within_ms: u64,
    /// How long the stream may run at most.
    pub lasts_ms: u64,
    pub reply_to: String,
}

/// One step of a relayed stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StreamEvent {
    /// The command runs on the router; rows follow.
    Started,
    /// It could not start; the outcome says why.
    Refused(Outcome),
    /// One `!re` row as a JSON object (text).
    Row(String),
    Done,
    Trap {
        message: String,
        category: Option<u32>,
    },
    /// The connection failed or the relay broke.
    Error(String),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    /// The key of the command's execution record (the client's idempotency key when it
    /// gave one, so two copies of one command share it).
    pub request_id: String,
    /// Unique per hand-over: the reply carries it back to the request waiting for it.
    pub reply_id: String,
    pub router_id: RouterId,
    pub request: WireRequest,
    pub timeout_ms: u64,
    /// Wall-clock milliseconds since the Unix epoch after which the command must not start.
    pub deadline_ms: i64,
    /// The asking node, whose reply stream gets the outcome.
    pub reply_to: String,
    /// Make a fresh connection attempt if the router is offline (`test-connection`).
    pub fresh: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WireRequest {
    method: RestMethod,
    command: String,
    params: String,
    data: String,
}

impl From<&RestRequest> for WireRequest {
    fn from(req: &RestRequest) -> Self {
        WireRequest {
            method: req.method,
            command: req.command.clone(),
            params: Value::Object(req.params.clone()).to_string(),
            data: Value::Object(req.data.clone()).to_string(),
        }
    }
}

impl WireRequest {
    pub fn into_request(self) -> Result<RestRequest, String> {
        let map = |text: &str| -> Result<Map<String, Value>, String> {
            serde_json::from_str(text).map_err(|e| format!("bad forwarded request: {e}"))
        };
        Ok(RestRequest {
            method: self.method,
            params: map(&self.params)?,
            data: map(&self.data)?,
            command: self.command,
        })
    }
}

/// The outcome of a command, as recorded and as sent back to the asking node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// The result as JSON text.
    Done(String),
    Trap {
        message: String,
        category: Option<u32>,
    },
    NotFound(String),
    Timeout,
    Unreachable(String),
    Backlog,
    Unavailable(String),
}

impl From<&Result<Value, ExecError>> for Outcome {
    fn from(result: &Result<Value, ExecError>) -> Self {
        match result {
            Ok(v) => Outcome::Done(v.to_string()),
            Err(ExecError::Backlog) => Outcome::Backlog,
            Err(ExecError::Unavailable(m)) => Outcome::Unavailable(m.clone()),
            Err(ExecError::NoSession) => Outcome::Unreachable(crate::fleet::NO_SESSION.to_string()),
            Err(ExecError::Failed(f)) => match f {
                CommandFailure::Trap { message, category } => Outcome::Trap {
                    message: message.clone(),
                    category: *category,
                },
                CommandFailure::NotFound { message } => Outcome::NotFound(message.clone()),
                CommandFailure::Timeout => Outcome::Timeout,
                CommandFailure::Unreachable { message } => Outcome::Unreachable(message.clone()),
            },
        }
    }
}

impl Outcome {
    /// The command never reached the router (no connection could be made): nothing to
    /// remember, a retry with the same key should try again.
    pub fn never_sent(&self) -> bool {
        matches!(self, Outcome::Unreachable(m) if m.starts_with("cannot connect"))
            || matches!(self, Outcome::Backlog)
    }

    pub fn into_result(self) -> Result<Value, ExecError> {
        let failed = |f| Err(ExecError::Failed(f));
        match self {
            Outcome::Done(text) => serde_json::from_str(&text)
                .map_err(|e| ExecError::Unavailable(format!("bad recorded result: {e}"))),
            Outcome::Trap { message, category } => {
                failed(CommandFailure::Trap { message, category })
            }
            Outcome::NotFound(message) => failed(CommandFailure::NotFound { message }),
            Outcome::Timeout => failed(CommandFailure::Timeout),
            Outcome::Unreachable(message) => failed(CommandFailure::Unreachable { message }),
            Outcome::Backlog => Err(ExecError::Backlog),
            Outcome::Unavailable(m) => Err(ExecError::Unavailable(m)),
        }
    }
}

/// An entry of a node's reply stream.
#[derive(Debug, Serialize, Deserialize)]
pub struct Reply {
    /// The waiting request: a forward's `reply_id`, a stream's `request_id`.
    pub request_id: String,
    pub body: ReplyBody,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum ReplyBody {
    /// The outcome of a forwarded command.
    Outcome(Outcome),
    /// The next step of a relayed stream.
    Stream(StreamEvent),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .expect("wire types always encode")
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_commands_round_trip() {
        let req = RestRequest::parse(
            Some("PUT"),
            "/ip/address",
            None,
            Some(&serde_json::json!({"address": "10.0.0.1/24", "comment": "é"})),
        )
        .unwrap();
        let env = Envelope::Execute(Forwarded {
            request_id: "r1".into(),
            reply_id: "t1".into(),
            router_id: 7,
            request: WireRequest::from(&req),
            timeout_ms: 500,
            deadline_ms: 1,
            reply_to: "n".into(),
            fresh: false,
        });
        let back: Envelope = decode(&encode(&env)).unwrap();
        let Envelope::Execute(f) = back else {
            panic!("wrong kind")
        };
        assert_eq!(f.request.into_request().unwrap(), req);
        let outcome = Outcome::from(&Ok(serde_json::json!([{".id": "*1"}])));
        let back: Outcome = decode(&encode(&outcome)).unwrap();
        assert_eq!(back.into_result().unwrap()[0][".id"], "*1");
        assert!(decode::<Reply>(b"\xff\xff").is_err());
    }
}
