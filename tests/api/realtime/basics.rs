use serde_json::json;
use skein_shared::event::Event;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[tokio::test]
async fn posts_arrive_as_typed_events_and_resume_after_last_event_id() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let root = app.root(&r.alice, &r.conv, "hello").await;
    let reply = app.reply(&r.bob, &root, "hi").await;

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
        assert_eq!(e.data["conversation_id"], r.conv.as_str());
        // Every event parses as the shared crate's type.
        serde_json::from_value::<Event>(e.data.clone()).expect("a skein_shared Event");
    }
    assert!(stream.retry.is_some(), "retry: is announced");

    // Missed while away: resume after the first event.
    drop(stream);
    app.reply(&r.alice, &root, "you there?").await;
    let mut resumed = SseClient::open(&app, &r.bob, "/api/stream", events[0].id.as_deref()).await;
    let again = resumed.take(4).await;
    assert_eq!(again[..2], events[1..]);
    assert_eq!(again[2].kind(), "message.created");
    assert_eq!(again[2].data["data"]["content"], "you there?");
    assert_eq!(again[3].kind(), "thread.activity");

    // The same through ?after= on the conversation's own stream.
    let path = format!("/api/conversations/{}/stream?after={}", r.conv, events[0].id.as_deref().unwrap_or_default());
    let mut one = SseClient::open(&app, &r.bob, &path, None).await;
    assert_eq!(one.take(4).await, again);
}

#[tokio::test]
async fn settings_and_membership_changes_are_events() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let carol = app.register("Carol").await;
    app.post(&format!("/api/workspaces/{}/members", r.ws), &r.alice, json!({ "user_id": carol.id })).await.expect(201);
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    app.patch(&format!("/api/conversations/{}", r.conv), &r.alice, json!({ "title": "renamed" })).await.expect(200);
    app.post(&format!("/api/conversations/{}/members", r.conv), &r.alice, json!({ "user_id": carol.id }))
        .await
        .expect(201);
    let events = stream.take(2).await;
    assert_eq!(events[0].kind(), "conversation.updated");
    assert_eq!(events[0].data["data"]["title"], "renamed");
    assert_eq!(events[1].kind(), "membership.changed");
    assert_eq!(events[1].data["data"], json!({ "user_id": carol.id, "change": "added", "role": "member" }));
}

#[tokio::test]
async fn streams_need_a_session_or_a_stream_token_and_hide_other_conversations() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let (status, body) = SseClient::try_open(&app, None, "/api/stream", None).await.err().expect("refused");
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));

    // A stream token opens streams from the query string (EventSource cannot send headers)...
    let token = app.post("/api/stream/token", &r.bob, json!({})).await.expect(200).str("token");
    let mut stream = SseClient::try_open(&app, None, &format!("/api/stream?token={token}"), None).await.expect("token");
    app.root(&r.alice, &r.conv, "via token").await;
    assert_eq!(stream.next().await.kind(), "thread.new");
    // ...and nothing else.
    let res = app.request(reqwest::Method::GET, &format!("/api/workspaces?token={token}"), None, None).await;
    res.expect_problem(401, "unauthenticated");
    let bad = SseClient::try_open(&app, None, "/api/stream?token=nope", None).await.err().expect("refused");
    assert_eq!(bad.0, 401);

    // A conversation the caller may not see does not exist for them.
    let stranger = app.register("Mallory").await;
    let path = format!("/api/conversations/{}/stream", r.conv);
    let (status, body) = SseClient::try_open(&app, Some(&stranger.token), &path, None).await.err().expect("refused");
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn a_restart_loses_nothing() {
    let mut app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let root = app.root(&r.alice, &r.conv, "before").await;
    let first = stream.next().await;
    app.reply(&r.alice, &root, "also before").await;

    app.restart().await;
    // The old connection ends with the old server.
    while let Ok(Some(_)) = stream.next_within(std::time::Duration::from_secs(5)).await {}
    app.reply(&r.alice, &root, "after").await;
    let mut resumed = SseClient::open(&app, &r.bob, "/api/stream", first.id.as_deref()).await;
    let events = resumed.take(4).await;
    let contents: Vec<&str> = events
        .iter()
        .filter(|e| e.kind() == "message.created")
        .filter_map(|e| e.data["data"]["content"].as_str())
        .collect();
    assert_eq!(contents, ["also before", "after"]);
    assert!(events.windows(2).all(|w| super::position(&w[0]) < super::position(&w[1])));
}

#[tokio::test]
async fn a_workspace_member_can_follow_a_workspace_channel_without_joining_it() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let carol = app.register("Carol").await;
    app.post(&format!("/api/workspaces/{}/members", r.ws), &r.alice, json!({ "user_id": carol.id })).await.expect(201);
    let open = app.open_channel(&r.alice, &r.ws, "town hall").await;
    let path = format!("/api/conversations/{open}/stream");
    let mut follower = SseClient::open(&app, &carol, &path, None).await;
    app.root(&r.alice, &open, "all hands").await;
    let first = follower.next().await;
    assert_eq!(first.data["data"]["root"]["content"], "all hands");
    // And replays from a cursor like a member.
    drop(follower);
    app.root(&r.alice, &open, "missed").await;
    let mut resumed = SseClient::open(&app, &carol, &path, first.id.as_deref()).await;
    assert_eq!(resumed.next().await.data["data"]["root"]["content"], "missed");
    // Her read cursor starts with her first read: from then on she has counts there.
    let read = format!("/api/conversations/{open}/read");
    let id = first.data["message_id"].as_str().unwrap();
    let counts = app.post(&read, &carol, json!({ "message_id": id })).await.expect(200);
    assert_eq!((counts.body["conversation_id"].as_str(), &counts.body["unread"]), (Some(open.as_str()), &json!(1)));
    let listed = |body: &serde_json::Value| {
        body["conversations"].as_array().unwrap().iter().find(|c| c["conversation_id"] == open.as_str()).cloned()
    };
    let unread = app.get("/api/conversations/unread", &carol).await.expect(200);
    assert_eq!(listed(&unread.body).map(|c| c["unread"].clone()), Some(json!(1)), "\"missed\" is after the cursor");
    // Leaving drops the cursor with the channel.
    app.post(&format!("/api/conversations/{open}/leave"), &carol, json!({})).await.expect(204);
    let unread = app.get("/api/conversations/unread", &carol).await.expect(200);
    assert_eq!(listed(&unread.body), None);
    app.post(&read, &carol, json!({ "message_id": id })).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn bad_read_typing_and_presence_requests_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let other = app.channel(&r.alice, &r.ws, &[&r.bob]).await;
    let root = app.root(&r.alice, &r.conv, "root").await;
    let reply = app.reply(&r.alice, &root, "reply").await;
    let elsewhere = app.root(&r.alice, &other, "elsewhere").await;
    let read = format!("/api/conversations/{}/read", r.conv);

    let wrong_conversation = app.post(&read, &r.bob, json!({ "message_id": elsewhere })).await;
    assert_eq!(wrong_conversation.expect_problem(422, "validation_failed").body["errors"][0]["field"], "message_id");
    let wrong_thread = app.post(&read, &r.bob, json!({ "message_id": reply, "root_id": elsewhere })).await;
    assert_eq!(wrong_thread.expect_problem(422, "validation_failed").body["errors"][0]["field"], "root_id");
    app.post(&read, &r.bob, json!({ "message_id": "nope" })).await.expect_problem(400, "malformed_json");

    let typing = format!("/api/conversations/{}/typing", r.conv);
    let not_a_root = app.post(&typing, &r.bob, json!({ "typing": true, "root_id": reply })).await;
    assert_eq!(not_a_root.expect_problem(422, "validation_failed").body["errors"][0]["field"], "root_id");

    let many: Vec<String> = (0..201).map(|_| ulid::Ulid::generate().to_string()).collect();
    app.get(&format!("/api/presence?user_ids={}", many.join(",")), &r.bob)
        .await
        .expect_problem(422, "validation_failed");
    app.get("/api/presence?user_ids=", &r.bob).await.expect_problem(422, "validation_failed");
}
