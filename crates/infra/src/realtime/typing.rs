//! Typing indicators: live-only, expired by the server, bursts coalesced.
//!
//! A `typing: true` publishes `typing.update` only when the user was not already typing
//! there; repeats just push the expiry back, and one timer per indicator follows it. The indicator ends with `typing: false` or when
//! the expiry passes without a repeat, whichever comes first; either way one `typing.update`
//! with `typing: false` goes out. Nothing is persisted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use skein_domain::entities::TypingIn;
use skein_shared::event::{Event, EventBody, TypingUpdate};
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};
use time::OffsetDateTime;

use super::bus::Signals;
use super::hub::Ephemeral;
use crate::clock::Clock;

type Key = (ConversationId, Option<MessageId>, UserId);

#[derive(Clone)]
pub struct Typing {
    inner: Arc<Inner>,
}

/// One indicator: which timer owns it and when it expires.
struct Active {
    timer: u64,
    expires: OffsetDateTime,
}

struct Inner {
    active: Mutex<HashMap<Key, Active>>,
    next_timer: AtomicU64,
    /// Timers waiting (one per indicator, however often it is repeated).
    armed: AtomicUsize,
    signals: Signals,
    clock: Clock,
    ttl: Duration,
}

impl Typing {
    pub fn new(signals: Signals, clock: Clock, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                active: Mutex::new(HashMap::new()),
                next_timer: AtomicU64::new(0),
                armed: AtomicUsize::new(0),
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
        // The deadline is fixed now, not when a timer next looks.
        let expires = self.inner.clock.now() + self.inner.ttl;
        let timer = {
            let mut active = self.inner.lock();
            if let Some(indicator) = active.get_mut(&key) {
                // A repeat moves the expiry; the indicator's one timer sees it when it wakes.
                indicator.expires = expires;
                return;
            }
            let timer = self.inner.next_timer.fetch_add(1, Ordering::Relaxed);
            active.insert(key, Active { timer, expires });
            timer
        };
        self.inner.publish(key, open_to, true);
        self.inner.armed.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(self.inner.clone().expire(key, timer, open_to));
    }

    /// Timers waiting: one per indicator showing.
    pub fn timers(&self) -> usize {
        self.inner.armed.load(Ordering::Relaxed)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Active>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The indicator's timer: sleeps until its expiry (again, if a repeat moved it), then
    /// ends it; stops early if `typing: false` ended it first.
    async fn expire(self: Arc<Self>, key: Key, timer: u64, open_to: Option<WorkspaceId>) {
        loop {
            let expires = match self.lock().get(&key) {
                Some(indicator) if indicator.timer == timer => indicator.expires,
                _ => break,
            };
            self.clock.sleep_until(expires).await;
            let expired = {
                let mut active = self.lock();
                match active.get(&key) {
                    Some(indicator) if indicator.timer == timer && indicator.expires <= self.clock.now() => {
                        active.remove(&key);
                        true
                    }
                    Some(indicator) if indicator.timer == timer => continue,
                    _ => false,
                }
            };
            if expired {
                self.publish(key, open_to, false);
            }
            break;
        }
        self.armed.fetch_sub(1, Ordering::Relaxed);
    }

    fn publish(&self, (conversation, root, user): Key, open_to: Option<WorkspaceId>, typing: bool) {
        self.signals.publish(Ephemeral {
            conversation_id: Some(conversation),
            open_to,
            to_self: false,
            after_event: None,
            user_id: user,
            event: Event::live(
                EventBody::TypingUpdate(TypingUpdate { user_id: user, root_id: root, typing }),
                self.clock.now(),
            )
            .in_conversation(conversation, root),
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::realtime::bus::Outgoing;

    fn typing_of(out: &Outgoing) -> bool {
        let Outgoing::Live(event) = out else { panic!("not a live event") };
        match &event.event.body {
            EventBody::TypingUpdate(update) => update.typing,
            other => panic!("not typing: {other:?}"),
        }
    }

    /// Lets the timers run up to their next wait (the test's runtime has one thread), then
    /// checks how many are armed.
    async fn settled(typing: &Typing, timers: usize) {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        for _ in 0..200 {
            if typing.timers() == timers {
                return;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(typing.timers(), timers);
    }

    #[tokio::test]
    async fn repeats_move_one_timer_and_the_indicator_ends_once() {
        let (signals, mut published) = Signals::capture();
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        let typing = Typing::new(signals, Clock::Manual(clock.clone()), Duration::from_secs(6));
        let place = TypingIn { conversation: ConversationId::generate(), root: None, open_to: None };
        let user = UserId::generate();
        for _ in 0..100 {
            typing.set(place, user, true);
        }
        assert_eq!(typing.timers(), 1, "a hundred repeats, one timer");
        assert!(typing_of(&published.try_recv().unwrap()));
        assert!(published.try_recv().is_err(), "repeats send nothing");
        // A repeat 4 s in moves the expiry to 10 s: nothing at 6 s.
        clock.advance(Duration::from_secs(4));
        typing.set(place, user, true);
        clock.advance(Duration::from_secs(3));
        settled(&typing, 1).await;
        assert!(published.try_recv().is_err(), "still typing at 7 s");
        clock.advance(Duration::from_secs(3));
        settled(&typing, 0).await;
        assert!(!typing_of(&published.try_recv().unwrap()));
        assert!(published.try_recv().is_err());
        // `typing: false` ends it at once, and its timer with it.
        typing.set(place, user, true);
        typing.set(place, user, false);
        assert!(typing_of(&published.try_recv().unwrap()));
        assert!(!typing_of(&published.try_recv().unwrap()));
        clock.advance(Duration::from_secs(60));
        settled(&typing, 0).await;
        assert!(published.try_recv().is_err());
    }
}
