//! What one connection knows: whether it has logged in, the challenge it was given, and
//! its long-running commands by tag, so `/cancel` can reach them.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::commands::{self, Outcome};
use super::connection::{Ending, Outgoing, Replier};
use super::login;
use super::request::{self, Request, Trap};
use super::router::{Fate, SimRouter};
use super::streams::{self, Stream};
use crate::routeros::codec::Sentence;

/// Whether the connection stays open after a sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

/// Commands the session answers itself rather than the menu tree.
#[derive(Clone, Copy)]
enum Special {
    Login,
    Quit,
    Cancel,
}

pub(crate) struct Session {
    router: Arc<SimRouter>,
    tx: Option<mpsc::Sender<Outgoing>>,
    logged_in: bool,
    /// The challenge handed out by a pre-6.43 `/login`, until a response uses it.
    challenge: Option<[u8; 16]>,
    /// Long-running commands by tag (`None` for untagged ones); sending cancels one with a
    /// trap, dropping ends it silently.
    running: Vec<(Option<Bytes>, oneshot::Sender<()>)>,
}

impl Session {
    pub(crate) fn new(router: Arc<SimRouter>, tx: mpsc::Sender<Outgoing>) -> Session {
        Session {
            router,
            tx: Some(tx),
            logged_in: false,
            challenge: None,
            running: Vec::new(),
        }
    }

    /// Ends every running command without a reply and lets the writer finish.
    pub(crate) fn close(&mut self) {
        self.running.clear();
        self.tx = None;
        if std::mem::take(&mut self.logged_in) {
            self.router.logged_out();
        }
    }

    pub(crate) async fn handle(&mut self, sentence: Sentence) -> Flow {
        if sentence.words.is_empty() {
            return Flow::Continue;
        }
        let req = Request::parse(sentence);
        let command = match req.command.as_ref() {
            b"/login" => Some(Special::Login),
            b"/quit" => Some(Special::Quit),
            b"/cancel" => Some(Special::Cancel),
            _ => None,
        };
        tracing::debug!(
            cmd.path = %String::from_utf8_lossy(&req.command),
            cmd.tag = ?req.tag.as_ref().map(|t| String::from_utf8_lossy(t)),
            "sim command"
        );
        match command {
            Some(Special::Login) => {
                let reply = self.login(&req);
                self.replier(req.tag.clone(), false).send(reply).await;
                Flow::Continue
            }
            Some(Special::Quit) => self.fatal(b"session terminated on request").await,
            _ if !self.logged_in => self.fatal(b"not logged in").await,
            Some(Special::Cancel) => {
                self.router.count_cancel();
                let reply = self.cancel(&req);
                self.replier(req.tag.clone(), false).send(reply).await;
                Flow::Continue
            }
            _ => {
                self.dispatch(req).await;
                Flow::Continue
            }
        }
    }

    fn replier(&self, tag: Option<Bytes>, drop_first: bool) -> Replier {
        let tx = self
            .tx
            .clone()
            .expect("the session is open while it handles sentences");
        Replier::new(tx, self.router.clone(), tag, drop_first)
    }

    async fn fatal(&mut self, message: &'static [u8]) -> Flow {
        let reply = vec![request::fatal(message)];
        self.replier(None, false)
            .send_ending(reply, Ending::Close)
            .await;
        Flow::Close
    }

    /// Both login forms; the reply to send.
    fn login(&mut self, req: &Request) -> Vec<Sentence> {
        let info = &self.router.info;
        let name_ok = req
            .attr(b"name")
            .is_some_and(|n| n.as_ref() == info.username.as_bytes());
        let accepted = match (req.attr(b"response"), req.attr(b"password")) {
            (Some(response), _) => match self.challenge.take() {
                Some(challenge) => {
                    name_ok
                        && login::response_matches(info.password.as_bytes(), &challenge, response)
                }
                None => false,
            },
            (None, password) if self.router.version.has_plain_login() => {
                name_ok && password.map_or(b"".as_ref(), |p| p.as_ref()) == info.password.as_bytes()
            }
            (None, _) => {
                // Before 6.43 any other /login asks for a challenge, arguments or not.
                let challenge = login::new_challenge();
                self.challenge = Some(challenge);
                let ret = hex::encode(challenge);
                return vec![request::done(req.tag.as_ref(), Some(ret.as_bytes()))];
            }
        };
        if !accepted {
            tracing::debug!("sim login refused");
            return Trap::new(None, &b"invalid user name or password (6)"[..])
                .into_reply(req.tag.as_ref());
        }
        let first = !std::mem::replace(&mut self.logged_in, true);
        self.router.logged_in(first);
        vec![request::done(req.tag.as_ref(), None)]
    }

    /// `/cancel =tag=X` cancels X; `/cancel` alone cancels everything running.
    fn cancel(&mut self, req: &Request) -> Vec<Sentence> {
        self.running.retain(|(_, cancel)| !cancel.is_closed());
        let tag = req.tag.as_ref();
        let Some(target) = req.attr(b"tag") else {
            for (_, cancel) in self.running.drain(..) {
                let _ = cancel.send(());
            }
            return vec![request::done(tag, None)];
        };
        let found = self
            .running
            .iter()
            .position(|(t, _)| t.as_ref() == Some(target));
        match found.map(|at| self.running.remove(at).1.send(())) {
            Some(Ok(())) => vec![request::done(tag, None)],
            _ => Trap::bad_argument("unknown command tag").into_reply(tag),
        }
    }

    async fn dispatch(&mut self, req: Request) {
        let fate = self.router.next_command_fate();
        let outcome = match fate {
            Fate::Hang => Outcome::Stream(Stream::Hang),
            Fate::Answer | Fate::Drop => {
                if let Some(comment) = req.attr(b"comment") {
                    self.router.count_execution(comment);
                }
                commands::execute(&self.router, &req)
            }
        };
        let mut out = self.replier(req.tag.clone(), fate == Fate::Drop);
        match outcome {
            Outcome::Reply(sentences) => {
                out.send(sentences).await;
            }
            Outcome::Stream(stream) => {
                let (cancel, cancelled) = oneshot::channel();
                self.running.retain(|(_, cancel)| !cancel.is_closed());
                self.running.push((req.tag.clone(), cancel));
                tokio::spawn(streams::run(stream, out, cancelled));
            }
        }
    }
}
