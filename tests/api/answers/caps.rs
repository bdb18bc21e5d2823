//! What a member may ask a provider for: the models it offers, and a bounded `max_tokens`.

use super::*;

#[tokio::test]
async fn a_provider_without_a_model_list_offers_only_its_configured_models() {
    let s = setup_with(|c| {
        c.llm.providers[0].allowed_models = Vec::new();
        c.llm.providers[0].context_windows.insert("tokens-3".into(), 4096);
    })
    .await;
    let root = s.thread("which model?").await;
    let path = format!("/api/messages/{root}/generate");
    let asked = async |model: &str| s.app.post(&path, &s.member, json!({ "model": model })).await;
    let refused = asked("gpt-5-pro-expensive").await.expect_problem(422, "validation_failed");
    assert_eq!(
        (refused.body["errors"][0]["field"].as_str(), refused.body["errors"][0]["code"].as_str()),
        (Some("model"), Some("not_allowed"))
    );
    asked(&"x".repeat(5000)).await.expect_problem(422, "validation_failed");
    // The default and the models with a configured context window are offered.
    asked("tokens-5").await.expect(201);
    asked("tokens-3").await.expect(201);
    let ws = s.app.get(&format!("/api/conversations/{}", s.conv), &s.owner).await.expect(200).str("workspace_id");
    let assistant = json!({ "name": "Pricey", "provider": "fake", "model": "gpt-5-pro-expensive" });
    s.app
        .post(&format!("/api/workspaces/{ws}/assistants"), &s.owner, assistant)
        .await
        .expect_problem(422, "validation_failed");
}

#[tokio::test]
async fn max_tokens_is_capped_by_the_instance_and_the_assistant() {
    let s = setup_with(|c| c.llm.max_tokens_cap = 4000).await;
    let root = s.thread("how long?").await;
    let generate = format!("/api/messages/{root}/generate");
    let asked = async |max_tokens: u32| s.app.post(&generate, &s.member, json!({ "max_tokens": max_tokens })).await;
    let refused = asked(1_000_000).await.expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "max_tokens");
    asked(4001).await.expect_problem(422, "validation_failed");
    let answer = asked(4000).await.expect(201);
    s.ended(answer.str("id").as_str()).await;
    // Workspace admins set a lower ceiling per assistant.
    let ws = s.app.get(&format!("/api/conversations/{}", s.conv), &s.owner).await.expect(200).str("workspace_id");
    let path = format!("/api/workspaces/{ws}/assistants/{}", s.assistant);
    s.app.patch(&path, &s.owner, json!({ "max_tokens": 5000 })).await.expect_problem(422, "validation_failed");
    s.app.patch(&path, &s.owner, json!({ "max_tokens": 100 })).await.expect(200);
    asked(101).await.expect_problem(422, "validation_failed");
    let answer = asked(100).await.expect(201);
    s.ended(answer.str("id").as_str()).await;
    assert_eq!(s.llm.bodies().last().unwrap()["max_tokens"], json!(100));
}
