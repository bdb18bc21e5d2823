//! Typing and presence: live-only, expired and timed out by the server's clock (moved
//! forward here, never slept on).

use std::time::Duration;

use serde_json::json;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[tokio::test]
async fn typing_is_coalesced_and_expires_by_itself() {
    let app = TestApp::spawn_with(|c| c.realtime.typing_ttl_secs = 5).await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let typing = format!("/api/conversations/{}/typing", r.conv);

    app.post(&typing, &r.alice, json!({ "typing": true })).await.expect(204);
    let started = stream.next().await;
    assert_eq!(started.kind(), "typing.update");
    assert_eq!(started.data["data"], json!({ "user_id": r.alice.id, "root_id": null, "typing": true }));
    assert_eq!(started.id, None, "typing is not replayable");

    // A burst: repeats within the expiry send nothing new, and push the expiry back.
    app.clock.advance(Duration::from_secs(3));
    app.post(&typing, &r.alice, json!({ "typing": true })).await.expect(204);
    app.clock.advance(Duration::from_secs(3));
    app.root(&r.alice, &r.conv, "marker").await;
    assert_eq!(stream.next().await.kind(), "thread.new", "no typing event for the repeat, none expired yet");

    // Nothing more from Alice: the server ends it.
    app.clock.advance(Duration::from_secs(3));
    let stopped = stream.next().await;
    assert_eq!(stopped.data["data"]["typing"], false);

    // Stopping explicitly ends it at once, once.
    app.post(&typing, &r.alice, json!({ "typing": true })).await.expect(204);
    app.post(&typing, &r.alice, json!({ "typing": false })).await.expect(204);
    app.post(&typing, &r.alice, json!({ "typing": false })).await.expect(204);
    let (on, off) = (stream.next().await, stream.next().await);
    assert_eq!((on.data["data"]["typing"].as_bool(), off.data["data"]["typing"].as_bool()), (Some(true), Some(false)));
    app.clock.advance(Duration::from_secs(10));
    app.root(&r.alice, &r.conv, "marker 2").await;
    assert_eq!(stream.next().await.kind(), "thread.new");

    // Viewers and outsiders may not signal typing.
    let stranger = app.register("Mallory").await;
    app.post(&typing, &stranger, json!({ "typing": true })).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn presence_goes_away_then_offline_on_the_servers_clock() {
    let app = TestApp::spawn_with(|c| {
        c.realtime.presence.away_after_secs = 60;
        c.realtime.presence.offline_after_secs = 300;
        c.realtime.presence.sweep_interval_secs = 10;
    })
    .await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let state = |e: &skein_tests::sse::Received| e.data["data"]["state"].as_str().unwrap_or_default().to_owned();

    let me = app.post("/api/presence/heartbeat", &r.alice, json!({})).await.expect(200);
    assert_eq!(me.body["state"], "online");
    let online = stream.next().await;
    assert_eq!((online.kind(), state(&online).as_str()), ("presence.update", "online"));
    assert_eq!(online.data["data"]["user_id"], r.alice.id.as_str());
    // Heartbeats that change nothing announce nothing.
    app.post("/api/presence/heartbeat", &r.alice, json!({})).await.expect(200);

    app.clock.advance(Duration::from_secs(61));
    assert_eq!(state(&stream.next().await), "away");
    app.clock.advance(Duration::from_secs(240));
    assert_eq!(state(&stream.next().await), "offline");

    let snapshot = app.get(&format!("/api/presence?user_ids={},{}", r.alice.id, r.bob.id), &r.bob).await.expect(200);
    assert_eq!(snapshot.body["users"][0]["state"], "offline");
    assert_eq!(snapshot.body["users"][1]["state"], "offline", "never seen");

    // Back, but idle at the device.
    app.post("/api/presence/heartbeat", &r.alice, json!({ "away": true })).await.expect(200);
    assert_eq!(state(&stream.next().await), "away");
    let snapshot = app.get(&format!("/api/presence?user_ids={}", r.alice.id), &r.bob).await.expect(200);
    assert_eq!(snapshot.body["users"][0]["state"], "away");

    // Strangers are left out of snapshots; a bad list is a validation error.
    let stranger = app.register("Mallory").await;
    let hidden = app.get(&format!("/api/presence?user_ids={}", r.alice.id), &stranger).await.expect(200);
    assert_eq!(hidden.body["users"], json!([]));
    app.get("/api/presence?user_ids=nope", &r.bob).await.expect_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_presence_change_never_holds_back_other_deliveries() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    // The stream's replay (which reads the spans too) is over once a live event has come.
    app.root(&r.alice, &r.conv, "before").await;
    assert_eq!(stream.next().await.kind(), "thread.new");
    // Who receives Alice's presence is read from the membership spans. Here that read
    // waits for a lock the test holds: the spans are put behind a view whose rows pass a
    // gate, an advisory lock (which, unlike a table lock, gives the holder no transaction id
    // that would hold back the log for every reader). Messages must not wait with it.
    let mut blocker = app.db().await;
    for statement in [
        "ALTER TABLE member_spans RENAME TO member_spans_rows",
        "CREATE FUNCTION span_gate() RETURNS boolean LANGUAGE sql VOLATILE AS \
           'SELECT pg_advisory_lock_shared(4242) IS NOT NULL AND pg_advisory_unlock_shared(4242)'",
        "CREATE VIEW member_spans AS SELECT * FROM member_spans_rows WHERE span_gate()",
        "SELECT pg_advisory_lock(4242)",
    ] {
        diesel::sql_query(statement).execute(&mut blocker).await.unwrap();
    }
    app.post("/api/presence/heartbeat", &r.alice, json!({})).await.expect(200);
    app.root(&r.alice, &r.conv, "delivered while presence waits").await;
    let first = stream.next_within(Duration::from_secs(5)).await.ok().flatten().expect("the message arrives");
    assert_eq!(first.kind(), "thread.new");
    diesel::sql_query("SELECT pg_advisory_unlock(4242)").execute(&mut blocker).await.unwrap();
    let presence = stream.next().await;
    assert_eq!((presence.kind(), presence.data["data"]["state"].as_str()), ("presence.update", Some("online")));
}
