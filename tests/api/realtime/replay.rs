//! Exact replay: a client that disconnects anywhere and resumes with `Last-Event-ID` ends up
//! with the same transcript as one that never disconnected, also while writers race.

use std::collections::HashMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use skein_tests::sse::{Received, SseClient};
use skein_tests::{TestApp, TestUser};

use super::{position, room};

#[derive(Debug, Clone)]
enum Op {
    Root,
    /// Reply to the i-th message so far (modulo).
    Reply(usize),
    /// Bob marks the i-th message read (modulo).
    Read(usize),
    Rename,
    /// A post in the workspace-visible lobby, which Bob sees without joining.
    LobbyRoot,
    /// The lobby turns private, or workspace-visible again.
    ToggleLobby,
    /// Bob is demoted to workspace guest, or made a member again.
    ToggleBobGuest,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            2 => Just(Op::Root),
            4 => any::<usize>().prop_map(Op::Reply),
            1 => any::<usize>().prop_map(Op::Read),
            1 => Just(Op::Rename),
            2 => Just(Op::LobbyRoot),
            1 => Just(Op::ToggleLobby),
            1 => Just(Op::ToggleBobGuest),
        ],
        1..30,
    )
}

/// Reads until the sentinel root; reconnects after each count in `cuts` (events read so far).
async fn transcript(app: &TestApp, user: &TestUser, mut stream: SseClient, mut cuts: Vec<usize>) -> Vec<Received> {
    cuts.sort_unstable();
    cuts.dedup();
    let mut out: Vec<Received> = Vec::new();
    loop {
        if cuts.first() == Some(&out.len()) {
            cuts.remove(0);
            let last = out.last().and_then(|e| e.id.clone());
            stream = SseClient::open(app, user, "/api/stream", last.as_deref()).await;
            continue;
        }
        let event = stream.next().await;
        let done = event.kind() == "thread.new" && event.data["data"]["root"]["content"] == "END";
        out.push(event);
        if done {
            return out;
        }
    }
}

#[test]
fn replay_after_random_disconnects_equals_the_uninterrupted_transcript() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config { cases: 8, failure_persistence: None, ..Config::default() });
    let strategy = (ops(), prop::collection::vec(0usize..60, 0..8));
    runner
        .run(&strategy, |(ops, cuts)| {
            rt.block_on(async {
                let app = TestApp::spawn().await;
                let r = room(&app).await;
                let lobby = app.open_channel(&r.alice, &r.ws, "lobby").await;
                let (mut lobby_open, mut bob_guest) = (true, false);
                let mut lobby_posts_for_bob = 0;
                // Both clients are registered before anything happens.
                let steady = SseClient::open(&app, &r.bob, "/api/stream", None).await;
                let first = SseClient::open(&app, &r.bob, "/api/stream", None).await;
                let flaky = tokio::spawn({
                    let (app, bob) = (TestApp::client_for(&app.base), r.bob.clone());
                    async move { transcript(&app, &bob, first, cuts).await }
                });
                let mut messages: Vec<String> = Vec::new();
                for op in ops {
                    match op {
                        Op::Root => messages.push(app.root(&r.alice, &r.conv, "root").await),
                        Op::Reply(i) if !messages.is_empty() => {
                            let parent = messages[i % messages.len()].clone();
                            messages.push(app.reply(&r.alice, &parent, "reply").await);
                        }
                        Op::Read(i) if !messages.is_empty() => {
                            let id = &messages[i % messages.len()];
                            app.post(
                                &format!("/api/conversations/{}/read", r.conv),
                                &r.bob,
                                json!({ "message_id": id }),
                            )
                            .await
                            .expect(200);
                        }
                        Op::Rename => {
                            app.patch(&format!("/api/conversations/{}", r.conv), &r.alice, json!({ "title": "t" }))
                                .await
                                .expect(200);
                        }
                        Op::LobbyRoot => {
                            app.root(&r.alice, &lobby, "lobby").await;
                            lobby_posts_for_bob += usize::from(lobby_open && !bob_guest);
                        }
                        Op::ToggleLobby => {
                            lobby_open = !lobby_open;
                            let visibility = if lobby_open { "workspace" } else { "private" };
                            app.patch(
                                &format!("/api/conversations/{lobby}"),
                                &r.alice,
                                json!({ "visibility": visibility }),
                            )
                            .await
                            .expect(200);
                        }
                        Op::ToggleBobGuest => {
                            bob_guest = !bob_guest;
                            let role = if bob_guest { "guest" } else { "member" };
                            app.patch(
                                &format!("/api/workspaces/{}/members/{}", r.ws, r.bob.id),
                                &r.alice,
                                json!({ "role": role }),
                            )
                            .await
                            .expect(200);
                        }
                        _ => {}
                    }
                }
                app.root(&r.alice, &r.conv, "END").await;
                let mut steady = steady;
                let mut expected = Vec::new();
                loop {
                    let e = steady.next().await;
                    let done = e.kind() == "thread.new" && e.data["data"]["root"]["content"] == "END";
                    expected.push(e);
                    if done {
                        break;
                    }
                }
                let lobby_seen = expected
                    .iter()
                    .filter(|e| e.kind() == "thread.new" && e.data["data"]["root"]["content"] == "lobby")
                    .count();
                prop_assert_eq!(lobby_seen, lobby_posts_for_bob, "lobby posts while Bob could see them");
                let got = flaky.await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(got.len(), expected.len());
                prop_assert!(got == expected, "transcripts differ");
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test]
async fn concurrent_writers_are_delivered_exactly_once_in_order_live_and_on_replay() {
    const WRITERS: usize = 4;
    const POSTS: usize = 30;
    let app = TestApp::spawn().await;
    let r = room(&app).await;
    let second = app.channel(&r.alice, &r.ws, &[&r.bob]).await;
    let mut live = SseClient::open(&app, &r.bob, "/api/stream", None).await;
    let anchor = app.root(&r.alice, &r.conv, "anchor").await;
    let first = live.next().await;

    // Writers race in two conversations, roots and replies, while a reader keeps resuming.
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = TestApp::client_for(&app.base);
        // Even writers post in the anchor's conversation (roots and replies), odd ones roots
        // in the second.
        let in_anchor_conversation = w % 2 == 0;
        let conv = if in_anchor_conversation { r.conv.clone() } else { second.clone() };
        let (alice, anchor) = (r.alice.clone(), anchor.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..POSTS {
                if i % 3 == 0 || !in_anchor_conversation {
                    app.root(&alice, &conv, &format!("w{w}-{i}")).await;
                } else {
                    app.reply(&alice, &anchor, &format!("w{w}-{i}")).await;
                }
            }
        }));
    }
    let resumer = {
        let app = TestApp::client_for(&app.base);
        let bob = r.bob.clone();
        let from = first.id.clone();
        tokio::spawn(async move {
            // Resume every few events, starting from the first event: replay and live interleave.
            let mut out: Vec<Received> = Vec::new();
            let mut last = from;
            'outer: loop {
                let mut stream = SseClient::open(&app, &bob, "/api/stream", last.as_deref()).await;
                for _ in 0..7 {
                    let e = stream.next().await;
                    last.clone_from(&e.id);
                    let done = e.data["data"]["root"]["content"] == "END";
                    out.push(e);
                    if done {
                        break 'outer;
                    }
                }
            }
            out
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    app.root(&r.alice, &r.conv, "END").await;
    let mut expected = Vec::new();
    loop {
        let e = live.next().await;
        let done = e.data["data"]["root"]["content"] == "END";
        expected.push(e);
        if done {
            break;
        }
    }
    let resumed = resumer.await.unwrap();
    assert_eq!(resumed, expected, "resuming reader saw the same events");

    // Exactly once: every post appears once.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for e in &expected {
        if let Some(content) = e.data["data"]["content"]
            .as_str()
            .or(e.data["data"]["root"]["content"].as_str())
            .filter(|c| c.starts_with('w'))
        {
            *seen.entry(content.to_owned()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), WRITERS * POSTS);
    assert!(seen.values().all(|n| *n == 1));
    // In order: cursors increase, and within a conversation so do message sequence numbers.
    assert!(expected.windows(2).all(|w| position(&w[0]) < position(&w[1])));
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    for e in &expected {
        let message = if e.kind() == "thread.new" { &e.data["data"]["root"] } else { &e.data["data"] };
        if let Some(seq) = message["seq"].as_i64() {
            let conv = e.data["conversation_id"].as_str().unwrap().to_owned();
            let previous = last_seq.insert(conv, seq).unwrap_or(0);
            assert!(seq > previous, "sequence order within a conversation");
        }
    }
}
