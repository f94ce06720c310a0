//! Keep-alive HTTP/1.1 connections to one router, reused across requests.
//!
//! A request takes an idle connection or opens one, and hands it back once the whole
//! response body is read. A connection whose request was abandoned (timeout, dropped
//! future) is never handed back: its answer may still be on the way.

use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use crate::routeros::error::ClientError;
use crate::routeros::tls::{self, TlsMode};

/// Idle connections kept per router. RouterOS runs one user's REST requests one at a
/// time, so more would only hold sockets open on the router.
const MAX_IDLE: usize = 4;

/// An answer with its whole body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
}

/// Where to connect and how; the pool of idle connections.
pub(super) struct Pool {
    pub(super) host: String,
    pub(super) port: u16,
    /// `host:port`, bracketed for IPv6: the `Host` header and error messages.
    pub(super) authority: String,
    pub(super) authorization: HeaderValue,
    pub(super) connect_timeout: Duration,
    pub(super) tcp_keepalive: Option<Duration>,
    /// HTTPS and how the router's certificate is checked; `None` for plain HTTP.
    pub(super) tls: Option<TlsMode>,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Pool {
    pub(super) fn new(
        host: String,
        port: u16,
        authorization: HeaderValue,
        connect_timeout: Duration,
        tcp_keepalive: Option<Duration>,
        tls: Option<TlsMode>,
    ) -> Pool {
        let authority = match host.contains(':') {
            true => format!("[{host}]:{port}"),
            false => format!("{host}:{port}"),
        };
        Pool {
            host,
            port,
            authority,
            authorization,
            connect_timeout,
            tcp_keepalive,
            tls,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Idle connections held now.
    pub(super) fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Sends one request and reads its whole answer. A GET that fails on a reused
    /// connection (the router closed it while idle) is retried once on a new one; other
    /// methods are not, since the router may have acted on them.
    pub(super) async fn send(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let body = body.map(Bytes::from);
        let (mut sender, reused) = match self.take_idle().await {
            Some(sender) => (sender, true),
            None => (self.connect().await?, false),
        };
        let first = self
            .exchange(&mut sender, &method, target, body.clone())
            .await;
        let result = match first {
            Err(err) if reused && method == Method::GET => {
                tracing::debug!(router.addr = %self.authority, cause = %err,
                    "reused REST connection failed, retrying on a new one");
                sender = self.connect().await?;
                self.exchange(&mut sender, &method, target, body).await
            }
            other => other,
        };
        if result.is_ok() && !sender.is_closed() {
            let mut idle = self.lock();
            if idle.len() < MAX_IDLE {
                idle.push(sender);
            }
        }
        result
    }

    async fn exchange(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        method: &Method,
        target: &str,
        body: Option<Bytes>,
    ) -> Result<Answer, ClientError> {
        let lost = |err: hyper::Error| ClientError::ConnectionLost {
            reason: err.to_string(),
        };
        let mut request = Request::builder()
            .method(method.clone())
            .uri(target)
            .header(http::header::HOST, &self.authority)
            .header(http::header::AUTHORIZATION, self.authorization.clone())
            .header(http::header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| ClientError::Protocol(format!("cannot build the request: {e}")))?;
        sender.ready().await.map_err(lost)?;
        let response = sender.send_request(request).await.map_err(lost)?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(lost)?;
        Ok(Answer {
            status,
            body: body.to_bytes(),
        })
    }

    async fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        loop {
            let mut sender = self.lock().pop()?;
            if sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let addr = self.authority.clone();
        let connecting = TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Err(_) => return Err(ClientError::ConnectTimeout { addr }),
            Ok(Err(source)) => return Err(ClientError::Connect { addr, source }),
            Ok(Ok(stream)) => stream,
        };
        if let Err(source) = self.tune(&stream) {
            return Err(ClientError::Connect { addr, source });
        }
        let sender = match &self.tls {
            None => handshake(stream, addr).await?,
            Some(mode) => {
                // The certificate (or pin) is checked before any HTTP byte is written.
                let secured = tls::connect(stream, &self.host, &addr, mode, self.connect_timeout)
                    .await
                    .map_err(ClientError::Tls)?;
                handshake(secured, addr).await?
            }
        };
        tracing::debug!(router.addr = %self.authority, "REST connection open");
        Ok(sender)
    }

    fn tune(&self, stream: &TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        if let Some(idle) = self.tcp_keepalive {
            SockRef::from(stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(idle))?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SendRequest<Full<Bytes>>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// HTTP/1.1 over an open stream, plain or TLS; the connection task ends with the stream.
async fn handshake<S>(stream: S, addr: String) -> Result<SendRequest<Full<Bytes>>, ClientError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::ConnectionLost {
                reason: e.to_string(),
            })?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(router.addr = %addr, cause = %err, "REST connection ended");
        }
    });
    Ok(sender)
}
