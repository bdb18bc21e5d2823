use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use skein_domain::entities::ConversationFilter;
use skein_shared::conversation::{
    AddConversationMemberRequest, Conversation, ConversationMember, ConversationOrder, ConvertConversationRequest,
    CreateConversationRequest, CreateInviteRequest, DeleteConversationRequest, Invite, UpdateConversationRequest,
};
use skein_shared::preferences::{MemberPreferences, UpdatePreferencesRequest};
use skein_shared::{ConversationId, Page, UserId, WorkspaceId};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::{PageParams, created};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_conversation)
        .service(list_conversations)
        .service(get_conversation)
        .service(update_conversation)
        .service(delete_conversation)
        .service(archive_conversation)
        .service(unarchive_conversation)
        .service(convert_conversation)
        .service(list_conversation_members)
        .service(add_conversation_member)
        .service(remove_conversation_member)
        .service(leave_conversation)
        .service(join_conversation)
        .service(set_conversation_preferences)
        .service(create_conversation_invite)
        .service(accept_invite)
        .service(revoke_conversation_invite);
}

/// Create a conversation. `direct` returns the pair's existing one (200) when there is one.
#[utoipa::path(tag = "conversations", request_body = CreateConversationRequest, responses(
    (status = 201, description = "Created", body = Conversation),
    (status = 200, description = "The pair's existing direct conversation", body = Conversation),
    (status = 403, description = "`forbidden` (guests)", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations")]
async fn create_conversation(
    state: AppState,
    caller: Caller,
    body: web::Json<CreateConversationRequest>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.create_conversation(caller.id(), body.into_inner()).await?))
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this workspace's conversations; absent: every workspace of the caller's (one
    /// inbox).
    pub workspace_id: Option<WorkspaceId>,
    /// `true`: only archived conversations; default: only active ones.
    #[serde(default)]
    pub archived: bool,
    /// Only those the caller starred (`true`) or did not (`false`).
    pub starred: Option<bool>,
    /// Only those the caller has muted now (`true`) or has not (`false`).
    pub muted: Option<bool>,
    /// `true`: only those with messages the caller has not read (as `unread` counts them).
    #[serde(default)]
    pub unread: bool,
    /// `activity` (default) or `starred`: the caller's starred ones first.
    #[serde(default)]
    #[param(inline)]
    pub order: ConversationOrder,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Conversations the caller can see, in one workspace or across all of theirs, by last
/// activity (newest first).
#[utoipa::path(tag = "conversations", params(ListParams), responses((status = 200, description = "A page of conversations", body = Page<Conversation>)))]
#[get("/conversations")]
async fn list_conversations(
    state: AppState,
    caller: Caller,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<Page<Conversation>>> {
    let q = q.into_inner();
    Ok(web::Json(
        state
            .services
            .list_conversations(
                caller.id(),
                q.workspace_id,
                ConversationFilter { archived: q.archived, starred: q.starred, muted: q.muted, unread: q.unread },
                q.order,
                q.cursor.as_deref(),
                q.limit,
            )
            .await?,
    ))
}

/// One conversation the caller can see, with their role and preferences.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), responses((status = 200, description = "The conversation", body = Conversation)))]
#[get("/conversations/{id}")]
async fn get_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
) -> ApiResult<web::Json<Conversation>> {
    Ok(web::Json(state.services.get_conversation(caller.id(), id.into_inner()).await?))
}

/// Change title, description, visibility or history policy (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = UpdateConversationRequest, responses(
    (status = 200, description = "Updated", body = Conversation),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/conversations/{id}")]
async fn update_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<UpdateConversationRequest>,
) -> ApiResult<web::Json<Conversation>> {
    Ok(web::Json(state.services.update_conversation(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// Delete the conversation for good (owners): its messages, threads, members and invites go
/// with it. Members get `membership.changed` (`conversation_deleted`) as their last event from it.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = DeleteConversationRequest, responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`: `confirm` is not the conversation's id", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/conversations/{id}")]
async fn delete_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<DeleteConversationRequest>,
) -> ApiResult<HttpResponse> {
    state.services.delete_conversation(caller.id(), id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Make the conversation read-only (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), responses(
    (status = 200, description = "Archived", body = Conversation),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/archive")]
async fn archive_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
) -> ApiResult<web::Json<Conversation>> {
    Ok(web::Json(state.services.set_archived(caller.id(), id.into_inner(), true).await?))
}

/// Makes an archived conversation writable again (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), responses(
    (status = 200, description = "Writable again", body = Conversation),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/unarchive")]
async fn unarchive_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
) -> ApiResult<web::Json<Conversation>> {
    Ok(web::Json(state.services.set_archived(caller.id(), id.into_inner(), false).await?))
}

/// Turn a group into a private channel (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = ConvertConversationRequest, responses(
    (status = 200, description = "Converted", body = Conversation),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`not_convertible` or `conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/convert")]
async fn convert_conversation(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<ConvertConversationRequest>,
) -> ApiResult<web::Json<Conversation>> {
    Ok(web::Json(state.services.convert_to_channel(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// Explicit members. Workspace-visible channels also include every non-guest workspace member.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), PageParams), responses((status = 200, description = "A page of members", body = Page<ConversationMember>)))]
#[get("/conversations/{id}/members")]
async fn list_conversation_members(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    q: web::Query<PageParams>,
) -> ApiResult<web::Json<Page<ConversationMember>>> {
    Ok(web::Json(
        state.services.list_conversation_members(caller.id(), id.into_inner(), q.cursor.as_deref(), q.limit).await?,
    ))
}

/// Add a workspace member to the conversation (admins; only owners add owners).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = AddConversationMemberRequest, responses(
    (status = 201, description = "Added", body = ConversationMember),
    (status = 200, description = "Already a member (unchanged)", body = ConversationMember),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`direct_conversation_fixed` or `conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/members")]
async fn add_conversation_member(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<AddConversationMemberRequest>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.add_conversation_member(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// Remove a member (admins; only owners remove owners). Removing yourself is leaving.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), ("user_id" = skein_shared::UserId, Path, description = "Member's user id")), responses(
    (status = 204, description = "Removed"),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`last_owner` or `direct_conversation_fixed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/conversations/{id}/members/{user_id}")]
async fn remove_conversation_member(
    state: AppState,
    caller: Caller,
    path: web::Path<(ConversationId, UserId)>,
) -> ApiResult<HttpResponse> {
    let (id, user) = path.into_inner();
    state.services.remove_conversation_member(caller.id(), id, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Leave the conversation. A workspace-visible one (joined or not) is then hidden from the
/// caller: gone from their conversation list, their streams and their access, until they join
/// it again.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), responses(
    (status = 204, description = "Left"),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`last_owner` or `direct_conversation_fixed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/leave")]
async fn leave_conversation(state: AppState, caller: Caller, id: web::Path<ConversationId>) -> ApiResult<HttpResponse> {
    state.services.leave_conversation(caller.id(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Join a workspace-visible conversation (any non-guest member of its workspace, also after
/// leaving it): the caller becomes a member with the `member` role. Private conversations
/// take an invite.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), responses(
    (status = 201, description = "Joined", body = Conversation),
    (status = 200, description = "Already a member (unchanged)", body = Conversation),
    (status = 404, description = "`not_found`: no such conversation, or not one the caller may join", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/join")]
async fn join_conversation(state: AppState, caller: Caller, id: web::Path<ConversationId>) -> ApiResult<HttpResponse> {
    Ok(created(state.services.join_conversation(caller.id(), id.into_inner()).await?))
}

/// Change the caller's own settings for the conversation: starred, muted (until a time, or
/// `"forever"`: until unmuted; `null` unmutes), notify level. Absent fields stay as they are.
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = UpdatePreferencesRequest, responses(
    (status = 200, description = "The caller's preferences now", body = MemberPreferences),
    (status = 404, description = "`not_found`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[put("/conversations/{id}/preferences")]
async fn set_conversation_preferences(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<UpdatePreferencesRequest>,
) -> ApiResult<web::Json<MemberPreferences>> {
    Ok(web::Json(state.services.set_preferences(caller.id(), id.into_inner(), body.into_inner()).await?))
}

/// Create an invite code (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id")), request_body = CreateInviteRequest, responses(
    (status = 201, description = "Created", body = Invite),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`direct_conversation_fixed` or `conversation_archived`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/conversations/{id}/invites")]
async fn create_conversation_invite(
    state: AppState,
    caller: Caller,
    id: web::Path<ConversationId>,
    body: web::Json<CreateInviteRequest>,
) -> ApiResult<HttpResponse> {
    let invite = state.services.create_invite(caller.id(), id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Created().json(invite))
}

/// Join through an invite. Someone outside the workspace joins it as a guest.
#[utoipa::path(tag = "conversations", params(("code" = String, Path, description = "Invite code")), responses(
    (status = 201, description = "Joined", body = Conversation),
    (status = 200, description = "Already a member", body = Conversation),
    (status = 410, description = "`invite_expired`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/invites/{code}/accept")]
async fn accept_invite(state: AppState, caller: Caller, code: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(created(state.services.accept_invite(caller.id(), &code).await?))
}

/// Revoke an invite (admins).
#[utoipa::path(tag = "conversations", params(("id" = skein_shared::ConversationId, Path, description = "Conversation id"), ("code" = String, Path, description = "Invite code")), responses(
    (status = 204, description = "Revoked"),
    (status = 403, description = "`forbidden`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/conversations/{id}/invites/{code}")]
async fn revoke_conversation_invite(
    state: AppState,
    caller: Caller,
    path: web::Path<(ConversationId, String)>,
) -> ApiResult<HttpResponse> {
    let (id, code) = path.into_inner();
    state.services.revoke_invite(caller.id(), id, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}
