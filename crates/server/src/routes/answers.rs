//! Assistant answers: asking for one, stopping it, following one generation's stream, its
//! persisted chunks, and feedback.

use actix_web::{HttpRequest, HttpResponse, Responder, delete, get, post, put, web};
use actix_web_lab::sse;
use serde::{Deserialize, Serialize};
use skein_shared::assistant::{FeedbackRequest, FeedbackSummary, GenerateRequest, MessageChunks};
use skein_shared::event::Event;
use skein_shared::thread::Message;
use skein_shared::{ErrorCode, MessageId};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::streams::{keep_alive, stream_session, until_session_ends};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(generate_answer)
        .service(cancel_answer)
        .service(stream_answer)
        .service(list_answer_chunks)
        .service(set_answer_feedback)
        .service(delete_answer_feedback);
}

/// Ask for an assistant answer to any message: a new child with `status: streaming`, whose
/// content arrives as `message.delta` events and ends with `message.done`. Asking again for
/// the same message regenerates (a new sibling; the old answer stays). The thread's settings
/// (else the conversation's default assistant) decide who answers; the body overrides.
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "The message to answer")), request_body = GenerateRequest, responses(
    (status = 201, description = "The assistant message, `status: streaming`", body = Message),
    (status = 403, description = "`forbidden` (viewers)", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`generation_running` (with the running `message_id`), `no_assistant`, `conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`: unknown assistant, model not allowed, out-of-range values", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 429, description = "`rate_limited`: too many running answers for this user (`Retry-After`)", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 503, description = "`service_unavailable`: this server runs as many answers as it may (`Retry-After`)", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/messages/{message_id}/generate")]
async fn generate_answer(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    body: Result<web::Bytes, actix_web::Error>,
) -> ApiResult<HttpResponse> {
    // Read whole, within `body_limit_bytes` as every body.
    let body = body.map_err(|e| {
        ApiError::new(ErrorCode::PayloadTooLarge, "The body is larger than allowed").with_detail(e.to_string())
    })?;
    // The body is optional (no overrides), but a body that is there must be right.
    let req = match body.is_empty() {
        true => GenerateRequest::default(),
        false => serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(ErrorCode::MalformedJson, "The body is not valid JSON of the expected shape")
                .with_detail(e.to_string())
        })?,
    };
    let message = state.services.generate(caller.id(), caller.via(), id.into_inner(), req).await?;
    Ok(HttpResponse::Created().json(message))
}

/// Stop an answer being generated (idempotent). The provider request is aborted at once; the
/// partial content stays with `status: cancelled`. Answers with the message once it has ended
/// (a cancel racing the natural end may find it `complete`).
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "Assistant message id")), responses(
    (status = 200, description = "The message", body = Message),
    (status = 409, description = "`not_an_assistant_message`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/messages/{message_id}/cancel")]
async fn cancel_answer(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<web::Json<Message>> {
    Ok(web::Json(state.services.cancel_generation(caller.id(), id.into_inner()).await?))
}

#[derive(Debug, Default, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FollowParams {
    /// Characters of the content the client already has (as `Last-Event-ID`, which wins).
    pub offset: Option<u32>,
    /// A token from `POST /api/stream/token`, for clients that cannot send headers.
    pub token: Option<String>,
}

/// One answer as Server-Sent Events: first the content so far (after `offset`) as one
/// `message.delta`, then each live `message.delta`, then `message.done`, and the stream ends.
/// A finished answer gets its content and `message.done` at once. Each event's `id:` is the
/// number of characters the client then has, so a reconnecting `EventSource` resumes with no
/// gap and no duplicate.
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "Assistant message id"), FollowParams, ("Last-Event-ID" = Option<String>, Header, description = "Characters already received")),
    responses(
        (status = 200, description = "`message.delta` events, then `message.done`", body = Event, content_type = "text/event-stream"),
        (status = 409, description = "`not_an_assistant_message`", body = skein_shared::Problem, content_type = "application/problem+json"),
    ))]
#[get("/messages/{message_id}/stream")]
async fn stream_answer(
    req: HttpRequest,
    state: AppState,
    id: web::Path<MessageId>,
    params: web::Query<FollowParams>,
) -> ApiResult<impl Responder> {
    let caller = stream_session(&req, &state, params.token.as_deref()).await?;
    let user = caller.user.id;
    let slot = state.stream_slots.take(user)?;
    let resume = req.headers().get("Last-Event-ID").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let offset = resume.or(params.offset).unwrap_or(0);
    let follow = state.services.follow_answer(user, id.into_inner(), offset).await?;
    let events = futures_util::stream::unfold(follow, |mut follow| async move {
        let (event, sent) = follow.next().await?;
        let kind = event.body.kind();
        let data = sse::Data::new(serde_json::to_string(&event).ok()?).event(kind).id(sent.to_string());
        Some((sse::Event::Data(data), follow))
    });
    let events = until_session_ends(Box::pin(events), state.services.session_end(&caller), slot);
    Ok(sse::Sse::from_stream(events).with_keep_alive(keep_alive(&state)))
}

/// The persisted chunks of an assistant message, in order (for clients that rebuild a stream).
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "Assistant message id")), responses(
    (status = 200, description = "The chunks and the message's status", body = MessageChunks),
    (status = 409, description = "`not_an_assistant_message`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{message_id}/chunks")]
async fn list_answer_chunks(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
) -> ApiResult<web::Json<MessageChunks>> {
    Ok(web::Json(state.services.message_chunks(caller.id(), id.into_inner()).await?))
}

/// Rate an assistant message (one rating per user; again replaces it).
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "Assistant message id")), request_body = FeedbackRequest, responses(
    (status = 200, description = "The caller's rating and the totals", body = FeedbackSummary),
    (status = 409, description = "`not_an_assistant_message`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[put("/messages/{message_id}/feedback")]
async fn set_answer_feedback(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    body: web::Json<FeedbackRequest>,
) -> ApiResult<web::Json<FeedbackSummary>> {
    Ok(web::Json(state.services.set_feedback(caller.id(), id.into_inner(), Some(body.into_inner())).await?))
}

/// Remove the caller's rating (idempotent).
#[utoipa::path(tag = "answers", params(("message_id" = skein_shared::MessageId, Path, description = "Assistant message id")), responses(
    (status = 200, description = "The totals without the caller's rating", body = FeedbackSummary),
))]
#[delete("/messages/{message_id}/feedback")]
async fn delete_answer_feedback(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
) -> ApiResult<web::Json<FeedbackSummary>> {
    Ok(web::Json(state.services.set_feedback(caller.id(), id.into_inner(), None).await?))
}
