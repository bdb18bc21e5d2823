use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use skein_tests::TestApp;

fn registration(email: &str, password: &str, name: &str) -> serde_json::Value {
    json!({ "email": email, "password": password, "display_name": name })
}

#[tokio::test]
async fn register_login_me_logout() {
    let app = TestApp::spawn().await;
    let res =
        app.anon_post("/api/auth/register", registration("Ann@Example.com", "correct horse", "Ann")).await.expect(201);
    assert_eq!(res.body["user"]["email"], "ann@example.com", "emails are normalised");
    assert_eq!(res.body["user"]["is_instance_admin"], true, "the first account administers the instance");
    assert!(res.body["expires_at"].is_string());
    let second =
        app.anon_post("/api/auth/register", registration("bob@example.com", "another secret", "Bob")).await.expect(201);
    assert_eq!(second.body["user"]["is_instance_admin"], false);

    let login = app
        .anon_post("/api/auth/login", json!({ "email": "ANN@example.com", "password": "correct horse" }))
        .await
        .expect(200);
    let token = login.str("token");
    let me = app.request(Method::GET, "/api/me", Some(&token), None).await.expect(200);
    assert_eq!(me.body["email"], "ann@example.com");

    app.request(Method::POST, "/api/auth/logout", Some(&token), None).await.expect(204);
    app.request(Method::GET, "/api/me", Some(&token), None).await.expect_problem(401, "unauthenticated");
    // The registration token is a separate session and still works.
    app.request(Method::GET, "/api/me", Some(&res.str("token")), None).await.expect(200);
}

/// Sessions end by the server's clock: idle for too long, or past their absolute lifetime,
/// even when the instance has just looked them up (and cached them).
#[tokio::test]
async fn sessions_expire_by_the_servers_clock() {
    let app = TestApp::spawn_with(|config| {
        config.auth.session_idle_secs = 600;
        config.auth.session_absolute_secs = 3_600;
    })
    .await;
    let ann = app.register("Ann").await;
    app.request(Method::GET, "/api/me", Some(&ann.token), None).await.expect(200);
    app.clock.advance(std::time::Duration::from_secs(601));
    app.request(Method::GET, "/api/me", Some(&ann.token), None).await.expect_problem(401, "unauthenticated");

    let bob = app.register("Bob").await;
    for _ in 0..7 {
        // Used every 9 minutes: never idle, but past an hour it is over.
        app.request(Method::GET, "/api/me", Some(&bob.token), None).await.expect(200);
        app.clock.advance(std::time::Duration::from_secs(540));
    }
    app.request(Method::GET, "/api/me", Some(&bob.token), None).await.expect_problem(401, "unauthenticated");
}

/// Sessions are cached in each instance for a few seconds; a logout on one instance must end
/// the session on the others at once, not when their cached copy ages out.
#[tokio::test]
async fn a_logout_ends_the_session_on_every_instance_at_once() {
    for fanout in [skein_infra::realtime::FanoutMode::Postgres, skein_infra::realtime::FanoutMode::Nats] {
        let app = TestApp::spawn_with(|config| config.realtime.fanout.mode = fanout).await;
        let peer = app.peer().await;
        let ann = app.register("Ann").await;
        // Both instances have looked the session up (and cached it).
        app.request(Method::GET, "/api/me", Some(&ann.token), None).await.expect(200);
        peer.request(Method::GET, "/api/me", Some(&ann.token), None).await.expect(200);

        app.request(Method::POST, "/api/auth/logout", Some(&ann.token), None).await.expect(204);
        app.request(Method::GET, "/api/me", Some(&ann.token), None).await.expect_problem(401, "unauthenticated");
        // The other instance hears of it over the bus: well within the cache's lifetime.
        let deadline = std::time::Instant::now() + skein_infra::store::sessions::FRESH_FOR / 4;
        loop {
            let res = peer.request(Method::GET, "/api/me", Some(&ann.token), None).await;
            if res.status == 401 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{fanout:?}: the peer still accepts the ended session");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    app.register("Ann").await;
    let wrong =
        app.anon_post("/api/auth/login", json!({ "email": "ann-0@example.com", "password": "not it at all" })).await;
    let unknown =
        app.anon_post("/api/auth/login", json!({ "email": "nobody@example.com", "password": "not it at all" })).await;
    let wrong = wrong.expect_problem(401, "invalid_credentials");
    let unknown = unknown.expect_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
}

#[tokio::test]
async fn registration_validation_lists_every_bad_field() {
    let app = TestApp::spawn().await;
    let res = app.anon_post("/api/auth/register", registration("not-an-email", "password", "  ")).await;
    let res = res.expect_problem(422, "validation_failed");
    let mut fields: Vec<(String, String)> = res.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            ("display_name".into(), "required".into()),
            ("email".into(), "invalid".into()),
            ("password".into(), "weak".into())
        ]
    );
    let res = app.anon_post("/api/auth/register", registration("a@b.co", "short", "A")).await;
    assert_eq!(res.expect(422).body["errors"][0]["code"], "too_short");
    let long_name = "n".repeat(101);
    let res = app.anon_post("/api/auth/register", registration("a@b.co", "long enough pw", &long_name)).await;
    assert_eq!(res.expect(422).body["errors"][0]["code"], "too_long");
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.anon_post("/api/auth/register", registration("ann@example.com", "correct horse", "Ann")).await.expect(201);
    app.anon_post("/api/auth/register", registration("ANN@example.com", "other secret!", "Ann 2"))
        .await
        .expect_problem(409, "email_taken");
}

#[tokio::test]
async fn closed_registration_still_admits_the_first_account() {
    let app = TestApp::spawn_with(|c| c.auth.open_registration = false).await;
    app.anon_post("/api/auth/register", registration("root@example.com", "correct horse", "Root")).await.expect(201);
    app.anon_post("/api/auth/register", registration("bob@example.com", "correct horse", "Bob"))
        .await
        .expect_problem(403, "registration_closed");
}

#[tokio::test]
async fn tokens_are_stored_only_as_digests() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        token_digest: Vec<u8>,
        #[diesel(sql_type = diesel::sql_types::Text)]
        password_hash: String,
    }
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let mut conn = app.db().await;
    let rows: Vec<Row> =
        diesel::sql_query("SELECT s.token_digest, u.password_hash FROM sessions s JOIN users u ON u.id = s.user_id")
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].token_digest, Sha256::digest(ann.token.as_bytes()).to_vec());
    assert!(rows[0].password_hash.starts_with("$argon2id$"));
}

#[tokio::test]
async fn expired_sessions_are_rejected() {
    let app = TestApp::spawn_with(|c| c.auth.session_absolute_secs = 1).await;
    let ann = app.register("Ann").await;
    app.get("/api/me", &ann).await.expect(200);
    app.clock.advance(std::time::Duration::from_secs(2));
    app.get("/api/me", &ann).await.expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn idle_sessions_expire() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn_with(|c| c.auth.session_idle_secs = 3600).await;
    let ann = app.register("Ann").await;
    let mut conn = app.db().await;
    diesel::sql_query("UPDATE sessions SET last_used_at = now() - interval '2 hours'")
        .execute(&mut conn)
        .await
        .unwrap();
    app.get("/api/me", &ann).await.expect_problem(401, "unauthenticated");
}

#[tokio::test]
async fn cookie_sessions_need_csrf_for_writes() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(format!("{}/api/auth/register", app.base))
        .json(&registration("ann@example.com", "correct horse", "Ann"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> =
        res.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    let session = cookies.iter().find(|c| c.starts_with("skein_session=")).expect("session cookie");
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax"), "{session}");
    let body: serde_json::Value = res.json().await.unwrap();
    let cookie_header = format!("skein_session={}", body["token"].as_str().unwrap());
    let csrf = body["csrf_token"].as_str().unwrap();

    let me = app.http.get(format!("{}/api/me", app.base)).header("cookie", &cookie_header).send().await.unwrap();
    assert_eq!(me.status(), 200, "reads need no CSRF token");
    let url = format!("{}/api/workspaces", app.base);
    let no_csrf =
        app.http.post(&url).header("cookie", &cookie_header).json(&json!({ "name": "W" })).send().await.unwrap();
    assert_eq!(no_csrf.status(), 403);
    assert_eq!(no_csrf.json::<serde_json::Value>().await.unwrap()["code"], "csrf_failed");
    let wrong = app
        .http
        .post(&url)
        .header("cookie", &cookie_header)
        .header("x-csrf-token", "nope")
        .json(&json!({ "name": "W" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = app
        .http
        .post(&url)
        .header("cookie", &cookie_header)
        .header("x-csrf-token", csrf)
        .json(&json!({ "name": "W" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    // Bearer requests never need it.
    let bearer = app
        .http
        .post(&url)
        .bearer_auth(body["token"].as_str().unwrap())
        .json(&json!({ "name": "W2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 201);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = TestApp::spawn().await;
    app.request(Method::GET, "/api/me", None, None).await.expect_problem(401, "unauthenticated");
    app.request(Method::GET, "/api/me", Some("forged"), None).await.expect_problem(401, "unauthenticated");
    let res = app.http.get(format!("{}/api/me", app.base)).header("authorization", "Basic abc").send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_email() {
    let app = TestApp::spawn_with(|c| {
        c.auth.login_max_failures = 3;
        c.auth.login_failure_window_secs = 600;
    })
    .await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let attempt =
        |email: &str, password: &str| app.anon_post("/api/auth/login", json!({ "email": email, "password": password }));
    for _ in 0..3 {
        attempt(&ann.email, "wrong guess!").await.expect_problem(401, "invalid_credentials");
    }
    let limited = attempt(&ann.email, "wrong guess!").await.expect_problem(429, "rate_limited");
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    // The right password is refused too: the answer must not reveal a correct guess.
    attempt(&ann.email, "correct horse battery").await.expect_problem(429, "rate_limited");
    // Other accounts are unaffected, and unknown emails are throttled the same way.
    attempt(&bob.email, "correct horse battery").await.expect(200);
    for _ in 0..3 {
        attempt("ghost@example.com", "wrong guess!").await.expect_problem(401, "invalid_credentials");
    }
    attempt("ghost@example.com", "wrong guess!").await.expect_problem(429, "rate_limited");
    // Existing sessions keep working.
    app.get("/api/me", &ann).await.expect(200);
}

#[tokio::test]
async fn a_successful_login_clears_earlier_failures() {
    let app = TestApp::spawn_with(|c| c.auth.login_max_failures = 3).await;
    let ann = app.register("Ann").await;
    let attempt =
        |password: &str| app.anon_post("/api/auth/login", json!({ "email": ann.email, "password": password }));
    for _ in 0..2 {
        attempt("wrong guess!").await.expect(401);
    }
    attempt("correct horse battery").await.expect(200);
    for _ in 0..2 {
        attempt("wrong guess!").await.expect(401);
    }
    attempt("correct horse battery").await.expect(200);
}

#[tokio::test]
async fn failures_age_out_of_the_window() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn_with(|c| {
        c.auth.login_max_failures = 2;
        c.auth.login_failure_window_secs = 60;
    })
    .await;
    let ann = app.register("Ann").await;
    let attempt =
        |password: &str| app.anon_post("/api/auth/login", json!({ "email": ann.email, "password": password }));
    attempt("wrong guess!").await.expect(401);
    attempt("wrong guess!").await.expect(401);
    attempt("correct horse battery").await.expect_problem(429, "rate_limited");
    let mut conn = app.db().await;
    diesel::sql_query("UPDATE login_failures SET failed_at = failed_at - interval '2 minutes'")
        .execute(&mut conn)
        .await
        .unwrap();
    attempt("correct horse battery").await.expect(200);
}

/// A logout ends the streams the session opened, each with a last `error` saying why.
#[tokio::test]
async fn a_logout_ends_the_sessions_streams() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let mut sse = skein_tests::sse::SseClient::open(&app, &ann, "/api/stream", None).await;
    let mut ws = skein_tests::sse::WsClient::open(&app, &ann, "", None).await.expect("websocket");
    app.request(Method::POST, "/api/auth/logout", Some(&ann.token), None).await.expect(204);
    let last = sse.next().await;
    assert_eq!((last.kind(), last.data["data"]["code"].as_str()), ("error", Some("unauthenticated")));
    assert_eq!(sse.next_within(std::time::Duration::from_secs(5)).await.map(|e| e.is_none()), Ok(true));
    let last = ws.next().await;
    assert_eq!((last["type"].as_str(), last["data"]["code"].as_str()), (Some("error"), Some("unauthenticated")));
    assert_eq!(ws.next_within(std::time::Duration::from_secs(5)).await, Ok(None));
}

/// Parallel wrong guesses are counted before any password is checked: no more than the limit
/// get an answer about the password.
#[tokio::test]
async fn parallel_guesses_cannot_pass_the_failure_limit() {
    let app = TestApp::spawn_with(|c| c.auth.login_max_failures = 5).await;
    let ann = app.register("Ann").await;
    let guesses = (0..30).map(|n| {
        app.anon_post("/api/auth/login", json!({ "email": ann.email, "password": format!("wrong guess {n}") }))
    });
    let statuses: Vec<u16> = futures_util::future::join_all(guesses).await.into_iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 25, "{statuses:?}");
}

/// An address no mailbox can have is refused before anything is looked up or hashed.
#[tokio::test]
async fn over_long_emails_are_refused() {
    let app = TestApp::spawn().await;
    let long = format!("{}@example.com", "a".repeat(250));
    let login = app.anon_post("/api/auth/login", json!({ "email": long, "password": "whatever it is" })).await;
    let login = login.expect_problem(422, "validation_failed");
    assert_eq!(
        (login.body["errors"][0]["field"].as_str(), login.body["errors"][0]["code"].as_str()),
        (Some("email"), Some("too_long"))
    );
    let register = app.anon_post("/api/auth/register", registration(&long, "correct horse battery", "Long")).await;
    assert_eq!(register.expect_problem(422, "validation_failed").body["errors"][0]["code"], "too_long");
}

/// Expired sessions and old login failures are deleted by the periodic sweep, not kept
/// for ever; API keys' sessions stay.
#[tokio::test]
async fn the_sweep_deletes_expired_sessions_and_old_failures() {
    #[derive(diesel::QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        sessions: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        failures: i64,
    }
    let app = TestApp::spawn_with(|c| c.auth.sweep_interval_secs = 1).await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    app.api_key(&ann, &ws, json!({ "name": "bot", "scopes": ["read"] })).await;
    app.anon_post("/api/auth/login", json!({ "email": ann.email, "password": "wrong guess!" })).await.expect(401);
    let counts = async || {
        let mut db = app.db().await;
        let query =
            "SELECT (SELECT count(*) FROM sessions) AS sessions, (SELECT count(*) FROM login_failures) AS failures";
        let counts: Counts = diesel_async::RunQueryDsl::get_result(diesel::sql_query(query), &mut db).await.unwrap();
        (counts.sessions, counts.failures)
    };
    assert_eq!(counts().await, (2, 1));
    // Past the absolute lifetime (30 days) and a day's grace.
    app.clock.advance(std::time::Duration::from_secs(32 * 24 * 3600));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while counts().await != (1, 0) {
        assert!(std::time::Instant::now() < deadline, "not swept: {:?}", counts().await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
