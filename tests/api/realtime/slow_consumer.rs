//! A connection that stops reading is cut off with a `resync` hint; nobody else waits for it.

use std::time::Duration;

use skein_tests::TestApp;
use skein_tests::sse::SseClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::room;

#[tokio::test]
async fn a_slow_consumer_is_cut_off_without_delaying_others() {
    const POSTS: usize = 400;
    let app = TestApp::spawn_with(|c| c.realtime.connection_buffer = 32).await;
    let r = room(&app).await;

    // A client that reads nothing: a tiny receive buffer, so the server's writes back up fast.
    let addr = app.base.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(addr.parse().unwrap()).await.unwrap();
    let request = format!(
        "GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        r.bob.token
    );
    slow.write_all(request.as_bytes()).await.unwrap();
    let mut fast = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    // The slow client's subscription is registered once its response headers arrive.
    let mut head = [0u8; 12];
    slow.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");

    // The fast reader keeps reading while big messages fill the socket buffers between the
    // server and the idle client; it gets everything.
    let reader = tokio::spawn(async move { fast.take(POSTS).await });
    let content = "x".repeat(15_000);
    for _ in 0..POSTS {
        app.root(&r.alice, &r.conv, &content).await;
    }
    let events = reader.await.unwrap();
    assert!(events.iter().all(|e| e.kind() == "thread.new"));

    // The slow one, read at last: what it had room for, then a resync, then the end.
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut raw)).await;
    assert!(read.is_ok(), "the slow connection was closed by the server");
    let text = String::from_utf8_lossy(&raw);
    let delivered = text.matches("event: thread.new").count();
    assert!(delivered < POSTS, "cut off before the end ({delivered} delivered)");
    let tail = &text[text.len().saturating_sub(400)..];
    assert!(tail.contains("\"type\":\"resync\"") && tail.contains("slow_consumer"), "ends with resync: {tail}");
}
