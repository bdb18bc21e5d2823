use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::TimeCursor;
use skein_domain::entities::{ConversationAccess, Created, HistoryAnchor, HistoryWindow, MessageRecord, NewMessage};
use skein_domain::ports::MessageRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::thread::ThreadSummary;
use skein_shared::{ConversationId, MessageId, UserId};
use uuid::Uuid;

use super::standing::{in_conversation, in_workspace, standing};
use crate::codec::{enum_to_db, unique_violation, uuid};
use crate::db::{Store, db_error};
use crate::rows::{AccessRow, ConversationRow, MessageRow, ThreadRow, access};
use crate::schema::{conversation_members, conversations, messages, threads, workspace_members};

impl MessageRepo for Store {
    async fn insert_message(&self, new: NewMessage) -> DomainResult<Created<MessageRecord>> {
        let (conv, author) = (uuid(new.conversation_id), uuid(new.author_id));
        let mut conn = self.conn().await?;
        // A retry of a send that already landed: answer with the original.
        if let Some(existing) = by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await? {
            return Ok(Created::Existing(existing));
        }
        match append(&mut conn, &new).await {
            Ok(row) => Ok(Created::New(row.into_record()?)),
            // No row: the conversation was archived since the caller's access was checked.
            Err(DieselError::NotFound) => Err(DomainError::archived()),
            // Two identical sends raced and the other one committed first.
            Err(e) if unique_violation(&e) == Some("messages_client_msg_id_key") => {
                let existing = by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await?;
                existing.map(Created::Existing).ok_or(DomainError::Internal("idempotent send vanished".into()))
            }
            Err(e) => Err(db_error(e)),
        }
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
    ) -> DomainResult<Option<(MessageRecord, ConversationAccess)>> {
        let mut conn = self.conn().await?;
        let user = uuid(user);
        let row: Option<(MessageRow, AccessRow)> = messages::table
            .inner_join(conversations::table.on(conversations::id.eq(messages::conversation_id)))
            .inner_join(workspace_members::table.on(in_workspace(user)))
            .left_join(conversation_members::table.on(in_conversation(user)))
            .filter(messages::id.eq(uuid(id)))
            .select((MessageRow::as_select(), (ConversationRow::as_select(), standing())))
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(|(message, standing)| Ok((message.into_record()?, access(standing)?))).transpose()
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

/// Appends a message in one statement (one round trip). Bumping `last_seq` comes first and
/// takes the conversation row's lock until commit, which serialises writers per conversation:
/// sequence numbers become visible in order and without gaps, so a reader paging by `seq`
/// never skips a late commit. The thread summary row is locked after it, in the same order
/// by every writer. A failed statement (e.g. a duplicate `client_msg_id`) consumes nothing.
const APPEND: &str = "WITH conv AS (
        UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = now()
        WHERE id = $1 AND archived_at IS NULL
        RETURNING last_seq, last_activity_at
    ), msg AS (
        INSERT INTO messages (id, conversation_id, root_id, parent_id, depth, path, seq, author_id,
                              role, content, status, client_msg_id, created_at)
        SELECT $2, $1, $3, $4, $5, $6, conv.last_seq, $7, $8, $9, 'complete', $10, conv.last_activity_at
        FROM conv
        RETURNING *
    )";

const APPEND_ROOT: &str = ", thread AS (
        INSERT INTO threads (root_id, conversation_id, title, tags, participant_ids, root_seq, created_at, last_activity_at)
        SELECT msg.id, msg.conversation_id, $11, $12, ARRAY[msg.author_id], msg.seq, msg.created_at, msg.created_at
        FROM msg
    ) SELECT * FROM msg";

const APPEND_REPLY: &str = ", thread AS (
        UPDATE threads SET reply_count = reply_count + 1, last_activity_at = msg.created_at,
            participant_ids = CASE WHEN msg.author_id = ANY(participant_ids) THEN participant_ids
                                   ELSE array_append(participant_ids, msg.author_id) END
        FROM msg WHERE threads.root_id = msg.root_id
    ) SELECT * FROM msg";

async fn append(conn: &mut AsyncPgConnection, new: &NewMessage) -> Result<MessageRow, DieselError> {
    use diesel::sql_types::{Array, Int4, Nullable, Text, Uuid as SqlUuid};
    let id = uuid(new.id);
    let (root_id, parent_id, depth, path) = match &new.parent {
        Some(parent) => {
            let mut path = path_of(parent);
            path.push(id);
            (uuid(parent.message.root_id), Some(uuid(parent.message.id)), parent.message.depth + 1, path)
        }
        None => (id, None, 0, vec![id]),
    };
    let sql = format!("{APPEND}{}", if new.thread.is_some() { APPEND_ROOT } else { APPEND_REPLY });
    let query = diesel::sql_query(sql)
        .into_boxed()
        .bind::<SqlUuid, _>(uuid(new.conversation_id))
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(root_id)
        .bind::<Nullable<SqlUuid>, _>(parent_id)
        .bind::<Int4, _>(depth)
        .bind::<Array<SqlUuid>, _>(path)
        .bind::<SqlUuid, _>(uuid(new.author_id))
        .bind::<Text, _>(enum_to_db(new.role))
        .bind::<Text, _>(new.content.clone())
        .bind::<Nullable<Text>, _>(new.client_msg_id.clone());
    let query = match &new.thread {
        Some(thread) => {
            query.bind::<Nullable<Text>, _>(thread.title.clone()).bind::<Array<Text>, _>(thread.tags.clone())
        }
        None => query,
    };
    query.get_result(conn).await
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

fn path_of(record: &MessageRecord) -> Vec<Uuid> {
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
