//! Writing the event log, inside the transaction that makes the change.
//!
//! Every writer calls [`lock_conversation`] as its transaction's first statement and then
//! [`append`] for each event. The lock is an advisory lock, which does not give the
//! transaction an id; its first write after the lock does. So within a conversation,
//! transaction ids are handed out in lock order, which is commit order, and the log's
//! (tx, id) order agrees with the conversation's sequence numbers.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::Uuid as SqlUuid;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::EventCursor;
use skein_shared::event::{EventBody, MembershipChange, MembershipChanged};
use skein_shared::{ConversationId, MessageId, UserId};
use uuid::Uuid;

use crate::codec::uuid;
use crate::schema::{events, member_spans};

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
}

impl NewEvent {
    pub fn to_all(conversation_id: ConversationId, body: EventBody) -> Self {
        Self { conversation_id, body, root_id: None, message_id: None, audience: None }
    }

    pub fn about_message(
        conversation_id: ConversationId,
        root: MessageId,
        message: MessageId,
        body: EventBody,
    ) -> Self {
        Self { conversation_id, body, root_id: Some(root), message_id: Some(message), audience: None }
    }
}

/// Appends the event; its position is known at once but readable only after commit.
pub async fn append(conn: &mut AsyncPgConnection, event: &NewEvent) -> QueryResult<EventCursor> {
    let body =
        serde_json::to_string(&event.body).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let (tx, id) = diesel::insert_into(events::table)
        .values((
            events::conversation_id.eq(uuid(event.conversation_id)),
            events::kind.eq(event.body.kind()),
            events::root_id.eq(event.root_id.map(uuid)),
            events::message_id.eq(event.message_id.map(uuid)),
            events::audience.eq(event.audience.map(uuid)),
            events::data.eq(body),
        ))
        .returning((events::tx, events::id))
        .get_result::<(i64, i64)>(conn)
        .await?;
    Ok(EventCursor { tx, id })
}

/// Appends a `membership.changed` and opens or closes the member's span to match, so that
/// streams deliver the conversation's events to them from this event on, or up to it.
pub async fn membership_changed(
    conn: &mut AsyncPgConnection,
    conversation: ConversationId,
    change: MembershipChanged,
) -> QueryResult<EventCursor> {
    let (conv, user) = (uuid(conversation), uuid(change.user_id));
    let kind = change.change;
    let at = append(conn, &NewEvent::to_all(conversation, EventBody::MembershipChanged(change))).await?;
    let open = member_spans::table
        .filter(member_spans::conversation_id.eq(conv))
        .filter(member_spans::user_id.eq(user))
        .filter(member_spans::until_tx.is_null());
    if kind.ends_membership() {
        diesel::update(open)
            .set((member_spans::until_tx.eq(at.tx), member_spans::until_id.eq(at.id)))
            .execute(conn)
            .await?;
    } else if kind != MembershipChange::RoleChanged {
        diesel::insert_into(member_spans::table)
            .values((
                member_spans::conversation_id.eq(conv),
                member_spans::user_id.eq(user),
                member_spans::from_tx.eq(at.tx),
                member_spans::from_id.eq(at.id),
            ))
            .execute(conn)
            .await?;
    }
    Ok(at)
}
