//! API keys of a workspace (its admins manage them; keys themselves cannot).

use actix_web::{HttpResponse, delete, get, post, web};
use skein_shared::api_key::{ApiKey, CreateApiKeyRequest, CreatedApiKey};
use skein_shared::{ApiKeyId, Page, WorkspaceId};
use utoipa_actix_web::service_config::ServiceConfig;

use super::PageParams;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_api_key).service(list_api_keys).service(revoke_api_key);
}

/// Mint an API key (workspace admins). The secret (`sk_skein_…`) is in this response only;
/// the server keeps its hash. The key acts as a service user of its own, named `name`: a
/// workspace `member` (`admin` with the `admin` scope; a `guest` that is a member of exactly
/// the listed conversations with `conversation_ids`).
#[utoipa::path(tag = "api-keys", params(("id" = WorkspaceId, Path, description = "Workspace id")), request_body = CreateApiKeyRequest, responses(
    (status = 201, description = "The key, with its secret shown this once", body = CreatedApiKey),
    (status = 403, description = "`forbidden` (not a workspace admin), `insufficient_scope` (an API key)", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/workspaces/{id}/api-keys")]
async fn create_api_key(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    body: web::Json<CreateApiKeyRequest>,
) -> ApiResult<HttpResponse> {
    let key = state.services.create_api_key(caller.id(), id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(key))
}

/// The workspace's live keys, oldest first, with when each was last used (never a secret).
#[utoipa::path(tag = "api-keys", params(("id" = WorkspaceId, Path, description = "Workspace id"), PageParams), responses(
    (status = 200, description = "A page of keys", body = Page<ApiKey>),
    (status = 403, description = "`forbidden` (not a workspace admin), `insufficient_scope` (an API key)", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/workspaces/{id}/api-keys")]
async fn list_api_keys(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<ApiKey>>> {
    Ok(web::Json(state.services.list_api_keys(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?))
}

/// Revoke a key: every instance refuses it from now on (within a second). What it posted
/// stays, authored by its service user.
#[utoipa::path(tag = "api-keys", params(("id" = WorkspaceId, Path, description = "Workspace id"), ("key_id" = ApiKeyId, Path, description = "API key id")), responses(
    (status = 204, description = "Revoked"),
    (status = 403, description = "`forbidden` (not a workspace admin), `insufficient_scope` (an API key)", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/workspaces/{id}/api-keys/{key_id}")]
async fn revoke_api_key(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, ApiKeyId)>,
) -> ApiResult<HttpResponse> {
    let (workspace, key) = path.into_inner();
    state.services.revoke_api_key(caller.id(), workspace, key).await?;
    Ok(HttpResponse::NoContent().finish())
}
