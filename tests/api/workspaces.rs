use serde_json::json;
use skein_tests::TestApp;

#[tokio::test]
async fn create_list_get() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.post("/api/workspaces", &ann, json!({ "name": " Acme " })).await.expect(201);
    assert_eq!(ws.body["name"], "Acme");
    assert_eq!(ws.body["my_role"], "owner");
    let id = ws.str("id");
    app.post("/api/workspaces", &ann, json!({ "name": "Second" })).await.expect(201);
    let list = app.get("/api/workspaces?limit=1", &ann).await.expect(200);
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    let next = list.body["page"]["next"].as_str().expect("a second page").to_owned();
    let rest = app.get(&format!("/api/workspaces?limit=1&cursor={next}"), &ann).await.expect(200);
    assert_eq!(rest.body["data"][0]["name"], "Second");
    assert!(rest.body["page"]["next"].is_null());

    app.get(&format!("/api/workspaces/{id}"), &ann).await.expect(200);
    app.get(&format!("/api/workspaces/{id}"), &bob).await.expect_problem(404, "not_found");
    assert_eq!(app.get("/api/workspaces", &bob).await.expect(200).body["data"], json!([]));
    app.post("/api/workspaces", &ann, json!({ "name": "" })).await.expect_problem(422, "validation_failed");
    app.post("/api/workspaces", &ann, json!({ "name": "x".repeat(201) }))
        .await
        .expect_problem(422, "validation_failed");
}

#[tokio::test]
async fn members_by_email_or_id_and_roles() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let cat = app.register("Cat").await;
    let ws = app.workspace(&ann, &[]).await;
    let path = format!("/api/workspaces/{ws}/members");
    let added = app.post(&path, &ann, json!({ "email": bob.email.to_uppercase(), "role": "admin" })).await.expect(201);
    assert_eq!(added.body["role"], "admin");
    assert_eq!(added.body["user_id"], bob.id.as_str());
    app.post(&path, &ann, json!({ "email": bob.email })).await.expect(200);
    app.post(&path, &ann, json!({ "email": "nobody@example.com" })).await.expect_problem(422, "validation_failed");
    app.post(&path, &ann, json!({ "email": "bad" })).await.expect_problem(422, "validation_failed");
    app.post(&path, &ann, json!({})).await.expect_problem(422, "validation_failed");
    app.post(&path, &ann, json!({ "user_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV" }))
        .await
        .expect_problem(422, "validation_failed");
    // Admins add members but not owners.
    app.post(&path, &bob, json!({ "user_id": cat.id, "role": "owner" })).await.expect_problem(403, "forbidden");
    app.post(&path, &bob, json!({ "user_id": cat.id })).await.expect(201);
    // Members add nobody.
    let dan = app.register("Dan").await;
    app.post(&path, &cat, json!({ "user_id": dan.id })).await.expect_problem(403, "forbidden");
    let members = app.get(&path, &cat).await.expect(200);
    assert_eq!(members.body["data"].as_array().unwrap().len(), 3);
    app.get(&path, &dan).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ann_path = format!("/api/workspaces/{ws}/members/{}", ann.id);
    app.patch(&ann_path, &ann, json!({ "role": "member" })).await.expect_problem(409, "last_owner");
    app.delete(&ann_path, &ann).await.expect_problem(409, "last_owner");
    // A member cannot promote themselves.
    let bob_path = format!("/api/workspaces/{ws}/members/{}", bob.id);
    app.patch(&bob_path, &bob, json!({ "role": "owner" })).await.expect_problem(403, "forbidden");
    app.patch(&bob_path, &ann, json!({ "role": "owner" })).await.expect(200);
    // With a second owner, the first may step down and leave.
    app.patch(&ann_path, &ann, json!({ "role": "member" })).await.expect(200);
    app.delete(&ann_path, &ann).await.expect(204);
    app.get(&format!("/api/workspaces/{ws}"), &ann).await.expect_problem(404, "not_found");
    app.delete(&bob_path, &bob).await.expect_problem(409, "last_owner");
    app.patch(&format!("/api/workspaces/{ws}/members/{}", ann.id), &bob, json!({ "role": "admin" }))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn concurrent_demotions_leave_an_owner() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[]).await;
    app.post(&format!("/api/workspaces/{ws}/members"), &ann, json!({ "user_id": bob.id, "role": "owner" }))
        .await
        .expect(201);
    // Each owner demotes the other at the same time: one must be refused.
    let (bob_path, ann_path) =
        (format!("/api/workspaces/{ws}/members/{}", bob.id), format!("/api/workspaces/{ws}/members/{}", ann.id));
    let a = app.patch(&bob_path, &ann, json!({ "role": "member" }));
    let b = app.patch(&ann_path, &bob, json!({ "role": "member" }));
    let (a, b) = tokio::join!(a, b);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert!(statuses == [200, 403] || statuses == [200, 409], "{statuses:?}");
    let members = app.get(&format!("/api/workspaces/{ws}/members"), &ann).await;
    let members =
        if members.status == 200 { members } else { app.get(&format!("/api/workspaces/{ws}/members"), &bob).await };
    let owners = members.body["data"].as_array().unwrap().iter().filter(|m| m["role"] == "owner").count();
    assert_eq!(owners, 1);
}

#[tokio::test]
async fn only_admins_see_members_addresses() {
    let app = TestApp::spawn().await;
    let (ann, bob, gus) = (app.register("Ann").await, app.register("Bob").await, app.register("Gus").await);
    let ws = app.workspace(&ann, &[&bob]).await;
    app.add_to_workspace(&ann, &ws, &gus, "guest").await;
    let path = format!("/api/workspaces/{ws}/members");
    let emails = |body: &serde_json::Value| -> Vec<Option<String>> {
        body["data"].as_array().unwrap().iter().map(|m| m["email"].as_str().map(str::to_owned)).collect()
    };
    let by_admin = app.get(&path, &ann).await.expect(200);
    assert!(emails(&by_admin.body).iter().all(Option::is_some), "{}", by_admin.body);
    for (viewer, own) in [(&bob, &bob.email), (&gus, &gus.email)] {
        let seen = app.get(&path, viewer).await.expect(200);
        let shown: Vec<String> = emails(&seen.body).into_iter().flatten().collect();
        assert_eq!(shown, std::slice::from_ref(own), "only their own: {}", seen.body);
    }
}
