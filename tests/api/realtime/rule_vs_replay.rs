//! The delivery rule exists twice: live in the hub (`realtime/hub/rule.rs`, judged against
//! spans held in memory) and on replay in SQL (`store/read.rs`). Random histories of
//! membership (added, removed, left, joined), workspace membership, visibility changes and
//! posts go through both: every watcher's live stream must equal a replay of the same
//! stretch, event for event.

use serde_json::json;
use skein_tests::sse::SseClient;
use skein_tests::{TestApp, TestUser};

/// A small deterministic generator; the seed is printed so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Logged events (those with ids) until the `thread.new` whose content is `end`.
async fn logged_until(stream: &mut SseClient, end: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    loop {
        let event = stream.next().await;
        let Some(id) = event.id.clone() else { continue };
        let last = event.kind() == "thread.new" && event.data["data"]["root"]["content"] == end;
        seen.push((id, event.kind().to_owned()));
        if last {
            return seen;
        }
    }
}

#[tokio::test]
async fn random_histories_are_delivered_the_same_live_and_on_replay() {
    let seed = std::env::var("RULE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64 | 1
    });
    // Shown with the output of a failing test, whatever panicked.
    #[allow(clippy::print_stdout)]
    {
        println!("RULE_SEED={seed}");
    }
    let mut rng = Rng(seed);
    let app = TestApp::spawn().await;
    let alice = app.register("Alice").await;
    let (bob, carol, gus) = (app.register("Bob").await, app.register("Carol").await, app.register("Gus").await);
    let watchers: [&TestUser; 3] = [&bob, &carol, &gus];
    let ws = app.workspace(&alice, &[&bob, &carol]).await;
    app.add_to_workspace(&alice, &ws, &gus, "guest").await;
    // Where every watcher starts: a conversation with all of them.
    let start = app.channel(&alice, &ws, &watchers).await;
    let conversations = [app.channel(&alice, &ws, &[]).await, app.channel(&alice, &ws, &[&bob]).await];
    let mut streams = Vec::new();
    for watcher in watchers {
        streams.push(SseClient::open(&app, watcher, "/api/stream", None).await);
    }
    app.root(&alice, &start, "start").await;
    let mut starts = Vec::new();
    for stream in &mut streams {
        starts.push(logged_until(stream, "start").await.pop().map(|(id, _)| id).unwrap_or_default());
    }

    // A fixed opening, so that the rule always has something to tell apart: an open channel
    // that the guest may not see and Carol sees without joining.
    app.patch(&format!("/api/conversations/{}", conversations[0]), &alice, json!({ "visibility": "workspace" }))
        .await
        .expect(200);
    app.root(&alice, &conversations[0], "open to the workspace").await;
    for step in 0..40 {
        let conv = &conversations[rng.below(conversations.len())];
        let user = watchers[rng.below(watchers.len())];
        // Refusals (already a member, a guest in an open channel…) are part of the history.
        match rng.below(8) {
            0 => {
                app.post(&format!("/api/conversations/{conv}/members"), &alice, json!({ "user_id": user.id })).await;
            }
            1 => {
                app.delete(&format!("/api/conversations/{conv}/members/{}", user.id), &alice).await;
            }
            2 => {
                let visibility = ["workspace", "private"][rng.below(2)];
                app.patch(&format!("/api/conversations/{conv}"), &alice, json!({ "visibility": visibility })).await;
            }
            3 if rng.below(3) == 0 => {
                app.delete(&format!("/api/workspaces/{ws}/members/{}", user.id), &alice).await;
            }
            3 => {
                let role = if user.id == gus.id { "guest" } else { "member" };
                app.post(&format!("/api/workspaces/{ws}/members"), &alice, json!({ "user_id": user.id, "role": role }))
                    .await;
            }
            // Leaving and joining by themselves: explicit or implicit members, departures.
            4 => {
                app.post(&format!("/api/conversations/{conv}/leave"), user, json!({})).await;
            }
            5 => {
                app.post(&format!("/api/conversations/{conv}/join"), user, json!({})).await;
            }
            _ => {
                app.root(&alice, conv, &format!("post {step}")).await;
            }
        }
    }

    // Everyone back in the workspace and in one last conversation, which carries the end mark.
    for watcher in watchers {
        let role = if watcher.id == gus.id { "guest" } else { "member" };
        app.post(&format!("/api/workspaces/{ws}/members"), &alice, json!({ "user_id": watcher.id, "role": role }))
            .await;
    }
    let end = app.channel(&alice, &ws, &watchers).await;
    app.root(&alice, &end, "end").await;
    let mut transcripts = Vec::new();
    for ((watcher, stream), start) in watchers.iter().zip(&mut streams).zip(&starts) {
        let live = logged_until(stream, "end").await;
        let mut replay = SseClient::open(&app, watcher, "/api/stream", Some(start)).await;
        let replayed = logged_until(&mut replay, "end").await;
        assert_eq!(live, replayed, "seed {seed}: live and replay differ for {}", watcher.email);
        transcripts.push(live);
    }
    assert_ne!(transcripts[1], transcripts[2], "Carol sees the open channel, the guest does not");
}
