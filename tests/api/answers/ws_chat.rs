//! A whole chat over one WebSocket: post, reply with an answer, cancel it, rate it, through
//! the same services as REST (so a retried `client_msg_id` is acknowledged with the original).

use serde_json::{Value, json};
use skein_tests::sse::WsClient;

/// The next `ack`, skipping the events that arrive meanwhile.
async fn next_ack(ws: &mut WsClient) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] == "ack" {
            return frame["data"].clone();
        }
    }
}

#[tokio::test]
async fn a_chat_runs_over_one_websocket_with_acks() {
    let s = super::setup().await;
    let mut ws = WsClient::open(&s.app, &s.owner, &format!("conversation_id={}", s.conv), None).await.unwrap();
    let root = json!({
        "type": "send", "request_id": "r1", "conversation_id": s.conv, "root": true,
        "content": "hello over the socket", "client_msg_id": "c-1", "title": "Socket",
    });
    ws.send(root.clone()).await;
    let first = next_ack(&mut ws).await;
    assert_eq!((first["request_id"].as_str(), first["client_msg_id"].as_str()), (Some("r1"), Some("c-1")));
    assert_eq!(first["status"], 201);
    let root_id = first["message_id"].as_str().unwrap().to_owned();
    // The same frame again: the original, not a second message.
    ws.send(root).await;
    let again = next_ack(&mut ws).await;
    assert_eq!((again["status"].as_u64(), again["message_id"].as_str()), (Some(200), Some(root_id.as_str())));
    let threads = s.app.get(&format!("/api/conversations/{}/threads", s.conv), &s.owner).await.expect(200);
    assert_eq!(threads.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(threads.body["data"][0]["title"], "Socket");

    // A reply that asks the thread's assistant (a long answer, to cancel).
    let settings = json!({ "settings": { "assistant_id": s.assistant, "model": "tokens-400-every-20" } });
    s.app.patch(&format!("/api/threads/{root_id}"), &s.owner, settings).await.expect(200);
    let reply = json!({ "type": "send", "request_id": "r2", "parent_id": root_id, "conversation_id": s.conv,
        "content": "explain", "generate": true });
    ws.send(reply).await;
    let replied = next_ack(&mut ws).await;
    assert_eq!(replied["status"], 201, "{replied}");
    let answer = replied["assistant_message_id"].as_str().unwrap().to_owned();
    ws.send(json!({ "type": "cancel", "request_id": "r3", "message_id": answer })).await;
    let cancelled = next_ack(&mut ws).await;
    assert_eq!((cancelled["request_id"].as_str(), cancelled["status"].as_u64()), (Some("r3"), Some(200)));
    assert_eq!(s.ended(&answer).await["status"], "cancelled");
    ws.send(json!({ "type": "feedback", "request_id": "r4", "message_id": answer, "rating": "down" })).await;
    assert_eq!(next_ack(&mut ws).await["status"], 200);
    let rated = s.app.get(&format!("/api/messages/{answer}"), &s.owner).await.expect(200);
    assert_eq!(rated.body["feedback"]["mine"], "down", "{}", rated.body);

    // Refusals come back as acks with the REST problem; the socket carries on.
    let wrong_room = json!({ "type": "send", "request_id": "r5", "parent_id": root_id,
        "conversation_id": "01JD3Q7ZK6Y1V8W9X0A2B3C4D6", "content": "lost" });
    ws.send(wrong_room).await;
    assert_eq!(next_ack(&mut ws).await["problem"]["code"], "not_found");
    ws.send(json!({ "type": "send", "request_id": "r6", "content": "" , "root": false })).await;
    let invalid = next_ack(&mut ws).await;
    assert_eq!(
        (invalid["status"].as_u64(), invalid["problem"]["code"].as_str()),
        (Some(422), Some("validation_failed"))
    );
    ws.send(json!({ "type": "send", "request_id": "r7", "parent_id": root_id, "content": "still here" })).await;
    assert_eq!(next_ack(&mut ws).await["status"], 201);
    // The member sees all of it: the root once, the replies.
    let tree = s.app.get(&format!("/api/threads/{root_id}/tree"), &s.member).await.expect(200);
    let contents: Vec<&str> =
        tree.body["data"].as_array().unwrap().iter().map(|n| n["content"].as_str().unwrap()).collect();
    assert_eq!(contents.first(), Some(&"hello over the socket"));
    assert!(contents.contains(&"still here") && !contents.contains(&"lost"), "{contents:?}");
}
