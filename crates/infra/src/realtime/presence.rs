//! Presence: heartbeats stored in PostgreSQL (so every instance answers the same; the SQL is
//! `store/presence.rs`), states derived from their age, and changes announced exactly once
//! across instances.
//!
//! `online` while heartbeats keep coming, `away` when the client says so or after
//! `away_after` without one, `offline` after `offline_after`. The `announced` column holds the
//! state last published; a heartbeat or a sweep that changes it publishes `presence.update`.
//! The conditional UPDATE makes each change announced by exactly one instance.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use skein_shared::UserId;
use skein_shared::event::{Event, EventBody, PresenceInfo, PresenceState};
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::realtime::bus::Signals;
use crate::realtime::hub::Ephemeral;
use crate::store::presence::{self as store, Change, Timeouts};
use crate::store::{PgPool, StoreError};
use skein_domain::DomainResult;

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresencePolicy {
    /// Seconds without a heartbeat before a user shows as away.
    pub away_after_secs: u64,
    /// Seconds without a heartbeat before a user shows as offline.
    pub offline_after_secs: u64,
    /// How often each instance looks for timed-out users.
    pub sweep_interval_secs: u64,
}

impl Default for PresencePolicy {
    fn default() -> Self {
        Self { away_after_secs: 120, offline_after_secs: 300, sweep_interval_secs: 15 }
    }
}

impl PresencePolicy {
    /// The state a heartbeat at `last_seen` (with the client's away flag) means at `now`.
    pub fn state(&self, last_seen: Option<OffsetDateTime>, away: bool, now: OffsetDateTime) -> PresenceState {
        let Some(last_seen) = last_seen else { return PresenceState::Offline };
        let age = now - last_seen;
        if age >= time::Duration::seconds(self.offline_after_secs as i64) {
            PresenceState::Offline
        } else if away || age >= time::Duration::seconds(self.away_after_secs as i64) {
            PresenceState::Away
        } else {
            PresenceState::Online
        }
    }
}

#[derive(Clone)]
pub struct Presence {
    pool: PgPool,
    clock: Clock,
    policy: PresencePolicy,
    signals: Signals,
}

impl Presence {
    pub fn new(pool: PgPool, clock: Clock, policy: PresencePolicy, signals: Signals) -> Self {
        Self { pool, clock, policy, signals }
    }

    /// Records a heartbeat; announces the user's new state if it changed.
    pub async fn heartbeat(&self, user: UserId, away: bool) -> DomainResult<PresenceInfo> {
        let now = self.clock.now();
        let state = self.policy.state(Some(now), away, now);
        if store::record_heartbeat(&self.pool, user, now, away, state).await? {
            self.announce(Change { user, state, last_seen_at: now });
        }
        Ok(PresenceInfo { user_id: user, state, last_seen_at: Some(now) })
    }

    /// Announces everyone whose state has timed out since it was last announced.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        let after = Timeouts {
            away_after: self.policy.away_after_secs as f64,
            offline_after: self.policy.offline_after_secs as f64,
        };
        let changed = store::timed_out(&self.pool, self.clock.now(), after).await?;
        let n = changed.len();
        for change in changed {
            self.announce(change);
        }
        Ok(n)
    }

    /// The presence of those of `users` who share a workspace with `viewer`.
    pub async fn snapshot(&self, viewer: UserId, users: &[UserId]) -> DomainResult<Vec<PresenceInfo>> {
        let now = self.clock.now();
        let seen = store::visible_heartbeats(&self.pool, viewer, users).await?;
        Ok(seen
            .into_iter()
            .map(|(user_id, heartbeat)| PresenceInfo {
                user_id,
                state: self.policy.state(heartbeat.map(|h| h.0), heartbeat.is_some_and(|h| h.1), now),
                last_seen_at: heartbeat.map(|h| h.0),
            })
            .collect())
    }

    /// Sweeps for timeouts every `sweep_interval_secs` of the clock, until the task is dropped.
    pub async fn run_sweeper(self) {
        loop {
            self.clock.sleep(Duration::from_secs(self.policy.sweep_interval_secs.max(1))).await;
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "presence sweep failed");
            }
        }
    }

    fn announce(&self, Change { user, state, last_seen_at }: Change) {
        self.signals.publish(Ephemeral {
            open_to: None,
            to_self: false,
            after_event: None,
            conversation_id: None,
            user_id: user,
            event: Event::live(
                EventBody::PresenceUpdate(PresenceInfo { user_id: user, state, last_seen_at: Some(last_seen_at) }),
                self.clock.now(),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_heartbeat_age() {
        let policy = PresencePolicy { away_after_secs: 60, offline_after_secs: 300, sweep_interval_secs: 5 };
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(1);
        let ago = |s: i64| Some(now - time::Duration::seconds(s));
        assert_eq!(policy.state(None, false, now), PresenceState::Offline);
        assert_eq!(policy.state(ago(0), false, now), PresenceState::Online);
        assert_eq!(policy.state(ago(0), true, now), PresenceState::Away);
        assert_eq!(policy.state(ago(60), false, now), PresenceState::Away);
        assert_eq!(policy.state(ago(300), true, now), PresenceState::Offline);
    }
}
