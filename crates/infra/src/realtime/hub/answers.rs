//! What the hub knows of streaming answers, so that every subscriber gets an answer's deltas
//! before its `message.done` and none after (the deltas cross instances by the bus, the
//! done by the log).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use skein_shared::MessageId;
use skein_shared::assistant::{MessageDelta, MessageDone};

/// A `message.done` waits at most this long for the deltas it follows (they cross instances
/// by the bus, the done by the log) before it goes out without them.
const DONE_WAITS_AT_MOST: Duration = Duration::from_millis(500);
/// How soon the log is read again while a `message.done` waits for its deltas.
pub(super) const DONE_RECHECK: Duration = Duration::from_millis(2);
/// Ended answers remembered, so that a delta arriving after its answer's end is dropped.
const ENDED_REMEMBERED: usize = 16_384;

/// What the hub knows of streaming answers' deltas, so that every subscriber gets an
/// answer's deltas before its `message.done` and none after.
#[derive(Default)]
pub(super) struct AnswerStreams {
    /// Where each streaming answer's dispatched deltas end (characters).
    relayed: HashMap<MessageId, u32>,
    ended: HashSet<MessageId>,
    ended_order: VecDeque<MessageId>,
    /// The `message.done` being held, and since when.
    holding: Option<(MessageId, Instant)>,
}

impl AnswerStreams {
    /// Records a delta about to be dispatched; false if its answer has already ended.
    pub(super) fn delta(&mut self, delta: &MessageDelta) -> bool {
        if self.ended.contains(&delta.message_id) {
            return false;
        }
        let end = delta.offset + delta.delta.chars().count() as u32;
        let relayed = self.relayed.entry(delta.message_id).or_default();
        *relayed = (*relayed).max(end);
        true
    }

    /// Whether the `message.done` must wait for deltas still on their way: the deltas this
    /// hub has seen of the answer (none at all, too, when a quick answer's whole batch of
    /// deltas is still crossing) stop short of its length, and it has not waited too long.
    pub(super) fn must_wait(&mut self, done: &MessageDone) -> bool {
        let relayed = self.relayed.get(&done.message_id).copied().unwrap_or(0);
        let short = relayed < done.length;
        if !short {
            return false;
        }
        let since = match self.holding {
            Some((id, since)) if id == done.message_id => since,
            _ => self.holding.insert((done.message_id, Instant::now())).1,
        };
        since.elapsed() < DONE_WAITS_AT_MOST
    }

    /// The answer's `message.done` is being dispatched.
    pub(super) fn ended(&mut self, message: MessageId) {
        self.relayed.remove(&message);
        self.holding = None;
        if self.ended.insert(message) {
            self.ended_order.push_back(message);
            if self.ended_order.len() > ENDED_REMEMBERED
                && let Some(oldest) = self.ended_order.pop_front()
            {
                self.ended.remove(&oldest);
            }
        }
    }
}
