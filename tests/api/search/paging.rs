//! Search pages are keyset pages: messages posted while a client pages never repeat a hit,
//! shift one out of view or show up in a page already passed.

use std::collections::BTreeSet;

use skein_tests::TestApp;

use super::{all_hits, hit_ids};

#[tokio::test]
async fn paging_while_posting_yields_each_hit_once() {
    let app = TestApp::spawn().await;
    let ann = app.register("Ann").await;
    let ws = app.workspace(&ann, &[]).await;
    let conv = app.channel(&ann, &ws, &[]).await;
    for i in 0..30 {
        // Ranks differ (1 to 3 matches per message) and tie, so relevance pages cross ties.
        app.root(&ann, &conv, &"alpha ".repeat(1 + i % 3)).await;
    }
    for sort in ["relevance", "newest"] {
        let before: BTreeSet<String> = all_hits(&app, &ann, &[("q", "alpha ")], 100).await.into_iter().collect();
        assert!(before.len() >= 30);
        let (mut seen, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let mut params = vec![("q", "alpha "), ("sort", sort), ("limit", "4")];
            if let Some(c) = &cursor {
                params.push(("cursor", c));
            }
            let page = app.search(&ann, &params).await.expect(200).body;
            seen.extend(hit_ids(&page));
            // Others keep posting matching messages between pages.
            app.root(&ann, &conv, "alpha alpha alpha alpha").await;
            match page["page"]["next"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: no hit twice");
        assert!(before.is_subset(&unique), "{sort}: every hit that was there is found");
        if sort == "newest" {
            assert_eq!(unique, before, "{sort}: newer messages are before the first page, not in later ones");
        }
    }
}
