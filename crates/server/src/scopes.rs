//! What an API key's scopes let it call, by route. People's sessions may call everything;
//! a key may call what its scopes cover (`admin` covers all three others), and never the
//! routes that manage people's own credentials or would take it out of its workspace.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use skein_domain::entities::ApiKeyGrant;
use skein_shared::ErrorCode;
use skein_shared::api_key::API_KEY_PREFIX;
use skein_shared::api_key::ApiScope;

use crate::error::ApiError;

/// Routes (method, pattern) no key may call: keys are minted for one workspace by its
/// admins, and cannot mint keys, create workspaces, accept invitations or log out (a key is
/// revoked with `DELETE /api/workspaces/{id}/api-keys/{key_id}`).
const PEOPLE_ONLY: [(&str, &str); 6] = [
    ("POST", "/api/workspaces"),
    ("POST", "/api/workspaces/{id}/api-keys"),
    ("GET", "/api/workspaces/{id}/api-keys"),
    ("DELETE", "/api/workspaces/{id}/api-keys/{key_id}"),
    ("POST", "/api/invites/{code}/accept"),
    ("POST", "/api/auth/logout"),
];

/// Writes that touch only the caller's own state, which no one else sees: `read` covers them.
const OWN_STATE: [(&str, &str); 3] = [
    ("POST", "/api/stream/token"),
    ("POST", "/api/conversations/{id}/read"),
    ("PUT", "/api/conversations/{id}/preferences"),
];

/// Asking for, stopping and rating assistant answers (a chat completion bound to a thread
/// posts a message too: its handler also demands `write`).
const ASSISTANT: [(&str, &str); 5] = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/api/messages/{message_id}/generate"),
    ("POST", "/api/messages/{message_id}/cancel"),
    ("PUT", "/api/messages/{message_id}/feedback"),
    ("DELETE", "/api/messages/{message_id}/feedback"),
];

/// The scope a request needs, or `None` when no key may make it.
pub fn required(method: &Method, pattern: &str) -> Option<ApiScope> {
    let route = |list: &[(&str, &str)]| list.iter().any(|(m, p)| *m == method.as_str() && *p == pattern);
    // Instance administration is for instance admins, who are people.
    if route(&PEOPLE_ONLY) || pattern.starts_with("/api/admin/") {
        None
    } else if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || route(&OWN_STATE) {
        Some(ApiScope::Read)
    } else if route(&ASSISTANT) {
        Some(ApiScope::Assistant)
    } else {
        Some(ApiScope::Write)
    }
}

/// Middleware: a request with an API key whose scopes do not cover its route is refused
/// here, before any extractor reads its path or body (so the answer does not depend on the
/// order a handler's arguments are read in). The route is looked up by the path as the
/// router decodes it (`%6B` is `k`). A key that cannot be checked (the database is down) is
/// refused; an unknown token passes on to the `Caller` extractor's 401, and a path no route
/// has to the 404. `Caller` checks the routed pattern again, so a key never reaches a handler
/// unchecked.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let key = crate::auth::bearer_token(req.request()).filter(|t| t.starts_with(API_KEY_PREFIX));
    if let Some(token) = key {
        let decoded = actix_web::dev::Url::new(req.uri().clone());
        let pattern = req.request().resource_map().match_pattern(decoded.path());
        let refused = match req.app_data::<crate::AppState>() {
            None => Some(ApiError::new(ErrorCode::Internal, "state missing")),
            Some(state) => match state.services.authenticate(&token).await {
                Ok(session) => match (&session.api_key, &pattern) {
                    (Some(grant), Some(pattern)) => check(grant, req.method(), Some(pattern)).err(),
                    _ => None,
                },
                Err(skein_domain::DomainError::Unauthenticated) => None,
                Err(e) => Some(e.into()),
            },
        };
        if let Some(refused) = refused {
            let response = match req.path().starts_with("/v1/") {
                true => crate::routes::openai::V1Error::from(refused).into_response(),
                false => actix_web::ResponseError::error_response(&refused),
            };
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Refuses a key's request that its scopes do not cover; a route whose pattern is unknown is
/// refused too (no key may call what cannot be classified).
pub fn check(grant: &ApiKeyGrant, method: &Method, pattern: Option<&str>) -> Result<(), ApiError> {
    match pattern.and_then(|pattern| required(method, pattern)) {
        Some(scope) => demand(grant, scope),
        None => Err(insufficient().with_detail("API keys cannot call this route: it needs a person's session")),
    }
}

/// Refuses unless the key has `scope`.
pub fn demand(grant: &ApiKeyGrant, scope: ApiScope) -> Result<(), ApiError> {
    match grant.allows(scope) {
        true => Ok(()),
        false => Err(insufficient().with_detail(format!("this request needs the `{}` scope", scope.as_str()))),
    }
}

fn insufficient() -> ApiError {
    ApiError::new(ErrorCode::InsufficientScope, "The API key may not make this request")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// A renamed route must not silently fall to `write` (or out of people-only).
    #[test]
    fn every_listed_route_exists() {
        let doc = crate::openapi_document();
        for (method, path) in PEOPLE_ONLY.iter().chain(&OWN_STATE).chain(&ASSISTANT) {
            let item = doc.paths.paths.get(*path).unwrap_or_else(|| panic!("no path {path}"));
            let op = match *method {
                "GET" => &item.get,
                "POST" => &item.post,
                "PUT" => &item.put,
                "DELETE" => &item.delete,
                other => panic!("unexpected method {other}"),
            };
            assert!(op.is_some(), "no {method} {path}");
        }
    }

    #[test]
    fn reads_writes_and_answers_need_their_scopes() {
        assert_eq!(required(&Method::GET, "/api/threads/{root_id}/tree"), Some(ApiScope::Read));
        assert_eq!(required(&Method::POST, "/api/stream/token"), Some(ApiScope::Read));
        assert_eq!(required(&Method::POST, "/api/messages/{message_id}/reply"), Some(ApiScope::Write));
        assert_eq!(required(&Method::DELETE, "/api/messages/{id}"), Some(ApiScope::Write));
        assert_eq!(required(&Method::POST, "/api/messages/{message_id}/generate"), Some(ApiScope::Assistant));
        assert_eq!(required(&Method::POST, "/api/workspaces/{id}/api-keys"), None);
        assert_eq!(required(&Method::GET, "/api/workspaces/{id}/api-keys"), None);
    }
}
