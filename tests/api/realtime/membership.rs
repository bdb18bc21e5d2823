//! Membership on the stream: removal stops delivery at once, replay never crosses it, and a
//! late joiner's replay starts at their joining.

use serde_json::json;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[tokio::test]
async fn a_removed_member_stops_receiving_at_once_while_connected() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let other = app.channel(&r.alice, &r.ws, &[&r.bob]).await;
    let mut all = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let mut one = SseClient::open(&app, &r.bob, &format!("/api/conversations/{}/stream", r.conv), None).await;

    app.delete(&format!("/api/conversations/{}/members/{}", r.conv, r.bob.id), &r.alice).await.expect(204);
    app.root(&r.alice, &r.conv, "after removal").await;
    app.root(&r.alice, &other, "elsewhere").await;

    let removed = all.next().await;
    assert_eq!(removed.kind(), "membership.changed");
    assert_eq!(removed.data["data"], json!({ "user_id": r.bob.id, "change": "removed", "role": null }));
    let next = all.next().await;
    assert_eq!(next.data["conversation_id"], other.as_str(), "nothing more from the old conversation");
    assert_eq!(next.data["data"]["root"]["content"], "elsewhere");

    // The conversation's own stream ends with the removal.
    assert_eq!(one.next().await, removed);
    assert_eq!(one.next_within(std::time::Duration::from_secs(5)).await, Ok(None), "stream ended");
}

#[tokio::test]
async fn replay_stops_at_the_removal_and_starts_at_the_joining() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let other = app.channel(&r.alice, &r.ws, &[&r.bob]).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    app.root(&r.alice, &r.conv, "seen").await;
    let cursor = stream.next().await.id;
    drop(stream);

    // While Bob is away: a post he may see, his removal, a post he may not, and one elsewhere.
    app.root(&r.alice, &r.conv, "missed but visible").await;
    app.delete(&format!("/api/conversations/{}/members/{}", r.conv, r.bob.id), &r.alice).await.expect(204);
    app.root(&r.alice, &r.conv, "after removal").await;
    app.root(&r.alice, &other, "elsewhere").await;
    let mut resumed = SseClient::open(&app, &r.bob, "/api/stream", cursor.as_deref()).await;
    let events = resumed.take(3).await;
    assert_eq!(events[0].data["data"]["root"]["content"], "missed but visible");
    assert_eq!(events[1].kind(), "membership.changed");
    assert_eq!(events[2].data["data"]["root"]["content"], "elsewhere");

    // Carol joins later; resuming from a cursor older than her joining replays from it only.
    let carol = app.register("Carol").await;
    app.post(&format!("/api/workspaces/{}/members", r.ws), &r.alice, json!({ "user_id": carol.id })).await.expect(201);
    app.post(&format!("/api/conversations/{}/members", other), &r.alice, json!({ "user_id": carol.id }))
        .await
        .expect(201);
    app.root(&r.alice, &other, "welcome").await;
    let mut late = SseClient::open(&app, &carol, "/api/stream", cursor.as_deref()).await;
    let joined_workspace = late.next().await;
    assert_eq!(joined_workspace.kind(), "workspace.membership.changed");
    assert_eq!(joined_workspace.data["data"]["workspace_id"], r.ws.as_str());
    let first = late.next().await;
    assert_eq!(first.kind(), "membership.changed");
    assert_eq!(first.data["data"]["user_id"], carol.id.as_str());
    assert_eq!(late.next().await.data["data"]["root"]["content"], "welcome");
}
