//! Appending a message: the conversation's lock, the message, its thread's bookkeeping and
//! its events in one statement, one round trip, prepared once per connection.
//!
//! The statement is a chain of data-modifying CTEs:
//! 1. `lock` takes the conversation's advisory lock (see `log.rs`): every later part waits
//!    for it, so the transaction gets its id (at its first write) only once it holds the
//!    lock, which keeps the log's (tx, id) order the conversation's commit order;
//! 2. `conv` bumps `conversations.last_seq` (writers of one conversation are serialised, so
//!    sequence numbers become visible in order and without gaps); if the conversation was
//!    archived meanwhile nothing comes back and nothing is written;
//! 3. `msg` inserts the message, `thread` creates or updates the thread summary (always
//!    locked after the conversation row, so writers cannot deadlock);
//! 4. `ev` appends the events, in order. Their JSON is rendered here in Rust, exactly as
//!    every other event's, except for the one number only the statement knows (the
//!    message's `seq`, the thread's `reply_count`): the text is cut where that number goes
//!    and the statement puts it in.
//!
//! Run alone it commits by itself; inside a transaction (an assistant's message and its
//! generation) it must be the transaction's first statement. A failed statement (a duplicate
//! `client_msg_id`) consumes no sequence number.
//!
//! These are hand-written query types rather than `sql_query` because diesel never caches a
//! `sql_query`'s prepared statement; each type here has a static query id (and so always
//! renders the same text), so PostgreSQL parses and plans it once per connection. Every
//! value is bound exactly once, in the order it appears in the text.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use skein_shared::assistant::ThreadSettings;
use skein_shared::event::{EventBody, ThreadActivity};
use skein_shared::message::Mention;
use skein_shared::thread::{Message, ThreadSummary};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::codec::{enum_to_db, uuid};
use crate::store::rows::message_columns;
use crate::store::schema::messages;

/// The message as the statement binds it.
struct Row {
    conversation_id: Uuid,
    id: Uuid,
    root_id: Uuid,
    parent_id: Option<Uuid>,
    depth: i32,
    path: Vec<Uuid>,
    author_id: Option<Uuid>,
    role: String,
    content: String,
    status: String,
    client_msg_id: Option<String>,
    created_at: OffsetDateTime,
    mentions: serde_json::Value,
    mentioned_user_ids: Vec<Uuid>,
    author_kind: String,
    via_kind: String,
    via_api_key_id: Option<Uuid>,
}

impl Row {
    /// `message`'s `seq` is ignored (the statement assigns it).
    fn of(message: &Message, path: Vec<Uuid>) -> QueryResult<Self> {
        let (mentions, mentioned_user_ids) = mention_columns(&message.mentions)?;
        Ok(Self {
            conversation_id: uuid(message.conversation_id),
            id: uuid(message.id),
            root_id: uuid(message.root_id),
            parent_id: message.parent_id.map(uuid),
            depth: message.depth,
            path,
            author_id: message.author_id.map(uuid),
            role: enum_to_db(message.role),
            content: message.content.clone(),
            status: enum_to_db(message.status),
            client_msg_id: message.client_msg_id.clone(),
            created_at: message.created_at,
            mentions,
            mentioned_user_ids,
            author_kind: enum_to_db(message.author_kind),
            via_kind: enum_to_db(message.via.kind),
            via_api_key_id: message.via.api_key_id.map(uuid),
        })
    }
}

/// A message's mentions as stored: as shown, and the users they name (for unread counts).
pub fn mention_columns(mentions: &[Mention]) -> QueryResult<(serde_json::Value, Vec<Uuid>)> {
    let shown = serde_json::to_value(mentions).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    Ok((shown, mentions.iter().filter_map(|m| m.user_id).map(uuid).collect()))
}

/// A message's creation time as PostgreSQL stores it (microseconds), so that the events'
/// JSON and the row agree.
pub fn stored_time(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000 * 1_000).unwrap_or(at)
}

/// Which number the statement puts into an event's JSON.
#[derive(Clone, Copy)]
enum Fill {
    Seq,
    ReplyCount,
}

impl Fill {
    fn key(self) -> &'static str {
        match self {
            Self::Seq => "seq",
            Self::ReplyCount => "reply_count",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Seq => "msg.seq",
            Self::ReplyCount => "thread.reply_count",
        }
    }
}

/// An event's JSON, cut where the statement's number goes.
struct EventText {
    kind: &'static str,
    head: String,
    fill: Fill,
    tail: String,
}

impl EventText {
    /// `body` rendered with the filled field at 0, cut around that 0. The field's key with
    /// its quotes can occur only once: no other field of these events has that name, and a
    /// quote inside a string is always escaped.
    fn new(body: &EventBody, fill: Fill) -> QueryResult<Self> {
        let json = serde_json::to_string(body).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        let marker = format!("\"{}\":0", fill.key());
        let mut found = json.match_indices(&marker).map(|(at, _)| at);
        let (Some(at), None) = (found.next(), found.next()) else {
            let reason = format!("{} has no single {marker}", body.kind());
            return Err(diesel::result::Error::SerializationError(reason.into()));
        };
        let cut = at + marker.len() - 1;
        Ok(Self { kind: body.kind(), head: json[..cut].to_owned(), fill, tail: json[cut + 1..].to_owned() })
    }
}

/// A thread root: the message, a new thread summary and `thread.new`.
#[derive(QueryId)]
pub struct AppendRoot {
    row: Row,
    title: Option<String>,
    tags: Vec<String>,
    /// `ThreadSettings` as JSON.
    settings: serde_json::Value,
    events: [EventText; 1],
}

/// A reply: the message, the thread summary's count, participants and activity,
/// `message.created` and `thread.activity`.
#[derive(QueryId)]
pub struct AppendReply {
    row: Row,
    events: [EventText; 2],
}

impl AppendRoot {
    pub fn new(root: Message, title: Option<String>, tags: Vec<String>, settings: ThreadSettings) -> QueryResult<Self> {
        let summary = ThreadSummary {
            root_id: root.id,
            conversation_id: root.conversation_id,
            title: title.clone(),
            tags: tags.clone(),
            settings: settings.clone(),
            reply_count: 0,
            participant_ids: root.author_id.into_iter().collect(),
            last_activity_at: root.created_at,
            created_at: root.created_at,
            root,
        };
        let row = Row::of(&summary.root, vec![uuid(summary.root.id)])?;
        let settings =
            serde_json::to_value(&settings).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
        let event = EventText::new(&EventBody::ThreadNew(Box::new(summary)), Fill::Seq)?;
        Ok(Self { row, title, tags, settings, events: [event] })
    }
}

impl AppendReply {
    /// `path` is the reply's ancestry, root first, ending with the reply.
    pub fn new(reply: Message, path: Vec<Uuid>) -> QueryResult<Self> {
        let activity = ThreadActivity::new(reply.root_id, 0, reply.created_at);
        let events = [
            EventText::new(&EventBody::MessageCreated(reply.clone()), Fill::Seq)?,
            EventText::new(&EventBody::ThreadActivity(activity), Fill::ReplyCount)?,
        ];
        Ok(Self { row: Row::of(&reply, path)?, events })
    }
}

impl Row {
    /// `lock`, `conv` and `msg`.
    fn walk<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(hashtextextended(");
        out.push_bind_param::<SqlUuid, _>(&self.conversation_id)?;
        out.push_sql("::text, 0))), conv AS (UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = ");
        out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<SqlUuid, _>(&self.conversation_id)?;
        out.push_sql(
            " AND archived_at IS NULL AND EXISTS (SELECT 1 FROM lock) \
             RETURNING id, workspace_id, visibility, last_seq), \
             msg AS (INSERT INTO messages (id, conversation_id, root_id, parent_id, depth, path, seq, \
             author_id, role, content, status, client_msg_id, created_at, mentions, mentioned_user_ids, \
             author_kind, via_kind, via_api_key_id) SELECT ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.id)?;
        out.push_sql(", conv.id, ");
        out.push_bind_param::<SqlUuid, _>(&self.root_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.parent_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Int4, _>(&self.depth)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.path)?;
        out.push_sql(", conv.last_seq, ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.author_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.role)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.content)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.client_msg_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&self.mentions)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<SqlUuid>, _>(&self.mentioned_user_ids)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.author_kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.via_kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.via_api_key_id)?;
        out.push_sql(" FROM conv RETURNING *)");
        Ok(())
    }
}

/// `ev` and the final select: the message, the thread's reply count and the last event's
/// position.
fn walk_events<'b>(events: &'b [EventText], out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
    out.push_sql(
        ", ev AS (INSERT INTO events (conversation_id, workspace_id, open, kind, root_id, message_id, data) \
         SELECT conv.id, conv.workspace_id, conv.visibility = 'workspace', e.kind, msg.root_id, msg.id, e.data \
         FROM conv, msg, thread, LATERAL (VALUES ",
    );
    for (n, event) in events.iter().enumerate() {
        if n > 0 {
            out.push_sql(", ");
        }
        out.push_sql(&format!("({n}, "));
        out.push_bind_param::<Text, _>(&event.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&event.head)?;
        out.push_sql(&format!(" || {}::text || ", event.fill.column()));
        out.push_bind_param::<Text, _>(&event.tail)?;
        out.push_sql(")");
    }
    out.push_sql(") AS e(n, kind, data) ORDER BY e.n RETURNING tx, id) SELECT ");
    out.push_sql(&message_columns("msg"));
    out.push_sql(
        ", thread.reply_count, last.tx, last.id FROM msg, thread, \
         (SELECT tx, max(id) AS id FROM ev GROUP BY tx) AS last",
    );
    Ok(())
}

impl QueryFragment<Pg> for AppendRoot {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.row.walk(&mut out)?;
        out.push_sql(
            ", thread AS (INSERT INTO threads (root_id, conversation_id, title, tags, settings, participant_ids, \
             root_seq, created_at, last_activity_at) SELECT msg.id, msg.conversation_id, ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.title)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.tags)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&self.settings)?;
        out.push_sql(", ARRAY[msg.author_id], msg.seq, msg.created_at, msg.created_at FROM msg RETURNING reply_count)");
        walk_events(&self.events, &mut out)
    }
}

impl QueryFragment<Pg> for AppendReply {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.row.walk(&mut out)?;
        out.push_sql(
            ", thread AS (UPDATE threads SET reply_count = reply_count + 1, last_activity_at = msg.created_at, \
             participant_ids = CASE WHEN msg.author_id IS NULL OR msg.author_id = ANY(participant_ids) \
             THEN participant_ids \
             ELSE array_append(participant_ids, msg.author_id) END \
             FROM msg WHERE threads.root_id = msg.root_id RETURNING reply_count)",
        );
        walk_events(&self.events, &mut out)
    }
}

/// The message, the thread's reply count after it, and the position (tx, id) of the last
/// event appended.
pub type Appended = (messages::SqlType, Int4, BigInt, BigInt);

impl Query for AppendRoot {
    type SqlType = Appended;
}

impl Query for AppendReply {
    type SqlType = Appended;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use skein_shared::thread::{MessageRole, MessageStatus};
    use skein_shared::{ConversationId, MessageId, UserId};

    use super::*;

    #[test]
    fn an_event_is_cut_at_its_own_field_whatever_the_text_says() {
        let id = MessageId::generate();
        let tricky = r#"{"seq":0,"reply_count":0} "seq":0 \"seq\":0"#;
        let message = Message {
            id,
            conversation_id: ConversationId::generate(),
            root_id: MessageId::generate(),
            parent_id: Some(MessageId::generate()),
            depth: 1,
            seq: 0,
            author_id: Some(UserId::generate()),
            author_kind: Default::default(),
            via: Default::default(),
            role: MessageRole::User,
            content: tricky.to_owned(),
            status: MessageStatus::Complete,
            client_msg_id: Some(tricky.to_owned()),
            created_at: stored_time(OffsetDateTime::now_utc()),
            edited_at: None,
            edit_count: 0,
            deleted_at: None,
            deleted_by: None,
            pinned: false,
            reactions: Vec::new(),
            mentions: Vec::new(),
        };
        let body = EventBody::MessageCreated(message.clone());
        let text = EventText::new(&body, Fill::Seq).unwrap();
        let filled = format!("{}{}{}", text.head, 42, text.tail);
        let expected = EventBody::MessageCreated(Message { seq: 42, ..message });
        assert_eq!(serde_json::from_str::<EventBody>(&filled).unwrap(), expected);
        assert_eq!(filled, serde_json::to_string(&expected).unwrap(), "the same text as any other event's");

        let activity = EventBody::ThreadActivity(ThreadActivity::new(id, 0, OffsetDateTime::UNIX_EPOCH));
        let text = EventText::new(&activity, Fill::ReplyCount).unwrap();
        let filled: EventBody = serde_json::from_str(&format!("{}7{}", text.head, text.tail)).unwrap();
        assert_eq!(filled, EventBody::ThreadActivity(ThreadActivity::new(id, 7, OffsetDateTime::UNIX_EPOCH)));
    }
}
