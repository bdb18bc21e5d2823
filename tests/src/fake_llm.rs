//! A local OpenAI-compatible server for tests: it speaks the real streaming protocol of
//! `POST /v1/chat/completions` (SSE `data: {chunk}` frames, then `data: [DONE]`), so
//! async-openai and our code run unchanged against it.
//!
//! What it does is chosen per request by the model name:
//! - `tokens-N` (optionally `-every-MS`): N tokens `t0 `, `t1 `, …, then a finish reason,
//!   usage and `[DONE]`;
//! - `stop-N`: N tokens, then the connection closes without a finish reason or `[DONE]`;
//! - `status-CODE`: an OpenAI error body with that HTTP status (e.g. 429, 500, 400);
//! - `hang`: headers, then nothing;
//! - `malformed-N`: N tokens, then a chunk that is not JSON;
//! - `nul-N` (optionally `-every-MS`): as `tokens`, each token with a U+0000 in it (`t0\0 `),
//!   which PostgreSQL's `text` refuses;
//! - `wide-N` (optionally `-every-MS`): as `tokens`, each token 3,000 `é` (6,000 bytes);
//! - `clock-N` (optionally `-every-MS`): as `tokens`, each token the time it was sent
//!   (microseconds since the Unix epoch, then `;`), for latency benchmarks.
//!
//! It counts requests, tokens sent and requests the client aborted (the socket closed
//! before the stream ended), and keeps every request body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Counters {
    requests: usize,
    tokens: usize,
    aborted: usize,
    bodies: Vec<Value>,
}

/// A running fake provider.
#[derive(Clone)]
pub struct FakeLlm {
    /// `http://127.0.0.1:PORT/v1`: the `base_url` to configure.
    pub base_url: String,
    counters: Arc<Mutex<Counters>>,
}

/// A provider named `name` at `base_url` (the fake's, or a dead address) with the fake's
/// defaults: model `tokens-5`, a short request timeout.
pub fn provider_config(name: &str, base_url: &str) -> skein_infra::answers::ProviderConfig {
    skein_infra::answers::ProviderConfig {
        name: name.into(),
        base_url: base_url.into(),
        api_key_env: None,
        default_model: "tokens-5".into(),
        // Its model names are its behaviours: any goes.
        allowed_models: vec!["*".into()],
        request_timeout_secs: 2,
        context_windows: Default::default(),
        default_context_window: 8192,
    }
}

impl FakeLlm {
    /// This fake as provider `name`.
    pub fn provider(&self, name: &str) -> skein_infra::answers::ProviderConfig {
        provider_config(name, &self.base_url)
    }

    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake provider");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let counters = Arc::new(Mutex::new(Counters::default()));
        let shared = counters.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // As real providers' servers: each token leaves at once.
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve(socket, shared.clone()));
            }
        });
        Self { base_url, counters }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn requests(&self) -> usize {
        self.counters().requests
    }

    pub fn tokens_sent(&self) -> usize {
        self.counters().tokens
    }

    pub fn aborted(&self) -> usize {
        self.counters().aborted
    }

    /// Every request body received, in order.
    pub fn bodies(&self) -> Vec<Value> {
        self.counters().bodies.clone()
    }
}

async fn serve(mut socket: TcpStream, counters: Arc<Mutex<Counters>>) {
    let Some((head, body)) = read_request(&mut socket).await else { return };
    // For suites in other processes (`skein-live`): what this provider has seen.
    if head.starts_with("get /stats") {
        let stats = {
            let c = counters.lock().unwrap_or_else(|e| e.into_inner());
            json!({ "requests": c.requests, "tokens": c.tokens, "aborted": c.aborted }).to_string()
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            stats.len()
        );
        let _ = socket.write_all(format!("{head}{stats}").as_bytes()).await;
        return;
    }
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    {
        let mut c = counters.lock().unwrap_or_else(|e| e.into_inner());
        c.requests += 1;
        c.bodies.push(body);
    }
    let parts: Vec<&str> = model.split('-').collect();
    let number = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0);
    match parts.first().copied() {
        Some("status") => {
            let code = number(1);
            let body = json!({ "error": { "message": format!("fake failure {code}"), "type": "fake", "code": null } })
                .to_string();
            let head = format!(
                "HTTP/1.1 {code} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
        }
        Some("hang") => {
            let _ = socket.write_all(sse_head().as_bytes()).await;
            // Until the client gives up.
            let mut buf = [0u8; 64];
            if matches!(socket.read(&mut buf).await, Ok(0) | Err(_)) {
                counters.lock().unwrap_or_else(|e| e.into_inner()).aborted += 1;
            }
        }
        Some(kind @ ("tokens" | "stop" | "malformed" | "clock" | "nul" | "wide")) => {
            let (n, every) = (number(1), if parts.get(2) == Some(&"every") { number(3) } else { 0 });
            let ended = stream_tokens(&mut socket, &counters, n as usize, Duration::from_millis(every), kind).await;
            if !ended {
                counters.lock().unwrap_or_else(|e| e.into_inner()).aborted += 1;
            }
        }
        _ => {
            let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    }
}

fn sse_head() -> String {
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n".into()
}

/// Streams the tokens; false when the client went away first.
async fn stream_tokens(
    socket: &mut TcpStream,
    counters: &Mutex<Counters>,
    n: usize,
    every: Duration,
    kind: &str,
) -> bool {
    if socket.write_all(sse_head().as_bytes()).await.is_err() {
        return false;
    }
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut c = json!({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }],
        });
        if !usage.is_null() {
            c["usage"] = usage;
        }
        format!("data: {c}\n\n")
    };
    for i in 0..n {
        if !every.is_zero() {
            tokio::time::sleep(every).await;
        }
        let content = match kind {
            "clock" => format!("{};", unix_micros()),
            // JSON's escape for U+0000.
            "nul" => format!("t{i}\\u0000 "),
            "wide" => "é".repeat(3000),
            _ => format!("t{i} "),
        };
        // The same bytes `chunk` would make, without building JSON per token (benchmarks
        // stream tens of thousands of tokens a second from this process).
        let frame = format!(
            "data: {{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"fake\",\
             \"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
        );
        if socket.write_all(frame.as_bytes()).await.is_err() || socket.flush().await.is_err() {
            return false;
        }
        counters.lock().unwrap_or_else(|e| e.into_inner()).tokens += 1;
    }
    let tail = match kind {
        "stop" => String::new(),
        "malformed" => "data: {not json\n\n".into(),
        _ => {
            let usage = json!({ "prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n });
            format!("{}data: [DONE]\n\n", chunk(json!({}), json!("stop"), usage))
        }
    };
    socket.write_all(tail.as_bytes()).await.is_ok() && socket.flush().await.is_ok()
}

/// Reads one HTTP request; returns its head (lower case) and JSON body (`null` if none).
async fn read_request(socket: &mut TcpStream) -> Option<(String, Value)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let header_end = loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&data[..header_end]).to_lowercase();
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while data.len() < header_end + length {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    }
    if length == 0 {
        return Some((head, Value::Null));
    }
    serde_json::from_slice(&data[header_end..header_end + length]).ok().map(|body| (head, body))
}

/// Microseconds since the Unix epoch (comparable across processes on one machine).
pub fn unix_micros() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros())
}
