//! Property test: random sequences of post, edit, delete, react and pin, checked against a
//! model: every thread's tree (content, tombstones, parents, reactions as Bob sees them),
//! each message's edit history, the pins list, and Bob's unread counts.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use skein_tests::{TestApp, TestUser};

const EMOJI: [&str; 3] = ["👍", "🎉", ":ship_it:"];

#[derive(Clone, Debug)]
enum Op {
    /// By Ann (0) or Bob (1); a root, or a reply under an earlier message.
    Post(u8, Option<prop::sample::Index>),
    Edit(prop::sample::Index),
    /// By its author (`false`) or by Ann, the owner (`true`).
    Delete(prop::sample::Index, bool),
    React(prop::sample::Index, u8, usize, bool),
    Pin(prop::sample::Index, bool),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => (0u8..2, proptest::option::of(any::<prop::sample::Index>())).prop_map(|(a, p)| Op::Post(a, p)),
        2 => any::<prop::sample::Index>().prop_map(Op::Edit),
        1 => (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, by_owner)| Op::Delete(i, by_owner)),
        3 => (any::<prop::sample::Index>(), 0u8..2, 0..EMOJI.len(), any::<bool>())
            .prop_map(|(i, u, e, on)| Op::React(i, u, e, on)),
        1 => (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, on)| Op::Pin(i, on)),
    ];
    proptest::collection::vec(op, 1..30)
}

#[derive(Debug)]
struct Model {
    id: String,
    root: usize,
    parent: Option<usize>,
    author: usize,
    content: String,
    /// Earlier contents, oldest first.
    versions: Vec<String>,
    deleted: bool,
    /// When it was pinned (an op counter), if it is.
    pinned: Option<usize>,
    /// Emoji → user → when that reaction was added.
    reactions: BTreeMap<&'static str, BTreeMap<usize, usize>>,
}

impl Model {
    /// `[{emoji, count, me}]` as Bob sees them: by each emoji's oldest standing reaction.
    fn reactions_for_bob(&self) -> Value {
        if self.deleted {
            return json!([]);
        }
        let mut by_first: Vec<(usize, &str, &BTreeMap<usize, usize>)> = self
            .reactions
            .iter()
            .filter(|(_, users)| !users.is_empty())
            .map(|(emoji, users)| (*users.values().min().unwrap(), *emoji, users))
            .collect();
        by_first.sort();
        Value::Array(
            by_first
                .into_iter()
                .map(|(_, emoji, users)| json!({ "emoji": emoji, "count": users.len(), "me": users.contains_key(&1) }))
                .collect(),
        )
    }
}

fn emoji_path(id: &str, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/messages/{id}/reactions/{encoded}")
}

async fn run(app: &TestApp, users: [&TestUser; 2], conv: &str, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut messages: Vec<Model> = Vec::new();
    for (tick, op) in ops.into_iter().enumerate() {
        let count = messages.len();
        let pick = |i: &prop::sample::Index| i.index(count);
        match op {
            Op::Post(author, parent) => {
                let content = format!("m{} by {author}", messages.len());
                let parent = parent.filter(|_| !messages.is_empty()).map(|i| pick(&i));
                let id = match parent {
                    None => app.root(users[author as usize], conv, &content).await,
                    Some(p) => app.reply(users[author as usize], &messages[p].id, &content).await,
                };
                let root = parent.map_or(messages.len(), |p| messages[p].root);
                messages.push(Model {
                    id,
                    root,
                    parent,
                    author: author as usize,
                    content,
                    versions: Vec::new(),
                    deleted: false,
                    pinned: None,
                    reactions: BTreeMap::new(),
                });
            }
            _ if messages.is_empty() => {}
            Op::Edit(i) => {
                let m = &mut messages[pick(&i)];
                let content = format!("{} (edit {tick})", m.content);
                let res =
                    app.patch(&format!("/api/messages/{}", m.id), users[m.author], json!({ "content": content })).await;
                if m.deleted {
                    prop_assert_eq!(res.status, 409);
                } else {
                    prop_assert_eq!(res.status, 200);
                    m.versions.push(std::mem::replace(&mut m.content, content));
                }
            }
            Op::Delete(i, by_owner) => {
                let m = &mut messages[pick(&i)];
                let by = if by_owner { 0 } else { m.author };
                let res = app.delete(&format!("/api/messages/{}", m.id), users[by]).await;
                prop_assert_eq!(res.status, 200);
                m.deleted = true;
                m.pinned = None;
            }
            Op::React(i, user, emoji, on) => {
                let m = &mut messages[pick(&i)];
                let path = emoji_path(&m.id, EMOJI[emoji]);
                let res = if on {
                    app.put(&path, users[user as usize], json!({})).await
                } else {
                    app.delete(&path, users[user as usize]).await
                };
                if m.deleted {
                    prop_assert_eq!(res.status, 409);
                    continue;
                }
                prop_assert_eq!(res.status, 200);
                let reacted = m.reactions.entry(EMOJI[emoji]).or_default();
                if on {
                    reacted.entry(user as usize).or_insert(tick);
                } else {
                    reacted.remove(&(user as usize));
                }
            }
            Op::Pin(i, on) => {
                let m = &mut messages[pick(&i)];
                let path = format!("/api/messages/{}/pin", m.id);
                let res =
                    if on { app.put(&path, users[0], json!({})).await } else { app.delete(&path, users[0]).await };
                if m.deleted {
                    prop_assert_eq!(res.status, 409);
                    continue;
                }
                prop_assert_eq!(res.status, 200);
                if on {
                    m.pinned = m.pinned.or(Some(tick));
                } else {
                    m.pinned = None;
                }
            }
        }
    }
    check(app, users[1], conv, &messages).await
}

async fn check(app: &TestApp, bob: &TestUser, conv: &str, messages: &[Model]) -> Result<(), TestCaseError> {
    // Trees: every node in place, tombstones included, with the model's content and reactions.
    let roots: BTreeSet<usize> = messages.iter().map(|m| m.root).collect();
    for &root in &roots {
        let tree = app.get(&format!("/api/threads/{}/tree?limit=200", messages[root].id), bob).await;
        prop_assert_eq!(tree.status, 200);
        let nodes = tree.body["data"].as_array().unwrap();
        let in_thread = messages.iter().filter(|m| m.root == root).count();
        prop_assert_eq!(nodes.len(), in_thread);
        for node in nodes {
            let m = messages.iter().find(|m| m.id == node["id"]).unwrap();
            let content = if m.deleted { "" } else { m.content.as_str() };
            prop_assert_eq!(node["content"].as_str(), Some(content));
            prop_assert_eq!(node["deleted_at"].is_string(), m.deleted);
            prop_assert_eq!(node["parent_id"].as_str(), m.parent.map(|p| messages[p].id.as_str()));
            prop_assert_eq!(&node["reactions"], &m.reactions_for_bob(), "reactions of {}", m.id);
            prop_assert_eq!(node["pinned"].as_bool(), Some(m.pinned.is_some()));
            prop_assert_eq!(node["edit_count"].as_u64(), Some(m.versions.len() as u64));
        }
    }
    // Edit history, newest first, two at a time; a tombstone has none.
    for m in messages.iter().filter(|m| !m.versions.is_empty()) {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = app.get(&format!("/api/messages/{}/history?limit=2{cursor}", m.id), bob).await.expect(200);
            seen.extend(
                page.body["data"].as_array().unwrap().iter().map(|v| v["content"].as_str().unwrap().to_owned()),
            );
            match page.body["page"]["next"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        let expected: Vec<String> = if m.deleted { Vec::new() } else { m.versions.iter().rev().cloned().collect() };
        prop_assert_eq!(seen, expected);
    }
    // Pins, newest first.
    let pins = app.get(&format!("/api/conversations/{conv}/pins?limit=200"), bob).await.expect(200);
    let pinned: Vec<&str> =
        pins.body["data"].as_array().unwrap().iter().map(|p| p["message"]["id"].as_str().unwrap()).collect();
    let mut expected: Vec<(usize, &str)> =
        messages.iter().filter_map(|m| m.pinned.map(|at| (at, m.id.as_str()))).collect();
    expected.sort_by(|a, b| b.cmp(a));
    prop_assert_eq!(pinned, expected.into_iter().map(|(_, id)| id).collect::<Vec<_>>());
    // Bob never read: Ann's standing roots are unread, and Ann's standing replies per thread.
    let unread = app.get("/api/conversations/unread", bob).await.expect(200);
    let entry = unread.body["conversations"].as_array().unwrap().iter().find(|c| c["conversation_id"] == conv);
    let by_ann = |m: &&Model| m.author == 0 && !m.deleted;
    let roots_unread = messages.iter().filter(by_ann).filter(|m| m.parent.is_none()).count() as i64;
    let mut threads: BTreeMap<String, i64> = BTreeMap::new();
    for m in messages.iter().filter(by_ann).filter(|m| m.parent.is_some()) {
        *threads.entry(messages[m.root].id.clone()).or_default() += 1;
    }
    let entry = entry.unwrap();
    prop_assert_eq!(entry["unread"].as_i64(), Some(roots_unread));
    let got: BTreeMap<String, i64> = entry["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["root_id"].as_str().unwrap().to_owned(), t["unread"].as_i64().unwrap()))
        .collect();
    prop_assert_eq!(got, threads);
    Ok(())
}

#[test]
fn random_changes_match_a_model() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (app, ann, bob, conv) = rt.block_on(async {
        let app = TestApp::spawn().await;
        let ann = app.register("Ann").await;
        let bob = app.register("Bob").await;
        let ws = app.workspace(&ann, &[&bob]).await;
        let conv = app.channel(&ann, &ws, &[&bob]).await;
        (app, ann, bob, conv)
    });
    let mut runner = TestRunner::new(Config { cases: 24, failure_persistence: None, ..Config::default() });
    // Each case in a conversation of its own, so that earlier cases do not count.
    let result = runner.run(&ops(), |ops| {
        rt.block_on(async {
            let ws = app.get(&format!("/api/conversations/{conv}"), &ann).await.expect(200).str("workspace_id");
            let fresh = app.channel(&ann, &ws, &[&bob]).await;
            run(&app, [&ann, &bob], &fresh, ops).await
        })
    });
    rt.block_on(async move { drop(app) });
    result.unwrap();
}
