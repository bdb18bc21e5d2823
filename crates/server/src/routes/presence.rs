//! Typing indicators and presence: live-only, never replayed.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use skein_shared::event::{HeartbeatRequest, PresenceInfo, PresenceResponse, TypingRequest};
use skein_shared::{ConversationId, UserId};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(send_typing).service(send_presence_heartbeat).service(get_presence);
}

/// Starts or stops the caller's typing indicator. The server ends it by itself when no
/// repeat comes within the configured time; repeats within it send nothing new.
#[utoipa::path(tag = "presence", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = TypingRequest, responses((status = 204, description = "Sent to the conversation's members")))]
#[post("/conversations/{id}/typing")]
async fn send_typing(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<TypingRequest>,
) -> ApiResult<HttpResponse> {
    state.services.typing(caller.id(), id.into_inner(), body.root_id, body.typing).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller is here (or idle at the device, with `away`). Send it every minute or so;
/// without it the caller turns `away`, then `offline`, after the configured times.
#[utoipa::path(tag = "presence", request_body = HeartbeatRequest, responses((status = 200, description = "The caller's presence now", body = PresenceInfo)))]
#[post("/presence/heartbeat")]
async fn send_presence_heartbeat(
    state: AppState,
    caller: Caller,
    body: Option<web::Json<HeartbeatRequest>>,
) -> ApiResult<web::Json<PresenceInfo>> {
    let away = body.is_some_and(|b| b.away);
    let info = state.services.heartbeat(caller.id(), away).await?;
    Ok(web::Json(info))
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresenceParams {
    /// Comma-separated user ids (at most 200).
    pub user_ids: String,
}

/// The presence of users who share a workspace with the caller (others are left out).
#[utoipa::path(tag = "presence", params(PresenceParams), responses((status = 200, description = "Presence", body = PresenceResponse)))]
#[get("/presence")]
async fn get_presence(
    state: AppState,
    caller: Caller,
    params: web::Query<PresenceParams>,
) -> ApiResult<web::Json<PresenceResponse>> {
    let users: Vec<UserId> = params
        .user_ids
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<ulid::Ulid>().map(UserId))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            ApiError::from(skein_domain::DomainError::field("user_ids", "invalid", "not a list of user ids"))
        })?;
    let users = state.services.presence(caller.id(), &users).await?;
    Ok(web::Json(PresenceResponse { users }))
}
