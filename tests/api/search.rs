//! `GET /api/search`: the query syntax, snippets and highlights, filters, errors. The corpus
//! test (`corpus.rs`) checks every filter and syntax against a model; `scope.rs` that no hit
//! leaks; `paging.rs` that pages hold while messages arrive.

use serde_json::{Value, json};
use skein_tests::{TestApp, TestUser};

mod corpus;
mod paging;
mod scope;

/// The ids of a page's hits, in order.
pub fn hit_ids(body: &Value) -> Vec<String> {
    body["data"].as_array().unwrap().iter().map(|h| h["message"]["id"].as_str().unwrap().to_owned()).collect()
}

/// Every hit of a search, walking its pages of `limit`.
pub async fn all_hits(app: &TestApp, user: &TestUser, params: &[(&str, &str)], limit: u32) -> Vec<String> {
    let limit = limit.to_string();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p: Vec<(&str, &str)> = params.to_vec();
        p.push(("limit", &limit));
        if let Some(c) = &cursor {
            p.push(("cursor", c));
        }
        let page = app.search(user, &p).await.expect(200).body;
        ids.extend(hit_ids(&page));
        match page["page"]["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn hits_carry_the_message_a_plain_snippet_and_highlight_offsets() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    let root = app.root(&ann, &conv, "We <b>deployed</b> the Café pipeline on Friday").await;
    let reply = app.reply(&ann, &root, "Nothing about that here").await;

    let body = app.search(&ann, &[("q", "deploy cafe ")]).await.expect(200).body;
    assert_eq!(hit_ids(&body), vec![root.clone()]);
    let hit = &body["data"][0];
    assert_eq!(hit["conversation_id"], conv);
    assert_eq!(hit["root_id"], root);
    assert_eq!(hit["message"]["content"], "We <b>deployed</b> the Café pipeline on Friday");
    let snippet = hit["snippet"].as_str().unwrap();
    assert_eq!(snippet, "We <b>deployed</b> the Café pipeline on Friday", "plain text, tags and all");
    let chars: Vec<char> = snippet.chars().collect();
    let marked: Vec<String> = hit["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| chars[h["start"].as_u64().unwrap() as usize..h["end"].as_u64().unwrap() as usize].iter().collect())
        .collect();
    assert_eq!(marked, vec!["deployed", "Café"]);
    assert_eq!(hit["message"]["reactions"], json!([]));
    assert_eq!(hit_ids(&app.search(&ann, &[("q", "nothing")]).await.expect(200).body), vec![reply]);
    assert!(body["page"]["next"].is_null());
}

#[tokio::test]
async fn queries_with_nothing_to_search_are_refused() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    for q in ["the of and ", "?! … ---", "   ", ""] {
        let problem = app.search(&ann, &[("q", q)]).await.expect_problem(422, "validation_failed").body;
        let field = &problem["errors"][0];
        assert_eq!(field["field"], "q", "{q:?}: {problem}");
        assert!(["no_terms", "required"].contains(&field["code"].as_str().unwrap()), "{problem}");
    }
    let long = "word ".repeat(60);
    app.search(&ann, &[("q", &long)]).await.expect_problem(422, "validation_failed");
    for bad in [("has", "links"), ("cursor", "nope"), ("sort", "oldest"), ("from", "yesterday")] {
        let status = app.search(&ann, &[("q", "hello"), bad]).await.status;
        assert!(status == 422 || status == 400, "{bad:?}: {status}");
    }
    let window = [("q", "hello"), ("from", "2026-01-02T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")];
    app.search(&ann, &window).await.expect_problem(422, "validation_failed");
}

#[tokio::test]
async fn edits_and_deletes_change_what_is_found_at_once() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    let root = app.root(&ann, &conv, "the old wording").await;
    let gone = app.reply(&ann, &root, "wording to delete").await;
    assert_eq!(all_hits(&app, &ann, &[("q", "wording ")], 10).await.len(), 2);

    app.patch(&format!("/api/messages/{root}"), &ann, json!({ "content": "the new phrasing" })).await.expect(200);
    app.delete(&format!("/api/messages/{gone}"), &ann).await.expect(200);
    assert!(all_hits(&app, &ann, &[("q", "wording ")], 10).await.is_empty(), "old words and deleted ones are gone");
    assert_eq!(all_hits(&app, &ann, &[("q", "phrasing ")], 10).await, vec![root]);
    assert!(all_hits(&app, &ann, &[("q", "delete ")], 10).await.is_empty());
}

#[tokio::test]
async fn the_language_is_configured_and_a_change_reindexes_at_start() {
    use diesel_async::RunQueryDsl;

    let mut app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    for i in 0..5 {
        app.root(&ann, &conv, &format!("we deployed it {i}")).await;
    }
    assert_eq!(all_hits(&app, &ann, &[("q", "deploy ")], 10).await.len(), 5, "english stems");

    app.config.search.language = "simple".into();
    app.restart().await;
    assert!(all_hits(&app, &ann, &[("q", "deploy ")], 10).await.is_empty(), "simple: words as written");
    assert_eq!(all_hits(&app, &ann, &[("q", "deployed ")], 10).await.len(), 5);
    assert_eq!(all_hits(&app, &ann, &[("q", "we ")], 10).await.len(), 5, "and no stop words");

    let mut db = app.db().await;
    let refused = diesel::sql_query("SELECT skein_configure_search('klingon')").execute(&mut db).await;
    assert!(refused.unwrap_err().to_string().contains("not a PostgreSQL text search configuration"));
}

#[tokio::test]
async fn relevance_ranks_the_newest_matches_and_pages_rank_the_same_ones() {
    let app = TestApp::spawn_with(|c| c.limits.search_ranked_max = 5).await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    // Older messages say the word more often (and so rank higher), but only the newest 5 count.
    let mut ids = Vec::new();
    for i in 0..8 {
        let content = format!("{} and then some", vec!["alpha"; 8 - i].join(" "));
        ids.push(app.root(&ann, &conv, &content).await);
    }
    let newest: Vec<String> = ids[3..].to_vec();

    let first = app.search(&ann, &[("q", "alpha "), ("limit", "2")]).await.expect(200).body;
    let mut seen = hit_ids(&first);
    // A message posted between pages is after the first page's ceiling: never ranked in.
    app.root(&ann, &conv, &vec!["alpha"; 20].join(" ")).await;
    let mut cursor = first["page"]["next"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = app.search(&ann, &[("q", "alpha "), ("limit", "2"), ("cursor", &c)]).await.expect(200).body;
        seen.extend(hit_ids(&page));
        cursor = page["page"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, newest, "the newest 5, most 'alpha' first");

    // A new search has a new ceiling: the newest message is ranked, and ranks first.
    let again = all_hits(&app, &ann, &[("q", "alpha ")], 10).await;
    assert_eq!(again.len(), 5);
    assert_ne!(again[0], newest[0]);
    assert_eq!(all_hits(&app, &ann, &[("q", "alpha "), ("sort", "newest")], 4).await.len(), 9, "newest is not capped");
}

#[tokio::test]
async fn only_the_word_being_typed_becomes_a_prefix() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    let cats = app.root(&ann, &conv, "cats and doghouses").await;
    let category = app.root(&ann, &conv, "the category list").await;
    let sorted = |mut ids: Vec<String>| {
        ids.sort();
        ids
    };

    // A stop word typed last puts no prefix on the word before it.
    assert_eq!(all_hits(&app, &ann, &[("q", "cat the")], 10).await, vec![cats.clone()]);
    assert_eq!(
        all_hits(&app, &ann, &[("q", "cats -dogs the")], 10).await,
        vec![cats.clone()],
        "doghouses are not dogs"
    );
    // The word typed last is a prefix from three characters on.
    let typed = all_hits(&app, &ann, &[("q", "cat")], 10).await;
    assert_eq!(sorted(typed), sorted(vec![cats, category]));
    assert!(all_hits(&app, &ann, &[("q", "the li")], 10).await.is_empty(), "two letters are a word, not a prefix");
}
