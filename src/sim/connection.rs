//! One client connection: a reader that feeds sentences to the [`Session`], and a writer
//! task that alone owns the socket's write half.
//!
//! Every reply goes to the writer as a whole batch of sentences over a bounded channel, so
//! sentences are never interleaved however many commands run at once, and a client that
//! stops reading eventually stops the reader too. The writer applies the faults that shape
//! bytes on the wire: latency, one-byte writes, and half a sentence before a close.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use super::request::Trap;
use super::router::{self, SimRouter};
use super::session::{Flow, Session};
use crate::routeros::codec::{encode_sentence, Sentence, SentenceCodec};

/// Batches waiting for the writer; small, because the writer is the bottleneck anyway.
const OUTGOING_QUEUE: usize = 64;

/// How the writer leaves the connection after a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    KeepOpen,
    /// After `!fatal`.
    Close,
    /// The drop fault: only the first half of the first sentence is written.
    HalfThenClose,
}

/// A batch of reply sentences and when it may be written.
pub(crate) struct Outgoing {
    pub(crate) due: Instant,
    pub(crate) sentences: Vec<Sentence>,
    pub(crate) ending: Ending,
}

/// The way back for one command's replies, carrying its tag; the first batch is cut in
/// half when the drop fault picked the command.
pub(crate) struct Replier {
    tx: mpsc::Sender<Outgoing>,
    router: Arc<SimRouter>,
    pub(crate) tag: Option<Bytes>,
    drop_first: bool,
}

impl Replier {
    pub(crate) fn new(
        tx: mpsc::Sender<Outgoing>,
        router: Arc<SimRouter>,
        tag: Option<Bytes>,
        drop_first: bool,
    ) -> Replier {
        Replier {
            tx,
            router,
            tag,
            drop_first,
        }
    }

    /// Queues `sentences`; false once the connection is gone.
    pub(crate) async fn send(&mut self, sentences: Vec<Sentence>) -> bool {
        let ending = match std::mem::take(&mut self.drop_first) {
            true => Ending::HalfThenClose,
            false => Ending::KeepOpen,
        };
        self.send_ending(sentences, ending).await
    }

    pub(crate) async fn send_ending(&mut self, sentences: Vec<Sentence>, ending: Ending) -> bool {
        let due = Instant::now() + self.router.latency();
        self.tx
            .send(Outgoing {
                due,
                sentences,
                ending,
            })
            .await
            .is_ok()
    }

    pub(crate) async fn trap(&mut self, trap: Trap) -> bool {
        let reply = trap.into_reply(self.tag.as_ref());
        self.send(reply).await
    }
}

/// Serves one accepted connection, given as its read and write halves (plain TCP or TLS),
/// until the client leaves, a fatal reply or a fault closes it, the router is killed, or
/// the simulator shuts down.
pub(crate) async fn serve<R, W>(
    router: Arc<SimRouter>,
    read: R,
    write: W,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut reader = FramedRead::new(read, SentenceCodec::default());
    let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
    let mut writer = tokio::spawn(write_loop(write, rx, router.clone()));
    let mut kill = router.subscribe_kill();
    let mut session = Session::new(router.clone(), tx);
    tracing::debug!("sim connection opened");

    let abrupt = loop {
        tokio::select! {
            biased;
            _ = kill.changed() => break true,
            _ = router::shutting_down(&mut shutdown) => break true,
            _ = &mut writer => break false,
            next = reader.next() => match next {
                Some(Ok(sentence)) => {
                    if session.handle(sentence).await == Flow::Close {
                        break false;
                    }
                }
                Some(Err(err)) => {
                    tracing::debug!(cause = %err, "sim connection: unreadable stream");
                    break true;
                }
                None => break false,
            },
        }
    };
    // Ends the session's long-running commands silently and releases its writer handle.
    session.close();
    if abrupt {
        writer.abort();
    } else if !writer.is_finished() {
        let _ = writer.await;
    }
    tracing::debug!(abrupt, "sim connection closed");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut rx: mpsc::Receiver<Outgoing>,
    router: Arc<SimRouter>,
) {
    let mut buf = BytesMut::new();
    while let Some(out) = rx.recv().await {
        tokio::time::sleep_until(out.due).await;
        buf.clear();
        for sentence in &out.sentences {
            encode_sentence(sentence, &mut buf);
        }
        let len = match (out.ending, out.sentences.first()) {
            (Ending::HalfThenClose, Some(first)) => (first.encoded_len() / 2).max(1),
            _ => buf.len(),
        };
        let written = match router.faults().one_byte_writes {
            true => write_bytewise(&mut socket, &buf[..len]).await,
            false => socket.write_all(&buf[..len]).await,
        };
        if let Err(err) = written {
            tracing::debug!(cause = %err, "sim connection: write failed");
            return;
        }
        if out.ending != Ending::KeepOpen {
            let _ = socket.shutdown().await;
            return;
        }
    }
}

async fn write_bytewise<W: AsyncWrite + Unpin>(
    socket: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    for byte in bytes {
        socket.write_all(std::slice::from_ref(byte)).await?;
        socket.flush().await?;
    }
    Ok(())
}
