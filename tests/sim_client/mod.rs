//! A deliberately small RouterOS API client for the simulator's tests, written against the
//! framing codec alone so the simulator is checked independently of `routeros::client`.
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use cloudpilot::routeros::codec::{FrameError, Sentence, SentenceCodec};
use cloudpilot::sim::{SimConfig, SimRouterInfo, Simulator};
use futures::{SinkExt, StreamExt};
use md5::{Digest, Md5};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// How long a test waits for a reply it expects.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// One reply sentence, split into its parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: Vec<u8>,
    pub tag: Option<Vec<u8>>,
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Words that are neither attributes nor the tag (the message of `!fatal`).
    pub other: Vec<Vec<u8>>,
}

impl Reply {
    fn from_sentence(sentence: Sentence) -> Reply {
        let mut words = sentence.words.into_iter();
        let kind = words.next().expect("a reply has a reply word").to_vec();
        let mut reply = Reply {
            kind,
            tag: None,
            attrs: Vec::new(),
            other: Vec::new(),
        };
        for word in words {
            if let Some(tag) = word.strip_prefix(b".tag=") {
                reply.tag = Some(tag.to_vec());
            } else if let Some(attr) = word.strip_prefix(b"=") {
                let at = attr
                    .iter()
                    .position(|&b| b == b'=')
                    .expect("attribute has a value");
                reply
                    .attrs
                    .push((attr[..at].to_vec(), attr[at + 1..].to_vec()));
            } else {
                reply.other.push(word.to_vec());
            }
        }
        reply
    }

    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind.as_bytes()
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(|v| std::str::from_utf8(v).expect("utf-8 value"))
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref().map(|t| std::str::from_utf8(t).unwrap())
    }

    pub fn names(&self) -> Vec<&str> {
        self.attrs
            .iter()
            .map(|(n, _)| std::str::from_utf8(n).unwrap())
            .collect()
    }
}

pub struct Client {
    framed: Framed<TcpStream, SentenceCodec>,
}

impl Client {
    pub async fn connect(info: &SimRouterInfo) -> Client {
        let stream = TcpStream::connect((info.host.as_str(), info.port))
            .await
            .unwrap();
        Client {
            framed: Framed::new(stream, SentenceCodec::default()),
        }
    }

    /// Connects and logs in with the new form.
    pub async fn logged_in(info: &SimRouterInfo) -> Client {
        let mut client = Client::connect(info).await;
        let reply = client
            .call(&[
                "/login",
                &format!("=name={}", info.username),
                &format!("=password={}", info.password),
            ])
            .await;
        assert!(reply.last().unwrap().is("!done"), "login failed: {reply:?}");
        client
    }

    pub async fn send(&mut self, words: &[&str]) {
        let raw: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.send_raw(&raw).await;
    }

    pub async fn send_raw(&mut self, words: &[&[u8]]) {
        let sentence = Sentence {
            words: words.iter().map(|w| Bytes::copy_from_slice(w)).collect(),
        };
        self.framed.send(sentence).await.unwrap();
    }

    /// The next sentence as the codec decodes it; `None` at a clean end of stream.
    pub async fn next_frame(&mut self) -> Option<Result<Sentence, FrameError>> {
        tokio::time::timeout(PATIENCE, self.framed.next())
            .await
            .expect("no reply in time")
    }

    /// The next reply; panics at end of stream or on garbage.
    pub async fn recv(&mut self) -> Reply {
        let sentence = self
            .next_frame()
            .await
            .expect("connection closed")
            .expect("bad frame");
        Reply::from_sentence(sentence)
    }

    /// Replies up to and including the first `!done` (or `!fatal`).
    pub async fn until_done(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        loop {
            let reply = self.recv().await;
            let end = reply.is("!done") || reply.is("!fatal");
            replies.push(reply);
            if end {
                return replies;
            }
        }
    }

    pub async fn call(&mut self, words: &[&str]) -> Vec<Reply> {
        self.send(words).await;
        self.until_done().await
    }

    /// True when the router closes the connection without sending anything more.
    pub async fn closed_silently(&mut self) -> bool {
        self.next_frame().await.is_none()
    }

    /// Whether nothing arrives within `wait`.
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.framed.next())
            .await
            .is_err()
    }
}

/// The pre-6.43 login response, computed here independently of the simulator.
pub fn md5_response(password: &str, challenge_hex: &str) -> String {
    let mut md5 = Md5::new();
    md5.update([0u8]);
    md5.update(password.as_bytes());
    md5.update(hex::decode(challenge_hex).unwrap());
    format!("00{}", hex::encode(md5.finalize()))
}

/// One router of the given version on an ephemeral loopback port.
pub async fn one_router(version: &str) -> Simulator {
    let cfg = SimConfig {
        versions: vec![version.to_owned()],
        ..SimConfig::default()
    };
    Simulator::start(cfg).await.unwrap()
}

/// Polls `check` until it holds or patience runs out.
pub async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    check()
}
