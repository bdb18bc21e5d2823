//! The `presence` table: heartbeats, the state last announced, and who may see whose.
//!
//! The conditional writes make each change of state announced by exactly one instance.

use diesel::prelude::*;
use diesel::sql_types::{Double, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_shared::UserId;
use skein_shared::event::PresenceState;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::codec::{enum_from_db, enum_to_db, ulid, uuid};
use crate::store::schema::{presence, workspace_members};
use crate::store::{PgPool, StoreError, conn};

/// A state to announce.
pub struct Change {
    pub user: UserId,
    pub state: PresenceState,
    pub last_seen_at: OffsetDateTime,
}

/// Ages (seconds) past which a user without a heartbeat is away, and offline.
#[derive(Clone, Copy)]
pub struct Timeouts {
    pub away_after: f64,
    pub offline_after: f64,
}

/// Records a heartbeat that means `state`; true when that changes the state last announced
/// (then the caller announces it).
pub async fn record_heartbeat(
    pool: &PgPool,
    user: UserId,
    now: OffsetDateTime,
    away: bool,
    state: PresenceState,
) -> Result<bool, StoreError> {
    let mut conn = conn(pool).await?;
    let id = uuid(user);
    let changed = conn
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
    Ok(changed)
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

/// Moves everyone whose state has timed out since it was last announced to their state now;
/// returns those changes (to announce).
pub async fn timed_out(pool: &PgPool, now: OffsetDateTime, after: Timeouts) -> Result<Vec<Change>, StoreError> {
    let mut conn = conn(pool).await?;
    let changed: Vec<Changed> = diesel::sql_query(format!(
        "UPDATE presence SET announced = {STATE_SQL} WHERE announced <> {STATE_SQL} \
         RETURNING user_id, announced, last_seen_at"
    ))
    .bind::<Timestamptz, _>(now)
    .bind::<Double, _>(after.offline_after)
    .bind::<Double, _>(after.away_after)
    .load(&mut conn)
    .await?;
    changed
        .into_iter()
        .map(|c| {
            let state = enum_from_db(&c.announced)
                .map_err(|e| diesel::result::Error::DeserializationError(e.to_string().into()))?;
            Ok(Change { user: UserId(ulid(c.user_id)), state, last_seen_at: c.last_seen_at })
        })
        .collect()
}

/// Those of `users` who share a workspace with `viewer`, each with their last heartbeat
/// (when and whether away), if any.
pub async fn visible_heartbeats(
    pool: &PgPool,
    viewer: UserId,
    users: &[UserId],
) -> Result<Vec<(UserId, Option<(OffsetDateTime, bool)>)>, StoreError> {
    let mut conn = conn(pool).await?;
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
        .map(|u| (*u, rows.iter().find(|r| r.0 == uuid(*u)).map(|r| (r.1, r.2))))
        .collect())
}
