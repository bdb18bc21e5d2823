//! Daily quotas: refused before anything is stored or any provider is called, counted from
//! what was stored and what the provider reported, exactly once.

use reqwest::Method;

use super::*;

async fn count_messages(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut db = app.db().await;
    let count: Count =
        diesel_async::RunQueryDsl::get_result(diesel::sql_query("SELECT count(*) AS n FROM messages"), &mut db)
            .await
            .unwrap();
    count.n
}

#[tokio::test]
async fn the_token_quota_refuses_before_the_provider_or_the_database_sees_anything() {
    // One answer of tokens-5 costs 12 tokens (7 prompt + 5 completion, as the fake reports).
    let s = setup_with(|c| c.rate_limits.daily_tokens = Some(20)).await;
    let root = s.thread("first").await;
    let answer = s.generate(&root, "tokens-5").await;
    assert_eq!(s.ended(answer["id"].as_str().unwrap()).await["status"], "complete");
    let limits = s.app.get("/api/me/limits", &s.owner).await.expect(200).body;
    let tokens: Vec<&Value> = limits["quotas"].as_array().unwrap().iter().filter(|q| q["kind"] == "tokens").collect();
    assert_eq!((tokens[0]["used"].as_u64(), tokens[0]["remaining"].as_u64()), (Some(12), Some(8)));

    // 8 left: one more answer may start (it may cross the quota and finishes whole).
    let second = s.generate(&root, "tokens-5").await;
    s.ended(second["id"].as_str().unwrap()).await;
    let (requests, messages) = (s.llm.requests(), count_messages(&s.app).await);
    let refused = s
        .app
        .post(&format!("/api/messages/{root}/generate"), &s.owner, json!({ "model": "tokens-5" }))
        .await
        .expect_problem(429, "quota_exceeded");
    assert!(refused.body["resets_at"].as_str().unwrap().ends_with("T00:00:00Z"), "{}", refused.body);
    assert!(refused.headers.get("retry-after").is_some());
    // A reply asking for an answer is refused whole: no reply stored either.
    let reply = json!({ "content": "again?", "generate": true });
    s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, reply).await.expect_problem(429, "quota_exceeded");
    assert_eq!((s.llm.requests(), count_messages(&s.app).await), (requests, messages));
    // Others have their own quota; a plain reply needs no tokens.
    s.app.post(&format!("/api/messages/{root}/generate"), &s.member, json!({ "model": "tokens-5" })).await.expect(201);
    s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, json!({ "content": "ok" })).await.expect(201);
    // Tomorrow it starts again.
    s.app.clock.advance(Duration::from_secs(24 * 3600));
    s.generate(&root, "tokens-5").await;
}

#[tokio::test]
async fn message_quotas_per_caller_per_profile_and_per_workspace() {
    let s = setup_with(|c| {
        // Profiles (and their quotas) apply only with limits on.
        c.rate_limits.enabled = true;
        c.rate_limits.daily_messages = Some(4);
        c.rate_limits.workspace_daily_messages = Some(6);
    })
    .await;
    let path = format!("/api/threads/{}/root", s.conv);
    let post = async |user: &TestUser, n: usize| {
        let body = json!({ "content": format!("m{n}") });
        s.app.request(Method::POST, &path, Some(&user.token), Some(body)).await
    };
    for n in 0..4 {
        post(&s.owner, n).await.expect(201);
    }
    let refused = post(&s.owner, 4).await.expect_problem(429, "quota_exceeded");
    assert!(refused.body["detail"].as_str().unwrap().contains("messages"));
    // A profile's quota overrides the configured one for whoever it applies to.
    let profile = s
        .app
        .post(
            "/api/admin/rate-limit-profiles",
            &s.owner,
            json!({ "name": "chatty", "rules": [], "quotas": { "daily_messages": 5 } }),
        )
        .await
        .expect(201)
        .str("id");
    s.app
        .put(
            "/api/admin/rate-limit-assignments",
            &s.owner,
            json!({ "subject": { "kind": "user", "id": s.owner.id }, "profile_id": profile }),
        )
        .await
        .expect(204);
    post(&s.owner, 5).await.expect(201);
    post(&s.owner, 6).await.expect_problem(429, "quota_exceeded");
    // The workspace's 6 are shared: the member has one left of them.
    post(&s.member, 0).await.expect(201);
    post(&s.member, 1).await.expect_problem(429, "quota_exceeded");
    let mine = s.app.get("/api/me/limits", &s.member).await.expect(200).body;
    assert_eq!(mine["quotas"][0]["kind"], "messages");
    assert_eq!((mine["quotas"][0]["limit"].as_u64(), mine["quotas"][0]["used"].as_u64()), (Some(4), Some(1)));
}
