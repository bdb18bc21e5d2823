use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::DomainResult;
use skein_domain::ports::ReadStateRepo;
use skein_shared::event::{ConversationUnread, EventBody, ThreadUnread};
use skein_shared::{ConversationId, MessageId, UserId};
use uuid::Uuid;

use super::TxError;
use crate::store::codec::{ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::schema::{conversation_reads, thread_reads};
use crate::store::{Store, db_error};

/// Moves the user's cursor in a cursor table (keyed by user and `$key`) forward to `$seq`,
/// creating it at `$seq`; never back. Evaluates to the number of rows changed.
macro_rules! advance_cursor {
    ($conn:expr, $table:ident, $user:expr, $key:ident = $id:expr, $seq:expr) => {{
        let inserted = diesel::insert_into($table::table)
            .values(($table::user_id.eq($user), $table::$key.eq($id), $table::read_seq.eq($seq)))
            .on_conflict_do_nothing()
            .execute($conn)
            .await?;
        if inserted == 1 {
            1
        } else {
            diesel::update($table::table.find(($user, $id)))
                .filter($table::read_seq.lt($seq))
                .set($table::read_seq.eq($seq))
                .execute($conn)
                .await?
        }
    }};
}

impl ReadStateRepo for Store {
    async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        thread: Option<MessageId>,
        seq: i64,
    ) -> DomainResult<Option<ConversationUnread>> {
        let mut conn = self.conn().await?;
        let (conv, user_id) = (uuid(conversation), uuid(user));
        let counts = conn
            .transaction(async |conn| {
                log::lock_conversation(conn, conv).await?;
                let moved = match thread {
                    Some(root) => advance_cursor!(conn, thread_reads, user_id, root_id = uuid(root), seq),
                    // An implicit member's cursor starts with their first read.
                    None => advance_cursor!(conn, conversation_reads, user_id, conversation_id = conv, seq),
                };
                if moved == 0 {
                    return Ok::<_, TxError>(None);
                }
                let counts = counts(conn, user_id, Some(conv)).await?.pop().unwrap_or(ConversationUnread {
                    conversation_id: conversation,
                    unread: 0,
                    threads: Vec::new(),
                    mentions: 0,
                    muted: false,
                });
                let event = NewEvent {
                    audience: Some(user),
                    ..NewEvent::to_all(conversation, EventBody::UnreadUpdate(counts.clone()))
                };
                log::append(conn, &event).await?;
                Ok(Some(counts))
            })
            .await?;
        if counts.is_some() {
            self.signals.committed();
        }
        Ok(counts)
    }

    async fn unread_counts(&self, user: UserId, only: Option<ConversationId>) -> DomainResult<Vec<ConversationUnread>> {
        let mut conn = self.conn().await?;
        counts(&mut conn, uuid(user), only.map(uuid)).await.map_err(db_error)
    }
}

/// Whether message `m` counts as unread for the reader of cursor `r` (`conversation_reads`),
/// with `tr` their cursor of the message's thread (`thread_reads`, left-joined): someone
/// else's, not deleted, after the conversation cursor and, for a reply, after the thread's.
const COUNTS_AS_UNREAD: &str = "m.seq > r.read_seq AND m.author_id IS DISTINCT FROM r.user_id \
    AND m.deleted_at IS NULL AND (m.parent_id IS NULL OR tr.read_seq IS NULL OR m.seq > tr.read_seq)";

/// For a list of conversations: the user has something unread in it, as the counts count.
pub(super) fn has_unread<QS>(user: Uuid) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    Box::new(
        sql::<Bool>(
            "EXISTS (SELECT 1 FROM conversation_reads r JOIN messages m ON m.conversation_id = r.conversation_id \
         LEFT JOIN thread_reads tr ON tr.user_id = r.user_id AND tr.root_id = m.root_id \
         WHERE r.conversation_id = conversations.id AND r.user_id = ",
        )
        .bind::<SqlUuid, _>(user)
        .sql(&format!(" AND {COUNTS_AS_UNREAD})")),
    )
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    conversation_id: Uuid,
    /// `None` for the conversation's roots.
    #[diesel(sql_type = Nullable<SqlUuid>)]
    thread: Option<Uuid>,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    mentions: i64,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    muted: bool,
}

/// Unread counts of the user's conversations (or one of them), ordered by conversation id.
pub(super) async fn counts(
    conn: &mut AsyncPgConnection,
    user: Uuid,
    only: Option<Uuid>,
) -> QueryResult<Vec<ConversationUnread>> {
    let mut read = conversation_reads::table
        .filter(conversation_reads::user_id.eq(user))
        .select(conversation_reads::conversation_id)
        .into_boxed();
    if let Some(c) = only {
        read = read.filter(conversation_reads::conversation_id.eq(c));
    }
    let read: Vec<Uuid> = read.load(conn).await?;
    let pairs: Vec<(Uuid, Uuid)> = read.into_iter().map(|c| (user, c)).collect();
    Ok(counts_for(conn, &pairs).await?.into_iter().map(|(_, counts)| counts).collect())
}

/// Unread counts for each (user, conversation) pair where the user has a read cursor and
/// sees the conversation (an explicit member, or a non-guest of its workspace when it is
/// workspace-visible: leaving drops the cursor), ordered by user and conversation. One pass
/// over the messages after each pair's conversation cursor (`messages_unread_idx`).
pub(crate) async fn counts_for(
    conn: &mut AsyncPgConnection,
    pairs: &[(Uuid, Uuid)],
) -> QueryResult<Vec<(UserId, ConversationUnread)>> {
    let (users, conversations): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows: Vec<CountRow> = diesel::sql_query(format!(
        "SELECT r.user_id, r.conversation_id, u.thread, coalesce(u.n, 0) AS n, coalesce(u.mentions, 0) AS mentions, \
         coalesce(mp.mute_until > now(), false) AS muted \
         FROM unnest($1::uuid[], $2::uuid[]) AS p(user_id, conversation_id) \
         JOIN conversation_reads r ON r.user_id = p.user_id AND r.conversation_id = p.conversation_id \
         JOIN conversations c ON c.id = r.conversation_id \
         JOIN workspace_members wm ON wm.workspace_id = c.workspace_id AND wm.user_id = r.user_id \
         LEFT JOIN member_preferences mp ON mp.user_id = r.user_id AND mp.conversation_id = r.conversation_id \
         LEFT JOIN LATERAL ( \
           SELECT CASE WHEN m.parent_id IS NULL THEN NULL ELSE m.root_id END AS thread, count(*) AS n, \
             count(*) FILTER (WHERE r.user_id = ANY(m.mentioned_user_ids) \
               OR m.mentions @> '[{{\"kind\": \"channel\"}}]' OR m.mentions @> '[{{\"kind\": \"here\"}}]') AS mentions \
           FROM messages m \
           LEFT JOIN thread_reads tr ON tr.user_id = r.user_id AND tr.root_id = m.root_id \
           WHERE m.conversation_id = r.conversation_id AND {COUNTS_AS_UNREAD} \
           GROUP BY 1 \
         ) u ON true \
         WHERE (c.visibility = 'workspace' AND wm.role <> 'guest') OR EXISTS (SELECT 1 FROM conversation_members x \
           WHERE x.conversation_id = r.conversation_id AND x.user_id = r.user_id) \
         ORDER BY 1, 2, 3 NULLS FIRST"
    ))
    .bind::<Array<SqlUuid>, _>(users)
    .bind::<Array<SqlUuid>, _>(conversations)
    .load(conn)
    .await?;
    let mut out: Vec<(UserId, ConversationUnread)> = Vec::new();
    for row in rows {
        let (user, id) = (UserId(ulid(row.user_id)), ConversationId(ulid(row.conversation_id)));
        if out.last().is_none_or(|(u, c)| (*u, c.conversation_id) != (user, id)) {
            let counts = ConversationUnread {
                conversation_id: id,
                unread: 0,
                mentions: 0,
                threads: Vec::new(),
                muted: row.muted,
            };
            out.push((user, counts));
        }
        let Some((_, counts)) = out.last_mut() else { continue };
        match row.thread {
            None => (counts.unread, counts.mentions) = (row.n, row.mentions),
            Some(root) => counts.threads.push(ThreadUnread {
                root_id: MessageId(ulid(root)),
                unread: row.n,
                mentions: row.mentions,
            }),
        }
    }
    Ok(out)
}
