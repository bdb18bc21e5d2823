//! The OpenAI-compatible endpoint's own rules (the official SDKs' suites in `tests/openai/`
//! drive the rest): errors in OpenAI's shape, scopes, models, the thread-bound path's checks.

use reqwest::Method;
use serde_json::json;
use skein_tests::fake_llm::FakeLlm;
use skein_tests::{TestApp, TestUser};

struct Setup {
    app: TestApp,
    owner: TestUser,
    ws: String,
    _llm: FakeLlm,
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

async fn setup_with(adjust: impl FnOnce(&mut skein_server::config::Config)) -> Setup {
    let llm = FakeLlm::start().await;
    let provider = llm.provider("fake");
    let app = TestApp::spawn_with(|config| {
        config.llm.providers = vec![provider];
        adjust(config);
    })
    .await;
    let owner = app.register("Owner").await;
    let ws = app.workspace(&owner, &[]).await;
    let body = json!({ "name": "Helper", "provider": "fake", "model": "tokens-3" });
    app.post(&format!("/api/workspaces/{ws}/assistants"), &owner, body).await.expect(201);
    Setup { app, owner, ws, _llm: llm }
}

/// A long proxied completion, streaming (its first chunk has arrived).
async fn streaming_proxy(s: &Setup) -> reqwest::Response {
    let mut long = ask("fake/tokens-400-every-20");
    long["stream"] = json!(true);
    let url = format!("{}/v1/chat/completions", s.app.base);
    let mut first = s.app.http.post(url).bearer_auth(&s.owner.token).json(&long).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.chunk().await.unwrap().is_some(), "streaming");
    first
}

fn ask(model: &str) -> serde_json::Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] })
}

#[tokio::test]
async fn errors_are_in_openai_shape_and_scopes_apply() {
    let s = setup().await;
    let path = "/v1/chat/completions";
    let anonymous = s.app.request(Method::POST, path, None, Some(ask("Helper"))).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.body["error"]["type"], "authentication_error");
    assert_eq!(anonymous.body["error"]["code"], "invalid_api_key");
    assert_eq!(anonymous.headers["content-type"], "application/json");

    let res = s.app.post(path, &s.owner, json!({ "model": "Helper" })).await;
    assert_eq!((res.status, res.body["error"]["type"].as_str()), (400, Some("invalid_request_error")), "{}", res.body);
    let res = s.app.post(path, &s.owner, json!({ "model": "Helper", "messages": [] })).await;
    assert_eq!((res.status, res.body["error"]["param"].as_str()), (400, Some("messages")), "{}", res.body);
    let parts = json!({ "model": "Helper", "messages": [{ "role": "user", "content": [{ "type": "image_url" }] }] });
    let res = s.app.post(path, &s.owner, parts).await;
    assert_eq!(res.body["error"]["param"], "messages[0].content", "{}", res.body);

    let huge = json!({ "model": "Helper", "messages": [{ "role": "user", "content": "x".repeat(300 * 1024) }] });
    let res = s.app.post(path, &s.owner, huge).await;
    assert_eq!((res.status, res.body["error"]["code"].as_str()), (413, Some("payload_too_large")), "{}", res.body);

    let read = s.app.api_key(&s.owner, &s.ws, json!({ "name": "reader", "scopes": ["read"] })).await;
    let res = s.app.post(path, &read, ask("Helper")).await;
    assert_eq!((res.status, res.body["error"]["code"].as_str()), (403, Some("insufficient_scope")), "{}", res.body);
    let models = s.app.get("/v1/models", &read).await.expect(200);
    let ids: Vec<&str> = models.body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["Helper", "fake/tokens-5"]);

    let answer = s.app.post(path, &s.owner, ask("Helper")).await.expect(200);
    assert_eq!(answer.body["choices"][0]["message"]["content"], "t0 t1 t2 ");
    assert!(answer.body.get("skein").is_none(), "nothing stored: {}", answer.body);
}

#[tokio::test]
async fn a_thread_bound_call_needs_a_thread_the_caller_can_post_in() {
    let s = setup().await;
    let path = "/v1/chat/completions";
    let conversation = s.app.channel(&s.owner, &s.ws, &[]).await;
    let root = s.app.root(&s.owner, &conversation, "the thread").await;
    let reply = s.app.reply(&s.owner, &root, "a reply").await;
    let bound = |thread: &str, model: &str| {
        let mut body = ask(model);
        body["metadata"] = json!({ "skein_thread": thread });
        body
    };
    // Not a root; not an assistant; not visible to the caller.
    let res = s.app.post(path, &s.owner, bound(&reply, "Helper")).await;
    assert_eq!((res.status, res.body["error"]["param"].as_str()), (400, Some("metadata.skein_thread")), "{}", res.body);
    let res = s.app.post(path, &s.owner, bound(&root, "fake/tokens-2")).await;
    assert_eq!(res.body["error"]["param"], "model", "{}", res.body);
    let outsider = s.app.register("Outsider").await;
    let res = s.app.post(path, &outsider, bound(&root, "Helper")).await;
    assert_eq!(res.status, 400, "an outsider has no assistant named so: {}", res.body);
    let stranger_key =
        s.app.api_key(&s.owner, &s.ws, json!({ "name": "k", "scopes": ["read", "write", "assistant"] })).await;
    let res = s.app.post(path, &stranger_key, bound(&root, "Helper")).await;
    assert_eq!((res.status, res.body["error"]["type"].as_str()), (404, Some("not_found_error")), "{}", res.body);

    // By header, as the owner: the reply goes at the thread's newest message.
    let res = s
        .app
        .http
        .post(format!("{}{path}", s.app.base))
        .bearer_auth(&s.owner.token)
        .header("x-skein-thread", &root)
        .json(&ask("Helper"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let asked = body["skein"]["message_id"].as_str().unwrap();
    let message = s.app.get(&format!("/api/messages/{asked}"), &s.owner).await.expect(200);
    assert_eq!(
        (message.body["parent_id"].as_str(), message.body["via"]["kind"].as_str()),
        (Some(reply.as_str()), Some("openai"))
    );
}

#[tokio::test]
async fn a_key_without_the_assistant_scope_starts_no_answer() {
    let s = setup().await;
    let assistants = s.app.get(&format!("/api/workspaces/{}/assistants", s.ws), &s.owner).await.expect(200);
    let helper = assistants.body["data"][0]["id"].as_str().unwrap().to_owned();
    let conversation = s.app.channel(&s.owner, &s.ws, &[]).await;
    let writer = s
        .app
        .api_key(
            &s.owner,
            &s.ws,
            json!({ "name": "w", "scopes": ["read", "write"], "conversation_ids": [conversation] }),
        )
        .await;
    // A mention would ask the assistant; the key may not spend on it, so the root is all.
    let body = json!({ "content": format!("<@{helper}> what is up?") });
    let root = s.app.post(&format!("/api/threads/{conversation}/root"), &writer, body).await.expect(201).str("id");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let tree = s.app.get(&format!("/api/threads/{root}/tree"), &s.owner).await.expect(200);
    assert_eq!(tree.body["data"].as_array().unwrap().len(), 1, "{}", tree.body);
    // The owner's mention does ask.
    let body = json!({ "content": format!("<@{helper}> and you?") });
    let asked = s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, body).await.expect(201);
    assert!(asked.body["assistant_message"].is_object(), "{}", asked.body);
}

#[tokio::test]
async fn a_proxied_completion_takes_room_as_an_answer_does() {
    let s = setup_with(|config| config.llm.max_running_per_instance = 1).await;
    let path = "/v1/chat/completions";
    let first = streaming_proxy(&s).await;
    let busy = s.app.post(path, &s.owner, ask("fake/tokens-1")).await;
    assert_eq!((busy.status, busy.body["error"]["type"].as_str()), (503, Some("api_error")), "{}", busy.body);
    assert!(busy.headers.contains_key("retry-after"));
    drop(first);
    // Its room comes back when the client goes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let res = s.app.post(path, &s.owner, ask("fake/tokens-1")).await;
        if res.status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the room was not given back: {}", res.body);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A plain proxy is bounded as answers are: the per-user limit of running answers, the
/// token quota (checked before the provider is asked), and its usage counts toward it.
#[tokio::test]
async fn a_proxied_completion_counts_toward_the_user_s_limits() {
    let s = setup_with(|config| {
        config.llm.max_running_per_user = 1;
        // One tokens-5 completion costs 12 (7 prompt + 5), as the fake reports.
        config.rate_limits.daily_tokens = Some(20);
    })
    .await;
    let path = "/v1/chat/completions";
    let first = streaming_proxy(&s).await;
    let limited = s.app.post(path, &s.owner, ask("fake/tokens-5")).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while s.app.post(path, &s.owner, ask("fake/tokens-5")).await.status != 200 {
        assert!(std::time::Instant::now() < deadline, "the user's room was not given back");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The dropped stream never reported usage; this one did: 12 of 20.
    let limits = s.app.get("/api/me/limits", &s.owner).await.expect(200).body;
    assert_eq!(limits["quotas"][0]["used"], json!(12), "{limits}");
    s.app.post(path, &s.owner, ask("fake/tokens-5")).await.expect(200);
    let refused = s.app.post(path, &s.owner, ask("fake/tokens-5")).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body["error"]["message"].as_str().unwrap_or_default().contains("quota"), "{}", refused.body);
    let _ = &s.ws;
}
