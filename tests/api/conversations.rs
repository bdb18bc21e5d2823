use serde_json::json;
use skein_tests::sse::SseClient;
use skein_tests::{TestApp, TestUser};

#[tokio::test]
async fn direct_conversations_are_one_per_pair() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let cat = app.register("Cat").await;
    let ws = app.workspace(&ann, &[&bob, &cat]).await;
    let first = app
        .post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "direct", "member_ids": [bob.id] }))
        .await
        .expect(201);
    assert_eq!(first.body["kind"], "direct");
    let again = app
        .post("/api/conversations", &bob, json!({ "workspace_id": ws, "kind": "direct", "member_ids": [ann.id] }))
        .await
        .expect(200);
    assert_eq!(again.body["id"], first.body["id"]);
    let id = first.str("id");
    app.get(&format!("/api/conversations/{id}"), &cat).await.expect_problem(404, "not_found");
    for bad in [json!([]), json!([bob.id, cat.id]), json!([ann.id])] {
        app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "direct", "member_ids": bad }))
            .await
            .expect_problem(422, "validation_failed");
    }
    // Membership is fixed.
    app.post(&format!("/api/conversations/{id}/members"), &ann, json!({ "user_id": cat.id }))
        .await
        .expect_problem(403, "forbidden");
    app.post(&format!("/api/conversations/{id}/leave"), &ann, json!({}))
        .await
        .expect_problem(409, "direct_conversation_fixed");
    app.post(&format!("/api/conversations/{id}/invites"), &ann, json!({})).await.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn concurrent_direct_creation_makes_one() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let a =
        app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "direct", "member_ids": [bob.id] }));
    let b =
        app.post("/api/conversations", &bob, json!({ "workspace_id": ws, "kind": "direct", "member_ids": [ann.id] }));
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201]);
    assert_eq!(a.body["id"], b.body["id"]);
}

#[tokio::test]
async fn creation_rules() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let guest = app.register("Guest").await;
    let outsider = app.register("Out").await;
    let ws = app.workspace(&ann, &[]).await;
    app.add_to_workspace(&ann, &ws, &guest, "guest").await;
    app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "channel" }))
        .await
        .expect_problem(422, "validation_failed");
    app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "group", "visibility": "workspace" }))
        .await
        .expect_problem(422, "validation_failed");
    let res = app
        .post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "group", "member_ids": [outsider.id] }))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(res.body["errors"][0]["field"], "member_ids");
    app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "channel", "title": "t".repeat(201) }))
        .await
        .expect_problem(422, "validation_failed");
    app.post("/api/conversations", &guest, json!({ "workspace_id": ws, "kind": "group" }))
        .await
        .expect_problem(403, "forbidden");
    app.post("/api/conversations", &outsider, json!({ "workspace_id": ws, "kind": "group" }))
        .await
        .expect_problem(404, "not_found");
    app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "nonsense" }))
        .await
        .expect_problem(400, "malformed_json");
    let group = app
        .post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "group", "member_ids": [guest.id] }))
        .await
        .expect(201);
    assert_eq!(group.body["my_role"], "owner");
    assert_eq!(group.body["visibility"], "private");
    assert_eq!(group.body["history_visible_to_new_members"], true);
}

#[tokio::test]
async fn workspace_channels_include_every_non_guest() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let guest = app.register("Guest").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    app.add_to_workspace(&ann, &ws, &guest, "guest").await;
    let open = app.open_channel(&ann, &ws, "all").await;
    let private = app.channel(&ann, &ws, &[]).await;
    let seen = app.get(&format!("/api/conversations?workspace_id={ws}"), &bob).await.expect(200);
    let ids: Vec<&str> = seen.body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![open.as_str()]);
    assert_eq!(seen.body["data"][0]["my_role"], "member");
    app.root(&bob, &open, "hello all").await;
    app.get(&format!("/api/conversations/{private}"), &bob).await.expect_problem(404, "not_found");
    app.get(&format!("/api/conversations/{open}"), &guest).await.expect_problem(404, "not_found");
    assert_eq!(
        app.get(&format!("/api/conversations?workspace_id={ws}"), &guest).await.expect(200).body["data"],
        json!([])
    );
    // Removing someone from the workspace removes their access.
    app.delete(&format!("/api/workspaces/{ws}/members/{}", bob.id), &ann).await.expect(204);
    app.get(&format!("/api/conversations/{open}"), &bob).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn list_orders_by_activity_and_pages() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.channel(&ann, &ws, &[]).await);
    }
    // Activity in the first moves it to the top.
    app.root(&ann, &ids[0], "bump").await;
    let mut expected: Vec<String> = ids[1..].iter().rev().cloned().collect();
    expected.insert(0, ids[0].clone());
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let page = app.get(&format!("/api/conversations?workspace_id={ws}&limit=2{q}"), &ann).await.expect(200);
        seen.extend(page.body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page.body["page"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, expected);
    app.get(&format!("/api/conversations?workspace_id={ws}&cursor=garbage"), &ann)
        .await
        .expect_problem(422, "validation_failed");
    app.get(&format!("/api/conversations?workspace_id={}", ulid::Ulid::generate()), &ann)
        .await
        .expect_problem(404, "not_found");
    // Archived ones move to the archived list.
    app.post(&format!("/api/conversations/{}/archive", ids[2]), &ann, json!({})).await.expect(200);
    let active = app.get(&format!("/api/conversations?workspace_id={ws}&limit=50"), &ann).await.expect(200);
    assert_eq!(active.body["data"].as_array().unwrap().len(), 4);
    let archived = app.get(&format!("/api/conversations?workspace_id={ws}&archived=true"), &ann).await.expect(200);
    assert_eq!(archived.body["data"][0]["id"], ids[2].as_str());
    assert_eq!(archived.body["data"][0]["archived"], true);
}

#[tokio::test]
async fn settings_archive_and_convert() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let group = app
        .post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "group", "member_ids": [bob.id] }))
        .await
        .expect(201)
        .str("id");
    let path = format!("/api/conversations/{group}");
    app.patch(&path, &bob, json!({ "title": "x" })).await.expect_problem(403, "forbidden");
    app.patch(&path, &ann, json!({ "title": "" })).await.expect_problem(422, "validation_failed");
    app.patch(&path, &ann, json!({ "visibility": "workspace" })).await.expect_problem(422, "validation_failed");
    let updated = app.patch(&path, &ann, json!({ "description": "about things" })).await.expect(200);
    assert_eq!(updated.body["description"], "about things");
    assert!(updated.body["title"].is_null());
    app.post(&format!("{path}/convert"), &ann, json!({})).await.expect_problem(422, "validation_failed");
    let converted = app.post(&format!("{path}/convert"), &ann, json!({ "title": "planning" })).await.expect(200);
    assert_eq!(
        (converted.body["kind"].as_str(), converted.body["title"].as_str()),
        (Some("channel"), Some("planning"))
    );
    app.post(&format!("{path}/convert"), &ann, json!({})).await.expect_problem(409, "not_convertible");
    app.patch(&path, &ann, json!({ "visibility": "workspace" })).await.expect(200);

    let root = app.root(&bob, &group, "before archiving").await;
    app.post(&format!("{path}/archive"), &bob, json!({})).await.expect_problem(403, "forbidden");
    app.post(&format!("{path}/archive"), &ann, json!({})).await.expect(200);
    app.post(&format!("/api/threads/{group}/root"), &bob, json!({ "content": "no" }))
        .await
        .expect_problem(409, "conversation_archived");
    app.post(&format!("/api/messages/{root}/reply"), &bob, json!({ "content": "no" }))
        .await
        .expect_problem(409, "conversation_archived");
    app.patch(&path, &ann, json!({ "title": "no" })).await.expect_problem(409, "conversation_archived");
    // Reading still works.
    app.get(&format!("/api/threads/{root}/tree"), &bob).await.expect(200);
    app.post(&format!("{path}/unarchive"), &ann, json!({})).await.expect(200);
    app.reply(&bob, &root, "after unarchiving").await;
}

#[tokio::test]
async fn members_add_remove_leave() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let cat = app.register("Cat").await;
    let out = app.register("Out").await;
    let ws = app.workspace(&ann, &[&bob, &cat]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let members = format!("/api/conversations/{ch}/members");
    app.post(&members, &ann, json!({ "user_id": bob.id, "role": "admin" })).await.expect(201);
    app.post(&members, &ann, json!({ "user_id": bob.id })).await.expect(200);
    app.post(&members, &ann, json!({ "user_id": out.id })).await.expect_problem(422, "validation_failed");
    app.post(&members, &bob, json!({ "user_id": cat.id, "role": "owner" })).await.expect_problem(403, "forbidden");
    app.post(&members, &bob, json!({ "user_id": cat.id, "role": "viewer" })).await.expect(201);
    app.post(&members, &cat, json!({ "user_id": out.id })).await.expect_problem(403, "forbidden");
    let list = app.get(&members, &cat).await.expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 3);
    app.get(&members, &out).await.expect_problem(404, "not_found");

    app.delete(&format!("{members}/{}", ann.id), &bob).await.expect_problem(403, "forbidden");
    app.delete(&format!("{members}/{}", cat.id), &bob).await.expect(204);
    app.get(&format!("/api/conversations/{ch}"), &cat).await.expect_problem(404, "not_found");
    app.delete(&format!("{members}/{}", cat.id), &bob).await.expect_problem(404, "not_found");
    app.post(&format!("/api/conversations/{ch}/leave"), &ann, json!({})).await.expect_problem(409, "last_owner");
    app.post(&format!("/api/conversations/{ch}/leave"), &bob, json!({})).await.expect(204);
    // Alone, the last owner still stays: a conversation never has no owner (nor no member).
    app.post(&format!("/api/conversations/{ch}/leave"), &ann, json!({})).await.expect_problem(409, "last_owner");
    app.get(&format!("/api/conversations/{ch}"), &ann).await.expect(200);
    let members = app.get(&format!("/api/conversations/{ch}/members"), &ann).await.expect(200);
    assert_eq!(members.body["data"][0]["role"], "owner");
}

#[tokio::test]
async fn invites() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let out = app.register("Out").await;
    let cat = app.register("Cat").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.channel(&ann, &ws, &[&bob]).await;
    let invites = format!("/api/conversations/{ch}/invites");
    app.post(&invites, &bob, json!({})).await.expect_problem(403, "forbidden");
    app.post(&invites, &ann, json!({ "role": "owner" })).await.expect_problem(422, "validation_failed");
    app.post(&invites, &ann, json!({ "max_uses": 0 })).await.expect_problem(422, "validation_failed");
    let invite = app.post(&invites, &ann, json!({ "role": "viewer", "max_uses": 1 })).await.expect(201);
    assert_eq!(invite.body["uses"], 0);
    let code = invite.str("code");
    assert!(code.len() >= 32);

    // Someone outside the workspace joins as a guest with the invite's role.
    let joined = app.post(&format!("/api/invites/{code}/accept"), &out, json!({})).await.expect(201);
    assert_eq!(joined.body["my_role"], "viewer");
    let ws_view = app.get(&format!("/api/workspaces/{ws}"), &out).await.expect(200);
    assert_eq!(ws_view.body["my_role"], "guest");
    app.post(&format!("/api/invites/{code}/accept"), &out, json!({})).await.expect(200);
    app.post(&format!("/api/invites/{code}/accept"), &cat, json!({})).await.expect_problem(410, "invite_expired");
    app.post("/api/invites/nope/accept", &cat, json!({})).await.expect_problem(404, "not_found");

    let expiring = app.post(&invites, &ann, json!({ "expires_in_seconds": 1 })).await.expect(201).str("code");
    // The server's clock, not the wall clock, decides (the test's clock moves when told to).
    app.clock.advance(std::time::Duration::from_secs(2));
    app.post(&format!("/api/invites/{expiring}/accept"), &cat, json!({})).await.expect_problem(410, "invite_expired");

    let revoked = app.post(&invites, &ann, json!({})).await.expect(201).str("code");
    app.delete(&format!("{invites}/{revoked}"), &bob).await.expect_problem(403, "forbidden");
    app.delete(&format!("{invites}/{revoked}"), &ann).await.expect(204);
    app.delete(&format!("{invites}/{revoked}"), &ann).await.expect_problem(404, "not_found");
    app.post(&format!("/api/invites/{revoked}/accept"), &cat, json!({})).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn hidden_history_starts_at_joining() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.post("/api/conversations", &ann, json!({ "workspace_id": ws, "kind": "channel", "title": "secret", "history_visible_to_new_members": false })).await.expect(201).str("id");
    let old = app.root(&ann, &ch, "before bob").await;
    app.post(&format!("/api/conversations/{ch}/members"), &ann, json!({ "user_id": bob.id })).await.expect(201);
    let new = app.root(&ann, &ch, "after bob").await;
    let history = app.get(&format!("/api/conversations/{ch}/messages"), &bob).await.expect(200);
    let contents: Vec<&str> =
        history.body["data"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, vec!["after bob"]);
    app.get(&format!("/api/messages/{old}"), &bob).await.expect_problem(404, "not_found");
    app.get(&format!("/api/threads/{old}/tree"), &bob).await.expect_problem(404, "not_found");
    app.post(&format!("/api/messages/{old}/reply"), &bob, json!({ "content": "x" }))
        .await
        .expect_problem(404, "not_found");
    let threads = app.get(&format!("/api/conversations/{ch}/threads"), &bob).await.expect(200);
    assert_eq!(threads.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(threads.body["data"][0]["root_id"], new.as_str());
    // The owner still sees everything.
    let all = app.get(&format!("/api/conversations/{ch}/messages"), &ann).await.expect(200);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_owner_deletes_a_conversation_for_good_after_repeating_its_id() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let eve = app.register("Eve").await;
    let ws = app.workspace(&ann, &[&bob, &eve]).await;
    let conv = app.channel(&ann, &ws, &[&bob]).await;
    let secret = "the plans for the surprise party";
    let root = app.root(&bob, &conv, secret).await;
    app.reply(&ann, &root, &format!("re: {secret}")).await;
    app.put(&format!("/api/messages/{root}/pin"), &ann, json!({})).await.expect(200);
    let path = format!("/api/conversations/{conv}");
    let confirm = json!({ "confirm": conv });

    app.request(reqwest::Method::DELETE, &path, Some(&eve.token), Some(confirm.clone()))
        .await
        .expect_problem(404, "not_found");
    app.request(reqwest::Method::DELETE, &path, Some(&bob.token), Some(confirm.clone()))
        .await
        .expect_problem(403, "forbidden");
    let wrong = app.request(reqwest::Method::DELETE, &path, Some(&ann.token), Some(json!({ "confirm": ws }))).await;
    wrong.expect_problem(422, "validation_failed");
    app.get(&path, &bob).await.expect(200);

    let mut live = SseClient::open(&app, &bob, "/api/stream", None).await;
    app.request(reqwest::Method::DELETE, &path, Some(&ann.token), Some(confirm.clone())).await.expect(204);
    let last = last_event_for(&mut live, &bob.id).await;
    assert_eq!(last.data["conversation_id"], conv.as_str());

    for user in [&ann, &bob] {
        app.get(&path, user).await.expect_problem(404, "not_found");
        let list = app.get(&format!("/api/conversations?workspace_id={ws}"), user).await.expect(200);
        assert!(list.body["data"].as_array().unwrap().iter().all(|c| c["id"] != conv.as_str()));
    }
    app.get(&format!("/api/messages/{root}"), &bob).await.expect_problem(404, "not_found");
    app.request(reqwest::Method::DELETE, &path, Some(&ann.token), Some(confirm)).await.expect_problem(404, "not_found");
    assert_eq!(crate::messaging::traces(&app, secret).await, 0, "no row anywhere keeps the words");

    // A client that was away replays the deletion (and nothing said in the conversation).
    let mut replay = SseClient::open(&app, &bob, "/api/stream", Some("0-0")).await;
    let last = last_event_for(&mut replay, &bob.id).await;
    assert_eq!(last.data["conversation_id"], conv.as_str());
}

/// Reads the stream up to `user`'s `conversation_deleted`, checking nothing of the
/// conversation's content comes before it.
async fn last_event_for(stream: &mut SseClient, user: &str) -> skein_tests::sse::Received {
    loop {
        let event = stream.next().await;
        assert_ne!(event.kind(), "message.created", "the deleted conversation's messages do not replay");
        if event.kind() == "membership.changed"
            && event.data["data"]["change"] == "conversation_deleted"
            && event.data["data"]["user_id"] == user
        {
            return event;
        }
    }
}

#[tokio::test]
async fn members_leave_open_channels_and_join_them_again() {
    let app = TestApp::spawn().await;
    let (ann, bob, carol, guest) =
        (app.register("Ann").await, app.register("Bob").await, app.register("Carol").await, app.register("Gus").await);
    let ws = app.workspace(&ann, &[&bob, &carol]).await;
    app.add_to_workspace(&ann, &ws, &guest, "guest").await;
    let open = app.open_channel(&ann, &ws, "all").await;
    let root = app.root(&ann, &open, "hello all").await;
    let listed = |user| {
        let app = &app;
        let ws = &ws;
        async move {
            let page = app.get(&format!("/api/conversations?workspace_id={ws}"), user).await.expect(200);
            page.body["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let (leave, join) = (format!("/api/conversations/{open}/leave"), format!("/api/conversations/{open}/join"));

    // An implicit member leaves: the channel is gone for them, everywhere, until they join.
    app.post(&leave, &bob, json!({})).await.expect(204);
    assert_eq!(listed(&bob).await, Vec::<String>::new());
    app.get(&format!("/api/conversations/{open}"), &bob).await.expect_problem(404, "not_found");
    app.get(&format!("/api/threads/{root}/tree"), &bob).await.expect_problem(404, "not_found");
    let post = format!("/api/threads/{open}/root");
    app.post(&post, &bob, json!({ "content": "hi" })).await.expect_problem(404, "not_found");
    app.post(&leave, &bob, json!({})).await.expect_problem(404, "not_found");
    assert_eq!(listed(&carol).await, vec![open.clone()], "others still see it");
    // A mention no longer reaches him.
    let mention = format!("<@{}> are you there?", bob.id);
    let posted = app.post(&post, &ann, json!({ "content": mention })).await.expect(201);
    assert_eq!(posted.body["mentions"], json!([]));

    let joined = app.post(&join, &bob, json!({})).await.expect(201);
    assert_eq!((joined.body["id"].as_str(), &joined.body["my_role"]), (Some(open.as_str()), &json!("member")));
    assert_eq!(app.post(&join, &bob, json!({})).await.expect(200).body["my_role"], "member", "joining twice");
    assert_eq!(listed(&bob).await, vec![open.clone()]);
    let members = app.get(&format!("/api/conversations/{open}/members"), &ann).await.expect(200);
    assert!(members.body["data"].as_array().unwrap().iter().any(|m| m["user_id"] == bob.id.as_str()), "explicit now");

    // An explicit member who leaves is hidden the same way, and so is one an admin removes.
    app.post(&leave, &bob, json!({})).await.expect(204);
    assert_eq!(listed(&bob).await, Vec::<String>::new());
    app.post(&join, &bob, json!({})).await.expect(201);
    app.delete(&format!("/api/conversations/{open}/members/{}", bob.id), &ann).await.expect(204);
    assert_eq!(listed(&bob).await, Vec::<String>::new());
    app.post(&join, &bob, json!({})).await.expect(201);

    // Who may not join: guests, and anyone at a private conversation; nobody at an archived one.
    app.post(&join, &guest, json!({})).await.expect_problem(404, "not_found");
    let private = app.channel(&ann, &ws, &[]).await;
    app.post(&format!("/api/conversations/{private}/join"), &bob, json!({})).await.expect_problem(404, "not_found");
    app.post(&leave, &carol, json!({})).await.expect(204);
    app.post(&format!("/api/conversations/{open}/archive"), &ann, json!({})).await.expect(200);
    app.post(&join, &carol, json!({})).await.expect_problem(409, "conversation_archived");
    app.post(&format!("/api/conversations/{}/join", ulid::Ulid::generate()), &bob, json!({}))
        .await
        .expect_problem(404, "not_found");
}

fn listed_ids(body: &serde_json::Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

async fn listed(app: &TestApp, user: &TestUser, path: &str) -> Vec<String> {
    listed_ids(&app.get(path, user).await.expect(200).body)
}

#[tokio::test]
async fn one_inbox_lists_every_workspace_by_activity_with_filters() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.register("Ann").await, app.register("Bob").await);
    let (acme, globex) = (app.workspace(&ann, &[&bob]).await, app.workspace(&bob, &[&ann]).await);
    let private = app.channel(&ann, &acme, &[]).await;
    let open = app.open_channel(&bob, &globex, "all").await;
    let shared = app.channel(&bob, &globex, &[&ann]).await;
    let theirs = app.channel(&bob, &globex, &[]).await;
    // Ann's newest activity: shared, then open, then private.
    app.root(&ann, &private, "p").await;
    let in_open = app.root(&bob, &open, "o").await;
    let in_shared = app.root(&bob, &shared, "s").await;
    app.root(&bob, &theirs, "only bob").await;

    let all = app.get("/api/conversations", &ann).await.expect(200).body;
    assert_eq!(listed_ids(&all), vec![shared.clone(), open.clone(), private.clone()], "across workspaces, no others'");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/conversations?limit=1{cursor}"), &ann).await.expect(200).body;
        paged.extend(listed_ids(&page));
        match page["page"]["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, listed_ids(&all));
    let one = app.get(&format!("/api/conversations?workspace_id={acme}"), &ann).await.expect(200).body;
    assert_eq!(listed_ids(&one), vec![private.clone()]);

    // Unread: Ann has a cursor in the private channel and the shared one (explicit member);
    // she reads the shared one; the open channel has no cursor of hers until she reads it.
    assert_eq!(
        listed(&app, &ann, "/api/conversations?unread=true").await,
        vec![shared.clone()],
        "her own post is not unread; no cursor in open"
    );
    let read = |up_to: &str| json!({ "message_id": up_to });
    app.post(&format!("/api/conversations/{shared}/read"), &ann, read(&in_shared)).await.expect(200);
    assert!(listed(&app, &ann, "/api/conversations?unread=true").await.is_empty());
    app.reply(&bob, &app.root(&ann, &shared, "mine").await, "a reply to it").await;
    assert_eq!(listed(&app, &ann, "/api/conversations?unread=true").await, vec![shared.clone()], "a reply counts too");
    app.post(&format!("/api/conversations/{open}/read"), &ann, read(&in_open)).await.expect(200);
    assert_eq!(listed(&app, &ann, "/api/conversations?unread=true").await, vec![shared.clone()]);
    app.root(&bob, &open, "new in open").await;
    assert_eq!(listed(&app, &ann, "/api/conversations?unread=true").await, vec![open.clone(), shared.clone()]);
    app.put(&format!("/api/conversations/{open}/preferences"), &ann, json!({ "starred": true })).await.expect(200);
    assert_eq!(listed(&app, &ann, "/api/conversations?unread=true&starred=true").await, vec![open]);
}
