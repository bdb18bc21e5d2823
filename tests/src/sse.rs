//! Stream clients for tests and the benchmark: SSE over reqwest (parsing the wire format
//! ourselves, as a browser would) and WebSocket over tokio-tungstenite.

use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{TestApp, TestUser};

/// How long a test waits for an event it expects.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// One received event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The SSE `id:` (the event's cursor), if any.
    pub id: Option<String>,
    /// The SSE `event:` name.
    pub name: String,
    /// The JSON envelope.
    pub data: Value,
}

impl Received {
    pub fn kind(&self) -> &str {
        self.data["type"].as_str().unwrap_or_default()
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open SSE connection.
pub struct SseClient {
    body: ByteStream,
    buffer: String,
    /// The last `id:` seen, as a browser's EventSource keeps it.
    pub last_id: Option<String>,
    /// The `retry:` the server announced.
    pub retry: Option<u64>,
    /// Keep-alive comments seen.
    pub comments: usize,
    /// Whether live-only `unread.update`s (those others' messages cause, sent at timings of
    /// their own) are returned; most tests compare logged transcripts and leave them out.
    live_unread: bool,
}

impl SseClient {
    /// Opens `path` (e.g. `/api/stream`) as `user`, resuming after `last_id`.
    pub async fn open(app: &TestApp, user: &TestUser, path: &str, last_id: Option<&str>) -> Self {
        Self::try_open(app, Some(&user.token), path, last_id).await.unwrap_or_else(|r| panic!("stream refused: {r:?}"))
    }

    /// Opens a stream, or returns the refusal's status and body.
    pub async fn try_open(
        app: &TestApp,
        token: Option<&str>,
        path: &str,
        last_id: Option<&str>,
    ) -> Result<Self, (u16, Value)> {
        if last_id.is_none() {
            app.settle().await;
        }
        let mut req = app.http.get(format!("{}{path}", app.base)).header("accept", "text/event-stream");
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("stream request");
        let status = res.status().as_u16();
        if status != 200 {
            let body = res.json().await.unwrap_or(Value::Null);
            return Err((status, body));
        }
        let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(content_type.starts_with("text/event-stream"), "content type {content_type}");
        Ok(Self {
            body: Box::pin(res.bytes_stream()),
            buffer: String::new(),
            last_id: None,
            retry: None,
            comments: 0,
            live_unread: false,
        })
    }

    /// Also return live-only `unread.update`s.
    pub fn with_live_unread(mut self) -> Self {
        self.live_unread = true;
        self
    }

    /// The next event within `wait`; `Err(())` on timeout, `Ok(None)` when the stream ended.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Received>, ()> {
        tokio::time::timeout(wait, self.next_or_end()).await.map_err(|_| ())
    }

    /// The next event; panics when the stream ends or nothing comes in time.
    pub async fn next(&mut self) -> Received {
        match self.next_within(PATIENCE).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("stream ended"),
            Err(()) => panic!("no event within {PATIENCE:?}"),
        }
    }

    /// The next `n` events.
    pub async fn take(&mut self, n: usize) -> Vec<Received> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }

    /// Events until one of type `kind` (inclusive).
    pub async fn until(&mut self, kind: &str) -> Vec<Received> {
        let mut out = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.kind() == kind;
            out.push(event);
            if done {
                return out;
            }
        }
    }

    async fn next_or_end(&mut self) -> Option<Received> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = self.parse(&frame)
                    && (self.live_unread || !is_live_unread(&event.data))
                {
                    return Some(event);
                }
                continue;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Err(_)) | None => return None,
            }
        }
    }

    fn parse(&mut self, frame: &str) -> Option<Received> {
        let (mut id, mut name, mut data) = (None, String::from("message"), String::new());
        for line in frame.lines() {
            if line.starts_with(':') {
                self.comments += 1;
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim_start().to_owned());
            } else if let Some(v) = line.strip_prefix("event:") {
                name = v.trim_start().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            } else if let Some(v) = line.strip_prefix("retry:") {
                self.retry = v.trim().parse().ok();
            }
        }
        if data.is_empty() {
            return None;
        }
        if id.is_some() {
            self.last_id.clone_from(&id);
        }
        Some(Received { id, name, data: serde_json::from_str(&data).expect("event data is JSON") })
    }
}

/// A live-only `unread.update` (no cursor).
fn is_live_unread(envelope: &Value) -> bool {
    envelope["type"] == "unread.update" && envelope.get("cursor").is_none_or(Value::is_null)
}

/// An open WebSocket.
pub struct WsClient {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// As [`SseClient`]'s.
    live_unread: bool,
}

impl WsClient {
    /// Opens `/api/ws?{query}` as `user` (with an `Origin` when given).
    pub async fn open(app: &TestApp, user: &TestUser, query: &str, origin: Option<&str>) -> Result<Self, u16> {
        if !query.contains("after=") {
            app.settle().await;
        }
        let url = format!("{}/api/ws?{query}", app.base.replace("http://", "ws://"));
        let mut req = url.into_client_request().expect("ws request");
        req.headers_mut().insert("authorization", format!("Bearer {}", user.token).parse().expect("header"));
        if let Some(origin) = origin {
            req.headers_mut().insert("origin", origin.parse().expect("header"));
        }
        match tokio_tungstenite::connect_async(req).await {
            Ok((socket, _)) => Ok(Self { socket, live_unread: false }),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
            Err(e) => panic!("websocket: {e}"),
        }
    }

    /// Also return live-only `unread.update`s.
    pub fn with_live_unread(mut self) -> Self {
        self.live_unread = true;
        self
    }

    /// The next event envelope; panics on timeout or close.
    pub async fn next(&mut self) -> Value {
        self.next_within(PATIENCE).await.expect("websocket event in time").expect("websocket open")
    }

    /// `Err(())` on timeout, `Ok(None)` when closed.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        tokio::time::timeout(wait, async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        let envelope: Value = serde_json::from_str(&text).expect("JSON frame");
                        if self.live_unread || !is_live_unread(&envelope) {
                            return Some(envelope);
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .map_err(|_| ())
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket.send(Message::Text(frame.to_string().into())).await.expect("websocket send");
    }
}
