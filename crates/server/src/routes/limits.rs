//! Rate limits and quotas: what the caller has left, and the profiles instance admins tune.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use skein_shared::limits::{
    CreateRateLimitProfile, LimitsResponse, RateLimitAssignment, RateLimitProfile, UpdateRateLimitProfile,
};
use skein_shared::{RateLimitProfileId, UserId};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(my_limits)
        .service(list_profiles)
        .service(create_profile)
        .service(update_profile)
        .service(delete_profile)
        .service(assign_profile)
        .service(user_limits);
}

/// The caller's rate-limit profile, what each limited class has left now, and their daily
/// quotas with today's use. A person's profile is shown as it applies outside any workspace
/// with a profile of its own; an API key's includes its workspace's.
#[utoipa::path(tag = "limits", responses((status = 200, description = "The caller's limits", body = LimitsResponse)))]
#[get("/me/limits")]
async fn my_limits(state: AppState, caller: Caller) -> ApiResult<web::Json<LimitsResponse>> {
    Ok(web::Json(state.services.my_limits(&caller.session).await?))
}

/// Every rate-limit profile with its rules (instance admins).
#[utoipa::path(tag = "limits", responses(
    (status = 200, description = "The profiles, by name", body = Vec<RateLimitProfile>),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/admin/rate-limit-profiles")]
async fn list_profiles(state: AppState, caller: Caller) -> ApiResult<web::Json<Vec<RateLimitProfile>>> {
    Ok(web::Json(state.services.list_rate_profiles(&caller.session).await?))
}

/// Create a profile (instance admins). It applies to no one until assigned.
#[utoipa::path(tag = "limits", request_body = CreateRateLimitProfile, responses(
    (status = 201, description = "Created", body = RateLimitProfile),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/admin/rate-limit-profiles")]
async fn create_profile(
    state: AppState,
    caller: Caller,
    body: web::Json<CreateRateLimitProfile>,
) -> ApiResult<HttpResponse> {
    let profile = state.services.create_rate_profile(&caller.session, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(profile))
}

/// Change a profile (instance admins): every instance counts the next request by it.
#[utoipa::path(tag = "limits", params(("id" = RateLimitProfileId, Path, description = "Profile id")), request_body = UpdateRateLimitProfile, responses(
    (status = 200, description = "Changed", body = RateLimitProfile),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/admin/rate-limit-profiles/{id}")]
async fn update_profile(
    state: AppState,
    caller: Caller,
    id: web::Path<RateLimitProfileId>,
    body: web::Json<UpdateRateLimitProfile>,
) -> ApiResult<web::Json<RateLimitProfile>> {
    Ok(web::Json(state.services.update_rate_profile(&caller.session, id.into_inner(), body.into_inner()).await?))
}

/// Delete a profile (instance admins; not the default). Whoever it was assigned to falls back
/// to the next most specific profile.
#[utoipa::path(tag = "limits", params(("id" = RateLimitProfileId, Path, description = "Profile id")), responses(
    (status = 204, description = "Deleted"),
    (status = 403, description = "`forbidden`: not an instance admin, or the default profile", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[delete("/admin/rate-limit-profiles/{id}")]
async fn delete_profile(state: AppState, caller: Caller, id: web::Path<RateLimitProfileId>) -> ApiResult<HttpResponse> {
    state.services.delete_rate_profile(&caller.session, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Assign a profile to the instance (the default), a workspace, a user or an API key, or
/// take a subject's own away (`profile_id: null`). The most specific applies: the key's, the
/// user's, the workspace's (its API keys, and requests about its conversations and
/// messages), the default.
#[utoipa::path(tag = "limits", request_body = RateLimitAssignment, responses(
    (status = 204, description = "Assigned"),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[put("/admin/rate-limit-assignments")]
async fn assign_profile(
    state: AppState,
    caller: Caller,
    body: web::Json<RateLimitAssignment>,
) -> ApiResult<HttpResponse> {
    state.services.assign_rate_profile(&caller.session, body.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's limits, as `GET /api/me/limits` shows them to the user (instance admins).
#[utoipa::path(tag = "limits", params(("id" = UserId, Path, description = "User id")), responses(
    (status = 200, description = "The user's limits", body = LimitsResponse),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/admin/users/{id}/limits")]
async fn user_limits(state: AppState, caller: Caller, id: web::Path<UserId>) -> ApiResult<web::Json<LimitsResponse>> {
    Ok(web::Json(state.services.account_limits(&caller.session, id.into_inner()).await?))
}
