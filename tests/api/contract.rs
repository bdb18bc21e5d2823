//! The OpenAPI contract as generators read it: every operation has a unique `verb_resource`
//! operationId, and every `{param}` of a path is declared, ids typed with their Id schema.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use skein_shared::ErrorCode;

pub(crate) fn document() -> Value {
    serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap()
}

/// `(method, path, operation)` for every operation of the document.
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                found.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

#[test]
fn operation_ids_are_unique_and_name_a_verb_and_a_resource() {
    let doc = document();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        let words: Vec<&str> = id.split('_').collect();
        assert!(
            words.len() >= 2 && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())),
            "{method} {path}: operationId {id:?} is not verb_resource"
        );
        if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
            panic!("operationId {id:?} is used by both {other} and {method} {path}");
        }
    }
}

#[test]
fn every_path_parameter_is_declared_and_ids_are_typed() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        let declared: BTreeMap<&str, &Value> = operation["parameters"]
            .as_array()
            .map(|params| {
                params.iter().filter(|p| p["in"] == "path").map(|p| (p["name"].as_str().unwrap(), p)).collect()
            })
            .unwrap_or_default();
        let in_path: Vec<&str> =
            path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect();
        let mut expected = in_path.clone();
        expected.sort_unstable();
        assert_eq!(declared.keys().copied().collect::<Vec<_>>(), expected, "{method} {path}: path parameters");
        for name in in_path {
            let param = declared[name];
            assert_eq!(param["required"], true, "{method} {path}: {name}");
            if name == "id" || name.ends_with("_id") {
                let reference = param["schema"]["$ref"].as_str().unwrap_or_default();
                assert!(reference.ends_with("Id"), "{method} {path}: {name} is not typed with its Id schema");
                let schema = &doc["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")];
                assert!(schema["pattern"].is_string(), "{reference} has no ULID pattern");
            }
        }
    }
}

#[test]
fn cookie_writes_need_the_csrf_header_and_body_errors_need_a_body() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().unwrap();
        let has_body = operation.get("requestBody").is_some();
        assert_eq!(responses.contains_key("413"), has_body, "{method} {path}: 413 without a body");
        // `/v1` reads any body as JSON, as OpenAI does: it never answers 415.
        if !path.starts_with("/v1/") {
            assert_eq!(responses.contains_key("415"), has_body, "{method} {path}: 415 without a body");
        }
        let Some(alternatives) = operation["security"].as_array() else { continue };
        if alternatives.iter().all(|a| a.as_object().is_some_and(|o| o.is_empty())) {
            continue; // public
        }
        let cookie = alternatives.iter().find(|a| a.get("session_cookie").is_some()).unwrap();
        assert_eq!(cookie.get("csrf_token").is_some(), method != "GET", "{method} {path}: cookie auth and CSRF");
        for (status, response) in responses {
            assert!(response["headers"].get("X-Request-Id").is_some(), "{method} {path} {status}: X-Request-Id");
        }
    }
}

/// Codes that travel only inside event streams (an `error` event's `code`), never as an HTTP
/// problem; the `StreamError` schema documents them.
const STREAM_ONLY_CODES: [ErrorCode; 1] = [ErrorCode::GenerationFailed];

/// Codes of requests that match no operation: the document's description names them.
const ROUTING_CODES: [ErrorCode; 2] = [ErrorCode::RouteNotFound, ErrorCode::MethodNotAllowed];

/// Every `ErrorCode` is in the document's enum (so generated clients know it), and every code
/// the server sends as a problem is named, in backquotes, by a response of its status on
/// at least one operation (so an integrator reading an operation learns what it can send).
#[test]
fn every_error_code_is_documented_where_it_is_sent() {
    let doc = document();
    let listed: BTreeSet<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ours: BTreeSet<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(listed, ours, "ErrorCode::ALL and the document's ErrorCode enum differ");

    let mut undocumented = Vec::new();
    for code in ErrorCode::ALL.into_iter().filter(|code| !STREAM_ONLY_CODES.contains(code)) {
        let quoted = format!("`{}`", code.as_str());
        let named = if ROUTING_CODES.contains(&code) {
            doc["info"]["description"].as_str().unwrap().contains(&quoted)
        } else {
            operations(&doc).iter().any(|(_, _, operation)| {
                operation["responses"][code.status().to_string()]["description"]
                    .as_str()
                    .is_some_and(|description| description.contains(&quoted))
            })
        };
        if !named {
            undocumented.push(format!("{} ({})", code.as_str(), code.status()));
        }
    }
    assert!(undocumented.is_empty(), "no operation documents: {undocumented:?}");
    let stream_error = doc["components"]["schemas"]["StreamError"].to_string();
    for code in STREAM_ONLY_CODES {
        assert!(stream_error.contains(&format!("`{}`", code.as_str())), "StreamError does not name {code:?}");
    }
}

/// Every `text/event-stream` response says how it is framed: event names, ids to resume
/// with, keep-alives.
#[test]
fn event_streams_document_their_framing() {
    let doc = document();
    let mut streams = 0;
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            if response["content"]["text/event-stream"].is_null() {
                continue;
            }
            streams += 1;
            let description = response["description"].as_str().unwrap();
            for needle in ["`event: <type>`", "`id: <id>`", "`Last-Event-ID`", "keep-alive"] {
                assert!(description.contains(needle), "{method} {path} {status}: no {needle} in {description:?}");
            }
        }
    }
    assert_eq!(streams, 3, "stream_events, stream_conversation, stream_answer");
}
