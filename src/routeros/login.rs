//! The login exchange, run once on a fresh stream before replies are multiplexed.
//!
//! RouterOS 6.43 and later accept `/login =name=U =password=P` directly. Older versions
//! answer that with `!done =ret=<challenge>` and expect an MD5 response, so the new form
//! is sent first and the challenge is answered only when `=ret=` comes back. A refusal is
//! a `!trap`; nothing here searches reply text for "error".

use futures::{SinkExt, StreamExt};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use super::codec::{Sentence, SentenceCodec};
use super::error::ClientError;
use super::sentence::{Attrs, Reply, ReplyKind};

/// Logs in as `username`; the password is sent verbatim, whatever bytes it holds.
pub(crate) async fn login<S>(
    framed: &mut Framed<S, SentenceCodec>,
    username: &str,
    password: &str,
) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let first = Sentence::new()
        .word("/login")
        .word(format!("=name={username}"))
        .word(format!("=password={password}"));
    send(framed, first).await?;
    let done = read_outcome(framed).await?;
    let Some(ret) = done.get("ret") else {
        tracing::debug!(user = %username, "logged in");
        return Ok(());
    };
    let challenge = hex::decode(ret)
        .map_err(|_| ClientError::Protocol("login challenge in =ret= is not hex".into()))?;
    tracing::debug!(user = %username, "router asked for the pre-6.43 challenge login");
    let answer = Sentence::new()
        .word("/login")
        .word(format!("=name={username}"))
        .word(format!(
            "=response={}",
            challenge_response(password.as_bytes(), &challenge)
        ));
    send(framed, answer).await?;
    read_outcome(framed).await?;
    tracing::debug!(user = %username, "logged in with challenge");
    Ok(())
}

/// The `=response=` value of the pre-6.43 login: `00` then hex MD5 of a zero byte, the
/// password and the challenge bytes.
pub fn challenge_response(password: &[u8], challenge: &[u8]) -> String {
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password);
    md5.update(challenge);
    format!("00{}", hex::encode(md5.finalize()))
}

async fn send<S>(framed: &mut Framed<S, SentenceCodec>, s: Sentence) -> Result<(), ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    framed
        .send(s)
        .await
        .map_err(|e| ClientError::ConnectionLost {
            reason: format!("writing login: {e}"),
        })
}

/// Reads replies up to `!done`; a `!trap` before it makes the outcome a rejection.
async fn read_outcome<S>(framed: &mut Framed<S, SentenceCodec>) -> Result<Attrs, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut trap: Option<String> = None;
    loop {
        let sentence = match framed.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) => return Err(ClientError::from_frame(e)),
            None => {
                return Err(match trap {
                    Some(message) => ClientError::LoginRejected { message },
                    None => ClientError::ConnectionLost {
                        reason: "router closed the connection during login".into(),
                    },
                })
            }
        };
        let reply = Reply::parse(sentence)?;
        match reply.kind {
            ReplyKind::Trap => {
                trap.get_or_insert_with(|| reply.trap_message());
            }
            ReplyKind::Done => {
                return match trap {
                    Some(message) => Err(ClientError::LoginRejected { message }),
                    None => Ok(reply.attrs),
                }
            }
            ReplyKind::Fatal => {
                let raw = reply.message.unwrap_or_default();
                let message = String::from_utf8_lossy(&raw).into_owned();
                return Err(ClientError::Fatal { message });
            }
            ReplyKind::Re | ReplyKind::Empty => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_response_matches_the_documented_vectors() {
        let c1 = hex::decode("93b438ec9b80057c06dd9fe67d56aa9a").unwrap();
        assert_eq!(
            challenge_response(b"", &c1),
            "00e134102a9d330dd7b1849fedfea3cb57"
        );
        let c2 = hex::decode("856780b7411eefd3abadee2058c149a3").unwrap();
        assert_eq!(
            challenge_response(b"", &c2),
            "005062f7a5ef124d34675bf3e81f56c556"
        );
    }
}
