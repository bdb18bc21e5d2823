//! The database side of a generation's end: the single terminal write with its events, and
//! failing what a dead instance left behind; the flusher's chunk writes; the generated title.

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Integer, Text, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_shared::assistant::{GenerationError, GenerationErrorCode, MessageDone, Usage};
use skein_shared::event::{EventBody, StreamError, ThreadActivity};
use skein_shared::thread::MessageStatus;
use skein_shared::{ConversationId, ErrorCode, MessageId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::job::Job;
use crate::store::codec::{enum_to_db, ulid, uuid};
use crate::store::log::{self, NewEvent};
use crate::store::schema::{generations, message_chunks, messages, threads};
use crate::store::{PgPool, StoreError, conn};

/// A piece of an answer's content taken for writing (by the flusher, or with the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub message_id: MessageId,
    pub index: i32,
    pub offset: u32,
    pub content: String,
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

impl Finish {
    /// The end recovery writes for an answer whose runner could not write its own: failed
    /// (`interrupted`), with the runner's whole content and timing.
    pub fn unsaved(&self) -> Finish {
        Finish {
            status: MessageStatus::Failed,
            content: self.content.clone(),
            finish_reason: "interrupted".into(),
            usage: self.usage,
            error: Some(GenerationError {
                code: GenerationErrorCode::Interrupted,
                message: "the end of this reply could not be saved in time".into(),
            }),
            first_token_at: self.first_token_at,
            started_at: self.started_at,
        }
    }
}

/// Records the runner's end: the last chunk, the message's content (the runner's, which is
/// authoritative) and status, the generation's details, then `error` (on failure) and
/// `message.done`, in one transaction. `None` when the generation had already ended (exactly
/// one terminal state wins).
pub async fn finish(
    pool: &PgPool,
    job: &Job,
    tail: Option<&Chunk>,
    finish: &Finish,
) -> Result<Option<MessageDone>, StoreError> {
    let mut conn = conn(pool).await?;
    let ending = Ending::Runner { tail };
    let done = conn
        .transaction(async |conn| {
            finish_in(conn, job.conversation_id, job.root_id, job.message_id, finish, ending).await
        })
        .await?;
    Ok(done)
}

/// Who writes an end.
#[derive(Clone, Copy)]
enum Ending<'a> {
    /// The runner: its content is the whole answer; `tail` is what the flusher has not taken.
    Runner { tail: Option<&'a Chunk> },
    /// Recovery: what was flushed is all there is.
    Recovery,
    /// The message was deleted meanwhile: only its status changes.
    Deleted,
}

/// The terminal write, inside a transaction.
async fn finish_in(
    conn: &mut AsyncPgConnection,
    conversation: ConversationId,
    root: MessageId,
    message: MessageId,
    finish: &Finish,
    ending: Ending<'_>,
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
    // Deleted while it ran (under this same lock, so before us): its words stay erased.
    let deleted: bool =
        messages::table.find(uuid(message)).select(messages::deleted_at.is_not_null()).first(conn).await?;
    let ending = match (deleted, ending) {
        (true, _) => Ending::Deleted,
        (false, ending) => ending,
    };
    if let Ending::Runner { tail: Some(chunk) } = ending {
        diesel::insert_into(message_chunks::table)
            .values((
                message_chunks::message_id.eq(uuid(message)),
                message_chunks::idx.eq(chunk.index),
                message_chunks::char_offset.eq(chunk.offset as i32),
                message_chunks::content.eq(&chunk.content),
            ))
            // A flush whose reply was lost may have written it already.
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
    }
    let target = messages::table.find(uuid(message));
    let length = diesel::dsl::sql::<diesel::sql_types::Integer>("char_length(content)");
    let length: i32 = match ending {
        // Whatever the flusher has committed or has in flight, the runner's content is whole
        // (a flush landing after this leaves a terminal message's content alone).
        Ending::Runner { .. } => {
            diesel::update(target)
                .set((messages::status.eq(enum_to_db(finish.status)), messages::content.eq(&finish.content)))
                .returning(length)
                .get_result(conn)
                .await?
        }
        Ending::Deleted => {
            diesel::update(target)
                .set(messages::status.eq(enum_to_db(finish.status)))
                .returning(length)
                .get_result(conn)
                .await?
        }
        // What was flushed is all there is.
        Ending::Recovery => {
            diesel::update(target)
                .set((messages::status.eq(enum_to_db(finish.status)), messages::content.eq(flushed_content())))
                .returning(length)
                .get_result(conn)
                .await?
        }
    };
    // Events reach every member: they say what failed, not the provider's words (which stay
    // in `generations.error_message`, for the log and conversation admins).
    let public = finish.error.as_ref().map(GenerationError::public);
    if let Some(error) = &public {
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
        error: public,
        length: length as u32,
    };
    log::append(conn, &NewEvent::about_message(conversation, root, message, EventBody::MessageDone(done.clone())))
        .await?;
    Ok(Some(done))
}

/// A streaming message's content so far: its flushed chunks in order (an expression over
/// `messages`).
pub fn flushed_content() -> diesel::expression::SqlLiteral<Text> {
    diesel::dsl::sql::<Text>(
        "(SELECT coalesce(string_agg(c.content, '' ORDER BY c.idx), '') FROM message_chunks c \
         WHERE c.message_id = messages.id)",
    )
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
                    let ended = finish_in(conn, ids.0, ids.1, ids.2, &finish, Ending::Recovery).await?;
                    n += usize::from(ended.is_some());
                }
                Ok(n)
            })
            .await?;
    }
    Ok(failed)
}

/// The instance's liveness lock: a session advisory lock on its id, held by a connection of
/// its own for as long as the instance runs (see [`keep_instance_lock`]).
pub async fn hold_instance_lock(url: &str, me: Uuid) -> Result<AsyncPgConnection, StoreError> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| StoreError::Pool(e.to_string()))?;
    let held: bool = diesel::select(
        diesel::dsl::sql::<Bool>("pg_try_advisory_lock(hashtextextended(").bind::<SqlUuid, _>(me).sql("::text, 1))"),
    )
    .get_result(&mut conn)
    .await?;
    if !held {
        return Err(StoreError::Pool(format!("the liveness lock of runner {me} is held by another session")));
    }
    Ok(conn)
}

/// How often the liveness lock's connection is checked.
const LOCK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps the liveness lock for the life of the process: checks its connection every
/// [`LOCK_CHECK_EVERY`] and, when the connection is gone (a PostgreSQL restart, a dropped or
/// terminated session), takes the lock again on a new one. Other instances may fail this
/// instance's answers in the gap; their runners then stop (the flusher sees them ended).
pub async fn keep_instance_lock(url: String, me: Uuid, mut conn: AsyncPgConnection) {
    loop {
        tokio::time::sleep(LOCK_CHECK_EVERY).await;
        // A half-open connection could hang the check while the server has freed the lock.
        let check = tokio::time::timeout(LOCK_CHECK_EVERY * 2, diesel::sql_query("SELECT 1").execute(&mut conn));
        if matches!(check.await, Ok(Ok(_))) {
            continue;
        }
        tracing::warn!(runner = %me, "the liveness lock's connection was lost; taking the lock again");
        conn = loop {
            match hold_instance_lock(&url, me).await {
                Ok(fresh) => break fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the liveness lock again");
                    tokio::time::sleep(LOCK_CHECK_EVERY).await;
                }
            }
        };
        tracing::info!(runner = %me, "liveness lock held again");
    }
}

#[derive(diesel::QueryableByName)]
struct Stopped {
    #[diesel(sql_type = SqlUuid)]
    message_id: Uuid,
}

/// The flusher's write: the chunks (one statement, idempotent) and returns which of `running` must stop: cancelled
/// through the database (a cancel that reached another instance) or already ended by someone
/// else (recovery on another instance that thought this one gone).
pub async fn write_chunks(
    pool: &PgPool,
    runner: Uuid,
    chunks: &[Chunk],
    running: &[MessageId],
) -> Result<Vec<MessageId>, StoreError> {
    let mut conn = conn(pool).await?;
    let ids: Vec<Uuid> = chunks.iter().map(|c| uuid(c.message_id)).collect();
    let indexes: Vec<i32> = chunks.iter().map(|c| c.index).collect();
    let offsets: Vec<i32> = chunks.iter().map(|c| c.offset as i32).collect();
    let contents: Vec<&str> = chunks.iter().map(|c| c.content.as_str()).collect();
    let running: Vec<Uuid> = running.iter().map(|id| uuid(*id)).collect();
    let rows: Vec<Stopped> = diesel::sql_query(
        // Not into a message deleted meanwhile: its words stay erased.
        "WITH chunk AS (INSERT INTO message_chunks (message_id, idx, char_offset, content) \
           SELECT u.* FROM unnest($1::uuid[], $2::int[], $3::int[], $4::text[]) AS u(message_id, idx, char_offset, content) \
           JOIN messages m ON m.id = u.message_id AND m.deleted_at IS NULL ON CONFLICT DO NOTHING) \
         SELECT message_id FROM generations \
         WHERE runner = $5 AND message_id = ANY($6) AND (cancel_requested OR finished_at IS NOT NULL)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Array<Integer>, _>(indexes)
    .bind::<Array<Integer>, _>(offsets)
    .bind::<Array<Text>, _>(contents)
    .bind::<SqlUuid, _>(runner)
    .bind::<Array<SqlUuid>, _>(running)
    .load(&mut conn)
    .await?;
    Ok(rows.into_iter().map(|r| MessageId(ulid(r.message_id))).collect())
}

/// Sets a generated title unless the thread got one meanwhile (with its `thread.activity`);
/// true when it did.
pub async fn set_generated_title(pool: &PgPool, job: &Job, title: &str) -> Result<bool, StoreError> {
    let mut conn = conn(pool).await?;
    let stored = conn
        .transaction(async |conn| {
            log::lock_conversation(conn, uuid(job.conversation_id)).await?;
            let updated: Option<(i32, OffsetDateTime)> =
                diesel::update(threads::table.find(uuid(job.root_id)).filter(threads::title.is_null()))
                    .set(threads::title.eq(title))
                    .returning((threads::reply_count, threads::last_activity_at))
                    .get_result(conn)
                    .await
                    .optional()?;
            let Some((reply_count, last_activity_at)) = updated else {
                return Ok::<_, diesel::result::Error>(false);
            };
            let activity = ThreadActivity {
                title: Some(title.to_owned()),
                ..ThreadActivity::new(job.root_id, reply_count, last_activity_at)
            };
            let event = NewEvent::about_message(
                job.conversation_id,
                job.root_id,
                job.root_id,
                EventBody::ThreadActivity(activity),
            );
            log::append(conn, &event).await?;
            Ok(true)
        })
        .await?;
    Ok(stored)
}
