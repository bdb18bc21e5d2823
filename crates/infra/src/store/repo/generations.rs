//! Assistant answers on PostgreSQL: thread AI settings, the branch sent to the model, starting
//! a generation (its message, its row, its events, then the runner), cancel, chunks, feedback.

use std::collections::HashMap;
use std::time::Duration;

use diesel::dsl::count_star;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel_async::{AsyncConnection, RunQueryDsl};
use skein_domain::context::BranchMessage;
use skein_domain::entities::{MessageRecord, NewGeneration, ThreadPatch};
use skein_domain::ports::{AnswerFollower, GenerationRepo};
use skein_domain::{DomainError, DomainResult};
use skein_shared::assistant::{
    FeedbackRequest, FeedbackSummary, Generation, GenerationError, MessageChunk, Rating, Usage,
};
use skein_shared::event::{EventBody, ThreadActivity};
use skein_shared::thread::{AuthorKind, Message, MessageRole, MessageStatus, ThreadSummary};
use skein_shared::{AssistantId, MessageId, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::TxError;
use super::append::stored_time;
use super::follow::Follower;
use super::messages::{append_reply, under};
use crate::store::codec::{enum_from_db, enum_to_db, ulid, unique_violation, uuid};
use crate::store::job::ChatRequest;
use crate::store::job::Job;
use crate::store::log::{self, NewEvent};
use crate::store::rows::{MessageRow, ThreadRow};
use crate::store::schema::{generations, message_chunks, message_feedback, messages, threads, users};
use crate::store::{Store, db_error};

/// How long a cancel waits for the generation's terminal state before answering.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

impl GenerationRepo for Store {
    fn follow_answer(&self, message: MessageId) -> Box<dyn AnswerFollower> {
        Box::new(Follower::new(self.clone(), message))
    }

    async fn branch(&self, path: &[MessageId], visible_after_seq: i64) -> DomainResult<Vec<BranchMessage>> {
        let mut conn = self.conn().await?;
        let ids: Vec<Uuid> = path.iter().map(|id| uuid(*id)).collect();
        let rows: Vec<(Uuid, String, String, Option<String>)> = messages::table
            .left_join(users::table.on(messages::author_id.eq(users::id.nullable())))
            .filter(messages::id.eq_any(&ids))
            .filter(messages::seq.gt(visible_after_seq))
            .select((messages::id, messages::role, messages::content, users::display_name.nullable()))
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        // In path order (root first), not the database's.
        let mut by_id: HashMap<Uuid, (String, String, Option<String>)> =
            rows.into_iter().map(|(id, role, content, name)| (id, (role, content, name))).collect();
        let mut branch = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some((role, content, author_name)) = by_id.remove(id) {
                let role: MessageRole = enum_from_db(&role)?;
                branch.push(BranchMessage { role, author_name, content, deleted: false });
            }
        }
        Ok(branch)
    }

    async fn running_generations(&self, user: UserId) -> DomainResult<u32> {
        let mut conn = self.conn().await?;
        let n: i64 = generations::table
            .filter(generations::requested_by.eq(uuid(user)))
            .filter(generations::finished_at.is_null())
            .select(count_star())
            .get_result(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(n as u32)
    }

    fn has_generation_room(&self) -> bool {
        self.llm.as_ref().is_some_and(|llm| llm.has_room())
    }

    async fn start_generation(&self, new: NewGeneration) -> DomainResult<MessageRecord> {
        let llm = self.llm.clone().ok_or_else(|| DomainError::Unavailable("no generation runner".into()))?;
        let parent = &new.parent.message;
        let conversation = parent.conversation_id;
        let id = uuid(new.id);
        let mut answer = Message {
            id: new.id,
            conversation_id: conversation,
            root_id: parent.root_id,
            parent_id: None,
            depth: 0,
            seq: 0,
            author_id: None,
            author_kind: AuthorKind::Assistant,
            via: new.via,
            role: MessageRole::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            client_msg_id: None,
            // Wall-clock, as every message's (see `insert_message`).
            created_at: stored_time(OffsetDateTime::now_utc()),
            edited_at: None,
            edit_count: 0,
            deleted_at: None,
            deleted_by: None,
            pinned: false,
            reactions: Vec::new(),
            mentions: Vec::new(),
        };
        let path = under(&new.parent, &mut answer);
        let mut conn = self.conn().await?;
        let started = conn
            .transaction(async |conn| {
                // First in the transaction: it takes the conversation's lock.
                let record = append_reply(conn, answer, path).await?;
                diesel::insert_into(generations::table)
                    .values((
                        generations::message_id.eq(id),
                        generations::parent_id.eq(uuid(parent.id)),
                        generations::conversation_id.eq(uuid(conversation)),
                        generations::assistant_id.eq(new.assistant_id.map(uuid)),
                        generations::provider.eq(&new.provider),
                        generations::model.eq(&new.model),
                        generations::requested_by.eq(uuid(new.requested_by)),
                        generations::runner.eq(llm.instance()),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, TxError>(record)
            })
            .await;
        let (record, created) = match started {
            Ok(started) => started,
            Err(TxError::Db(DieselError::NotFound)) => return Err(DomainError::archived()),
            Err(TxError::Db(e)) if unique_violation(&e) == Some("generations_running_idx") => {
                let running: Option<Uuid> = generations::table
                    .filter(generations::parent_id.eq(uuid(parent.id)))
                    .filter(generations::finished_at.is_null())
                    .select(generations::message_id)
                    .first(&mut conn)
                    .await
                    .optional()
                    .map_err(db_error)?;
                // It may have ended since: then a retry succeeds.
                return Err(match running {
                    Some(running) => DomainError::GenerationRunning(MessageId(ulid(running))),
                    None => DomainError::Unavailable("a concurrent answer just ended; retry".into()),
                });
            }
            Err(e) => return Err(e.into()),
        };
        self.signals.committed();
        let job = Job {
            message_id: new.id,
            conversation_id: conversation,
            root_id: parent.root_id,
            open_to: new.open_to,
            requested_by: new.requested_by,
            auto_title: new.auto_title,
            created,
            request: ChatRequest {
                model: new.model,
                messages: new.prompt,
                temperature: new.temperature,
                max_tokens: new.max_tokens,
            },
        };
        llm.launch(job, &new.provider);
        Ok(record)
    }

    async fn cancel_generation(&self, message: MessageId) -> DomainResult<()> {
        if let Some(llm) = &self.llm
            && llm.cancel_here(message, CANCEL_WAIT).await
        {
            return Ok(());
        }
        // Not running here: ask the instance running it, which sees this at its next flush.
        // Each look takes a connection for its query only: a waiting cancel holds none.
        let asked = diesel::update(generations::table.find(uuid(message)).filter(generations::finished_at.is_null()))
            .set(generations::cancel_requested.eq(true))
            .execute(&mut self.conn().await?)
            .await
            .map_err(db_error)?;
        let deadline = tokio::time::Instant::now() + CANCEL_WAIT;
        while asked > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            // The request is recorded: a look that fails only ends the wait.
            let Ok(mut conn) = self.conn().await else { break };
            let finished: Option<Option<OffsetDateTime>> = match generations::table
                .find(uuid(message))
                .select(generations::finished_at)
                .first(&mut conn)
                .await
                .optional()
            {
                Ok(finished) => finished,
                Err(_) => break,
            };
            if !matches!(finished, Some(None)) {
                break;
            }
        }
        Ok(())
    }

    async fn generation(&self, message: MessageId) -> DomainResult<Option<Generation>> {
        let mut conn = self.conn().await?;
        let row: Option<GenerationRow> = generations::table
            .find(uuid(message))
            .select(GenerationRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        row.map(GenerationRow::into_generation).transpose()
    }

    async fn message_chunks(&self, message: MessageId) -> DomainResult<Vec<MessageChunk>> {
        let mut conn = self.conn().await?;
        let rows: Vec<(i32, i32, String, OffsetDateTime)> = message_chunks::table
            .filter(message_chunks::message_id.eq(uuid(message)))
            .order(message_chunks::idx)
            .select((
                message_chunks::idx,
                message_chunks::char_offset,
                message_chunks::content,
                message_chunks::created_at,
            ))
            .load(&mut conn)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(index, offset, content, created_at)| MessageChunk {
                message_id: message,
                index,
                offset,
                content,
                created_at,
            })
            .collect())
    }

    async fn streamed_content(&self, message: MessageId) -> DomainResult<String> {
        let mut conn = self.conn().await?;
        let content: Option<String> = messages::table
            .find(uuid(message))
            .select(crate::store::answers::flushed_content())
            .first(&mut conn)
            .await
            .optional()
            .map_err(db_error)?;
        Ok(content.unwrap_or_default())
    }

    async fn set_feedback(
        &self,
        message: MessageId,
        user: UserId,
        feedback: Option<FeedbackRequest>,
    ) -> DomainResult<FeedbackSummary> {
        let mut conn = self.conn().await?;
        let key = (uuid(message), uuid(user));
        match feedback {
            Some(f) => {
                let values = (
                    message_feedback::message_id.eq(key.0),
                    message_feedback::user_id.eq(key.1),
                    message_feedback::rating.eq(enum_to_db(f.rating)),
                    message_feedback::reason.eq(&f.reason),
                    message_feedback::comment.eq(&f.comment),
                    message_feedback::updated_at.eq(self.clock.now()),
                );
                diesel::insert_into(message_feedback::table)
                    .values(values.clone())
                    .on_conflict((message_feedback::message_id, message_feedback::user_id))
                    .do_update()
                    .set((values.2, values.3, values.4, values.5))
                    .execute(&mut conn)
                    .await
                    .map_err(db_error)?;
            }
            None => {
                diesel::delete(message_feedback::table.find(key)).execute(&mut conn).await.map_err(db_error)?;
            }
        }
        feedback_summary(&mut conn, message, user).await
    }

    async fn feedback(&self, message: MessageId, user: UserId) -> DomainResult<FeedbackSummary> {
        let mut conn = self.conn().await?;
        feedback_summary(&mut conn, message, user).await
    }

    async fn update_thread(&self, root: MessageId, patch: ThreadPatch) -> DomainResult<ThreadSummary> {
        let mut conn = self.conn().await?;
        let settings = patch.settings.as_ref().map(serde_json::to_value).transpose();
        let settings = settings.map_err(|e| DomainError::Internal(e.to_string()))?;
        let summary = conn
            .transaction(async |conn| {
                let (conversation, root_row): (Uuid, MessageRow) = messages::table
                    .filter(messages::id.eq(uuid(root)))
                    .select((messages::conversation_id, MessageRow::as_select()))
                    .first(conn)
                    .await?;
                log::lock_conversation(conn, conversation).await?;
                let changes = ThreadChanges { title: patch.title.clone(), tags: patch.tags.clone(), settings };
                let thread: ThreadRow = diesel::update(threads::table.find(uuid(root)))
                    .set(&changes)
                    .returning(ThreadRow::as_returning())
                    .get_result(conn)
                    .await?;
                let summary = thread.with_root(root_row)?;
                let activity = ThreadActivity {
                    title: patch.title.as_ref().map(|t| t.clone().unwrap_or_default()),
                    tags: patch.tags.clone(),
                    settings: patch.settings.clone(),
                    ..ThreadActivity::new(root, summary.reply_count, summary.last_activity_at)
                };
                let event =
                    NewEvent::about_message(summary.conversation_id, root, root, EventBody::ThreadActivity(activity));
                log::append(conn, &event).await?;
                Ok::<_, TxError>(summary)
            })
            .await?;
        self.signals.committed();
        Ok(summary)
    }
}

/// `PATCH /api/threads/{root_id}`'s columns; `None` leaves a column alone.
#[derive(AsChangeset)]
#[diesel(table_name = threads)]
struct ThreadChanges {
    title: Option<Option<String>>,
    tags: Option<Vec<String>>,
    settings: Option<serde_json::Value>,
}

async fn feedback_summary(
    conn: &mut diesel_async::AsyncPgConnection,
    message: MessageId,
    user: UserId,
) -> DomainResult<FeedbackSummary> {
    let rows: Vec<(Uuid, String)> = message_feedback::table
        .filter(message_feedback::message_id.eq(uuid(message)))
        .select((message_feedback::user_id, message_feedback::rating))
        .load(conn)
        .await
        .map_err(db_error)?;
    let mut summary = FeedbackSummary { message_id: message, mine: None, up: 0, down: 0 };
    for (who, rating) in rows {
        let rating: Rating = enum_from_db(&rating)?;
        match rating {
            Rating::Up => summary.up += 1,
            Rating::Down => summary.down += 1,
        }
        if who == uuid(user) {
            summary.mine = Some(rating);
        }
    }
    Ok(summary)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = generations)]
struct GenerationRow {
    parent_id: Uuid,
    assistant_id: Option<Uuid>,
    provider: String,
    model: String,
    requested_by: Uuid,
    finish_reason: Option<String>,
    input_tokens: Option<i32>,
    output_tokens: Option<i32>,
    total_tokens: Option<i32>,
    error_code: Option<String>,
    error_message: Option<String>,
    started_at: OffsetDateTime,
    first_token_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
}

impl GenerationRow {
    fn into_generation(self) -> DomainResult<Generation> {
        let usage = match (self.input_tokens, self.output_tokens, self.total_tokens) {
            (Some(i), Some(o), Some(t)) => {
                Some(Usage { input_tokens: i as u32, output_tokens: o as u32, total_tokens: t as u32 })
            }
            _ => None,
        };
        let error = match self.error_code {
            Some(code) => {
                Some(GenerationError { code: enum_from_db(&code)?, message: self.error_message.unwrap_or_default() })
            }
            None => None,
        };
        let ms = |at: Option<OffsetDateTime>| at.map(|at| (at - self.started_at).whole_milliseconds() as i64);
        Ok(Generation {
            parent_id: MessageId(ulid(self.parent_id)),
            assistant_id: self.assistant_id.map(|id| AssistantId(ulid(id))),
            provider: self.provider,
            model: self.model,
            requested_by: UserId(ulid(self.requested_by)),
            finish_reason: self.finish_reason,
            usage,
            error,
            time_to_first_token_ms: ms(self.first_token_at),
            duration_ms: ms(self.finished_at),
        })
    }
}
