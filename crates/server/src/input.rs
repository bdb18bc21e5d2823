//! What no text the API takes may hold, checked once for all of them: a NUL (U+0000, which
//! PostgreSQL's `text` refuses) in a JSON body's strings, in a WebSocket frame or in the
//! URL, and a JSON body that is not an object (`["text"]` where `{"content": …}` is meant).
//! The middleware buffers `/api` JSON bodies within the body limit and hands them on
//! unchanged; `/v1` and WebSocket frames call [`check_json`] themselves (they answer in
//! their own shapes).

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;
use skein_domain::DomainError;
use skein_shared::ErrorCode;

use crate::error::ApiError;

/// A body that no request of the API may carry.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a JSON object at its top level.
    NotAnObject,
    /// A NUL in the string at this field path (`content`, `settings.persona`, `tags[2]`, or
    /// a key's path when the key itself holds it).
    Nul(String),
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::NotAnObject => ApiError::new(ErrorCode::MalformedJson, "The body must be a JSON object")
                .with_detail("every request body is an object of named fields; an array or a bare value is not one"),
            Refused::Nul(field) if field.is_empty() => {
                ApiError::new(ErrorCode::MalformedJson, "The body could not be read")
                    .with_detail("it holds a NUL (\\u0000) where it could not be checked")
            }
            Refused::Nul(field) => DomainError::field(&field, "invalid", "must not contain NUL (U+0000)").into(),
        }
    }
}

/// Checks a JSON text: an object, with no NUL in any string. A text that is not JSON passes
/// (its reader reports that). Cheap when there is no `\u0000` escape at all: nothing is parsed.
pub fn check_json(body: &[u8]) -> Result<(), Refused> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<Value>(body).is_ok() {
        return Err(Refused::NotAnObject);
    }
    // JSON strings can hold a NUL only as this escape (raw control bytes are invalid).
    let escaped = body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"));
    if !escaped {
        return Ok(());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => nul_path(&value, String::new()).map_or(Ok(()), |path| Err(Refused::Nul(path))),
        // A typed reader could skip what this one cannot read (a number out of range, deep
        // nesting) and still store the NUL: a body with one that cannot be checked is refused.
        Err(_) => Err(Refused::Nul(String::new())),
    }
}

/// The path of the first string (or key) holding a NUL.
fn nul_path(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) => s.contains('\0').then_some(path),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| nul_path(v, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            let field = if path.is_empty() { k.replace('\0', "") } else { format!("{path}.{}", k.replace('\0', "")) };
            if k.contains('\0') { Some(field) } else { nul_path(v, field) }
        }),
        _ => None,
    }
}

/// Middleware for `/api`: a NUL in the URL is 400 `bad_request`; a JSON body is checked
/// by [`check_json`]. Bodies over `limit` (or not JSON) go on untouched, to the extractor's
/// own 413 / 415.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let api = req.path().starts_with("/api/");
    let uri = req.uri().to_string();
    if api && uri.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00")) {
        let refused = ApiError::new(ErrorCode::BadRequest, "The URL must not contain NUL (%00)");
        return Ok(req.error_response(refused).map_into_right_body());
    }
    let json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    let limit = body_limit(&req);
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if api && json && declared.is_none_or(|n| n <= limit) {
        let mut payload = req.take_payload();
        let mut body = BytesMut::new();
        while let Some(chunk) = payload.next().await {
            body.extend_from_slice(&chunk?);
            if body.len() > limit {
                let too_large = ApiError::new(ErrorCode::PayloadTooLarge, "The body is larger than allowed");
                return Ok(req.error_response(too_large).map_into_right_body());
            }
        }
        let body: Bytes = body.freeze();
        if let Err(refused) = check_json(&body) {
            return Ok(req.error_response(ApiError::from(refused)).map_into_right_body());
        }
        req.set_payload(Payload::from(body));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn body_limit(req: &ServiceRequest) -> usize {
    req.app_data::<crate::AppState>().map_or(256 * 1024, |state| state.body_limit_bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn objects_without_nul_pass_and_others_are_named() {
        assert_eq!(check_json(br#"{"content":"hi","tags":["a"]}"#), Ok(()));
        assert_eq!(check_json(br#"  ["text"]"#), Err(Refused::NotAnObject));
        assert_eq!(check_json(b"\"text\""), Err(Refused::NotAnObject));
        assert_eq!(check_json(br#"{"content":"a\u0000b"}"#), Err(Refused::Nul("content".into())));
        assert_eq!(check_json(br#"{"settings":{"persona":"\u0000"}}"#), Err(Refused::Nul("settings.persona".into())));
        assert_eq!(check_json(br#"{"tags":["ok","x\u0000"]}"#), Err(Refused::Nul("tags[1]".into())));
        assert_eq!(check_json(br#"{"a\u0000":1}"#), Err(Refused::Nul("a".into())));
        // An escaped backslash before `u0000` is six ordinary characters.
        assert_eq!(check_json(br#"{"content":"\\u0000"}"#), Ok(()));
        // Not JSON: its reader says so.
        assert_eq!(check_json(b"[not json"), Ok(()));
        // A NUL next to what cannot be parsed as a value is refused whole.
        assert_eq!(check_json(br#"{"content":"a\u0000b","x":1e400}"#), Err(Refused::Nul(String::new())));
    }
}
