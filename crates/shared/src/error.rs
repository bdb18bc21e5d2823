//! RFC 9457 problem details and the closed set of machine-readable error codes.

use serde::{Deserialize, Serialize};

/// Stable machine codes. Clients switch on these; the wording of `title`/`detail` may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ErrorCode {
    /// The request body is not valid JSON or does not have the expected shape.
    MalformedJson,
    /// A query string or path parameter could not be read.
    BadRequest,
    /// The body is not `application/json`.
    UnsupportedMediaType,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// One or more fields are invalid; see `errors`.
    ValidationFailed,
    /// No valid session token was presented.
    Unauthenticated,
    /// Wrong email or password.
    InvalidCredentials,
    /// A cookie-authenticated write without a matching `X-CSRF-Token` header.
    CsrfFailed,
    /// The caller may see this resource but not perform this action.
    Forbidden,
    /// An API key without the scope this request needs (`detail` names it).
    InsufficientScope,
    /// The resource does not exist, or the caller may not know that it does.
    NotFound,
    /// No such route or method.
    RouteNotFound,
    MethodNotAllowed,
    /// An account with this email already exists.
    EmailTaken,
    /// Open registration is switched off on this instance.
    RegistrationClosed,
    /// The conversation is archived and read-only.
    ConversationArchived,
    /// The action would leave a workspace or conversation without an owner.
    LastOwner,
    /// Direct conversations have exactly two fixed members.
    DirectConversationFixed,
    /// Only a group can be converted into a channel.
    NotConvertible,
    /// The invite has expired or has no uses left.
    InviteExpired,
    /// An assistant answer to this message is already being generated (`detail` names it).
    GenerationRunning,
    /// No assistant is set for this thread or conversation, and none was given.
    NoAssistant,
    /// Only assistant messages can be generated, cancelled, streamed or rated this way.
    NotAnAssistantMessage,
    /// The message was deleted: a tombstone cannot be edited, reacted to or pinned.
    MessageDeleted,
    /// The configured time for editing a message after posting it has passed.
    EditWindowClosed,
    /// The message already carries the most distinct emoji allowed.
    ReactionLimit,
    /// An assistant answer failed (on `error` events; `reason` says why).
    GenerationFailed,
    /// Too many attempts; retry after `Retry-After` seconds.
    RateLimited,
    /// A daily quota is used up (`resets_at` says when it starts again).
    QuotaExceeded,
    /// The database is unreachable or overloaded; retry later.
    ServiceUnavailable,
    /// An unexpected server error.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 31] = {
        use ErrorCode::*;
        [
            MalformedJson,
            BadRequest,
            UnsupportedMediaType,
            PayloadTooLarge,
            ValidationFailed,
            Unauthenticated,
            InvalidCredentials,
            CsrfFailed,
            Forbidden,
            InsufficientScope,
            NotFound,
            RouteNotFound,
            MethodNotAllowed,
            EmailTaken,
            RegistrationClosed,
            ConversationArchived,
            LastOwner,
            DirectConversationFixed,
            NotConvertible,
            InviteExpired,
            GenerationRunning,
            NoAssistant,
            NotAnAssistantMessage,
            MessageDeleted,
            EditWindowClosed,
            ReactionLimit,
            GenerationFailed,
            RateLimited,
            QuotaExceeded,
            ServiceUnavailable,
            Internal,
        ]
    };

    /// The HTTP status this code is always sent with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MalformedJson | BadRequest => 400,
            Unauthenticated | InvalidCredentials => 401,
            CsrfFailed | Forbidden | InsufficientScope | RegistrationClosed => 403,
            NotFound | RouteNotFound => 404,
            MethodNotAllowed => 405,
            EmailTaken
            | ConversationArchived
            | LastOwner
            | DirectConversationFixed
            | NotConvertible
            | GenerationRunning
            | NoAssistant
            | NotAnAssistantMessage
            | MessageDeleted
            | EditWindowClosed
            | ReactionLimit => 409,
            InviteExpired => 410,
            PayloadTooLarge => 413,
            RateLimited | QuotaExceeded => 429,
            UnsupportedMediaType => 415,
            ValidationFailed => 422,
            Internal => 500,
            GenerationFailed => 502,
            ServiceUnavailable => 503,
        }
    }

    /// The snake_case name, as sent in `code`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MalformedJson => "malformed_json",
            BadRequest => "bad_request",
            UnsupportedMediaType => "unsupported_media_type",
            PayloadTooLarge => "payload_too_large",
            ValidationFailed => "validation_failed",
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            CsrfFailed => "csrf_failed",
            Forbidden => "forbidden",
            InsufficientScope => "insufficient_scope",
            NotFound => "not_found",
            RouteNotFound => "route_not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailTaken => "email_taken",
            RegistrationClosed => "registration_closed",
            ConversationArchived => "conversation_archived",
            LastOwner => "last_owner",
            DirectConversationFixed => "direct_conversation_fixed",
            NotConvertible => "not_convertible",
            InviteExpired => "invite_expired",
            GenerationRunning => "generation_running",
            NoAssistant => "no_assistant",
            NotAnAssistantMessage => "not_an_assistant_message",
            MessageDeleted => "message_deleted",
            EditWindowClosed => "edit_window_closed",
            ReactionLimit => "reaction_limit",
            GenerationFailed => "generation_failed",
            RateLimited => "rate_limited",
            QuotaExceeded => "quota_exceeded",
            ServiceUnavailable => "service_unavailable",
            Internal => "internal",
        }
    }
}

/// One invalid field in a 422 answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The JSON field name (`content`, `member_ids[2]`, …).
    pub field: String,
    /// A stable reason: `required`, `too_long`, `too_short`, `invalid`, `weak`, …
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.to_owned(), message: message.into() }
    }
}

/// An RFC 9457 problem document, sent as `application/problem+json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:skein:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub code: ErrorCode,
    /// Present for `validation_failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Present for `generation_running`: the assistant message still streaming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<crate::MessageId>,
    /// Present for `quota_exceeded`: when the quota starts again.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub resets_at: Option<time::OffsetDateTime>,
}

impl Problem {
    pub fn new(code: ErrorCode, title: impl Into<String>) -> Self {
        Self {
            type_: format!("urn:skein:problem:{}", code.as_str()),
            title: title.into(),
            status: code.status(),
            detail: None,
            code,
            errors: Vec::new(),
            message_id: None,
            resets_at: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// `ALL` is in declaration order with nothing skipped, and `as_str` is what serde sends.
    /// (The OpenAPI contract test checks that `ALL` covers every variant.)
    #[test]
    fn every_code_is_listed_in_order_and_named_as_serialised() {
        for (position, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code as usize, position);
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }
}
