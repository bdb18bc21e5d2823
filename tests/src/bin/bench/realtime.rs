//! Realtime delivery, measured against a `skein` release binary in its own process (so its
//! memory and open files are its own):
//!
//! - send→deliver latency (p50/p99) with 1, 100 and 1,000 subscribers on one conversation at
//!   20 messages/s, and with 10,000 subscribers at 5 messages/s. Time runs from just before
//!   the sender's POST to the moment a subscriber has parsed the event.
//! - deliveries per second at saturation: 1,000 subscribers, 8 senders posting flat out.
//! - both of those through a bare SSE broadcaster in its own process too (`floor.rs`), in the
//!   same run: the floor of what this machine can do, against which Skein is compared.
//! - server memory per idle SSE connection: the server's RSS before and after 10,000 idle
//!   connections.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use skein_tests::{TestApp, TestUser};

/// A `skein` server process on a fresh schema.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) app: TestApp,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a fresh schema named after `name`, with an optional config file.
pub(crate) async fn start_server(binary: &str, database_url: &str, name: &str, config: Option<&str>) -> Server {
    let schema = format!("skeinbench_{name}_{}", std::process::id());
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(database_url).await.unwrap();
    for sql in [format!("DROP SCHEMA IF EXISTS {schema} CASCADE"), format!("CREATE SCHEMA {schema}")] {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut conn).await.unwrap();
    }
    let separator = if database_url.contains('?') { '&' } else { '?' };
    let url = format!("{database_url}{separator}options=-csearch_path%3D{schema}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut command = Command::new(binary);
    if let Some(config) = config {
        command.env("SKEIN_CONFIG", config);
    }
    let mut child = command
        .env("DATABASE_URL", &url)
        .env("SKEIN_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("SKEIN_SERVER__WORKERS", "2")
        // The load is one sender and one subscriber at a rate and a connection count no
        // person reaches: limits off, as the benchmark measures delivery.
        .env("SKEIN_RATE_LIMITS__ENABLED", "false")
        .env("SKEIN_REALTIME__MAX_STREAMS_PER_USER", "0")
        .env("SKEIN_DATABASE__MAX_CONNECTIONS", "8")
        .env("SKEIN_AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("SKEIN_AUTH__ARGON2_PASSES", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let app = TestApp::client_for(&format!("http://127.0.0.1:{port}"));
    for _ in 0..200 {
        if app.http.get(format!("{}/readyz", app.base)).send().await.is_ok_and(|r| r.status() == 200) {
            return Server { child, app };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Shared by every subscriber: delivery count and latencies of timed messages.
#[derive(Default)]
struct Tally {
    deliveries: AtomicU64,
    latencies: std::sync::Mutex<Vec<Duration>>,
    record: AtomicBool,
}

/// Opens `n` SSE connections to the conversation's stream; each counts what it receives and
/// records the latency of messages whose content is `t=<micros since epoch>`.
async fn subscribe(
    app: &TestApp,
    user: &TestUser,
    conv: &str,
    n: usize,
    epoch: Instant,
    tally: &Arc<Tally>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let url = format!("{}/api/conversations/{conv}/stream", app.base);
    let mut tasks = Vec::with_capacity(n);
    // In batches, so the listen backlog is never overrun.
    for batch in (0..n).collect::<Vec<_>>().chunks(250) {
        let opened = futures_util::future::join_all(batch.iter().map(|_| {
            let client = app.http.clone();
            let (url, token) = (url.clone(), user.token.clone());
            async move { client.get(url).bearer_auth(token).send().await.unwrap() }
        }))
        .await;
        for res in opened {
            assert_eq!(res.status(), 200);
            let tally = tally.clone();
            tasks.push(tokio::spawn(async move {
                let mut body = res.bytes_stream();
                let mut pending = String::new();
                while let Some(Ok(chunk)) = body.next().await {
                    pending.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(end) = pending.find("\n\n") {
                        let frame: String = pending.drain(..end + 2).collect();
                        if !frame.contains("event: thread.new") {
                            continue;
                        }
                        tally.deliveries.fetch_add(1, Ordering::Relaxed);
                        if !tally.record.load(Ordering::Relaxed) {
                            continue;
                        }
                        if let Some(sent) = frame.split("\"content\":\"t=").nth(1).and_then(|s| s.split('"').next()) {
                            let sent = Duration::from_micros(sent.parse().unwrap_or(0));
                            tally.latencies.lock().unwrap().push(epoch.elapsed().saturating_sub(sent));
                        }
                    }
                }
            }));
        }
    }
    tasks
}

pub(crate) fn percentile(latencies: &mut [Duration], p: f64) -> f64 {
    latencies.sort();
    let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
    latencies.get(i).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// One latency phase: `count` messages at `rate` per second to `subscribers` connections.
struct Phase {
    subscribers: usize,
    rate: f64,
    count: usize,
}

/// Posts the phase's timed roots and waits until every subscriber has them; p50 and p99.
async fn timed_posts(
    app: &TestApp,
    sender: &TestUser,
    conv: &str,
    phase: &Phase,
    epoch: Instant,
    tally: &Tally,
) -> (f64, f64) {
    let Phase { subscribers, rate, count } = *phase;
    tally.latencies.lock().unwrap().clear();
    tally.record.store(true, Ordering::Relaxed);
    let start = tally.deliveries.load(Ordering::Relaxed);
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    for _ in 0..count {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let content = format!("t={}", epoch.elapsed().as_micros());
        app.post(&format!("/api/threads/{conv}/root"), sender, json!({ "content": content })).await.expect(201);
    }
    let expected = start + (count * subscribers) as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tally.record.store(false, Ordering::Relaxed);
    let mut latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
    assert_eq!(latencies.len(), count * subscribers, "every subscriber got every message");
    (percentile(&mut latencies, 0.50), percentile(&mut latencies, 0.99))
}

/// Where the phases run: Skein (its conversations made over its API) or the bare
/// broadcaster of `floor.rs` (any name is a conversation; credentials are ignored).
struct Target<'a> {
    name: &'static str,
    app: &'a TestApp,
    sender: &'a TestUser,
    subscriber: &'a TestUser,
    /// Skein's process, for its memory; none for the floor.
    pid: Option<u32>,
    skein: Option<(&'a str, &'a TestUser)>,
}

impl Target<'_> {
    async fn conversation(&self, n: usize) -> String {
        match self.skein {
            Some((ws, member)) => self.app.channel(self.sender, ws, &[member]).await,
            None => format!("c{n}"),
        }
    }
}

pub async fn run(binary: &str, database_url: &str) {
    let server = start_server(binary, database_url, "rt", None).await;
    let app = &server.app;
    let (alice, bob) = (app.register("Alice").await, app.register("Bob").await);
    let ws = app.workspace(&alice, &[&bob]).await;
    let epoch = Instant::now();
    let floor = Floor::start();
    let skein = Target {
        name: "Skein",
        app,
        sender: &alice,
        subscriber: &bob,
        pid: Some(server.child.id()),
        skein: Some((&ws, &bob)),
    };
    let bare = Target { name: "bare broadcaster (floor)", pid: None, skein: None, app: &floor.app, ..skein };

    println!("\n## Realtime: send→deliver latency on one conversation (SSE, each server in its own process)\n");
    println!("| server | subscribers | messages/s | messages | deliveries | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut n = 0;
    for (subscribers, rate, count) in [(1, 20.0, 200), (100, 20.0, 100), (1_000, 20.0, 60), (10_000, 5.0, 30)] {
        for target in [&bare, &skein] {
            n += 1;
            let phase = Phase { subscribers, rate, count };
            let conv = target.conversation(n).await;
            let tally = Arc::new(Tally::default());
            let before = target.pid.map(rss_kib);
            let tasks = subscribe(target.app, target.subscriber, &conv, subscribers, epoch, &tally).await;
            if subscribers == 10_000 {
                // Idle connections settle before measuring.
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let (Some(pid), Some(before)) = (target.pid, before) {
                    let after = rss_kib(pid);
                    let per = (after.saturating_sub(before)) as f64 / subscribers as f64;
                    println!(
                        "\n(server RSS {before} KiB before and {after} KiB with {subscribers} idle SSE connections: {per:.1} KiB per connection)\n",
                    );
                }
            }
            let (p50, p99) = timed_posts(target.app, target.sender, &conv, &phase, epoch, &tally).await;
            println!(
                "| {} | {subscribers} | {rate} | {count} | {} | {p50:.2} | {p99:.2} |",
                target.name,
                count * subscribers
            );
            for t in tasks {
                t.abort();
            }
        }
    }

    println!("\n## Realtime: deliveries per second at saturation (1,000 subscribers, 8 senders, 10 s)\n");
    println!("| server | messages | deliveries | seconds (until the last delivery) | deliveries/s |");
    println!("|---|---:|---:|---:|---:|");
    for target in [&bare, &skein] {
        n += 1;
        saturation(target, &target.conversation(n).await, epoch).await;
    }
}

async fn saturation(target: &Target<'_>, conv: &str, epoch: Instant) {
    let tally = Arc::new(Tally::default());
    let tasks = subscribe(target.app, target.subscriber, conv, 1_000, epoch, &tally).await;
    let start = Instant::now();
    let posted = AtomicU64::new(0);
    let senders = (0..8).map(|_| async {
        while start.elapsed() < Duration::from_secs(10) {
            let path = format!("/api/threads/{conv}/root");
            target.app.post(&path, target.sender, json!({ "content": "load" })).await.expect(201);
            posted.fetch_add(1, Ordering::Relaxed);
        }
    });
    futures_util::future::join_all(senders).await;
    let expected = posted.load(Ordering::Relaxed) * 1_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.deliveries.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let delivered = tally.deliveries.load(Ordering::Relaxed);
    let posted = posted.load(Ordering::Relaxed);
    println!("| {} | {posted} | {delivered} | {elapsed:.1} | {:.0} |", target.name, delivered as f64 / elapsed);
    for t in tasks {
        t.abort();
    }
}

/// The bare broadcaster's process, stopped when the bench ends (or fails).
struct Floor {
    child: Child,
    app: TestApp,
}

impl Floor {
    fn start() -> Self {
        use std::io::BufRead;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("floor-broadcast")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
        let app = TestApp::client_for(&format!("http://127.0.0.1:{}", port.trim()));
        Self { child, app }
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
