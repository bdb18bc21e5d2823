//! Presence: heartbeats stored in PostgreSQL (so every instance answers the same), states
//! derived from their age, and changes announced exactly once across instances.
//!
//! `online` while heartbeats keep coming, `away` when the client says so or after
//! `away_after` without one, `offline` after `offline_after`. The `announced` column holds the
//! state last published; a heartbeat or a sweep that changes it publishes `presence.update`.
//! The conditional UPDATE makes each change announced by exactly one instance.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use skein_shared::UserId;
use skein_shared::event::{Event, EventBody, PresenceInfo, PresenceState};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::Clock;
use crate::realtime::bus::Signals;
use crate::realtime::hub::Ephemeral;
use crate::store::codec::{enum_from_db, enum_to_db, ulid, uuid};
use crate::store::schema::{presence, workspace_members};
use crate::store::{PgPool, db_error};
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

#[derive(QueryableByName)]
struct Changed {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Text)]
    announced: String,
    #[diesel(sql_type = Timestamptz)]
    last_seen_at: OffsetDateTime,
}

/// The state expression, in SQL, for `$1` = now (as the clock says).
const STATE_SQL: &str = "CASE WHEN last_seen_at <= $1 - make_interval(secs => $2) THEN 'offline' \
     WHEN away OR last_seen_at <= $1 - make_interval(secs => $3) THEN 'away' ELSE 'online' END";

impl Presence {
    pub fn new(pool: PgPool, clock: Clock, policy: PresencePolicy, signals: Signals) -> Self {
        Self { pool, clock, policy, signals }
    }

    /// Records a heartbeat; announces the user's new state if it changed.
    pub async fn heartbeat(&self, user: UserId, away: bool) -> DomainResult<PresenceInfo> {
        self.heartbeat_query(user, away).await.map_err(db_error)
    }

    async fn heartbeat_query(&self, user: UserId, away: bool) -> QueryResult<PresenceInfo> {
        let now = self.clock.now();
        let state = self.policy.state(Some(now), away, now);
        let mut conn = self.pool.get().await.map_err(|e| pool_error(&e))?;
        let id = uuid(user);
        let announce = conn
            .transaction(async |conn| {
                // Locked, so that of two racing heartbeats only one announces the change.
                let previous: Option<String> =
                    presence::table.find(id).select(presence::announced).for_update().first(conn).await.optional()?;
                let row = (
                    presence::user_id.eq(id),
                    presence::last_seen_at.eq(now),
                    presence::away.eq(away),
                    presence::announced.eq(enum_to_db(state)),
                );
                diesel::insert_into(presence::table)
                    .values(row.clone())
                    .on_conflict(presence::user_id)
                    .do_update()
                    .set(row)
                    .execute(conn)
                    .await?;
                Ok::<_, diesel::result::Error>(previous.as_deref() != Some(enum_to_db(state).as_str()))
            })
            .await?;
        if announce {
            self.announce(Changed { user_id: id, announced: enum_to_db(state), last_seen_at: now })?;
        }
        Ok(PresenceInfo { user_id: user, state, last_seen_at: Some(now) })
    }

    /// Announces everyone whose state has timed out since it was last announced.
    pub async fn sweep(&self) -> QueryResult<usize> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await.map_err(|e| pool_error(&e))?;
        let changed: Vec<Changed> = diesel::sql_query(format!(
            "UPDATE presence SET announced = {STATE_SQL} WHERE announced <> {STATE_SQL} \
             RETURNING user_id, announced, last_seen_at"
        ))
        .bind::<Timestamptz, _>(now)
        .bind::<diesel::sql_types::Double, _>(self.policy.offline_after_secs as f64)
        .bind::<diesel::sql_types::Double, _>(self.policy.away_after_secs as f64)
        .load(&mut conn)
        .await?;
        let n = changed.len();
        for c in changed {
            self.announce(c)?;
        }
        Ok(n)
    }

    /// The presence of those of `users` who share a workspace with `viewer`.
    pub async fn snapshot(&self, viewer: UserId, users: &[UserId]) -> DomainResult<Vec<PresenceInfo>> {
        self.snapshot_query(viewer, users).await.map_err(db_error)
    }

    async fn snapshot_query(&self, viewer: UserId, users: &[UserId]) -> QueryResult<Vec<PresenceInfo>> {
        let now = self.clock.now();
        let mut conn = self.pool.get().await.map_err(|e| pool_error(&e))?;
        let ids: Vec<Uuid> = users.iter().map(|u| uuid(*u)).collect();
        let (mine, theirs) = diesel::alias!(workspace_members as mine, workspace_members as theirs);
        let visible: Vec<Uuid> = theirs
            .inner_join(
                mine.on(mine.field(workspace_members::workspace_id).eq(theirs.field(workspace_members::workspace_id))),
            )
            .filter(mine.field(workspace_members::user_id).eq(uuid(viewer)))
            .filter(theirs.field(workspace_members::user_id).eq_any(&ids))
            .select(theirs.field(workspace_members::user_id))
            .distinct()
            .load(&mut conn)
            .await?;
        let rows: Vec<(Uuid, OffsetDateTime, bool)> = presence::table
            .filter(presence::user_id.eq_any(&visible))
            .select((presence::user_id, presence::last_seen_at, presence::away))
            .load(&mut conn)
            .await?;
        Ok(users
            .iter()
            .filter(|u| visible.contains(&uuid(**u)))
            .map(|u| {
                let row = rows.iter().find(|r| r.0 == uuid(*u));
                let last_seen = row.map(|r| r.1);
                PresenceInfo {
                    user_id: *u,
                    state: self.policy.state(last_seen, row.is_some_and(|r| r.2), now),
                    last_seen_at: last_seen,
                }
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

    fn announce(&self, c: Changed) -> QueryResult<()> {
        let user = UserId(ulid(c.user_id));
        let state: PresenceState = enum_from_db(&c.announced)
            .map_err(|e| diesel::result::Error::DeserializationError(e.to_string().into()))?;
        self.signals.publish(Ephemeral {
            open_to: None,
            to_self: false,
            after_event: None,
            conversation_id: None,
            user_id: user,
            event: Event::live(
                EventBody::PresenceUpdate(PresenceInfo { user_id: user, state, last_seen_at: Some(c.last_seen_at) }),
                self.clock.now(),
            ),
        });
        Ok(())
    }
}

fn pool_error(e: &impl std::fmt::Display) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(e.to_string().into())
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
