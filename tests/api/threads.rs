use std::collections::HashSet;

use serde_json::json;
use skein_tests::TestApp;

#[tokio::test]
async fn roots_replies_and_summaries() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.channel(&ann, &ws, &[&bob]).await;
    let root = app
        .post(
            &format!("/api/threads/{ch}/root"),
            &ann,
            json!({ "content": "# Plan\n\nfirst", "title": " Q3 ", "tags": ["plan", "plan", "q3"] }),
        )
        .await
        .expect(201);
    assert_eq!(root.body["root_id"], root.body["id"]);
    assert!(root.body["parent_id"].is_null());
    assert_eq!((root.body["depth"].as_i64(), root.body["seq"].as_i64()), (Some(0), Some(1)));
    assert_eq!(root.body["author_id"], ann.id.as_str());
    assert_eq!((root.body["role"].as_str(), root.body["status"].as_str()), (Some("user"), Some("complete")));
    assert_eq!(root.body["content"], "# Plan\n\nfirst", "content is kept verbatim");
    let root_id = root.str("id");
    let r1 = app.post(&format!("/api/messages/{root_id}/reply"), &bob, json!({ "content": "ok" })).await.expect(201);
    assert_eq!(
        (r1.body["parent_id"].as_str(), r1.body["root_id"].as_str(), r1.body["depth"].as_i64()),
        (Some(root_id.as_str()), Some(root_id.as_str()), Some(1))
    );
    let r2 = app.reply(&ann, &r1.str("id"), "deeper").await;
    let got = app.get(&format!("/api/messages/{r2}"), &bob).await.expect(200);
    assert_eq!(got.body["depth"], 2);

    let tree = app.get(&format!("/api/threads/{root_id}/tree"), &bob).await.expect(200);
    let thread = &tree.body["thread"];
    assert_eq!(thread["title"], "Q3");
    assert_eq!(thread["tags"], json!(["plan", "q3"]));
    assert_eq!(thread["reply_count"], 2);
    assert_eq!(thread["participant_ids"], json!([ann.id, bob.id]));
    assert_eq!(thread["last_activity_at"], got.body["created_at"]);
    assert_eq!(tree.body["data"][0]["ancestor_ids"], json!([]));
    assert!(tree.body["data"][2].get("ancestor_ids").is_none(), "its parent is in the page");
    // A page that starts deep in the tree spells out the first node's ancestry.
    let r1_id = r1.str("id");
    let page = app.get(&format!("/api/threads/{root_id}/tree?cursor={r1_id}"), &bob).await.expect(200);
    assert_eq!(page.body["data"][0]["id"], r2.as_str());
    assert_eq!(page.body["data"][0]["ancestor_ids"], json!([root_id, r1_id]));
    // A reply is not a thread root.
    app.get(&format!("/api/threads/{r2}/tree"), &bob).await.expect_problem(404, "not_found");

    let threads = app.get(&format!("/api/conversations/{ch}/threads"), &bob).await.expect(200);
    assert_eq!(threads.body["data"][0]["root"]["content"], "# Plan\n\nfirst");
}

#[tokio::test]
async fn thread_list_orders_by_activity_and_pages() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let roots: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(app.root(&ann, &ch, &format!("t{i}")).await);
        }
        v
    };
    app.reply(&ann, &roots[1], "bump").await;
    let expected = vec![roots[1].clone(), roots[4].clone(), roots[3].clone(), roots[2].clone(), roots[0].clone()];
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/conversations/{ch}/threads?limit=2{cursor}"), &ann).await.expect(200);
        seen.extend(page.body["data"].as_array().unwrap().iter().map(|t| t["root_id"].as_str().unwrap().to_owned()));
        match page.body["page"]["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn content_and_metadata_validation() {
    let app = TestApp::spawn_with(|c| {
        c.limits.message_max_chars = 10;
        c.limits.tags_max = 2;
    })
    .await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let path = format!("/api/threads/{ch}/root");
    for body in [
        json!({ "content": "" }),
        json!({ "content": "   \n" }),
        json!({ "content": "x".repeat(11) }),
        json!({ "content": "ok", "tags": ["a", "b", "c"] }),
        json!({ "content": "ok", "tags": [" "] }),
        json!({ "content": "ok", "title": "t".repeat(201) }),
        json!({ "content": "ok", "client_msg_id": "" }),
    ] {
        app.post(&path, &ann, body).await.expect_problem(422, "validation_failed");
    }
    app.post(&path, &ann, json!({ "content": "ééééééééé" })).await.expect(201);
    let history = app.get(&format!("/api/conversations/{ch}/messages"), &ann).await.expect(200);
    assert_eq!(history.body["data"].as_array().unwrap().len(), 1, "rejected sends stored nothing");
}

#[tokio::test]
async fn replies_nest_up_to_the_configured_depth() {
    let app = TestApp::spawn_with(|c| c.limits.thread_max_depth = 3).await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let mut parent = app.root(&ann, &ch, "0").await;
    for depth in 1..=3 {
        parent = app.reply(&ann, &parent, &depth.to_string()).await;
    }
    let res = app
        .post(&format!("/api/messages/{parent}/reply"), &ann, json!({ "content": "too deep" }))
        .await
        .expect_problem(422, "validation_failed");
    assert_eq!(res.body["errors"][0]["code"], "too_deep");
}

#[tokio::test]
async fn client_msg_id_makes_sends_idempotent() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.channel(&ann, &ws, &[&bob]).await;
    let path = format!("/api/threads/{ch}/root");
    let first = app.post(&path, &ann, json!({ "content": "hi", "client_msg_id": "abc" })).await.expect(201);
    let again = app.post(&path, &ann, json!({ "content": "hi", "client_msg_id": "abc" })).await.expect(200);
    assert_eq!(first.body, again.body);
    // Another author may use the same id.
    let bobs = app.post(&path, &bob, json!({ "content": "hi", "client_msg_id": "abc" })).await.expect(201);
    assert_ne!(bobs.body["id"], first.body["id"]);
    let root = first.str("id");
    let reply = app
        .post(&format!("/api/messages/{root}/reply"), &ann, json!({ "content": "r", "client_msg_id": "r1" }))
        .await
        .expect(201);
    let retry = app
        .post(&format!("/api/messages/{root}/reply"), &ann, json!({ "content": "r", "client_msg_id": "r1" }))
        .await
        .expect(200);
    assert_eq!(reply.body["id"], retry.body["id"]);
    let tree = app.get(&format!("/api/threads/{root}/tree"), &ann).await.expect(200);
    assert_eq!(tree.body["thread"]["reply_count"], 1);
}

#[tokio::test]
async fn racing_identical_sends_store_one_message() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let root = app.root(&ann, &ch, "root").await;
    let path = format!("/api/messages/{root}/reply");
    let sends = (0..20).map(|_| app.post(&path, &ann, json!({ "content": "once", "client_msg_id": "same" })));
    let results = futures_util::future::join_all(sends).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let replayed = results.iter().filter(|r| r.status == 200).count();
    assert_eq!((created, replayed), (1, 19));
    let ids: HashSet<&str> = results.iter().map(|r| r.body["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1);
    let history = app.get(&format!("/api/conversations/{ch}/messages"), &ann).await.expect(200);
    let seqs: Vec<i64> = history.body["data"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2], "losers of the race left no gap in the sequence");
}

#[tokio::test]
async fn a_hundred_concurrent_replies_all_land_once() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let bob = app.register("Bob").await;
    let ws = app.workspace(&ann, &[&bob]).await;
    let ch = app.channel(&ann, &ws, &[&bob]).await;
    let root = app.root(&ann, &ch, "root").await;
    let path = format!("/api/messages/{root}/reply");
    let sends = (0..100).map(|i| {
        let user = if i % 2 == 0 { &ann } else { &bob };
        app.post(&path, user, json!({ "content": format!("reply {i}") }))
    });
    let results = futures_util::future::join_all(sends).await;
    assert!(results.iter().all(|r| r.status == 201), "{:?}", results.iter().find(|r| r.status != 201));
    let tree = app.get(&format!("/api/threads/{root}/tree?limit=1000"), &ann).await.expect(200);
    assert_eq!(tree.body["thread"]["reply_count"], 100);
    let contents: HashSet<String> =
        tree.body["data"].as_array().unwrap()[1..].iter().map(|n| n["content"].as_str().unwrap().to_owned()).collect();
    assert_eq!(contents, (0..100).map(|i| format!("reply {i}")).collect::<HashSet<_>>());
    let mut seqs: Vec<i64> = tree.body["data"].as_array().unwrap().iter().map(|n| n["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=101).collect::<Vec<_>>(), "sequence numbers are gapless and unique");
}

#[tokio::test]
async fn subtree_listing_starts_at_the_given_message() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let root = app.root(&ann, &ch, "root").await;
    let a = app.reply(&ann, &root, "a").await;
    let a1 = app.reply(&ann, &a, "a1").await;
    let b = app.reply(&ann, &root, "b").await;
    let a2 = app.reply(&ann, &a, "a2").await;
    app.reply(&ann, &a1, "a1x").await;
    app.reply(&ann, &b, "b1").await;
    let names = |res: &skein_tests::Resp| {
        res.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["content"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let whole = app.get(&format!("/api/threads/{root}/tree"), &ann).await.expect(200);
    assert_eq!(names(&whole), ["root", "a", "a1", "a1x", "a2", "b", "b1"]);
    let sub = app.get(&format!("/api/threads/{root}/tree?from={a}"), &ann).await.expect(200);
    assert_eq!(names(&sub), ["a", "a1", "a1x", "a2"]);
    let page = app.get(&format!("/api/threads/{root}/tree?from={a}&limit=2"), &ann).await.expect(200);
    assert_eq!(names(&page), ["a", "a1"]);
    let next = page.body["page"]["next"].as_str().unwrap();
    let rest = app.get(&format!("/api/threads/{root}/tree?from={a}&limit=2&cursor={next}"), &ann).await.expect(200);
    assert_eq!(names(&rest), ["a1x", "a2"]);
    assert!(rest.body["page"]["next"].is_null());
    let leaf = app.get(&format!("/api/threads/{root}/tree?from={a2}"), &ann).await.expect(200);
    assert_eq!(names(&leaf), ["a2"]);
    // A message of another thread is not a subtree of this one.
    let other = app.root(&ann, &ch, "other").await;
    app.get(&format!("/api/threads/{root}/tree?from={other}"), &ann).await.expect_problem(404, "not_found");
    app.get(&format!("/api/threads/{root}/tree?cursor={other}"), &ann).await.expect_problem(422, "validation_failed");
}

/// A page larger than the store's internal read chunk (1,000 rows) is seamless: the same
/// nodes in the same order as walking small pages.
#[tokio::test]
async fn large_tree_pages_cross_read_chunks() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let ch = app.channel(&ann, &ws, &[]).await;
    let root = app.root(&ann, &ch, "root").await;
    let mut level = vec![root.clone()];
    // 1 + 40 + 40*30 = 1,241 nodes in three levels.
    for width in [40usize, 30] {
        let sends = level.iter().flat_map(|parent| (0..width).map(move |_| parent.clone()));
        let mut next = Vec::new();
        for batch in sends.collect::<Vec<_>>().chunks(32) {
            let made = futures_util::future::join_all(batch.iter().map(|p| app.reply(&ann, p, "node"))).await;
            next.extend(made);
        }
        level = next;
    }
    let ids = |res: &skein_tests::Resp| {
        res.body["data"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let whole = app.get(&format!("/api/threads/{root}/tree?limit=5000"), &ann).await.expect(200);
    assert!(whole.body["page"]["next"].is_null());
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/api/threads/{root}/tree?limit=97{cursor}"), &ann).await.expect(200);
        walked.extend(ids(&page));
        match page.body["page"]["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(ids(&whole).len(), 1241);
    assert_eq!(ids(&whole), walked);
    // A page that ends inside the second chunk.
    let part = app.get(&format!("/api/threads/{root}/tree?limit=1100"), &ann).await.expect(200);
    assert_eq!(ids(&part), walked[..1100].to_vec());
    assert_eq!(part.body["page"]["next"], walked[1099].as_str());
}

#[tokio::test]
async fn thread_lists_filter_by_tags_root_author_and_participant() {
    let app = TestApp::spawn().await;
    let (ann, bob) = (app.register("Ann").await, app.register("Bob").await);
    let ws = app.workspace(&ann, &[&bob]).await;
    let conv = app.channel(&ann, &ws, &[&bob]).await;
    let tagged = |tags: serde_json::Value| json!({ "content": "topic", "tags": tags });
    let both = app.post(&format!("/api/threads/{conv}/root"), &ann, tagged(json!(["ops", "db"]))).await.expect(201);
    let ops = app.post(&format!("/api/threads/{conv}/root"), &bob, tagged(json!(["ops"]))).await.expect(201);
    let plain = app.root(&bob, &conv, "untagged").await;
    app.reply(&ann, &plain, "ann joins in").await;
    let (both, ops) = (both.str("id"), ops.str("id"));
    let roots = |body: serde_json::Value| -> Vec<String> {
        body["data"].as_array().unwrap().iter().map(|t| t["root_id"].as_str().unwrap().to_owned()).collect()
    };
    let list = |q: &str| format!("/api/conversations/{conv}/threads?{q}");
    assert_eq!(roots(app.get(&list("tags=ops"), &bob).await.expect(200).body), vec![ops.clone(), both.clone()]);
    assert_eq!(roots(app.get(&list("tags=ops,%20db"), &bob).await.expect(200).body), vec![both.clone()]);
    assert!(roots(app.get(&list("tags=nope"), &bob).await.expect(200).body).is_empty());
    let by_ann = list(&format!("author_id={}", ann.id));
    assert_eq!(roots(app.get(&by_ann, &bob).await.expect(200).body), vec![both.clone()]);
    assert_eq!(roots(app.get(&list("participant=me"), &ann).await.expect(200).body), vec![plain.clone(), both.clone()]);
    let bob_took_part = list(&format!("participant={}", bob.id));
    assert_eq!(roots(app.get(&bob_took_part, &ann).await.expect(200).body), vec![plain, ops]);
    app.get(&list("participant=someone"), &ann).await.expect_problem(422, "validation_failed");
    let many: Vec<String> = (0..30).map(|i| format!("t{i}")).collect();
    app.get(&list(&format!("tags={}", many.join(","))), &ann).await.expect_problem(422, "validation_failed");
}
