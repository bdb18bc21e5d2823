use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::TimeCursor;
use skein_domain::entities::{Created, HistoryAnchor, HistoryWindow, MessageRecord, NewMessage};
use skein_domain::ports::MessageRepo;
use skein_domain::{DomainError, DomainResult};
use skein_shared::thread::{MessageStatus, ThreadSummary, TreeNode};
use skein_shared::{ConversationId, MessageId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::TxError;
use crate::codec::{enum_to_db, unique_violation, uuid};
use crate::db::{Store, db_error};
use crate::rows::{MessageRow, ThreadRow};
use crate::schema::{conversations, messages, threads};

impl MessageRepo for Store {
    async fn insert_message(&self, new: NewMessage) -> DomainResult<Created<MessageRecord>> {
        let (conv, author) = (uuid(new.conversation_id), uuid(new.author_id));
        let mut conn = self.conn().await?;
        // A retry of a send that already landed: answer with the original.
        if let Some(existing) =
            by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await?
        {
            return Ok(Created::Existing(existing));
        }
        let result = conn
            .transaction(async |conn| insert_in_tx(conn, &new).await)
            .await;
        match result {
            Ok(row) => Ok(Created::New(row.into_record()?)),
            // Two identical sends raced and the other one committed first.
            Err(TxError::Db(e)) if unique_violation(&e) == Some("messages_client_msg_id_key") => {
                let existing =
                    by_client_msg_id(&mut conn, conv, author, new.client_msg_id.as_deref()).await?;
                existing
                    .map(Created::Existing)
                    .ok_or(DomainError::Internal("idempotent send vanished".into()))
            }
            Err(e) => Err(e.into()),
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
    ) -> DomainResult<Vec<TreeNode>> {
        let mut query = messages::table
            .filter(messages::root_id.eq(uuid(root)))
            .select(MessageRow::as_select())
            .order(messages::path)
            .limit(i64::from(limit))
            .into_boxed();
        // Depth-first order is path order, and a subtree is the contiguous range
        // [its path, its path with the last id incremented): both are index range scans.
        if let Some(after) = after {
            query = query.filter(messages::path.gt(path_of(after)));
        } else if let Some(top) = subtree {
            query = query.filter(messages::path.ge(path_of(top)));
        }
        if let Some(end) = subtree.and_then(|top| subtree_end(&path_of(top))) {
            query = query.filter(messages::path.lt(end));
        }
        if visible_after_seq > 0 {
            query = query.filter(messages::seq.gt(visible_after_seq));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<MessageRow> = query.load(&mut conn).await.map_err(db_error)?;
        rows.into_iter().map(MessageRow::into_tree_node).collect()
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
                    .or(threads::last_activity_at
                        .eq(c.at)
                        .and(threads::root_id.lt(uuid(c.id)))),
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
        let mut page = async |range| {
            seq_page(c, conv, visible_after_seq, range, limit)
                .await
                .map_err(db_error)
        };
        let (mut before, after, before_take, after_take) = match anchor {
            HistoryAnchor::Latest => (page(SeqRange::Below(None)).await?, Vec::new(), limit, 0),
            HistoryAnchor::Before(seq) => (
                page(SeqRange::Below(Some(seq))).await?,
                Vec::new(),
                limit,
                0,
            ),
            HistoryAnchor::After(seq) => {
                (Vec::new(), page(SeqRange::From(seq + 1)).await?, 0, limit)
            }
            HistoryAnchor::Around(seq) => {
                // Centre on the anchor, but fill the page from the other side near either end.
                let older = page(SeqRange::Below(Some(seq))).await?;
                let newer = page(SeqRange::From(seq)).await?;
                let before_take = (older.len() as u32)
                    .min((limit / 2).max(limit.saturating_sub(newer.len() as u32)));
                (older, newer, before_take, limit - before_take)
            }
        };
        // Each side was fetched with one extra row to learn whether more lies beyond.
        let more_before =
            before.len() > before_take as usize || matches!(anchor, HistoryAnchor::After(_));
        let more_after =
            after.len() > after_take as usize || matches!(anchor, HistoryAnchor::Before(_));
        before.truncate(before_take as usize);
        before.reverse();
        let messages = before
            .into_iter()
            .chain(after.into_iter().take(after_take as usize))
            .map(|row| row.into_record().map(|r| r.message))
            .collect::<Result<_, _>>()?;
        Ok(HistoryWindow {
            messages,
            more_before,
            more_after,
        })
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
        SeqRange::From(from) => query
            .filter(messages::seq.ge(from))
            .order(messages::seq.asc()),
        SeqRange::Below(Some(below)) => query
            .filter(messages::seq.lt(below))
            .order(messages::seq.desc()),
        SeqRange::Below(None) => query.order(messages::seq.desc()),
    };
    query.load(conn).await
}

/// The transaction that appends a message. Taking the conversation row's lock to bump
/// `last_seq` serialises writers per conversation, so sequence numbers become visible in
/// order and without gaps (a reader paging by `seq` can never skip a late commit).
async fn insert_in_tx(
    conn: &mut AsyncPgConnection,
    new: &NewMessage,
) -> Result<MessageRow, TxError> {
    let conv = uuid(new.conversation_id);
    let (seq, archived_at): (i64, Option<OffsetDateTime>) =
        diesel::update(conversations::table.find(conv))
            .set((
                conversations::last_seq.eq(conversations::last_seq + 1),
                conversations::last_activity_at.eq(diesel::dsl::now),
            ))
            .returning((conversations::last_seq, conversations::archived_at))
            .get_result(conn)
            .await?;
    if archived_at.is_some() {
        return Err(DomainError::archived().into());
    }
    let id = uuid(new.id);
    let (root_id, parent_id, depth, path) = match &new.parent {
        Some(parent) => {
            let mut path = path_of(parent);
            path.push(id);
            (
                uuid(parent.message.root_id),
                Some(uuid(parent.message.id)),
                parent.message.depth + 1,
                path,
            )
        }
        None => (id, None, 0, vec![id]),
    };
    let row = MessageRow {
        id,
        conversation_id: conv,
        root_id,
        parent_id,
        depth,
        path,
        seq,
        author_id: Some(uuid(new.author_id)),
        role: enum_to_db(new.role),
        content: new.content.clone(),
        status: enum_to_db(MessageStatus::Complete),
        client_msg_id: new.client_msg_id.clone(),
        created_at: OffsetDateTime::now_utc(),
    };
    let row = diesel::insert_into(messages::table)
        .values(&row)
        .returning(MessageRow::as_returning())
        .get_result(conn)
        .await?;
    let author = uuid(new.author_id);
    match &new.thread {
        Some(thread) => {
            diesel::insert_into(threads::table)
                .values((
                    threads::root_id.eq(id),
                    threads::conversation_id.eq(conv),
                    threads::title.eq(&thread.title),
                    threads::tags.eq(&thread.tags),
                    threads::participant_ids.eq(vec![author]),
                    threads::root_seq.eq(seq),
                    threads::created_at.eq(row.created_at),
                    threads::last_activity_at.eq(row.created_at),
                ))
                .execute(conn)
                .await?;
        }
        None => {
            diesel::sql_query(
                "UPDATE threads SET reply_count = reply_count + 1, last_activity_at = $2, \
                 participant_ids = CASE WHEN $3 = ANY(participant_ids) THEN participant_ids \
                 ELSE array_append(participant_ids, $3) END WHERE root_id = $1",
            )
            .bind::<diesel::sql_types::Uuid, _>(root_id)
            .bind::<diesel::sql_types::Timestamptz, _>(row.created_at)
            .bind::<diesel::sql_types::Uuid, _>(author)
            .execute(conn)
            .await?;
        }
    }
    Ok(row)
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
