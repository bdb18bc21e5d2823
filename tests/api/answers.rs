//! Assistant answers end to end: the real server, async-openai unchanged, and the fake
//! OpenAI-compatible provider (`skein_tests::fake_llm`) speaking the real streaming protocol.

use std::time::Duration;

use serde_json::{Value, json};
use skein_server::config::Config;
use skein_tests::fake_llm::{FakeLlm, provider_config};
use skein_tests::sse::{Received, SseClient, WsClient};
use skein_tests::{TestApp, TestUser};

mod caps;
mod faults;
mod quotas;
mod visibility;
mod ws_chat;

/// A server whose provider `fake` is the fake, and a workspace with an assistant on it.
struct Setup {
    app: TestApp,
    llm: FakeLlm,
    owner: TestUser,
    member: TestUser,
    conv: String,
    assistant: String,
}

async fn setup_with(adjust: impl FnOnce(&mut Config)) -> Setup {
    let llm = FakeLlm::start().await;
    let base_url = llm.base_url.clone();
    let app = TestApp::spawn_with(|config| {
        config.llm.providers =
            vec![provider_config("fake", &base_url), provider_config("down", "http://127.0.0.1:9/v1")];
        config.llm.flush_interval_ms = 100;
        config.llm.recovery_interval_secs = 1;
        adjust(config);
    })
    .await;
    let (owner, member) = (app.register("Ann").await, app.register("Bob").await);
    let ws = app.workspace(&owner, &[&member]).await;
    let conv = app.channel(&owner, &ws, &[&member]).await;
    let assistant = app
        .post(
            &format!("/api/workspaces/{ws}/assistants"),
            &owner,
            json!({ "name": "Helper", "provider": "fake", "system_prompt": "Be brief." }),
        )
        .await
        .expect(201)
        .str("id");
    Setup { app, llm, owner, member, conv, assistant }
}

async fn setup() -> Setup {
    setup_with(|_| {}).await
}

impl Setup {
    /// A thread root answered by the workspace's assistant.
    async fn thread(&self, content: &str) -> String {
        let body = json!({ "content": content, "settings": { "assistant_id": self.assistant } });
        self.app.post(&format!("/api/threads/{}/root", self.conv), &self.owner, body).await.expect(201).str("id")
    }

    /// Asks for an answer to `parent` with this fake behaviour; returns the assistant message.
    async fn generate(&self, parent: &str, model: &str) -> Value {
        let res =
            self.app.post(&format!("/api/messages/{parent}/generate"), &self.owner, json!({ "model": model })).await;
        let res = res.expect(201);
        assert_eq!(res.body["status"], "streaming");
        assert_eq!(res.body["role"], "assistant");
        assert_eq!(res.body["parent_id"], parent);
        res.body
    }

    async fn message(&self, id: &str) -> Value {
        self.app.get(&format!("/api/messages/{id}"), &self.owner).await.expect(200).body
    }

    /// Waits until the message is no longer streaming.
    async fn ended(&self, id: &str) -> Value {
        for _ in 0..300 {
            let message = self.message(id).await;
            if message["status"] != "streaming" {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{id} still streaming");
    }

    async fn conversation_stream(&self) -> SseClient {
        SseClient::open(&self.app, &self.owner, &format!("/api/conversations/{}/stream", self.conv), None).await
    }
}

/// The events about `message` until its `message.done` (inclusive), as envelopes.
async fn events_of(stream: &mut SseClient, message: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let event = stream.next().await.data;
        if event["message_id"] != message && event["data"]["message_id"] != message {
            continue;
        }
        let done = event["type"] == "message.done";
        out.push(event);
        if done {
            return out;
        }
    }
}

/// Checks deltas are contiguous from 0 and returns their concatenation.
fn concatenated(events: &[Value]) -> String {
    let mut content = String::new();
    for e in events.iter().filter(|e| e["type"] == "message.delta") {
        assert_eq!(e["data"]["offset"].as_u64(), Some(content.chars().count() as u64), "contiguous offsets");
        content.push_str(e["data"]["delta"].as_str().unwrap());
    }
    content
}

fn tokens(n: usize) -> String {
    (0..n).map(|i| format!("t{i} ")).collect()
}

#[tokio::test]
async fn an_answer_streams_over_sse_and_websocket_and_is_stored_with_usage() {
    let s = setup().await;
    let mut sse = s.conversation_stream().await;
    let mut ws = WsClient::open(&s.app, &s.owner, &format!("conversation_id={}", s.conv), None).await.unwrap();
    let root = s.thread("What is Rust?").await;
    let answer = s.generate(&root, "tokens-30-every-5").await;
    let id = answer["id"].as_str().unwrap();

    let events = events_of(&mut sse, id).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "message.created");
    assert_eq!(events[0]["data"]["status"], "streaming");
    assert_eq!(kinds[1], "thread.activity");
    assert!(kinds[2..kinds.len() - 1].iter().all(|k| *k == "message.delta"), "{kinds:?}");
    let content = concatenated(&events);
    assert_eq!(content, tokens(30));
    let done = &events.last().unwrap()["data"];
    assert_eq!(done["status"], "complete");
    assert_eq!(done["finish_reason"], "stop");
    assert_eq!(done["usage"], json!({ "input_tokens": 7, "output_tokens": 30, "total_tokens": 37 }));

    // The WebSocket carries the same events in the same order.
    let mut over_ws = Vec::new();
    while over_ws.last().is_none_or(|e: &Value| e["type"] != "message.done") {
        let e = ws.next().await;
        if e["message_id"] == id {
            over_ws.push(e);
        }
    }
    let strip = |e: &Value| (e["type"].clone(), e["data"].clone());
    assert_eq!(over_ws.iter().map(strip).collect::<Vec<_>>(), events.iter().map(strip).collect::<Vec<_>>());

    // Stored: content, status, provider, model, usage, timing.
    let stored = s.message(id).await;
    assert_eq!(stored["content"], content);
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["author_id"], Value::Null);
    let generation = &stored["generation"];
    assert_eq!(
        (generation["provider"].as_str(), generation["model"].as_str()),
        (Some("fake"), Some("tokens-30-every-5"))
    );
    assert_eq!(generation["usage"]["output_tokens"], 30);
    assert_eq!(generation["finish_reason"], "stop");
    assert_eq!(generation["assistant_id"], s.assistant.as_str());
    assert!(generation["time_to_first_token_ms"].as_i64().unwrap() <= generation["duration_ms"].as_i64().unwrap());
    // Nothing follows the terminal event for that message.
    let after = sse.next_within(Duration::from_millis(300)).await;
    assert!(!matches!(after, Ok(Some(ref e)) if e.data["message_id"] == id), "{after:?}");
}

/// Reads a generation's own stream until `n` deltas or its end; returns the events.
async fn read_follow(stream: &mut SseClient, max_deltas: usize) -> Vec<Received> {
    let mut out = Vec::new();
    let mut deltas = 0;
    while deltas < max_deltas {
        let event = stream.next().await;
        let done = event.kind() == "message.done";
        deltas += usize::from(event.kind() == "message.delta");
        out.push(event);
        if done {
            break;
        }
    }
    out
}

#[tokio::test]
async fn a_generation_stream_resumes_without_gap_or_duplicate() {
    let s = setup().await;
    let root = s.thread("Count").await;
    let answer = s.generate(&root, "tokens-60-every-20").await;
    let id = answer["id"].as_str().unwrap();
    let path = format!("/api/messages/{id}/stream");

    // A client reads a few deltas, drops, and resumes with its Last-Event-ID.
    let mut first = SseClient::open(&s.app, &s.owner, &path, None).await;
    let mut got = read_follow(&mut first, 5).await;
    let last_id = first.last_id.clone().expect("events carry ids");
    drop(first);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut again = SseClient::open(&s.app, &s.owner, &path, Some(&last_id)).await;
    got.extend(read_follow(&mut again, usize::MAX).await);
    // A second client (another member) joins mid-stream from nothing, and a third on another
    // instance (which follows what the database has, at the flush interval).
    let mut late = SseClient::open(&s.app, &s.member, &path, None).await;
    let peer = s.app.peer().await;
    let mut elsewhere = SseClient::open(&peer, &s.member, &path, None).await;
    let late_events = read_follow(&mut late, usize::MAX).await;
    let elsewhere_events = read_follow(&mut elsewhere, usize::MAX).await;

    let final_content = s.ended(id).await["content"].as_str().unwrap().to_owned();
    assert_eq!(final_content, tokens(60));
    for events in [&got, &late_events, &elsewhere_events] {
        let envelopes: Vec<Value> = events.iter().map(|e| e.data.clone()).collect();
        assert_eq!(concatenated(&envelopes), final_content, "no gap, no duplicate");
        assert_eq!(events.last().unwrap().kind(), "message.done");
        assert_eq!(events.last().unwrap().data["data"]["status"], "complete");
    }
    // A finished answer: its content and end at once; `?offset=` skips what the client has.
    let mut finished = SseClient::open(&s.app, &s.owner, &format!("{path}?offset=4"), None).await;
    let events = read_follow(&mut finished, usize::MAX).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].data["data"]["offset"], 4);
    assert_eq!(events[0].data["data"]["delta"].as_str().unwrap(), &final_content[4..]);
    assert!(matches!(finished.next_within(Duration::from_secs(2)).await, Ok(None)), "the stream ends");
    // Only assistant messages stream.
    let refused = s.app.get(&format!("/api/messages/{root}/stream"), &s.owner).await;
    refused.expect_problem(409, "not_an_assistant_message");
}

/// A follower's access is checked again while the answer streams: one who leaves the
/// conversation stops receiving it (their conversation streams stop at once; this one within
/// the re-check interval), and never gets its end.
#[tokio::test]
async fn a_follower_who_leaves_the_conversation_stops_receiving_the_answer() {
    let s = setup().await;
    let root = s.thread("Count slowly").await;
    let answer = s.generate(&root, "tokens-300-every-20").await;
    let id = answer["id"].as_str().unwrap();
    let mut follow = SseClient::open(&s.app, &s.member, &format!("/api/messages/{id}/stream"), None).await;
    read_follow(&mut follow, 3).await;
    s.app.delete(&format!("/api/conversations/{}/members/{}", s.conv, s.member.id), &s.owner).await.expect(204);
    let mut after = Vec::new();
    loop {
        match follow.next_within(Duration::from_secs(10)).await {
            Ok(Some(event)) => after.push(event.kind().to_owned()),
            Ok(None) => break,
            Err(()) => panic!("the stream went on without ending"),
        }
    }
    assert!(!after.iter().any(|k| k == "message.done"), "the end went to someone who left: {after:?}");
    assert_eq!(s.ended(id).await["status"], "complete", "the answer itself went on");
}

#[tokio::test]
async fn cancel_aborts_the_provider_request_and_keeps_the_partial_answer() {
    let s = setup().await;
    let mut sse = s.conversation_stream().await;
    let root = s.thread("Go on").await;
    let answer = s.generate(&root, "tokens-500-every-10").await;
    let id = answer["id"].as_str().unwrap();
    // Some content first.
    loop {
        let e = sse.next().await.data;
        if e["type"] == "message.delta" && e["data"]["offset"].as_u64().unwrap() > 20 {
            break;
        }
    }
    let cancelled = s.app.post(&format!("/api/messages/{id}/cancel"), &s.owner, json!({})).await.expect(200);
    assert_eq!(cancelled.body["status"], "cancelled");
    let partial = cancelled.str("content");
    assert!(!partial.is_empty() && tokens(500).starts_with(&partial), "{partial:?}");
    // Idempotent.
    let again = s.app.post(&format!("/api/messages/{id}/cancel"), &s.owner, json!({})).await.expect(200);
    assert_eq!(again.body["status"], "cancelled");

    let events = events_of(&mut sse, id).await;
    let done = &events.last().unwrap()["data"];
    assert_eq!((done["status"].as_str(), done["finish_reason"].as_str()), (Some("cancelled"), Some("cancelled")));
    let after = sse.next_within(Duration::from_millis(500)).await;
    assert!(!matches!(after, Ok(Some(ref e)) if e.data["message_id"] == id), "one terminal event: {after:?}");
    // The provider saw the request aborted: no more tokens are paid for.
    for _ in 0..100 {
        if s.llm.aborted() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.llm.aborted(), 1);
    let sent = s.llm.tokens_sent();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.llm.tokens_sent(), sent, "nothing more is streamed");
    assert!(sent < 500);
    assert_eq!(s.message(id).await["content"].as_str(), Some(partial.as_str()));
    // Cancel is for assistant messages.
    s.app
        .post(&format!("/api/messages/{root}/cancel"), &s.owner, json!({}))
        .await
        .expect_problem(409, "not_an_assistant_message");
}

#[tokio::test]
async fn cancel_racing_completion_ends_in_one_consistent_state() {
    let s = setup().await;
    let mut sse = s.conversation_stream().await;
    let root = s.thread("Race").await;
    for round in 0..6 {
        // A short answer and a cancel sent as it finishes (earlier or later by round).
        let answer = s.generate(&root, "tokens-4-every-5").await;
        let id = answer["id"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(5 * round)).await;
        let cancelled = s.app.post(&format!("/api/messages/{id}/cancel"), &s.owner, json!({})).await.expect(200);
        let events = events_of(&mut sse, &id).await;
        let done = &events.last().unwrap()["data"];
        let stored = s.ended(&id).await;
        assert_eq!(done["status"], stored["status"], "the event and the row agree");
        assert_eq!(cancelled.body["status"], stored["status"]);
        assert!(["complete", "cancelled"].contains(&stored["status"].as_str().unwrap()));
        assert_eq!(events.iter().filter(|e| e["type"] == "message.done").count(), 1);
        assert!(tokens(4).starts_with(stored["content"].as_str().unwrap()));
    }
}

#[tokio::test]
async fn provider_failures_end_the_answer_failed_with_its_partial_content() {
    let s = setup().await;
    let mut sse = s.conversation_stream().await;
    let root = s.thread("Fail, please").await;
    let cases = [
        ("status-429", "provider_rate_limited", ""),
        ("status-500", "provider_error", ""),
        ("status-400", "provider_error", ""),
        ("malformed-3", "malformed_stream", "t0 t1 t2 "),
        ("stop-3", "stream_incomplete", "t0 t1 t2 "),
        ("hang", "provider_timeout", ""),
    ];
    for (model, code, partial) in cases {
        let answer = s.generate(&root, model).await;
        let id = answer["id"].as_str().unwrap();
        let events = events_of(&mut sse, id).await;
        let error = events.iter().find(|e| e["type"] == "error").unwrap_or_else(|| panic!("{model}: no error event"));
        assert_eq!(error["data"]["code"], "generation_failed", "{model}");
        assert_eq!(error["data"]["reason"], code, "{model}");
        let done = &events.last().unwrap()["data"];
        assert_eq!((done["status"].as_str(), done["error"]["code"].as_str()), (Some("failed"), Some(code)), "{model}");
        let stored = s.message(id).await;
        assert_eq!(stored["status"], "failed", "{model}");
        assert_eq!(stored["content"], partial, "{model}: the partial content is kept");
        assert_eq!(stored["generation"]["error"]["code"], code, "{model}: recorded on the message");
        assert_eq!(stored["generation"]["finish_reason"], "error");
    }
    // An unreachable provider fails at once with its own code.
    let body = json!({ "content": "anyone?", "settings": {} });
    let lonely = s.app.post(&format!("/api/threads/{}/root", s.conv), &s.owner, body).await.expect(201).str("id");
    let ws_assistants = format!(
        "/api/workspaces/{}/assistants",
        s.app.get(&format!("/api/conversations/{}", s.conv), &s.owner).await.str("workspace_id")
    );
    let down =
        s.app.post(&ws_assistants, &s.owner, json!({ "name": "Down", "provider": "down" })).await.expect(201).str("id");
    let res = s
        .app
        .post(&format!("/api/messages/{lonely}/generate"), &s.owner, json!({ "assistant_id": down }))
        .await
        .expect(201);
    let stored = s.ended(res.body["id"].as_str().unwrap()).await;
    assert_eq!(stored["generation"]["error"]["code"], "provider_unreachable");
}

#[tokio::test]
async fn a_killed_server_leaves_the_answer_failed_interrupted_with_what_was_flushed() {
    let mut s = setup().await;
    let root = s.thread("Long story").await;
    let mut sse = s.conversation_stream().await;
    let answer = s.generate(&root, "tokens-1000-every-10").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    // Wait for a few flushes, and remember where the stream was.
    let mut cursor = None;
    loop {
        let e = sse.next().await;
        cursor = e.id.clone().or(cursor);
        if e.kind() == "message.delta" && e.data["data"]["offset"].as_u64().unwrap() > 60 {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    drop(sse);
    // While it streams, the message shows what has been flushed.
    let streaming = s.message(&id).await;
    assert_eq!(streaming["status"], "streaming");
    let so_far = streaming["content"].as_str().unwrap().to_owned();
    assert!(!so_far.is_empty() && tokens(1000).starts_with(&so_far), "{so_far:?}");
    s.app.restart().await;

    let stored = s.ended(&id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["generation"]["finish_reason"], "interrupted");
    assert_eq!(stored["generation"]["error"]["code"], "interrupted");
    let content = stored["content"].as_str().unwrap();
    assert!(content.starts_with(&so_far) && tokens(1000).starts_with(content), "the flushed content: {content:?}");
    let chunks = s.app.get(&format!("/api/messages/{id}/chunks"), &s.owner).await.expect(200).body;
    let rebuilt: String = chunks["data"].as_array().unwrap().iter().map(|c| c["content"].as_str().unwrap()).collect();
    assert_eq!(rebuilt, content, "the content is exactly what was flushed");
    assert_eq!(chunks["status"], "failed");
    // A client resuming from before the crash gets its message.done.
    let path = format!("/api/conversations/{}/stream", s.conv);
    let mut resumed = SseClient::open(&s.app, &s.owner, &path, cursor.as_deref()).await;
    let events = events_of(&mut resumed, &id).await;
    let done = &events.last().unwrap()["data"];
    assert_eq!((done["status"].as_str(), done["finish_reason"].as_str()), (Some("failed"), Some("interrupted")));
}

#[tokio::test]
async fn a_graceful_shutdown_ends_running_answers_with_their_terminal_event() {
    let mut s = setup().await;
    let root = s.thread("Slow").await;
    let answer = s.generate(&root, "tokens-1000-every-10").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.app.restart_gracefully().await;
    let stored = s.message(&id).await;
    assert_eq!(stored["status"], "cancelled", "ended by the old instance, not recovered by the new");
    assert!(!stored["content"].as_str().unwrap().is_empty());
    let path = format!("/api/messages/{id}/stream");
    let mut follow = SseClient::open(&s.app, &s.owner, &path, None).await;
    let events = read_follow(&mut follow, usize::MAX).await;
    assert_eq!(events.last().unwrap().data["data"]["status"], "cancelled");
}

#[tokio::test]
async fn the_model_receives_exactly_the_branch_trimmed_from_the_oldest_end() {
    let s = setup_with(|config| {
        config.llm.providers[0].context_windows.insert("tokens-2".into(), 200);
    })
    .await;
    let body = json!({ "content": "q1", "settings": { "assistant_id": s.assistant, "persona": "Thread persona." } });
    let root = s.app.post(&format!("/api/threads/{}/root", s.conv), &s.owner, body).await.expect(201).str("id");
    let a1 = s.app.reply(&s.owner, &root, "a1").await;
    s.app.reply(&s.member, &root, "another branch").await;
    let q2 = s.app.reply(&s.member, &a1, "q2").await;
    let answer = s.generate(&q2, "tokens-3").await;
    s.ended(answer["id"].as_str().unwrap()).await;

    let body = s.llm.bodies().last().unwrap().clone();
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([
            { "role": "system", "content": "Be brief.\n\nThread persona." },
            { "role": "user", "content": "Ann: q1" },
            { "role": "user", "content": "Ann: a1" },
            { "role": "user", "content": "Bob: q2" },
        ]),
        "the path from the root, not the other branch; names with several people"
    );

    // A small context window: the oldest messages go, the one answered stays. Budget =
    // 200 - max_tokens 100 = 100 tokens; system 10 (4 + 6) and each long message 54 (4 + 50).
    let long = |c: char| c.to_string().repeat(200);
    let root = s
        .app
        .post(
            &format!("/api/threads/{}/root", s.conv),
            &s.owner,
            json!({ "content": long('a'), "settings": { "assistant_id": s.assistant } }),
        )
        .await
        .expect(201)
        .str("id");
    let b = s.app.reply(&s.owner, &root, &long('b')).await;
    let res = s
        .app
        .post(&format!("/api/messages/{b}/generate"), &s.owner, json!({ "model": "tokens-2", "max_tokens": 100 }))
        .await;
    s.ended(res.expect(201).body["id"].as_str().unwrap()).await;
    let body = s.llm.bodies().last().unwrap().clone();
    assert_eq!(body["max_tokens"], 100);
    let contents: Vec<&str> =
        body["messages"].as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, vec!["Be brief.".to_owned(), long('b')], "trimmed from the oldest end");
}

#[tokio::test]
async fn regenerating_keeps_both_answers_and_one_runs_per_parent() {
    let s = setup().await;
    let root = s.thread("Tell me").await;
    let first = s.generate(&root, "tokens-40-every-10").await;
    let first_id = first["id"].as_str().unwrap();
    let busy = s.app.post(&format!("/api/messages/{root}/generate"), &s.member, json!({})).await;
    let busy = busy.expect_problem(409, "generation_running");
    assert_eq!(busy.body["message_id"], first_id);
    s.ended(first_id).await;
    let second = s.generate(&root, "tokens-3").await;
    let second_id = second["id"].as_str().unwrap();
    s.ended(second_id).await;
    let tree = s.app.get(&format!("/api/threads/{root}/tree"), &s.owner).await.expect(200).body;
    let children: Vec<&str> = tree["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["parent_id"] == root.as_str())
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(children, vec![first_id, second_id], "siblings, the old answer kept");
    assert_eq!(s.message(first_id).await["content"], tokens(40));
    assert_eq!(tree["thread"]["reply_count"], 2);
    assert_eq!(tree["thread"]["participant_ids"], json!([s.owner.id]), "assistants are not participants");
}

#[tokio::test]
async fn database_writes_per_answer_grow_with_its_duration_not_its_tokens() {
    let s = setup_with(|config| config.llm.flush_max_chars = 1_000_000).await;
    let root = s.thread("Write a lot").await;
    let mut flushes = Vec::new();
    // About one second each: 50 tokens, then 1,000 tokens.
    for model in ["tokens-50-every-20", "tokens-1000-every-1"] {
        let answer = s.generate(&root, model).await;
        let id = answer["id"].as_str().unwrap();
        let stored = s.ended(id).await;
        let chunks = s.app.get(&format!("/api/messages/{id}/chunks"), &s.owner).await.expect(200).body;
        let chunks = chunks["data"].as_array().unwrap().clone();
        let rebuilt: String = chunks.iter().map(|c| c["content"].as_str().unwrap()).collect();
        assert_eq!(rebuilt, stored["content"].as_str().unwrap());
        // Each chunk is one flush (one statement); the end is one more transaction.
        let duration_ms = stored["generation"]["duration_ms"].as_u64().unwrap();
        assert!(chunks.len() as u64 <= duration_ms / 100 + 2, "{} flushes in {duration_ms} ms", chunks.len());
        flushes.push(chunks.len());
    }
    assert!(flushes[1] <= flushes[0] * 3 + 2, "20x the tokens, not 20x the writes: {flushes:?}");
}

#[tokio::test]
async fn reply_with_generate_auto_reply_and_auto_title() {
    let s = setup().await;
    let mut sse = s.conversation_stream().await;
    let body = json!({ "content": "Hello", "settings": { "assistant_id": s.assistant, "auto_title": true } });
    let root = s.app.post(&format!("/api/threads/{}/root", s.conv), &s.owner, body).await.expect(201).str("id");
    let res = s
        .app
        .post(&format!("/api/messages/{root}/reply"), &s.owner, json!({ "content": "Hi bot", "generate": true }))
        .await;
    let res = res.expect(201);
    assert_eq!(res.body["content"], "Hi bot");
    let assistant_message = &res.body["assistant_message"];
    assert_eq!(assistant_message["parent_id"], res.body["id"]);
    assert_eq!(assistant_message["status"], "streaming");
    // The title comes after the first answer, on thread.activity.
    let titled = loop {
        let e = sse.next().await.data;
        if e["type"] == "thread.activity" && e["data"]["title"].is_string() {
            break e;
        }
    };
    assert_eq!(titled["data"]["title"], "t0 t1 t2 t3 t4", "the fake's answer as a title");
    let tree = s.app.get(&format!("/api/threads/{root}/tree"), &s.owner).await.expect(200).body;
    assert_eq!(tree["thread"]["title"], "t0 t1 t2 t3 t4");
    assert_eq!(tree["thread"]["settings"]["auto_title"], true);

    // A retried send returns the original reply and starts no second answer.
    let retry = json!({ "content": "Hi bot", "generate": true, "client_msg_id": "c-1" });
    let first = s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, retry.clone()).await.expect(201);
    let again = s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, retry).await.expect(200);
    assert_eq!(again.body["id"], first.body["id"]);
    assert!(again.body.get("assistant_message").is_none());
    let subtree = s.app.get(&format!("/api/threads/{root}/tree?from={}", first.str("id")), &s.owner).await.expect(200);
    assert_eq!(subtree.body["data"].as_array().unwrap().len(), 2, "the reply and one answer");
    // A thread is edited through its root only.
    let not_root = first.str("id");
    s.app
        .patch(&format!("/api/threads/{not_root}"), &s.owner, json!({ "tags": ["x"] }))
        .await
        .expect_problem(404, "not_found");
    // No `generate`, no auto_reply: just the reply.
    let plain =
        s.app.post(&format!("/api/messages/{root}/reply"), &s.owner, json!({ "content": "thanks" })).await.expect(201);
    assert!(plain.body.get("assistant_message").is_none());
    // The thread's auto_reply answers every reply; settings changes are announced.
    let settings = json!({ "assistant_id": s.assistant, "auto_reply": true });
    let patched =
        s.app.patch(&format!("/api/threads/{root}"), &s.owner, json!({ "settings": settings, "tags": ["ai"] })).await;
    assert_eq!(patched.expect(200).body["settings"]["auto_reply"], true);
    let auto =
        s.app.post(&format!("/api/messages/{root}/reply"), &s.member, json!({ "content": "again" })).await.expect(201);
    assert_eq!(auto.body["assistant_message"]["status"], "streaming");
    // Members who did not write the root cannot edit the thread; bad settings are refused.
    s.app
        .patch(&format!("/api/threads/{root}"), &s.member, json!({ "title": "mine" }))
        .await
        .expect_problem(403, "forbidden");
    let bad = json!({ "settings": { "assistant_id": "01J00000000000000000000000", "temperature": 3 } });
    let refused =
        s.app.patch(&format!("/api/threads/{root}"), &s.owner, bad).await.expect_problem(422, "validation_failed");
    let fields: Vec<&str> =
        refused.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["settings.temperature", "settings.assistant_id"]);
}

#[tokio::test]
async fn feedback_is_one_rating_per_user_on_assistant_messages() {
    let s = setup().await;
    let root = s.thread("Rate me").await;
    // No body at all: the thread's assistant with its defaults (its model is `tokens-5`).
    let generate = format!("/api/messages/{root}/generate");
    let answer = s.app.request(reqwest::Method::POST, &generate, Some(&s.owner.token), None).await.expect(201).body;
    let id = answer["id"].as_str().unwrap();
    s.ended(id).await;
    let path = format!("/api/messages/{id}/feedback");
    let mine = s.app.put(&path, &s.owner, json!({ "rating": "up", "reason": "helpful" })).await.expect(200);
    assert_eq!(mine.body, json!({ "message_id": id, "mine": "up", "up": 1, "down": 0 }));
    s.app.put(&path, &s.member, json!({ "rating": "up" })).await.expect(200);
    let changed = s.app.put(&path, &s.member, json!({ "rating": "down", "comment": "wrong" })).await.expect(200);
    assert_eq!(changed.body, json!({ "message_id": id, "mine": "down", "up": 1, "down": 1 }));
    assert_eq!(s.message(id).await["feedback"], json!({ "message_id": id, "mine": "up", "up": 1, "down": 1 }));
    let removed = s.app.delete(&path, &s.member).await.expect(200);
    assert_eq!(removed.body, json!({ "message_id": id, "mine": null, "up": 1, "down": 0 }));
    s.app
        .put(&format!("/api/messages/{root}/feedback"), &s.owner, json!({ "rating": "up" }))
        .await
        .expect_problem(409, "not_an_assistant_message");
    s.app.put(&path, &s.owner, json!({ "rating": "meh" })).await.expect_problem(400, "malformed_json");
    let long = json!({ "rating": "up", "reason": "x".repeat(101) });
    let refused = s.app.put(&path, &s.owner, long).await.expect_problem(422, "validation_failed");
    assert_eq!(refused.body["errors"][0]["field"], "reason");
    // Chunks, like streams, are for assistant messages.
    let chunks = s.app.get(&format!("/api/messages/{root}/chunks"), &s.owner).await;
    chunks.expect_problem(409, "not_an_assistant_message");
}

#[tokio::test]
async fn who_may_ask_and_how_many_answers_may_run() {
    let s = setup_with(|config| config.llm.max_running_per_user = 1).await;
    let root = s.thread("Limits").await;
    let other = s.thread("Other").await;
    s.generate(&root, "tokens-100-every-10").await;
    let limited = s.app.post(&format!("/api/messages/{other}/generate"), &s.owner, json!({})).await;
    let limited = limited.expect_problem(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
    // Another user is not limited by Ann's answers.
    let members = s
        .app
        .post(&format!("/api/messages/{other}/generate"), &s.member, json!({ "model": "tokens-100-every-10" }))
        .await
        .expect(201)
        .str("id");
    // Without an assistant anywhere: a clear refusal, nothing stored.
    let bare = s.app.root(&s.owner, &s.conv, "no settings").await;
    s.app
        .post(&format!("/api/messages/{bare}/generate"), &s.member, json!({}))
        .await
        .expect_problem(409, "no_assistant");
    let res = s
        .app
        .post(&format!("/api/messages/{bare}/reply"), &s.member, json!({ "content": "x", "generate": true }))
        .await;
    res.expect_problem(409, "no_assistant");
    let tree = s.app.get(&format!("/api/threads/{bare}/tree"), &s.owner).await.expect(200).body;
    assert_eq!(tree["thread"]["reply_count"], 0, "a refused answer stores nothing");
    // The conversation's default assistant answers threads whose settings name none.
    s.app.post(&format!("/api/messages/{members}/cancel"), &s.member, json!({})).await.expect(200);
    let conv_path = format!("/api/conversations/{}", s.conv);
    let unknown = json!({ "default_assistant_id": "01J00000000000000000000000" });
    s.app.patch(&conv_path, &s.owner, unknown).await.expect_problem(422, "validation_failed");
    let set = s.app.patch(&conv_path, &s.owner, json!({ "default_assistant_id": s.assistant })).await.expect(200);
    assert_eq!(set.body["default_assistant_id"], s.assistant.as_str());
    let answered =
        s.app.post(&format!("/api/messages/{bare}/generate"), &s.member, json!({ "model": "tokens-2" })).await;
    let answered = answered.expect(201).str("id");
    assert_eq!(s.ended(&answered).await["generation"]["assistant_id"], s.assistant.as_str());
    let cleared = s.app.patch(&conv_path, &s.owner, json!({ "default_assistant_id": null })).await.expect(200);
    assert_eq!(cleared.body["default_assistant_id"], Value::Null);
    s.app
        .post(&format!("/api/messages/{bare}/generate"), &s.member, json!({}))
        .await
        .expect_problem(409, "no_assistant");
    // Overrides are checked; a body, when there is one, must be readable.
    let path = format!("/api/messages/{other}/generate");
    s.app.post(&path, &s.member, json!({ "temperature": "hot" })).await.expect_problem(400, "malformed_json");
    let bad = json!({ "assistant_id": "01J00000000000000000000000", "temperature": 5 });
    s.app
        .post(&format!("/api/messages/{other}/generate"), &s.member, bad)
        .await
        .expect_problem(422, "validation_failed");

    // Viewers cannot ask.
    let viewer = s.app.register("Vic").await;
    let ws = s.app.get(&format!("/api/conversations/{}", s.conv), &s.owner).await.str("workspace_id");
    s.app.post(&format!("/api/workspaces/{ws}/members"), &s.owner, json!({ "user_id": viewer.id })).await.expect(201);
    let add = json!({ "user_id": viewer.id, "role": "viewer" });
    s.app.post(&format!("/api/conversations/{}/members", s.conv), &s.owner, add).await.expect(201);
    s.app.post(&format!("/api/messages/{root}/generate"), &viewer, json!({})).await.expect_problem(403, "forbidden");

    // An instance at capacity answers 503 with Retry-After.
    let full = setup_with(|config| config.llm.max_running_per_instance = 1).await;
    let a = full.thread("a").await;
    let b = full.thread("b").await;
    full.generate(&a, "tokens-100-every-10").await;
    let busy = full.app.post(&format!("/api/messages/{b}/generate"), &full.member, json!({})).await;
    assert!(busy.expect_problem(503, "service_unavailable").headers.contains_key("retry-after"));
}

#[tokio::test]
async fn mentioning_an_assistant_asks_it_to_answer_in_a_reply_or_a_new_thread() {
    let s = setup().await;
    // A thread that names no assistant: only the mention asks one.
    let root = s.app.root(&s.owner, &s.conv, "plain").await;
    let body = json!({ "content": format!("<@{}> what is two and two?", s.assistant) });
    let reply = s.app.post(&format!("/api/messages/{root}/reply"), &s.member, body).await.expect(201);
    assert_eq!(reply.body["mentions"], json!([{ "kind": "assistant", "assistant_id": s.assistant }]));
    let answer = &reply.body["assistant_message"];
    assert_eq!(answer["parent_id"], reply.body["id"]);
    let ended = s.ended(answer["id"].as_str().unwrap()).await;
    assert_eq!(ended["status"], "complete");

    let body = json!({ "content": format!("hey <@{}>", s.assistant) });
    let new_root = s.app.post(&format!("/api/threads/{}/root", s.conv), &s.owner, body).await.expect(201).str("id");
    let tree = s.app.get(&format!("/api/threads/{new_root}/tree"), &s.owner).await.expect(200);
    let answer = &tree.body["data"][1];
    assert_eq!((answer["role"].as_str(), answer["parent_id"].as_str()), (Some("assistant"), Some(new_root.as_str())));
    s.ended(answer["id"].as_str().unwrap()).await;
    assert_eq!(s.llm.requests(), 2);

    // An edit that adds the mention changes the mentions but asks nobody.
    let quiet = s.app.root(&s.owner, &s.conv, "later").await;
    let edit = json!({ "content": format!("later <@{}>", s.assistant) });
    let edited = s.app.patch(&format!("/api/messages/{quiet}"), &s.owner, edit).await.expect(200);
    assert_eq!(edited.body["mentions"][0]["kind"], "assistant");
    let tree = s.app.get(&format!("/api/threads/{quiet}/tree"), &s.owner).await.expect(200);
    assert_eq!(tree.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(s.llm.requests(), 2);
}

#[tokio::test]
async fn deleting_a_streaming_answer_cancels_it_and_keeps_no_words() {
    let s = setup().await;
    let root = s.thread("talk slowly").await;
    let answer = s.generate(&root, "tokens-200-every-20").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    // Let some of it flush first.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tombstone = s.app.delete(&format!("/api/messages/{id}"), &s.owner).await.expect(200);
    assert_eq!(tombstone.body["content"], "");
    assert!(tombstone.body["deleted_at"].is_string());
    let ended = s.ended(&id).await;
    assert_eq!(ended["status"], "cancelled");
    assert_eq!(ended["content"], "");
    // Nothing of it is stored: no chunks, no content, even after the runner's last write.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(crate::messaging::traces(&s.app, "t1 ").await, 0);
}

#[tokio::test]
async fn answers_are_found_by_search_once_they_end_and_by_role() {
    let s = setup().await;
    let root = s.thread("what are t3 and friends?").await;
    let answer = s.generate(&root, "tokens-6-every-150").await;
    let id = answer["id"].as_str().unwrap().to_owned();
    let search = async |extra: &[(&str, &str)]| {
        let mut params = vec![("q", "t3 ")];
        params.extend_from_slice(extra);
        super::search::all_hits(&s.app, &s.member, &params, 10).await
    };
    assert_eq!(search(&[]).await, vec![root.clone()], "nothing of a streaming answer is indexed");
    s.ended(&id).await;
    let mut both = search(&[]).await;
    both.sort();
    let mut expected = vec![root.clone(), id.clone()];
    expected.sort();
    assert_eq!(both, expected, "its final content is, when it ends");
    assert_eq!(search(&[("role", "assistant")]).await, vec![id]);
    assert_eq!(search(&[("role", "user")]).await, vec![root]);
}
