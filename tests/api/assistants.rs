//! Assistants of a workspace: admins manage them, members read them, outsiders see nothing;
//! providers and models are checked against the server's configuration.

use serde_json::json;
use skein_infra::answers::ProviderConfig;
use skein_tests::TestApp;

/// A server with two configured providers (nothing is called: no generation here).
async fn app_with_providers() -> TestApp {
    TestApp::spawn_with(|config| {
        let provider = |name: &str, default_model: &str, allowed: &[&str]| ProviderConfig {
            name: name.into(),
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key_env: None,
            default_model: default_model.into(),
            allowed_models: allowed.iter().map(|m| (*m).to_owned()).collect(),
            request_timeout_secs: 5,
            context_windows: Default::default(),
            default_context_window: 8192,
        };
        config.llm.providers =
            vec![provider("local", "llama3.2", &[]), provider("cloud", "small", &["small", "large"])];
    })
    .await
}

#[tokio::test]
async fn admins_manage_assistants_members_read_them_outsiders_see_nothing() {
    let app = app_with_providers().await;
    let (owner, member, outsider) = (app.register("Ann").await, app.register("Bob").await, app.register("Eve").await);
    let ws = app.workspace(&owner, &[&member]).await;
    let path = format!("/api/workspaces/{ws}/assistants");

    let created = app
        .post(&path, &owner, json!({ "name": "  Helper ", "provider": "local", "system_prompt": "Be brief." }))
        .await
        .expect(201);
    assert_eq!(created.body["name"], "Helper");
    assert_eq!(created.body["model"], "llama3.2", "the provider's default model");
    assert_eq!(created.body["workspace_id"], ws.as_str());
    let id = created.str("id");
    let one = format!("{path}/{id}");

    // Members read; they cannot manage.
    let listed = app.get(&path, &member).await.expect(200);
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
    app.get(&one, &member).await.expect(200);
    app.post(&path, &member, json!({ "name": "Mine", "provider": "local" })).await.expect_problem(403, "forbidden");
    app.patch(&one, &member, json!({ "name": "Mine" })).await.expect_problem(403, "forbidden");
    app.delete(&one, &member).await.expect_problem(403, "forbidden");
    // Outsiders cannot tell the workspace or the assistant exists.
    app.get(&path, &outsider).await.expect_problem(404, "not_found");
    app.get(&one, &outsider).await.expect_problem(404, "not_found");

    // Changes: a new provider without a model takes its default; an empty prompt removes it.
    let changed = app
        .patch(&one, &owner, json!({ "provider": "cloud", "system_prompt": "", "temperature": 0.2, "max_tokens": 300 }))
        .await
        .expect(200);
    assert_eq!((changed.body["provider"].as_str(), changed.body["model"].as_str()), (Some("cloud"), Some("small")));
    assert_eq!(changed.body["system_prompt"], serde_json::Value::Null);
    assert_eq!(changed.body["max_tokens"], 300);
    assert_eq!(app.get(&one, &member).await.expect(200).body["model"], "small");

    // Deleted: gone from reads and lists.
    app.delete(&one, &owner).await.expect(204);
    app.get(&one, &owner).await.expect_problem(404, "not_found");
    assert_eq!(app.get(&path, &owner).await.expect(200).body["data"], json!([]));
}

#[tokio::test]
async fn providers_models_and_settings_are_validated() {
    let app = app_with_providers().await;
    let owner = app.register("Ann").await;
    let ws = app.workspace(&owner, &[]).await;
    let path = format!("/api/workspaces/{ws}/assistants");
    let field = |body: &serde_json::Value| {
        let errors = body["errors"].as_array().expect("field errors");
        errors
            .iter()
            .map(|e| format!("{}:{}", e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };

    let res = app.post(&path, &owner, json!({ "name": "x", "provider": "nowhere" })).await.expect(422);
    assert_eq!(field(&res.body), ["provider:unknown"]);
    let res = app.post(&path, &owner, json!({ "name": "x", "provider": "cloud", "model": "huge" })).await.expect(422);
    assert_eq!(field(&res.body), ["model:not_allowed"]);
    let res = app
        .post(&path, &owner, json!({ "name": "", "provider": "local", "temperature": 3.5, "max_tokens": 0 }))
        .await
        .expect(422);
    let mut fields = field(&res.body);
    fields.sort();
    assert_eq!(fields, ["max_tokens:out_of_range", "name:required", "temperature:out_of_range"]);
    app.post(&path, &owner, json!({ "name": "x", "provider": "cloud", "model": "large" })).await.expect(201);
}
