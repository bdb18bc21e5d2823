//! The AsyncAPI 3.0 document of the WebSocket (`openapi/asyncapi.yaml`), built from the OpenAPI
//! document the server generates: the message schemas are its `Event` and `ClientFrame`
//! components (with everything they reference), the query parameters those of `GET /api/ws`,
//! so both documents describe the same Rust types and cannot drift apart.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

const WS_PATH: &str = "/api/ws";
const SCHEMA_REF: &str = "#/components/schemas/";

/// The AsyncAPI document, as YAML.
pub fn document(openapi: &Value) -> Result<String, String> {
    let schemas = &openapi["components"]["schemas"];
    let operation = &openapi["paths"][WS_PATH]["get"];
    if operation.is_null() {
        return Err(format!("the OpenAPI document has no GET {WS_PATH}"));
    }
    let mut query = Map::new();
    for parameter in operation["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "query") {
        let mut schema = parameter["schema"].clone();
        if let (Some(description), Some(object)) = (parameter["description"].as_str(), schema.as_object_mut()) {
            object.insert("description".into(), description.into());
        }
        wrap_ref_siblings(&mut schema);
        query.insert(parameter["name"].as_str().unwrap_or_default().to_owned(), schema);
    }
    let mut components = Map::new();
    for root in ["Event", "ClientFrame"] {
        collect(schemas, root, &mut BTreeSet::new(), &mut components)?;
    }
    let doc = json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Skein realtime (WebSocket)",
            "version": openapi["info"]["version"],
            "description": "The WebSocket at `/api/ws`: the server sends one `Event` per text frame (the \
                same envelope as the SSE streams of the HTTP API, described in `openapi.json`); the client \
                may send `ClientFrame`s (`typing`, `presence`, `ack`). Open it with a stream token \
                (`POST /api/stream/token`) as `?token=`, or from a page of this server with the session \
                cookie. To resume after a cut, reconnect with `?after=<the last cursor received>`: \
                nothing is missed or repeated; a `resync` event says the cursor is too old. The server \
                pings every keep-alive period and closes connections that answer nothing for three.",
            "license": { "name": openapi["info"]["license"]["name"] },
        },
        "defaultContentType": "application/json",
        "servers": {
            "skein": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "description": "A Skein server (use `wss` behind TLS).",
                "security": [
                    { "$ref": "#/components/securitySchemes/streamToken" },
                    { "$ref": "#/components/securitySchemes/sessionCookie" }
                ]
            }
        },
        "channels": {
            "events": {
                "address": WS_PATH,
                "title": "Events",
                "description": operation.get("description").or(operation.get("summary")),
                "messages": {
                    "event": { "$ref": "#/components/messages/event" },
                    "clientFrame": { "$ref": "#/components/messages/clientFrame" }
                },
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": { "type": "object", "properties": query },
                        "bindingVersion": "0.1.0"
                    }
                }
            }
        },
        "operations": {
            "sendEvents": {
                "action": "send",
                "channel": { "$ref": "#/channels/events" },
                "summary": "Every event the caller may see (or one conversation's), in log order.",
                "messages": [{ "$ref": "#/channels/events/messages/event" }]
            },
            "receiveClientFrames": {
                "action": "receive",
                "channel": { "$ref": "#/channels/events" },
                "summary": "Typing indicators, presence and acknowledgements from the client.",
                "messages": [{ "$ref": "#/channels/events/messages/clientFrame" }]
            }
        },
        "components": {
            "messages": {
                "event": {
                    "name": "Event",
                    "title": "Event",
                    "summary": "An event envelope: `type` and `data`, where it happened, its `cursor`.",
                    "payload": { "$ref": "#/components/schemas/Event" }
                },
                "clientFrame": {
                    "name": "ClientFrame",
                    "title": "Client frame",
                    "summary": "What a client may send; an unreadable frame gets an `error` event and the close.",
                    "payload": { "$ref": "#/components/schemas/ClientFrame" }
                }
            },
            "schemas": components,
            "securitySchemes": {
                "streamToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "A token from `POST /api/stream/token`: opens streams only, for a few minutes."
                },
                "sessionCookie": {
                    "type": "httpApiKey",
                    "name": "skein_session",
                    "in": "cookie",
                    "description": "The session cookie, from pages whose `Origin` is this server (or allowed)."
                }
            }
        }
    });
    let yaml = yaml_serde::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(format!("# Generated by `cargo xtask openapi` from openapi.json: do not edit.\n{yaml}"))
}

/// Copies schema `name` and every schema it references into `out`.
fn collect(
    schemas: &Value,
    name: &str,
    seen: &mut BTreeSet<String>,
    out: &mut Map<String, Value>,
) -> Result<(), String> {
    if !seen.insert(name.to_owned()) || out.contains_key(name) {
        return Ok(());
    }
    let mut schema = schemas.get(name).ok_or_else(|| format!("no schema {name} in the OpenAPI document"))?.clone();
    wrap_ref_siblings(&mut schema);
    let mut refs = Vec::new();
    references(&schema, &mut refs);
    out.insert(name.to_owned(), schema);
    for reference in refs {
        collect(schemas, &reference, seen, out)?;
    }
    Ok(())
}

/// AsyncAPI's schemas follow JSON Schema draft-07, which ignores keywords beside `$ref` (OpenAPI
/// 3.1's 2020-12 keeps them): `{$ref, description}` becomes `{allOf: [{$ref}], description}`.
fn wrap_ref_siblings(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if object.len() > 1
                && let Some(reference) = object.remove("$ref")
            {
                object.insert("allOf".into(), json!([{ "$ref": reference }]));
            }
            object.values_mut().for_each(wrap_ref_siblings);
        }
        Value::Array(items) => items.iter_mut().for_each(wrap_ref_siblings),
        _ => {}
    }
}

fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            if let Some(name) = object.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(SCHEMA_REF)) {
                out.push(name.to_owned());
            }
            object.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}
