//! Two server processes sharing one PostgreSQL behave as one service, with either fan-out.

use serde_json::json;
use skein_infra::realtime::FanoutMode;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

async fn publish_on_a_receive_on_b_and_resume_across(mode: FanoutMode) {
    let a = TestApp::spawn_with(|c| c.realtime.fanout.mode = mode).await;
    let b = a.peer().await;
    let r = room(&a).await;

    // Committed through A, delivered by B.
    let mut on_b = SseClient::open(&b, &r.bob, "/api/stream", None).await;
    let mut on_a = SseClient::open(&a, &r.bob, "/api/stream", None).await;
    let root = a.root(&r.alice, &r.conv, "from A").await;
    let seen_on_b = on_b.next().await;
    assert_eq!(seen_on_b.data["data"]["root"]["content"], "from A");
    let seen_on_a = on_a.next().await;
    assert_eq!(seen_on_a, seen_on_b, "the same event, the same cursor, on both");

    // A cursor received on A resumes on B.
    drop(on_a);
    a.reply(&r.alice, &root, "missed 1").await;
    b.reply(&r.alice, &root, "missed 2").await;
    let mut resumed = SseClient::open(&b, &r.bob, "/api/stream", seen_on_b.id.as_deref()).await;
    let contents: Vec<String> = resumed
        .take(4)
        .await
        .iter()
        .filter(|e| e.kind() == "message.created")
        .map(|e| e.data["data"]["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contents, ["missed 1", "missed 2"]);

    // Live-only events cross instances too.
    a.post(&format!("/api/conversations/{}/typing", r.conv), &r.alice, json!({ "typing": true })).await.expect(204);
    let typing = on_b.until("typing.update").await;
    assert_eq!(typing.last().unwrap().data["data"]["user_id"], r.alice.id.as_str());
}

#[tokio::test]
async fn across_instances_with_postgres_notify() {
    publish_on_a_receive_on_b_and_resume_across(FanoutMode::Postgres).await;
}

#[tokio::test]
async fn across_instances_with_nats() {
    publish_on_a_receive_on_b_and_resume_across(FanoutMode::Nats).await;
}
