//! The OpenAPI 3.1 document: generated from the handlers' annotations, with the security
//! schemes and the problem responses every operation can give added here once.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Skein API", description = "Threaded conversations for people and AI assistants. Errors are RFC 9457 problem documents with a stable `code`."),
    components(schemas(
        skein_shared::Problem,
        skein_shared::ErrorCode,
        skein_shared::FieldError,
        skein_shared::event::ClientFrame
    )),
    security(("bearer" = []), ("session_cookie" = [])),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "workspaces", description = "Workspaces and their members"),
        (name = "assistants", description = "AI assistants of a workspace (OpenAI-compatible providers from the configuration)"),
        (name = "conversations", description = "Conversations, members and invites"),
        (name = "threads", description = "Threads (trees of messages) and history"),
        (name = "messages", description = "Changing posted messages: edits and their history, deletes, reactions, pins"),
        (name = "answers", description = "Assistant answers: generate, cancel, follow one generation, chunks, feedback"),
        (name = "streams", description = "Realtime events over SSE and WebSocket, with exact resumption by cursor"),
        (name = "read state", description = "Read cursors and unread counts"),
        (name = "presence", description = "Typing indicators and presence (live only)"),
        (name = "search", description = "Full-text search over messages, within what the caller may read"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

/// Applied to the finished document (after utoipa-actix-web has added the paths).
pub struct Conventions;

/// Responses any operation may give, besides those its handler documents.
const COMMON_ERRORS: &[(&str, &str)] = &[
    ("400", "`malformed_json` or `bad_request`: the body or query could not be read"),
    ("404", "`not_found`: no such resource, or the caller may not see it"),
    ("413", "`payload_too_large`"),
    ("415", "`unsupported_media_type`: the body must be application/json"),
    ("422", "`validation_failed`: see `errors` for the fields"),
    ("500", "`internal`"),
    ("503", "`service_unavailable`: retry after `Retry-After` seconds"),
];

impl Modify for Conventions {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Set by login; writes also need the `X-CSRF-Token` header (the `skein_csrf` cookie's value)",
            ))),
        );

        for item in doc.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
            {
                add_common_errors(op);
            }
        }
    }
}

fn add_common_errors(op: &mut Operation) {
    let secured = op.security.as_ref().is_none_or(|reqs| !reqs.iter().all(is_empty_requirement));
    let mut codes: Vec<(&str, &str)> = COMMON_ERRORS.to_vec();
    if secured {
        codes.push(("401", "`unauthenticated`: no valid session token"));
        codes.push(("403", "`forbidden` or `csrf_failed`"));
    }
    for (status, description) in codes {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| problem_response(description));
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
