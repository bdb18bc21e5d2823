use std::collections::HashSet;

use serde_json::json;
use skein_tests::{TestApp, TestUser};

fn seqs(res: &skein_tests::Resp) -> Vec<i64> {
    res.body["data"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect()
}

async fn conversation_with(app: &TestApp, n: usize) -> (TestUser, String, Vec<String>) {
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let mut ids = vec![app.root(&ann, &ch, "m1").await];
    for i in 2..=n {
        let id = if i % 3 == 0 {
            app.reply(&ann, &ids[i / 2], &format!("m{i}")).await
        } else {
            app.root(&ann, &ch, &format!("m{i}")).await
        };
        ids.push(id);
    }
    (ann, ch, ids)
}

#[tokio::test]
async fn before_after_and_around() {
    let app = TestApp::spawn().await;
    let (ann, ch, ids) = conversation_with(&app, 12).await;
    let base = format!("/api/conversations/{ch}/messages");
    let latest = app.get(&format!("{base}?limit=5"), &ann).await.expect(200);
    assert_eq!(seqs(&latest), vec![8, 9, 10, 11, 12]);
    assert!(latest.body["page"]["next"].is_null());
    let prev = latest.body["page"]["prev"].as_str().unwrap().to_owned();
    assert_eq!(prev, ids[7]);
    let older = app.get(&format!("{base}?limit=5&before={prev}"), &ann).await.expect(200);
    assert_eq!(seqs(&older), vec![3, 4, 5, 6, 7]);
    let oldest = app
        .get(&format!("{base}?limit=5&before={}", older.body["page"]["prev"].as_str().unwrap()), &ann)
        .await
        .expect(200);
    assert_eq!(seqs(&oldest), vec![1, 2]);
    assert!(oldest.body["page"]["prev"].is_null());
    let after = app.get(&format!("{base}?limit=4&after={}", ids[1]), &ann).await.expect(200);
    assert_eq!(seqs(&after), vec![3, 4, 5, 6]);
    assert_eq!(after.body["page"]["next"], ids[5].as_str());
    let around = app.get(&format!("{base}?limit=4&around={}", ids[5]), &ann).await.expect(200);
    assert_eq!(seqs(&around), vec![4, 5, 6, 7]);
    assert!(around.body["page"]["prev"].is_string() && around.body["page"]["next"].is_string());
    let edge = app.get(&format!("{base}?limit=4&around={}", ids[0]), &ann).await.expect(200);
    assert_eq!(seqs(&edge), vec![1, 2, 3, 4], "near the start the page fills from the newer side");
    assert!(edge.body["page"]["prev"].is_null());

    app.get(&format!("{base}?before={}&after={}", ids[1], ids[2]), &ann).await.expect_problem(422, "validation_failed");
    app.get(&format!("{base}?before=01ARZ3NDEKTSV4RRFFQ69G5FAV"), &ann).await.expect_problem(422, "validation_failed");
    app.get(&format!("{base}?before=junk"), &ann).await.expect_problem(400, "bad_request");
    // Page size is capped by the configured maximum.
    let all = app.get(&format!("{base}?limit=100000"), &ann).await.expect(200);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 12);
}

#[tokio::test]
async fn message_from_another_conversation_is_not_an_anchor() {
    let app = TestApp::spawn().await;
    let (ann, ch, _) = conversation_with(&app, 2).await;
    let ws = app.get("/api/workspaces", &ann).await.body["data"][0]["id"].as_str().unwrap().to_owned();
    let other = app.channel(&ann, &ws, &[]).await;
    let foreign = app.root(&ann, &other, "elsewhere").await;
    app.get(&format!("/api/conversations/{ch}/messages?after={foreign}"), &ann)
        .await
        .expect_problem(422, "validation_failed");
}

/// Walking `after` pages while others post sees every message exactly once, in order; and
/// walking `before` pages from the newest gets back to the first.
#[tokio::test]
async fn paging_while_others_post_misses_nothing() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.channel(&ann, &ws, &[&bob]).await;
    let first = app.root(&ann, &ch, "first").await;
    let writers = async {
        let mut tasks = Vec::new();
        for w in 0..4 {
            let user = if w % 2 == 0 { &ann } else { &bob };
            let ch = ch.clone();
            let app = &app;
            tasks.push(async move {
                for i in 0..30 {
                    app.post(&format!("/api/threads/{ch}/root"), user, json!({ "content": format!("w{w}-{i}") }))
                        .await
                        .expect(201);
                }
            });
        }
        futures_util::future::join_all(tasks).await;
    };
    let reader = async {
        let mut seen: Vec<i64> = vec![1];
        let mut cursor = first.clone();
        // Read until all 121 have been seen (or give up after a generous deadline).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while seen.len() < 121 && std::time::Instant::now() < deadline {
            let page =
                app.get(&format!("/api/conversations/{ch}/messages?after={cursor}&limit=7"), &bob).await.expect(200);
            let data = page.body["data"].as_array().unwrap();
            if data.is_empty() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
            seen.extend(data.iter().map(|m| m["seq"].as_i64().unwrap()));
            cursor = data.last().unwrap()["id"].as_str().unwrap().to_owned();
        }
        // Nothing more arrives after the last one.
        let tail = app.get(&format!("/api/conversations/{ch}/messages?after={cursor}"), &bob).await.expect(200);
        assert_eq!(tail.body["data"], serde_json::json!([]));
        seen
    };
    // Walking back from the newest page while the writers post: the walk covers exactly the
    // messages up to the newest one it first saw, each once, newest first.
    let backward = async {
        // Start once the writers are under way (the walk then overlaps their posting).
        while seqs(&app.get(&format!("/api/conversations/{ch}/messages?limit=1"), &ann).await.expect(200))[0] < 10 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut back: Vec<i64> = Vec::new();
        let mut url = format!("/api/conversations/{ch}/messages?limit=9");
        loop {
            let page = app.get(&url, &ann).await.expect(200);
            let mut s = seqs(&page);
            s.reverse();
            back.extend(s);
            match page.body["page"]["prev"].as_str() {
                Some(prev) => url = format!("/api/conversations/{ch}/messages?limit=9&before={prev}"),
                None => break,
            }
        }
        back
    };
    let ((), seen, back) = tokio::join!(writers, reader, backward);
    assert_eq!(seen, (1..=121).collect::<Vec<_>>(), "every message once, in order");
    let newest = back[0];
    assert!(newest >= 10);
    assert_eq!(back, (1..=newest).rev().collect::<Vec<_>>());
    assert_eq!(back.iter().collect::<HashSet<_>>().len(), back.len());
}
