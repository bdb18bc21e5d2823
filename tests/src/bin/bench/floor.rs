//! The floor under the concurrent-answers numbers: the least any relay can do on this machine.
//!
//! `skein-bench floor-relay PROVIDER_URL` runs a bare relay in its own process: for each
//! `POST /start/{conversation}/{model}` it streams a completion from the fake provider over a
//! plain TCP connection and, for every `data:` chunk, writes one `message.delta` frame straight
//! to the conversation's subscriber socket (`GET /subscribe/{conversation}`): no HTTP
//! framework, no JSON parsing, no fan-out task, no database. The bench drives it with the same
//! provider, the same subscribers and the same clock tokens as Skein, so the delay it shows is
//! what the machine (kernel, loopback TCP, the load generator on the same cores) costs before
//! any server logic; what Skein shows above it is what Skein adds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

type Subscribers = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<OwnedWriteHalf>>>>>;

/// Runs the relay; prints its port on the first line of stdout.
pub async fn serve(provider: &str) {
    let provider = provider.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let subscribers = Subscribers::default();
    while let Ok((socket, _)) = listener.accept().await {
        let _ = socket.set_nodelay(true);
        tokio::spawn(handle(socket, subscribers.clone(), provider.clone()));
    }
}

/// Reads up to the end of an HTTP head; returns the request line and what followed the head.
async fn read_head(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let line = String::from_utf8_lossy(&data[..end]).lines().next().unwrap_or_default().to_owned();
            return Some((line, data.split_off(end + 4)));
        }
    }
}

async fn handle(mut socket: TcpStream, subscribers: Subscribers, provider: String) {
    let Some((line, _)) = read_head(&mut socket).await else { return };
    let path: Vec<&str> = line.split(' ').nth(1).unwrap_or_default().split('/').collect();
    match path.as_slice() {
        ["", "subscribe", conversation] => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            let (mut read, mut write) = socket.into_split();
            if write.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let conversation = (*conversation).to_owned();
            let writer = Arc::new(tokio::sync::Mutex::new(write));
            subscribers.lock().unwrap().insert(conversation.clone(), writer);
            // Until the subscriber goes away.
            let _ = read.read(&mut [0u8; 64]).await;
            subscribers.lock().unwrap().remove(&conversation);
        }
        ["", "start", conversation, model] => {
            let writer = subscribers.lock().unwrap().get(*conversation).cloned();
            let status = if writer.is_some() { "202 Accepted" } else { "404 Not Found" };
            let head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(head.as_bytes()).await;
            drop(socket);
            if let Some(writer) = writer {
                relay(&provider, model, &writer).await;
            }
        }
        _ => {
            let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
        }
    }
}

/// Streams one completion, writing each chunk's content to the subscriber as it arrives.
async fn relay(provider: &str, model: &str, subscriber: &tokio::sync::Mutex<OwnedWriteHalf>) {
    let Ok(mut upstream) = TcpStream::connect(provider).await else { return };
    let _ = upstream.set_nodelay(true);
    let body = format!("{{\"model\":\"{model}\",\"stream\":true,\"messages\":[]}}");
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {provider}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    if upstream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let Some((_, mut pending)) = read_head(&mut upstream).await else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut start = 0;
        let mut out = String::new();
        while let Some(end) = pending[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = String::from_utf8_lossy(&pending[start..start + end]);
            start += end + 2;
            let content = frame.split("\"content\":\"").nth(1).and_then(|s| s.split('"').next());
            if let Some(content) = content.filter(|c| !c.is_empty()) {
                let _ = write!(out, "event: message.delta\ndata: {{\"delta\":\"{content}\"}}\n\n");
            }
        }
        pending.drain(..start);
        if !out.is_empty() && subscriber.lock().await.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        match upstream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
    // The answer's end, as Skein's subscribers see it.
    let _ = subscriber.lock().await.write_all(b"event: message.done\ndata: {}\n\n").await;
}

/// The floor under the realtime numbers: `skein-bench floor-broadcast` runs a bare SSE
/// broadcaster in its own process. `GET /api/conversations/{id}/stream` subscribes a
/// connection; `POST /api/threads/{id}/root` answers 201 and hands its body, as one
/// `thread.new` frame, to every subscriber of the conversation through a broadcast channel
/// (each subscriber's task writes its own socket, as Skein's connections do). No framework, no
/// JSON, no database, no log; sockets keep the OS defaults (Nagle on), like Skein's. The
/// realtime bench drives it with the same subscribers, rates and clock as Skein.
pub async fn serve_broadcast() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let channels = Channels::default();
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(broadcast_connection(socket, channels.clone()));
    }
}

type Channels = Arc<Mutex<HashMap<String, tokio::sync::broadcast::Sender<Arc<[u8]>>>>>;

/// Frames a subscriber may fall behind by before it skips (Skein's connection buffer).
const SUBSCRIBER_BUFFER: usize = 1024;

fn channel(channels: &Channels, conversation: &str) -> tokio::sync::broadcast::Sender<Arc<[u8]>> {
    let mut channels = channels.lock().unwrap();
    channels
        .entry(conversation.to_owned())
        .or_insert_with(|| tokio::sync::broadcast::channel(SUBSCRIBER_BUFFER).0)
        .clone()
}

/// Serves requests on one kept-alive connection until a stream takes it over or it closes.
async fn broadcast_connection(mut socket: TcpStream, channels: Channels) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let head_end = loop {
            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
        pending.drain(..head_end + 4);
        let length: usize = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while pending.len() < length {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
        let body: Vec<u8> = pending.drain(..length).collect();
        let path: Vec<&str> = head.split(' ').nth(1).unwrap_or_default().split('/').collect();
        match path.as_slice() {
            ["", "api", "conversations", conversation, "stream"] => {
                let mut frames = channel(&channels, conversation).subscribe();
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    match frames.recv().await {
                        Ok(frame) => {
                            if socket.write_all(&frame).await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    }
                }
            }
            ["", "api", "threads", conversation, "root"] => {
                let mut frame = b"event: thread.new\ndata: ".to_vec();
                frame.extend_from_slice(&body);
                frame.extend_from_slice(b"\n\n");
                let _ = channel(&channels, conversation).send(frame.into());
                let reply = "HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                if socket.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
            _ => {
                let _ = socket.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").await;
            }
        }
    }
}
