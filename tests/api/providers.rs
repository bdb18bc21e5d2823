//! The OpenAI-compatible provider layer (async-openai, unchanged) against the fake provider
//! speaking the real streaming protocol: content, finish reason and usage; every failure
//! mapped to its code; an abandoned stream aborts the HTTP request.

use std::time::Duration;

use futures_util::StreamExt;
use skein_domain::context::PromptMessage;
use skein_infra::answers::ProviderConfig;
use skein_infra::answers::provider::{ChatRequest, Provider, provider_error};
use skein_shared::assistant::GenerationErrorCode;
use skein_shared::thread::MessageRole;
use skein_tests::fake_llm::FakeLlm;

fn provider(base_url: &str, api_key_env: Option<&str>) -> Provider {
    Provider::new(ProviderConfig {
        name: "fake".into(),
        base_url: base_url.into(),
        api_key_env: api_key_env.map(str::to_owned),
        default_model: "tokens-3".into(),
        allowed_models: Vec::new(),
        request_timeout_secs: 2,
        context_windows: Default::default(),
        default_context_window: 8192,
    })
}

fn ask(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.into(),
        messages: vec![
            PromptMessage { role: MessageRole::System, content: "be brief".into() },
            PromptMessage { role: MessageRole::User, content: "hello".into() },
        ],
        temperature: Some(0.5),
        max_tokens: 64,
    }
}

#[tokio::test]
async fn a_stream_brings_content_finish_reason_and_usage() {
    let fake = FakeLlm::start().await;
    let p = provider(&fake.base_url, None);
    let mut stream = p.stream(&ask("tokens-5")).await.expect("stream starts");
    let (mut content, mut finish, mut usage) = (String::new(), None, None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a well-formed chunk");
        for choice in chunk.choices {
            content.push_str(choice.delta.content.as_deref().unwrap_or_default());
            finish = finish.or(choice.finish_reason);
        }
        usage = usage.or(chunk.usage.map(|u| (u.prompt_tokens, u.completion_tokens, u.total_tokens)));
    }
    assert_eq!(content, "t0 t1 t2 t3 t4 ");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage, Some((7, 5, 12)));
    let body = &fake.bodies()[0];
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["messages"][0], serde_json::json!({ "role": "system", "content": "be brief" }));
    assert_eq!(body["messages"][1], serde_json::json!({ "role": "user", "content": "hello" }));
}

#[tokio::test]
async fn refusals_and_broken_streams_get_their_codes() {
    let fake = FakeLlm::start().await;
    let p = provider(&fake.base_url, None);
    for (model, code) in [
        ("status-429", GenerationErrorCode::ProviderRateLimited),
        ("status-500", GenerationErrorCode::ProviderError),
        ("status-400", GenerationErrorCode::ProviderError),
    ] {
        let Err(e) = p.stream(&ask(model)).await else { panic!("{model} must fail") };
        assert_eq!(e.code, code, "{model}: {}", e.message);
    }
    // A chunk that is not JSON, after two good ones.
    let mut stream = p.stream(&ask("malformed-2")).await.expect("stream starts");
    let mut results = Vec::new();
    while let Some(item) = stream.next().await {
        results.push(item.map_err(|e| provider_error(&e).code).map(|_| ()));
    }
    assert_eq!(results, [Ok(()), Ok(()), Err(GenerationErrorCode::MalformedStream)]);
    // A stream that stops without a finish reason or [DONE] just ends: the runner tells it
    // apart by the missing finish reason.
    let mut stream = p.stream(&ask("stop-3")).await.expect("stream starts");
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        finish = finish.or(chunk.expect("chunk").choices.into_iter().find_map(|c| c.finish_reason));
    }
    assert_eq!(finish, None);
}

#[tokio::test]
async fn unreachable_and_misconfigured_providers_fail_at_once() {
    let refused = provider("http://127.0.0.1:9/v1", None);
    let Err(e) = refused.stream(&ask("tokens-1")).await else { panic!("nothing listens on port 9") };
    assert_eq!(e.code, GenerationErrorCode::ProviderUnreachable, "{}", e.message);
    let keyless = provider("http://127.0.0.1:9/v1", Some("SKEIN_TEST_NO_SUCH_KEY_VARIABLE"));
    let Err(e) = keyless.stream(&ask("tokens-1")).await else { panic!("no key") };
    assert_eq!(e.code, GenerationErrorCode::ProviderNotConfigured);
    assert!(e.message.contains("SKEIN_TEST_NO_SUCH_KEY_VARIABLE"), "{}", e.message);
}

#[tokio::test]
async fn dropping_a_stream_aborts_the_request() {
    let fake = FakeLlm::start().await;
    let p = provider(&fake.base_url, None);
    let mut stream = p.stream(&ask("tokens-1000-every-5")).await.expect("stream starts");
    for _ in 0..3 {
        stream.next().await.expect("a chunk").expect("well-formed");
    }
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.aborted() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.aborted(), 1, "the provider saw the request go away");
    assert!(fake.tokens_sent() < 1000, "no more tokens were paid for: {}", fake.tokens_sent());
    // A hanging provider: the request is aborted when the caller gives up on it too.
    let stream = p.stream(&ask("hang")).await.expect("headers arrive");
    drop(stream);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.aborted() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.aborted(), 2);
    assert_eq!(fake.requests(), 2);
}
