//! Following one answer: from the runner when it runs here, else from what has been flushed
//! to the database, until its end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use skein_domain::ports::{AnswerFollower, AnswerPiece, GenerationRepo, MessageRepo};
use skein_shared::MessageId;
use skein_shared::assistant::{GenerationError, MessageDelta, MessageDone};
use skein_shared::thread::MessageStatus;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use crate::store::{AnswerRunner, Store};

pub(super) struct Follower {
    store: Store,
    runner: Option<Arc<dyn AnswerRunner>>,
    message: MessageId,
    state: State,
    /// Pieces to give before looking again.
    ready: VecDeque<AnswerPiece>,
}

enum State {
    /// Where does it run now?
    Look,
    /// Here: its pieces as they come.
    Here(Receiver<AnswerPiece>),
    /// Elsewhere, or not yet ended in the database: look again after this.
    Wait(Duration),
    Ended,
}

impl Follower {
    pub(super) fn new(store: Store, message: MessageId) -> Self {
        let runner = store.llm.clone();
        Self { store, runner, message, state: State::Look, ready: VecDeque::new() }
    }

    fn content(&self, text: String) -> AnswerPiece {
        AnswerPiece::Delta(MessageDelta { message_id: self.message, offset: 0, delta: text })
    }

    async fn step(&mut self) -> Option<AnswerPiece> {
        loop {
            if let Some(piece) = self.ready.pop_front() {
                return Some(piece);
            }
            match &mut self.state {
                State::Ended => return None,
                State::Here(pieces) => match pieces.recv().await {
                    Ok(AnswerPiece::Done(done)) => {
                        self.state = State::Ended;
                        return Some(AnswerPiece::Done(done));
                    }
                    Ok(delta) => return Some(delta),
                    // Fell behind (start again from the content so far), or it ended without
                    // telling its followers (someone else wrote its end): look again.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => self.state = State::Look,
                },
                State::Wait(pause) => {
                    tokio::time::sleep(*pause).await;
                    self.state = State::Look;
                }
                State::Look => {
                    if let Some((content, done, pieces)) =
                        self.runner.as_ref().and_then(|r| r.follow_here(self.message))
                    {
                        self.ready.push_back(self.content(content));
                        self.state = match done {
                            Some(done) => {
                                self.ready.push_back(AnswerPiece::Done(done));
                                State::Ended
                            }
                            None => State::Here(pieces),
                        };
                        continue;
                    }
                    self.read_stored().await?;
                }
            }
        }
    }

    /// What the database has: the flushed content, and the end once written.
    async fn read_stored(&mut self) -> Option<()> {
        let mut message = self.store.get_message(self.message).await.ok()??.message;
        if message.status == MessageStatus::Streaming {
            message.content = self.store.streamed_content(self.message).await.ok()?;
            let pause = self.runner.as_ref().map_or(Duration::from_millis(250), |r| r.flush_interval());
            self.ready.push_back(self.content(message.content));
            self.state = State::Wait(pause);
            return Some(());
        }
        let generation = self.store.generation(self.message).await.ok()?;
        let generation = generation.as_ref();
        let done = MessageDone {
            message_id: self.message,
            status: message.status,
            finish_reason: generation.and_then(|g| g.finish_reason.clone()),
            usage: generation.and_then(|g| g.usage),
            // As events say it: the provider's own words are for admins.
            error: generation.and_then(|g| g.error.as_ref().map(GenerationError::public)),
            length: message.content.chars().count() as u32,
        };
        self.ready.push_back(self.content(message.content));
        self.ready.push_back(AnswerPiece::Done(done));
        self.state = State::Ended;
        Some(())
    }
}

impl AnswerFollower for Follower {
    fn next(&mut self) -> std::pin::Pin<Box<dyn Future<Output = Option<AnswerPiece>> + Send + '_>> {
        Box::pin(self.step())
    }
}
