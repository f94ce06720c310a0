//! The RouterOS API: framing, reply parsing, login, tagged multiplexing with cancel, and
//! the mapping of REST-style requests onto API sentences.
//!
//! - [`codec`]: words and sentences on the wire.
//! - [`sentence`]: reply sentences parsed into [`Reply`].
//! - [`command`]: commands to send.
//! - [`client`]: [`Connection`], one logged-in connection shared by many commands.
//! - [`request`]: `execute-command` requests (`GET ip/address`) run over a connection.
//! - [`rest`]: the same requests sent to a RouterOS v7 router's REST API instead.
//! - [`tls`]: API-SSL: how a router's certificate is checked, and the OpenSSL handshake.
//!
//! It knows nothing of actors or HTTP servers: `fleet` owns sessions, `api` owns HTTP.

pub mod client;
pub mod codec;
pub mod command;
pub mod error;
mod execute;
mod login;
pub mod request;
pub mod rest;
pub mod sentence;
mod session;
pub mod tls;

pub use client::{ConnectOptions, Connection, Credentials, ReplyStream, Response};
pub use command::Command;
pub use error::ClientError;
pub use login::challenge_response;
pub use request::{execute, CommandFailure, InvalidRequest, RestMethod, RestRequest};
pub use rest::RestClient;
pub use sentence::{Attrs, ProtocolError, Reply, ReplyKind};
pub use tls::{TlsError, TlsMode};
