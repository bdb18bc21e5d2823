//! The database side of a running generation: coalesced flushes, the single terminal write
//! with its events, and failing what a dead instance left behind.

use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_shared::assistant::{GenerationError, GenerationErrorCode, MessageDone, Usage};
use skein_shared::event::{EventBody, StreamError};
use skein_shared::thread::MessageStatus;
use skein_shared::{ConversationId, ErrorCode, MessageId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::runner::Job;
use crate::codec::{enum_to_db, ulid, uuid};
use crate::db::PgPool;
use crate::events::log::{self, NewEvent};
use crate::schema::{generations, message_chunks, messages};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("pool: {0}")]
    Pool(String),
}

async fn conn(pool: &PgPool) -> Result<crate::db::PgConn, StoreError> {
    pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
}

pub struct Flushed {
    pub wrote: bool,
    pub cancel_requested: bool,
}

#[derive(QueryableByName)]
struct FlushRow {
    #[diesel(sql_type = Bool)]
    cancel_requested: bool,
    #[diesel(sql_type = Bool)]
    wrote: bool,
}

/// Appends `pending` to the message and as chunk `index` (one statement), and reads whether
/// a cancel was requested through the database.
pub async fn flush(
    pool: &PgPool,
    message: MessageId,
    index: i32,
    offset: u32,
    pending: &str,
) -> Result<Flushed, StoreError> {
    let mut conn = conn(pool).await?;
    let row: FlushRow = diesel::sql_query(
        "WITH chunk AS (INSERT INTO message_chunks (message_id, idx, char_offset, content) \
           SELECT $1, $2, $3, $4 WHERE $4 <> '' RETURNING 1), \
         msg AS (UPDATE messages SET content = content || $4 WHERE id = $1 AND $4 <> '' RETURNING 1) \
         SELECT g.cancel_requested, EXISTS (SELECT 1 FROM chunk) AND EXISTS (SELECT 1 FROM msg) AS wrote \
         FROM generations g WHERE g.message_id = $1",
    )
    .bind::<SqlUuid, _>(uuid(message))
    .bind::<Integer, _>(index)
    .bind::<Integer, _>(offset as i32)
    .bind::<Text, _>(pending)
    .get_result(&mut conn)
    .await?;
    Ok(Flushed { wrote: row.wrote, cancel_requested: row.cancel_requested })
}

/// How a generation ended.
pub struct Finish {
    pub status: MessageStatus,
    /// The whole content.
    pub content: String,
    pub finish_reason: String,
    pub usage: Option<Usage>,
    pub error: Option<GenerationError>,
    pub first_token_at: Option<OffsetDateTime>,
    pub started_at: OffsetDateTime,
}

/// Records the end: the last chunk, the message's content and status, the generation's
/// details, then `error` (on failure) and `message.done`, in one transaction. `None` when the
/// generation had already ended (exactly one terminal state wins).
pub async fn finish(
    pool: &PgPool,
    job: &Job,
    pending: &str,
    flushed_chars: u32,
    index: i32,
    finish: &Finish,
) -> Result<Option<MessageDone>, StoreError> {
    let mut conn = conn(pool).await?;
    let done = conn
        .transaction(async |conn| {
            finish_in(
                conn,
                job.conversation_id,
                job.root_id,
                job.message_id,
                finish,
                Some((pending, flushed_chars, index)),
            )
            .await
        })
        .await?;
    Ok(done)
}

/// The terminal write, inside a transaction. `tail` is the last unflushed chunk, if known.
async fn finish_in(
    conn: &mut AsyncPgConnection,
    conversation: ConversationId,
    root: MessageId,
    message: MessageId,
    finish: &Finish,
    tail: Option<(&str, u32, i32)>,
) -> Result<Option<MessageDone>, diesel::result::Error> {
    log::lock_conversation(conn, uuid(conversation)).await?;
    let now = OffsetDateTime::now_utc();
    let ended = diesel::update(generations::table.find(uuid(message)).filter(generations::finished_at.is_null()))
        .set((
            generations::finished_at.eq(now),
            generations::finish_reason.eq(&finish.finish_reason),
            generations::input_tokens.eq(finish.usage.map(|u| u.input_tokens as i32)),
            generations::output_tokens.eq(finish.usage.map(|u| u.output_tokens as i32)),
            generations::total_tokens.eq(finish.usage.map(|u| u.total_tokens as i32)),
            generations::error_code.eq(finish.error.as_ref().map(|e| enum_to_db(e.code))),
            generations::error_message.eq(finish.error.as_ref().map(|e| e.message.clone())),
            generations::first_token_at.eq(finish.first_token_at),
        ))
        .execute(conn)
        .await?;
    if ended == 0 {
        return Ok(None);
    }
    if let Some((pending, offset, index)) = tail.filter(|(p, _, _)| !p.is_empty()) {
        diesel::insert_into(message_chunks::table)
            .values((
                message_chunks::message_id.eq(uuid(message)),
                message_chunks::idx.eq(index),
                message_chunks::char_offset.eq(offset as i32),
                message_chunks::content.eq(pending),
            ))
            .execute(conn)
            .await?;
    }
    let content = diesel::update(messages::table.find(uuid(message)))
        .set(messages::status.eq(enum_to_db(finish.status)))
        .returning(messages::content)
        .get_result::<String>(conn)
        .await?;
    // The runner's content is authoritative; after a crash, what was flushed is all there is.
    if tail.is_some() && content != finish.content {
        diesel::update(messages::table.find(uuid(message)))
            .set(messages::content.eq(&finish.content))
            .execute(conn)
            .await?;
    }
    if let Some(error) = &finish.error {
        let body = EventBody::Error(StreamError {
            code: ErrorCode::GenerationFailed,
            message: error.message.clone(),
            reason: Some(error.code),
        });
        log::append(conn, &NewEvent::about_message(conversation, root, message, body)).await?;
    }
    let done = MessageDone {
        message_id: message,
        status: finish.status,
        finish_reason: Some(finish.finish_reason.clone()),
        usage: finish.usage,
        error: finish.error.clone(),
    };
    log::append(conn, &NewEvent::about_message(conversation, root, message, EventBody::MessageDone(done.clone())))
        .await?;
    Ok(Some(done))
}

/// Fails the generations of instances that are gone (their advisory lock is free), keeping
/// what they flushed, each with its `message.done`. Returns how many.
pub async fn fail_abandoned(pool: &PgPool, me: Uuid) -> Result<usize, StoreError> {
    let mut conn = conn(pool).await?;
    let runners: Vec<Uuid> = generations::table
        .filter(generations::finished_at.is_null())
        .filter(generations::runner.ne(me))
        .select(generations::runner)
        .distinct()
        .load(&mut conn)
        .await?;
    let mut failed = 0;
    for runner in runners {
        failed += conn
            .transaction(async |conn| {
                // Held by a live instance for its whole life; free once it is gone. (Taken for
                // this transaction only, so two recovering instances do not both fail them.)
                let gone: bool = diesel::select(
                    diesel::dsl::sql::<Bool>("pg_try_advisory_xact_lock(hashtextextended(")
                        .bind::<SqlUuid, _>(runner)
                        .sql("::text, 1))"),
                )
                .get_result(conn)
                .await?;
                if !gone {
                    return Ok::<_, diesel::result::Error>(0);
                }
                let abandoned: Vec<(Uuid, Uuid, Uuid, OffsetDateTime)> = generations::table
                    .inner_join(messages::table.on(messages::id.eq(generations::message_id)))
                    .filter(generations::runner.eq(runner))
                    .filter(generations::finished_at.is_null())
                    .select((messages::id, messages::conversation_id, messages::root_id, generations::started_at))
                    .load(conn)
                    .await?;
                let mut n = 0;
                for (message, conversation, root, started_at) in abandoned {
                    let finish = Finish {
                        status: MessageStatus::Failed,
                        content: String::new(),
                        finish_reason: "interrupted".into(),
                        usage: None,
                        error: Some(GenerationError {
                            code: GenerationErrorCode::Interrupted,
                            message: "the server stopped while generating this reply".into(),
                        }),
                        first_token_at: None,
                        started_at,
                    };
                    let ids = (ConversationId(ulid(conversation)), MessageId(ulid(root)), MessageId(ulid(message)));
                    n += usize::from(finish_in(conn, ids.0, ids.1, ids.2, &finish, None).await?.is_some());
                }
                Ok(n)
            })
            .await?;
    }
    Ok(failed)
}

/// The instance's liveness lock: a session advisory lock on its id, held by a connection of
/// its own for as long as the instance runs.
pub async fn hold_instance_lock(url: &str, me: Uuid) -> Result<AsyncPgConnection, StoreError> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| StoreError::Pool(e.to_string()))?;
    diesel::select(
        diesel::dsl::sql::<Bool>("pg_try_advisory_lock(hashtextextended(").bind::<SqlUuid, _>(me).sql("::text, 1))"),
    )
    .get_result::<bool>(&mut conn)
    .await?;
    Ok(conn)
}
