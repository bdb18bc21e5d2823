//! The WebSocket carries the same envelopes as SSE and takes typing, presence and acks.

use serde_json::json;
use skein_tests::TestApp;
use skein_tests::sse::{SseClient, WsClient};

use super::room;

#[tokio::test]
async fn the_same_scenario_over_websocket_and_sse_yields_the_same_events() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut sse = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let mut ws = WsClient::open(&app, &r.bob, "", None).await.expect("websocket");
    let root = app.root(&r.alice, &r.conv, "hello").await;
    app.reply(&r.alice, &root, "reply").await;
    app.patch(&format!("/api/conversations/{}", r.conv), &r.alice, json!({ "title": "t" })).await.expect(200);
    app.post(&format!("/api/conversations/{}/read", r.conv), &r.bob, json!({ "message_id": root })).await.expect(200);
    let from_sse: Vec<_> = sse.take(5).await.into_iter().map(|e| e.data).collect();
    let mut from_ws = Vec::new();
    for _ in 0..5 {
        from_ws.push(ws.next().await);
    }
    assert_eq!(from_ws, from_sse);

    // Resuming a WebSocket with ?after= replays like Last-Event-ID.
    let after = from_sse[1]["cursor"].as_str().unwrap();
    let mut resumed = WsClient::open(&app, &r.bob, &format!("after={after}"), None).await.expect("websocket");
    for expected in &from_sse[2..] {
        assert_eq!(&resumed.next().await, expected);
    }
}

#[tokio::test]
async fn websocket_frames_drive_typing_and_presence_and_bad_frames_leave_the_socket_open() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut alice = SseClient::open(&app, &r.alice, "/api/stream", None).await;
    let mut ws = WsClient::open(&app, &r.bob, &format!("conversation_id={}", r.conv), None).await.expect("websocket");
    ws.send(json!({ "type": "typing", "conversation_id": r.conv, "root_id": null, "typing": true })).await;
    let typing = alice.next().await;
    assert_eq!((typing.kind(), typing.data["data"]["user_id"].as_str()), ("typing.update", Some(r.bob.id.as_str())));
    ws.send(json!({ "type": "presence" })).await;
    let presence = alice.next().await;
    assert_eq!((presence.kind(), presence.data["data"]["state"].as_str()), ("presence.update", Some("online")));
    let root = app.root(&r.alice, &r.conv, "ack me").await;
    let event = ws.next().await;
    assert_eq!(event["message_id"], root.as_str());
    ws.send(json!({ "type": "ack", "cursor": event["cursor"] })).await;

    ws.send(json!({ "type": "shout" })).await;
    let refused = ws.next().await;
    assert_eq!(refused["type"], "ack");
    assert_eq!(
        (refused["data"]["status"].as_u64(), refused["data"]["problem"]["code"].as_str()),
        (Some(400), Some("malformed_json"))
    );
    ws.send(json!({ "type": "ack", "cursor": "not a cursor" })).await;
    assert_eq!(ws.next().await["data"]["problem"]["code"], "bad_request");
    // Still open and working.
    let second = app.root(&r.alice, &r.conv, "still there?").await;
    assert_eq!(ws.next().await["message_id"], second.as_str());
}

#[tokio::test]
async fn websocket_origins_are_checked() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    assert_eq!(WsClient::open(&app, &r.bob, "", Some("https://evil.example")).await.err(), Some(403));
    let own = app.base.clone();
    assert!(WsClient::open(&app, &r.bob, "", Some(&own)).await.is_ok());
    // The same host under another scheme is another origin.
    let other_scheme = own.replace("http://", "https://");
    assert_eq!(WsClient::open(&app, &r.bob, "", Some(&other_scheme)).await.err(), Some(403));
    let trusted = TestApp::spawn_with(|c| c.realtime.allowed_origins = vec!["https://app.example".into()]).await;
    let bob = trusted.register("Bob").await;
    assert!(WsClient::open(&trusted, &bob, "", Some("https://app.example")).await.is_ok());
}

#[tokio::test]
async fn a_typing_frame_for_a_conversation_the_caller_cannot_see_is_refused_as_not_found() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let stranger = app.register("Mallory").await;
    let mut ws = WsClient::open(&app, &stranger, "", None).await.expect("websocket");
    ws.send(json!({ "type": "typing", "conversation_id": r.conv, "root_id": null, "typing": true })).await;
    let refused = ws.next().await;
    assert_eq!(
        (refused["type"].as_str(), refused["data"]["problem"]["code"].as_str()),
        (Some("ack"), Some("not_found"))
    );
    assert_eq!(refused["data"]["status"], 404);
}
