//! Assistant answers: who answers (request, then thread settings, then the conversation's
//! default assistant), what the model is sent, the limits on running generations, cancel,
//! following an answer, chunks and feedback.

use skein_shared::assistant::{
    Assistant, FeedbackRequest, FeedbackSummary, GenerateRequest, GenerationError, MessageChunks, MessageDelta,
    MessageDetail, ThreadSettings,
};
use skein_shared::conversation::Visibility;
use skein_shared::event::{Event, EventBody};
use skein_shared::thread::{Message, MessageRole, MessageStatus, Via};
use skein_shared::{AssistantId, ErrorCode, MessageId, UserId, WorkspaceId};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::limits::Spend;
use super::{Services, ensure_can_post};
use crate::context::build_prompt;
use crate::entities::{ConversationAccess, MessageRecord, NewGeneration, ThreadAi};
use crate::ports::{AnswerFollower, AnswerPiece, Ports};
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

/// Seconds a caller over a generation limit is asked to wait.
pub(super) const RETRY_AFTER_SECS: u64 = 2;
/// Longest feedback reason (a short label such as `inaccurate`).
const REASON_MAX_CHARS: usize = 100;

/// Who answers and how, settled before the answer starts.
pub(super) struct Answerer {
    requested_by: UserId,
    open_to: Option<WorkspaceId>,
    /// The assistant's system prompt, then the thread's persona.
    system: [String; 2],
    /// Prompt tokens: the context window minus the answer's `max_tokens`.
    budget: usize,
    assistant_id: AssistantId,
    provider: String,
    model: String,
    temperature: Option<f32>,
    max_tokens: u32,
    auto_title: bool,
    /// What of the branch the requester may see: messages with `seq` above this.
    visible_after_seq: i64,
}

impl<P: Ports> Services<P> {
    /// Starts an assistant answer to any visible message: a new child with `status:
    /// streaming`. Asking again for the same message is a regenerate (a new sibling).
    pub async fn generate(
        &self,
        caller: UserId,
        via: Via,
        parent_id: MessageId,
        req: GenerateRequest,
    ) -> DomainResult<Message> {
        let (parent, access, role, ai) = self.visible_message(caller, parent_id).await?;
        ensure_can_post(&access, role)?;
        let mut check = Check::new();
        check.temperature("temperature", req.temperature);
        check.max_tokens("max_tokens", req.max_tokens);
        self.check_depth(&mut check, &parent);
        check.finish()?;
        let answerer = self.answerer(caller, ai, &access, &req).await?;
        self.start_answer(answerer, &parent, via).await
    }

    /// Who answers in the thread and how, for this caller now: refuses (before anything is
    /// stored) when no assistant is set, a model is not allowed, or a limit is reached.
    pub(super) async fn answerer(
        &self,
        caller: UserId,
        ai: ThreadAi,
        access: &ConversationAccess,
        req: &GenerateRequest,
    ) -> DomainResult<Answerer> {
        let conversation = &access.conversation;
        let assistant = match req.assistant_id {
            Some(id) => self.assistant_in(conversation.workspace_id, id).await.map_err(|_| unknown_assistant())?,
            None => {
                let id = ai.settings.assistant_id.or(ai.default_assistant).ok_or_else(no_assistant)?;
                self.assistant_in(conversation.workspace_id, id).await.map_err(|_| no_assistant())?
            }
        };
        let model = req.model.as_deref().or(ai.settings.model.as_deref()).unwrap_or(&assistant.model);
        let choice = self.catalog.choose(&assistant.provider, Some(model))?;
        let max_tokens = self.answer_tokens(assistant.max_tokens, req.max_tokens.or(ai.settings.max_tokens))?;
        self.check_quota(caller, Some(conversation.workspace_id), Spend::Tokens).await?;
        if self.ports.running_generations(caller).await? >= self.catalog.max_running_per_user {
            return Err(DomainError::RateLimited { retry_after_secs: RETRY_AFTER_SECS });
        }
        if !self.ports.has_generation_room() {
            return Err(DomainError::Busy { retry_after_secs: RETRY_AFTER_SECS });
        }
        let open = conversation.visibility == Visibility::Workspace;
        Ok(Answerer {
            requested_by: caller,
            open_to: open.then_some(conversation.workspace_id),
            system: [assistant.system_prompt.clone().unwrap_or_default(), ai.settings.persona.unwrap_or_default()],
            budget: choice.context_window.saturating_sub(max_tokens) as usize,
            assistant_id: assistant.id,
            provider: choice.provider,
            model: choice.model,
            temperature: req.temperature.or(ai.settings.temperature).or(assistant.temperature),
            max_tokens,
            auto_title: ai.settings.auto_title && ai.title.is_none(),
            visible_after_seq: access.visible_after_seq(),
        })
    }

    /// An answer's `max_tokens`: what was `asked`, else the assistant's, else the default.
    /// The assistant's (set by workspace admins) is also its answers' ceiling, under the
    /// instance's `max_tokens_cap`; asking for more is a 422.
    pub(super) fn answer_tokens(&self, assistant: Option<u32>, asked: Option<u32>) -> DomainResult<u32> {
        let ceiling = assistant.unwrap_or(u32::MAX).min(self.catalog.max_tokens_cap).max(1);
        if let Some(n) = asked.filter(|n| *n > ceiling) {
            return Err(DomainError::field(
                "max_tokens",
                "out_of_range",
                format!("{n} is more than this assistant's answers may take (at most {ceiling})"),
            ));
        }
        Ok(asked.or(assistant).unwrap_or(self.catalog.default_max_tokens).min(ceiling))
    }

    /// Starts the answer to `parent`: the branch up to it goes to the model.
    pub(super) async fn start_answer(
        &self,
        answerer: Answerer,
        parent: &MessageRecord,
        via: Via,
    ) -> DomainResult<Message> {
        // The model sees only what the requester may (history hidden from late joiners stays so).
        let branch = self.ports.branch(&parent.path, answerer.visible_after_seq).await?;
        let system = [answerer.system[0].as_str(), answerer.system[1].as_str()];
        let new = NewGeneration {
            id: MessageId::generate(),
            parent: parent.clone(),
            open_to: answerer.open_to,
            assistant_id: Some(answerer.assistant_id),
            provider: answerer.provider,
            model: answerer.model,
            requested_by: answerer.requested_by,
            via,
            prompt: build_prompt(&system, &branch, answerer.budget),
            temperature: answerer.temperature,
            max_tokens: answerer.max_tokens,
            auto_title: answerer.auto_title,
        };
        Ok(self.ports.start_generation(new).await?.message)
    }

    /// Stops an answer being generated (idempotent): its partial content is kept with
    /// `status: cancelled`. Returns the message as it is then.
    pub async fn cancel_generation(&self, caller: UserId, id: MessageId) -> DomainResult<Message> {
        let (record, _, role, _) = self.visible_message(caller, id).await?;
        ensure_assistant(&record.message)?;
        if !crate::roles::can_post(role) {
            return Err(DomainError::Forbidden("viewers cannot stop answers"));
        }
        self.ports.cancel_generation(id).await?;
        Ok(self.visible_message(caller, id).await?.0.message)
    }

    /// The message; for an assistant message also how it was generated and its feedback.
    /// A streaming answer shows what has been flushed so far.
    pub async fn message_detail(&self, caller: UserId, id: MessageId) -> DomainResult<MessageDetail> {
        let (record, _, role, _) = self.visible_message(caller, id).await?;
        let mut message = record.message;
        self.fill_reactions(caller, vec![&mut message]).await?;
        if message.role != MessageRole::Assistant {
            return Ok(MessageDetail { message, generation: None, feedback: None });
        }
        if message.status == MessageStatus::Streaming {
            message.content = self.ports.streamed_content(id).await?;
        }
        let mut generation = self.ports.generation(id).await?;
        // What the provider said may name internal addresses or keys: admins only.
        if let Some(g) = generation.as_mut().filter(|_| !roles::can_manage_conversation(role)) {
            g.error = g.error.as_ref().map(GenerationError::public);
        }
        let feedback = Some(self.ports.feedback(id, caller).await?);
        Ok(MessageDetail { message, generation, feedback })
    }

    /// As [`Self::message_detail`], for assistant messages only.
    pub async fn answer_detail(&self, caller: UserId, id: MessageId) -> DomainResult<MessageDetail> {
        let detail = self.message_detail(caller, id).await?;
        ensure_assistant(&detail.message)?;
        Ok(detail)
    }

    /// Follows an answer the caller may see, from `offset` (characters they already have).
    pub async fn follow_answer(&self, caller: UserId, id: MessageId, offset: u32) -> DomainResult<AnswerFollow> {
        let message = self.answer_detail(caller, id).await?.message;
        let ports = self.ports.clone();
        let now = Box::new(move || ports.now());
        let services = self.clone();
        let may_still_see: Recheck = Box::new(move || {
            let services = services.clone();
            Box::pin(async move { services.answer_detail(caller, id).await.is_ok() })
        });
        Ok(AnswerFollow {
            source: self.ports.follow_answer(id),
            message,
            sent: offset,
            ended: false,
            now,
            may_still_see,
            checked: Instant::now(),
        })
    }

    /// The persisted chunks of an assistant message, in order.
    pub async fn message_chunks(&self, caller: UserId, id: MessageId) -> DomainResult<MessageChunks> {
        let message = self.visible_message(caller, id).await?.0.message;
        ensure_assistant(&message)?;
        Ok(MessageChunks { data: self.ports.message_chunks(id).await?, status: message.status })
    }

    /// Rates an assistant message (one rating per user; `None` removes it).
    pub async fn set_feedback(
        &self,
        caller: UserId,
        id: MessageId,
        feedback: Option<FeedbackRequest>,
    ) -> DomainResult<FeedbackSummary> {
        let (record, access, role, _) = self.visible_message(caller, id).await?;
        ensure_assistant(&record.message)?;
        ensure_can_post(&access, role)?;
        let feedback = match feedback {
            Some(mut f) => {
                let mut check = Check::new();
                f.reason = check.optional_text("reason", f.reason.as_deref(), REASON_MAX_CHARS);
                f.comment = check.optional_text("comment", f.comment.as_deref(), self.limits.message_max_chars);
                check.finish()?;
                Some(f)
            }
            None => None,
        };
        self.ports.set_feedback(id, caller, feedback).await
    }

    /// Validates thread settings: the assistant must be one of the workspace's, its model
    /// allowed, sampling values in range.
    pub(super) async fn check_settings(
        &self,
        check: &mut Check,
        workspace: WorkspaceId,
        settings: &mut ThreadSettings,
    ) -> DomainResult<()> {
        check.temperature("settings.temperature", settings.temperature);
        check.max_tokens("settings.max_tokens", settings.max_tokens);
        settings.persona =
            check.optional_text("settings.persona", settings.persona.as_deref(), self.limits.message_max_chars);
        settings.model = settings.model.take().filter(|m| !m.trim().is_empty());
        let assistant = match settings.assistant_id {
            Some(id) => self.settings_assistant(check, workspace, id).await?,
            None => None,
        };
        if let (Some(assistant), Some(model)) = (assistant, &settings.model)
            && self.catalog.choose(&assistant.provider, Some(model)).is_err()
        {
            check.fail("settings.model", "not_allowed", format!("{model:?} is not allowed for {}", assistant.provider));
        }
        Ok(())
    }

    async fn settings_assistant(
        &self,
        check: &mut Check,
        workspace: WorkspaceId,
        id: AssistantId,
    ) -> DomainResult<Option<Assistant>> {
        match self.assistant_in(workspace, id).await {
            Ok(a) => Ok(Some(a)),
            Err(DomainError::NotFound) => {
                check.fail("settings.assistant_id", "unknown", "no such assistant in this workspace");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub(super) fn check_depth(&self, check: &mut Check, parent: &MessageRecord) {
        if parent.message.depth >= self.limits.max_depth() {
            check.fail("parent_id", "too_deep", format!("replies nest at most {} deep", self.limits.max_depth()));
        }
    }
}

fn ensure_assistant(message: &Message) -> DomainResult<()> {
    if message.role != MessageRole::Assistant {
        return Err(DomainError::rule(ErrorCode::NotAnAssistantMessage, "only assistant messages take this"));
    }
    Ok(())
}

fn no_assistant() -> DomainError {
    DomainError::rule(
        ErrorCode::NoAssistant,
        "no assistant answers here: set the thread's settings.assistant_id or the conversation's default assistant",
    )
}

fn unknown_assistant() -> DomainError {
    DomainError::field("assistant_id", "unknown", "no such assistant in this workspace")
}

/// One follower's stream of an answer: each piece of content it does not have yet, then the
/// end. Each event comes with the number of characters the follower then has, which is what a
/// reconnecting follower sends back to resume with no gap and no repeat.
pub struct AnswerFollow {
    source: Box<dyn AnswerFollower>,
    message: Message,
    sent: u32,
    ended: bool,
    now: Box<dyn Fn() -> OffsetDateTime + Send>,
    /// Whether the follower may still see the answer (they may have left its conversation).
    may_still_see: Recheck,
    checked: Instant,
}

type Recheck = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send>;

/// How often a follower's access is checked again while the answer streams.
const RECHECK_EVERY: Duration = Duration::from_secs(2);

impl AnswerFollow {
    pub async fn next(&mut self) -> Option<(Event, u32)> {
        while !self.ended {
            let piece = self.source.next().await?;
            if self.checked.elapsed() >= RECHECK_EVERY {
                if !(self.may_still_see)().await {
                    return None;
                }
                self.checked = Instant::now();
            }
            let body = match piece {
                AnswerPiece::Delta(delta) => match self.unsent(&delta) {
                    Some(delta) => EventBody::MessageDelta(delta),
                    None => continue,
                },
                AnswerPiece::Done(done) => {
                    self.ended = true;
                    EventBody::MessageDone(done)
                }
            };
            let m = &self.message;
            let event = Event::live(body, (self.now)()).about_message(m.conversation_id, m.root_id, m.id);
            return Some((event, self.sent));
        }
        None
    }

    /// The part of the delta the follower does not have yet.
    fn unsent(&mut self, delta: &MessageDelta) -> Option<MessageDelta> {
        let end = delta.offset + delta.delta.chars().count() as u32;
        if end <= self.sent {
            return None;
        }
        let skip = self.sent.saturating_sub(delta.offset) as usize;
        let rest: String = delta.delta.chars().skip(skip).collect();
        let unsent = MessageDelta { message_id: self.message.id, offset: self.sent, delta: rest };
        self.sent = end;
        Some(unsent)
    }
}
