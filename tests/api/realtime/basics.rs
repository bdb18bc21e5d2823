use serde_json::json;
use skein_shared::event::Event;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

#[tokio::test]
async fn posts_arrive_as_typed_events_and_resume_after_last_event_id() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.register("Alice").await, app.register("Bob").await);
    let ws = app.workspace(&alice, &[&bob]).await;
    let conv = app.channel(&alice, &ws, &[&bob]).await;
    let mut stream = SseClient::open(&app, &bob, "/api/stream", None).await;
    let root = app.root(&alice, &conv, "hello").await;
    let reply = app.reply(&bob, &root, "hi").await;

    let events = stream.take(3).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["thread.new", "message.created", "thread.activity"]);
    assert_eq!(events[0].name, "thread.new", "the SSE event name is the type");
    assert_eq!(events[0].data["data"]["root"]["id"], root.as_str());
    assert_eq!(events[1].data["message_id"], reply.as_str());
    assert_eq!(events[1].data["root_id"], root.as_str());
    assert_eq!(events[2].data["data"]["reply_count"], 1);
    for e in &events {
        assert_eq!(e.id.as_deref(), e.data["cursor"].as_str(), "id: is the cursor");
        assert_eq!(e.data["conversation_id"], conv.as_str());
        // Every event parses as the shared crate's type.
        serde_json::from_value::<Event>(e.data.clone()).expect("a skein_shared Event");
    }
    assert!(stream.retry.is_some(), "retry: is announced");

    // Missed while away: resume after the first event.
    drop(stream);
    app.reply(&alice, &root, "you there?").await;
    let mut resumed = SseClient::open(&app, &bob, "/api/stream", events[0].id.as_deref()).await;
    let again = resumed.take(4).await;
    assert_eq!(again[..2], events[1..]);
    assert_eq!(again[2].kind(), "message.created");
    assert_eq!(again[2].data["data"]["content"], "you there?");
    assert_eq!(again[3].kind(), "thread.activity");

    // The same through ?after= on the conversation's own stream.
    let path = format!("/api/conversations/{conv}/stream?after={}", events[0].id.as_deref().unwrap_or_default());
    let mut one = SseClient::open(&app, &bob, &path, None).await;
    assert_eq!(one.take(4).await, again);
    let _ = json!({});
}
