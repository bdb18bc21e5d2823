use actix_web::{HttpRequest, HttpResponse, get, post, web};
use skein_shared::auth::{AuthResponse, LoginRequest, RegisterRequest, User};
use time::OffsetDateTime;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;
use crate::auth::{Caller, cleared_cookies, session_cookies};
use crate::error::ApiResult;
use crate::rate_limits;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(register_account).service(log_in).service(log_out).service(get_current_user);
}

fn with_session(mut response: actix_web::HttpResponseBuilder, state: &AppState, auth: AuthResponse) -> HttpResponse {
    let max_age = (auth.expires_at - OffsetDateTime::now_utc()).whole_seconds();
    for cookie in session_cookies(&auth.token, &auth.csrf_token, max_age, state.secure_cookies) {
        response.cookie(cookie);
    }
    response.json(auth)
}

/// Create an account and a session. The first account on an instance becomes its admin.
#[utoipa::path(tag = "auth", security(()), request_body = RegisterRequest, responses(
    (status = 201, description = "Registered; the session cookie is set too", body = AuthResponse),
    (status = 403, description = "`registration_closed`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`email_taken`", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/auth/register")]
async fn register_account(
    state: AppState,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> ApiResult<HttpResponse> {
    rate_limits::count_address(&state, &req).await?;
    let auth = state.services.register(body.into_inner()).await?;
    Ok(with_session(HttpResponse::Created(), &state, auth))
}

/// Log in. Unknown email, wrong password and a disabled account get the same 401. After too many failures for
/// an email, every attempt for it gets 429 (with `Retry-After`) until the window moves on.
#[utoipa::path(tag = "auth", security(()), request_body = LoginRequest, responses(
    (status = 200, description = "Logged in; the session cookie is set too", body = AuthResponse),
    (status = 401, description = "`invalid_credentials`", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 429, description = "`rate_limited`: too many failed logins for this email, or too many attempts from this address", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[post("/auth/login")]
async fn log_in(state: AppState, req: HttpRequest, body: web::Json<LoginRequest>) -> ApiResult<HttpResponse> {
    rate_limits::count_address(&state, &req).await?;
    let auth = state.services.login(body.into_inner()).await?;
    Ok(with_session(HttpResponse::Ok(), &state, auth))
}

/// Revoke the caller's session token.
#[utoipa::path(tag = "auth", responses((status = 204, description = "Logged out")))]
#[post("/auth/logout")]
async fn log_out(state: AppState, caller: Caller) -> ApiResult<HttpResponse> {
    state.services.logout(caller.session.id).await?;
    let mut response = HttpResponse::NoContent();
    for cookie in cleared_cookies() {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

/// The caller.
#[utoipa::path(tag = "auth", responses((status = 200, description = "The caller", body = User)))]
#[get("/me")]
async fn get_current_user(caller: Caller) -> web::Json<User> {
    web::Json(caller.session.user)
}
