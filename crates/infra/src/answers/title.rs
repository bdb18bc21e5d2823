//! Auto-title: after a thread's first completed answer (with `auto_title` set and no title
//! yet), the same model is asked for a short title, which is stored (only if the thread still
//! has none) and announced with `thread.activity`.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::StreamExt;
use skein_domain::context::PromptMessage;
use skein_shared::event::{EventBody, ThreadActivity};
use skein_shared::thread::MessageRole;
use time::OffsetDateTime;

use super::provider::{ChatRequest, Provider};
use crate::realtime::Signals;
use crate::store::PgPool;
use crate::store::answers::{self as store, StoreError};
use crate::store::codec::uuid;
use crate::store::job::Job;
use crate::store::log::{self, NewEvent};
use crate::store::schema::threads;

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
    match store_title(&pool, job, &title).await {
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

/// Sets the title unless the thread got one meanwhile; true when it did.
async fn store_title(pool: &PgPool, job: &Job, title: &str) -> Result<bool, StoreError> {
    let mut conn = store::conn(pool).await?;
    let stored = conn
        .transaction(async |conn| {
            log::lock_conversation(conn, uuid(job.conversation_id)).await?;
            let updated: Option<(i32, OffsetDateTime)> =
                diesel::update(threads::table.find(uuid(job.root_id)).filter(threads::title.is_null()))
                    .set(threads::title.eq(title))
                    .returning((threads::reply_count, threads::last_activity_at))
                    .get_result(conn)
                    .await
                    .optional()?;
            let Some((reply_count, last_activity_at)) = updated else {
                return Ok::<_, diesel::result::Error>(false);
            };
            let activity = ThreadActivity {
                title: Some(title.to_owned()),
                ..ThreadActivity::new(job.root_id, reply_count, last_activity_at)
            };
            let event = NewEvent::about_message(
                job.conversation_id,
                job.root_id,
                job.root_id,
                EventBody::ThreadActivity(activity),
            );
            log::append(conn, &event).await?;
            Ok(true)
        })
        .await?;
    Ok(stored)
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
