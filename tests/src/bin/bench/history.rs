//! History pages with and without decorations: 50 messages where each has 5 reactions (by 5
//! users, 5 emoji) and 1 edit, next to the same page of plain messages, in the same run. The
//! reactions are one extra query per page (`fill_reactions`), not one per message.

use serde_json::json;
use skein_tests::TestApp;

use super::timed_gets;

const PAGE: usize = 50;
const REQUESTS: usize = 500;
const EMOJI: [&str; 5] = ["%F0%9F%91%8D", "%F0%9F%8E%89", "%E2%9D%A4%EF%B8%8F", "%F0%9F%91%80", "%F0%9F%9A%80"];

pub async fn run() {
    let app = TestApp::spawn_with(|c| {
        c.database.max_connections = 8;
        c.auth.argon2_memory_kib = 19 * 1024;
        c.auth.argon2_passes = 2;
    })
    .await;
    let owner = app.register("Owner").await;
    let mut reactors = Vec::new();
    for i in 0..EMOJI.len() {
        reactors.push(app.register(&format!("Reactor{i}")).await);
    }
    let ws = app.workspace(&owner, &reactors.iter().collect::<Vec<_>>()).await;
    let plain = app.channel(&owner, &ws, &[]).await;
    let decorated = app.channel(&owner, &ws, &reactors.iter().collect::<Vec<_>>()).await;
    for i in 0..PAGE {
        app.root(&owner, &plain, &format!("message {i}")).await;
        let id = app.root(&owner, &decorated, &format!("message {i}")).await;
        app.patch(&format!("/api/messages/{id}"), &owner, json!({ "content": format!("message {i}, edited") }))
            .await
            .expect(200);
        for (user, emoji) in reactors.iter().zip(EMOJI) {
            app.put(&format!("/api/messages/{id}/reactions/{emoji}"), user, json!({})).await.expect(200);
        }
    }
    let page = |c: &str| format!("/api/conversations/{c}/messages?limit={PAGE}");
    let check = app.get(&page(&decorated), &owner).await.expect(200);
    let first = &check.body["data"][0];
    assert_eq!((first["reactions"].as_array().map(Vec::len), first["edit_count"].as_i64()), (Some(5), Some(1)));

    println!("\n## History page of {PAGE} messages: plain vs 5 reactions and 1 edit each ({REQUESTS} requests each)\n");
    println!("| page | p50 ms | p99 ms |");
    println!("|---|---:|---:|");
    let mut plain_stats = timed_gets(&app, &owner, &page(&plain), REQUESTS).await;
    let mut decorated_stats = timed_gets(&app, &owner, &page(&decorated), REQUESTS).await;
    let (p50, p99) = (plain_stats.pct(0.50), plain_stats.pct(0.99));
    let (d50, d99) = (decorated_stats.pct(0.50), decorated_stats.pct(0.99));
    println!("| plain | {p50:.2} | {p99:.2} |");
    println!("| reactions + edit | {d50:.2} | {d99:.2} |");
    println!("| ratio | {:.2}× | {:.2}× |", d50 / p50, d99 / p99);
}
