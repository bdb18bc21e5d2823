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
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};

use super::bus::Signals;
use super::hub::Ephemeral;
use crate::clock::Clock;

type Key = (ConversationId, Option<MessageId>, UserId);

/// Where a typing indicator is shown: the conversation, its thread, and the conversation's
/// workspace when it is workspace-visible (its members see it too).
#[derive(Clone, Copy, Debug)]
pub struct TypingIn {
    pub conversation: ConversationId,
    pub root: Option<MessageId>,
    pub open_to: Option<WorkspaceId>,
}

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

    pub fn set(&self, place: TypingIn, user: UserId, typing: bool) {
        let key = (place.conversation, place.root, user);
        let open_to = place.open_to;
        if !typing {
            if self.inner.lock().remove(&key).is_some() {
                self.inner.publish(key, open_to, false);
            }
            return;
        }
        let generation = self.inner.generation.fetch_add(1, Ordering::Relaxed);
        if self.inner.lock().insert(key, generation).is_none() {
            self.inner.publish(key, open_to, true);
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
                inner.publish(key, open_to, false);
            }
        });
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, u64>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, (conversation, root, user): Key, open_to: Option<WorkspaceId>, typing: bool) {
        self.signals.publish(Ephemeral {
            conversation_id: Some(conversation),
            open_to,
            to_self: false,
            after_event: None,
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
