//! The one error type of the domain. Every variant maps to exactly one stable API code.

use skein_shared::{ErrorCode, FieldError};

pub type DomainResult<T> = Result<T, DomainError>;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Absent, or hidden from the caller (never reveal existence with a 403).
    #[error("not found")]
    NotFound,
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("authentication required")]
    Unauthenticated,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// A rule of the domain refused the action (conflicts, archived, last owner, …).
    #[error("{message}")]
    Rule { code: ErrorCode, message: &'static str },
    /// Too many attempts; the caller may retry after this many seconds.
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A daily quota is used up until `resets_at`.
    #[error("the daily {kind} quota is used up")]
    QuotaExceeded { kind: &'static str, resets_at: time::OffsetDateTime, retry_after_secs: u64 },
    /// A generation for the same parent message is still running: this one.
    #[error("an answer to this message is still being generated")]
    GenerationRunning(skein_shared::MessageId),
    /// This instance is at capacity; the caller may retry after this many seconds.
    #[error("busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// The store could not be reached or timed out.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn rule(code: ErrorCode, message: &'static str) -> Self {
        Self::Rule { code, message }
    }

    pub fn field(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound => ErrorCode::NotFound,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::InvalidCredentials => ErrorCode::InvalidCredentials,
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::Rule { code, .. } => *code,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Self::GenerationRunning(_) => ErrorCode::GenerationRunning,
            Self::Busy { .. } | Self::Unavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn archived() -> Self {
        Self::rule(ErrorCode::ConversationArchived, "the conversation is archived and read-only")
    }

    pub fn last_owner() -> Self {
        Self::rule(ErrorCode::LastOwner, "the last owner cannot be removed or demoted")
    }
}
