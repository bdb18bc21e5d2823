//! The OpenAI-compatible endpoint's wire types (`/v1/chat/completions`, `/v1/models`), in
//! OpenAI's own shapes, so that any OpenAI SDK or tool can talk to Skein. Only what Skein
//! reads or writes is modelled; other request fields are ignored (see the README for which
//! are refused instead).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::MessageId;

/// The `metadata` key that binds a call to a Skein thread (its root id): the last user
/// message is posted into it and the answer is a Skein answer. The `X-Skein-Thread` header
/// does the same.
pub const THREAD_METADATA_KEY: &str = "skein_thread";

/// `POST /v1/chat/completions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletionRequest {
    /// An assistant's name (or id), or `provider/model`; `GET /v1/models` lists them.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f32>,
    /// The answer's token limit (`max_completion_tokens` wins when both are given).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    /// `{"skein_thread": "<root id>"}` stores the exchange in that thread.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Only 1 (refused otherwise).
    #[serde(default)]
    pub n: Option<u32>,
    /// Refused when not empty: Skein's assistants do not call tools.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub tools: Option<Vec<serde_json::Value>>,
    /// Refused when not empty (the deprecated form of `tools`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub functions: Option<Vec<serde_json::Value>>,
    /// Refused when true.
    #[serde(default)]
    pub logprobs: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamOptions {
    /// A last chunk with `usage` and no choices.
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatMessage {
    /// `system`, `developer` (as `system`), `user` or `assistant`.
    pub role: String,
    #[serde(default)]
    pub content: Option<ChatContent>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A message's content: a string, or parts of which Skein reads the `text` ones.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ChatContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContentPart {
    /// `text` (other kinds are refused).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl ChatContent {
    /// The text, or the kind of the first part that is not text.
    pub fn text(&self) -> Result<String, &str> {
        match self {
            Self::Text(text) => Ok(text.clone()),
            Self::Parts(parts) => parts
                .iter()
                .map(|p| match (p.kind.as_str(), &p.text) {
                    ("text", Some(text)) => Ok(text.as_str()),
                    _ => Err(p.kind.as_str()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|texts| texts.concat()),
        }
    }
}

/// A non-streamed answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletion {
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: Option<CompletionUsage>,
    /// Where a thread-bound exchange was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skein: Option<SkeinExchange>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatChoice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop`, `length`, or `cancelled` when the answer was stopped.
    pub finish_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssistantMessage {
    /// `assistant`.
    pub role: String,
    pub content: String,
}

/// One streamed piece (`data:` of the SSE stream, which ends with `data: [DONE]`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCompletionChunk {
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// On the last chunk, with `stream_options.include_usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    /// On the first chunk of a thread-bound exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skein: Option<SkeinExchange>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    pub finish_reason: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChunkDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompletionUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

/// Where a thread-bound exchange went: the user's reply and the assistant's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkeinExchange {
    pub root_id: MessageId,
    pub message_id: MessageId,
    pub answer_id: MessageId,
}

/// `GET /v1/models`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelList {
    /// `list`.
    pub object: String,
    pub data: Vec<Model>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Model {
    /// What to pass as `model`.
    pub id: String,
    /// `model`.
    pub object: String,
    pub created: i64,
    /// The assistant's workspace, or the provider.
    pub owned_by: String,
}

/// Every error of `/v1`, in OpenAI's shape (not problem+json).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAiError {
    pub error: OpenAiErrorBody,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenAiErrorBody {
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `not_found_error`, `rate_limit_error`, `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault.
    pub param: Option<String>,
    /// Skein's stable error code (`ErrorCode`).
    pub code: Option<String>,
}
