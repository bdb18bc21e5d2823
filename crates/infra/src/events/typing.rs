//! Typing indicators: live-only, expired by the server, bursts coalesced.
//!
//! A `typing: true` publishes `typing.update` only when the user was not already typing
//! there; repeats just push the expiry back. The indicator ends with `typing: false` or when
//! the expiry passes without a repeat, whichever comes first; either way one `typing.update`
//! with `typing: false` goes out. Nothing is persisted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skein_shared::event::{Event, EventBody, TypingUpdate};
use skein_shared::{ConversationId, MessageId, UserId};

use super::bus::Signals;
use super::hub::Ephemeral;
use crate::clock::Clock;

type Key = (ConversationId, Option<MessageId>, UserId);

#[derive(Clone)]
pub struct Typing {
    inner: Arc<Inner>,
}

struct Inner {
    /// Who is typing where, with the generation of their latest `typing: true`.
    active: Mutex<HashMap<Key, u64>>,
    generation: AtomicU64,
    signals: Signals,
    clock: Clock,
    ttl: Duration,
}

impl Typing {
    pub fn new(signals: Signals, clock: Clock, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                active: Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
                signals,
                clock,
                ttl,
            }),
        }
    }

    pub fn set(&self, conversation: ConversationId, root: Option<MessageId>, user: UserId, typing: bool) {
        let key = (conversation, root, user);
        if !typing {
            if self.inner.lock().remove(&key).is_some() {
                self.inner.publish(key, false);
            }
            return;
        }
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        if self.inner.lock().insert(key, generation).is_none() {
            self.inner.publish(key, true);
        }
        // The deadline is fixed now, not when the task first runs.
        let deadline = self.inner.clock.now() + self.inner.ttl;
        let inner = self.inner.clone();
        tokio::spawn(async move {
            inner.clock.sleep_until(deadline).await;
            let expired = {
                let mut active = inner.lock();
                let current = active.get(&key) == Some(&generation);
                if current {
                    active.remove(&key);
                }
                current
            };
            if expired {
                inner.publish(key, false);
            }
        });
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, (conversation, root, user): Key, typing: bool) {
        self.signals.publish(Ephemeral {
            conversation_id: Some(conversation),
            user_id: user,
            event: Event {
                body: EventBody::TypingUpdate(TypingUpdate { user_id: user, root_id: root, typing }),
                conversation_id: Some(conversation),
                root_id: root,
                message_id: None,
                cursor: None,
                occurred_at: self.clock.now(),
            },
        });
    }
}
