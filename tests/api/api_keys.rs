//! API keys: minted by workspace admins, shown once, stored hashed, acting as a service
//! user limited by scopes and conversations, revoked on every instance at once.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use skein_tests::sse::{SseClient, WsClient};
use skein_tests::{TestApp, TestUser};

struct Setup {
    app: TestApp,
    owner: TestUser,
    member: TestUser,
    ws: String,
    channel: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let member = app.register("Member").await;
    let ws = app.workspace(&owner, &[&member]).await;
    let channel = app.open_channel(&owner, &ws, "support").await;
    Setup { app, owner, member, ws, channel }
}

impl Setup {
    async fn key(&self, scopes: &[&str]) -> TestUser {
        self.app.api_key(&self.owner, &self.ws, json!({ "name": "Support bot", "scopes": scopes })).await
    }
}

#[tokio::test]
async fn a_key_is_shown_once_stored_hashed_and_posts_as_its_service_user() {
    let s = setup().await;
    let created = s
        .app
        .post(
            &format!("/api/workspaces/{}/api-keys", s.ws),
            &s.owner,
            json!({ "name": "CI", "scopes": ["write", "read"] }),
        )
        .await
        .expect(201);
    let secret = created.str("secret");
    assert!(secret.starts_with("sk_skein_") && secret.len() > 40, "{secret}");
    assert!(secret.starts_with(&created.str("prefix")));
    assert_eq!(created.body["scopes"], json!(["read", "write"]), "sorted, once each");
    assert!(created.body["last_used_at"].is_null());

    // Nothing stored is the secret: only its digest.
    let mut db = s.app.db().await;
    let stored: i64 = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT count(*) AS n FROM sessions s JOIN api_keys k ON k.id = s.id \
             WHERE position(convert_to($1, 'UTF8') IN s.token_digest) > 0 OR k.prefix = $1",
        )
        .bind::<diesel::sql_types::Text, _>(&secret),
        &mut db,
    )
    .await
    .map(|row: Count| row.n)
    .unwrap();
    assert_eq!(stored, 0);

    let key = TestUser { id: created.str("user_id"), email: String::new(), token: secret };
    let root = s.app.post(&format!("/api/threads/{}/root", s.channel), &key, json!({ "content": "build green" })).await;
    let root = root.expect(201);
    assert_eq!(root.body["author_id"], json!(key.id));
    assert_eq!(root.body["author_kind"], "service");
    assert_eq!(root.body["via"], json!({ "kind": "api_key", "api_key_id": created.str("id") }));
    let reply_path = format!("/api/messages/{}/reply", root.str("id"));
    let reply = s.app.post(&reply_path, &s.member, json!({ "content": "thanks" })).await.expect(201);
    assert_eq!(reply.body["author_kind"], "user");
    assert_eq!(reply.body["via"], json!({ "kind": "session" }));
    // The service user is a workspace member under the key's name.
    let members = s.app.get(&format!("/api/workspaces/{}/members", s.ws), &s.owner).await.expect(200);
    let bot = members.body["data"].as_array().unwrap().iter().find(|m| m["user_id"] == json!(key.id)).cloned();
    assert_eq!(bot.map(|m| (m["display_name"].clone(), m["role"].clone())), Some((json!("CI"), json!("member"))));

    let listed = s.app.get(&format!("/api/workspaces/{}/api-keys", s.ws), &s.owner).await.expect(200);
    let listed = &listed.body["data"][0];
    assert_eq!(listed["id"], created.body["id"]);
    assert!(listed.get("secret").is_none(), "{listed}");
    assert!(listed["last_used_at"].is_string(), "used since: {listed}");

    // A service user never logs in, and cannot be found by its address.
    let login = s.app.anon_post("/api/auth/login", json!({ "email": key.email, "password": "" })).await;
    login.expect_problem(401, "invalid_credentials");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn only_workspace_admins_manage_keys_and_bad_requests_name_their_fields() {
    let s = setup().await;
    let path = format!("/api/workspaces/{}/api-keys", s.ws);
    let outsider = s.app.register("Outsider").await;
    let body = json!({ "name": "bot", "scopes": ["read"] });
    s.app.post(&path, &s.member, body.clone()).await.expect_problem(403, "forbidden");
    s.app.post(&path, &outsider, body.clone()).await.expect_problem(404, "not_found");
    s.app.get(&path, &s.member).await.expect_problem(403, "forbidden");

    let other_ws = s.app.workspace(&outsider, &[]).await;
    let foreign = s.app.open_channel(&outsider, &other_ws, "elsewhere").await;
    let bad = json!({
        "name": " ",
        "scopes": [],
        "conversation_ids": [foreign],
        "expires_at": "2001-01-01T00:00:00Z",
    });
    let res = s.app.post(&path, &s.owner, bad).await.expect_problem(422, "validation_failed");
    let mut fields: Vec<&str> =
        res.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["expires_at", "name", "scopes"], "{}", res.body);
    let res =
        s.app.post(&path, &s.owner, json!({ "name": "b", "scopes": ["read"], "conversation_ids": [foreign] })).await;
    let res = res.expect_problem(422, "validation_failed");
    assert_eq!(res.body["errors"][0]["field"], "conversation_ids[0]");
    // The index is the request's own, whatever the ids' order (the channel's id sorts first).
    let listed = json!({ "name": "b", "scopes": ["read"], "conversation_ids": [foreign, s.channel] });
    let res = s.app.post(&path, &s.owner, listed).await.expect_problem(422, "validation_failed");
    assert_eq!(res.body["errors"][0]["field"], "conversation_ids[0]");
    let listed = json!({ "name": "b", "scopes": ["read"], "conversation_ids": [s.channel, foreign] });
    let res = s.app.post(&path, &s.owner, listed).await.expect_problem(422, "validation_failed");
    assert_eq!(res.body["errors"][0]["field"], "conversation_ids[1]");
    let res = s.app.post(&path, &s.owner, json!({ "name": "b", "scopes": ["admin"], "conversation_ids": [s.channel] }));
    res.await.expect_problem(422, "validation_failed");
    // An unknown scope is not a shape the body can have.
    let res = s.app.post(&path, &s.owner, json!({ "name": "b", "scopes": ["root"] })).await;
    res.expect_problem(400, "malformed_json");
}

#[tokio::test]
async fn scopes_limit_what_a_key_may_call() {
    let s = setup().await;
    let root = s.app.root(&s.owner, &s.channel, "question").await;
    let (read, write, assistant, admin) =
        (s.key(&["read"]).await, s.key(&["read", "write"]).await, s.key(&["assistant"]).await, s.key(&["admin"]).await);
    let tree = format!("/api/threads/{root}/tree");
    let reply = format!("/api/messages/{root}/reply");
    let generate = format!("/api/messages/{root}/generate");

    s.app.get(&tree, &read).await.expect(200);
    s.app.get(&tree, &write).await.expect(200);
    s.app.get(&tree, &assistant).await.expect_problem(403, "insufficient_scope");
    let refused = s.app.post(&reply, &read, json!({ "content": "hi" })).await.expect_problem(403, "insufficient_scope");
    assert!(refused.body["detail"].as_str().unwrap().contains("`write`"), "{}", refused.body);
    s.app.post(&reply, &write, json!({ "content": "hi" })).await.expect(201);
    // Asking for an answer is the assistant scope's, also through a reply.
    s.app.post(&generate, &write, json!({})).await.expect_problem(403, "insufficient_scope");
    s.app
        .post(&reply, &write, json!({ "content": "hi", "generate": true }))
        .await
        .expect_problem(403, "insufficient_scope");
    // Past the scope check: this workspace has no assistant.
    s.app.post(&generate, &assistant, json!({})).await.expect_problem(409, "no_assistant");
    // Marking read changes only the key's own state: `read` covers it.
    let mark = json!({ "message_id": root });
    s.app.post(&format!("/api/conversations/{}/read", s.channel), &read, mark).await.expect(200);

    // Admin covers the rest, yet some routes are people's only.
    let newcomer = s.app.register("Newcomer").await;
    let add = json!({ "user_id": newcomer.id });
    s.app.post(&format!("/api/workspaces/{}/members", s.ws), &admin, add).await.expect(201);
    for (method, path) in [
        (Method::POST, "/api/workspaces".to_owned()),
        (Method::GET, format!("/api/workspaces/{}/api-keys", s.ws)),
        (Method::POST, "/api/auth/logout".to_owned()),
    ] {
        let body = (method == Method::POST).then(|| json!({ "name": "x", "scopes": ["read"] }));
        let res = s.app.request(method, &path, Some(&admin.token), body).await;
        res.expect_problem(403, "insufficient_scope");
    }

    // Over the WebSocket, typing is a write.
    let token = s.app.post("/api/stream/token", &read, json!({})).await.expect(200).str("token");
    let mut socket = WsClient::open(&s.app, &read, &format!("token={token}"), None).await.unwrap();
    socket.send(json!({ "type": "typing", "conversation_id": s.channel, "typing": true })).await;
    let refused = socket.next().await;
    assert_eq!(refused["type"], "ack");
    assert_eq!(refused["data"]["problem"]["code"], "insufficient_scope");
    let send = json!({ "type": "send", "request_id": "r", "conversation_id": s.channel, "root": true, "content": "x" });
    socket.send(send).await;
    let refused = socket.next().await;
    assert_eq!((refused["data"]["request_id"].as_str(), refused["data"]["status"].as_u64()), (Some("r"), Some(403)));
}

#[tokio::test]
async fn a_key_limited_to_conversations_sees_only_those() {
    let s = setup().await;
    let private = s.app.channel(&s.owner, &s.ws, &[&s.member]).await;
    let hidden_root = s.app.root(&s.owner, &private, "not for the bot").await;
    let key = s
        .app
        .api_key(
            &s.owner,
            &s.ws,
            json!({ "name": "Triage", "scopes": ["read", "write"], "conversation_ids": [s.channel] }),
        )
        .await;
    s.app.get(&format!("/api/conversations/{}", s.channel), &key).await.expect(200);
    s.app.root(&key, &s.channel, "on it").await;
    s.app.get(&format!("/api/conversations/{private}"), &key).await.expect_problem(404, "not_found");
    s.app.get(&format!("/api/threads/{hidden_root}/tree"), &key).await.expect_problem(404, "not_found");
    let listed = s.app.get(&format!("/api/conversations?workspace_id={}", s.ws), &key).await.expect(200);
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [s.channel.as_str()]);
    let open = s.app.open_channel(&s.owner, &s.ws, "x").await;
    let joined = s.app.post(&format!("/api/conversations/{open}/join"), &key, json!({})).await;
    assert_eq!(joined.status, 404, "a guest cannot join: {}", joined.body);

    // No one can widen it: not into another conversation, not into another workspace.
    let add = json!({ "user_id": key.id });
    s.app
        .post(&format!("/api/conversations/{private}/members"), &s.owner, add.clone())
        .await
        .expect_problem(403, "forbidden");
    let other_ws = s.app.workspace(&s.owner, &[]).await;
    s.app.post(&format!("/api/workspaces/{other_ws}/members"), &s.owner, add).await.expect_problem(403, "forbidden");
}

#[tokio::test]
async fn a_revoked_or_expired_key_is_refused_on_every_instance_at_once() {
    for fanout in [skein_infra::realtime::FanoutMode::Postgres, skein_infra::realtime::FanoutMode::Nats] {
        let app = TestApp::spawn_with(|config| config.realtime.fanout.mode = fanout).await;
        let peer = app.peer().await;
        let owner = app.register("Owner").await;
        let ws = app.workspace(&owner, &[]).await;
        let created = app
            .post(&format!("/api/workspaces/{ws}/api-keys"), &owner, json!({ "name": "bot", "scopes": ["read"] }))
            .await;
        let created = created.expect(201);
        let key = created.str("secret");
        // Both instances have looked the key up (and cached its session); a stream is open
        // on the peer.
        app.request(Method::GET, "/api/me", Some(&key), None).await.expect(200);
        peer.request(Method::GET, "/api/me", Some(&key), None).await.expect(200);
        let service = TestUser { id: created.str("user_id"), email: String::new(), token: key.clone() };
        let mut stream = SseClient::open(&peer, &service, "/api/stream", None).await;

        let revoke = format!("/api/workspaces/{ws}/api-keys/{}", created.str("id"));
        app.delete(&revoke, &owner).await.expect(204);
        app.request(Method::GET, "/api/me", Some(&key), None).await.expect_problem(401, "unauthenticated");
        let deadline = Instant::now() + skein_infra::store::sessions::FRESH_FOR / 4;
        while peer.request(Method::GET, "/api/me", Some(&key), None).await.status != 401 {
            assert!(Instant::now() < deadline, "{fanout:?}: the peer still accepts the revoked key");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Its stream ends with it, saying why last.
        let mut last = None;
        loop {
            match stream.next_within(Duration::from_secs(5)).await {
                Ok(None) => break,
                Ok(Some(event)) => last = Some(event),
                Err(()) => panic!("{fanout:?}: the revoked key's stream is still open"),
            }
        }
        let last = last.expect("a final event");
        assert_eq!((last.kind(), last.data["data"]["code"].as_str()), ("error", Some("unauthenticated")));
        app.delete(&revoke, &owner).await.expect_problem(404, "not_found");
        let listed = app.get(&format!("/api/workspaces/{ws}/api-keys"), &owner).await.expect(200);
        assert_eq!(listed.body["data"], json!([]));
    }

    let app = TestApp::spawn().await;
    let owner = app.register("Owner").await;
    let ws = app.workspace(&owner, &[]).await;
    let expires_at =
        (app.clock.now() + time::Duration::days(20)).format(&time::format_description::well_known::Rfc3339);
    let body = json!({ "name": "temp", "scopes": ["read"], "expires_at": expires_at.unwrap() });
    let key = app.api_key(&owner, &ws, body).await;
    app.get("/api/me", &key).await.expect(200);
    // Keys do not idle out as people's sessions do (after 7 days), but they do expire.
    let day = Duration::from_secs(24 * 3600);
    app.clock.advance(day * 8);
    app.get("/api/me", &owner).await.expect_problem(401, "unauthenticated");
    app.get("/api/me", &key).await.expect(200);
    app.clock.advance(day * 13);
    app.get("/api/me", &key).await.expect_problem(401, "unauthenticated");
}

/// Every operation of the document, called with API keys: one that holds every scope but
/// the one its `bearer` requirement names is refused with `insufficient_scope`, one that
/// holds just that scope is not (whatever else it then gets); people-only operations refuse
/// even an admin key. So the document tells integrators the truth about every route.
#[tokio::test]
async fn every_operation_enforces_the_scope_the_document_names() {
    let s = setup().await;
    let all = ["read", "write", "assistant"];
    let mut keys = std::collections::HashMap::new();
    for scope in all {
        let others: Vec<&str> = all.iter().copied().filter(|s| *s != scope).collect();
        keys.insert(format!("only {scope}"), s.key(&[scope]).await);
        keys.insert(format!("all but {scope}"), s.key(&others).await);
    }
    let admin = s.key(&["admin"]).await;
    let doc = crate::contract::document();
    let mut checked = 0;
    for (method, path, operation) in crate::contract::operations(&doc) {
        let Some(bearer) = operation["security"].as_array().and_then(|alts| alts.iter().find_map(|a| a.get("bearer")))
        else {
            continue; // public
        };
        // Ids that exist nowhere: the scope is checked before anything is looked up.
        let url = path
            .split('/')
            .map(|part| match part.starts_with('{') {
                true if part == "{code}" => "nocode".to_owned(),
                true if part == "{emoji}" => "%F0%9F%91%8D".to_owned(),
                true => ulid::Ulid::generate().to_string(),
                false => part.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let refused = |key: &TestUser| {
            let (app, method, url) = (&s.app, method.clone(), url.clone());
            let token = key.token.clone();
            async move {
                let mut req = app.http.request(method.clone(), format!("{}{url}", app.base)).bearer_auth(token);
                if method != Method::GET {
                    req = req.json(&json!({}));
                }
                let res = req.send().await.unwrap();
                if res.status() != 403 {
                    return false; // never read a stream's body
                }
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                [&body["code"], &body["error"]["code"]].iter().any(|c| c.as_str() == Some("insufficient_scope"))
            }
        };
        match bearer.as_array().unwrap().first().and_then(|s| s.as_str()) {
            Some(scope) => {
                assert!(refused(&keys[&format!("all but {scope}")]).await, "{method} {path} without `{scope}`");
                assert!(!refused(&keys[&format!("only {scope}")]).await, "{method} {path} with `{scope}`");
                assert!(!refused(&admin).await, "{method} {path} with `admin`");
            }
            None => assert!(refused(&admin).await, "{method} {path} is people-only"),
        }
        checked += 1;
    }
    assert!(checked > 60, "only {checked} operations");
}

/// The holes a review found: a key's scopes hold however the request is spelled or carried.
#[tokio::test]
async fn a_key_cannot_slip_past_its_scopes_by_encoding_cookies_or_role_changes() {
    let s = setup().await;
    let (admin, write) = (s.key(&["admin"]).await, s.key(&["read", "write"]).await);
    // `%6B` is `k`: the route is the people-only key route all the same.
    let encoded = format!("/api/workspaces/{}/api-%6Beys", s.ws);
    let res = s.app.post(&encoded, &admin, json!({ "name": "x", "scopes": ["read"] })).await;
    res.expect_problem(403, "insufficient_scope");
    let root = s.app.root(&s.owner, &s.channel, "q").await;
    let res = s.app.post(&format!("/api/messages/{root}/gener%61te"), &write, json!({})).await;
    res.expect_problem(403, "insufficient_scope");
    // A path no route has is a 404, even for a key.
    s.app.get("/api/no-such-thing", &write).await.expect_problem(404, "route_not_found");

    // A key is a bearer credential only: as the session cookie it is no session at all.
    let res = s
        .app
        .http
        .post(format!("{}/api/threads/{}/root", s.app.base, s.channel))
        .header("cookie", format!("skein_session={}", write.token))
        .json(&json!({ "content": "through the cookie" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // A key's role is its key's: a guest key does not become a member by a role change.
    let guest = s
        .app
        .api_key(&s.owner, &s.ws, json!({ "name": "g", "scopes": ["read"], "conversation_ids": [s.channel] }))
        .await;
    let promote = json!({ "role": "member" });
    let res = s.app.patch(&format!("/api/workspaces/{}/members/{}", s.ws, guest.id), &s.owner, promote).await;
    res.expect_problem(403, "forbidden");
}
