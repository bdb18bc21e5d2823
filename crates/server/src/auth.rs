//! Who is calling: a bearer token or the session cookie (which also needs a CSRF header on
//! writes). The token is looked up by its digest; the token itself is never stored.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest};
use skein_domain::entities::Session;
use skein_shared::thread::{Via, ViaKind};
use skein_shared::{ErrorCode, UserId};

use crate::AppState;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "skein_session";
pub const CSRF_COOKIE: &str = "skein_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller of a request.
pub struct Caller {
    pub session: Session,
}

impl Caller {
    pub fn id(&self) -> UserId {
        self.session.user.id
    }

    /// Whether the caller may start assistant answers (an API key needs `assistant`).
    pub fn may_ask(&self) -> bool {
        may_ask(&self.session)
    }

    /// How what this request writes came in (recorded on messages).
    pub fn via(&self) -> Via {
        via_of(&self.session, ViaKind::Session)
    }
}

/// Whether the session may start assistant answers (an API key needs `assistant`).
pub fn may_ask(session: &Session) -> bool {
    session.api_key.as_ref().is_none_or(|grant| grant.allows(skein_shared::api_key::ApiScope::Assistant))
}

/// `kind` for a person's session; an API key's requests are always `api_key` or `openai`.
pub fn via_of(session: &Session, kind: ViaKind) -> Via {
    match &session.api_key {
        Some(key) => {
            Via { kind: if kind == ViaKind::Session { ViaKind::ApiKey } else { kind }, api_key_id: Some(key.id) }
        }
        None => Via { kind, api_key_id: None },
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state =
                req.app_data::<AppState>().ok_or_else(|| ApiError::new(ErrorCode::Internal, "state missing"))?;
            let unauthenticated = || ApiError::new(ErrorCode::Unauthenticated, "A valid session token is required");
            let (token, via_cookie) = match bearer_token(&req) {
                Some(token) => (token, false),
                None => (req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned()).ok_or_else(unauthenticated)?, true),
            };
            let session = state.services.authenticate(&token).await.map_err(ApiError::from)?;
            if let Some(grant) = &session.api_key {
                // Keys travel in the Authorization header only (a key has no CSRF token).
                if via_cookie {
                    return Err(unauthenticated());
                }
                // `scopes::enforce` refused it before any extractor if it could; this is the
                // routed pattern, the final word.
                crate::scopes::check(grant, req.method(), req.match_pattern().as_deref())?;
            }
            if via_cookie && !is_safe(req.method()) {
                let header = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                if session.csrf_token.is_empty() || !constant_time_eq(header.as_bytes(), session.csrf_token.as_bytes())
                {
                    return Err(ApiError::new(
                        ErrorCode::CsrfFailed,
                        "Cookie-authenticated writes need the X-CSRF-Token header",
                    ));
                }
            }
            crate::rate_limits::count(state, &req, &session).await?;
            Ok(Caller { session })
        })
    }
}

pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned()).filter(|t| !t.is_empty())
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session and CSRF cookies set at login.
pub fn session_cookies(token: &str, csrf: &str, max_age_secs: i64, secure: bool) -> [Cookie<'static>; 2] {
    let build = |name: &'static str, value: String, http_only: bool| {
        Cookie::build(name, value)
            .path("/")
            .http_only(http_only)
            .secure(secure)
            .same_site(SameSite::Lax)
            .max_age(CookieDuration::seconds(max_age_secs))
            .finish()
    };
    [build(SESSION_COOKIE, token.to_owned(), true), build(CSRF_COOKIE, csrf.to_owned(), false)]
}

/// Cookies that remove the session cookies.
pub fn cleared_cookies() -> [Cookie<'static>; 2] {
    let clear = |name: &'static str| {
        let mut c = Cookie::build(name, "").path("/").finish();
        c.make_removal();
        c
    };
    [clear(SESSION_COOKIE), clear(CSRF_COOKIE)]
}
