//! Each member's own settings for a conversation: starred, muted, notify level; and the
//! conversation list filtered and ordered by them.

use serde_json::{Value, json};
use skein_tests::sse::SseClient;
use skein_tests::{TestApp, TestUser};

fn prefs(id: &str) -> String {
    format!("/api/conversations/{id}/preferences")
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

/// Every conversation of the list, walking its pages `limit` at a time.
async fn walk(app: &TestApp, user: &TestUser, query: &str, limit: u32) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/api/conversations?{query}&limit={limit}{after}"), user).await.expect(200);
        all.extend(ids(&page.body));
        match page.body["page"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
        assert!(all.len() < 100, "the walk ends");
    }
}

#[tokio::test]
async fn preferences_are_the_members_own_and_change_only_what_is_given() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let ws = app.workspace(&ann, &[&bob, &eve]).await;
    let conv = app.channel(&ann, &ws, &[&bob]).await;

    let fresh = app.get(&format!("/api/conversations/{conv}"), &bob).await.expect(200);
    assert_eq!(
        fresh.body["preferences"],
        json!({ "starred": false, "mute_until": null, "muted": false, "notify_level": "all" })
    );
    let set = app.put(&prefs(&conv), &bob, json!({ "starred": true, "mute_until": "forever" })).await.expect(200);
    assert_eq!(set.body, json!({ "starred": true, "mute_until": "forever", "muted": true, "notify_level": "all" }));
    let level = app.put(&prefs(&conv), &bob, json!({ "notify_level": "mentions" })).await.expect(200);
    assert_eq!(level.body["starred"], true, "absent fields stay");
    assert_eq!(level.body["mute_until"], "forever");
    let again = app.put(&prefs(&conv), &bob, json!({ "notify_level": "mentions" })).await.expect(200);
    assert_eq!(again.body, level.body, "the same PUT twice is a no-op");

    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let until = app.put(&prefs(&conv), &bob, json!({ "mute_until": later })).await.expect(200);
    assert_eq!(until.body["muted"], true);
    let unmuted = app.put(&prefs(&conv), &bob, json!({ "mute_until": null })).await.expect(200);
    assert_eq!((unmuted.body["muted"].clone(), unmuted.body["mute_until"].clone()), (json!(false), Value::Null));

    // Ann's view of the same conversation is hers.
    let anns = app.get(&format!("/api/conversations/{conv}"), &ann).await.expect(200);
    assert_eq!(anns.body["preferences"]["starred"], false);
    let bobs = app.get(&format!("/api/conversations/{conv}"), &bob).await.expect(200);
    assert_eq!(bobs.body["preferences"]["starred"], true);
    assert_eq!(bobs.body["preferences"]["notify_level"], "mentions");

    for bad in [
        json!({ "mute_until": "2001-01-01T00:00:00Z" }),
        json!({ "mute_until": "tomorrow" }),
        json!({ "notify_level": "loud" }),
    ] {
        let resp = app.put(&prefs(&conv), &bob, bad.clone()).await;
        assert!(matches!(resp.status, 400 | 422), "{bad} refused, got {}", resp.status);
    }
    app.put(&prefs(&conv), &bob, json!({ "mute_until": "2001-01-01T00:00:00Z" }))
        .await
        .expect_problem(422, "validation_failed");
    app.put(&prefs(&conv), &eve, json!({ "starred": true })).await.expect_problem(404, "not_found");

    let dm = app
        .post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "direct", "member_ids": [bob.id] }))
        .await
        .expect(201)
        .str("id");
    let resp = app.put(&prefs(&dm), &bob, json!({ "notify_level": "mentions" })).await;
    resp.expect_problem(422, "validation_failed");
    app.put(&prefs(&dm), &bob, json!({ "notify_level": "none" })).await.expect(200);

    app.post(&format!("/api/conversations/{conv}/archive"), &ann, json!({})).await.expect(200);
    app.put(&prefs(&conv), &bob, json!({ "starred": false })).await.expect_problem(409, "conversation_archived");
}

#[tokio::test]
async fn the_list_filters_by_starred_and_muted_and_can_put_starred_first() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    // Created oldest first, so by activity the list is c4, c3, c2, c1, c0.
    let mut convs = Vec::new();
    for _ in 0..5 {
        convs.push(app.channel(&ann, &ws, &[]).await);
    }
    let newest_first: Vec<String> = convs.iter().rev().cloned().collect();
    for starred in [&convs[1], &convs[3]] {
        app.put(&prefs(starred), &ann, json!({ "starred": true })).await.expect(200);
    }
    app.put(&prefs(&convs[2]), &ann, json!({ "mute_until": "forever" })).await.expect(200);
    let base = format!("workspace_id={ws}");

    assert_eq!(walk(&app, &ann, &base, 2).await, newest_first);
    assert_eq!(walk(&app, &ann, &format!("{base}&starred=true"), 1).await, [convs[3].clone(), convs[1].clone()]);
    let unstarred = walk(&app, &ann, &format!("{base}&starred=false"), 10).await;
    assert_eq!(unstarred, [convs[4].clone(), convs[2].clone(), convs[0].clone()]);
    assert_eq!(walk(&app, &ann, &format!("{base}&muted=true"), 10).await, [convs[2].clone()]);
    assert_eq!(walk(&app, &ann, &format!("{base}&muted=false"), 10).await.len(), 4);

    let starred_first = [&convs[3], &convs[1], &convs[4], &convs[2], &convs[0]].map(|c| c.clone());
    // Every page size, including one that ends exactly where the starred part does.
    for limit in [1, 2, 3, 5, 10] {
        assert_eq!(walk(&app, &ann, &format!("{base}&order=starred"), limit).await, starred_first, "limit {limit}");
    }
    let page = app.get(&format!("/api/conversations?{base}&order=starred&limit=2"), &ann).await.expect(200);
    assert_eq!(page.body["data"][0]["preferences"]["starred"], true);
    app.get(&format!("/api/conversations?{base}&order=starred&cursor=nonsense"), &ann)
        .await
        .expect_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_muted_conversation_still_counts_unread_and_says_it_is_muted() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let conv = app.channel(&ann, &ws, &[&bob]).await;
    app.root(&ann, &conv, "one").await;
    let mut live = SseClient::open(&app, &bob, "/api/stream", None).await;

    app.put(&prefs(&conv), &bob, json!({ "mute_until": "forever" })).await.expect(200);
    let update = live.until("unread.update").await.pop().unwrap();
    assert!(update.id.is_some(), "the change of mute is a logged event");
    assert_eq!(update.data["data"]["muted"], true);
    assert_eq!(update.data["data"]["unread"], 1);

    app.root(&ann, &conv, "two").await;
    let all = app.get("/api/conversations/unread", &bob).await.expect(200);
    let entry = &all.body["conversations"][0];
    assert_eq!((entry["unread"].as_i64(), entry["muted"].as_bool()), (Some(2), Some(true)));
    // Starring changes no count: no unread.update for it.
    app.put(&prefs(&conv), &bob, json!({ "starred": true })).await.expect(200);
    app.put(&prefs(&conv), &bob, json!({ "mute_until": null })).await.expect(200);
    let update = live.until("unread.update").await.pop().unwrap();
    assert_eq!(
        (update.data["data"]["muted"].as_bool(), update.data["data"]["unread"].as_i64()),
        (Some(false), Some(2))
    );
}
