//! Retention: pruned history is never a silent gap.

use skein_infra::store::read;
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[tokio::test]
async fn a_cursor_older_than_retention_or_unknown_gets_resync() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut stream = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    for i in 0..6 {
        app.root(&r.alice, &r.conv, &format!("m{i}")).await;
    }
    let events = stream.take(6).await;

    // Keep only the newest three events (as the periodic pruner would with that setting).
    let mut conn = app.db().await;
    let now = time::OffsetDateTime::now_utc();
    let boundary = read::prune(&mut conn, now, time::Duration::days(365), 3).await.unwrap().expect("pruned");
    assert!(events.iter().any(|e| e.id.as_deref() == Some(boundary.encode().as_str())));

    let mut old = SseClient::open(&app, &r.bob, "/api/stream", events[0].id.as_deref()).await;
    let resync = old.next().await;
    assert_eq!(resync.kind(), "resync");
    assert_eq!(resync.data["data"]["reason"], "too_old");
    assert_eq!(resync.id, None, "a resync is not a position to resume from");
    // After the resync the stream goes on live.
    app.root(&r.alice, &r.conv, "live").await;
    assert_eq!(old.next().await.data["data"]["root"]["content"], "live");

    // Still retained: resumes normally.
    let kept = events.iter().position(|e| e.id.as_deref() == Some(boundary.encode().as_str())).unwrap();
    let mut fine = SseClient::open(&app, &r.bob, "/api/stream", events[kept].id.as_deref()).await;
    assert_eq!(fine.next().await, events[kept + 1]);

    for bad in ["garbage", "999999999999-1"] {
        let mut s = SseClient::open(&app, &r.bob, "/api/stream", Some(bad)).await;
        let e = s.next().await;
        assert_eq!((e.kind(), e.data["data"]["reason"].as_str()), ("resync", Some("unknown_cursor")), "{bad}");
    }
}
