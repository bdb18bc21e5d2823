//! Accounts, for instance admins: list them, disable and enable them.

use actix_web::{get, patch, web};
use serde::Deserialize;
use skein_shared::limits::{AdminUser, UpdateAdminUser};
use skein_shared::{Page, UserId};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users).service(update_user);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct UserListParams {
    /// Part of an email or display name (case-blind).
    q: Option<String>,
    /// `page.next` of the previous page.
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Every account, people and API keys' service users, oldest first (instance admins).
#[utoipa::path(tag = "admin", params(UserListParams), responses(
    (status = 200, description = "A page of accounts", body = Page<AdminUser>),
    (status = 403, description = "`forbidden`: not an instance admin", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/admin/users")]
async fn list_users(
    state: AppState,
    caller: Caller,
    q: web::Query<UserListParams>,
) -> ApiResult<web::Json<Page<AdminUser>>> {
    let page = state.services.list_accounts(&caller.session, q.q.as_deref(), q.cursor.as_deref(), q.limit).await?;
    Ok(web::Json(page))
}

/// Disable or enable an account (instance admins; not their own). Disabling ends at once,
/// on every instance, its sessions and their streams (with a last `error` event), its key
/// when it is a service user, and the keys it minted; its logins are answered 401 as a
/// wrong password is (so no guess is confirmed). Enabling lets it sign in again (revoked keys
/// stay revoked).
#[utoipa::path(tag = "admin", params(("id" = UserId, Path, description = "User id")), request_body = UpdateAdminUser, responses(
    (status = 200, description = "The account", body = AdminUser),
    (status = 403, description = "`forbidden`: not an instance admin, or their own account", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[patch("/admin/users/{id}")]
async fn update_user(
    state: AppState,
    caller: Caller,
    id: web::Path<UserId>,
    body: web::Json<UpdateAdminUser>,
) -> ApiResult<web::Json<AdminUser>> {
    Ok(web::Json(state.services.update_account(&caller.session, id.into_inner(), body.into_inner()).await?))
}
