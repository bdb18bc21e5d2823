//! The OpenAI-compatible endpoint: `POST /v1/chat/completions` (streamed or not) and
//! `GET /v1/models`, with a Skein session or API key as the bearer token. Errors on `/v1`
//! are in OpenAI's shape, so OpenAI SDKs raise their usual exceptions.

use std::convert::Infallible;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post};
use futures_util::{StreamExt, stream};
use skein_domain::services::{AnswerFollow, OpenAiChat};
use skein_shared::api_key::ApiScope;
use skein_shared::assistant::{GenerationError, Usage};
use skein_shared::event::EventBody;
use skein_shared::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChunkChoice, ChunkDelta,
    CompletionUsage, ModelList, OpenAiError, OpenAiErrorBody, SkeinExchange, THREAD_METADATA_KEY,
};
use skein_shared::thread::{MessageStatus, ViaKind};
use skein_shared::{ErrorCode, MessageId};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::{Caller, via_of};
use crate::error::ApiError;
use crate::scopes;

/// The header that binds a call to a thread, as `metadata.skein_thread` does.
pub const THREAD_HEADER: &str = "x-skein-thread";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_chat_completion).service(list_models);
}

/// An error of `/v1`, in OpenAI's shape.
pub struct V1Error(ApiError);

impl<E: Into<ApiError>> From<E> for V1Error {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl V1Error {
    pub fn into_response(self) -> HttpResponse {
        let problem = &self.0.0;
        // OpenAI answers invalid requests with 400, whatever the reason.
        let status = match problem.status {
            415 | 422 => 400,
            other => other,
        };
        let kind = match status {
            400 | 409 | 413 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            _ => "api_error",
        };
        let field = problem.errors.first();
        let code = match (problem.code, field) {
            (ErrorCode::Unauthenticated, _) => "invalid_api_key".to_owned(),
            (_, Some(f)) if f.field == "model" && f.code == "unknown" => "model_not_found".to_owned(),
            (code, _) => code.as_str().to_owned(),
        };
        let message = match (field, &problem.detail) {
            (Some(_), _) => {
                problem.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
            }
            (None, Some(detail)) => detail.clone(),
            (None, None) => problem.title.clone(),
        };
        let body = OpenAiError {
            error: OpenAiErrorBody {
                message,
                kind: kind.into(),
                param: field.map(|f| f.field.clone()),
                code: Some(code),
            },
        };
        let mut res = HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
        if let Some(secs) = self.0.retry_after_secs() {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.json(body)
    }
}

fn invalid(message: String, param: Option<&str>) -> V1Error {
    let error = match param {
        Some(param) => skein_domain::DomainError::field(param, "invalid", message).into(),
        None => ApiError::new(ErrorCode::BadRequest, "Invalid request").with_detail(message),
    };
    V1Error(error)
}

/// Chat completions in OpenAI's protocol, answered by Skein's assistants and providers.
///
/// `model` is one of the caller's assistants (by name, or id) or `provider/model`.
/// With `metadata.skein_thread` (or the `X-Skein-Thread` header) set to a thread's root id the
/// exchange is stored: the last user message is posted as a reply at the thread's newest
/// message and answered by that assistant as a Skein answer (streamed to the thread's
/// watchers, persisted, cancellable with `POST /api/messages/{id}/cancel`; closing this
/// stream does not cancel it), and the response's `skein` field names both messages. Without
/// it nothing is stored: the messages go to the provider as given and closing the stream
/// stops the provider. `stream: true` answers in Server-Sent Events ending `data: [DONE]`.
/// Refused: `n` other than 1, `tools`/`functions`, `logprobs`, non-text content parts; other
/// OpenAI fields Skein does not use (e.g. `top_p`, `stop`, `seed`, `user`) are ignored.
#[utoipa::path(tag = "openai", request_body = ChatCompletionRequest,
    params(("X-Skein-Thread" = Option<MessageId>, Header, description = "Store the exchange in this thread (its root id)")),
    responses(
        (status = 200, description = "The answer (`stream: false`), or `ChatCompletionChunk`s as SSE `data:` lines then `data: [DONE]`", body = ChatCompletion),
        (status = 400, description = "`invalid_request_error`", body = OpenAiError),
        (status = 401, description = "`authentication_error` (`invalid_api_key`)", body = OpenAiError),
        (status = 403, description = "`permission_error`", body = OpenAiError),
        (status = 404, description = "`not_found_error`: the thread", body = OpenAiError),
        (status = 413, description = "`invalid_request_error` (`payload_too_large`): the body is larger than allowed", body = OpenAiError),
        (status = 429, description = "`rate_limit_error`", body = OpenAiError),
        (status = 502, description = "`api_error`: the provider failed", body = OpenAiError),
        (status = 503, description = "`api_error`: at capacity", body = OpenAiError),
    ))]
#[post("/v1/chat/completions")]
async fn create_chat_completion(
    req: HttpRequest,
    state: AppState,
    body: Result<Bytes, actix_web::Error>,
) -> HttpResponse {
    chat(req, state, body).await.unwrap_or_else(V1Error::into_response)
}

async fn chat(
    req: HttpRequest,
    state: AppState,
    body: Result<Bytes, actix_web::Error>,
) -> Result<HttpResponse, V1Error> {
    let caller = Caller::extract(&req).await?;
    // Any body is read as JSON (OpenAI's clients always send it): only its size is checked.
    let body = body.map_err(|e| {
        V1Error(ApiError::new(ErrorCode::PayloadTooLarge, "The body is larger than allowed").with_detail(e.to_string()))
    })?;
    match crate::input::check_json(&body) {
        Ok(()) => {}
        Err(crate::input::Refused::Nul(field)) => {
            return Err(invalid(format!("{field} must not contain NUL (U+0000)"), Some(&field)));
        }
        Err(crate::input::Refused::NotAnObject) => {
            return Err(invalid("the body must be a JSON object".into(), None));
        }
    }
    let request: ChatCompletionRequest = serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("the body is not a chat completion request: {e}"), None))?;
    let header = match req.headers().get(THREAD_HEADER).map(|v| v.to_str()) {
        Some(Ok(value)) => Some(value.to_owned()),
        Some(Err(_)) => return Err(invalid("X-Skein-Thread is not a message id".into(), Some("X-Skein-Thread"))),
        None => None,
    };
    let named = header.or_else(|| request.metadata.as_ref().and_then(|m| m.get(THREAD_METADATA_KEY).cloned()));
    let thread = named
        .map(|id| {
            id.parse::<MessageId>()
                .map_err(|_| invalid(format!("{id:?} is not a message id"), Some("metadata.skein_thread")))
        })
        .transpose()?;
    if let (Some(_), Some(grant)) = (thread, &caller.session.api_key) {
        // Storing the exchange posts a message.
        scopes::demand(grant, ApiScope::Write)?;
    }
    let via = via_of(&caller.session, ViaKind::Openai);
    let chat = state.services.openai_chat(caller.id(), via, &request, thread).await?;
    let answer = Answer {
        model: request.model.clone(),
        created: time::OffsetDateTime::now_utc().unix_timestamp(),
        include_usage: request.stream_options.as_ref().is_some_and(|o| o.include_usage),
    };
    let source = match chat {
        OpenAiChat::ProviderFailed(e) => return Err(provider_failed(&e)),
        OpenAiChat::Proxy(completion) => Source::Proxy(completion),
        OpenAiChat::Thread { exchange, follow } => Source::Thread { exchange, follow },
    };
    match request.stream {
        true => Ok(answer.streamed(source)),
        false => answer.whole(source).await,
    }
}

/// What the caller may name as `model`: their assistants, then `provider/model`s.
#[utoipa::path(tag = "openai", responses(
    (status = 200, description = "The models", body = ModelList),
    (status = 401, description = "`authentication_error`", body = OpenAiError),
))]
#[get("/v1/models")]
async fn list_models(req: HttpRequest, state: AppState) -> HttpResponse {
    let listed = async {
        let caller = Caller::extract(&req).await?;
        let data = state.services.openai_models(caller.id()).await?;
        Ok::<_, V1Error>(HttpResponse::Ok().json(ModelList { object: "list".into(), data }))
    };
    listed.await.unwrap_or_else(V1Error::into_response)
}

/// The provider's own words (its address, an echo of its key) go to the log, not the caller.
fn provider_failed(e: &GenerationError) -> V1Error {
    tracing::warn!(error = %e.message, "a /v1 completion failed at the provider");
    let code = serde_json::to_value(e.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let mut error = ApiError::new(ErrorCode::GenerationFailed, "The provider failed")
        .with_detail(format!("the provider failed ({code})"));
    error.0.status = 502;
    V1Error(error)
}

/// Where the answer's text comes from.
enum Source {
    Thread { exchange: SkeinExchange, follow: Box<AnswerFollow> },
    Proxy(Box<dyn skein_domain::ports::ProxyCompletion>),
}

/// A piece of the answer, whichever the source.
enum Piece {
    Text(String),
    End { finish_reason: String, usage: Option<Usage> },
    Failed(GenerationError),
}

impl Source {
    async fn next(&mut self) -> Option<Piece> {
        match self {
            Self::Proxy(completion) => match completion.next().await? {
                Ok(skein_domain::ports::ProxyPiece::Text(text)) => Some(Piece::Text(text)),
                Ok(skein_domain::ports::ProxyPiece::End { finish_reason, usage }) => {
                    Some(Piece::End { finish_reason: finish_reason.unwrap_or_else(|| "stop".into()), usage })
                }
                Err(e) => Some(Piece::Failed(e)),
            },
            Self::Thread { follow, .. } => loop {
                let (event, _) = follow.next().await?;
                match event.body {
                    EventBody::MessageDelta(delta) => return Some(Piece::Text(delta.delta)),
                    EventBody::MessageDone(done) => {
                        return Some(match done.status {
                            MessageStatus::Failed => Piece::Failed(done.error.unwrap_or(GenerationError {
                                code: skein_shared::assistant::GenerationErrorCode::ProviderError,
                                message: "the answer failed".into(),
                            })),
                            // A stopped answer ends as OpenAI's clients expect an end.
                            _ => Piece::End {
                                finish_reason: done.finish_reason.unwrap_or_else(|| "stop".into()),
                                usage: done.usage,
                            },
                        });
                    }
                    _ => continue,
                }
            },
        }
    }

    fn id(&self) -> String {
        match self {
            Self::Thread { exchange, .. } => format!("chatcmpl-{}", exchange.answer_id),
            Self::Proxy(_) => format!("chatcmpl-{}", ulid::Ulid::generate()),
        }
    }

    fn exchange(&self) -> Option<SkeinExchange> {
        match self {
            Self::Thread { exchange, .. } => Some(*exchange),
            Self::Proxy(_) => None,
        }
    }
}

fn usage(u: Usage) -> CompletionUsage {
    CompletionUsage { prompt_tokens: u.input_tokens, completion_tokens: u.output_tokens, total_tokens: u.total_tokens }
}

struct Answer {
    model: String,
    created: i64,
    include_usage: bool,
}

impl Answer {
    async fn whole(self, mut source: Source) -> Result<HttpResponse, V1Error> {
        let mut content = String::new();
        let (finish_reason, used) = loop {
            match source.next().await {
                Some(Piece::Text(text)) => content.push_str(&text),
                Some(Piece::End { finish_reason, usage }) => break (finish_reason, usage),
                Some(Piece::Failed(e)) => return Err(provider_failed(&e)),
                None => return Err(V1Error(ApiError::new(ErrorCode::NotFound, "The answer is gone"))),
            }
        };
        Ok(HttpResponse::Ok().json(ChatCompletion {
            id: source.id(),
            object: "chat.completion".into(),
            created: self.created,
            model: self.model,
            choices: vec![ChatChoice {
                index: 0,
                message: AssistantMessage { role: "assistant".into(), content },
                finish_reason: Some(finish_reason),
            }],
            usage: used.map(usage),
            skein: source.exchange(),
        }))
    }

    fn chunk(&self, id: &str, delta: ChunkDelta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: id.to_owned(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice { index: 0, delta, finish_reason }],
            usage: None,
            skein: None,
        }
    }

    /// `data:` lines: a first chunk with the role, one per piece, the end (and usage), `[DONE]`.
    fn streamed(self, source: Source) -> HttpResponse {
        let id = source.id();
        let mut first =
            self.chunk(&id, ChunkDelta { role: Some("assistant".into()), content: Some(String::new()) }, None);
        first.skein = source.exchange();
        let opening = data(&first);
        let state = Some((self, source, id));
        let rest = stream::unfold(state, |state| async move {
            let (answer, mut source, id) = state?;
            let (lines, go_on) = match source.next().await {
                Some(Piece::Text(text)) => {
                    (data(&answer.chunk(&id, ChunkDelta { content: Some(text), role: None }, None)), true)
                }
                Some(Piece::End { finish_reason, usage: used }) => {
                    let mut lines = data(&answer.chunk(&id, ChunkDelta::default(), Some(finish_reason)));
                    if answer.include_usage {
                        let mut last = answer.chunk(&id, ChunkDelta::default(), None);
                        last.choices.clear();
                        last.usage = Some(used.map(usage).unwrap_or_default());
                        lines.push_str(&data(&last));
                    }
                    lines.push_str("data: [DONE]\n\n");
                    (lines, false)
                }
                // OpenAI's clients raise on an `error` object in the stream.
                Some(Piece::Failed(e)) => {
                    let problem = provider_failed(&e).0.0;
                    let error = OpenAiError {
                        error: OpenAiErrorBody {
                            message: problem.detail.unwrap_or(problem.title),
                            kind: "api_error".into(),
                            param: None,
                            code: Some(ErrorCode::GenerationFailed.as_str().into()),
                        },
                    };
                    (data(&error), false)
                }
                None => return None,
            };
            let next = go_on.then_some((answer, source, id));
            Some((Ok::<_, Infallible>(Bytes::from(lines)), next))
        });
        let body = stream::once(async move { Ok::<_, Infallible>(Bytes::from(opening)) }).chain(rest);
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-cache")))
            .streaming(body)
    }
}

fn data<T: serde::Serialize>(value: &T) -> String {
    format!("data: {}\n\n", serde_json::to_string(value).unwrap_or_default())
}
