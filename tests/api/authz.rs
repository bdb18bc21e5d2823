//! Every endpoint × {anonymous, non-member, viewer, member, admin, owner}: the status each
//! gets. A caller who may not see a thing gets 404; one who may see but not act gets 403.

use reqwest::Method;
use serde_json::{Value, json};
use skein_infra::answers::ProviderConfig;
use skein_tests::fake_llm::FakeLlm;
use skein_tests::{TestApp, TestUser};

/// Conversation roles plus the two outsiders, in matrix column order.
const ROLES: [&str; 6] = ["anonymous", "non-member", "viewer", "member", "admin", "owner"];

struct Fixture {
    app: TestApp,
    ws: String,
    conversation: String,
    root: String,
    /// `users[i]` acts as `ROLES[i]` (`None` for anonymous).
    users: Vec<Option<TestUser>>,
    owner: TestUser,
}

async fn fixture() -> Fixture {
    fixture_on(TestApp::spawn().await).await
}

async fn fixture_on(app: TestApp) -> Fixture {
    let owner = app.register("Owner").await;
    let non_member = app.register("NonMember").await;
    let viewer = app.register("Viewer").await;
    let member = app.register("Member").await;
    let admin = app.register("Admin").await;
    let ws = app.workspace(&owner, &[&non_member, &viewer, &member, &admin]).await;
    let conversation = app.channel(&owner, &ws, &[]).await;
    for (user, role) in [(&viewer, "viewer"), (&member, "member"), (&admin, "admin")] {
        app.post(
            &format!("/api/conversations/{conversation}/members"),
            &owner,
            json!({ "user_id": user.id, "role": role }),
        )
        .await
        .expect(201);
    }
    let root = app.root(&owner, &conversation, "root").await;
    let users = vec![None, Some(non_member), Some(viewer), Some(member), Some(admin), Some(owner.clone())];
    Fixture { app, ws, conversation, root, users, owner }
}

impl Fixture {
    async fn call(&self, role: usize, method: Method, path: &str, body: Option<Value>) -> u16 {
        let token = self.users[role].as_ref().map(|u| u.token.as_str());
        self.app.request(method, path, token, body).await.status
    }

    /// A fresh workspace member, for endpoints that consume a target per call.
    async fn spare_user(&self) -> TestUser {
        let user = self.app.register("Spare").await;
        self.app
            .post(&format!("/api/workspaces/{}/members", self.ws), &self.owner, json!({ "user_id": user.id }))
            .await
            .expect(201);
        user
    }
}

/// Runs `call` for every role and compares the statuses with `expected`.
macro_rules! matrix {
    ($fx:expr, $name:expr, $expected:expr, |$role:ident| $call:expr) => {{
        let mut got = Vec::new();
        for $role in 0..ROLES.len() {
            got.push($call);
        }
        assert_eq!(got, $expected.to_vec(), "{}: statuses for {:?}", $name, ROLES);
    }};
}

#[tokio::test]
async fn conversation_endpoints() {
    let fx = fixture().await;
    let (c, root) = (fx.conversation.clone(), fx.root.clone());
    const READ: [u16; 6] = [401, 404, 200, 200, 200, 200];
    const ADMIN_OK: [u16; 6] = [401, 404, 403, 403, 200, 200];
    for path in [
        format!("/api/conversations/{c}"),
        format!("/api/conversations/{c}/members"),
        format!("/api/conversations/{c}/threads"),
        format!("/api/conversations/{c}/messages"),
        format!("/api/threads/{root}/tree"),
        format!("/api/messages/{root}"),
    ] {
        matrix!(fx, path, READ, |r| fx.call(r, Method::GET, &path, None).await);
    }
    matrix!(fx, "patch", ADMIN_OK, |r| fx
        .call(r, Method::PATCH, &format!("/api/conversations/{c}"), Some(json!({ "description": "d" })))
        .await);
    matrix!(fx, "archive+unarchive", ADMIN_OK, |r| {
        let status = fx.call(r, Method::POST, &format!("/api/conversations/{c}/archive"), None).await;
        if status == 200 {
            assert_eq!(fx.call(r, Method::POST, &format!("/api/conversations/{c}/unarchive"), None).await, 200);
        }
        status
    });
    matrix!(fx, "unarchive", ADMIN_OK, |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{c}/unarchive"), None)
        .await);
    // A channel cannot be converted: admins learn why, others are stopped first.
    matrix!(fx, "convert", [401, 404, 403, 403, 409, 409], |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{c}/convert"), Some(json!({})))
        .await);
    matrix!(fx, "add member", [401, 404, 403, 403, 201, 201], |r| {
        let spare = fx.spare_user().await;
        fx.call(r, Method::POST, &format!("/api/conversations/{c}/members"), Some(json!({ "user_id": spare.id }))).await
    });
    matrix!(fx, "remove member", [401, 404, 403, 403, 204, 204], |r| {
        let spare = fx.spare_user().await;
        fx.app
            .post(&format!("/api/conversations/{c}/members"), &fx.owner, json!({ "user_id": spare.id }))
            .await
            .expect(201);
        fx.call(r, Method::DELETE, &format!("/api/conversations/{c}/members/{}", spare.id), None).await
    });
    matrix!(fx, "create invite", [401, 404, 403, 403, 201, 201], |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{c}/invites"), Some(json!({})))
        .await);
    matrix!(fx, "revoke invite", [401, 404, 403, 403, 204, 204], |r| {
        let code =
            fx.app.post(&format!("/api/conversations/{c}/invites"), &fx.owner, json!({})).await.expect(201).str("code");
        fx.call(r, Method::DELETE, &format!("/api/conversations/{c}/invites/{code}"), None).await
    });
    // Anyone signed in may use an invite; those already in it get 200.
    matrix!(fx, "accept invite", [401, 201, 200, 200, 200, 200], |r| {
        let code =
            fx.app.post(&format!("/api/conversations/{c}/invites"), &fx.owner, json!({})).await.expect(201).str("code");
        fx.call(r, Method::POST, &format!("/api/invites/{code}/accept"), None).await
    });
}

#[tokio::test]
async fn posting_endpoints() {
    let fx = fixture().await;
    let (c, root) = (fx.conversation.clone(), fx.root.clone());
    const POST: [u16; 6] = [401, 404, 403, 201, 201, 201];
    matrix!(fx, "root", POST, |r| fx
        .call(r, Method::POST, &format!("/api/threads/{c}/root"), Some(json!({ "content": "hi" })))
        .await);
    matrix!(fx, "reply", POST, |r| fx
        .call(r, Method::POST, &format!("/api/messages/{root}/reply"), Some(json!({ "content": "hi" })))
        .await);
}

#[tokio::test]
async fn answer_endpoints() {
    let llm = FakeLlm::start().await;
    let fx = fixture_on(
        TestApp::spawn_with(|config| {
            config.llm.providers = vec![ProviderConfig {
                default_model: "tokens-2".into(),
                request_timeout_secs: 5,
                ..llm.provider("fake")
            }];
        })
        .await,
    )
    .await;
    let (app, c, owner) = (&fx.app, fx.conversation.clone(), &fx.owner);
    let assistants = format!("/api/workspaces/{}/assistants", fx.ws);
    let assistant =
        app.post(&assistants, owner, json!({ "name": "A", "provider": "fake" })).await.expect(201).str("id");
    let root = || async {
        let body = json!({ "content": "q", "settings": { "assistant_id": assistant } });
        app.post(&format!("/api/threads/{c}/root"), owner, body).await.expect(201).str("id")
    };
    let answer = || async {
        let parent = root().await;
        let id = app.post(&format!("/api/messages/{parent}/generate"), owner, json!({})).await.expect(201).str("id");
        for _ in 0..200 {
            if app.get(&format!("/api/messages/{id}"), owner).await.body["status"] != "streaming" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        id
    };
    const READ: [u16; 6] = [401, 404, 200, 200, 200, 200];
    const ACT: [u16; 6] = [401, 404, 403, 200, 200, 200];
    matrix!(fx, "generate", [401, 404, 403, 201, 201, 201], |r| {
        let parent = root().await;
        fx.call(r, Method::POST, &format!("/api/messages/{parent}/generate"), Some(json!({}))).await
    });
    let done = answer().await;
    for path in [format!("/api/messages/{done}/chunks"), format!("/api/messages/{done}/stream")] {
        matrix!(fx, path, READ, |r| fx.call(r, Method::GET, &path, None).await);
    }
    matrix!(fx, "cancel", ACT, |r| fx.call(r, Method::POST, &format!("/api/messages/{done}/cancel"), None).await);
    let feedback = format!("/api/messages/{done}/feedback");
    matrix!(fx, "rate", ACT, |r| fx.call(r, Method::PUT, &feedback, Some(json!({ "rating": "up" }))).await);
    matrix!(fx, "unrate", ACT, |r| fx.call(r, Method::DELETE, &feedback, None).await);
    // The root's author (the owner) and conversation admins edit a thread.
    let thread = root().await;
    matrix!(fx, "edit thread", [401, 404, 403, 403, 200, 200], |r| fx
        .call(r, Method::PATCH, &format!("/api/threads/{thread}"), Some(json!({ "tags": ["x"] })))
        .await);
    assert!(llm.requests() >= 4);
}

#[tokio::test]
async fn leaving() {
    let fx = fixture().await;
    let c = fx.conversation.clone();
    // The owner, asked last, is refused: someone who stays would be left without an owner.
    let stays = fx.spare_user().await;
    fx.app
        .post(&format!("/api/conversations/{c}/members"), &fx.owner, json!({ "user_id": stays.id }))
        .await
        .expect(201);
    matrix!(fx, "leave", [401, 404, 204, 204, 204, 409], |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{c}/leave"), None)
        .await);
}

#[tokio::test]
async fn joining() {
    let fx = fixture().await;
    let c = fx.conversation.clone();
    // A private conversation takes an invite: its members are already in (200), others 404.
    matrix!(fx, "join private", [401, 404, 200, 200, 200, 200], |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{c}/join"), None)
        .await);
    // A workspace-visible one: every workspace member joins; its creator is its owner already.
    let open = fx.app.open_channel(&fx.owner, &fx.ws, "open").await;
    matrix!(fx, "join open", [401, 201, 201, 201, 201, 200], |r| fx
        .call(r, Method::POST, &format!("/api/conversations/{open}/join"), None)
        .await);
}

#[tokio::test]
async fn workspace_endpoints() {
    let fx = fixture().await;
    let app = &fx.app;
    // Workspace roles: anonymous, outsider, guest, member, admin, owner.
    let outsider = app.register("Outsider").await;
    let guest = app.register("Guest").await;
    let admin = app.register("WsAdmin").await;
    let ws = app.workspace(&fx.owner, &[]).await;
    app.add_to_workspace(&fx.owner, &ws, &guest, "guest").await;
    app.post(&format!("/api/workspaces/{ws}/members"), &fx.owner, json!({ "user_id": admin.id, "role": "admin" }))
        .await
        .expect(201);
    let member = fx.users[3].clone().unwrap();
    app.post(&format!("/api/workspaces/{ws}/members"), &fx.owner, json!({ "user_id": member.id })).await.expect(201);
    let users = [None, Some(outsider), Some(guest), Some(member), Some(admin), Some(fx.owner.clone())];
    let call = |r: usize, method: Method, path: String, body: Option<Value>| {
        let token = users[r].as_ref().map(|u| u.token.clone());
        async move { app.request(method, &path, token.as_deref(), body).await.status }
    };
    let spare = || async {
        let u = app.register("Spare").await;
        app.post(&format!("/api/workspaces/{ws}/members"), &fx.owner, json!({ "user_id": u.id })).await.expect(201);
        u
    };
    const READ: [u16; 6] = [401, 404, 200, 200, 200, 200];
    matrix!(fx, "get workspace", READ, |r| call(r, Method::GET, format!("/api/workspaces/{ws}"), None).await);
    matrix!(fx, "list members", READ, |r| call(r, Method::GET, format!("/api/workspaces/{ws}/members"), None).await);
    matrix!(fx, "list conversations", READ, |r| call(
        r,
        Method::GET,
        format!("/api/conversations?workspace_id={ws}"),
        None
    )
    .await);
    matrix!(fx, "create conversation", [401, 404, 403, 201, 201, 201], |r| call(
        r,
        Method::POST,
        "/api/conversations".into(),
        Some(json!({ "workspace_id": ws, "kind": "group" }))
    )
    .await);
    matrix!(fx, "add member", [401, 404, 403, 403, 201, 201], |r| {
        let u = app.register("New").await;
        call(r, Method::POST, format!("/api/workspaces/{ws}/members"), Some(json!({ "user_id": u.id }))).await
    });
    matrix!(fx, "change role", [401, 404, 403, 403, 200, 200], |r| {
        let u = spare().await;
        call(r, Method::PATCH, format!("/api/workspaces/{ws}/members/{}", u.id), Some(json!({ "role": "admin" }))).await
    });
    matrix!(fx, "remove member", [401, 404, 403, 403, 204, 204], |r| {
        let u = spare().await;
        call(r, Method::DELETE, format!("/api/workspaces/{ws}/members/{}", u.id), None).await
    });
    matrix!(fx, "create workspace", [401, 201, 201, 201, 201, 201], |r| call(
        r,
        Method::POST,
        "/api/workspaces".into(),
        Some(json!({ "name": "Mine" }))
    )
    .await);
    matrix!(fx, "me", [401, 200, 200, 200, 200, 200], |r| call(r, Method::GET, "/api/me".into(), None).await);
    matrix!(fx, "logout", [401, 204, 204, 204, 204, 204], |r| call(r, Method::POST, "/api/auth/logout".into(), None)
        .await);
}

/// The roles of the message endpoints: the conversation roles with the message's author (a
/// plain member) between member and admin.
const WITH_AUTHOR: [&str; 7] = ["anonymous", "non-member", "viewer", "member", "author", "admin", "owner"];

/// As `matrix!`, over `WITH_AUTHOR`.
macro_rules! matrix_with_author {
    ($name:expr, $expected:expr, |$role:ident| $call:expr) => {{
        let mut got = Vec::new();
        for $role in 0..WITH_AUTHOR.len() {
            got.push($call);
        }
        assert_eq!(got, $expected.to_vec(), "{}: statuses for {:?}", $name, WITH_AUTHOR);
    }};
}

#[tokio::test]
async fn message_change_endpoints() {
    let fx = fixture().await;
    let (app, c) = (&fx.app, fx.conversation.clone());
    let author = fx.spare_user().await;
    app.post(&format!("/api/conversations/{c}/members"), &fx.owner, json!({ "user_id": author.id })).await.expect(201);
    let mut users: Vec<Option<TestUser>> = fx.users.clone();
    users.insert(4, Some(author.clone()));
    let call = |r: usize, method: Method, path: String, body: Option<Value>| {
        let token = users[r].as_ref().map(|u| u.token.clone());
        async move { app.request(method, &path, token.as_deref(), body).await.status }
    };
    let by_author = || app.root(&author, &c, "the author's words");
    const READ: [u16; 7] = [401, 404, 200, 200, 200, 200, 200];
    const MEMBERS: [u16; 7] = [401, 404, 403, 200, 200, 200, 200];

    let message = by_author().await;
    matrix_with_author!("edit", [401, 404, 403, 403, 200, 403, 403], |r| {
        call(r, Method::PATCH, format!("/api/messages/{message}"), Some(json!({ "content": "edited" }))).await
    });
    matrix_with_author!("history", READ, |r| call(r, Method::GET, format!("/api/messages/{message}/history"), None)
        .await);
    let reaction = format!("/api/messages/{message}/reactions/%F0%9F%91%8D");
    matrix_with_author!("react", MEMBERS, |r| call(r, Method::PUT, reaction.clone(), None).await);
    matrix_with_author!("reactors", READ, |r| call(r, Method::GET, reaction.clone(), None).await);
    matrix_with_author!("unreact", MEMBERS, |r| call(r, Method::DELETE, reaction.clone(), None).await);
    let pin = format!("/api/messages/{message}/pin");
    matrix_with_author!("pin", MEMBERS, |r| call(r, Method::PUT, pin.clone(), None).await);
    matrix_with_author!("pins", READ, |r| call(r, Method::GET, format!("/api/conversations/{c}/pins"), None).await);
    matrix_with_author!("unpin", MEMBERS, |r| call(r, Method::DELETE, pin.clone(), None).await);
    matrix_with_author!("delete", [401, 404, 403, 403, 200, 200, 200], |r| {
        let fresh = by_author().await;
        call(r, Method::DELETE, format!("/api/messages/{fresh}"), None).await
    });
    matrix_with_author!("delete thread", [401, 404, 403, 403, 204, 204, 204], |r| {
        let root = by_author().await;
        app.reply(&fx.owner, &root, "under it").await;
        call(r, Method::DELETE, format!("/api/threads/{root}"), None).await
    });
    // Preferences are each member's own: viewers have them too.
    matrix_with_author!("preferences", READ, |r| call(
        r,
        Method::PUT,
        format!("/api/conversations/{c}/preferences"),
        Some(json!({ "starred": true }))
    )
    .await);
    matrix_with_author!("delete conversation", [401, 404, 403, 403, 403, 403, 204], |r| {
        let doomed = app.channel(&fx.owner, &fx.ws, &[]).await;
        for (i, role) in [(2, "viewer"), (3, "member"), (4, "member"), (5, "admin")] {
            let body = json!({ "user_id": users[i].as_ref().unwrap().id, "role": role });
            app.post(&format!("/api/conversations/{doomed}/members"), &fx.owner, body).await.expect(201);
        }
        call(r, Method::DELETE, format!("/api/conversations/{doomed}"), Some(json!({ "confirm": doomed }))).await
    });
}
