//! Search never shows what the caller may not read: non-members, removed members, members who
//! joined with history hidden, guests, left workspace channels, other workspaces.

use std::collections::BTreeSet;

use serde_json::json;
use skein_tests::{TestApp, TestUser};

use super::all_hits;

async fn found(app: &TestApp, user: &TestUser, extra: &[(&str, &str)]) -> BTreeSet<String> {
    let mut params = vec![("q", "secret ")];
    params.extend_from_slice(extra);
    all_hits(app, user, &params, 50).await.into_iter().collect()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

#[tokio::test]
async fn no_hit_leaks_past_membership_history_or_departure() {
    let app = TestApp::spawn().await;
    let (ann, bob, carol) = (app.register("Ann").await, app.register("Bob").await, app.register("Carol").await);
    let (gus, late, outsider) = (app.register("Gus").await, app.register("Late").await, app.register("Out").await);
    let ws = app.workspace(&ann, &[&bob, &carol, &late]).await;
    app.add_to_workspace(&ann, &ws, &gus, "guest").await;
    let elsewhere = app.workspace(&outsider, &[]).await;

    let private = app.channel(&ann, &ws, &[&bob]).await;
    let open = app.open_channel(&ann, &ws, "all").await;
    let guests = app.channel(&ann, &ws, &[&gus]).await;
    let hidden = app
        .post(
            "/api/conversations",
            &ann,
            json!({ "workspace_id": ws, "kind": "channel", "title": "h", "history_visible_to_new_members": false }),
        )
        .await
        .expect(201)
        .str("id");
    let in_private = app.root(&ann, &private, "secret plans").await;
    let in_open = app.root(&ann, &open, "secret for all").await;
    let in_guests = app.root(&ann, &guests, "secret for guests").await;
    let before_joining = app.root(&ann, &hidden, "secret before").await;
    let theirs = app.root(&outsider, &app.channel(&outsider, &elsewhere, &[]).await, "secret elsewhere").await;
    app.post(&format!("/api/conversations/{hidden}/members"), &ann, json!({ "user_id": late.id })).await.expect(201);
    let after_joining = app.reply(&ann, &before_joining, "secret after").await;
    let deleted = app.root(&ann, &open, "secret deleted").await;
    app.delete(&format!("/api/messages/{deleted}"), &ann).await.expect(200);

    assert_eq!(
        found(&app, &ann, &[]).await,
        set(&[&in_private, &in_open, &in_guests, &before_joining, &after_joining])
    );
    assert_eq!(found(&app, &bob, &[]).await, set(&[&in_private, &in_open]), "a member of private; open for all");
    assert_eq!(found(&app, &carol, &[]).await, set(&[&in_open]), "not a member of private");
    assert_eq!(found(&app, &gus, &[]).await, set(&[&in_guests]), "guests only see where they were added");
    assert_eq!(found(&app, &late, &[]).await, set(&[&in_open, &after_joining]), "history before joining is hidden");
    assert_eq!(found(&app, &outsider, &[]).await, set(&[&theirs]));

    // Asking for what one may not see is 404, as everywhere else.
    let not_found = async |user: &TestUser, key: &str, value: &str| {
        app.search(user, &[("q", "secret"), (key, value)]).await.expect_problem(404, "not_found");
    };
    not_found(&carol, "conversation_id", &private).await;
    not_found(&gus, "conversation_id", &open).await;
    not_found(&outsider, "workspace_id", &ws).await;
    not_found(&late, "root_id", &before_joining).await;
    not_found(&carol, "root_id", &in_private).await;
    not_found(&ann, "root_id", &after_joining).await;
    let thread = found(&app, &ann, &[("root_id", &before_joining)]).await;
    assert_eq!(thread, set(&[&before_joining, &after_joining]));

    // Removed: gone at once.
    app.delete(&format!("/api/conversations/{private}/members/{}", bob.id), &ann).await.expect(204);
    assert_eq!(found(&app, &bob, &[]).await, set(&[&in_open]));

    // Left a workspace channel: hidden unless asked for, then found again.
    app.post(&format!("/api/conversations/{open}/leave"), &carol, json!({})).await.expect(204);
    assert!(found(&app, &carol, &[]).await.is_empty());
    not_found(&carol, "conversation_id", &open).await;
    assert_eq!(found(&app, &carol, &[("include_hidden", "true")]).await, set(&[&in_open]));
    let asked = found(&app, &carol, &[("include_hidden", "true"), ("conversation_id", &open)]).await;
    assert_eq!(asked, set(&[&in_open]));
    assert!(found(&app, &gus, &[("include_hidden", "true")]).await.len() == 1, "guests gain nothing by asking");
}

#[tokio::test]
async fn include_hidden_shows_only_what_rejoining_would() {
    let app = TestApp::spawn().await;
    let (ann, carol) = (app.register("Ann").await, app.register("Carol").await);
    let ws = app.workspace(&ann, &[&carol]).await;
    let open = |title: &'static str, history: bool| {
        let body = json!({ "workspace_id": ws, "kind": "channel", "title": title, "visibility": "workspace",
            "history_visible_to_new_members": history });
        async { app.post("/api/conversations", &ann, body).await.expect(201).str("id") }
    };
    let (visible, hidden, archived) = (open("v", true).await, open("h", false).await, open("a", true).await);
    let in_visible = app.root(&ann, &visible, "secret one").await;
    app.root(&ann, &hidden, "secret two").await;
    app.root(&ann, &archived, "secret three").await;
    for conversation in [&visible, &hidden, &archived] {
        app.post(&format!("/api/conversations/{conversation}/join"), &carol, json!({})).await;
        app.post(&format!("/api/conversations/{conversation}/leave"), &carol, json!({})).await.expect(204);
    }
    app.post(&format!("/api/conversations/{archived}/archive"), &ann, json!({})).await.expect(200);

    // Rejoining the hidden-history channel would show nothing from before; the archived one
    // cannot be rejoined at all.
    assert_eq!(found(&app, &carol, &[("include_hidden", "true")]).await, set(&[&in_visible]));
    let asked =
        app.search(&carol, &[("q", "secret"), ("include_hidden", "true"), ("conversation_id", &archived)]).await;
    asked.expect_problem(404, "not_found");
}
