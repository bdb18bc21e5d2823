//! Writing the event log, inside the transaction that makes the change.
//!
//! Every writer calls [`lock_conversation`] as its transaction's first statement and then
//! [`append`] for each event. The lock is an advisory lock, which does not give the
//! transaction an id; its first write after the lock does. So within a conversation,
//! transaction ids are handed out in lock order, which is commit order, and the log's
//! (tx, id) order agrees with the conversation's sequence numbers.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::EventCursor;
use skein_shared::event::{EventBody, MembershipChange, MembershipChanged, WorkspaceMembershipChanged};
use skein_shared::{ConversationId, MessageId, UserId};
use uuid::Uuid;

use crate::store::codec::uuid;
use crate::store::read::{SpanOf, moved_spans};
use crate::store::schema::{conversation_reads, departure_spans, events, member_spans, workspace_spans};

/// Serialises this transaction with every other event writer of the conversation, until
/// commit. Must come before the transaction's first write.
pub async fn lock_conversation(conn: &mut AsyncPgConnection, conversation: Uuid) -> QueryResult<()> {
    LockConversation(conversation).execute(conn).await?;
    Ok(())
}

/// A statement type rather than `sql_query`, so that it is prepared once per connection:
/// it runs on every write.
#[derive(QueryId)]
struct LockConversation(Uuid);

impl QueryFragment<Pg> for LockConversation {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT pg_advisory_xact_lock(hashtextextended(");
        out.push_bind_param::<SqlUuid, _>(&self.0)?;
        out.push_sql("::text, 0))");
        Ok(())
    }
}

/// An event to append, with the columns streams filter on.
pub struct NewEvent {
    pub conversation_id: ConversationId,
    pub body: EventBody,
    pub root_id: Option<MessageId>,
    pub message_id: Option<MessageId>,
    /// Only this user may receive it.
    pub audience: Option<UserId>,
    /// The workspace's members see it even if the conversation is not workspace-visible
    /// after it: the `conversation.updated` that makes a workspace channel private is their
    /// last event from it.
    pub open_anyway: bool,
}

impl NewEvent {
    pub fn to_all(conversation_id: ConversationId, body: EventBody) -> Self {
        Self { conversation_id, body, root_id: None, message_id: None, audience: None, open_anyway: false }
    }

    pub fn about_message(
        conversation_id: ConversationId,
        root: MessageId,
        message: MessageId,
        body: EventBody,
    ) -> Self {
        Self { root_id: Some(root), message_id: Some(message), ..Self::to_all(conversation_id, body) }
    }
}

fn serialise(body: &EventBody) -> QueryResult<String> {
    serde_json::to_string(body).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// Appends the event; its position is known at once but readable only after commit. The
/// row records the conversation's workspace and whether the conversation is workspace-visible
/// now, under the conversation's lock: that is what streams of implicit members filter on.
pub async fn append(conn: &mut AsyncPgConnection, event: &NewEvent) -> QueryResult<EventCursor> {
    let (tx, id) = AppendEvent {
        conversation: uuid(event.conversation_id),
        kind: event.body.kind(),
        root: event.root_id.map(uuid),
        message: event.message_id.map(uuid),
        audience: event.audience.map(uuid),
        open_anyway: event.open_anyway,
        data: serialise(&event.body)?,
    }
    .get_result::<(i64, i64)>(conn)
    .await?;
    Ok(EventCursor { tx, id })
}

/// `INSERT … SELECT` from the conversation row, prepared once per connection: every write
/// runs it.
#[derive(QueryId)]
struct AppendEvent {
    conversation: Uuid,
    kind: &'static str,
    root: Option<Uuid>,
    message: Option<Uuid>,
    audience: Option<Uuid>,
    open_anyway: bool,
    data: String,
}

impl Query for AppendEvent {
    type SqlType = (BigInt, BigInt);
}

impl QueryFragment<Pg> for AppendEvent {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "INSERT INTO events (conversation_id, workspace_id, open, kind, root_id, message_id, audience, data) \
             SELECT c.id, c.workspace_id, c.visibility = 'workspace' OR ",
        );
        out.push_bind_param::<Bool, _>(&self.open_anyway)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.root)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.message)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.audience)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.data)?;
        out.push_sql(" FROM conversations c WHERE c.id = ");
        out.push_bind_param::<SqlUuid, _>(&self.conversation)?;
        out.push_sql(" RETURNING tx, id");
        Ok(())
    }
}

/// Opens or closes a span so that it is open exactly when `open` is: from `at` on, or up to
/// `at` inclusive.
macro_rules! reconcile_span {
    ($conn:expr, $table:ident, $owner:ident = $owner_id:expr, $user:expr, $at:expr, $open:expr) => {{
        let current = $table::table
            .filter($table::$owner.eq($owner_id))
            .filter($table::user_id.eq($user))
            .filter($table::until_tx.is_null());
        if $open {
            let has_open: i64 = current.count().get_result($conn).await?;
            if has_open == 0 {
                diesel::insert_into($table::table)
                    .values((
                        $table::$owner.eq($owner_id),
                        $table::user_id.eq($user),
                        $table::from_tx.eq($at.tx),
                        $table::from_id.eq($at.id),
                    ))
                    .execute($conn)
                    .await?;
            }
        } else {
            diesel::update(current)
                .set(($table::until_tx.eq($at.tx), $table::until_id.eq($at.id)))
                .execute($conn)
                .await?;
        }
    }};
}

/// Appends a `membership.changed` and opens or closes the member's spans to match, so that
/// streams deliver the conversation's events to them from this event on, or up to it, and
/// hold back its workspace-visible events after they leave until they join again. Leaving
/// or being removed also drops their read cursor: a comeback starts from then.
pub async fn membership_changed(
    conn: &mut AsyncPgConnection,
    conversation: ConversationId,
    change: MembershipChanged,
) -> QueryResult<EventCursor> {
    let (conv, user) = (uuid(conversation), uuid(change.user_id));
    let kind = change.change;
    let at = append(conn, &NewEvent::to_all(conversation, EventBody::MembershipChanged(change))).await?;
    for (of, open) in moved_spans(conversation, kind) {
        match of {
            SpanOf::Conversation(_) => reconcile_span!(conn, member_spans, conversation_id = conv, user, at, open),
            SpanOf::Departure(_) => reconcile_span!(conn, departure_spans, conversation_id = conv, user, at, open),
            SpanOf::Workspace(_) => {}
        }
    }
    if matches!(kind, MembershipChange::Left | MembershipChange::Removed) {
        diesel::delete(conversation_reads::table.find((user, conv))).execute(conn).await?;
    }
    Ok(at)
}

/// Appends a `workspace.membership.changed` for the user alone and opens or closes their
/// workspace span to match: from this event on they do, or no longer do, see the
/// workspace's workspace-visible conversations on their streams.
pub async fn workspace_membership_changed(
    conn: &mut AsyncPgConnection,
    change: WorkspaceMembershipChanged,
) -> QueryResult<EventCursor> {
    let (ws, user) = (uuid(change.workspace_id), uuid(change.user_id));
    let sees = change.sees_open_conversations();
    let body = EventBody::WorkspaceMembershipChanged(change);
    let (tx, id) = diesel::insert_into(events::table)
        .values((
            events::workspace_id.eq(ws),
            events::kind.eq(body.kind()),
            events::audience.eq(user),
            events::data.eq(serialise(&body)?),
        ))
        .returning((events::tx, events::id))
        .get_result::<(i64, i64)>(conn)
        .await?;
    let at = EventCursor { tx, id };
    reconcile_span!(conn, workspace_spans, workspace_id = ws, user, at, sees);
    Ok(at)
}
