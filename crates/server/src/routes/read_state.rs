//! Read cursors and unread counts.

use actix_web::{get, post, web};
use skein_shared::ConversationId;
use skein_shared::event::{ConversationUnread, MarkReadRequest, UnreadResponse};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

/// Registered before the conversation routes: `/conversations/unread` is not an id.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_unread_counts).service(mark_conversation_read);
}

/// Exact unread counts for every conversation the caller keeps a read cursor of, with their
/// threads: those they are a member of (from joining), and workspace-visible ones they read
/// without joining (from their first read).
#[utoipa::path(tag = "read state", responses((status = 200, description = "Unread counts", body = UnreadResponse)))]
#[get("/conversations/unread")]
async fn get_unread_counts(state: AppState, caller: Caller) -> ApiResult<web::Json<UnreadResponse>> {
    Ok(web::Json(state.services.unread(caller.id()).await?))
}

/// Moves the caller's read cursor forward to a message (the thread's cursor with `root_id`).
/// An older message changes nothing. Every connection of the caller receives `unread.update`
/// when the counts change. An implicit member of a workspace-visible conversation gets a
/// cursor with their first read.
#[utoipa::path(tag = "read state", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = MarkReadRequest, responses(
    (status = 200, description = "The conversation's unread counts after the move", body = ConversationUnread),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/read")]
async fn mark_conversation_read(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<MarkReadRequest>,
) -> ApiResult<web::Json<ConversationUnread>> {
    Ok(web::Json(state.services.mark_read(caller.id(), id.into_inner(), body.into_inner()).await?))
}
