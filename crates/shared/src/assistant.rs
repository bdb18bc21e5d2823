//! AI assistants: their configuration, thread AI settings, asking for replies, and how a
//! reply was generated.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::thread::{Message, MessageStatus};
use crate::{AssistantId, MessageId, UserId, WorkspaceId};

/// An assistant of a workspace: which provider and model answer, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assistant {
    pub id: AssistantId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// A provider name from the server's configuration.
    pub provider: String,
    pub model: String,
    /// The assistant's persona, sent first to the model.
    pub system_prompt: Option<String>,
    pub temperature: Option<f32>,
    /// Its answers' tokens when nothing else says, and the most a thread or request may ask
    /// for (at most the instance's `llm.max_tokens_cap`).
    pub max_tokens: Option<u32>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `POST /api/workspaces/{id}/assistants`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateAssistantRequest {
    pub name: String,
    pub provider: String,
    /// Defaults to the provider's default model.
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// `PATCH /api/workspaces/{id}/assistants/{assistant_id}`: absent fields stay; an empty
/// `system_prompt` removes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAssistantRequest {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub system_prompt: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// A thread's AI settings. Unset fields fall back to the assistant (the thread's, else the
/// conversation's default). Unset and false fields are left out of responses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<AssistantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sent to the model after the assistant's own system prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// Reserved for retrieval; stored, not yet used.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_rag: bool,
    /// Give the thread a short generated title after its first assistant reply, unless it
    /// has one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_title: bool,
    /// Every reply in the thread asks the assistant for an answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_reply: bool,
}

/// `POST /api/messages/{message_id}/generate`: overrides for this answer only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateRequest {
    #[serde(default)]
    pub assistant_id: Option<AssistantId>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

/// Token counts as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub total_tokens: u32,
}

/// Why a generation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GenerationErrorCode {
    /// The provider could not be reached (connection refused, DNS, TLS).
    ProviderUnreachable,
    /// The provider answered with an error status.
    ProviderError,
    /// The provider refused for its rate limits (429).
    ProviderRateLimited,
    /// No token arrived within the provider's request timeout.
    ProviderTimeout,
    /// The provider sent a chunk that is not the OpenAI streaming format.
    MalformedStream,
    /// The stream ended without `[DONE]`.
    StreamIncomplete,
    /// The server stopped while generating.
    Interrupted,
    /// The provider or model is not (or no longer) configured on this server.
    ProviderNotConfigured,
}

impl GenerationErrorCode {
    /// What members are told: the provider's own words (which can name internal addresses
    /// or keys) go to the log and to conversation admins only.
    pub fn summary(self) -> &'static str {
        match self {
            Self::ProviderUnreachable => "The assistant's provider could not be reached",
            Self::ProviderError => "The assistant's provider refused the request",
            Self::ProviderRateLimited => "The assistant's provider is rate limiting; try again later",
            Self::ProviderTimeout => "The assistant's provider did not answer in time",
            Self::MalformedStream => "The assistant's provider sent an unreadable answer",
            Self::StreamIncomplete => "The assistant's answer broke off",
            Self::Interrupted => "The server stopped while the answer was generated",
            Self::ProviderNotConfigured => "The assistant's provider or model is not configured",
        }
    }
}

/// A failure recorded on an assistant message. Events and members see `message` as the
/// code's summary; conversation admins see what the provider said (`GET /api/messages/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerationError {
    pub code: GenerationErrorCode,
    pub message: String,
}

impl GenerationError {
    /// The error as members see it.
    pub fn public(&self) -> Self {
        Self { code: self.code, message: self.code.summary().to_owned() }
    }
}

/// How an assistant message was (or is being) generated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Generation {
    /// The message answered.
    pub parent_id: MessageId,
    pub assistant_id: Option<AssistantId>,
    pub provider: String,
    pub model: String,
    pub requested_by: UserId,
    /// `stop`, `length`, `cancelled`, `interrupted`, `error`, … once finished.
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<GenerationError>,
    /// Milliseconds from the request to the first token.
    pub time_to_first_token_ms: Option<i64>,
    /// Milliseconds from the request to the end.
    pub duration_ms: Option<i64>,
}

/// `POST /api/messages/{message_id}/reply` with `generate: true` (or under `auto_reply`):
/// the stored user message and the assistant message answering it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplyWithAssistant {
    #[serde(flatten)]
    pub message: Message,
    /// Present when an assistant answer was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_message: Option<Message>,
}

/// A persisted piece of an assistant message, as flushed while it streamed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageChunk {
    pub message_id: MessageId,
    /// 0, 1, 2, … in order.
    pub index: i32,
    /// Position of the chunk's first character in the content (Unicode scalar values).
    pub offset: i32,
    pub content: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `GET /api/messages/{message_id}/chunks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageChunks {
    pub data: Vec<MessageChunk>,
    pub status: MessageStatus,
}

/// `message.delta`: the next piece of a streaming assistant message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageDelta {
    pub message_id: MessageId,
    /// Position of the delta's first character in the content (Unicode scalar values):
    /// deltas are contiguous, so a client that has `offset` characters appends it.
    pub offset: u32,
    pub delta: String,
}

/// `message.done`: the terminal event of an assistant message; nothing follows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageDone {
    pub message_id: MessageId,
    /// `complete`, `cancelled` or `failed`.
    pub status: MessageStatus,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<GenerationError>,
    /// Characters (Unicode scalar values) in the final content: where the answer's deltas
    /// end. A client whose deltas stop short of it refetches the message.
    #[serde(default)]
    pub length: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Up,
    Down,
}

/// `PUT /api/messages/{message_id}/feedback`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackRequest {
    pub rating: Rating,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Feedback on an assistant message: the caller's rating and the totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedbackSummary {
    pub message_id: MessageId,
    pub mine: Option<Rating>,
    pub up: i64,
    pub down: i64,
}

/// `GET /api/messages/{id}`: the message; for an assistant message also how it was generated
/// and its feedback (the caller's rating and the totals).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageDetail {
    #[serde(flatten)]
    pub message: Message,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Generation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackSummary>,
}
