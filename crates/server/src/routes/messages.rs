//! Changing posted messages: edit (with history), delete, reactions, pins; deleting a thread.

use actix_web::{HttpResponse, delete, get, patch, put, web};
use skein_shared::message::{EditMessageRequest, MessageVersion, PinnedMessage, Reactor};
use skein_shared::thread::Message;
use skein_shared::{ConversationId, MessageId, Page};
use utoipa_actix_web::service_config::ServiceConfig;

use super::PageParams;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(edit_message)
        .service(list_message_versions)
        .service(delete_message)
        .service(delete_thread)
        .service(add_reaction)
        .service(remove_reaction)
        .service(list_reaction_users)
        .service(pin_message)
        .service(unpin_message)
        .service(list_conversation_pins);
}

/// Edit a message (its author; an assistant's answer: whoever asked for it, once it ended).
/// The previous version is kept (`GET /api/messages/{id}/history`); `message.updated` goes
/// out with the message as it is now.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id")), request_body = EditMessageRequest, responses(
    (status = 200, description = "The edited message", body = Message),
    (status = 403, description = "`forbidden`: not the author, or a viewer", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `message_deleted`, `edit_window_closed`, `generation_running`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/messages/{id}")]
async fn edit_message(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    body: web::Json<EditMessageRequest>,
) -> ApiResult<web::Json<Message>> {
    Ok(web::Json(state.services.edit_message(caller.id(), id.into_inner(), body.into_inner().content).await?))
}

/// Earlier versions of a message, newest first (for those who may see the message).
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id"), PageParams), responses(
    (status = 200, description = "A page of earlier versions", body = Page<MessageVersion>),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/history")]
async fn list_message_versions(
    state: AppState,
    caller: Caller,
    id: web::Path<MessageId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<MessageVersion>>> {
    Ok(web::Json(state.services.message_versions(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?))
}

/// Delete a message (its author or conversation admins). It stays in the tree as a tombstone
/// (`deleted_at`, empty content) so its replies keep their parent; its content and edit
/// history are erased. A streaming answer is stopped first. Deleting it again is a no-op.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id")), responses(
    (status = 200, description = "The tombstone", body = Message),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/messages/{id}")]
async fn delete_message(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<web::Json<Message>> {
    Ok(web::Json(state.services.delete_message(caller.id(), id.into_inner()).await?))
}

/// Delete a whole thread (its root's author or conversation admins): every message in it
/// becomes a tombstone, each with its `message.deleted`.
#[utoipa::path(tag = "messages", params(("root_id" = skein_shared::MessageId, Path, description = "Root message id")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/threads/{root_id}")]
async fn delete_thread(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<HttpResponse> {
    state.services.delete_thread(caller.id(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// React with one emoji (or a `:shortcode:`); idempotent. `reaction.added` goes out.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id"), ("emoji" = String, Path, description = "One emoji (URL-encoded) or a `:shortcode:`")), responses(
    (status = 200, description = "The message with its reactions", body = Message),
    (status = 403, description = "`forbidden`: viewers, unless the conversation lets them react", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `message_deleted`, `reaction_limit`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`: not one emoji or shortcode", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[put("/messages/{id}/reactions/{emoji}")]
async fn add_reaction(
    state: AppState,
    caller: Caller,
    path: web::Path<(MessageId, String)>,
) -> ApiResult<web::Json<Message>> {
    let (id, emoji) = path.into_inner();
    Ok(web::Json(state.services.set_reaction(caller.id(), id, &emoji, true).await?))
}

/// Take back one's reaction; idempotent. `reaction.removed` goes out.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id"), ("emoji" = String, Path, description = "One emoji (URL-encoded) or a `:shortcode:`")), responses(
    (status = 200, description = "The message with its reactions", body = Message),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `message_deleted`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/messages/{id}/reactions/{emoji}")]
async fn remove_reaction(
    state: AppState,
    caller: Caller,
    path: web::Path<(MessageId, String)>,
) -> ApiResult<web::Json<Message>> {
    let (id, emoji) = path.into_inner();
    Ok(web::Json(state.services.set_reaction(caller.id(), id, &emoji, false).await?))
}

/// Who reacted with an emoji, oldest first.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id"), ("emoji" = String, Path, description = "One emoji (URL-encoded) or a `:shortcode:`"), PageParams), responses(
    (status = 200, description = "A page of reactors", body = Page<Reactor>),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/messages/{id}/reactions/{emoji}")]
async fn list_reaction_users(
    state: AppState,
    caller: Caller,
    path: web::Path<(MessageId, String)>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<Reactor>>> {
    let (id, emoji) = path.into_inner();
    Ok(web::Json(state.services.reactors(caller.id(), id, &emoji, q.cursor.as_deref(), q.limit).await?))
}

/// Pin a message to its conversation (members, or admins where `pin_policy` is `admins`);
/// idempotent. `message.pinned` goes out.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id")), responses(
    (status = 200, description = "The message (`pinned: true`)", body = Message),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `message_deleted`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[put("/messages/{id}/pin")]
async fn pin_message(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<web::Json<Message>> {
    Ok(web::Json(state.services.set_pinned(caller.id(), id.into_inner(), true).await?))
}

/// Unpin a message; idempotent. `message.unpinned` goes out.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::MessageId, Path, description = "Message id")), responses(
    (status = 200, description = "The message (`pinned: false`)", body = Message),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`, `message_deleted`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/messages/{id}/pin")]
async fn unpin_message(state: AppState, caller: Caller, id: web::Path<MessageId>) -> ApiResult<web::Json<Message>> {
    Ok(web::Json(state.services.set_pinned(caller.id(), id.into_inner(), false).await?))
}

/// The conversation's pinned messages, newest pin first.
#[utoipa::path(tag = "messages", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), PageParams), responses(
    (status = 200, description = "A page of pinned messages", body = Page<PinnedMessage>),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/conversations/{id}/pins")]
async fn list_conversation_pins(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<PinnedMessage>>> {
    Ok(web::Json(state.services.pins(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?))
}
