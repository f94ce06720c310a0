//! One logged-in, multiplexed connection to a router's API port.
//!
//! [`Connection`] is cheap to clone; every clone drives the same session (see
//! [`super::session`]): many commands in flight at once, replies matched by `.tag`, no
//! client-side read timeout while a long command streams rows. When the last clone is
//! dropped the connection closes. Reconnecting is the caller's job: [`Connection::closed`]
//! says when and why.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Framed;

use super::codec::SentenceCodec;
pub use super::command::Command;
pub use super::error::ClientError;
use super::login::login;
use super::sentence::Attrs;
use super::session::{Session, Waiter};
use super::tls::{self, TlsMode};

/// Who to log in as.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// Hides the password so that credentials can appear in logs and panics.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Limits for bringing a connection up. Nothing here bounds a command once logged in.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub connect_timeout: Duration,
    pub login_timeout: Duration,
    /// Idle time before TCP keepalive probes start; keeps NAT and firewall state alive.
    pub tcp_keepalive: Option<Duration>,
    /// API-SSL: TLS over the TCP connection before login, checked this way; `None` speaks
    /// the plain API. The TLS handshake shares `connect_timeout` with the TCP connect.
    pub tls: Option<TlsMode>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            login_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(60)),
            tls: None,
        }
    }
}

/// What a finished command returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// One entry per `!re`.
    pub rows: Vec<Attrs>,
    /// Attributes of `!done`, such as `ret` after `add`.
    pub done: Attrs,
    /// The router said `!empty`: the command matched nothing.
    pub empty: bool,
}

/// A logged-in connection; clones share it.
#[derive(Clone)]
pub struct Connection {
    handle: Arc<Handle>,
}

/// Closes the session when the last [`Connection`] clone goes away; the reader and writer
/// tasks hold the session itself and would otherwise keep it open.
struct Handle {
    session: Arc<Session>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.session.shut_down(ClientError::Closed);
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("in_flight", &self.in_flight())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Opens TCP to `host:port` (TCP_NODELAY, keepalive when configured), runs the TLS
    /// handshake when `opts.tls` asks for API-SSL, and logs in.
    pub async fn connect(
        host: &str,
        port: u16,
        creds: &Credentials,
        opts: &ConnectOptions,
    ) -> Result<Connection, ClientError> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let started = tokio::time::Instant::now();
        let stream = match tokio::time::timeout(
            opts.connect_timeout,
            TcpStream::connect((host, port)),
        )
        .await
        {
            Err(_) => return Err(ClientError::ConnectTimeout { addr }),
            Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
            Ok(Ok(stream)) => stream,
        };
        if let Err(source) = tune_socket(&stream, opts) {
            return Err(ClientError::Connect { addr, source });
        }
        let Some(mode) = &opts.tls else {
            tracing::debug!(router.addr = %addr, "connected, logging in");
            return Self::handshake(stream, creds, opts).await;
        };
        let left = opts.connect_timeout.saturating_sub(started.elapsed());
        let stream = tls::connect(stream, host, &addr, mode, left).await?;
        tracing::debug!(router.addr = %addr, "connected over TLS, logging in");
        Self::handshake(stream, creds, opts).await
    }

    /// Logs in over an already-open stream (tests, TLS) and starts the session tasks.
    pub async fn handshake<S>(
        stream: S,
        creds: &Credentials,
        opts: &ConnectOptions,
    ) -> Result<Connection, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let mut framed = Framed::new(stream, SentenceCodec::default());
        let exchange = login(&mut framed, &creds.username, &creds.password);
        match tokio::time::timeout(opts.login_timeout, exchange).await {
            Err(_) => return Err(ClientError::LoginTimeout),
            Ok(result) => result?,
        }
        let session = Session::start(framed);
        Ok(Connection {
            handle: Arc::new(Handle { session }),
        })
    }

    fn session(&self) -> &Arc<Session> {
        &self.handle.session
    }

    /// Runs a command to its `!done` and returns every row.
    pub async fn call(&self, cmd: Command) -> Result<Response, ClientError> {
        self.run(cmd, None).await
    }

    /// Like [`Connection::call`], but gives up after `timeout`: the command is cancelled on
    /// the router, its late replies are drained, and the connection stays usable.
    pub async fn call_timeout(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        self.run(cmd, Some(timeout)).await
    }

    async fn run(&self, cmd: Command, timeout: Option<Duration>) -> Result<Response, ClientError> {
        let (tx, mut rx) = oneshot::channel();
        let tag = self.session().submit(&cmd, Waiter::call(tx))?;
        // Dropping this future before the answer cancels the command on the router.
        let mut guard = CancelOnDrop {
            session: self.session().clone(),
            tag,
            armed: true,
        };
        let outcome = match timeout {
            None => (&mut rx).await,
            Some(limit) => match tokio::time::timeout(limit, &mut rx).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    guard.armed = false;
                    if self.session().abandon(&guard.tag) {
                        tracing::debug!(cmd.tag = %guard.tag, "command timed out");
                        return Err(ClientError::Timeout);
                    }
                    // It finished just as time ran out; the answer is already sent.
                    (&mut rx).await
                }
            },
        };
        guard.armed = false;
        outcome.unwrap_or(Err(ClientError::Closed))
    }

    /// Starts a command that may never finish (`listen`, `ping`, `=follow=`) and yields its
    /// rows as they come. Dropping the stream cancels the command on the router.
    pub fn stream(&self, cmd: Command) -> Result<ReplyStream, ClientError> {
        let (tx, rows) = mpsc::unbounded_channel();
        let tag = self.session().submit(&cmd, Waiter::stream(tx))?;
        Ok(ReplyStream {
            conn: self.clone(),
            tag,
            rows,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.session().closed_reason().is_some()
    }

    /// Resolves when the connection ends, with the reason.
    pub async fn closed(&self) -> ClientError {
        let mut watch = self.session().subscribe_closed();
        let reason = match watch.wait_for(|reason| reason.is_some()).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        reason.unwrap_or(ClientError::Closed)
    }

    /// Commands whose callers are still waiting.
    pub fn in_flight(&self) -> usize {
        self.session().in_flight()
    }

    /// Closes the connection; everything in flight fails with [`ClientError::Closed`].
    pub fn close(&self) {
        self.session().shut_down(ClientError::Closed);
    }

    /// Closes the session and returns once its socket is closed, so that the router has
    /// seen the session end before anything else connects in its place.
    pub async fn shutdown(&self) {
        self.close();
        self.session().io_finished().await;
    }
}

fn tune_socket(stream: &TcpStream, opts: &ConnectOptions) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    if let Some(idle) = opts.tcp_keepalive {
        let keepalive = TcpKeepalive::new()
            .with_time(idle)
            .with_interval(idle / 3 + Duration::from_secs(1));
        SockRef::from(stream).set_tcp_keepalive(&keepalive)?;
    }
    Ok(())
}

struct CancelOnDrop {
    session: Arc<Session>,
    tag: String,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.session.abandon(&self.tag);
        }
    }
}

/// Rows of a command that runs until cancelled. Ends after `!done`; yields an error for a
/// `!trap` or when the connection dies.
///
/// Rows are buffered without bound: a consumer slower than the router grows memory.
pub struct ReplyStream {
    /// Keeps the connection open while the stream lives.
    conn: Connection,
    tag: String,
    rows: mpsc::UnboundedReceiver<Result<Attrs, ClientError>>,
}

impl ReplyStream {
    /// The next row; `None` once the command has finished.
    pub async fn next(&mut self) -> Option<Result<Attrs, ClientError>> {
        self.rows.recv().await
    }

    /// The `.tag` the command runs under.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

impl Stream for ReplyStream {
    type Item = Result<Attrs, ClientError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rows.poll_recv(cx)
    }
}

impl Drop for ReplyStream {
    fn drop(&mut self) {
        self.conn.session().abandon(&self.tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections get TCP_NODELAY, and keepalive with the configured idle time.
    #[tokio::test]
    async fn tuned_socket_has_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let opts = ConnectOptions {
            tcp_keepalive: Some(Duration::from_secs(42)),
            ..ConnectOptions::default()
        };
        tune_socket(&stream, &opts).unwrap();
        let sock = SockRef::from(&stream);
        assert!(stream.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.keepalive_time().unwrap(), Duration::from_secs(42));
    }
}
