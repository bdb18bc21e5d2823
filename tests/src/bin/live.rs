//! `skein-live`: the real server on a fresh schema with the fake OpenAI-compatible provider
//! configured as `fake`, for test suites in other languages (the TypeScript client's).
//! Prints one JSON line `{"base_url": …, "provider": "fake", "llm_stats_url": …}` (the fake
//! provider's counters: requests, tokens, aborted) when it is ready, and stops
//! (dropping its schema) when its standard input closes.

#![allow(clippy::print_stdout, clippy::expect_used)]

use skein_tests::TestApp;
use skein_tests::fake_llm::FakeLlm;

#[tokio::main]
async fn main() {
    let llm = FakeLlm::start().await;
    let app = TestApp::spawn_with(|config| {
        config.llm.providers = vec![llm.provider("fake")];
        // The answers a client follows flush often enough to be seen mid-stream.
        config.llm.flush_interval_ms = 100;
    })
    .await;
    let stats_url = llm.base_url.trim_end_matches("/v1").to_owned() + "/stats";
    println!("{}", serde_json::json!({ "base_url": app.base, "provider": "fake", "llm_stats_url": stats_url }));
    let _ = tokio::task::spawn_blocking(|| std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new())).await;
    drop(app);
}
