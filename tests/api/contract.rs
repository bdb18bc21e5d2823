//! The OpenAPI contract as generators read it: every operation has a unique `verb_resource`
//! operationId, and every `{param}` of a path is declared, ids typed with their Id schema.

use std::collections::BTreeMap;

use serde_json::Value;

fn document() -> Value {
    serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap()
}

/// `(method, path, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
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
        for status in ["413", "415"] {
            assert_eq!(responses.contains_key(status), has_body, "{method} {path}: {status} without a body");
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
