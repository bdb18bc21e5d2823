use std::str::FromStr;

use actix_web::{HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use skein_domain::DomainError;
use skein_domain::entities::ThreadFilter;
use skein_domain::services::HistoryQuery;
use skein_shared::api_key::ApiScope;
use skein_shared::assistant::{MessageDetail, ReplyWithAssistant};
use skein_shared::thread::{
    CreateRootRequest, HistoryParams, Message, ReplyRequest, ThreadSummary, ThreadTreeResponse, TreeParams,
    UpdateThreadRequest,
};
use skein_shared::{ConversationId, MessageId, Page, UserId};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{comma_list, created};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_thread)
        .service(create_reply)
        .service(update_thread)
        .service(get_thread_tree)
        .service(list_threads)
        .service(list_conversation_messages)
        .service(get_message);
}

/// Start a thread: its root message. A retried `client_msg_id` returns the original (200).
#[utoipa::path(tag = "threads", params(("conversation_id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = CreateRootRequest, responses(
    (status = 201, description = "The root message (`root_id == id`)", body = Message),
    (status = 200, description = "A retry: the original message", body = Message),
    (status = 403, description = "`forbidden` (viewers)", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/threads/{conversation_id}/root")]
async fn create_thread(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<CreateRootRequest>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state
            .services
            .create_root(caller.id(), caller.via(), caller.may_ask(), id.into_inner(), body.into_inner())
            .await?,
    ))
}

/// Reply to any message of a thread, at any depth. With `generate: true` (or the thread's
/// `auto_reply`) the assistant's answer to the reply starts too and comes back as
/// `assistant_message`; who answers is settled first, so a refused answer stores nothing.
#[utoipa::path(tag = "threads", params(("message_id" = skein_shared::MessageId, Path, description = "Parent message id")), request_body = ReplyRequest, responses(
    (status = 201, description = "The reply (and `assistant_message` when an answer started)", body = ReplyWithAssistant),
    (status = 200, description = "A retry: the original message", body = ReplyWithAssistant),
    (status = 403, description = "`forbidden` (viewers)", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `no_assistant`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 429, description = "`rate_limited`: too many running answers for this user", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 503, description = "`service_unavailable`: this server runs as many answers as it may", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/messages/{message_id}/reply")]
async fn create_reply(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    body: web::Json<ReplyRequest>,
) -> ApiResult<HttpResponse> {
    // Asking for the answer explicitly is the `assistant` scope's (as `generate` is).
    if let (true, Some(grant)) = (body.generate, &caller.session.api_key) {
        crate::scopes::demand(grant, ApiScope::Assistant)?;
    }
    Ok(created(
        state.services.reply(caller.id(), caller.via(), caller.may_ask(), id.into_inner(), body.into_inner()).await?,
    ))
}

/// Edit a thread's title, tags and AI settings (its root's author or conversation admins).
/// Announced with `thread.activity` carrying what changed.
#[utoipa::path(tag = "threads", params(("root_id" = skein_shared::MessageId, Path, description = "Root message id")), request_body = UpdateThreadRequest, responses(
    (status = 200, description = "The thread", body = ThreadSummary),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/threads/{root_id}")]
async fn update_thread(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    body: web::Json<UpdateThreadRequest>,
) -> ApiResult<web::Json<ThreadSummary>> {
    Ok(web::Json(state.services.update_thread(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// A thread as a depth-first list (siblings oldest first), each node with its ancestry.
#[utoipa::path(tag = "threads", params(("root_id" = skein_shared::MessageId, Path, description = "Root message id"), TreeParams), responses(
    (status = 200, description = "The summary and one page of nodes", body = ThreadTreeResponse),
))]
#[get("/threads/{root_id}/tree")]
async fn get_thread_tree(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    q: web::Query<TreeParams>,
) -> ApiResult<web::Json<ThreadTreeResponse>> {
    Ok(web::Json(state.services.thread_tree(caller.id(), id.into_inner(), q.from, q.cursor.as_deref(), q.limit).await?))
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ThreadListParams {
    /// Comma-separated: only threads carrying every one of these tags.
    pub tags: Option<String>,
    /// Only threads whose root this user wrote.
    pub author_id: Option<UserId>,
    /// `me`, or a user id: only threads that user took part in (the root or a reply).
    pub participant: Option<String>,
    /// `page.next` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Threads of a conversation by last activity, newest first, optionally filtered.
#[utoipa::path(tag = "threads", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), ThreadListParams), responses(
    (status = 200, description = "A page of thread summaries", body = Page<ThreadSummary>),
    (status = 422, description = "`validation_failed`: a bad filter or cursor", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/conversations/{id}/threads")]
async fn list_threads(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    q: web::Query<ThreadListParams>,
) -> ApiResult<web::Json<Page<ThreadSummary>>> {
    let q = q.into_inner();
    let participant = match q.participant.as_deref() {
        None => None,
        Some("me") => Some(caller.id()),
        Some(raw) => {
            Some(UserId::from_str(raw).map_err(|_| DomainError::field("participant", "invalid", "`me` or a user id"))?)
        }
    };
    let filter = ThreadFilter {
        tags: comma_list(q.tags.as_deref()).into_iter().map(str::to_owned).collect(),
        author: q.author_id,
        participant,
    };
    Ok(web::Json(
        state.services.list_threads(caller.id(), id.into_inner(), filter, q.cursor.as_deref(), q.limit).await?,
    ))
}

/// One page of the conversation's messages, oldest first; with no anchor, the newest page.
#[utoipa::path(tag = "threads", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), HistoryParams), responses(
    (status = 200, description = "A page of messages. `page.prev`: pass as `before`; `page.next`: pass as `after` (null at the newest page)", body = Page<Message>),
))]
#[get("/conversations/{id}/messages")]
async fn list_conversation_messages(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    q: web::Query<HistoryParams>,
) -> ApiResult<web::Json<Page<Message>>> {
    let query = HistoryQuery { before: q.before, after: q.after, around: q.around, limit: q.limit };
    Ok(web::Json(state.services.history(caller.id(), id.into_inner(), query).await?))
}

/// A message; an assistant message also shows how it was generated (provider, model, usage,
/// finish reason, timing, error) and its feedback.
#[utoipa::path(tag = "threads", params(("id" = skein_shared::MessageId, Path, description = "Message id")), responses((status = 200, description = "The message", body = MessageDetail)))]
#[get("/messages/{id}")]
async fn get_message(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<web::Json<MessageDetail>> {
    Ok(web::Json(state.services.message_detail(caller.id(), id.into_inner()).await?))
}
