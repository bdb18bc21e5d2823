//! A completion asked of a provider for the OpenAI-compatible endpoint's plain proxy: the
//! provider's stream as text pieces, nothing stored. Dropping it drops the provider's
//! connection (the client went away: the provider stops too).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use skein_domain::ports::{ProxyCompletion, ProxyNext, ProxyPiece};
use skein_shared::assistant::{GenerationError, Usage};

use super::provider::{ChunkStream, provider_error, storable, timed_out};

/// One proxied completion's share of the instance's room for answers, given back on drop.
pub struct Slot(Arc<AtomicUsize>);

impl Slot {
    pub(super) fn take(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct ProxyStream {
    chunks: ChunkStream,
    /// The longest the provider may stay silent.
    silence: Duration,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    ended: bool,
    _slot: Slot,
}

impl ProxyStream {
    pub(super) fn new(chunks: ChunkStream, silence: Duration, slot: Slot) -> Self {
        Self { chunks, silence, finish_reason: None, usage: None, ended: false, _slot: slot }
    }

    async fn next_piece(&mut self) -> Option<Result<ProxyPiece, GenerationError>> {
        while !self.ended {
            let chunk = match tokio::time::timeout(self.silence, self.chunks.next()).await {
                Err(_) => {
                    self.ended = true;
                    return Some(Err(timed_out(self.silence)));
                }
                Ok(Some(Err(e))) => {
                    self.ended = true;
                    return Some(Err(provider_error(&e)));
                }
                Ok(None) => {
                    self.ended = true;
                    let (finish_reason, usage) = (self.finish_reason.take(), self.usage.take());
                    return Some(Ok(ProxyPiece::End { finish_reason, usage }));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            if let Some(usage) = chunk.usage {
                self.usage = Some(usage.into());
            }
            let mut text = String::new();
            for choice in chunk.choices {
                if let Some(content) = choice.delta.content {
                    text.push_str(&storable(&content));
                }
                if choice.finish_reason.is_some() {
                    self.finish_reason = choice.finish_reason;
                }
            }
            if !text.is_empty() {
                return Some(Ok(ProxyPiece::Text(text)));
            }
        }
        None
    }
}

impl ProxyCompletion for ProxyStream {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = ProxyNext> + Send + '_>> {
        Box::pin(self.next_piece())
    }
}
