//! One writer for the streamed content of every generation running on this instance.
//!
//! Runners only append to an in-memory slot per generation (never waiting on the database
//! while tokens arrive). Every `flush_interval_ms`, or sooner when a slot holds
//! `flush_max_chars`, the flusher writes what every slot holds as one chunk row each, all in
//! one statement. While an answer streams its content lives in its chunks; the message row
//! gets the whole content once, at the end (rewriting a growing text on every flush would
//! cost the square of its length). The same
//! statement reads which of this instance's generations were cancelled through the database
//! (a cancel that reached another instance) or ended by another instance's recovery, and
//! those are stopped. A batch that fails is written again chunk by chunk, so one chunk
//! PostgreSQL refuses holds back only its own answer. So the writes per answer
//! grow with its duration, not its tokens, and the statements per instance with time alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skein_shared::MessageId;
use tokio::sync::Notify;
use uuid::Uuid;

use super::registry::Registry;
use crate::store::PgPool;
use crate::store::answers as store;
pub use crate::store::answers::Chunk;

/// What a generation has received and not yet handed to a write.
#[derive(Debug, Default)]
struct Slot {
    pending: String,
    /// The next chunk's index and character offset.
    next_index: i32,
    next_offset: u32,
}

/// The pending content of this instance's generations.
#[derive(Clone, Default)]
pub struct FlushQueue {
    slots: Arc<Mutex<HashMap<MessageId, Slot>>>,
    /// Wakes the flusher early (a slot reached the size limit).
    full: Arc<Notify>,
    max_chars: usize,
}

impl FlushQueue {
    pub fn new(max_chars: usize) -> Self {
        Self { max_chars: max_chars.max(1), ..Self::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<MessageId, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends received content.
    pub fn push(&self, message: MessageId, text: &str) {
        let full = {
            let mut slots = self.lock();
            let slot = slots.entry(message).or_default();
            slot.pending.push_str(text);
            slot.pending.len() >= self.max_chars
        };
        if full {
            self.full.notify_one();
        }
    }

    /// Takes every non-empty slot's content as its next chunk.
    fn take(&self) -> Vec<Chunk> {
        let mut slots = self.lock();
        let mut chunks = Vec::new();
        for (id, slot) in slots.iter_mut().filter(|(_, s)| !s.pending.is_empty()) {
            let content = std::mem::take(&mut slot.pending);
            let chunk = Chunk { message_id: *id, index: slot.next_index, offset: slot.next_offset, content };
            slot.next_index += 1;
            slot.next_offset += chunk.content.chars().count() as u32;
            chunks.push(chunk);
        }
        chunks
    }

    /// Puts chunks whose write failed back in front of what arrived since.
    fn restore(&self, chunks: Vec<Chunk>) {
        let mut slots = self.lock();
        for chunk in chunks {
            if let Some(slot) = slots.get_mut(&chunk.message_id) {
                slot.pending.insert_str(0, &chunk.content);
                slot.next_index = chunk.index;
                slot.next_offset = chunk.offset;
            }
        }
    }

    /// Removes the generation's slot: the rest of its content as its last chunk (written
    /// with its terminal state), if any.
    pub fn finish(&self, message: MessageId) -> Option<Chunk> {
        let slot = self.lock().remove(&message)?;
        (!slot.pending.is_empty()).then_some(Chunk {
            message_id: message,
            index: slot.next_index,
            offset: slot.next_offset,
            content: slot.pending,
        })
    }
}

/// Writes what was taken: all in one statement, or, when that fails, each answer's chunk on
/// its own, so that a chunk PostgreSQL refuses holds back only its own answer. Returns the
/// answers to stop; what could not be written goes back to the queue.
async fn flush(queue: &FlushQueue, pool: &PgPool, runner: Uuid, running: &[MessageId]) -> Vec<MessageId> {
    let chunks = queue.take();
    let error = match store::write_chunks(pool, runner, &chunks, running).await {
        Ok(stop) => return stop,
        Err(e) => e,
    };
    if chunks.len() < 2 {
        tracing::warn!(error = %error, "cannot flush streamed content");
        queue.restore(chunks);
        return Vec::new();
    }
    let mut stop = Vec::new();
    let mut failed = Vec::new();
    for chunk in chunks {
        match store::write_chunks(pool, runner, std::slice::from_ref(&chunk), running).await {
            Ok(more) => stop.extend(more),
            Err(e) => {
                tracing::warn!(message = %chunk.message_id, error = %e, "cannot flush an answer's content");
                failed.push(chunk);
            }
        }
    }
    // Kept: the answer's next flush or its terminal write carries it.
    queue.restore(failed);
    stop
}

/// Runs the flusher until the process ends.
pub fn spawn(queue: FlushQueue, pool: PgPool, registry: Registry, runner: Uuid, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = queue.full.notified() => {}
            }
            if registry.is_empty() {
                continue;
            }
            for id in flush(&queue, &pool, runner, &registry.ids()).await {
                registry.cancel(id);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_numbered_and_offset_in_characters_and_restored_in_order() {
        let queue = FlushQueue::new(1000);
        let id = MessageId::generate();
        queue.push(id, "héllo ");
        let first = queue.take();
        assert_eq!(first, vec![Chunk { message_id: id, index: 0, offset: 0, content: "héllo ".into() }]);
        queue.push(id, "world");
        let second = queue.take();
        assert_eq!((second[0].index, second[0].offset), (1, 6));
        queue.push(id, "!");
        queue.restore(second);
        let last = queue.finish(id);
        assert_eq!(last, Some(Chunk { message_id: id, index: 1, offset: 6, content: "world!".into() }));
        assert!(queue.take().is_empty());
    }
}
