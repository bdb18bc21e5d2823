//! Which class a request is counted in, what it is about, and the IETF `RateLimit-Policy` /
//! `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers) of a counted request. The
//! decision is the store's: [`count`] runs in the `Caller` extractor, once the caller is
//! known, and leaves its standing on the request for [`headers`] to write on the response,
//! refused or not.

use actix_web::HttpMessage;
use actix_web::HttpRequest;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use skein_domain::entities::Session;
use skein_domain::rate::{Place, RateRequest, RateStatus, Spender};
use skein_shared::ErrorCode;
use skein_shared::limits::RouteClass;

use crate::AppState;
use crate::error::ApiError;

pub const POLICY_HEADER: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const STATE_HEADER: HeaderName = HeaderName::from_static("ratelimit");

/// The class of a routed request (method and pattern as the router matched them).
pub fn class_of(method: &Method, pattern: &str) -> RouteClass {
    let is = |m: Method, p: &str| *method == m && pattern == p;
    let m = method.clone();
    match pattern {
        "/api/auth/login" | "/api/auth/register" => RouteClass::Auth,
        "/api/threads/{conversation_id}/root" | "/api/messages/{message_id}/reply" if m == Method::POST => {
            RouteClass::Post
        }
        "/api/messages/{message_id}/generate" | "/v1/chat/completions" if m == Method::POST => RouteClass::Generate,
        "/api/messages/{id}/reactions/{emoji}" | "/api/messages/{message_id}/feedback" if m != Method::GET => {
            RouteClass::React
        }
        "/api/messages/{id}" | "/api/threads/{root_id}" | "/api/messages/{id}/pin"
            if matches!(m, Method::PATCH | Method::DELETE | Method::PUT) =>
        {
            RouteClass::Edit
        }
        _ if is(Method::POST, "/api/conversations/{id}/typing") => RouteClass::Typing,
        _ if is(Method::POST, "/api/presence/heartbeat") => RouteClass::Presence,
        _ if is(Method::GET, "/api/search") => RouteClass::Search,
        _ if matches!(m, Method::GET | Method::HEAD | Method::OPTIONS) => RouteClass::Read,
        _ => RouteClass::Write,
    }
}

/// What the request is about, from its path: a workspace's profile applies to it.
fn place_of(req: &HttpRequest, pattern: &str) -> Place {
    let param = |name: &str| req.match_info().get(name).and_then(|v| v.parse::<ulid::Ulid>().ok());
    let first = |names: &[&str]| names.iter().find_map(|n| param(n));
    if pattern.starts_with("/api/workspaces/{id}") {
        first(&["id"]).map_or(Place::Nowhere, |id| Place::Workspace(id.into()))
    } else if pattern.starts_with("/api/conversations/{id}") {
        first(&["id"]).map_or(Place::Nowhere, |id| Place::Conversation(id.into()))
    } else if pattern.starts_with("/api/threads/{conversation_id}") {
        first(&["conversation_id"]).map_or(Place::Nowhere, |id| Place::Conversation(id.into()))
    } else if pattern.starts_with("/api/messages/") || pattern.starts_with("/api/threads/{root_id}") {
        first(&["id", "message_id", "root_id"]).map_or(Place::Nowhere, |id| Place::Message(id.into()))
    } else {
        Place::Nowhere
    }
}

/// Counts an authenticated request in its route's class.
pub async fn count(state: &AppState, req: &HttpRequest, session: &Session) -> Result<(), ApiError> {
    let pattern = req.match_pattern().unwrap_or_default();
    let class = class_of(req.method(), &pattern);
    let place = place_of(req, &pattern);
    settle(req, state.services.take_rate(RateRequest { class, spender: spender(session), place }).await?)
}

/// Counts an unauthenticated request (registering, signing in) by its client address.
pub async fn count_address(state: &AppState, req: &HttpRequest) -> Result<(), ApiError> {
    let Some(address) = client_address(state, req) else { return Ok(()) };
    let request = RateRequest { class: RouteClass::Auth, spender: Spender::Address(address), place: Place::Nowhere };
    settle(req, state.services.take_rate(request).await?)
}

/// Counts a WebSocket frame as the REST request it stands for (no headers to write: a
/// refused frame's `ack` carries the problem).
pub async fn count_frame(state: &AppState, session: &Session, class: RouteClass, place: Place) -> Result<(), ApiError> {
    match state.services.take_rate(RateRequest { class, spender: spender(session), place }).await? {
        Some(status) if status.retry_after_secs.is_some() => Err(refusal(&status)),
        _ => Ok(()),
    }
}

fn spender(session: &Session) -> Spender {
    Spender::Caller { user: session.user.id, api_key: session.api_key.as_ref().map(|grant| grant.id) }
}

/// The peer's address, or (behind a proxy, when configured) the last address the proxy
/// appended to its header: the only one no client can forge.
fn client_address(state: &AppState, req: &HttpRequest) -> Option<std::net::IpAddr> {
    if let Some(header) = state.client_ip_header.as_ref() {
        let forwarded = req.headers().get_all(header).filter_map(|v| v.to_str().ok()).last();
        if let Some(ip) = forwarded.and_then(|v| v.rsplit(',').next()).and_then(|v| v.trim().parse().ok()) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|addr| addr.ip())
}

fn settle(req: &HttpRequest, status: Option<RateStatus>) -> Result<(), ApiError> {
    let Some(status) = status else { return Ok(()) };
    let refused = status.retry_after_secs.is_some().then(|| refusal(&status));
    req.extensions_mut().insert(status);
    refused.map_or(Ok(()), Err)
}

fn refusal(status: &RateStatus) -> ApiError {
    let rule = status.rule;
    ApiError::new(ErrorCode::RateLimited, "Too many requests of this kind; retry later")
        .with_detail(format!(
            "`{}` allows {} requests per {} s",
            rule.route_class.as_str(),
            rule.burst,
            rule.per_seconds
        ))
        .retry_after(status.retry_after_secs.unwrap_or(1))
}

/// Middleware: writes the headers of a counted request's standing.
pub async fn headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let status = res.request().extensions_mut().remove::<RateStatus>();
    if let Some(status) = status {
        let (policy, state) = header_values(&status);
        res.headers_mut().insert(POLICY_HEADER, policy);
        res.headers_mut().insert(STATE_HEADER, state);
    }
    Ok(res)
}

/// `"post";q=30;w=30` and `"post";r=29;t=1`: the class names the policy.
pub fn header_values(status: &RateStatus) -> (HeaderValue, HeaderValue) {
    let class = status.rule.route_class.as_str();
    let policy = format!("\"{class}\";q={};w={}", status.rule.burst, status.rule.per_seconds);
    let state = format!("\"{class}\";r={};t={}", status.remaining, status.reset_secs);
    let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
    (value(policy), value(state))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn routes_fall_in_their_classes() {
        let cases = [
            (Method::POST, "/api/auth/login", RouteClass::Auth),
            (Method::POST, "/api/threads/{conversation_id}/root", RouteClass::Post),
            (Method::POST, "/api/messages/{message_id}/reply", RouteClass::Post),
            (Method::PATCH, "/api/messages/{id}", RouteClass::Edit),
            (Method::GET, "/api/messages/{id}", RouteClass::Read),
            (Method::PUT, "/api/messages/{id}/reactions/{emoji}", RouteClass::React),
            (Method::GET, "/api/messages/{id}/reactions/{emoji}", RouteClass::Read),
            (Method::POST, "/api/conversations/{id}/typing", RouteClass::Typing),
            (Method::POST, "/api/presence/heartbeat", RouteClass::Presence),
            (Method::POST, "/api/messages/{message_id}/generate", RouteClass::Generate),
            (Method::POST, "/v1/chat/completions", RouteClass::Generate),
            (Method::GET, "/api/search", RouteClass::Search),
            (Method::POST, "/api/workspaces", RouteClass::Write),
        ];
        for (method, pattern, class) in cases {
            assert_eq!(class_of(&method, pattern), class, "{method} {pattern}");
        }
    }
}
