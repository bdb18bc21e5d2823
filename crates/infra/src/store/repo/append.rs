//! Appending a message: one statement, one round trip, prepared once per connection.
//!
//! A data-modifying CTE first bumps `conversations.last_seq`, taking that row's lock until
//! commit: writers of one conversation are serialised, so sequence numbers become visible in
//! order and without gaps and a reader paging by `seq` never skips a late commit. It then
//! inserts the message and creates or updates the thread summary (the thread row is always
//! locked after the conversation row, so writers cannot deadlock). If the conversation was
//! archived meanwhile no row comes back; a failed statement (a duplicate `client_msg_id`)
//! consumes no sequence number.
//!
//! These are hand-written query types rather than `sql_query` because diesel never caches a
//! `sql_query`'s prepared statement; each type here has a static query id, so PostgreSQL
//! parses and plans the statement once per connection. Every value is bound exactly once, in
//! the order it appears in the text.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, Int4, Jsonb, Nullable, Text, Uuid as SqlUuid};
use uuid::Uuid;

use crate::store::schema::messages;

/// The message columns both statements insert.
pub struct AppendRow {
    pub conversation_id: Uuid,
    pub id: Uuid,
    pub root_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub depth: i32,
    pub path: Vec<Uuid>,
    /// `None` for an assistant's message.
    pub author_id: Option<Uuid>,
    pub role: String,
    pub content: String,
    /// `complete`, or `streaming` for an assistant message being generated.
    pub status: String,
    pub client_msg_id: Option<String>,
}

/// A thread root: the message and a new thread summary.
#[derive(QueryId)]
pub struct AppendRoot {
    pub row: AppendRow,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// `ThreadSettings` as JSON.
    pub settings: serde_json::Value,
}

/// A reply: the message, and the thread summary's count, participants and activity.
/// Returns the message and the new reply count.
#[derive(QueryId)]
pub struct AppendReply(pub AppendRow);

impl AppendRow {
    fn walk_message<'b>(&'b self, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH conv AS (UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now() WHERE id = ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.conversation_id)?;
        out.push_sql(
            " AND archived_at IS NULL RETURNING id, last_seq, last_activity_at), \
             msg AS (INSERT INTO messages (id, conversation_id, root_id, parent_id, depth, path, seq, \
             author_id, role, content, status, client_msg_id, created_at) SELECT ",
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
        out.push_sql(", conv.last_activity_at FROM conv RETURNING *)");
        Ok(())
    }
}

impl QueryFragment<Pg> for AppendRoot {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.row.walk_message(&mut out)?;
        out.push_sql(
            ", thread AS (INSERT INTO threads (root_id, conversation_id, title, tags, settings, participant_ids, \
             root_seq, created_at, last_activity_at) SELECT msg.id, msg.conversation_id, ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.title)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.tags)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&self.settings)?;
        out.push_sql(", ARRAY[msg.author_id], msg.seq, msg.created_at, msg.created_at FROM msg) SELECT * FROM msg");
        Ok(())
    }
}

impl QueryFragment<Pg> for AppendReply {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_message(&mut out)?;
        out.push_sql(
            ", thread AS (UPDATE threads SET reply_count = reply_count + 1, last_activity_at = msg.created_at, \
             participant_ids = CASE WHEN msg.author_id IS NULL OR msg.author_id = ANY(participant_ids) \
             THEN participant_ids \
             ELSE array_append(participant_ids, msg.author_id) END \
             FROM msg WHERE threads.root_id = msg.root_id RETURNING reply_count) SELECT msg.*, thread.reply_count \
             FROM msg, thread",
        );
        Ok(())
    }
}

impl Query for AppendRoot {
    type SqlType = messages::SqlType;
}

/// The message, and the thread's reply count after it.
impl Query for AppendReply {
    type SqlType = (messages::SqlType, Int4);
}
