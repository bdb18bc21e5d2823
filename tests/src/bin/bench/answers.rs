//! Assistant answers: token relay, against a `skein` release binary in its own process and
//! the fake OpenAI-compatible provider (in this process) streaming as fast as it can.
//!
//! - tokens relayed per second to 1 and to 100 subscribers of the conversation (SSE), and the
//!   server's CPU time per relayed token (its utime + stime over the run);
//! - 200 and 2,000 concurrent generations at 20 tokens/s each (ten per conversation, one subscriber
//!   each): the delay from the provider writing a token (its timestamp is the token) to a
//!   subscriber having parsed it, p50 and p99.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use skein_tests::fake_llm::{FakeLlm, unix_micros};
use skein_tests::{TestApp, TestUser};

use crate::realtime::{percentile, start_server};

/// What the subscribers of one phase saw.
#[derive(Default)]
struct Tally {
    deltas: AtomicU64,
    /// Characters of content received (a delta may carry several tokens).
    chars: AtomicU64,
    /// `clock-` tokens received.
    stamps: AtomicU64,
    done: AtomicU64,
    first_delta_us: AtomicU64,
    last_done_us: AtomicU64,
    latencies: std::sync::Mutex<Vec<Duration>>,
    /// Record latencies only while set (the steady state, every answer running).
    record: std::sync::atomic::AtomicBool,
}

/// Opens `n` SSE connections to the conversation's stream, counting deltas and ends, and
/// (for `clock-` tokens) recording each delta's delay.
async fn subscribe(app: &TestApp, user: &TestUser, conv: &str, n: usize, tally: &Arc<Tally>) {
    let url = format!("{}/api/conversations/{conv}/stream", app.base);
    for _ in 0..n {
        let res = app.http.get(&url).bearer_auth(&user.token).send().await.unwrap();
        read_frames(res, tally.clone());
    }
}

/// Reads a subscriber's SSE stream in a task of its own, tallying what it receives.
fn read_frames(res: reqwest::Response, tally: Arc<Tally>) {
    assert_eq!(res.status(), 200);
    tokio::spawn(async move {
        let mut body = res.bytes_stream();
        let mut pending = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            // Every complete frame, in one pass (then one drain): linear in what arrived.
            let mut start = 0;
            while let Some(end) = pending[start..].find("\n\n") {
                let frame = &pending[start..start + end];
                start += end + 2;
                let now = unix_micros();
                if frame.contains("event: message.delta") {
                    tally.first_delta_us.compare_exchange(0, now as u64, Ordering::Relaxed, Ordering::Relaxed).ok();
                    tally.deltas.fetch_add(1, Ordering::Relaxed);
                    // Fake tokens need no JSON escapes: the content runs to the next quote.
                    let content = frame.split("\"delta\":\"").nth(1).and_then(|s| s.split('"').next());
                    let content = content.unwrap_or_default();
                    tally.chars.fetch_add(content.len() as u64, Ordering::Relaxed);
                    let stamps: Vec<u128> = content.split(';').filter_map(|s| s.parse().ok()).collect();
                    tally.stamps.fetch_add(stamps.len() as u64, Ordering::Relaxed);
                    for sent in stamps.into_iter().filter(|_| tally.record.load(Ordering::Relaxed)) {
                        let delay = Duration::from_micros(now.saturating_sub(sent) as u64);
                        tally.latencies.lock().unwrap().push(delay);
                    }
                } else if frame.contains("event: message.done") {
                    tally.last_done_us.store(now as u64, Ordering::Relaxed);
                    tally.done.fetch_add(1, Ordering::Relaxed);
                } else if frame.contains("event: resync") {
                    eprintln!("a subscriber was cut off: {frame}");
                }
            }
            pending.drain(..start);
        }
    });
}

/// The process's CPU time so far (user + system).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux.
}

/// The machine's busy and total CPU time so far (all cores), from `/proc/stat`.
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

async fn wait_for(tally: &Tally, done: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while tally.done.load(Ordering::Relaxed) < done && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tally.done.load(Ordering::Relaxed), done, "every subscriber saw every answer end");
}

/// A thread root answered by `assistant`.
async fn thread(app: &TestApp, user: &TestUser, assistant: &str, conv: &str) -> String {
    let body = json!({ "content": "go", "settings": { "assistant_id": assistant } });
    app.post(&format!("/api/threads/{conv}/root"), user, body).await.expect(201).str("id")
}

pub async fn run(binary: &str, database_url: &str) {
    let llm = FakeLlm::start().await;
    let config = std::env::temp_dir().join(format!("skein-bench-answers-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "[llm]\nmax_running_per_user = 5000\nmax_running_per_instance = 5000\n\n\
             [[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\ndefault_model = \"tokens-1\"\n",
            llm.base_url
        ),
    )
    .unwrap();
    let server = start_server(binary, database_url, "answers", config.to_str()).await;
    let pid = server.child.id();
    let app = &server.app;
    let (alice, bob) = (app.register("Alice").await, app.register("Bob").await);
    let ws = app.workspace(&alice, &[&bob]).await;
    let assistant = app
        .post(&format!("/api/workspaces/{ws}/assistants"), &alice, json!({ "name": "Bench", "provider": "fake" }))
        .await
        .expect(201)
        .str("id");
    println!("\n## Assistant answers: token relay (SSE, server in its own process, fake provider flat out)\n");
    println!(
        "| subscribers | tokens | token deliveries | delta events | tokens/s relayed | token deliveries/s | server CPU µs per token | per token delivery |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let only: Option<usize> = std::env::var("BENCH_ANSWERS").ok().and_then(|v| v.parse().ok());
    for (subscribers, tokens) in [(1usize, 100_000u64), (100, 10_000)].into_iter().filter(|_| only.is_none()) {
        let conv = app.channel(&alice, &ws, &[&bob]).await;
        let root = thread(app, &alice, &assistant, &conv).await;
        let tally = Arc::new(Tally::default());
        subscribe(app, &bob, &conv, subscribers, &tally).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cpu_before = cpu_time(pid);
        let model = format!("tokens-{tokens}");
        app.post(&format!("/api/messages/{root}/generate"), &alice, json!({ "model": model })).await.expect(201);
        wait_for(&tally, subscribers as u64, Duration::from_secs(300)).await;
        let cpu = cpu_time(pid) - cpu_before;
        let expected: u64 = (0..tokens).map(|i| format!("t{i} ").len() as u64).sum();
        let chars = tally.chars.load(Ordering::Relaxed);
        assert_eq!(chars, expected * subscribers as u64, "every token reached every subscriber");
        let deliveries = tokens * subscribers as u64;
        let events = tally.deltas.load(Ordering::Relaxed);
        let span = Duration::from_micros(
            tally.last_done_us.load(Ordering::Relaxed) - tally.first_delta_us.load(Ordering::Relaxed),
        );
        println!(
            "| {subscribers} | {tokens} | {deliveries} | {events} | {:.0} | {:.0} | {:.2} | {:.2} |",
            tokens as f64 / span.as_secs_f64(),
            deliveries as f64 / span.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / tokens as f64,
            cpu.as_secs_f64() * 1e6 / deliveries as f64,
        );
    }

    // Concurrent answers at 20 tokens/s (a minute each), ten per conversation with one
    // subscriber each (200 events/s per connection): 200 answers, then 2,000.
    let ctx = Ctx { app, pid, user: &alice, viewer: &bob, ws: &ws, assistant: &assistant };
    for conversations in [20, 200].into_iter().filter(|c| only.is_none_or(|o| o == c * PER_CONVERSATION)) {
        floor_answers(&llm, conversations).await;
        concurrent_answers(&ctx, conversations).await;
    }
    let _ = std::fs::remove_file(config);
}

/// What a concurrent phase needs.
struct Ctx<'a> {
    app: &'a TestApp,
    pid: u32,
    user: &'a TestUser,
    viewer: &'a TestUser,
    ws: &'a str,
    assistant: &'a str,
}

/// Answers per conversation and tokens per answer in the concurrent phases.
const PER_CONVERSATION: usize = 10;
const CLOCK_TOKENS: u64 = 1_200;

/// `conversations` × 10 answers at 20 tokens/s; delays are recorded for 20 s once every
/// answer runs.
async fn concurrent_answers(ctx: &Ctx<'_>, conversations: usize) {
    let Ctx { app, pid, user, viewer, ws, assistant } = *ctx;
    let tally = Arc::new(Tally::default());
    let mut roots = Vec::new();
    for _ in 0..conversations {
        let conv = app.channel(user, ws, &[viewer]).await;
        subscribe(app, viewer, &conv, 1, &tally).await;
        for _ in 0..PER_CONVERSATION {
            roots.push(thread(app, user, assistant, &conv).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let model = format!("clock-{CLOCK_TOKENS}-every-50");
    let started = Instant::now();
    for batch in roots.chunks(100) {
        futures_util::future::join_all(batch.iter().map(|root| {
            let (path, body, user) = (format!("/api/messages/{root}/generate"), json!({ "model": model }), user);
            async move { app.post(&path, user, body).await }
        }))
        .await
        .into_iter()
        .for_each(|r| {
            r.expect(201);
        });
    }
    steady_state("Skein", pid, &tally, roots.len(), started.elapsed()).await;
}

/// The same load through the bare relay of `floor.rs`, in its own process.
async fn floor_answers(llm: &FakeLlm, conversations: usize) {
    use std::io::BufRead;
    let exe = std::env::current_exe().unwrap();
    let mut relay = Relay(
        std::process::Command::new(exe)
            .args(["floor-relay", &llm.base_url])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut port = String::new();
    std::io::BufReader::new(relay.0.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let base = format!("http://127.0.0.1:{}", port.trim());
    let http = reqwest::Client::new();
    let tally = Arc::new(Tally::default());
    for c in 0..conversations {
        read_frames(http.get(format!("{base}/subscribe/c{c}")).send().await.unwrap(), tally.clone());
    }
    let started = Instant::now();
    let starts: Vec<String> = (0..conversations * PER_CONVERSATION)
        .map(|i| format!("{base}/start/c{}/clock-{CLOCK_TOKENS}-every-50", i / PER_CONVERSATION))
        .collect();
    for batch in starts.chunks(100) {
        for res in futures_util::future::join_all(batch.iter().map(|url| http.post(url).send())).await {
            assert_eq!(res.unwrap().status(), 202);
        }
    }
    steady_state("bare relay (floor)", relay.0.id(), &tally, starts.len(), started.elapsed()).await;
}

/// The bare relay's process, stopped when the phase ends (or fails).
struct Relay(std::process::Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Times `answers` running answers for 20 s once all run, waits for their ends and prints the
/// delays, with the relay's (process `pid`) CPU, this process's and the machine's.
async fn steady_state(relay: &str, pid: u32, tally: &Tally, answers: usize, ramp: Duration) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = Duration::from_secs(20);
    let cpu_before = cpu_time(pid);
    let (busy_before, total_before) = machine_cpu();
    let bench_before = cpu_time(std::process::id());
    tally.record.store(true, Ordering::Relaxed);
    tokio::time::sleep(window).await;
    tally.record.store(false, Ordering::Relaxed);
    let cpu = cpu_time(pid) - cpu_before;
    let bench_cpu = cpu_time(std::process::id()) - bench_before;
    let (busy_after, total_after) = machine_cpu();
    let machine_busy = (busy_after - busy_before) as f64 * 100.0 / (total_after - total_before).max(1) as f64;
    wait_for(tally, answers as u64, Duration::from_secs(180)).await;
    assert_eq!(tally.stamps.load(Ordering::Relaxed), answers as u64 * CLOCK_TOKENS, "every token delivered");
    let mut latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
    println!(
        "\n{relay}: {answers} concurrent answers at 20 tokens/s (all started within {:.1} s; {} tokens timed over {} s; CPU: relay {:.0}% of one core, this load generator {:.0}%, machine {:.0}% busy): provider→subscriber delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms\n",
        ramp.as_secs_f64(),
        latencies.len(),
        window.as_secs(),
        cpu.as_secs_f64() * 100.0 / window.as_secs_f64(),
        bench_cpu.as_secs_f64() * 100.0 / window.as_secs_f64(),
        machine_busy,
        percentile(&mut latencies, 0.50),
        percentile(&mut latencies, 0.99),
        percentile(&mut latencies, 1.0),
    );
}
