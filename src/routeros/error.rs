//! Why a connection or a command failed.
//!
//! One enum for the whole client, split by [`ClientError::is_connection_failure`] into
//! failures of the session (reconnect) and failures of one command (report, keep going).

use std::io;

use super::codec::FrameError;
use super::sentence::ProtocolError;
use super::tls::TlsError;

/// Everything that can go wrong between this process and a router's API port.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connecting to {addr} timed out")]
    ConnectTimeout { addr: String },
    /// API-SSL did not come up; nothing of the API was sent.
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("login rejected: {message}")]
    LoginRejected { message: String },
    #[error("login got no answer in time")]
    LoginTimeout,
    #[error("router refused the command: {message}")]
    Trap {
        message: String,
        category: Option<u32>,
    },
    #[error("router closed the session: {message}")]
    Fatal { message: String },
    #[error("connection lost: {reason}")]
    ConnectionLost { reason: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no complete answer in time; the command was cancelled")]
    Timeout,
    #[error("connection closed")]
    Closed,
}

impl ClientError {
    /// True when the session itself is gone or never came up, so the caller should
    /// reconnect; false when only one command failed (trap, timeout).
    pub fn is_connection_failure(&self) -> bool {
        !matches!(self, ClientError::Trap { .. } | ClientError::Timeout)
    }

    /// Maps a framing failure on the read side to the reason the connection ended.
    pub(crate) fn from_frame(err: FrameError) -> ClientError {
        match err {
            FrameError::Truncated => ClientError::ConnectionLost {
                reason: "router closed the connection in the middle of a sentence".into(),
            },
            FrameError::Io(e) => ClientError::ConnectionLost {
                reason: e.to_string(),
            },
            other @ (FrameError::ReservedPrefix(_) | FrameError::WordTooLong { .. }) => {
                ClientError::Protocol(other.to_string())
            }
        }
    }
}

impl From<ProtocolError> for ClientError {
    fn from(err: ProtocolError) -> Self {
        ClientError::Protocol(err.to_string())
    }
}

/// Cloned so that one connection failure can fail every command in flight.
impl Clone for ClientError {
    fn clone(&self) -> Self {
        match self {
            ClientError::Connect { addr, source } => ClientError::Connect {
                addr: addr.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            ClientError::ConnectTimeout { addr } => {
                ClientError::ConnectTimeout { addr: addr.clone() }
            }
            ClientError::Tls(err) => ClientError::Tls(err.clone()),
            ClientError::LoginRejected { message } => ClientError::LoginRejected {
                message: message.clone(),
            },
            ClientError::LoginTimeout => ClientError::LoginTimeout,
            ClientError::Trap { message, category } => ClientError::Trap {
                message: message.clone(),
                category: *category,
            },
            ClientError::Fatal { message } => ClientError::Fatal {
                message: message.clone(),
            },
            ClientError::ConnectionLost { reason } => ClientError::ConnectionLost {
                reason: reason.clone(),
            },
            ClientError::Protocol(m) => ClientError::Protocol(m.clone()),
            ClientError::Timeout => ClientError::Timeout,
            ClientError::Closed => ClientError::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trap_and_timeout_are_command_level() {
        assert!(!ClientError::Timeout.is_connection_failure());
        assert!(!ClientError::Trap {
            message: "x".into(),
            category: None
        }
        .is_connection_failure());
        for e in [
            ClientError::Closed,
            ClientError::LoginRejected {
                message: "x".into(),
            },
            ClientError::Fatal {
                message: "x".into(),
            },
            ClientError::ConnectionLost { reason: "x".into() },
            ClientError::Protocol("x".into()),
            ClientError::ConnectTimeout { addr: "a".into() },
            ClientError::Tls(TlsError::HandshakeTimeout { addr: "a".into() }),
        ] {
            assert!(e.is_connection_failure(), "{e}");
        }
    }
}
