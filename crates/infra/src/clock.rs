//! Time for the realtime timers (typing expiry, presence timeouts), replaceable in tests so
//! that they can move time forward instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<ManualClock>),
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Self::System => OffsetDateTime::now_utc(),
            Self::Manual(clock) => clock.now(),
        }
    }

    /// Waits until this clock has moved `duration` past now.
    pub async fn sleep(&self, duration: Duration) {
        self.sleep_until(self.now() + duration).await;
    }

    /// Waits until this clock reads `deadline` or later.
    pub async fn sleep_until(&self, deadline: OffsetDateTime) {
        match self {
            Self::System => {
                let wait = (deadline - OffsetDateTime::now_utc()).try_into().unwrap_or(Duration::ZERO);
                tokio::time::sleep(wait).await;
            }
            Self::Manual(clock) => {
                let mut rx = clock.tx.subscribe();
                while *rx.borrow_and_update() < deadline {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A clock that moves only when told to.
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
    tx: watch::Sender<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Arc<Self> {
        Arc::new(Self { now: Mutex::new(start), tx: watch::Sender::new(start) })
    }

    pub fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward, waking every sleeper whose deadline has passed.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
        self.tx.send_replace(*now);
    }
}
