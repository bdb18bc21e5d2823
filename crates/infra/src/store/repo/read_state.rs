use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::DomainResult;
use skein_domain::ports::ReadStateRepo;
use skein_shared::event::{ConversationUnread, EventBody, ThreadUnread};
use skein_shared::{ConversationId, MessageId, UserId};
use uuid::Uuid;

use super::TxError;
use crate::store::codec::{ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::schema::{conversation_members, thread_reads};
use crate::store::{Store, db_error};

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
                    Some(root) => {
                        let inserted = diesel::insert_into(thread_reads::table)
                            .values((
                                thread_reads::user_id.eq(user_id),
                                thread_reads::root_id.eq(uuid(root)),
                                thread_reads::read_seq.eq(seq),
                            ))
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?;
                        if inserted == 1 {
                            1
                        } else {
                            diesel::update(thread_reads::table.find((user_id, uuid(root))))
                                .filter(thread_reads::read_seq.lt(seq))
                                .set(thread_reads::read_seq.eq(seq))
                                .execute(conn)
                                .await?
                        }
                    }
                    None => {
                        diesel::update(conversation_members::table.find((conv, user_id)))
                            .filter(conversation_members::read_seq.lt(seq))
                            .set(conversation_members::read_seq.eq(seq))
                            .execute(conn)
                            .await?
                    }
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
    let mut members = conversation_members::table
        .filter(conversation_members::user_id.eq(user))
        .select(conversation_members::conversation_id)
        .into_boxed();
    if let Some(c) = only {
        members = members.filter(conversation_members::conversation_id.eq(c));
    }
    let members: Vec<Uuid> = members.load(conn).await?;
    let pairs: Vec<(Uuid, Uuid)> = members.into_iter().map(|c| (user, c)).collect();
    Ok(counts_for(conn, &pairs).await?.into_iter().map(|(_, counts)| counts).collect())
}

/// Unread counts for each (user, conversation) pair where the user is a member, ordered by
/// user and conversation. One pass over the messages after each pair's conversation cursor
/// (`messages_unread_idx`).
pub(crate) async fn counts_for(
    conn: &mut AsyncPgConnection,
    pairs: &[(Uuid, Uuid)],
) -> QueryResult<Vec<(UserId, ConversationUnread)>> {
    let (users, conversations): (Vec<Uuid>, Vec<Uuid>) = pairs.iter().copied().unzip();
    let rows: Vec<CountRow> = diesel::sql_query(
        "SELECT cm.user_id, cm.conversation_id, u.thread, coalesce(u.n, 0) AS n, coalesce(u.mentions, 0) AS mentions, \
         coalesce(mp.mute_until > now(), false) AS muted \
         FROM unnest($1::uuid[], $2::uuid[]) AS p(user_id, conversation_id) \
         JOIN conversation_members cm ON cm.user_id = p.user_id AND cm.conversation_id = p.conversation_id \
         LEFT JOIN member_preferences mp ON mp.user_id = cm.user_id AND mp.conversation_id = cm.conversation_id \
         LEFT JOIN LATERAL ( \
           SELECT CASE WHEN m.parent_id IS NULL THEN NULL ELSE m.root_id END AS thread, count(*) AS n, \
             count(*) FILTER (WHERE cm.user_id = ANY(m.mentioned_user_ids) \
               OR m.mentions @> '[{\"kind\": \"channel\"}]' OR m.mentions @> '[{\"kind\": \"here\"}]') AS mentions \
           FROM messages m \
           LEFT JOIN thread_reads tr ON tr.user_id = cm.user_id AND tr.root_id = m.root_id \
           WHERE m.conversation_id = cm.conversation_id AND m.seq > cm.read_seq \
           AND m.author_id IS DISTINCT FROM cm.user_id AND m.deleted_at IS NULL \
           AND (m.parent_id IS NULL OR tr.read_seq IS NULL OR m.seq > tr.read_seq) \
           GROUP BY 1 \
         ) u ON true \
         ORDER BY 1, 2, 3 NULLS FIRST",
    )
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
