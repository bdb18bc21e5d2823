//! Auto-title: after a thread's first completed answer (with `auto_title` set and no title
//! yet), the same model is asked for a short title, which is stored (only if the thread still
//! has none) and announced with `thread.activity`.

use std::time::Duration;

use futures_util::StreamExt;
use skein_domain::context::PromptMessage;
use skein_shared::thread::MessageRole;

use super::provider::{ChatRequest, Provider};
use crate::realtime::Signals;
use crate::store::PgPool;
use crate::store::answers as store;
use crate::store::job::Job;

/// Longest title kept (characters).
const TITLE_MAX_CHARS: usize = 80;
/// A title is short: this many tokens are plenty.
const TITLE_MAX_TOKENS: u32 = 24;
/// Past this the title is not worth waiting for.
const TITLE_TIMEOUT: Duration = Duration::from_secs(30);

const INSTRUCTION: &str = "Write a short title (at most six words) for the conversation below. \
Answer with the title only, without quotes.";

/// Asks for a title for the thread of `job`, whose answer was `answer`, and stores it.
pub async fn title_thread(pool: PgPool, signals: Signals, provider: &Provider, job: &Job, answer: &str) {
    let asked = job.request.messages.iter().rev().find(|m| m.role == MessageRole::User);
    let conversation = format!("{}\n\n{answer}", asked.map_or("", |m| m.content.as_str()));
    let request = ChatRequest {
        model: job.request.model.clone(),
        messages: vec![
            PromptMessage { role: MessageRole::System, content: INSTRUCTION.into() },
            PromptMessage { role: MessageRole::User, content: conversation },
        ],
        temperature: Some(0.2),
        max_tokens: TITLE_MAX_TOKENS,
    };
    let title = match tokio::time::timeout(TITLE_TIMEOUT, ask(provider, &request)).await {
        Ok(Some(raw)) => clean(&raw),
        _ => None,
    };
    let Some(title) = title else {
        tracing::info!(root = %job.root_id, "no title generated");
        return;
    };
    match store::set_generated_title(&pool, job, &title).await {
        Ok(true) => signals.committed(),
        Ok(false) => {}
        Err(e) => tracing::warn!(root = %job.root_id, error = %e, "cannot store a generated title"),
    }
}

async fn ask(provider: &Provider, request: &ChatRequest) -> Option<String> {
    let mut stream = provider.stream(request).await.ok()?;
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        for choice in chunk.ok()?.choices {
            text.extend(choice.delta.content);
        }
    }
    Some(text)
}

/// The first line, without surrounding quotes or a final period, at most 80 characters.
fn clean(raw: &str) -> Option<String> {
    let line = raw.trim().lines().next()?.trim();
    let line = line.trim_matches(|c| matches!(c, '"' | '\'' | '“' | '”' | '*' | '#')).trim().trim_end_matches('.');
    let title: String = line.chars().take(TITLE_MAX_CHARS).collect();
    let title = title.trim().to_owned();
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn titles_are_one_short_unquoted_line() {
        assert_eq!(clean("  \"Rust async tips.\"\nmore").as_deref(), Some("Rust async tips"));
        assert_eq!(clean("   ").as_deref(), None);
        assert_eq!(clean(&"x".repeat(200)).map(|t| t.chars().count()), Some(80));
    }
}
