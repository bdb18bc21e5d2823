//! Changes to posted messages: edits with their history, tombstones and the purge of their
//! content, reactions and pins. Each change takes the conversation's lock, re-reads the
//! message under it (a concurrent delete or archive wins) and appends its event in the same
//! transaction.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_domain::cursor::TimeCursor;
use skein_domain::entities::{Deletion, MessageRecord, Within};
use skein_domain::ports::MessageChanges;
use skein_domain::{DomainError, DomainResult};
use skein_shared::event::EventBody;
use skein_shared::message::{
    Mention, MessageVersion, PinChanged, PinnedMessage, ReactionChanged, ReactionCount, Reactor,
};
use skein_shared::thread::{Message, MessageStatus};
use skein_shared::{ConversationId, ErrorCode, MessageId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::TxError;
use super::append::{mention_columns, stored_time};
use crate::store::codec::{enum_to_db, ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::rows::MessageRow;
use crate::store::schema::{conversations, message_chunks, message_edits, messages, reactions, users};
use crate::store::{Store, db_error};

impl MessageChanges for Store {
    async fn edit_message(
        &self,
        id: MessageId,
        editor: UserId,
        content: String,
        mentions: Vec<Mention>,
    ) -> DomainResult<MessageRecord> {
        let now = stored_time(self.clock.now());
        let (shown, named) = mention_columns(&mentions).map_err(db_error)?;
        let mut conn = self.conn().await?;
        let record = conn
            .transaction(async |conn| {
                let old = locked_standing(conn, id).await?;
                diesel::insert_into(message_edits::table)
                    .values((
                        message_edits::message_id.eq(old.id),
                        message_edits::version.eq(old.edit_count),
                        message_edits::content.eq(&old.content),
                        message_edits::edited_at.eq(now),
                        message_edits::editor_id.eq(uuid(editor)),
                    ))
                    .execute(conn)
                    .await?;
                let row: MessageRow = diesel::update(messages::table.find(old.id))
                    .set((
                        messages::content.eq(&content),
                        messages::mentions.eq(&shown),
                        messages::mentioned_user_ids.eq(&named),
                        messages::edited_at.eq(now),
                        messages::edit_count.eq(messages::edit_count + 1),
                    ))
                    .returning(MessageRow::as_returning())
                    .get_result(conn)
                    .await?;
                let mut record = row.into_record()?;
                let message = &mut record.message;
                message.reactions = counts(conn, &[uuid(id)], None).await?.pop().map(|(_, r)| r).unwrap_or_default();
                let event = about(message, EventBody::MessageUpdated(message.clone()));
                log::append(conn, &event).await?;
                Ok::<_, TxError>(record)
            })
            .await?;
        self.signals.committed();
        Ok(record)
    }

    async fn message_versions(
        &self,
        id: MessageId,
        before: Option<i32>,
        limit: u32,
    ) -> DomainResult<Vec<MessageVersion>> {
        let mut query = message_edits::table
            .filter(message_edits::message_id.eq(uuid(id)))
            .select((
                message_edits::version,
                message_edits::content,
                message_edits::edited_at,
                message_edits::editor_id,
            ))
            .order(message_edits::version.desc())
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(message_edits::version.lt(before));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<(i32, String, OffsetDateTime, Uuid)> = query.load(&mut conn).await.map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(version, content, edited_at, editor)| MessageVersion {
                version,
                content,
                edited_at,
                editor_id: UserId(ulid(editor)),
            })
            .collect())
    }

    async fn delete_messages(
        &self,
        target: Deletion,
        by: UserId,
        purge_at: Option<OffsetDateTime>,
    ) -> DomainResult<Vec<Message>> {
        let now = stored_time(self.clock.now());
        let anchor = match target {
            Deletion::Message(id) | Deletion::Thread(id) => uuid(id),
        };
        let mut conn = self.conn().await?;
        let tombstones = conn
            .transaction(async |conn| {
                let conversation = lock_for(conn, anchor).await?;
                let standing = messages::table.filter(messages::deleted_at.is_null()).into_boxed();
                let standing = match target {
                    Deletion::Message(_) => standing.filter(messages::id.eq(anchor)),
                    Deletion::Thread(_) => standing.filter(messages::root_id.eq(anchor)),
                };
                let ids: Vec<Uuid> = standing.select(messages::id).load(conn).await?;
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut rows: Vec<MessageRow> = diesel::update(messages::table.filter(messages::id.eq_any(&ids)))
                    .set((
                        messages::deleted_at.eq(now),
                        messages::deleted_by.eq(uuid(by)),
                        messages::purge_at.eq(purge_at),
                        messages::pinned_at.eq(None::<OffsetDateTime>),
                        messages::pinned_by.eq(None::<Uuid>),
                    ))
                    .returning(MessageRow::as_returning())
                    .get_results(conn)
                    .await?;
                rows.sort_by(|a, b| a.path.cmp(&b.path));
                diesel::delete(reactions::table.filter(reactions::message_id.eq_any(&ids))).execute(conn).await?;
                if purge_at.is_none() {
                    erase(conn, conversation, &ids).await?;
                }
                let mut tombstones = Vec::with_capacity(rows.len());
                for row in rows {
                    let tombstone = row.into_record()?.message;
                    log::append(conn, &about(&tombstone, EventBody::MessageDeleted(tombstone.clone()))).await?;
                    tombstones.push(tombstone);
                }
                Ok::<_, TxError>(tombstones)
            })
            .await?;
        if !tombstones.is_empty() {
            self.signals.committed();
        }
        Ok(tombstones)
    }

    async fn purge_deleted(&self, now: OffsetDateTime) -> DomainResult<u64> {
        let mut conn = self.conn().await?;
        let due: Vec<(Uuid, Uuid)> = messages::table
            .filter(messages::purge_at.le(now))
            .select((messages::conversation_id, messages::id))
            .order(messages::conversation_id)
            .limit(PURGE_BATCH)
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        let mut purged = 0;
        for chunk in due.chunk_by(|a, b| a.0 == b.0) {
            let conversation = chunk[0].0;
            let ids: Vec<Uuid> = chunk.iter().map(|(_, id)| *id).collect();
            conn.transaction(async |conn| erase(conn, conversation, &ids).await).await.map_err(db_error)?;
            purged += ids.len() as u64;
        }
        Ok(purged)
    }

    async fn streaming_answers(&self, within: Within) -> DomainResult<Vec<MessageId>> {
        let mut conn = self.conn().await?;
        let streaming = messages::table.filter(messages::status.eq(enum_to_db(MessageStatus::Streaming)));
        let query = match within {
            Within::Thread(root) => streaming.filter(messages::root_id.eq(uuid(root))).into_boxed(),
            Within::Conversation(id) => streaming.filter(messages::conversation_id.eq(uuid(id))).into_boxed(),
        };
        let ids: Vec<Uuid> = query.select(messages::id).load(&mut conn).await.map_err(db_error)?;
        Ok(ids.into_iter().map(|id| MessageId(ulid(id))).collect())
    }

    async fn set_reaction(
        &self,
        message: &Message,
        user: UserId,
        emoji: &str,
        on: bool,
        max_emoji: usize,
    ) -> DomainResult<Option<ReactionChanged>> {
        let (id, user_id) = (uuid(message.id), uuid(user));
        // Wall-clock, as messages' times: it orders reactions (see `insert_message`).
        let now = stored_time(OffsetDateTime::now_utc());
        let mut conn = self.conn().await?;
        let changed = conn
            .transaction(async |conn| {
                locked_standing(conn, message.id).await?;
                let this_emoji =
                    reactions::table.filter(reactions::message_id.eq(id)).filter(reactions::emoji.eq(emoji));
                let changed = if on {
                    let known: i64 = this_emoji.count().get_result(conn).await?;
                    if known == 0 {
                        let distinct: i64 = reactions::table
                            .filter(reactions::message_id.eq(id))
                            .select(diesel::dsl::count(reactions::emoji).aggregate_distinct())
                            .get_result(conn)
                            .await?;
                        if distinct as usize >= max_emoji {
                            return Err(DomainError::rule(
                                ErrorCode::ReactionLimit,
                                "this message has as many different reactions as it may have",
                            )
                            .into());
                        }
                    }
                    diesel::insert_into(reactions::table)
                        .values((
                            reactions::message_id.eq(id),
                            reactions::emoji.eq(emoji),
                            reactions::user_id.eq(user_id),
                            reactions::created_at.eq(now),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?
                } else {
                    diesel::delete(this_emoji.filter(reactions::user_id.eq(user_id))).execute(conn).await?
                };
                if changed == 0 {
                    return Ok(None);
                }
                let count: i64 = this_emoji.count().get_result(conn).await?;
                let change = ReactionChanged {
                    conversation_id: message.conversation_id,
                    root_id: message.root_id,
                    message_id: message.id,
                    emoji: emoji.to_owned(),
                    user_id: user,
                    count,
                };
                let body = if on {
                    EventBody::ReactionAdded(change.clone())
                } else {
                    EventBody::ReactionRemoved(change.clone())
                };
                log::append(conn, &about(message, body)).await?;
                Ok::<_, TxError>(Some(change))
            })
            .await?;
        if changed.is_some() {
            self.signals.committed();
        }
        Ok(changed)
    }

    async fn reaction_counts(
        &self,
        viewer: UserId,
        messages: &[MessageId],
    ) -> DomainResult<Vec<(MessageId, Vec<ReactionCount>)>> {
        let ids: Vec<Uuid> = messages.iter().map(|m| uuid(*m)).collect();
        let mut conn = self.conn().await?;
        let counts = counts(&mut conn, &ids, Some(uuid(viewer))).await.map_err(db_error)?;
        Ok(counts.into_iter().map(|(id, r)| (MessageId(ulid(id)), r)).collect())
    }

    async fn reactors(
        &self,
        message: MessageId,
        emoji: &str,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> DomainResult<Vec<Reactor>> {
        let mut query = reactions::table
            .inner_join(users::table.on(users::id.eq(reactions::user_id)))
            .filter(reactions::message_id.eq(uuid(message)))
            .filter(reactions::emoji.eq(emoji))
            .select((reactions::user_id, users::display_name, reactions::created_at))
            .order((reactions::created_at, reactions::user_id))
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(c) = after {
            let id = Uuid::from(c.id);
            query = query.filter(
                reactions::created_at.gt(c.at).or(reactions::created_at.eq(c.at).and(reactions::user_id.gt(id))),
            );
        }
        let mut conn = self.conn().await?;
        let rows: Vec<(Uuid, String, OffsetDateTime)> = query.load(&mut conn).await.map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(user, display_name, reacted_at)| Reactor { user_id: UserId(ulid(user)), display_name, reacted_at })
            .collect())
    }

    async fn set_pinned(&self, message: &Message, by: UserId, pinned: bool) -> DomainResult<Option<PinChanged>> {
        // Wall-clock, as messages' and reactions' times: it orders the pins list.
        let now = stored_time(OffsetDateTime::now_utc());
        let mut conn = self.conn().await?;
        let changed = conn
            .transaction(async |conn| {
                locked_standing(conn, message.id).await?;
                let target = messages::table.find(uuid(message.id));
                let changed = if pinned {
                    diesel::update(target.filter(messages::pinned_at.is_null()))
                        .set((messages::pinned_at.eq(now), messages::pinned_by.eq(uuid(by))))
                        .execute(conn)
                        .await?
                } else {
                    diesel::update(target.filter(messages::pinned_at.is_not_null()))
                        .set((messages::pinned_at.eq(None::<OffsetDateTime>), messages::pinned_by.eq(None::<Uuid>)))
                        .execute(conn)
                        .await?
                };
                if changed == 0 {
                    return Ok(None);
                }
                let change = PinChanged {
                    conversation_id: message.conversation_id,
                    root_id: message.root_id,
                    message_id: message.id,
                    by,
                    at: now,
                };
                let body = if pinned {
                    EventBody::MessagePinned(change.clone())
                } else {
                    EventBody::MessageUnpinned(change.clone())
                };
                log::append(conn, &about(message, body)).await?;
                Ok::<_, TxError>(Some(change))
            })
            .await?;
        if changed.is_some() {
            self.signals.committed();
        }
        Ok(changed)
    }

    async fn pins(
        &self,
        conversation: ConversationId,
        visible_after_seq: i64,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> DomainResult<Vec<PinnedMessage>> {
        let mut query = messages::table
            .filter(messages::conversation_id.eq(uuid(conversation)))
            .filter(messages::pinned_at.is_not_null())
            .filter(messages::seq.gt(visible_after_seq))
            .select(MessageRow::as_select())
            .order((messages::pinned_at.desc(), messages::id.desc()))
            .limit(i64::from(limit))
            .into_boxed();
        if let Some(c) = after {
            let id = Uuid::from(c.id);
            query =
                query.filter(messages::pinned_at.lt(c.at).or(messages::pinned_at.eq(c.at).and(messages::id.lt(id))));
        }
        let mut conn = self.conn().await?;
        let rows: Vec<MessageRow> = query.load(&mut conn).await.map_err(db_error)?;
        let mut pins = Vec::with_capacity(rows.len());
        for row in rows {
            let (Some(pinned_at), Some(pinned_by)) = (row.pinned_at, row.pinned_by) else { continue };
            pins.push(PinnedMessage {
                message: row.into_record()?.message,
                pinned_by: UserId(ulid(pinned_by)),
                pinned_at,
            });
        }
        Ok(pins)
    }
}

/// Tombstones purged per run of the purge.
const PURGE_BATCH: i64 = 1000;

/// An event about one message, for everyone in its conversation.
fn about(message: &Message, body: EventBody) -> NewEvent {
    NewEvent::about_message(message.conversation_id, message.root_id, message.id, body)
}

/// Takes the lock of the conversation that `message` is in; returns the conversation.
/// `NotFound` if the message is gone (its conversation was deleted), `ConversationArchived`
/// if the conversation is archived now.
async fn lock_for(conn: &mut AsyncPgConnection, message: Uuid) -> Result<Uuid, TxError> {
    let conversation: Option<Uuid> =
        messages::table.find(message).select(messages::conversation_id).first(conn).await.optional()?;
    let conversation = conversation.ok_or(DomainError::NotFound)?;
    log::lock_conversation(conn, conversation).await?;
    let archived: Option<OffsetDateTime> =
        conversations::table.find(conversation).select(conversations::archived_at).first(conn).await?;
    if archived.is_some() {
        return Err(DomainError::archived().into());
    }
    Ok(conversation)
}

/// The message under its conversation's lock, still standing (not deleted).
async fn locked_standing(conn: &mut AsyncPgConnection, message: MessageId) -> Result<MessageRow, TxError> {
    lock_for(conn, uuid(message)).await?;
    let row: MessageRow =
        messages::table.find(uuid(message)).select(MessageRow::as_select()).for_update().first(conn).await?;
    if row.deleted_at.is_some() {
        return Err(DomainError::rule(ErrorCode::MessageDeleted, "the message was deleted").into());
    }
    Ok(row)
}

/// Erases what deleted messages said: their content, edit history and streamed chunks, and
/// their content in the events that carried it (so a replay shows the tombstone's empty
/// content there too).
async fn erase(conn: &mut AsyncPgConnection, conversation: Uuid, ids: &[Uuid]) -> QueryResult<()> {
    diesel::update(messages::table.filter(messages::id.eq_any(ids)))
        .set((
            messages::content.eq(""),
            messages::mentions.eq(serde_json::json!([])),
            messages::mentioned_user_ids.eq(Vec::<Uuid>::new()),
            messages::purge_at.eq(None::<OffsetDateTime>),
        ))
        .execute(conn)
        .await?;
    diesel::delete(message_edits::table.filter(message_edits::message_id.eq_any(ids))).execute(conn).await?;
    diesel::delete(message_chunks::table.filter(message_chunks::message_id.eq_any(ids))).execute(conn).await?;
    // The events' JSON keeps its other fields; only the content goes. (Through the
    // conversation's index: deletes are rare and the log is bounded by retention.)
    diesel::sql_query(
        "UPDATE events SET data = CASE kind \
           WHEN 'thread.new' THEN jsonb_set(jsonb_set(data::jsonb, '{data,root,content}', '\"\"'), \
             '{data,root,mentions}', '[]')::text \
           ELSE jsonb_set(jsonb_set(data::jsonb, '{data,content}', '\"\"'), '{data,mentions}', '[]')::text END \
         WHERE conversation_id = $1 AND message_id = ANY($2) \
         AND kind IN ('thread.new', 'message.created', 'message.updated')",
    )
    .bind::<SqlUuid, _>(conversation)
    .bind::<Array<SqlUuid>, _>(ids)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = SqlUuid)]
    message_id: Uuid,
    #[diesel(sql_type = Text)]
    emoji: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Bool>)]
    me: Option<bool>,
}

/// Reactions on each of `ids` that has any, emoji in the order each was first used; with
/// `me` for `viewer` when given.
async fn counts(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    viewer: Option<Uuid>,
) -> QueryResult<Vec<(Uuid, Vec<ReactionCount>)>> {
    let rows: Vec<CountRow> = diesel::sql_query(
        "SELECT message_id, emoji, count(*) AS n, CASE WHEN $2::uuid IS NULL THEN NULL ELSE bool_or(user_id = $2) END AS me \
         FROM reactions WHERE message_id = ANY($1) \
         GROUP BY message_id, emoji ORDER BY message_id, min(created_at), emoji",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Nullable<SqlUuid>, _>(viewer)
    .load(conn)
    .await?;
    let mut out: Vec<(Uuid, Vec<ReactionCount>)> = Vec::new();
    for row in rows {
        if out.last().is_none_or(|(id, _)| *id != row.message_id) {
            out.push((row.message_id, Vec::new()));
        }
        if let Some((_, reactions)) = out.last_mut() {
            reactions.push(ReactionCount { emoji: row.emoji, count: row.n, me: row.me });
        }
    }
    Ok(out)
}
