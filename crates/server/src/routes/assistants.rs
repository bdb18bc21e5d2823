use actix_web::{HttpResponse, delete, get, patch, post, web};
use skein_shared::assistant::{Assistant, CreateAssistantRequest, UpdateAssistantRequest};
use skein_shared::{AssistantId, Page, WorkspaceId};
use utoipa_actix_web::service_config::ServiceConfig;

use super::PageParams;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_assistant)
        .service(list_assistants)
        .service(get_assistant)
        .service(update_assistant)
        .service(delete_assistant);
}

/// Create an assistant (workspace admins). The provider must be configured on the server and
/// the model allowed by it; without a model, the provider's default.
#[utoipa::path(tag = "assistants", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id")), request_body = CreateAssistantRequest, responses((status = 201, description = "Created", body = Assistant)))]
#[post("/workspaces/{id}/assistants")]
async fn create_assistant(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    body: web::Json<CreateAssistantRequest>,
) -> ApiResult<HttpResponse> {
    let assistant = state.services.create_assistant(caller.id(), id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(assistant))
}

/// The workspace's assistants (any member).
#[utoipa::path(tag = "assistants", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), PageParams), responses((status = 200, description = "A page of assistants", body = Page<Assistant>)))]
#[get("/workspaces/{id}/assistants")]
async fn list_assistants(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<Assistant>>> {
    let page = state.services.list_assistants(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?;
    Ok(web::Json(page))
}

/// One assistant of the workspace.
#[utoipa::path(tag = "assistants", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), ("assistant_id" = skein_shared::AssistantId, Path, description = "Assistant id")), responses((status = 200, description = "The assistant", body = Assistant)))]
#[get("/workspaces/{id}/assistants/{assistant_id}")]
async fn get_assistant(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, AssistantId)>,
) -> ApiResult<web::Json<Assistant>> {
    let (workspace, id) = path.into_inner();
    Ok(web::Json(state.services.get_assistant(caller.id(), workspace, id).await?))
}

/// Change an assistant (workspace admins). Absent fields stay; an empty `system_prompt`
/// removes it; a new `provider` without a `model` takes the provider's default model.
#[utoipa::path(tag = "assistants", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), ("assistant_id" = skein_shared::AssistantId, Path, description = "Assistant id")), request_body = UpdateAssistantRequest, responses((status = 200, description = "The assistant", body = Assistant)))]
#[patch("/workspaces/{id}/assistants/{assistant_id}")]
async fn update_assistant(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, AssistantId)>,
    body: web::Json<UpdateAssistantRequest>,
) -> ApiResult<web::Json<Assistant>> {
    let (workspace, id) = path.into_inner();
    Ok(web::Json(state.services.update_assistant(caller.id(), workspace, id, body.into_inner()).await?))
}

/// Delete an assistant (workspace admins). Messages it wrote stay.
#[utoipa::path(tag = "assistants", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), ("assistant_id" = skein_shared::AssistantId, Path, description = "Assistant id")), responses((status = 204, description = "Deleted")))]
#[delete("/workspaces/{id}/assistants/{assistant_id}")]
async fn delete_assistant(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, AssistantId)>,
) -> ApiResult<HttpResponse> {
    let (workspace, id) = path.into_inner();
    state.services.delete_assistant(caller.id(), workspace, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
