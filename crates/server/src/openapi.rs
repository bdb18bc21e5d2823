//! The OpenAPI 3.1 document: generated from the handlers' annotations, with the security
//! schemes and the problem responses every operation can give added here once.

use actix_web::http::Method;
use skein_shared::api_key::ApiScope;
use skein_shared::limits::RouteClass;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::{Content, Object, OpenApi as Document, Ref, RefOr, Type};
use utoipa::{Modify, OpenApi};

mod limits;
mod sse;

#[derive(OpenApi)]
#[openapi(
    info(title = "Skein API", description = "Threaded conversations for people and AI assistants. Errors are RFC 9457 problem documents with a stable `code`. A path no operation serves answers 404 `route_not_found`; a method its path does not take, 405 `method_not_allowed`."),
    components(schemas(
        skein_shared::Problem,
        skein_shared::ErrorCode,
        skein_shared::FieldError,
        skein_shared::event::ClientFrame,
        skein_shared::openai::ChatCompletionChunk
    )),
    security(("bearer" = []), ("session_cookie" = [])),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "workspaces", description = "Workspaces and their members"),
        (name = "api-keys", description = "Scoped API keys for services, acting as service users of a workspace"),
        (name = "assistants", description = "AI assistants of a workspace (OpenAI-compatible providers from the configuration)"),
        (name = "conversations", description = "Conversations, members and invites"),
        (name = "threads", description = "Threads (trees of messages) and history"),
        (name = "messages", description = "Changing posted messages: edits and their history, deletes, reactions, pins"),
        (name = "answers", description = "Assistant answers: generate, cancel, follow one generation, chunks, feedback"),
        (name = "streams", description = "Realtime events over SSE and WebSocket, with exact resumption by cursor"),
        (name = "read state", description = "Read cursors and unread counts"),
        (name = "presence", description = "Typing indicators and presence (live only)"),
        (name = "search", description = "Full-text search over messages, within what the caller may read"),
        (name = "limits", description = "Rate limits and daily quotas: the caller's, and the profiles instance admins tune"),
        (name = "admin", description = "Instance administration: accounts (instance admins only)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "openai", description = "OpenAI-compatible chat completions and models (errors in OpenAI's shape)"),
    )
)]
pub struct ApiDoc;

/// Applied to the finished document (after utoipa-actix-web has added the paths).
pub struct Conventions;

/// Responses any operation may give, besides those its handler documents.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "`malformed_json` or `bad_request`: the body or query could not be read"),
    ("404", "`not_found`: no such resource, or the caller may not see it"),
    ("422", "`validation_failed`: see `errors` for the fields"),
    ("500", "`internal`"),
    ("503", "`service_unavailable`: retry after `Retry-After` seconds"),
];

/// Responses only an operation that takes a body may give.
const BODY_ERRORS: &[(&str, &str)] =
    &[("413", "`payload_too_large`"), ("415", "`unsupported_media_type`: the body must be application/json")];

/// Operations that also accept a stream token (`?token=`), for clients that cannot send headers.
const STREAM_OPERATIONS: &[&str] = &["stream_events", "stream_conversation", "stream_answer", "connect_websocket"];

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from login or register, or an API key (`sk_skein_…`). A key \
                         may call what its scopes cover: each operation's requirement names the scope.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Set by login; writes also need the `X-CSRF-Token` header (the `skein_csrf` cookie's value)",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                crate::auth::CSRF_HEADER,
                "The `skein_csrf` cookie's value; needed with the session cookie on POST, PUT, PATCH and DELETE",
            ))),
        );
        components.add_security_scheme(
            "stream_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A token from `POST /api/stream/token`: opens streams only, for a few minutes",
            ))),
        );
        doc.servers = Some(vec![Server::new("/")]);
        let unknown = limits::apply(doc, &skein_domain::Limits::default());
        debug_assert!(unknown.is_empty(), "limits name fields the document lacks: {unknown:?}");
        let unknown = sse::describe(doc);
        debug_assert!(unknown.is_empty(), "event streams without a framing description: {unknown:?}");

        for (path, item) in doc.paths.paths.iter_mut() {
            let reads = [(&mut item.get, Method::GET)].into_iter();
            let writes = [
                (&mut item.post, Method::POST),
                (&mut item.put, Method::PUT),
                (&mut item.patch, Method::PATCH),
                (&mut item.delete, Method::DELETE),
            ]
            .into_iter();
            let ops = reads.chain(writes).filter_map(|(op, method)| op.as_mut().map(|op| (op, method)));
            for (op, method) in ops {
                let secured = op.security.as_ref().is_none_or(|reqs| !reqs.iter().all(is_empty_requirement));
                if secured {
                    let scope = crate::scopes::required(&method, path);
                    op.security = Some(security_for(op, method != Method::GET, scope));
                    if scope.is_none() {
                        let note = "Not for API keys (403 `insufficient_scope`): a person's session only.";
                        op.description = Some(match op.description.take() {
                            Some(text) => format!("{text}\n\n{note}"),
                            None => note.to_owned(),
                        });
                    }
                }
                // `/v1` speaks OpenAI's error shape: its handlers document their own errors.
                if !path.starts_with("/v1/") {
                    add_common_errors(op, secured);
                }
                // Every authenticated request is counted in a class, and so are sign-ins.
                if secured || crate::rate_limits::class_of(&method, path) == RouteClass::Auth {
                    add_rate_limit(op, &method, path);
                }
                add_headers(op);
            }
        }
    }
}

/// Who may call a secured operation: a Bearer token (naming the scope an API key needs, as
/// OpenAPI 3.1 lets any scheme name roles), or the session cookie (with the CSRF header on
/// writes), or for streams a stream token.
fn security_for(op: &Operation, write: bool, scope: Option<ApiScope>) -> Vec<SecurityRequirement> {
    let none: [&str; 0] = [];
    let mut alternatives = vec![SecurityRequirement::new("bearer", scope.map(ApiScope::as_str))];
    alternatives.push(match write {
        true => SecurityRequirement::new("session_cookie", none).add("csrf_token", none),
        false => SecurityRequirement::new("session_cookie", none),
    });
    if op.operation_id.as_deref().is_some_and(|id| STREAM_OPERATIONS.contains(&id)) {
        alternatives.push(SecurityRequirement::new("stream_token", none));
    }
    alternatives
}

fn add_common_errors(op: &mut Operation, secured: bool) {
    let mut codes: Vec<(&str, &str)> = COMMON_ERRORS.to_vec();
    if op.request_body.is_some() {
        codes.extend_from_slice(BODY_ERRORS);
    }
    if secured {
        codes.push(("401", "`unauthenticated`: no valid session token"));
        codes.push(("403", "`forbidden`, `csrf_failed`, or `insufficient_scope` (an API key without the scope)"));
    }
    for (status, description) in codes {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
    }
}

/// The class's 429 and the `RateLimit-Policy` / `RateLimit` headers of counted requests.
fn add_rate_limit(op: &mut Operation, method: &Method, path: &str) {
    let class = crate::rate_limits::class_of(method, path).as_str();
    if !path.starts_with("/v1/") {
        let description = format!("`rate_limited`: the `{class}` budget is spent");
        let response = op.responses.responses.entry("429".to_owned()).or_insert_with(|| problem_response(&description));
        // Posting and asking for answers also spend daily quotas.
        if let (RefOr::T(response), "post" | "generate") = (response, class) {
            response.description.push_str(
                "; `quota_exceeded`: a daily quota (messages, or assistant tokens) is used up until `resets_at`",
            );
        }
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if !(status.starts_with('2') || status == "429") {
            continue;
        }
        let mut policy = Header::new(Object::with_type(Type::String));
        policy.description = Some(format!(
            "When the caller's profile limits `{class}`: `\"{class}\";q=<burst>;w=<seconds>` (draft-ietf-httpapi-ratelimit-headers)"
        ));
        let mut state = Header::new(Object::with_type(Type::String));
        state.description = Some(format!("`\"{class}\";r=<remaining>;t=<seconds until the budget is full>`"));
        response.headers.insert("RateLimit-Policy".to_owned(), RefOr::T(policy));
        response.headers.insert("RateLimit".to_owned(), RefOr::T(state));
    }
}

/// `X-Request-Id` on every response; `Retry-After` on 429 and 503 problems.
fn add_headers(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        let mut request_id = Header::default();
        request_id.description = Some("The request's id (the caller's `X-Request-Id`, if it sent one)".to_owned());
        response.headers.insert("X-Request-Id".to_owned(), RefOr::T(request_id));
        // Only the problem responses carry it (`/readyz`'s own 503 does not).
        if (status == "429" || status == "503") && response.content.contains_key("application/problem+json") {
            let mut retry_after = Header::new(Object::with_type(Type::Integer));
            retry_after.description = Some("Seconds to wait before retrying".to_owned());
            response.headers.insert("Retry-After".to_owned(), RefOr::T(retry_after));
        }
    }
}

fn is_empty_requirement(req: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(req).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
            .build(),
    )
}
