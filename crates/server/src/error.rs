//! Every error leaves as RFC 9457 `application/problem+json` with a stable `code`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, error};
use skein_domain::DomainError;
use skein_shared::{ErrorCode, Problem};

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug)]
pub struct ApiError(pub Box<Problem>, Option<u64>);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0.code.as_str(), self.0.title)
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, title: impl Into<String>) -> Self {
        Self(Box::new(Problem::new(code, title)), None)
    }

    /// Seconds for the `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.1 = Some(secs);
        self
    }

    /// Seconds the caller should wait before retrying, when the error says.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.1
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let code = err.code();
        match err {
            DomainError::Validation(errors) => {
                let mut problem = Problem::new(code, "The request has invalid fields");
                problem.errors = errors;
                Self(Box::new(problem), None)
            }
            DomainError::NotFound => Self::new(code, "Not found"),
            DomainError::Internal(ref detail) => {
                // Details of internal failures go to the log, not to the client.
                tracing::error!(error = %detail, "internal error");
                Self::new(code, "Internal server error")
            }
            DomainError::Unavailable(ref detail) => {
                tracing::warn!(error = %detail, "database unavailable");
                Self::new(code, "The service is temporarily unavailable; retry shortly").retry_after(1)
            }
            DomainError::RateLimited { retry_after_secs } => {
                Self::new(code, "Too many attempts; retry later").retry_after(retry_after_secs)
            }
            DomainError::QuotaExceeded { kind, resets_at, retry_after_secs } => {
                let mut api = Self::new(code, "A daily quota is used up")
                    .with_detail(format!("the daily {kind} quota is used up; it starts again at resets_at"))
                    .retry_after(retry_after_secs);
                api.0.resets_at = Some(resets_at);
                api
            }
            DomainError::Busy { retry_after_secs } => {
                Self::new(code, "The server is at capacity; retry later").retry_after(retry_after_secs)
            }
            DomainError::GenerationRunning(running) => {
                let mut api = Self::new(code, "An answer to this message is still being generated");
                api.0.message_id = Some(running);
                api
            }
            other => Self::new(code, other.to_string()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("application/problem+json");
        if let Some(secs) = self.1 {
            response.insert_header(("Retry-After", secs.to_string()));
        }
        response.json(&self.0)
    }
}

/// Body errors: wrong content type (415), too large (413), unreadable JSON (400).
pub fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError as E;
    let api = match &err {
        E::ContentType => ApiError::new(ErrorCode::UnsupportedMediaType, "The body must be application/json"),
        E::Overflow { .. } | E::OverflowKnownLength { .. } => {
            ApiError::new(ErrorCode::PayloadTooLarge, "The body is larger than allowed").with_detail(err.to_string())
        }
        E::Deserialize(e) => {
            ApiError::new(ErrorCode::MalformedJson, "The body is not valid JSON of the expected shape")
                .with_detail(e.to_string())
        }
        _ => ApiError::new(ErrorCode::MalformedJson, "The body could not be read").with_detail(err.to_string()),
    };
    api.into()
}

/// A path segment that cannot be an id names nothing that exists.
pub fn path_error(_err: error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(ErrorCode::NotFound, "Not found").into()
}

pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::new(ErrorCode::BadRequest, "The query string is invalid").with_detail(err.to_string()).into()
}

/// For requests no route takes: 405 with `Allow` when the path is a route's and the method
/// is not one of its, else 404.
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    let decoded = actix_web::dev::Url::new(req.uri().clone());
    let pattern = req.resource_map().match_pattern(decoded.path());
    let allowed = pattern.zip(req.app_data::<crate::AppState>()).and_then(|(p, state)| state.methods.get(&p).cloned());
    match allowed {
        Some(methods) => {
            let api = ApiError::new(ErrorCode::MethodNotAllowed, "This route does not take this method")
                .with_detail(format!("it takes {methods}"));
            let mut response = api.error_response();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&methods) {
                response.headers_mut().insert(actix_web::http::header::ALLOW, value);
            }
            response
        }
        None => ApiError::new(ErrorCode::RouteNotFound, "No such route").error_response(),
    }
}
