//! A small HTTP client over the API for tests and the benchmark.

use reqwest::Method;
use serde_json::{Value, json};

use crate::TestApp;

/// A response: status and JSON body (`Value::Null` when empty).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// A string field of the body.
    pub fn str(&self, field: &str) -> String {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?} in {} {}", self.status, self.body))
            .to_owned()
    }

    /// The `code` of a problem response.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }

    /// Asserts a problem response with this status and code.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Self {
        assert_eq!((self.status, self.code()), (status, code), "body: {}", self.body);
        let content_type = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(content_type, "application/problem+json");
        self
    }
}

/// A registered user and their token.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
}

impl TestApp {
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.expect("body read");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp { status, body, headers }
    }

    /// A POST without a token (register, login).
    pub async fn anon_post(&self, path: &str, body: Value) -> Resp {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, user: &TestUser) -> Resp {
        self.request(Method::GET, path, Some(&user.token), None).await
    }

    pub async fn post(&self, path: &str, user: &TestUser, body: Value) -> Resp {
        self.request(Method::POST, path, Some(&user.token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, user: &TestUser, body: Value) -> Resp {
        self.request(Method::PATCH, path, Some(&user.token), Some(body)).await
    }

    pub async fn put(&self, path: &str, user: &TestUser, body: Value) -> Resp {
        self.request(Method::PUT, path, Some(&user.token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, user: &TestUser) -> Resp {
        self.request(Method::DELETE, path, Some(&user.token), None).await
    }

    /// `GET /api/search` with these query parameters (encoded here).
    pub async fn search(&self, user: &TestUser, params: &[(&str, &str)]) -> Resp {
        let mut url = reqwest::Url::parse("http://skein/api/search").unwrap_or_else(|e| panic!("{e}"));
        url.query_pairs_mut().extend_pairs(params);
        self.get(&format!("{}?{}", url.path(), url.query().unwrap_or_default()), user).await
    }

    /// Registers a fresh user named `name`.
    pub async fn register(&self, name: &str) -> TestUser {
        let n = self.users.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let email = format!("{}-{n}@example.com", name.to_lowercase());
        let res = self
            .request(
                Method::POST,
                "/api/auth/register",
                None,
                Some(json!({ "email": email, "password": "correct horse battery", "display_name": name })),
            )
            .await
            .expect(201);
        TestUser { id: res.body["user"]["id"].as_str().unwrap_or_default().to_owned(), email, token: res.str("token") }
    }

    /// A workspace owned by `owner`, with `members` added as plain members.
    pub async fn workspace(&self, owner: &TestUser, members: &[&TestUser]) -> String {
        let ws = self.post("/api/workspaces", owner, json!({ "name": "Acme" })).await.expect(201).str("id");
        for m in members {
            self.post(&format!("/api/workspaces/{ws}/members"), owner, json!({ "user_id": m.id })).await.expect(201);
        }
        ws
    }

    /// Adds `user` to workspace `ws` with `role` (`member`, `guest`, …).
    pub async fn add_to_workspace(&self, admin: &TestUser, ws: &str, user: &TestUser, role: &str) {
        self.post(&format!("/api/workspaces/{ws}/members"), admin, json!({ "user_id": user.id, "role": role }))
            .await
            .expect(201);
    }

    /// A workspace-visible channel in `ws` titled `title`: every non-guest member of the
    /// workspace is in it implicitly.
    pub async fn open_channel(&self, owner: &TestUser, ws: &str, title: &str) -> String {
        self.post(
            "/api/conversations",
            owner,
            json!({ "workspace_id": ws, "kind": "channel", "title": title, "visibility": "workspace" }),
        )
        .await
        .expect(201)
        .str("id")
    }

    /// A private channel in `ws` owned by `owner` with `members` as members.
    pub async fn channel(&self, owner: &TestUser, ws: &str, members: &[&TestUser]) -> String {
        let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
        self.post(
            "/api/conversations",
            owner,
            json!({ "workspace_id": ws, "kind": "channel", "title": "general", "member_ids": ids }),
        )
        .await
        .expect(201)
        .str("id")
    }

    /// Mints an API key in `ws` (as its admin `admin`) and returns it as a user whose token is
    /// the key's secret (`id` is its service user's).
    pub async fn api_key(&self, admin: &TestUser, ws: &str, body: Value) -> TestUser {
        let res = self.post(&format!("/api/workspaces/{ws}/api-keys"), admin, body).await.expect(201);
        TestUser {
            id: res.str("user_id"),
            email: format!("{}@service.invalid", res.str("id")),
            token: res.str("secret"),
        }
    }

    /// Posts a thread root and returns its id.
    pub async fn root(&self, user: &TestUser, conversation: &str, content: &str) -> String {
        self.post(&format!("/api/threads/{conversation}/root"), user, json!({ "content": content }))
            .await
            .expect(201)
            .str("id")
    }

    /// Replies to `parent` and returns the reply's id.
    pub async fn reply(&self, user: &TestUser, parent: &str, content: &str) -> String {
        self.post(&format!("/api/messages/{parent}/reply"), user, json!({ "content": content }))
            .await
            .expect(201)
            .str("id")
    }
}
