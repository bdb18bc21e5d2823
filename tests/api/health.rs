use reqwest::Method;
use serde_json::json;
use skein_tests::TestApp;

#[tokio::test]
async fn health_readiness_and_docs_need_no_token() {
    let app = TestApp::spawn().await;
    assert_eq!(app.request(Method::GET, "/healthz", None, None).await.expect(200).body["status"], "ok");
    assert_eq!(app.request(Method::GET, "/readyz", None, None).await.expect(200).body["status"], "ready");
    let doc = app.request(Method::GET, "/api/openapi.json", None, None).await.expect(200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    let docs = app.http.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI is served from the binary");
}

#[tokio::test]
async fn readiness_fails_when_migrations_are_missing() {
    let app = TestApp::spawn().await;
    let mut conn = app.db().await;
    use diesel_async::RunQueryDsl;
    diesel::sql_query("DELETE FROM __diesel_schema_migrations").execute(&mut conn).await.unwrap();
    let res = app.request(Method::GET, "/readyz", None, None).await.expect(503);
    // Only the state: why goes to the log.
    assert_eq!(res.body, json!({ "status": "not_ready" }));
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = TestApp::spawn().await;
    let served = app.request(Method::GET, "/api/openapi.json", None, None).await.expect(200).body;
    let committed: serde_json::Value = serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    assert!(served == committed, "openapi/openapi.json is stale: run `cargo xtask openapi`");
}

#[tokio::test]
async fn unknown_routes_and_bad_ids_are_problem_404s() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    app.get("/api/nope", &ann).await.expect_problem(404, "route_not_found");
    app.get("/api/messages/not-a-ulid", &ann).await.expect_problem(404, "not_found");
    app.get("/api/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV", &ann).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn malformed_bodies_get_stable_codes() {
    let app = TestApp::spawn_with(|c| c.server.body_limit_bytes = 1024).await;
    let ann = app.register("Ann").await;
    let url = format!("{}/api/workspaces", app.base);
    let send = |body: &'static str, content_type: &'static str| {
        app.http.post(&url).bearer_auth(&ann.token).header("content-type", content_type).body(body).send()
    };
    let res = send("{\"name\":", "application/json").await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "malformed_json");
    let res = send("{\"name\": 5}", "application/json").await.unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "malformed_json");
    // A body read whole (`/generate`'s) has the same limit.
    let big: &'static str = Box::leak("x".repeat(2048).into_boxed_str());
    let generate = app.http.post(format!("{}/api/messages/01ARZ3NDEKTSV4RRFFQ69G5FAV/generate", app.base));
    let res =
        generate.bearer_auth(&ann.token).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "payload_too_large");
    let res = send("{\"name\":\"x\"}", "text/plain").await.unwrap();
    assert_eq!(res.status(), 415);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["code"], "unsupported_media_type");
    let big = json!({ "name": "x".repeat(2000) });
    app.post("/api/workspaces", &ann, big).await.expect_problem(413, "payload_too_large");
    // Nothing was created by any of these.
    let list = app.get("/api/workspaces", &ann).await.expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::spawn().await;
    let res = app.http.get(format!("{}/healthz", app.base)).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app.http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 26);
}
