//! Unread counts against a model computed here, over random trees and read cursors.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use skein_tests::TestApp;
use skein_tests::sse::SseClient;

use super::room;

#[derive(Debug, Clone)]
enum Op {
    /// A root by author (0 = Alice, 1 = Bob, 2 = Carol).
    Root(u8),
    /// A reply by author to the i-th message (modulo).
    Reply(u8, usize),
    /// Bob reads the conversation up to the i-th message.
    ReadConversation(usize),
    /// Bob reads a thread up to the i-th message (in that message's thread).
    ReadThread(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => (0u8..3).prop_map(Op::Root),
            5 => (0u8..3, any::<usize>()).prop_map(|(a, i)| Op::Reply(a, i)),
            1 => any::<usize>().prop_map(Op::ReadConversation),
            1 => any::<usize>().prop_map(Op::ReadThread),
        ],
        1..35,
    )
}

struct Posted {
    id: String,
    root: String,
    is_root: bool,
    seq: i64,
    by_bob: bool,
}

/// What the counts must be, from the messages and Bob's cursors.
fn model(
    posted: &[Posted],
    conversation_read: i64,
    thread_read: &BTreeMap<String, i64>,
) -> (i64, BTreeMap<String, i64>) {
    let roots = posted.iter().filter(|m| m.is_root && !m.by_bob && m.seq > conversation_read).count() as i64;
    let mut threads = BTreeMap::new();
    for m in posted.iter().filter(|m| !m.is_root && !m.by_bob) {
        let cursor = conversation_read.max(thread_read.get(&m.root).copied().unwrap_or(0));
        if m.seq > cursor {
            *threads.entry(m.root.clone()).or_insert(0) += 1;
        }
    }
    (roots, threads)
}

fn counts_of(entry: &Value) -> (i64, BTreeMap<String, i64>) {
    let threads = entry["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["root_id"].as_str().unwrap().to_owned(), t["unread"].as_i64().unwrap()))
        .collect();
    (entry["unread"].as_i64().unwrap(), threads)
}

#[test]
fn unread_counts_match_a_model_over_random_trees_and_cursors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config { cases: 8, failure_persistence: None, ..Config::default() });
    runner
        .run(&ops(), |ops| {
            rt.block_on(async {
                let app = TestApp::spawn().await;
                let r = room(&app).await;
                let carol = app.register("Carol").await;
                app.post(&format!("/api/workspaces/{}/members", r.ws), &r.alice, json!({ "user_id": carol.id }))
                    .await
                    .expect(201);
                app.post(&format!("/api/conversations/{}/members", r.conv), &r.alice, json!({ "user_id": carol.id }))
                    .await
                    .expect(201);
                let authors = [&r.alice, &r.bob, &carol];
                let path = format!("/api/conversations/{}/stream", r.conv);
                let mut stream = SseClient::open(&app, &r.bob, &path, None).await.with_live_unread();
                let mut posted: Vec<Posted> = Vec::new();
                let (mut conversation_read, mut thread_read) = (0i64, BTreeMap::new());
                let mut last_read_counts = None;
                for op in ops {
                    let read = match op {
                        Op::Root(a) => {
                            let path = format!("/api/threads/{}/root", r.conv);
                            let m = app.post(&path, authors[a as usize], json!({ "content": "r" })).await.expect(201);
                            posted.push(Posted {
                                id: m.str("id"),
                                root: m.str("id"),
                                is_root: true,
                                seq: m.body["seq"].as_i64().unwrap(),
                                by_bob: a == 1,
                            });
                            None
                        }
                        Op::Reply(a, i) if !posted.is_empty() => {
                            let parent = &posted[i % posted.len()];
                            let path = format!("/api/messages/{}/reply", parent.id);
                            let m = app.post(&path, authors[a as usize], json!({ "content": "x" })).await.expect(201);
                            posted.push(Posted {
                                id: m.str("id"),
                                root: parent.root.clone(),
                                is_root: false,
                                seq: m.body["seq"].as_i64().unwrap(),
                                by_bob: a == 1,
                            });
                            None
                        }
                        Op::ReadConversation(i) if !posted.is_empty() => {
                            let m = &posted[i % posted.len()];
                            let moved = m.seq > conversation_read;
                            conversation_read = conversation_read.max(m.seq);
                            Some((json!({ "message_id": m.id }), moved))
                        }
                        Op::ReadThread(i) if !posted.is_empty() => {
                            let m = &posted[i % posted.len()];
                            let cursor = thread_read.entry(m.root.clone()).or_insert(0);
                            let moved = m.seq > *cursor;
                            *cursor = (*cursor).max(m.seq);
                            Some((json!({ "message_id": m.id, "root_id": m.root }), moved))
                        }
                        _ => None,
                    };
                    if let Some((body, moved)) = read {
                        let res =
                            app.post(&format!("/api/conversations/{}/read", r.conv), &r.bob, body).await.expect(200);
                        prop_assert_eq!(counts_of(&res.body), model(&posted, conversation_read, &thread_read));
                        if moved {
                            last_read_counts = Some(res.body.clone());
                        }
                    }
                }
                let all = app.get("/api/conversations/unread", &r.bob).await.expect(200);
                let entry = all.body["conversations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["conversation_id"] == r.conv.as_str())
                    .ok_or_else(|| TestCaseError::fail("conversation listed"))?
                    .clone();
                prop_assert_eq!(counts_of(&entry), model(&posted, conversation_read, &thread_read));

                // Every cursor move reached Bob's stream as a logged unread.update (with an id);
                // the last carries the counts of the last move.
                let end = app.root(&r.alice, &r.conv, "END").await;
                posted.push(Posted { id: end.clone(), root: end.clone(), is_root: true, seq: i64::MAX, by_bob: false });
                let expected = model(&posted, conversation_read, &thread_read);
                let (mut last_logged, mut seen_end) = (None, false);
                loop {
                    let e = stream.next().await;
                    seen_end |= e.data["message_id"] == end.as_str();
                    if e.kind() != "unread.update" {
                        continue;
                    }
                    if e.id.is_some() {
                        prop_assert!(!seen_end, "no cursor moved after END");
                        last_logged = Some(e.data["data"].clone());
                    } else if seen_end && counts_of(&e.data["data"]) == expected {
                        // Others' messages raised the counts: a live-only update with the exact
                        // counts (including END) follows them.
                        break;
                    }
                }
                prop_assert_eq!(last_logged, last_read_counts);
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test]
async fn read_cursors_only_move_forward_and_reach_every_device() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let (first, second) = (app.root(&r.alice, &r.conv, "one").await, app.root(&r.alice, &r.conv, "two").await);
    let mut phone = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let mut laptop = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let mut alice = SseClient::open(&app, &r.alice, "/api/stream", None).await;
    let read = format!("/api/conversations/{}/read", r.conv);

    let after_second = app.post(&read, &r.bob, json!({ "message_id": second })).await.expect(200);
    assert_eq!(after_second.body["unread"], 0);
    let older = app.post(&read, &r.bob, json!({ "message_id": first })).await.expect(200);
    assert_eq!(older.body["unread"], 0, "an older message does not move the cursor back");
    for device in [&mut phone, &mut laptop] {
        let update = device.next().await;
        assert_eq!(update.kind(), "unread.update");
        assert_eq!(update.data["data"]["unread"], 0);
    }
    app.root(&r.bob, &r.conv, "mine").await;
    let next = alice.next().await;
    assert_eq!(next.kind(), "thread.new", "Alice never sees Bob's unread.update");
    // Only one update was sent: the backwards move changed nothing.
    assert_eq!(phone.next().await.kind(), "thread.new");

    let all = app.get("/api/conversations/unread", &r.bob).await.expect(200);
    assert_eq!(all.body["conversations"][0]["unread"], 0, "own messages are never unread");
    let foreign = app.root(&r.alice, &app.channel(&r.alice, &r.ws, &[]).await, "private").await;
    app.post(&read, &r.bob, json!({ "message_id": foreign })).await.expect_problem(404, "not_found");
}

#[tokio::test]
async fn others_messages_send_unread_updates_to_every_device_and_after_a_replay() {
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let mut phone = SseClient::open(&app, &r.bob, "/api/stream", None).await.with_live_unread();
    let mut laptop =
        skein_tests::sse::WsClient::open(&app, &r.bob, "", None).await.expect("websocket").with_live_unread();
    let mut alice = SseClient::open(&app, &r.alice, "/api/stream", None).await.with_live_unread();

    let root = app.root(&r.alice, &r.conv, "news").await;
    let posted = phone.next().await;
    assert_eq!(posted.kind(), "thread.new");
    let update = phone.next().await;
    assert_eq!(update.kind(), "unread.update");
    assert_eq!(update.id, None, "derived from the log, not in it");
    assert_eq!(update.data["conversation_id"], r.conv.as_str());
    assert_eq!(update.data["data"]["unread"], 1);
    let frames: Vec<Value> = vec![laptop.next().await, laptop.next().await];
    assert_eq!(frames[1]["type"], "unread.update");
    assert_eq!(frames[1]["data"], update.data["data"], "every device gets the same counts");

    // A reply counts in its thread.
    app.reply(&r.alice, &root, "details").await;
    let until = phone.until("unread.update").await;
    let counts = &until.last().unwrap().data["data"];
    assert_eq!(counts["unread"], 1);
    assert_eq!(counts["threads"], json!([{ "root_id": root, "unread": 1, "mentions": 0 }]));

    // The author gets none for their own messages: Alice's next update is for Bob's post.
    app.root(&r.bob, &r.conv, "answer").await;
    let kinds: Vec<String> = alice.until("unread.update").await.iter().map(|e| e.kind().to_owned()).collect();
    assert_eq!(kinds, ["thread.new", "message.created", "thread.activity", "thread.new", "unread.update"]);

    // Away, then back: the replay is followed by the counts it changed.
    let cursor = phone.until("thread.new").await.last().unwrap().id.clone();
    drop(phone);
    app.root(&r.alice, &r.conv, "while away").await;
    let mut back = SseClient::open(&app, &r.bob, "/api/stream", cursor.as_deref()).await.with_live_unread();
    let replayed = back.until("unread.update").await;
    assert_eq!(replayed[0].data["data"]["root"]["content"], "while away");
    assert_eq!(replayed.last().unwrap().data["data"]["unread"], 2);
}
