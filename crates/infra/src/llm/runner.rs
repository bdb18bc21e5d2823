//! Running generations: one task per assistant message, independent of any HTTP request.
//!
//! The task reads the provider's stream, sends every delta live (`message.delta` on the
//! conversation's streams and to `GET /api/messages/{id}/stream` followers), and writes the
//! content to the database in coalesced chunks: at most every `flush_interval_ms` or
//! `flush_max_chars`, so the writes per reply grow with its duration, not its token count. It
//! ends in exactly one terminal state, written with its `message.done` in one transaction.
//! Cancelling drops the provider stream, which aborts the HTTP request at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use skein_domain::cursor::EventCursor;
use skein_shared::assistant::{GenerationError, GenerationErrorCode, MessageDelta, MessageDone, Usage};
use skein_shared::event::{Event, EventBody};
use skein_shared::thread::MessageStatus;
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};

use super::provider::{ChatRequest, Provider, provider_error, timed_out};
use super::store::{self, Finish};
use super::title;
use crate::db::PgPool;
use crate::events::Signals;
use crate::events::hub::Ephemeral;

/// A generation to run.
#[derive(Clone, Debug)]
pub struct Job {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub root_id: MessageId,
    /// The conversation's workspace when it is workspace-visible (its members see deltas).
    pub open_to: Option<WorkspaceId>,
    pub requested_by: UserId,
    pub request: ChatRequest,
    /// Title the thread once this answer completes (if it still has no title).
    pub auto_title: bool,
    /// The last event written with the message (`thread.activity` after `message.created`):
    /// deltas are delivered after it.
    pub created: EventCursor,
}

/// What followers of one generation receive.
#[derive(Clone, Debug)]
pub enum Piece {
    Delta(MessageDelta),
    Done(MessageDone),
}

/// A running generation's shared state: the content so far and its followers, under one lock
/// so that a new follower gets the content and every later piece, nothing twice.
pub struct Live {
    pub content: String,
    pub chars: u32,
    pub done: Option<MessageDone>,
    followers: broadcast::Sender<Piece>,
}

impl Live {
    /// The content so far, and the pieces after it (or the end, if it has ended).
    pub fn follow(&self) -> (String, u32, Option<MessageDone>, broadcast::Receiver<Piece>) {
        (self.content.clone(), self.chars, self.done.clone(), self.followers.subscribe())
    }
}

pub struct Running {
    pub live: Arc<Mutex<Live>>,
    cancel: Arc<Notify>,
}

/// The generations running on this instance.
#[derive(Clone, Default)]
pub struct Registry {
    running: Arc<Mutex<HashMap<MessageId, Running>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live state of a generation running here.
    pub fn live(&self, message: MessageId) -> Option<Arc<Mutex<Live>>> {
        self.lock().get(&message).map(|r| r.live.clone())
    }

    /// Stops a generation running here; false if it does not run here.
    pub fn cancel(&self, message: MessageId) -> bool {
        self.lock().get(&message).map(|r| r.cancel.notify_one()).is_some()
    }

    /// Stops every generation running here.
    pub fn cancel_all(&self) {
        for running in self.lock().values() {
            running.cancel.notify_one();
        }
    }
}

pub fn lock_live(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
    live.lock().unwrap_or_else(|e| e.into_inner())
}

/// How content is written as it streams.
#[derive(Clone, Copy, Debug)]
pub struct FlushPolicy {
    pub interval: Duration,
    pub max_chars: usize,
}

/// Starts the job's task.
pub fn spawn(
    registry: Registry,
    pool: PgPool,
    signals: Signals,
    provider: Arc<Provider>,
    policy: FlushPolicy,
    job: Job,
) {
    let (followers, _) = broadcast::channel(1024);
    let live = Arc::new(Mutex::new(Live { content: String::new(), chars: 0, done: None, followers }));
    let cancel = Arc::new(Notify::new());
    registry.lock().insert(job.message_id, Running { live: live.clone(), cancel: cancel.clone() });
    tokio::spawn(async move {
        let id = job.message_id;
        let mut run =
            Run { pool, signals, job, live, policy, pending: String::new(), flushed_chars: 0, chunk_index: 0 };
        let title_after = run.run(&provider, &cancel).await;
        registry.lock().remove(&id);
        if let Some(answer) = title_after {
            title::title_thread(run.pool, run.signals, &provider, &run.job, &answer).await;
        }
    });
}

struct Run {
    pool: PgPool,
    signals: Signals,
    job: Job,
    live: Arc<Mutex<Live>>,
    policy: FlushPolicy,
    /// Received but not yet written.
    pending: String,
    flushed_chars: u32,
    chunk_index: i32,
}

/// How a stream ended, before it is written.
struct Outcome {
    status: MessageStatus,
    finish_reason: String,
    usage: Option<Usage>,
    error: Option<GenerationError>,
}

impl Outcome {
    fn failed(error: GenerationError) -> Self {
        Self { status: MessageStatus::Failed, finish_reason: "error".into(), usage: None, error: Some(error) }
    }

    fn cancelled() -> Self {
        Self { status: MessageStatus::Cancelled, finish_reason: "cancelled".into(), usage: None, error: None }
    }
}

impl Run {
    /// Runs the generation to its terminal write; returns the answer when the thread is to
    /// be titled after it.
    async fn run(&mut self, provider: &Provider, cancel: &Notify) -> Option<String> {
        let started = OffsetDateTime::now_utc();
        let mut first_token_at = None;
        let outcome = tokio::select! {
            biased;
            _ = cancel.notified() => Outcome::cancelled(),
            outcome = self.stream(provider, &mut first_token_at) => outcome,
        };
        // A flush failure is not worth losing the reply: the final write carries everything.
        let finish = Finish {
            status: outcome.status,
            content: lock_live(&self.live).content.clone(),
            finish_reason: outcome.finish_reason,
            usage: outcome.usage,
            error: outcome.error,
            first_token_at,
            started_at: started,
        };
        let done = match store::finish(
            &self.pool,
            &self.job,
            &self.pending,
            self.flushed_chars,
            self.chunk_index,
            &finish,
        )
        .await
        {
            Ok(Some(done)) => done,
            // Someone else (a cancel racing us, or recovery) already ended it.
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(message = %self.job.message_id, error = %e, "cannot record the end of a generation");
                return None;
            }
        };
        self.signals.committed();
        let complete = done.status == MessageStatus::Complete;
        {
            let mut live = lock_live(&self.live);
            live.done = Some(done.clone());
            let _ = live.followers.send(Piece::Done(done));
        }
        (complete && self.job.auto_title).then_some(finish.content)
    }

    /// Reads the provider's stream to its end, sending and flushing as it goes.
    async fn stream(&mut self, provider: &Provider, first_token_at: &mut Option<OffsetDateTime>) -> Outcome {
        let mut stream = match provider.stream(&self.job.request).await {
            Ok(stream) => stream,
            Err(e) => return Outcome::failed(e),
        };
        let timeout = provider.timeout();
        let mut ticker = tokio::time::interval(self.policy.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut finish_reason, mut usage) = (None, None);
        // The provider must send something within `timeout` of the last chunk; a deadline,
        // not a timeout per poll, since flush ticks interrupt the wait.
        let mut deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, stream.next()) => next,
                _ = ticker.tick() => {
                    if let Some(outcome) = self.flush().await {
                        return outcome;
                    }
                    continue;
                }
            };
            let chunk = match next {
                Err(_) => return Outcome::failed(timed_out(timeout)),
                // async-openai ends the stream at `[DONE]` and at a plain end of the body alike;
                // a proper end always had a finish reason first.
                Ok(None) => break,
                Ok(Some(Err(e))) => return Outcome::failed(provider_error(&e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            deadline = tokio::time::Instant::now() + timeout;
            if let Some(u) = chunk.usage {
                usage = Some(u.into());
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    first_token_at.get_or_insert_with(OffsetDateTime::now_utc);
                    self.relay(text);
                }
                if let Some(reason) = choice.finish_reason {
                    finish_reason = Some(reason);
                }
            }
            if self.pending.chars().count() >= self.policy.max_chars
                && let Some(outcome) = self.flush().await
            {
                return outcome;
            }
        }
        match finish_reason {
            Some(reason) => Outcome { status: MessageStatus::Complete, finish_reason: reason, usage, error: None },
            None => Outcome::failed(GenerationError {
                code: GenerationErrorCode::StreamIncomplete,
                message: "the provider's stream ended before it finished".into(),
            }),
        }
    }

    /// Sends a delta to every follower and queues it for the next flush.
    fn relay(&mut self, text: String) {
        let delta = {
            let mut live = lock_live(&self.live);
            let delta = MessageDelta { message_id: self.job.message_id, offset: live.chars, delta: text };
            live.content.push_str(&delta.delta);
            live.chars += delta.delta.chars().count() as u32;
            let _ = live.followers.send(Piece::Delta(delta.clone()));
            delta
        };
        self.pending.push_str(&delta.delta);
        self.signals.publish(Ephemeral {
            conversation_id: Some(self.job.conversation_id),
            open_to: self.job.open_to,
            user_id: self.job.requested_by,
            to_self: true,
            after_event: Some(self.job.created.encode()),
            event: Event {
                body: EventBody::MessageDelta(delta),
                conversation_id: Some(self.job.conversation_id),
                root_id: Some(self.job.root_id),
                message_id: Some(self.job.message_id),
                cursor: None,
                occurred_at: OffsetDateTime::now_utc(),
            },
        });
    }

    /// Writes what is pending as the next chunk. Returns an outcome when the generation must
    /// stop: a cancel arrived through the database (from another instance).
    async fn flush(&mut self) -> Option<Outcome> {
        let written =
            store::flush(&self.pool, self.job.message_id, self.chunk_index, self.flushed_chars, &self.pending).await;
        match written {
            Ok(flushed) => {
                if flushed.wrote {
                    self.flushed_chars += self.pending.chars().count() as u32;
                    self.chunk_index += 1;
                    self.pending.clear();
                }
                flushed.cancel_requested.then(Outcome::cancelled)
            }
            Err(e) => {
                // Kept in `pending`: the next flush or the final write carries it.
                tracing::warn!(message = %self.job.message_id, error = %e, "cannot flush a generation");
                None
            }
        }
    }
}
