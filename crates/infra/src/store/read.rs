//! Reading the event log: tailing it in order, replaying it for one subscriber, its bounds,
//! and pruning it.
//!
//! Only events of finished transactions are read: those with `tx` below the oldest running
//! transaction id of the reading statement's snapshot (`pg_snapshot_xmin`). A transaction
//! still running when a reader passes by may commit later, but its id is at or above that
//! bound, so its events sort after everything the reader has taken.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::EventCursor;
use skein_shared::event::{Event, EventBody, MembershipChange};
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::codec::{ulid, uuid};
use crate::store::schema::{departure_spans, event_log_state, events, member_spans, workspace_spans};

/// The oldest transaction still running, as of the statement's snapshot.
const XMIN: &str = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    tx: i64,
    id: i64,
    conversation_id: Option<Uuid>,
    workspace_id: Uuid,
    open: bool,
    root_id: Option<Uuid>,
    message_id: Option<Uuid>,
    audience: Option<Uuid>,
    occurred_at: OffsetDateTime,
    data: String,
}

/// An event read from the log.
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    pub cursor: EventCursor,
    /// `None` for a user's own workspace-level events.
    pub conversation_id: Option<ConversationId>,
    pub workspace_id: WorkspaceId,
    /// The workspace's (non-guest) members may see it without being members of the
    /// conversation.
    pub open: bool,
    /// Only this user may receive it.
    pub audience: Option<UserId>,
    pub event: Event,
}

impl EventRow {
    fn into_logged(self) -> Option<LoggedEvent> {
        let cursor = EventCursor { tx: self.tx, id: self.id };
        let body: EventBody = match serde_json::from_str(&self.data) {
            Ok(body) => body,
            Err(e) => {
                // Written by a newer version of the server: skip rather than stall the log.
                tracing::error!(cursor = %cursor.encode(), error = %e, "unreadable event skipped");
                return None;
            }
        };
        let conversation_id = self.conversation_id.map(|c| ConversationId(ulid(c)));
        Some(LoggedEvent {
            cursor,
            conversation_id,
            workspace_id: WorkspaceId(ulid(self.workspace_id)),
            open: self.open,
            audience: self.audience.map(|a| UserId(ulid(a))),
            event: Event {
                body,
                conversation_id,
                root_id: self.root_id.map(|r| MessageId(ulid(r))),
                message_id: self.message_id.map(|m| MessageId(ulid(m))),
                cursor: Some(cursor.encode()),
                occurred_at: self.occurred_at,
            },
        })
    }
}

/// `(tx, id) > after`, written so that `tx >= after.tx` is an index condition.
macro_rules! after_cursor {
    ($after:expr) => {
        events::tx.ge($after.tx).and(events::tx.gt($after.tx).or(events::id.gt($after.id)))
    };
}

/// What a tail read found.
pub struct Tail {
    /// Readable events after the cursor, in log order.
    pub events: Vec<LoggedEvent>,
    /// The last position read (including skipped unreadable rows).
    pub position: EventCursor,
    /// Committed events exist past a still-running older transaction: read again soon.
    pub blocked: bool,
    /// As many rows as asked for came back: read again at once.
    pub full: bool,
}

/// The next events of the whole log after `after`.
pub async fn tail(conn: &mut AsyncPgConnection, after: EventCursor, limit: i64) -> QueryResult<Tail> {
    let rows: Vec<(EventRow, i64)> = events::table
        .filter(after_cursor!(after))
        .select((EventRow::as_select(), sql::<BigInt>(XMIN)))
        .order((events::tx, events::id))
        .limit(limit)
        .load(conn)
        .await?;
    let full = rows.len() as i64 == limit;
    let mut tail = Tail { events: Vec::with_capacity(rows.len()), position: after, blocked: false, full };
    for (row, xmin) in rows {
        if row.tx >= xmin {
            tail.blocked = true;
            tail.full = false;
            break;
        }
        tail.position = EventCursor { tx: row.tx, id: row.id };
        tail.events.extend(row.into_logged());
    }
    Ok(tail)
}

/// Events in (`after`, `upto`] that `user` may see, in log order, at most `limit`: of every
/// conversation, or of one. The same rule as the hub's: a member span of the event's
/// conversation covers it, or the event is `open`, a workspace span covers it and no
/// departure from the conversation does (after its leaving event); a user's own
/// workspace-level events only on the all-conversations stream.
pub async fn replay(
    conn: &mut AsyncPgConnection,
    user: UserId,
    conversation: Option<ConversationId>,
    after: EventCursor,
    upto: EventCursor,
    limit: i64,
) -> QueryResult<Vec<LoggedEvent>> {
    const IN_SPAN: &str = "(e.tx, e.id) >= (s.from_tx, s.from_id) \
         AND (s.until_tx IS NULL OR (e.tx, e.id) <= (s.until_tx, s.until_id))";
    let text = format!(
        "SELECT e.tx, e.id, e.conversation_id, e.workspace_id, e.open, e.root_id, e.message_id, \
         e.audience, e.occurred_at, e.data FROM events e \
         WHERE (e.tx, e.id) > ($1, $2) AND (e.tx, e.id) <= ($3, $4) \
         AND (e.audience IS NULL OR e.audience = $5) \
         AND CASE WHEN $6::uuid IS NULL THEN true ELSE e.conversation_id = $6 END \
         AND (e.conversation_id IS NULL \
           OR EXISTS (SELECT 1 FROM member_spans s \
                WHERE s.conversation_id = e.conversation_id AND s.user_id = $5 AND {IN_SPAN}) \
           OR (e.open AND EXISTS (SELECT 1 FROM workspace_spans s \
                WHERE s.workspace_id = e.workspace_id AND s.user_id = $5 AND {IN_SPAN}) \
              AND NOT EXISTS (SELECT 1 FROM departure_spans s \
                WHERE s.conversation_id = e.conversation_id AND s.user_id = $5 AND {IN_SPAN} \
                AND (e.tx, e.id) <> (s.from_tx, s.from_id)))) \
         ORDER BY e.tx, e.id LIMIT $7"
    );
    let rows: Vec<EventRow> = diesel::sql_query(text)
        .bind::<BigInt, _>(after.tx)
        .bind::<BigInt, _>(after.id)
        .bind::<BigInt, _>(upto.tx)
        .bind::<BigInt, _>(upto.id)
        .bind::<SqlUuid, _>(uuid(user))
        .bind::<Nullable<SqlUuid>, _>(conversation.map(uuid))
        .bind::<BigInt, _>(limit)
        .load(conn)
        .await?;
    Ok(rows.into_iter().filter_map(EventRow::into_logged).collect())
}

/// Where the log starts and ends.
#[derive(Clone, Copy, Debug)]
pub struct LogBounds {
    /// Everything at or below this was pruned.
    pub pruned: EventCursor,
    /// The newest readable event (or `pruned` when there is none): a tail may start here.
    pub readable: EventCursor,
    /// The newest event committed (readable or not yet).
    pub newest: EventCursor,
}

pub async fn bounds(conn: &mut AsyncPgConnection) -> QueryResult<LogBounds> {
    let (pruned_tx, pruned_id): (i64, i64) =
        event_log_state::table.select((event_log_state::pruned_tx, event_log_state::pruned_id)).first(conn).await?;
    let pruned = EventCursor { tx: pruned_tx, id: pruned_id };
    let newest: Option<(i64, i64)> = events::table
        .select((events::tx, events::id))
        .order((events::tx.desc(), events::id.desc()))
        .first(conn)
        .await
        .optional()?;
    let readable: Option<(i64, i64)> = events::table
        .filter(events::tx.lt(sql::<BigInt>(XMIN)))
        .select((events::tx, events::id))
        .order((events::tx.desc(), events::id.desc()))
        .first(conn)
        .await
        .optional()?;
    let at = |found: Option<(i64, i64)>| found.map_or(pruned, |(tx, id)| EventCursor { tx, id }.max(pruned));
    Ok(LogBounds { pruned, readable: at(readable), newest: at(newest) })
}

/// A user's membership spans, as event positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: EventCursor,
    pub until: Option<EventCursor>,
}

impl Span {
    pub fn contains(&self, at: EventCursor) -> bool {
        at >= self.from && self.until.is_none_or(|until| at <= until)
    }
}

/// What a span is of: a conversation (membership), a workspace (non-guest membership), or
/// a departure from a conversation (left or removed, not joined again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SpanOf {
    Conversation(ConversationId),
    Workspace(WorkspaceId),
    Departure(ConversationId),
}

impl SpanOf {
    /// Membership and workspace spans bring events; departures only hold some back.
    pub fn routes(self) -> bool {
        !matches!(self, Self::Departure(_))
    }
}

/// How a membership change moves the member's spans of the conversation, as (span, open
/// after it): the one mapping the log (writing spans) and the hub (holding them) share.
pub fn moved_spans(conversation: ConversationId, change: MembershipChange) -> impl Iterator<Item = (SpanOf, bool)> {
    use MembershipChange::*;
    type Move = (fn(ConversationId) -> SpanOf, bool);
    let moves: &[Move] = match change {
        Added | Joined => &[(SpanOf::Conversation, true), (SpanOf::Departure, false)],
        Left | Removed => &[(SpanOf::Conversation, false), (SpanOf::Departure, true)],
        ConversationDeleted => &[(SpanOf::Conversation, false)],
        RoleChanged => &[],
    };
    moves.iter().map(move |(of, open)| (of(conversation), *open))
}

type SpanRow = (Uuid, Uuid, i64, i64, Option<i64>, Option<i64>);

/// The spans of `users` in a span table (`member_spans` or `workspace_spans`), as `SpanRow`s.
macro_rules! span_rows {
    ($table:ident, $owner:ident, $users:expr) => {
        $table::table.filter($table::user_id.eq_any($users)).select((
            $table::user_id,
            $table::$owner,
            $table::from_tx,
            $table::from_id,
            $table::until_tx,
            $table::until_id,
        ))
    };
}

/// Deletes the spans of a span table that ended at or before `boundary`.
macro_rules! delete_spans_ended_by {
    ($conn:expr, $table:ident, $boundary:expr) => {
        diesel::delete(
            $table::table.filter(
                $table::until_tx
                    .lt($boundary.tx)
                    .or($table::until_tx.eq($boundary.tx).and($table::until_id.le($boundary.id))),
            ),
        )
        .execute($conn)
        .await
    };
}

fn span_of(row: SpanRow, of: fn(Uuid) -> SpanOf) -> (UserId, SpanOf, Span) {
    let (user, owner, from_tx, from_id, until_tx, until_id) = row;
    let until = until_tx.zip(until_id).map(|(tx, id)| EventCursor { tx, id });
    (UserId(ulid(user)), of(owner), Span { from: EventCursor { tx: from_tx, id: from_id }, until })
}

/// The conversation, workspace and departure spans of these users.
pub async fn spans(conn: &mut AsyncPgConnection, users: &[UserId]) -> QueryResult<Vec<(UserId, SpanOf, Span)>> {
    let users: Vec<Uuid> = users.iter().map(|u| uuid(*u)).collect();
    let members: Vec<SpanRow> = span_rows!(member_spans, conversation_id, &users).load(conn).await?;
    let workspaces: Vec<SpanRow> = span_rows!(workspace_spans, workspace_id, &users).load(conn).await?;
    let departures: Vec<SpanRow> = span_rows!(departure_spans, conversation_id, &users).load(conn).await?;
    let conversation = |c| SpanOf::Conversation(ConversationId(ulid(c)));
    let workspace = |w| SpanOf::Workspace(WorkspaceId(ulid(w)));
    let departure = |c| SpanOf::Departure(ConversationId(ulid(c)));
    Ok(members
        .into_iter()
        .map(|row| span_of(row, conversation))
        .chain(workspaces.into_iter().map(|row| span_of(row, workspace)))
        .chain(departures.into_iter().map(|row| span_of(row, departure)))
        .collect())
}

/// The conversations each of `users` is a member of now, as (user, conversation) pairs.
pub async fn member_conversations(
    conn: &mut AsyncPgConnection,
    users: &[UserId],
) -> QueryResult<Vec<(UserId, ConversationId)>> {
    let ids: Vec<Uuid> = users.iter().map(|u| uuid(*u)).collect();
    let rows: Vec<(Uuid, Uuid)> = member_spans::table
        .filter(member_spans::user_id.eq_any(ids))
        .filter(member_spans::until_tx.is_null())
        .select((member_spans::user_id, member_spans::conversation_id))
        .load(conn)
        .await?;
    Ok(rows.into_iter().map(|(u, c)| (UserId(ulid(u)), ConversationId(ulid(c)))).collect())
}

/// Removes events older than `max_age` and beyond the newest `max_events`, as a prefix of
/// the log (never past what is readable), and records how far. Returns the new boundary.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
    max_age: time::Duration,
    max_events: i64,
) -> QueryResult<Option<EventCursor>> {
    use diesel_async::AsyncConnection;
    conn.transaction(async |conn| {
        // Serialises pruners of all instances.
        let (pruned_tx, pruned_id): (i64, i64) = event_log_state::table
            .select((event_log_state::pruned_tx, event_log_state::pruned_id))
            .for_update()
            .first(conn)
            .await?;
        let by_age: Option<(i64, i64)> = events::table
            .filter(events::occurred_at.lt(now - max_age))
            .select((events::tx, events::id))
            .order(events::occurred_at.desc())
            .first(conn)
            .await
            .optional()?;
        let by_size: Option<(i64, i64)> = events::table
            .select((events::tx, events::id))
            .order((events::tx.desc(), events::id.desc()))
            .offset(max_events)
            .first(conn)
            .await
            .optional()?;
        let readable = bounds(conn).await?.readable;
        let cursor = |(tx, id)| EventCursor { tx, id };
        let Some(boundary) = by_age.map(cursor).max(by_size.map(cursor)).map(|b| b.min(readable)) else {
            return Ok(None);
        };
        if boundary <= (EventCursor { tx: pruned_tx, id: pruned_id }) {
            return Ok(None);
        }
        diesel::delete(events::table.filter(diesel::dsl::not(after_cursor!(boundary)))).execute(conn).await?;
        // Spans that ended before what is kept can no longer match any event.
        delete_spans_ended_by!(conn, member_spans, boundary)?;
        delete_spans_ended_by!(conn, workspace_spans, boundary)?;
        delete_spans_ended_by!(conn, departure_spans, boundary)?;
        diesel::update(event_log_state::table)
            .set((event_log_state::pruned_tx.eq(boundary.tx), event_log_state::pruned_id.eq(boundary.id)))
            .execute(conn)
            .await?;
        Ok(Some(boundary))
    })
    .await
}
