//! `cargo xtask bench`: measures the release build against real PostgreSQL and prints numbers.
//!
//! 1. Replies posted per second over HTTP at 1, 16 and 64 concurrent clients (p50/p99), each
//!    client in its own conversation and all clients in one hot thread, next to a raw
//!    single-row INSERT loop (the same row into a table shaped like `messages`, same indexes)
//!    on the same database in the same run.
//! 2. Thread tree fetch latency for trees of 10, 1,000 and 10,000 nodes (whole tree, one request).
//! 3. History pages with reactions and edits next to plain ones (see `history.rs`).
//! 4. Realtime delivery (see `realtime.rs`).
//! 5. Assistant answers: token relay (see `answers.rs`).
//! 6. Search over a million messages next to an `ILIKE` scan (see `search.rs`).
//!
//! `cargo xtask bench [posting|history|realtime|answers|search]` runs one part; without an
//! argument, all.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use skein_tests::{TestApp, TestUser};

const PHASE: Duration = Duration::from_secs(5);
const CLIENTS: [usize; 3] = [1, 16, 64];
const TREES: [usize; 3] = [10, 1_000, 10_000];

struct Stats {
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
    fn pct(&mut self, p: f64) -> f64 {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len()) - 1;
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Runs `clients` loops of `op` for the phase length; each op's latency is recorded.
async fn load<F, Fut>(clients: usize, op: F) -> Stats
where
    F: Fn(usize, usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    let loops = (0..clients).map(|c| {
        let op = &op;
        async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while start.elapsed() < PHASE {
                let t = Instant::now();
                op(c, i).await;
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        }
    });
    let latencies: Vec<Duration> = futures_util::future::join_all(loops).await.into_iter().flatten().collect();
    Stats { ops: latencies.len(), elapsed: start.elapsed(), latencies }
}

async fn raw_insert_baseline(url: &str, clients: usize) -> Stats {
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(tokio::sync::Mutex::new(AsyncPgConnection::establish(url).await.unwrap()));
    }
    let conns = &conns;
    load(clients, |c, _| async move {
        let mut conn = conns[c].lock().await;
        // The same row a reply stores, into a table with the same columns and indexes.
        let id = uuid::Uuid::from(ulid::Ulid::generate());
        let root = uuid::Uuid::from_u128(c as u128 + 1);
        diesel::sql_query(
            "INSERT INTO bench_raw (id, conversation_id, root_id, parent_id, depth, path, seq, author_id, role, \
             content, status) VALUES ($1, $2, $3, $3, 1, ARRAY[$3, $1], nextval('bench_seq'), $2, 'user', \
             'raw insert', 'complete')",
        )
        .bind::<diesel::sql_types::Uuid, _>(id)
        .bind::<diesel::sql_types::Uuid, _>(uuid::Uuid::from_u128(c as u128))
        .bind::<diesel::sql_types::Uuid, _>(root)
        .execute(&mut *conn)
        .await
        .unwrap();
    })
    .await
}

async fn post_replies(app: &TestApp, user: &TestUser, parents: &[String], clients: usize) -> Stats {
    let writers: Vec<_> = (0..clients).map(|c| (user.clone(), parents[c % parents.len()].clone())).collect();
    post_replies_as(app, &writers).await
}

/// The cost of counting every request against its rate-limit profile (and checking the
/// daily quotas): 64 clients, each a user of its own, posting replies with limits off, then
/// on (a default profile too high to trip), on two servers of the same build and database,
/// alternating twice.
async fn rate_limit_cost() {
    let spawn = |limits: bool| {
        TestApp::spawn_with(move |c| {
            c.database.max_connections = 8;
            c.auth.argon2_memory_kib = 1024;
            c.auth.argon2_passes = 1;
            c.rate_limits.enabled = limits;
        })
    };
    let (off, on) = (spawn(false).await, spawn(true).await);
    let mut sides = Vec::new();
    for app in [&off, &on] {
        // The first account is the instance admin: it makes the default a profile that never trips.
        let admin = app.register("Admin").await;
        let rules: Vec<_> = ["post", "read", "write"]
            .iter()
            .map(|class| json!({ "route_class": class, "burst": 1_000_000, "per_seconds": 1 }))
            .collect();
        let body = json!({ "name": "bench", "rules": rules });
        let profile = app.post("/api/admin/rate-limit-profiles", &admin, body).await.expect(201).str("id");
        let assignment = json!({ "subject": { "kind": "instance" }, "profile_id": profile });
        app.put("/api/admin/rate-limit-assignments", &admin, assignment).await.expect(204);
        let ws = app.workspace(&admin, &[]).await;
        let mut writers = Vec::new();
        for n in 0..64 {
            let user = app.register(&format!("Writer{n}")).await;
            app.add_to_workspace(&admin, &ws, &user, "member").await;
            let c = app.channel(&admin, &ws, &[&user]).await;
            writers.push((user.clone(), app.root(&user, &c, "root").await));
        }
        sides.push(writers);
    }
    let probe =
        on.post(&format!("/api/messages/{}/reply", sides[1][0].1), &sides[1][0].0, json!({ "content": "x" })).await;
    assert!(probe.headers.contains_key("ratelimit"), "the limits are not on");

    println!(
        "\n## Rate-limit checks: 64 clients (64 users) posting replies, limits off vs on ({}s per phase)\n",
        PHASE.as_secs()
    );
    println!("| round | limits off replies/s | p99 ms | limits on replies/s | p99 ms | on / off |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for round in 1..=2 {
        let mut without = post_replies_as(&off, &sides[0]).await;
        let mut with = post_replies_as(&on, &sides[1]).await;
        println!(
            "| {round} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0}% |",
            without.rate(),
            without.pct(0.99),
            with.rate(),
            with.pct(0.99),
            100.0 * with.rate() / without.rate()
        );
    }
}

/// One client per writer, each replying to its parent.
async fn post_replies_as(app: &TestApp, writers: &[(TestUser, String)]) -> Stats {
    load(writers.len(), |c, i| {
        let (user, parent) = &writers[c];
        async move {
            // Status checked and body drained, not parsed: the client's own work is not the server's.
            let res = app
                .http
                .post(format!("{}/api/messages/{parent}/reply", app.base))
                .bearer_auth(&user.token)
                .json(&json!({ "content": format!("reply {c}-{i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 201);
            res.bytes().await.unwrap();
        }
    })
    .await
}

/// A random tree of `n` nodes built over HTTP by 16 concurrent writers; returns its root.
async fn build_tree(app: &TestApp, user: &TestUser, conversation: &str, n: usize) -> String {
    let root = app.root(user, conversation, "tree root").await;
    let nodes = tokio::sync::Mutex::new(vec![(root.clone(), 0usize)]);
    let writers = (0..16).map(|w| {
        let nodes = &nodes;
        async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
            loop {
                let (parent, depth) = {
                    let nodes = nodes.lock().await;
                    if nodes.len() >= n {
                        return;
                    }
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    nodes[(seed % nodes.len() as u64) as usize].clone()
                };
                if depth >= 90 {
                    continue;
                }
                let id = app.reply(user, &parent, "node").await;
                nodes.lock().await.push((id, depth + 1));
            }
        }
    });
    futures_util::future::join_all(writers).await;
    root
}

/// `requests` GETs of `path` one after another, each timed to the last byte received
/// (parsing is the client's business).
async fn timed_gets(app: &TestApp, user: &TestUser, path: &str, requests: usize) -> Stats {
    let url = format!("{}{path}", app.base);
    let mut latencies = Vec::new();
    for _ in 0..requests {
        let t = Instant::now();
        let res = app.http.get(&url).bearer_auth(&user.token).send().await.unwrap();
        assert_eq!(res.status(), 200);
        res.bytes().await.unwrap();
        latencies.push(t.elapsed());
    }
    Stats { ops: requests, elapsed: Duration::ZERO, latencies }
}

mod answers;
mod floor;
mod history;
mod realtime;
mod search;

/// `skein-bench [posting|history|realtime|answers|search]`: one part, or all of them.
#[tokio::main]
async fn main() {
    let only = std::env::args().nth(1);
    if only.as_deref() == Some("floor-relay") {
        // The bare relay's own process (see floor.rs), started by the answers part.
        floor::serve(&std::env::args().nth(2).unwrap_or_default()).await;
        return;
    }
    if only.as_deref() == Some("floor-broadcast") {
        // The bare broadcaster's own process (see floor.rs), started by the realtime part.
        floor::serve_broadcast().await;
        return;
    }
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if wants("posting") {
        posting_and_trees().await;
    }
    if wants("history") {
        history::run().await;
    }
    let binary = std::env::var("BENCH_SERVER_BINARY").unwrap_or_else(|_| "target/release/skein".into());
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (cargo xtask bench sets it)");
    if wants("realtime") {
        realtime::run(&binary, &url).await;
    }
    if wants("answers") {
        answers::run(&binary, &url).await;
    }
    if wants("search") {
        search::run().await;
    }
}

async fn posting_and_trees() {
    let app = TestApp::spawn_with(|c| {
        // Sized for this 2-core machine: more connections only add context switches.
        c.database.max_connections = 8;
        c.auth.argon2_memory_kib = 19 * 1024;
        c.auth.argon2_passes = 2;
    })
    .await;
    let user = app.register("Bench").await;
    let ws = app.workspace(&user, &[]).await;
    let mut conversations = Vec::new();
    let mut roots = Vec::new();
    for _ in 0..64 {
        let c = app.channel(&user, &ws, &[]).await;
        roots.push(app.root(&user, &c, "root").await);
        conversations.push(c);
    }
    let mut conn = app.db().await;
    // The baseline table has the messages table's columns, defaults, checks and indexes.
    for sql in ["CREATE TABLE bench_raw (LIKE messages INCLUDING ALL)", "CREATE SEQUENCE bench_seq"] {
        diesel::sql_query(sql).execute(&mut conn).await.unwrap();
    }

    println!(
        "\n## Posting replies over HTTP vs raw INSERT (same database, same run, {}s per phase)\n",
        PHASE.as_secs()
    );
    println!(
        "| clients | raw INSERT/s | HTTP replies/s (own conversation each) | ratio | p50 ms | p99 ms | HTTP replies/s (one hot thread) | p50 ms | p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for clients in CLIENTS {
        let raw = raw_insert_baseline(&app.db_url, clients).await;
        let mut spread = post_replies(&app, &user, &roots, clients).await;
        let mut hot = post_replies(&app, &user, &roots[..1], clients).await;
        println!(
            "| {clients} | {:.0} | {:.0} | {:.0}% | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
            raw.rate(),
            spread.rate(),
            100.0 * spread.rate() / raw.rate(),
            spread.pct(0.50),
            spread.pct(0.99),
            hot.rate(),
            hot.pct(0.50),
            hot.pct(0.99),
        );
    }

    rate_limit_cost().await;

    println!("\n## Thread tree fetch (whole tree in one request)\n");
    println!("| nodes | requests | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|");
    let tree_conversation = app.channel(&user, &ws, &[]).await;
    for n in TREES {
        let root = build_tree(&app, &user, &tree_conversation, n).await;
        let path = format!("/api/threads/{root}/tree?limit={n}");
        let first = app.get(&path, &user).await.expect(200);
        assert_eq!(first.body["data"].as_array().unwrap().len(), n);
        let requests = if n >= 10_000 { 100 } else { 300 };
        let mut stats = timed_gets(&app, &user, &path, requests).await;
        println!("| {n} | {requests} | {:.2} | {:.2} |", stats.pct(0.50), stats.pct(0.99));
    }
}
