//! Changing posted messages: edits and their history, deletes (tombstones and the purge),
//! reactions, pins; each change an event that a resumed stream replays in order.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use skein_tests::sse::SseClient;
use skein_tests::{TestApp, TestUser};

struct Room {
    ann: TestUser,
    bob: TestUser,
    conv: String,
}

/// Ann owns a channel with Bob as a member.
async fn room(app: &TestApp) -> Room {
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let conv = app.channel(&ann, &ws, &[&bob]).await;
    Room { ann, bob, conv }
}

fn emoji_path(message: &str, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/messages/{message}/reactions/{encoded}")
}

#[tokio::test]
async fn an_edit_keeps_every_earlier_version_and_only_the_author_may_make_it() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let root = app.root(&r.ann, &r.conv, "frist").await;
    let reply = app.reply(&r.bob, &root, "under it").await;

    let edited = app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "first" })).await.expect(200);
    assert_eq!(edited.body["content"], "first");
    assert_eq!(edited.body["edit_count"], 1);
    assert!(edited.body["edited_at"].is_string());
    app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "first!" })).await.expect(200);

    // Newest first; each version is what the message said before an edit, and who replaced it.
    let history = app.get(&format!("/api/messages/{root}/history"), &r.bob).await.expect(200);
    let versions: Vec<(i64, &str)> = history.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_i64().unwrap(), v["content"].as_str().unwrap()))
        .collect();
    assert_eq!(versions, [(1, "first"), (0, "frist")]);
    assert_eq!(history.body["data"][0]["editor_id"], r.ann.id.as_str());
    let first_page = app.get(&format!("/api/messages/{root}/history?limit=1"), &r.bob).await.expect(200);
    let cursor = first_page.body["page"]["next"].as_str().unwrap().to_owned();
    let second = app.get(&format!("/api/messages/{root}/history?limit=1&cursor={cursor}"), &r.bob).await.expect(200);
    assert_eq!(second.body["data"][0]["content"], "frist");
    assert!(second.body["page"]["next"].is_null());

    // The tree is as it was: the reply keeps its parent.
    let tree = app.get(&format!("/api/threads/{root}/tree"), &r.bob).await.expect(200);
    assert_eq!(tree.body["data"][0]["content"], "first!");
    assert_eq!(tree.body["data"][1]["id"], reply.as_str());
    assert_eq!(tree.body["data"][1]["parent_id"], root.as_str());

    // Nobody else edits Ann's words, not even the owner editing a member's.
    app.patch(&format!("/api/messages/{root}"), &r.bob, json!({ "content": "mine" }))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&format!("/api/messages/{reply}"), &r.ann, json!({ "content": "x" }))
        .await
        .expect_problem(403, "forbidden");
    let bad = app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "  " })).await;
    bad.expect_problem(422, "validation_failed");
    let outsider = app.register("Eve").await;
    app.patch(&format!("/api/messages/{root}"), &outsider, json!({ "content": "x" }))
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/api/messages/{root}/history"), &outsider).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_edit_window_closes_by_the_servers_clock() {
    let app = TestApp::spawn_with(|c| c.limits.edit_window_secs = 60).await;
    let r = room(&app).await;
    let root = app.root(&r.ann, &r.conv, "soon fixed").await;
    app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "fixed" })).await.expect(200);
    app.clock.advance(Duration::from_secs(61));
    app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "too late" }))
        .await
        .expect_problem(409, "edit_window_closed");
}

#[tokio::test]
async fn a_deleted_message_is_a_tombstone_whose_words_are_gone_from_every_table() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let secret = "the launch code is 0000";
    let root = app.root(&r.ann, &r.conv, "root").await;
    let doomed = app.reply(&r.bob, &root, &format!("draft: {secret}")).await;
    app.patch(&format!("/api/messages/{doomed}"), &r.bob, json!({ "content": secret })).await.expect(200);
    let child = app.reply(&r.ann, &doomed, "a reply to it").await;
    app.put(&emoji_path(&doomed, "👍"), &r.ann, json!({})).await.expect(200);
    app.put(&format!("/api/messages/{doomed}/pin"), &r.ann, json!({})).await.expect(200);

    // Ann (the owner) may delete Bob's message; Bob may not delete Ann's.
    app.delete(&format!("/api/messages/{root}"), &r.bob).await.expect_problem(403, "forbidden");
    let tombstone = app.delete(&format!("/api/messages/{doomed}"), &r.ann).await.expect(200);
    assert_eq!(tombstone.body["content"], "");
    assert_eq!(tombstone.body["deleted_by"], r.ann.id.as_str());
    assert!(tombstone.body["deleted_at"].is_string());
    assert_eq!(tombstone.body["pinned"], false);
    assert_eq!(tombstone.body["reactions"], json!([]));
    // Again: nothing changes.
    let again = app.delete(&format!("/api/messages/{doomed}"), &r.ann).await.expect(200);
    assert_eq!(again.body["deleted_at"], tombstone.body["deleted_at"]);

    // The reply keeps its parent; the tombstone keeps its place.
    let tree = app.get(&format!("/api/threads/{root}/tree"), &r.bob).await.expect(200);
    let ids: Vec<&str> = tree.body["data"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [root.as_str(), doomed.as_str(), child.as_str()]);
    assert_eq!(tree.body["data"][1]["content"], "");
    assert_eq!(tree.body["data"][2]["parent_id"], doomed.as_str());
    let pins = app.get(&format!("/api/conversations/{}/pins", r.conv), &r.bob).await.expect(200);
    assert_eq!(pins.body["data"], json!([]), "deleting unpins");
    let history = app.get(&format!("/api/messages/{doomed}/history"), &r.bob).await.expect(200);
    assert_eq!(history.body["data"], json!([]), "no edit history is shown");
    for (method, path) in [
        ("patch", format!("/api/messages/{doomed}")),
        ("put", emoji_path(&doomed, "👍")),
        ("put", format!("/api/messages/{doomed}/pin")),
    ] {
        let res = match method {
            "patch" => app.patch(&path, &r.bob, json!({ "content": "back" })).await,
            _ => app.put(&path, &r.ann, json!({})).await,
        };
        res.expect_problem(409, "message_deleted");
    }

    assert_eq!(traces(&app, secret).await, 0, "nothing of the deleted words is stored anywhere");
}

/// Rows in any table of the server's schema whose text contains `needle`.
pub(crate) async fn traces(app: &TestApp, needle: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut db = app.db().await;
    let tables = ["messages", "message_edits", "message_chunks", "events", "threads", "reactions", "conversations"];
    let mut total = 0;
    for table in tables {
        let query = format!("SELECT count(*) AS n FROM {table} t WHERE t::text LIKE '%' || $1 || '%'");
        let found: Found =
            diesel::sql_query(query).bind::<diesel::sql_types::Text, _>(needle).get_result(&mut db).await.unwrap();
        total += found.n;
    }
    total
}

#[tokio::test]
async fn with_a_purge_delay_the_words_are_kept_unseen_until_the_purge() {
    let app = TestApp::spawn_with(|c| c.limits.purge_deleted_after_secs = 1).await;
    let r = room(&app).await;
    let secret = "kept a little while";
    let root = app.root(&r.ann, &r.conv, secret).await;
    let tombstone = app.delete(&format!("/api/messages/{root}"), &r.ann).await.expect(200);
    assert_eq!(tombstone.body["content"], "", "never shown, even before the purge");
    let got = app.get(&format!("/api/messages/{root}"), &r.bob).await.expect(200);
    assert_eq!(got.body["content"], "");
    assert!(traces(&app, secret).await > 0, "kept until its purge time");
    app.clock.advance(Duration::from_secs(2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while traces(&app, secret).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "purged within a few seconds of its time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deleting_a_thread_turns_every_message_in_it_into_a_tombstone() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let root = app.root(&r.bob, &r.conv, "mine").await;
    let a = app.reply(&r.ann, &root, "a").await;
    app.reply(&r.bob, &a, "b").await;
    let other = app.root(&r.ann, &r.conv, "other thread").await;
    app.delete(&format!("/api/threads/{other}"), &r.bob).await.expect_problem(403, "forbidden");
    app.delete(&format!("/api/threads/{a}"), &r.bob).await.expect_problem(404, "not_found");
    app.delete(&format!("/api/threads/{root}"), &r.bob).await.expect(204);
    let tree = app.get(&format!("/api/threads/{root}/tree"), &r.ann).await.expect(200);
    let nodes = tree.body["data"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert!(nodes.iter().all(|n| n["deleted_at"].is_string() && n["content"] == ""));
    let untouched = app.get(&format!("/api/messages/{other}"), &r.bob).await.expect(200);
    assert_eq!(untouched.body["content"], "other thread");
}

#[tokio::test]
async fn deleted_messages_stop_counting_as_unread() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let root = app.root(&r.bob, &r.conv, "one").await;
    app.root(&r.bob, &r.conv, "two").await;
    let unread = |body: &Value| body["conversations"][0]["unread"].as_i64();
    assert_eq!(unread(&app.get("/api/conversations/unread", &r.ann).await.expect(200).body), Some(2));
    app.delete(&format!("/api/messages/{root}"), &r.bob).await.expect(200);
    assert_eq!(unread(&app.get("/api/conversations/unread", &r.ann).await.expect(200).body), Some(1));
}

#[tokio::test]
async fn reactions_are_one_per_user_per_emoji_and_show_on_every_listing() {
    let app = TestApp::spawn_with(|c| c.limits.reactions_per_message_max = 2).await;
    let r = room(&app).await;
    let root = app.root(&r.ann, &r.conv, "react to me").await;

    let once = app.put(&emoji_path(&root, "👍"), &r.bob, json!({})).await.expect(200);
    assert_eq!(once.body["reactions"], json!([{ "emoji": "👍", "count": 1, "me": true }]));
    // Idempotent; the unqualified heart is the same reaction as the qualified one.
    app.put(&emoji_path(&root, "👍"), &r.bob, json!({})).await.expect(200);
    app.put(&emoji_path(&root, "\u{2764}"), &r.bob, json!({})).await.expect(200);
    let both = app.put(&emoji_path(&root, "\u{2764}\u{fe0f}"), &r.ann, json!({})).await.expect(200);
    assert_eq!(
        both.body["reactions"],
        json!([{ "emoji": "👍", "count": 1, "me": false }, { "emoji": "\u{2764}\u{fe0f}", "count": 2, "me": true }])
    );
    // A third distinct emoji is one too many here; invalid ones are refused.
    app.put(&emoji_path(&root, "🎉"), &r.ann, json!({})).await.expect_problem(409, "reaction_limit");
    app.put(&emoji_path(&root, "not an emoji"), &r.ann, json!({})).await.expect_problem(422, "validation_failed");
    app.put(&format!("/api/messages/{root}/reactions/:Shout:"), &r.ann, json!({})).await.expect(422);

    // Every place a message appears carries them.
    let history = app.get(&format!("/api/conversations/{}/messages", r.conv), &r.ann).await.expect(200);
    assert_eq!(history.body["data"][0]["reactions"][1]["count"], 2);
    let tree = app.get(&format!("/api/threads/{root}/tree"), &r.bob).await.expect(200);
    assert_eq!(tree.body["thread"]["root"]["reactions"][0]["me"], true);
    assert_eq!(tree.body["data"][0]["reactions"][0]["emoji"], "👍");
    let threads = app.get(&format!("/api/conversations/{}/threads", r.conv), &r.bob).await.expect(200);
    assert_eq!(threads.body["data"][0]["root"]["reactions"][1]["me"], true);
    let got = app.get(&format!("/api/messages/{root}"), &r.ann).await.expect(200);
    assert_eq!(got.body["reactions"][0]["me"], false);

    let who = app.get(&emoji_path(&root, "\u{2764}\u{fe0f}"), &r.ann).await.expect(200);
    let names: Vec<&str> =
        who.body["data"].as_array().unwrap().iter().map(|u| u["display_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bob", "Ann"], "oldest first");

    let removed = app.delete(&emoji_path(&root, "👍"), &r.bob).await.expect(200);
    assert_eq!(removed.body["reactions"], json!([{ "emoji": "\u{2764}\u{fe0f}", "count": 2, "me": true }]));
    app.delete(&emoji_path(&root, "👍"), &r.bob).await.expect(200);
}

#[tokio::test]
async fn fifty_clients_reacting_at_once_leave_the_exact_count() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let mut users = Vec::new();
    for i in 0..50 {
        users.push(app.register(&format!("U{i}")).await);
    }
    let refs: Vec<&TestUser> = users.iter().collect();
    let ws = app.workspace(&ann, &refs).await;
    let conv = app.channel(&ann, &ws, &refs).await;
    let root = app.root(&ann, &conv, "vote").await;
    let path = emoji_path(&root, "🔥");
    // Everyone adds, and the even ones take it back, all at once.
    let calls = users.iter().enumerate().map(|(i, u)| {
        let (app, path) = (&app, &path);
        async move {
            app.put(path, u, json!({})).await.expect(200);
            if i % 2 == 0 {
                app.delete(path, u).await.expect(200);
            }
        }
    });
    futures_util::future::join_all(calls).await;
    let got = app.get(&format!("/api/messages/{root}"), &ann).await.expect(200);
    assert_eq!(got.body["reactions"], json!([{ "emoji": "🔥", "count": 25, "me": false }]));
    let who = app.get(&format!("{path}?limit=200"), &ann).await.expect(200);
    assert_eq!(who.body["data"].as_array().unwrap().len(), 25);
}

#[tokio::test]
async fn pins_are_listed_newest_first_and_may_be_kept_to_admins() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let first = app.root(&r.ann, &r.conv, "first").await;
    let second = app.root(&r.ann, &r.conv, "second").await;
    let pinned = app.put(&format!("/api/messages/{first}/pin"), &r.bob, json!({})).await.expect(200);
    assert_eq!(pinned.body["pinned"], true);
    app.put(&format!("/api/messages/{first}/pin"), &r.bob, json!({})).await.expect(200);
    app.clock.advance(Duration::from_secs(1));
    app.put(&format!("/api/messages/{second}/pin"), &r.ann, json!({})).await.expect(200);
    let pins = app.get(&format!("/api/conversations/{}/pins", r.conv), &r.bob).await.expect(200);
    let listed: Vec<(&str, &str)> = pins.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["message"]["id"].as_str().unwrap(), p["pinned_by"].as_str().unwrap()))
        .collect();
    assert_eq!(listed, [(second.as_str(), r.ann.id.as_str()), (first.as_str(), r.bob.id.as_str())]);
    let got = app.get(&format!("/api/messages/{first}"), &r.bob).await.expect(200);
    assert_eq!(got.body["pinned"], true);
    let page = app.get(&format!("/api/conversations/{}/pins?limit=1", r.conv), &r.bob).await.expect(200);
    let cursor = page.body["page"]["next"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/api/conversations/{}/pins?limit=1&cursor={cursor}", r.conv), &r.bob).await;
    assert_eq!(rest.expect(200).body["data"][0]["message"]["id"], first.as_str());

    app.patch(&format!("/api/conversations/{}", r.conv), &r.ann, json!({ "pin_policy": "admins" })).await.expect(200);
    app.delete(&format!("/api/messages/{first}/pin"), &r.bob).await.expect_problem(403, "forbidden");
    let unpinned = app.delete(&format!("/api/messages/{first}/pin"), &r.ann).await.expect(200);
    assert_eq!(unpinned.body["pinned"], false);
    app.delete(&format!("/api/messages/{first}/pin"), &r.ann).await.expect(200);
}

#[tokio::test]
async fn an_archived_conversation_refuses_changes_but_still_shows_history_and_pins() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let root = app.root(&r.ann, &r.conv, "frozen").await;
    app.put(&format!("/api/messages/{root}/pin"), &r.ann, json!({})).await.expect(200);
    app.post(&format!("/api/conversations/{}/archive", r.conv), &r.ann, json!({})).await.expect(200);
    app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "x" }))
        .await
        .expect_problem(409, "conversation_archived");
    app.delete(&format!("/api/messages/{root}"), &r.ann).await.expect_problem(409, "conversation_archived");
    app.delete(&format!("/api/threads/{root}"), &r.ann).await.expect_problem(409, "conversation_archived");
    app.put(&emoji_path(&root, "👍"), &r.bob, json!({})).await.expect_problem(409, "conversation_archived");
    app.delete(&format!("/api/messages/{root}/pin"), &r.ann).await.expect_problem(409, "conversation_archived");
    app.get(&format!("/api/messages/{root}/history"), &r.bob).await.expect(200);
    let pins = app.get(&format!("/api/conversations/{}/pins", r.conv), &r.bob).await.expect(200);
    assert_eq!(pins.body["data"][0]["message"]["id"], root.as_str());
}

#[tokio::test]
async fn viewers_may_react_only_where_the_conversation_lets_them() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let vic = app.register("Vic").await;
    let ws_of = app.get(&format!("/api/conversations/{}", r.conv), &r.ann).await.expect(200).str("workspace_id");
    app.post(&format!("/api/workspaces/{ws_of}/members"), &r.ann, json!({ "user_id": vic.id })).await.expect(201);
    app.post(&format!("/api/conversations/{}/members", r.conv), &r.ann, json!({ "user_id": vic.id, "role": "viewer" }))
        .await
        .expect(201);
    let root = app.root(&r.ann, &r.conv, "look").await;
    app.put(&emoji_path(&root, "👀"), &vic, json!({})).await.expect_problem(403, "forbidden");
    let conv = app.patch(&format!("/api/conversations/{}", r.conv), &r.ann, json!({ "viewer_reactions": true })).await;
    assert_eq!(conv.expect(200).body["viewer_reactions"], true);
    app.put(&emoji_path(&root, "👀"), &vic, json!({})).await.expect(200);
    // Still nothing else.
    app.put(&format!("/api/messages/{root}/pin"), &vic, json!({})).await.expect_problem(403, "forbidden");
    app.patch(&format!("/api/messages/{root}"), &vic, json!({ "content": "x" })).await.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_resumed_stream_replays_edits_deletes_reactions_and_pins_in_order() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let root = app.root(&r.ann, &r.conv, "watch this").await;
    let reply = app.reply(&r.bob, &root, "and this").await;
    let mut live = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    app.patch(&format!("/api/messages/{root}"), &r.ann, json!({ "content": "watch this!" })).await.expect(200);
    let first = live.next().await;
    assert_eq!(first.kind(), "message.updated");
    assert_eq!(first.data["data"]["content"], "watch this!");
    drop(live);

    app.put(&emoji_path(&root, "👍"), &r.ann, json!({})).await.expect(200);
    app.put(&format!("/api/messages/{root}/pin"), &r.ann, json!({})).await.expect(200);
    app.delete(&format!("/api/messages/{reply}"), &r.bob).await.expect(200);
    app.delete(&emoji_path(&root, "👍"), &r.ann).await.expect(200);
    app.delete(&format!("/api/messages/{root}/pin"), &r.ann).await.expect(200);

    let mut resumed = SseClient::open(&app, &r.bob, "/api/stream", first.id.as_deref()).await;
    let events = resumed.take(5).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["reaction.added", "message.pinned", "message.deleted", "reaction.removed", "message.unpinned"]);
    assert_eq!(events[0].data["data"]["count"], 1);
    assert_eq!(events[0].data["data"]["user_id"], r.ann.id.as_str());
    assert_eq!(events[1].data["data"]["by"], r.ann.id.as_str());
    assert_eq!(events[2].data["message_id"], reply.as_str());
    assert_eq!(events[2].data["data"]["content"], "");
    assert_eq!(events[3].data["data"]["count"], 0);
    for e in &events {
        serde_json::from_value::<skein_shared::event::Event>(e.data.clone()).expect("a skein_shared Event");
    }
    // The replayed creation of the deleted reply carries no content either.
    let mut from_start = SseClient::open(&app, &r.bob, "/api/stream", Some("0-0")).await;
    let created = from_start.until("message.created").await;
    let created = created.last().unwrap();
    assert_eq!(created.data["message_id"], reply.as_str());
    assert_eq!(created.data["data"]["content"], "");
}

#[tokio::test]
async fn mentions_name_members_only_and_count_as_unread_mentions() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let eve = app.register("Eve").await;
    let ws_of = app.get(&format!("/api/conversations/{}", r.conv), &r.ann).await.expect(200).str("workspace_id");
    app.post(&format!("/api/workspaces/{ws_of}/members"), &r.ann, json!({ "user_id": eve.id })).await.expect(201);
    let stranger = skein_shared::UserId::generate();

    let text = format!("<@{}> and <@{}> and <@{stranger}>, look", r.bob.id, eve.id);
    let root = app.root(&r.ann, &r.conv, &text).await;
    let shown = app.get(&format!("/api/messages/{root}"), &r.bob).await.expect(200);
    assert_eq!(shown.body["mentions"], json!([{ "kind": "user", "user_id": r.bob.id }]), "Eve is not a member here");
    app.reply(&r.ann, &root, "no mention").await;
    app.reply(&r.ann, &root, "@here anyone?").await;
    app.root(&r.ann, &r.conv, "@channel meeting").await;
    app.root(&r.ann, &r.conv, "just words").await;

    let unread = unread_of(&app, &r.bob, &r.conv).await;
    assert_eq!((unread["unread"].as_i64(), unread["mentions"].as_i64()), (Some(3), Some(2)));
    let thread = &unread["threads"][0];
    assert_eq!((thread["unread"].as_i64(), thread["mentions"].as_i64()), (Some(2), Some(1)));
    let anns = unread_of(&app, &r.ann, &r.conv).await;
    assert_eq!(anns["mentions"], 0, "her own messages are not unread for her");

    // Deleting a message takes its mentions with it.
    app.delete(&format!("/api/messages/{root}"), &r.ann).await.expect(200);
    let tombstone = app.get(&format!("/api/messages/{root}"), &r.bob).await.expect(200);
    assert_eq!(tombstone.body["mentions"], json!([]));
    assert_eq!(unread_of(&app, &r.bob, &r.conv).await["mentions"], 1);
}

async fn unread_of(app: &TestApp, user: &TestUser, conversation: &str) -> Value {
    let all = app.get("/api/conversations/unread", user).await.expect(200).body;
    let entries = all["conversations"].as_array().unwrap();
    entries.iter().find(|c| c["conversation_id"] == conversation).cloned().unwrap()
}
