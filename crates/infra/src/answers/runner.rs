//! Running generations: one task per assistant message, independent of any HTTP request.
//!
//! The task reads the provider's stream, sends every delta live (`message.delta` on the
//! conversation's streams and to `GET /api/messages/{id}/stream` followers) and hands it to
//! the instance's flusher (`flusher.rs`), never waiting on the database while tokens arrive.
//! It ends in exactly one terminal state, written with the last chunk and its `message.done`
//! in one transaction. Cancelling drops the provider stream, which aborts the HTTP request at
//! once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use skein_shared::assistant::{GenerationError, GenerationErrorCode, MessageDelta, MessageDone, Usage};
use skein_shared::event::{Event, EventBody};
use skein_shared::thread::MessageStatus;
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast};

use super::flusher::{Chunk, FlushQueue};
use super::provider::{Provider, provider_error, push_storable, storable, timed_out};
use super::registry::{Live, Registry, Running, Unsaved, lock_live};
use super::title;
use crate::realtime::Signals;
use crate::realtime::hub::Ephemeral;
use crate::store::PgPool;
use crate::store::StoreError;
use crate::store::answers::{self as store, Finish};
use crate::store::job::Job;
use skein_domain::ports::AnswerPiece;

/// Most content relayed as one delta when chunks arrive faster than they are relayed.
const BURST_MAX_BYTES: usize = 4096;

/// Pauses between attempts at the terminal write (a pool timeout under load must not leave
/// an answer streaming). After the last, the end is handed to the instance's recovery.
const END_RETRY_PAUSES: [Duration; 4] =
    [Duration::from_millis(50), Duration::from_millis(200), Duration::from_millis(500), Duration::from_secs(1)];

/// Starts the job's task.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    registry: Registry,
    pool: PgPool,
    signals: Signals,
    provider: Arc<Provider>,
    queue: FlushQueue,
    job: Job,
) {
    let (followers, _) = broadcast::channel(1024);
    let live = Arc::new(Mutex::new(Live { content: String::new(), chars: 0, done: None, followers }));
    let cancel = Arc::new(Notify::new());
    registry.insert(job.message_id, Running { live: live.clone(), cancel: cancel.clone() });
    runtime.spawn(async move {
        let id = job.message_id;
        let mut run = Run { pool, signals, job, live, queue, registry: registry.clone() };
        let title_after = run.run(&provider, &cancel).await;
        registry.remove(id);
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
    queue: FlushQueue,
    registry: Registry,
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
        if let Some(error) = &outcome.error {
            // The provider's words, for operators; members get the code's summary.
            tracing::warn!(message = %self.job.message_id, code = ?error.code, error = %error.message, "an answer failed");
        }
        let finish = Finish {
            status: outcome.status,
            content: lock_live(&self.live).content.clone(),
            // What the provider said goes into `text` and `jsonb`, which refuse U+0000 too.
            finish_reason: storable(&outcome.finish_reason),
            usage: outcome.usage,
            error: outcome.error.map(|e| GenerationError { code: e.code, message: storable(&e.message) }),
            first_token_at,
            started_at: started,
        };
        let tail = self.queue.finish(self.job.message_id);
        let done = match self.write_end(tail.as_ref(), &finish).await {
            Ok(Some(done)) => done,
            // Someone else (a cancel racing us, or recovery) already ended it.
            Ok(None) => return None,
            Err(e) => {
                // The followers here read the end from the database once recovery writes it.
                tracing::error!(message = %self.job.message_id, error = %e, "cannot record the end of a generation; recovery will");
                self.registry.hand_to_recovery(Unsaved { job: self.job.clone(), finish: finish.unsaved() });
                return None;
            }
        };
        self.signals.committed();
        let complete = done.status == MessageStatus::Complete;
        {
            let mut live = lock_live(&self.live);
            live.done = Some(done.clone());
            let _ = live.followers.send(AnswerPiece::Done(done));
        }
        (complete && self.job.auto_title).then_some(finish.content)
    }

    /// The terminal write, tried again after a failure (`END_RETRY_PAUSES`).
    async fn write_end(&self, tail: Option<&Chunk>, finish: &Finish) -> Result<Option<MessageDone>, StoreError> {
        let mut pauses = END_RETRY_PAUSES.iter();
        loop {
            match store::finish(&self.pool, &self.job, tail, finish).await {
                Err(e) => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(message = %self.job.message_id, error = %e, "the end of a generation was not written; retrying");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return Err(e),
                },
                written => return written,
            }
        }
    }

    /// Reads the provider's stream to its end, relaying as it goes. Chunks that have already
    /// arrived are relayed together as one delta (up to `BURST_MAX_BYTES`): a provider
    /// streaming faster than its readers costs fewer events, and a token is never held back
    /// waiting for the next one.
    async fn stream(&mut self, provider: &Provider, first_token_at: &mut Option<OffsetDateTime>) -> Outcome {
        let mut stream = match provider.stream(&self.job.request).await {
            Ok(stream) => stream,
            Err(e) => return Outcome::failed(e),
        };
        let timeout = provider.timeout();
        let (mut finish_reason, mut usage) = (None, None);
        let mut burst = String::new();
        let mut ready = None;
        let ended = loop {
            let next = match ready.take() {
                Some(item) => Ok(item),
                None => {
                    // Nothing more has arrived: send what has before waiting.
                    self.relay(&mut burst);
                    // The provider must send something within `timeout` of the last chunk.
                    tokio::time::timeout(timeout, stream.next()).await
                }
            };
            let chunk = match next {
                Err(_) => break Err(timed_out(timeout)),
                // async-openai ends the stream at `[DONE]` and at a plain end of the body alike;
                // a proper end always had a finish reason first.
                Ok(None) => break Ok(()),
                Ok(Some(Err(e))) => break Err(provider_error(&e)),
                Ok(Some(Ok(chunk))) => chunk,
            };
            if let Some(u) = chunk.usage {
                usage = Some(u.into());
            }
            for choice in chunk.choices {
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    first_token_at.get_or_insert_with(OffsetDateTime::now_utc);
                    push_storable(&mut burst, &text);
                }
                if let Some(reason) = choice.finish_reason {
                    finish_reason = Some(reason);
                }
            }
            if burst.len() < BURST_MAX_BYTES {
                ready = stream.next().now_or_never();
            }
        };
        self.relay(&mut burst);
        match (ended, finish_reason) {
            (Err(e), _) => Outcome::failed(e),
            (Ok(()), Some(reason)) => {
                Outcome { status: MessageStatus::Complete, finish_reason: reason, usage, error: None }
            }
            (Ok(()), None) => Outcome::failed(GenerationError {
                code: GenerationErrorCode::StreamIncomplete,
                message: "the provider's stream ended before it finished".into(),
            }),
        }
    }

    /// Sends `burst` (emptying it) as a delta to every follower and queues it for the flusher.
    fn relay(&mut self, burst: &mut String) {
        if burst.is_empty() {
            return;
        }
        let text = std::mem::take(burst);
        let delta = {
            let mut live = lock_live(&self.live);
            let delta = MessageDelta { message_id: self.job.message_id, offset: live.chars, delta: text };
            live.content.push_str(&delta.delta);
            live.chars += delta.delta.chars().count() as u32;
            // Most answers have no `/stream` follower: no copy for nobody.
            if live.followers.receiver_count() > 0 {
                let _ = live.followers.send(AnswerPiece::Delta(delta.clone()));
            }
            delta
        };
        self.queue.push(self.job.message_id, &delta.delta);
        self.signals.publish(Ephemeral {
            conversation_id: Some(self.job.conversation_id),
            open_to: self.job.open_to,
            user_id: self.job.requested_by,
            to_self: true,
            after_event: Some(self.job.created),
            event: Event::live(EventBody::MessageDelta(delta), OffsetDateTime::now_utc()).about_message(
                self.job.conversation_id,
                self.job.root_id,
                self.job.message_id,
            ),
        });
    }
}
