//! A scripted RouterOS peer for client tests: a loopback listener that plays exact byte
//! scripts and checks what the client writes, with configurable TCP segmentation.
//!
//! It frames words with its own small encoder and decoder, independent of the crate's
//! codec, so a framing bug in the codec cannot hide itself in both ends.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use cloudpilot::routeros::{ConnectOptions, Connection, Credentials};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the peer cuts its bytes into TCP writes.
#[derive(Clone, Copy, Debug)]
pub enum Segmentation {
    /// One write per sentence.
    Whole,
    /// One write per byte.
    OneByte,
    /// A write boundary right after the first byte of every length prefix.
    InsidePrefix,
}

pub struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    pub seg: Segmentation,
}

/// Length prefix, written out by hand from the table in ROUTEROS.md.
pub fn prefix(len: usize) -> Vec<u8> {
    let n = len as u32;
    match len {
        0..=0x7F => vec![n as u8],
        0x80..=0x3FFF => (n | 0x8000).to_be_bytes()[2..].to_vec(),
        0x4000..=0x1F_FFFF => (n | 0xC0_0000).to_be_bytes()[1..].to_vec(),
        0x20_0000..=0xFFF_FFFF => (n | 0xE000_0000).to_be_bytes().to_vec(),
        _ => [vec![0xF0], n.to_be_bytes().to_vec()].concat(),
    }
}

/// Wire bytes of one sentence, and the offsets just after each prefix's first byte.
pub fn encode(words: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut cuts = Vec::new();
    for w in words.iter().chain(std::iter::once(&&b""[..])) {
        cuts.push(out.len() + 1);
        out.extend(prefix(w.len()));
        out.extend_from_slice(w);
    }
    (out, cuts)
}

impl Peer {
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).await.expect("peer read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn read_exact_buf(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "client closed the connection");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one sentence the client wrote.
    pub async fn read_sentence(&mut self) -> Vec<Vec<u8>> {
        let mut words = Vec::new();
        loop {
            let first = self.read_exact_buf(1).await[0];
            let (extra, mut len) = match first {
                0x00..=0x7F => (0, first as usize),
                0x80..=0xBF => (1, (first & 0x3F) as usize),
                0xC0..=0xDF => (2, (first & 0x1F) as usize),
                0xE0..=0xEF => (3, (first & 0x0F) as usize),
                0xF0 => (4, 0),
                _ => panic!("client wrote reserved prefix byte {first:#x}"),
            };
            for b in self.read_exact_buf(extra).await {
                len = (len << 8) | b as usize;
            }
            if len == 0 {
                return words;
            }
            words.push(self.read_exact_buf(len).await);
        }
    }

    /// Reads a command, checks its words (ignoring where `.tag` stands) and returns its tag.
    pub async fn expect(&mut self, expected: &[&str]) -> String {
        let words = self.read_sentence().await;
        let mut tag = None;
        let mut rest = Vec::new();
        for w in words {
            match w.strip_prefix(b".tag=") {
                Some(t) => tag = Some(String::from_utf8(t.to_vec()).unwrap()),
                None => rest.push(String::from_utf8_lossy(&w).into_owned()),
            }
        }
        assert_eq!(rest, expected, "command words");
        tag.expect("command carries a .tag")
    }

    /// Writes one sentence, cut as `self.seg` says.
    pub async fn send(&mut self, words: &[&[u8]]) {
        let (bytes, cuts) = encode(words);
        self.write_cut(&bytes, &cuts).await;
    }

    /// Writes one sentence given as text words.
    pub async fn send_str(&mut self, words: &[&str]) {
        let words: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        self.send(&words).await;
    }

    /// Writes raw bytes as they are.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("peer write");
        self.stream.flush().await.expect("peer flush");
    }

    async fn write_cut(&mut self, bytes: &[u8], cuts: &[usize]) {
        match self.seg {
            Segmentation::Whole => self.send_raw(bytes).await,
            Segmentation::OneByte => {
                for b in bytes {
                    self.send_raw(&[*b]).await;
                    tokio::task::yield_now().await;
                }
            }
            Segmentation::InsidePrefix => {
                let mut start = 0;
                for &cut in cuts.iter().filter(|&&c| c < bytes.len()) {
                    self.send_raw(&bytes[start..cut]).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    start = cut;
                }
                self.send_raw(&bytes[start..]).await;
            }
        }
    }

    /// Plays the new-style login for `admin` with any password.
    pub async fn accept_login(&mut self) {
        let words = self.read_sentence().await;
        assert_eq!(words[0], b"/login");
        self.send_str(&["!done"]).await;
    }

    /// Waits until the client closes its side.
    pub async fn wait_for_close(&mut self) {
        while self.fill().await {}
    }
}

/// Starts a peer on 127.0.0.1:0 that runs `script` for the first connection.
pub async fn serve<F, Fut>(seg: Segmentation, script: F) -> (u16, JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        stream.set_nodelay(true).unwrap();
        script(Peer {
            stream,
            buf: Vec::new(),
            seg,
        })
        .await;
    });
    (port, task)
}

pub fn admin(password: &str) -> Credentials {
    Credentials {
        username: "admin".into(),
        password: password.into(),
    }
}

/// A peer that accepts the login and then runs `script`, plus a connection to it.
pub async fn connected<F, Fut>(seg: Segmentation, script: F) -> (Connection, JoinHandle<()>)
where
    F: FnOnce(Peer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (port, task) = serve(seg, |mut peer| async move {
        peer.accept_login().await;
        script(peer).await;
    })
    .await;
    let conn = Connection::connect("127.0.0.1", port, &admin("pw"), &ConnectOptions::default())
        .await
        .expect("login");
    (conn, task)
}
