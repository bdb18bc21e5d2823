use actix_web::{HttpResponse, delete, get, patch, post, web};
use skein_shared::workspace::{
    AddWorkspaceMemberRequest, CreateWorkspaceRequest, UpdateWorkspaceMemberRequest, Workspace, WorkspaceMember,
};
use skein_shared::{Page, UserId, WorkspaceId};
use utoipa_actix_web::service_config::ServiceConfig;

use super::{PageParams, created};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_workspace)
        .service(list_workspaces)
        .service(get_workspace)
        .service(list_workspace_members)
        .service(add_workspace_member)
        .service(update_workspace_member)
        .service(remove_workspace_member);
}

/// Create a workspace; the caller becomes its owner.
#[utoipa::path(tag = "workspaces", request_body = CreateWorkspaceRequest, responses((status = 201, description = "Created", body = Workspace)))]
#[post("/workspaces")]
async fn create_workspace(
    state: AppState,
    caller: Caller,
    body: web::Json<CreateWorkspaceRequest>,
) -> ApiResult<HttpResponse> {
    let workspace = state.services.create_workspace(caller.id(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(workspace))
}

/// The caller's workspaces.
#[utoipa::path(tag = "workspaces", params(PageParams), responses((status = 200, description = "A page of workspaces", body = Page<Workspace>)))]
#[get("/workspaces")]
async fn list_workspaces(
    state: AppState,
    caller: Caller,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<Workspace>>> {
    Ok(web::Json(state.services.list_workspaces(caller.id(), q.cursor.as_deref(), q.limit).await?))
}

/// One workspace the caller is a member of.
#[utoipa::path(tag = "workspaces", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id")), responses((status = 200, description = "The workspace", body = Workspace)))]
#[get("/workspaces/{id}")]
async fn get_workspace(state: AppState, caller: Caller, id: web::Path<WorkspaceId>) -> ApiResult<web::Json<Workspace>> {
    Ok(web::Json(state.services.get_workspace(caller.id(), id.into_inner()).await?))
}

/// Members of a workspace (any member may list them).
#[utoipa::path(tag = "workspaces", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), PageParams), responses((status = 200, description = "A page of members", body = Page<WorkspaceMember>)))]
#[get("/workspaces/{id}/members")]
async fn list_workspace_members(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<WorkspaceMember>>> {
    Ok(web::Json(
        state.services.list_workspace_members(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?,
    ))
}

/// Add a user by `email` or `user_id` (admins; only owners add owners).
#[utoipa::path(tag = "workspaces", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id")), request_body = AddWorkspaceMemberRequest, responses(
    (status = 201, description = "Added", body = WorkspaceMember),
    (status = 200, description = "Already a member (unchanged)", body = WorkspaceMember),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/workspaces/{id}/members")]
async fn add_workspace_member(
    state: AppState,
    caller: Caller,
    id: web::Path<WorkspaceId>,
    body: web::Json<AddWorkspaceMemberRequest>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.add_workspace_member(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// Change a member's role. The last owner cannot be demoted.
#[utoipa::path(tag = "workspaces", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), ("user_id" = skein_shared::UserId, Path, description = "Member's user id")), request_body = UpdateWorkspaceMemberRequest, responses(
    (status = 200, description = "Updated", body = WorkspaceMember),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`last_owner`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/workspaces/{id}/members/{user_id}")]
async fn update_workspace_member(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, UserId)>,
    body: web::Json<UpdateWorkspaceMemberRequest>,
) -> ApiResult<web::Json<WorkspaceMember>> {
    let (id, user) = path.into_inner();
    Ok(web::Json(state.services.update_workspace_member(caller.id(), id, user, body.role).await?))
}

/// Remove a member (admins), or leave (yourself). The last owner cannot be removed.
#[utoipa::path(tag = "workspaces", params(("id" = skein_shared::WorkspaceId, Path, description = "Workspace id"), ("user_id" = skein_shared::UserId, Path, description = "Member's user id")), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`last_owner`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/workspaces/{id}/members/{user_id}")]
async fn remove_workspace_member(
    state: AppState,
    caller: Caller,
    path: web::Path<(WorkspaceId, UserId)>,
) -> ApiResult<HttpResponse> {
    let (id, user) = path.into_inner();
    state.services.remove_workspace_member(caller.id(), id, user).await?;
    Ok(HttpResponse::NoContent().finish())
}
