//! One OpenAI-compatible provider, reached through async-openai's streaming chat
//! completions. Requests and chunks are our own small serde types (async-openai's `byot`):
//! providers differ in the optional fields they send, and only content, finish reason and
//! usage matter here.

use std::pin::Pin;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use skein_shared::assistant::{GenerationError, GenerationErrorCode, Usage};
use skein_shared::thread::MessageRole;

use super::config::ProviderConfig;

pub use crate::store::job::ChatRequest;

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    max_tokens: u32,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// One streamed chunk, as much of it as we use.
#[derive(Debug, Deserialize)]
pub struct Chunk {
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<ChunkUsage>,
}

#[derive(Debug, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub delta: ChunkDelta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ChunkDelta {
    #[serde(default)]
    pub content: Option<String>,
}

/// Appends a provider's text as Skein can store it: PostgreSQL's `text` refuses U+0000 (and
/// nothing else a Rust string can hold), so NUL is dropped before the text is relayed or
/// stored. A provider that sends one must not stop the answer, or every flush with it.
pub fn push_storable(into: &mut String, text: &str) {
    if text.contains('\0') {
        into.extend(text.chars().filter(|c| *c != '\0'));
    } else {
        into.push_str(text);
    }
}

/// The text as Skein can store it (see [`push_storable`]).
pub fn storable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_storable(&mut out, text);
    out
}

#[derive(Debug, Deserialize)]
pub struct ChunkUsage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
    #[serde(default)]
    pub total_tokens: u32,
}

impl From<ChunkUsage> for Usage {
    fn from(u: ChunkUsage) -> Self {
        Usage { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens, total_tokens: u.total_tokens }
    }
}

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, OpenAIError>> + Send>>;

pub struct Provider {
    pub config: ProviderConfig,
    client: Result<Client<OpenAIConfig>, String>,
}

impl Provider {
    pub fn new(config: ProviderConfig) -> Self {
        let client = match &config.api_key_env {
            Some(var) => match std::env::var(var) {
                Ok(key) => Ok(OpenAIConfig::new().with_api_base(&config.base_url).with_api_key(key)),
                Err(_) => {
                    Err(format!("the environment variable {var} (provider {}'s API key) is not set", config.name))
                }
            },
            None => Ok(OpenAIConfig::new().with_api_base(&config.base_url).with_api_key("")),
        }
        .map(Client::with_config);
        if let Err(e) = &client {
            tracing::warn!(provider = %config.name, "{e}");
        }
        Self { config, client }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.config.request_timeout_secs.max(1))
    }

    /// Starts a streaming completion: fails if the provider cannot be reached, refuses, or
    /// does not answer within the request timeout.
    pub async fn stream(&self, request: &ChatRequest) -> Result<ChunkStream, GenerationError> {
        let client = self
            .client
            .as_ref()
            .map_err(|e| GenerationError { code: GenerationErrorCode::ProviderNotConfigured, message: e.clone() })?;
        let wire = WireRequest {
            model: &request.model,
            messages: request
                .messages
                .iter()
                .map(|m| WireMessage { role: role(m.role), content: &m.content })
                .collect(),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            stream: true,
            stream_options: StreamOptions { include_usage: true },
        };
        let chat = client.chat();
        let started = chat.create_stream_byot::<_, Chunk>(wire);
        match tokio::time::timeout(self.timeout(), started).await {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) => Err(provider_error(&e)),
            Err(_) => Err(timed_out(self.timeout())),
        }
    }
}

fn role(role: MessageRole) -> &'static str {
    match role {
        MessageRole::User => "user",
        MessageRole::Assistant => "assistant",
        MessageRole::System => "system",
    }
}

pub fn timed_out(after: Duration) -> GenerationError {
    GenerationError {
        code: GenerationErrorCode::ProviderTimeout,
        message: format!("the provider sent nothing for {} s", after.as_secs()),
    }
}

/// What went wrong, in our terms.
pub fn provider_error(e: &OpenAIError) -> GenerationError {
    let (code, message) = match e {
        OpenAIError::Reqwest(e) if e.is_timeout() => (GenerationErrorCode::ProviderTimeout, e.to_string()),
        OpenAIError::Reqwest(e) => {
            (GenerationErrorCode::ProviderUnreachable, format!("cannot reach the provider: {e}"))
        }
        OpenAIError::ApiError(r) if r.status_code.as_u16() == 429 => (
            GenerationErrorCode::ProviderRateLimited,
            format!("the provider is rate limiting: {}", r.api_error.message),
        ),
        OpenAIError::ApiError(r) => (
            GenerationErrorCode::ProviderError,
            format!("the provider answered {}: {}", r.status_code, r.api_error.message),
        ),
        OpenAIError::JSONDeserialize(e, _) => {
            (GenerationErrorCode::MalformedStream, format!("the provider sent an unreadable chunk: {e}"))
        }
        OpenAIError::StreamError(e) => (GenerationErrorCode::StreamIncomplete, format!("the stream broke: {e}")),
        other => (GenerationErrorCode::ProviderError, other.to_string()),
    };
    GenerationError { code, message }
}

#[cfg(test)]
mod tests {
    use super::push_storable;

    #[test]
    fn nul_is_dropped_and_everything_else_kept() {
        let mut text = String::from("a");
        push_storable(&mut text, "b\0c\u{0}\u{1}é");
        push_storable(&mut text, "\0");
        assert_eq!(text, "abc\u{1}é");
    }
}
