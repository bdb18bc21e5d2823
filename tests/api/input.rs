//! Input no route may take: NUL in any text, bodies that are not objects, NUL in URLs, and
//! methods a route does not take.

use reqwest::Method;
use serde_json::{Value, json};
use skein_tests::TestApp;
use skein_tests::sse::WsClient;

use crate::contract::{document, operations};

/// Every operation with a JSON body refuses a NUL in it, naming the field, before any
/// handler runs: one check covers every text the API takes.
#[tokio::test]
async fn every_body_refuses_nul_naming_the_field() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let id = ulid::Ulid::generate().to_string();
    let mut checked = 0;
    for (method, path, operation) in operations(&document()) {
        if operation["requestBody"]["content"]["application/json"].is_null() || !path.starts_with("/api/") {
            continue;
        }
        let concrete: String = path
            .split('/')
            .map(|segment| if segment.starts_with('{') { id.as_str() } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        let body = json!({ "settings": { "persona": "be\u{0}nice" } });
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let res = app.request(method.clone(), &concrete, Some(&ann.token), Some(body)).await;
        let res = res.expect_problem(422, "validation_failed");
        assert_eq!(res.body["errors"][0]["field"], "settings.persona", "{method} {path}");
        checked += 1;
    }
    assert!(checked > 20, "only {checked} operations take a body");
}

#[tokio::test]
async fn nul_anywhere_is_a_field_error_not_a_500() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let channel = app.open_channel(&ann, &ws, "general").await;
    let root = format!("/api/threads/{channel}/root");
    for (body, field) in [
        (json!({ "content": "a\u{0}b" }), "content"),
        (json!({ "content": "ok", "title": "t\u{0}" }), "title"),
        (json!({ "content": "ok", "tags": ["fine", "x\u{0}"] }), "tags[1]"),
        (json!({ "content": "ok", "client_msg_id": "\u{0}" }), "client_msg_id"),
    ] {
        let res = app.post(&root, &ann, body).await.expect_problem(422, "validation_failed");
        assert_eq!(res.body["errors"][0]["field"], field);
    }
    let renamed = app.patch(&format!("/api/conversations/{channel}"), &ann, json!({ "title": "x\u{0}" })).await;
    renamed.expect_problem(422, "validation_failed");
    // No account needed to reach these.
    let login = app.anon_post("/api/auth/login", json!({ "email": "a\u{0}@x.com", "password": "x" })).await;
    assert_eq!(login.expect_problem(422, "validation_failed").body["errors"][0]["field"], "email");
    let register = json!({ "email": "b@x.com", "password": "correct horse battery", "display_name": "\u{0}" });
    app.anon_post("/api/auth/register", register).await.expect_problem(422, "validation_failed");
    // In the URL: a path segment or a query.
    app.post("/api/invites/abc%00def/accept", &ann, json!({})).await.expect_problem(400, "bad_request");
    app.search(&ann, &[("q", "hello\u{0}")]).await.expect_problem(400, "bad_request");
    // Nothing was stored.
    let threads = app.get(&format!("/api/conversations/{channel}/threads"), &ann).await.expect(200);
    assert_eq!(threads.body["data"], json!([]));
}

#[tokio::test]
async fn nul_in_a_websocket_frame_or_a_chat_completion_is_refused_too() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let channel = app.open_channel(&ann, &ws, "general").await;
    let mut socket = WsClient::open(&app, &ann, "", None).await.unwrap();
    socket.send(json!({ "type": "send", "root": true, "conversation_id": channel, "content": "a\u{0}" })).await;
    let ack = loop {
        let event = socket.next().await;
        if event["type"] == "ack" {
            break event;
        }
    };
    assert_eq!(
        (ack["data"]["status"].as_u64(), ack["data"]["problem"]["errors"][0]["field"].as_str()),
        (Some(422), Some("content"))
    );
    let completion = json!({ "model": "x", "messages": [{ "role": "user", "content": "a\u{0}" }] });
    let res = app.request(Method::POST, "/v1/chat/completions", Some(&ann.token), Some(completion)).await;
    assert!(matches!(res.status, 400 | 422), "{res:?}");
    assert!(res.body["error"]["message"].as_str().unwrap().contains("messages[0].content"), "{}", res.body);
}

#[tokio::test]
async fn bodies_must_be_objects() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let channel = app.open_channel(&ann, &ws, "general").await;
    for (method, path) in [
        (Method::POST, format!("/api/threads/{channel}/root")),
        (Method::PATCH, format!("/api/conversations/{channel}")),
    ] {
        for body in [json!(["text"]), json!("text"), json!(5)] {
            let res = app.request(method.clone(), &path, Some(&ann.token), Some(body)).await;
            res.expect_problem(400, "malformed_json");
        }
    }
    let threads = app.get(&format!("/api/conversations/{channel}/threads"), &ann).await.expect(200);
    assert_eq!(threads.body["data"], json!([]));
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let id = ulid::Ulid::generate();
    let res = app.put(&format!("/api/messages/{id}"), &ann, json!({})).await.expect_problem(405, "method_not_allowed");
    assert_eq!(res.headers["allow"], "GET, PATCH, DELETE");
    let res =
        app.request(Method::DELETE, "/api/auth/login", None, None).await.expect_problem(405, "method_not_allowed");
    assert_eq!(res.headers["allow"], "POST");
    app.get("/api/nope", &ann).await.expect_problem(404, "route_not_found");
    let _: Value = res.body;
}

/// A list cursor dated where nothing can be stored is refused, not a 500.
#[tokio::test]
async fn cursors_far_in_the_past_are_refused() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let channel = app.open_channel(&ann, &ws, "general").await;
    let id = ulid::Ulid::generate();
    let far = format!("-300000000000000000000.{id}");
    for path in
        [format!("/api/conversations?cursor={far}"), format!("/api/conversations/{channel}/threads?cursor={far}")]
    {
        app.get(&path, &ann).await.expect_problem(422, "validation_failed");
    }
}
