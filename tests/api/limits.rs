//! Rate-limit profiles, their assignment and enforcement, and the admin API around them.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use skein_tests::client::Resp;
use skein_tests::sse::{SseClient, WsClient};
use skein_tests::{TestApp, TestUser};

async fn limited_app() -> TestApp {
    TestApp::spawn_with(|c| c.rate_limits.enabled = true).await
}

/// A profile of `rules` (`(class, burst, per_seconds)`), made by `admin`; its id.
async fn profile(app: &TestApp, admin: &TestUser, name: &str, rules: &[(&str, u32, u32)]) -> String {
    let rules: Vec<Value> =
        rules.iter().map(|(c, b, p)| json!({ "route_class": c, "burst": b, "per_seconds": p })).collect();
    app.post("/api/admin/rate-limit-profiles", admin, json!({ "name": name, "rules": rules }))
        .await
        .expect(201)
        .str("id")
}

async fn assign(app: &TestApp, admin: &TestUser, kind: &str, id: Option<&str>, profile: Option<&str>) {
    let subject = match id {
        Some(id) => json!({ "kind": kind, "id": id }),
        None => json!({ "kind": kind }),
    };
    app.put("/api/admin/rate-limit-assignments", admin, json!({ "subject": subject, "profile_id": profile }))
        .await
        .expect(204);
}

fn header<'a>(res: &'a Resp, name: &str) -> &'a str {
    res.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header: {res:?}"))
}

async fn post_root(app: &TestApp, user: &TestUser, conversation: &str, n: usize) -> Resp {
    app.post(&format!("/api/threads/{conversation}/root"), user, json!({ "content": format!("message {n}") })).await
}

#[tokio::test]
async fn a_burst_passes_the_next_request_is_refused_with_headers_and_the_budget_refills() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&admin, &[&user]).await;
    let channel = app.channel(&admin, &ws, &[&user]).await;
    let tight = profile(&app, &admin, "tight", &[("post", 3, 30)]).await;
    assign(&app, &admin, "user", Some(&user.id), Some(&tight)).await;

    for n in 0..3 {
        let res = post_root(&app, &user, &channel, n).await.expect(201);
        assert_eq!(header(&res, "ratelimit-policy"), "\"post\";q=3;w=30");
        assert_eq!(header(&res, "ratelimit"), format!("\"post\";r={};t={}", 2 - n, (n + 1) * 10));
    }
    let refused = post_root(&app, &user, &channel, 3).await.expect_problem(429, "rate_limited");
    assert_eq!(header(&refused, "retry-after"), "10");
    assert_eq!(header(&refused, "ratelimit"), "\"post\";r=0;t=30");
    assert_eq!(header(&refused, "ratelimit-policy"), "\"post\";q=3;w=30");
    // Nothing was stored for the refused request.
    let threads = app.get(&format!("/api/conversations/{channel}/threads"), &user).await.expect(200);
    assert_eq!(threads.body["data"].as_array().unwrap().len(), 3);
    // A class the profile has no rule for is not limited (no headers); other users have
    // their own budget, under the default profile.
    let read = app.get(&format!("/api/conversations/{channel}/threads"), &user).await.expect(200);
    assert!(read.headers.get("ratelimit").is_none());
    let theirs = app.get(&format!("/api/conversations/{channel}/threads"), &admin).await.expect(200);
    assert!(header(&theirs, "ratelimit").starts_with("\"read\";r="));
    post_root(&app, &admin, &channel, 0).await.expect(201);

    // One interval later one request passes; a full window later a whole burst does.
    app.clock.advance(Duration::from_secs(10));
    post_root(&app, &user, &channel, 4).await.expect(201);
    post_root(&app, &user, &channel, 5).await.expect_problem(429, "rate_limited");
    app.clock.advance(Duration::from_secs(30));
    for n in 6..9 {
        post_root(&app, &user, &channel, n).await.expect(201);
    }
    post_root(&app, &user, &channel, 9).await.expect_problem(429, "rate_limited");

    // Taking the profile away puts the user back on the default (30 per 30 s).
    assign(&app, &admin, "user", Some(&user.id), None).await;
    let res = post_root(&app, &user, &channel, 10).await.expect(201);
    assert_eq!(header(&res, "ratelimit-policy"), "\"post\";q=30;w=30");
}

#[tokio::test]
async fn two_instances_share_one_budget_and_an_admin_change_applies_on_both_at_once() {
    let app = limited_app().await;
    let peer = app.peer().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&admin, &[&user]).await;
    let channel = app.channel(&admin, &ws, &[&user]).await;
    let id = profile(&app, &admin, "shared", &[("post", 6, 60)]).await;
    assign(&app, &admin, "user", Some(&user.id), Some(&id)).await;

    // Twelve requests at once, half to each instance: exactly the burst passes.
    let attempts = (0..12).map(|n| {
        let target = if n % 2 == 0 { &app } else { &peer };
        post_root(target, &user, &channel, n)
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts).await.into_iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 6, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 6, "{statuses:?}");

    // Raised on one instance, the next request on the other follows it: the six used carry
    // over, so fourteen are left.
    app.patch(
        &format!("/api/admin/rate-limit-profiles/{id}"),
        &admin,
        json!({ "rules": [{ "route_class": "post", "burst": 20, "per_seconds": 60 }] }),
    )
    .await
    .expect(200);
    let res = post_root(&peer, &user, &channel, 12).await.expect(201);
    assert_eq!(header(&res, "ratelimit-policy"), "\"post\";q=20;w=60");
    assert_eq!(header(&res, "ratelimit"), "\"post\";r=13;t=21");
}

#[tokio::test]
async fn the_most_specific_assignment_wins() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&admin, &[&user]).await;
    let other_ws = app.workspace(&admin, &[&user]).await;
    let channel = app.open_channel(&admin, &ws, "open").await;
    let elsewhere = app.channel(&admin, &other_ws, &[&user]).await;
    let key = app.api_key(&admin, &ws, json!({ "name": "bot", "scopes": ["read", "write"] })).await;
    let policy = |res: &Resp| header(res, "ratelimit-policy").to_owned();

    let workspace = profile(&app, &admin, "workspace", &[("post", 7, 70)]).await;
    let personal = profile(&app, &admin, "personal", &[("post", 8, 80)]).await;
    let for_key = profile(&app, &admin, "key", &[("post", 9, 90)]).await;
    let fresh = profile(&app, &admin, "fresh-default", &[("post", 5, 50)]).await;

    assign(&app, &admin, "workspace", Some(&ws), Some(&workspace)).await;
    // About the workspace's conversation, its profile; elsewhere the default.
    assert_eq!(policy(&post_root(&app, &user, &channel, 0).await.expect(201)), "\"post\";q=7;w=70");
    assert_eq!(policy(&post_root(&app, &user, &elsewhere, 0).await.expect(201)), "\"post\";q=30;w=30");
    // A key of the workspace has its workspace's profile wherever it goes.
    assert_eq!(policy(&post_root(&app, &key, &channel, 0).await.expect(201)), "\"post\";q=7;w=70");
    // The user's own beats the workspace's; the key's own beats both.
    assign(&app, &admin, "user", Some(&user.id), Some(&personal)).await;
    assert_eq!(policy(&post_root(&app, &user, &channel, 1).await.expect(201)), "\"post\";q=8;w=80");
    let key_id = app.get(&format!("/api/workspaces/{ws}/api-keys"), &admin).await.expect(200).body["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assign(&app, &admin, "api_key", Some(&key_id), Some(&for_key)).await;
    assert_eq!(policy(&post_root(&app, &key, &channel, 1).await.expect(201)), "\"post\";q=9;w=90");
    // Moving the instance default moves everyone without a profile of their own.
    assign(&app, &admin, "instance", None, Some(&fresh)).await;
    assert_eq!(policy(&post_root(&app, &admin, &elsewhere, 1).await.expect(201)), "\"post\";q=5;w=50");
    let listed = app.get("/api/admin/rate-limit-profiles", &admin).await.expect(200);
    let defaults: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["is_default"] == json!(true))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["fresh-default"]);
    // The default cannot be deleted; another can, and its subjects fall back.
    app.delete(&format!("/api/admin/rate-limit-profiles/{fresh}"), &admin).await.expect_problem(403, "forbidden");
    app.delete(&format!("/api/admin/rate-limit-profiles/{personal}"), &admin).await.expect(204);
    assert_eq!(policy(&post_root(&app, &user, &channel, 2).await.expect(201)), "\"post\";q=7;w=70");
}

#[tokio::test]
async fn me_limits_shows_the_profile_and_what_is_left() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&admin, &[&user]).await;
    let channel = app.channel(&admin, &ws, &[&user]).await;
    let id = profile(&app, &admin, "small", &[("post", 4, 40), ("search", 2, 10)]).await;
    assign(&app, &admin, "user", Some(&user.id), Some(&id)).await;
    post_root(&app, &user, &channel, 0).await.expect(201);

    let mine = app.get("/api/me/limits", &user).await.expect(200).body;
    assert_eq!(mine["enabled"], json!(true));
    assert_eq!(mine["profile"], json!({ "id": id, "name": "small", "assigned_to": "user" }));
    assert_eq!(
        mine["classes"],
        json!([
            { "route_class": "post", "burst": 4, "per_seconds": 40, "remaining": 3, "reset_secs": 10 },
            { "route_class": "search", "burst": 2, "per_seconds": 10, "remaining": 2, "reset_secs": 0 },
        ])
    );
    let seen_by_admin = app.get(&format!("/api/admin/users/{}/limits", user.id), &admin).await.expect(200).body;
    assert_eq!(seen_by_admin["classes"], mine["classes"]);
    let admins = app.get("/api/me/limits", &admin).await.expect(200).body;
    assert_eq!(admins["profile"]["assigned_to"], json!("instance"));
}

#[tokio::test]
async fn only_instance_admins_reach_the_admin_api() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&user, &[]).await;
    let key = app.api_key(&user, &ws, json!({ "name": "bot", "scopes": ["admin"] })).await;
    let body = json!({ "name": "x", "rules": [] });
    app.get("/api/admin/rate-limit-profiles", &user).await.expect_problem(403, "forbidden");
    app.post("/api/admin/rate-limit-profiles", &user, body.clone()).await.expect_problem(403, "forbidden");
    app.get("/api/admin/users", &user).await.expect_problem(403, "forbidden");
    app.get(&format!("/api/admin/users/{}/limits", admin.id), &user).await.expect_problem(403, "forbidden");
    app.get("/api/admin/users", &key).await.expect_problem(403, "insufficient_scope");
    // Bad profiles are refused field by field.
    let bad = json!({ "name": " ", "rules": [
        { "route_class": "post", "burst": 0, "per_seconds": 10 },
        { "route_class": "post", "burst": 5, "per_seconds": 100000 },
    ]});
    let refused =
        app.post("/api/admin/rate-limit-profiles", &admin, bad).await.expect_problem(422, "validation_failed");
    let fields: Vec<&str> =
        refused.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "rules[0].burst", "rules[1].route_class", "rules[1].per_seconds"]);
    profile(&app, &admin, "dup", &[]).await;
    let taken = app.post("/api/admin/rate-limit-profiles", &admin, json!({ "name": "dup", "rules": [] })).await;
    taken.expect_problem(422, "validation_failed");
    // Assigning to what does not exist.
    let ghost = ulid::Ulid::generate().to_string();
    let res = app
        .put(
            "/api/admin/rate-limit-assignments",
            &admin,
            json!({ "subject": { "kind": "user", "id": ghost }, "profile_id": null }),
        )
        .await;
    res.expect_problem(404, "not_found");
}

#[tokio::test]
async fn sign_ins_are_limited_per_client_address() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let id = profile(&app, &admin, "strict", &[("auth", 3, 60)]).await;
    assign(&app, &admin, "instance", None, Some(&id)).await;
    // Each profile has its own budget: the admin's registration was the default's.
    let login = json!({ "email": admin.email, "password": "wrong password" });
    for _ in 0..3 {
        app.anon_post("/api/auth/login", login.clone()).await.expect_problem(401, "invalid_credentials");
    }
    // Even the right password, and registering, wait now: the address's budget is spent.
    let right = json!({ "email": admin.email, "password": "correct horse battery" });
    let refused = app.anon_post("/api/auth/login", right.clone()).await.expect_problem(429, "rate_limited");
    assert!(header(&refused, "ratelimit").starts_with("\"auth\";r=0"));
    let register = json!({ "email": "new@example.com", "password": "correct horse battery", "display_name": "N" });
    app.anon_post("/api/auth/register", register).await.expect_problem(429, "rate_limited");
    app.clock.advance(Duration::from_secs(20));
    app.anon_post("/api/auth/login", right).await.expect(200);
}

#[tokio::test]
async fn websocket_frames_spend_their_class_budget() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws_id = app.workspace(&admin, &[&user]).await;
    let channel = app.channel(&admin, &ws_id, &[&user]).await;
    let id = profile(&app, &admin, "frames", &[("post", 2, 60)]).await;
    assign(&app, &admin, "user", Some(&user.id), Some(&id)).await;
    let mut socket = WsClient::open(&app, &user, "", None).await.unwrap();
    let mut statuses = Vec::new();
    for n in 0..3 {
        let frame = json!({ "type": "send", "root": true, "conversation_id": channel, "content": format!("f{n}"), "request_id": format!("r{n}") });
        socket.send(frame).await;
        let ack = loop {
            let event = socket.next().await;
            if event["type"] == "ack" {
                break event;
            }
        };
        statuses.push(ack["data"]["status"].as_u64().unwrap());
        if n == 2 {
            assert_eq!(ack["data"]["problem"]["code"], json!("rate_limited"));
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    // REST and the socket spend one budget.
    post_root(&app, &user, &channel, 9).await.expect_problem(429, "rate_limited");
}

#[tokio::test]
async fn a_disabled_account_loses_its_sessions_streams_and_keys_at_once() {
    let app = limited_app().await;
    let admin = app.register("Admin").await;
    let user = app.register("User").await;
    let ws = app.workspace(&user, &[]).await;
    let key = app.api_key(&user, &ws, json!({ "name": "bot", "scopes": ["read"] })).await;
    app.get("/api/me", &key).await.expect(200);
    let mut stream = SseClient::open(&app, &user, "/api/stream", None).await;

    let listed = app.get("/api/admin/users?q=USER", &admin).await.expect(200);
    let found: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(found, [user.id.as_str()]);
    let all = app.get("/api/admin/users", &admin).await.expect(200);
    let kinds: Vec<&str> = all.body["data"].as_array().unwrap().iter().map(|u| u["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["person", "person", "service"]);

    let disabled = app.patch(&format!("/api/admin/users/{}", user.id), &admin, json!({ "disabled": true })).await;
    assert!(disabled.expect(200).body["disabled_at"].is_string());
    app.get("/api/me", &user).await.expect_problem(401, "unauthenticated");
    app.get("/api/me", &key).await.expect_problem(401, "unauthenticated");
    let mut last = None;
    loop {
        match stream.next_within(Duration::from_secs(5)).await {
            Ok(None) => break,
            Ok(Some(event)) => last = Some(event),
            Err(()) => panic!("the disabled account's stream is still open"),
        }
    }
    assert_eq!(last.expect("a final event").data["data"]["code"], json!("unauthenticated"));
    // The right password is answered as a wrong one: no guess is confirmed.
    let login = json!({ "email": user.email, "password": "correct horse battery" });
    app.anon_post("/api/auth/login", login.clone()).await.expect_problem(401, "invalid_credentials");
    // Admins cannot lock themselves out; enabling lets the user back in.
    app.patch(&format!("/api/admin/users/{}", admin.id), &admin, json!({ "disabled": true }))
        .await
        .expect_problem(403, "forbidden");
    app.patch(&format!("/api/admin/users/{}", user.id), &admin, json!({ "disabled": false })).await.expect(200);
    let back = app.anon_post("/api/auth/login", login).await.expect(200);
    app.request(Method::GET, "/api/me", Some(&back.str("token")), None).await.expect(200);
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_streams() {
    let app = TestApp::spawn_with(|c| {
        c.realtime.max_streams_per_user = 2;
        c.realtime.keep_alive_secs = 1;
    })
    .await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let first = SseClient::open(&app, &ann, "/api/stream", None).await;
    let _socket = WsClient::open(&app, &ann, "", None).await.unwrap();
    let refused = SseClient::try_open(&app, Some(&ann.token), "/api/stream", None).await;
    assert_eq!(refused.err().map(|(status, body)| (status, body["code"].clone())), Some((429, json!("rate_limited"))));
    assert_eq!(WsClient::open(&app, &ann, "", None).await.err(), Some(429));
    // Others are not affected; a closed stream gives its slot back (once the server notices).
    SseClient::open(&app, &bob, "/api/stream", None).await;
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while SseClient::try_open(&app, Some(&ann.token), "/api/stream", None).await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the closed stream's slot was not given back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
