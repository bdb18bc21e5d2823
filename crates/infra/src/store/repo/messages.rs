use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::{EventCursor, TimeCursor};
use skein_domain::entities::{
    ConversationAccess, Created, HistoryAnchor, HistoryWindow, MessageRecord, NewMessage, ThreadAi, ThreadFilter,
};
use skein_domain::ports::MessageRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::thread::{AuthorKind, Message, MessageRole, MessageStatus, ThreadSummary};
use skein_shared::{ConversationId, MessageId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::TxError;
use super::append::{AppendReply, AppendRoot, stored_time};
use super::standing::{departed_from, in_conversation, in_workspace, standing};
use crate::store::codec::{unique_violation, uuid};
use crate::store::rows::{AccessRow, ConversationRow, MessageRow, ThreadRow, access, thread_settings};
use crate::store::schema::{
    conversation_members, conversations, departure_spans, messages, threads, workspace_members,
};
use crate::store::{Store, db_error};

impl MessageRepo for Store {
    async fn insert_message(&self, new: NewMessage) -> DomainResult<Created<MessageRecord>> {
        let (conv, author) = (uuid(new.conversation_id), uuid(new.author_id));
        let mut conn = self.conn().await?;
        // A retry of a send that already landed: answer with the original.
        if let Some(existing) = by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await? {
            return Ok(Created::Existing(existing));
        }
        // One statement, committed on its own.
        // Messages carry wall-clock times (the activity order of threads and conversations
        // follows them); the server's clock decides expiry.
        match append(&mut conn, &new, OffsetDateTime::now_utc()).await {
            Ok(record) => {
                self.signals.committed();
                Ok(Created::New(record))
            }
            // No row: the conversation was archived since the caller's access was checked.
            Err(TxError::Db(DieselError::NotFound)) => Err(DomainError::archived()),
            // Two identical sends raced and the other one committed first.
            Err(TxError::Db(e)) if unique_violation(&e) == Some("messages_client_msg_id_key") => {
                let existing = by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await?;
                existing.map(Created::Existing).ok_or(DomainError::Internal("idempotent send vanished".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn thread_leaf(&self, root: MessageId) -> DomainResult<Option<MessageId>> {
        let mut conn = self.conn().await?;
        let leaf: Option<Uuid> = messages::table
            .filter(messages::root_id.eq(uuid(root)))
            .filter(messages::deleted_at.is_null())
            .filter(messages::status.ne("streaming"))
            .order(messages::seq.desc())
            .select(messages::id)
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(leaf.map(|id| MessageId(ulid::Ulid::from(id))))
    }

    async fn get_message(&self, id: MessageId) -> DomainResult<Option<MessageRecord>> {
        let mut conn = self.conn().await?;
        let row = messages::table
            .find(uuid(id))
            .select(MessageRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(MessageRow::into_record).transpose()
    }

    async fn message_access(
        &self,
        id: MessageId,
        user: UserId,
    ) -> DomainResult<Option<(MessageRecord, ConversationAccess, ThreadAi)>> {
        let conn = self.conn().await?;
        let (message, user) = (uuid(id), uuid(user));
        let access_read = messages::table
            .inner_join(conversations::table.on(conversations::id.eq(messages::conversation_id)))
            .inner_join(workspace_members::table.on(in_workspace(user)))
            .left_join(conversation_members::table.on(in_conversation(user)))
            .left_join(departure_spans::table.on(departed_from(user)))
            .filter(messages::id.eq(message))
            .select((MessageRow::as_select(), (ConversationRow::as_select(), standing())))
            .first::<(MessageRow, AccessRow)>(&mut &*conn);
        let roots = messages::table.filter(messages::id.eq(message)).select(messages::root_id);
        let thread_read = threads::table
            .filter(threads::root_id.eq_any(roots))
            .select((threads::settings, threads::title))
            .first::<(serde_json::Value, Option<String>)>(&mut &*conn);
        // Pipelined on the one connection: both reads in one round trip.
        let read = futures_util::future::try_join(access_read, thread_read).await.optional().map_err(db_error)?;
        let Some(((message, standing), (settings, title))) = read else {
            return Ok(None);
        };
        let access = access(standing)?;
        let thread = ThreadAi {
            settings: thread_settings(settings)?,
            default_assistant: access.conversation.default_assistant_id,
            title,
        };
        Ok(Some((message.into_record()?, access, thread)))
    }

    async fn thread_summary(&self, root: MessageId) -> DomainResult<Option<ThreadSummary>> {
        let mut conn = self.conn().await?;
        let row: Option<(ThreadRow, MessageRow)> = threads::table
            .inner_join(messages::table.on(messages::id.eq(threads::root_id)))
            .filter(threads::root_id.eq(uuid(root)))
            .select((ThreadRow::as_select(), MessageRow::as_select()))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(|(t, m)| t.with_root(m)).transpose()
    }

    async fn tree_page(
        &self,
        root: MessageId,
        subtree: Option<&MessageRecord>,
        after: Option<&MessageRecord>,
        visible_after_seq: i64,
        limit: u32,
    ) -> DomainResult<Vec<MessageRecord>> {
        // Depth-first order is path order, and a subtree is the contiguous range
        // [its path, its path with the last id incremented): both are index range scans.
        let mut lower = match (after, subtree) {
            (Some(after), _) => Some(PathBound::After(path_of(after))),
            (None, Some(top)) => Some(PathBound::From(path_of(top))),
            (None, None) => None,
        };
        let end = subtree.and_then(|top| subtree_end(&path_of(top)));
        let mut conn = self.conn().await?;
        let mut nodes = Vec::with_capacity(limit.min(TREE_CHUNK) as usize);
        // Read in chunks: asked for a whole large tree at once, PostgreSQL's default costs
        // favour a sequential scan and an on-disk sort of the paths (4x slower than walking
        // the index); a chunk of this size keeps it on the index, in order.
        while nodes.len() < limit as usize {
            let want = (limit as usize - nodes.len()).min(TREE_CHUNK as usize);
            let mut query = messages::table
                .filter(messages::root_id.eq(uuid(root)))
                .select(MessageRow::as_select())
                .order(messages::path)
                .limit(want as i64)
                .into_boxed();
            query = match &lower {
                Some(PathBound::After(path)) => query.filter(messages::path.gt(path.clone())),
                Some(PathBound::From(path)) => query.filter(messages::path.ge(path.clone())),
                None => query,
            };
            if let Some(end) = &end {
                query = query.filter(messages::path.lt(end.clone()));
            }
            if visible_after_seq > 0 {
                query = query.filter(messages::seq.gt(visible_after_seq));
            }
            let rows: Vec<MessageRow> = query.load(&mut conn).await.map_err(db_error)?;
            let done = rows.len() < want;
            lower = rows.last().map(|r| PathBound::After(r.path.clone()));
            for row in rows {
                nodes.push(row.into_record()?);
            }
            if done {
                break;
            }
        }
        Ok(nodes)
    }

    async fn list_threads(
        &self,
        conversation: ConversationId,
        filter: &ThreadFilter,
        after: Option<TimeCursor>,
        visible_after_seq: i64,
        limit: u32,
    ) -> DomainResult<Vec<ThreadSummary>> {
        let mut query = threads::table
            .inner_join(messages::table.on(messages::id.eq(threads::root_id)))
            .filter(threads::conversation_id.eq(uuid(conversation)))
            .select((ThreadRow::as_select(), MessageRow::as_select()))
            .order((threads::last_activity_at.desc(), threads::root_id.desc()))
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(c) = after {
            query = query.filter(
                threads::last_activity_at
                    .lt(c.at)
                    .or(threads::last_activity_at.eq(c.at).and(threads::root_id.lt(uuid(c.id)))),
            );
        }
        if visible_after_seq > 0 {
            query = query.filter(threads::root_seq.gt(visible_after_seq));
        }
        if !filter.tags.is_empty() {
            query = query.filter(threads::tags.contains(filter.tags.clone()));
        }
        if let Some(author) = filter.author {
            query = query.filter(messages::author_id.eq(uuid(author)));
        }
        if let Some(participant) = filter.participant {
            query = query.filter(threads::participant_ids.contains(vec![uuid(participant)]));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<(ThreadRow, MessageRow)> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(|(t, m)| t.with_root(m)).collect()
    }

    async fn history(
        &self,
        conversation: ConversationId,
        anchor: HistoryAnchor,
        visible_after_seq: i64,
        limit: u32,
    ) -> DomainResult<HistoryWindow> {
        let mut conn = self.conn().await?;
        let conv = uuid(conversation);
        let c = &mut conn;
        let mut page = async |range| seq_page(c, conv, visible_after_seq, range, limit).await.map_err(db_error);
        let (mut before, after, before_take, after_take) = match anchor {
            HistoryAnchor::Latest => (page(SeqRange::Below(None)).await?, Vec::new(), limit, 0),
            HistoryAnchor::Before(seq) => (page(SeqRange::Below(Some(seq))).await?, Vec::new(), limit, 0),
            HistoryAnchor::After(seq) => (Vec::new(), page(SeqRange::From(seq + 1)).await?, 0, limit),
            HistoryAnchor::Around(seq) => {
                // Centre on the anchor, but fill the page from the other side near either end.
                let older = page(SeqRange::Below(Some(seq))).await?;
                let newer = page(SeqRange::From(seq)).await?;
                let before_take = (older.len() as u32).min((limit / 2).max(limit.saturating_sub(newer.len() as u32)));
                (older, newer, before_take, limit - before_take)
            }
        };
        // Each side was fetched with one extra row to learn whether more lies beyond.
        let more_before = before.len() > before_take as usize || matches!(anchor, HistoryAnchor::After(_));
        let more_after = after.len() > after_take as usize || matches!(anchor, HistoryAnchor::Before(_));
        before.truncate(before_take as usize);
        before.reverse();
        let messages = before
            .into_iter()
            .chain(after.into_iter().take(after_take as usize))
            .map(|row| row.into_record().map(|r| r.message))
            .collect::<Result<_, _>>()?;
        Ok(HistoryWindow { messages, more_before, more_after })
    }
}

enum SeqRange {
    /// Below this sequence (or from the newest), newest first.
    Below(Option<i64>),
    /// From this sequence on, oldest first.
    From(i64),
}

/// Up to `n + 1` visible messages of a conversation in `range`: the extra row tells whether
/// the page is the last one.
async fn seq_page(
    conn: &mut AsyncPgConnection,
    conv: Uuid,
    visible_after_seq: i64,
    range: SeqRange,
    n: u32,
) -> QueryResult<Vec<MessageRow>> {
    let query = messages::table
        .filter(messages::conversation_id.eq(conv))
        .filter(messages::seq.gt(visible_after_seq))
        .select(MessageRow::as_select())
        .limit(i64::from(n) + 1)
        .into_boxed();
    let query = match range {
        SeqRange::From(from) => query.filter(messages::seq.ge(from)).order(messages::seq.asc()),
        SeqRange::Below(Some(below)) => query.filter(messages::seq.lt(below)).order(messages::seq.desc()),
        SeqRange::Below(None) => query.order(messages::seq.desc()),
    };
    query.load(conn).await
}

/// Inserts the message with its thread bookkeeping and its events (`thread.new` for a root;
/// `message.created` and `thread.activity` for a reply) in one statement.
async fn append(conn: &mut AsyncPgConnection, new: &NewMessage, now: OffsetDateTime) -> Result<MessageRecord, TxError> {
    let created_at = stored_time(now);
    let mut message = Message {
        id: new.id,
        conversation_id: new.conversation_id,
        root_id: new.id,
        parent_id: None,
        depth: 0,
        seq: 0,
        author_id: Some(new.author_id),
        author_kind: match (new.role, new.via.api_key_id) {
            (MessageRole::Assistant, _) => AuthorKind::Assistant,
            (MessageRole::System, _) => AuthorKind::System,
            (MessageRole::User, Some(_)) => AuthorKind::Service,
            (MessageRole::User, None) => AuthorKind::User,
        },
        via: new.via,
        role: new.role,
        content: new.content.clone(),
        status: MessageStatus::Complete,
        client_msg_id: new.client_msg_id.clone(),
        created_at,
        edited_at: None,
        edit_count: 0,
        deleted_at: None,
        deleted_by: None,
        pinned: false,
        reactions: Vec::new(),
        mentions: new.mentions.clone(),
    };
    match (&new.parent, &new.thread) {
        (Some(parent), _) => {
            let path = under(parent, &mut message);
            Ok(append_reply(conn, message, path).await?.0)
        }
        (None, Some(thread)) => {
            let root = AppendRoot::new(message, thread.title.clone(), thread.tags.clone(), thread.settings.clone())?;
            Ok(appended(root.get_result(conn).await?)?.0)
        }
        (None, None) => Err(DomainError::Internal("a root without its thread".into()).into()),
    }
}

/// Places `message` under `parent`: its root, parent and depth; returns its path.
pub(super) fn under(parent: &MessageRecord, message: &mut Message) -> Vec<Uuid> {
    message.root_id = parent.message.root_id;
    message.parent_id = Some(parent.message.id);
    message.depth = parent.message.depth + 1;
    let mut path = path_of(parent);
    path.push(uuid(message.id));
    path
}

/// Appends a reply with its `message.created` and `thread.activity`; returns the reply and
/// the cursor of the last of those events. Inside a transaction, it must come first.
pub(super) async fn append_reply(
    conn: &mut AsyncPgConnection,
    reply: Message,
    path: Vec<Uuid>,
) -> Result<(MessageRecord, EventCursor), TxError> {
    appended(AppendReply::new(reply, path)?.get_result(conn).await?)
}

fn appended((row, _, tx, id): (MessageRow, i32, i64, i64)) -> Result<(MessageRecord, EventCursor), TxError> {
    Ok((row.into_record()?, EventCursor { tx, id }))
}

/// The message this author already sent with this `client_msg_id` in the conversation.
async fn by_client_msg_id(
    conn: &mut AsyncPgConnection,
    conv: Uuid,
    author: Uuid,
    client_msg_id: Option<&str>,
) -> DomainResult<Option<MessageRecord>> {
    let Some(client_msg_id) = client_msg_id else {
        return Ok(None);
    };
    let row = messages::table
        .filter(messages::conversation_id.eq(conv))
        .filter(messages::author_id.eq(author))
        .filter(messages::client_msg_id.eq(client_msg_id))
        .select(MessageRow::as_select())
        .first(conn)
        .await
        .optional()
        .map_err(db_error)?;
    row.map(MessageRow::into_record).transpose()
}

/// Rows per statement when reading a tree (see `tree_page`).
const TREE_CHUNK: u32 = 1000;

/// Where a tree read starts: strictly after a path, or at it.
enum PathBound {
    After(Vec<Uuid>),
    From(Vec<Uuid>),
}

pub(super) fn path_of(record: &MessageRecord) -> Vec<Uuid> {
    record.path.iter().map(|id| uuid(*id)).collect()
}

/// The first path after every path in the subtree at `path`: its last id plus one.
/// `None` only for the largest possible id, whose subtree then runs to the end.
fn subtree_end(path: &[Uuid]) -> Option<Vec<Uuid>> {
    let (last, prefix) = path.split_last()?;
    let next = last.as_u128().checked_add(1)?;
    let mut end = prefix.to_vec();
    end.push(Uuid::from_u128(next));
    Some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_end_increments_the_last_id_only() {
        let a = Uuid::from_u128(5);
        let b = Uuid::from_u128(0xff);
        assert_eq!(subtree_end(&[a, b]), Some(vec![a, Uuid::from_u128(0x100)]));
        assert_eq!(subtree_end(&[a, Uuid::from_u128(u128::MAX)]), None);
        assert_eq!(subtree_end(&[]), None);
    }
}
