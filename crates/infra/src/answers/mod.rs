//! AI replies: OpenAI-compatible providers (through async-openai) and the generations
//! running on this instance.

pub mod config;
pub mod flusher;
pub mod provider;
pub mod proxy;
pub mod registry;
pub mod runner;
pub mod title;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::store::answers as store;
use crate::store::job::Job;
pub use config::{LlmConfig, ProviderConfig};
use flusher::FlushQueue;
use provider::Provider;
use registry::Registry;
use uuid::Uuid;

use crate::realtime::Signals;
use crate::store::{PgPool, SetupError};

/// Providers and running generations of this instance.
#[derive(Clone)]
pub struct Llm {
    pub config: Arc<LlmConfig>,
    providers: Arc<HashMap<String, Arc<Provider>>>,
    pub registry: Registry,
    /// Proxied completions streaming now (the OpenAI-compatible endpoint's): they take room
    /// as answers do.
    proxies: Arc<std::sync::atomic::AtomicUsize>,
    queue: FlushQueue,
    pool: PgPool,
    signals: Signals,
    /// This instance's id as a generation runner.
    pub instance: Uuid,
    /// Where generations run: the runtime that started the instance (with the event hub and
    /// the flusher), not the HTTP worker that took the request. A token then reaches the hub
    /// without crossing threads, generations spread over every core, and none depends on
    /// the worker that started it.
    runtime: tokio::runtime::Handle,
}

impl Llm {
    /// Sets up the providers, takes this instance's liveness lock, fails what dead instances
    /// left streaming (now, then every `recovery_interval_secs`).
    pub async fn start(config: &LlmConfig, pool: PgPool, signals: Signals, url: &str) -> Result<Self, SetupError> {
        let providers = config.providers.iter().map(|p| (p.name.clone(), Arc::new(Provider::new(p.clone())))).collect();
        let instance = Uuid::from(ulid::Ulid::generate());
        let alive = store::hold_instance_lock(url, instance)
            .await
            .map_err(|e| SetupError::Start(format!("generation runner: {e}")))?;
        tokio::spawn(store::keep_instance_lock(url.to_owned(), instance, alive));
        let llm = Self {
            config: Arc::new(config.clone()),
            providers: Arc::new(providers),
            registry: Registry::default(),
            proxies: Arc::default(),
            queue: FlushQueue::new(config.flush_max_chars),
            pool,
            signals,
            instance,
            runtime: tokio::runtime::Handle::current(),
        };
        llm.recover().await;
        let interval = Duration::from_millis(config.flush_interval_ms.max(10));
        flusher::spawn(llm.queue.clone(), llm.pool.clone(), llm.registry.clone(), instance, interval);
        let every = Duration::from_secs(config.recovery_interval_secs.max(1));
        tokio::spawn({
            let llm = llm.clone();
            async move {
                loop {
                    // At the interval, and at once when a runner hands over an end.
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = llm.registry.unsaved_waiting.notified() => {}
                    }
                    llm.recover().await;
                }
            }
        });
        Ok(llm)
    }

    /// Writes the ends this instance's runners could not, then fails what dead instances left.
    async fn recover(&self) {
        let mut waiting = Vec::new();
        for end in self.registry.take_unsaved() {
            match store::finish(&self.pool, &end.job, None, &end.finish).await {
                Ok(written) => {
                    tracing::info!(message = %end.job.message_id, ended = written.is_some(), "wrote an unsaved end");
                    self.signals.committed();
                }
                Err(e) => {
                    tracing::warn!(message = %end.job.message_id, error = %e, "cannot write an unsaved end yet");
                    waiting.push(end);
                }
            }
        }
        self.registry.hand_back(waiting);
        match store::fail_abandoned(&self.pool, self.instance).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(generations = n, "failed generations abandoned by a stopped instance");
                self.signals.committed();
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for abandoned generations"),
        }
    }

    /// Whether this instance may start another generation.
    pub fn has_room(&self) -> bool {
        let proxies = self.proxies.load(std::sync::atomic::Ordering::Relaxed);
        self.registry.len() + proxies < self.config.max_running_per_instance as usize
    }

    /// Runs the job on this instance.
    pub fn launch(&self, job: Job, provider: &str) {
        let Some(provider) = self.providers.get(provider).cloned() else {
            tracing::error!(provider, "launch for an unknown provider");
            return;
        };
        runner::spawn(
            &self.runtime,
            self.registry.clone(),
            self.pool.clone(),
            self.signals.clone(),
            provider,
            self.queue.clone(),
            job,
        );
    }
}

impl crate::store::AnswerRunner for Llm {
    fn instance(&self) -> Uuid {
        self.instance
    }

    fn has_room(&self) -> bool {
        Llm::has_room(self)
    }

    fn launch(&self, job: Job, provider: &str) {
        Llm::launch(self, job, provider);
    }

    fn cancel_here(&self, message: skein_shared::MessageId, within: Duration) -> crate::store::BoxFuture<'_, bool> {
        Box::pin(self.cancel_and_wait(message, within))
    }

    fn follow_here(&self, message: skein_shared::MessageId) -> Option<crate::store::FollowHere> {
        let live = self.registry.live(message)?;
        Some(registry::lock_live(&live).follow())
    }

    fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.config.flush_interval_ms.max(50))
    }

    fn proxy(
        &self,
        provider: &str,
        request: crate::store::job::ChatRequest,
    ) -> crate::store::BoxFuture<'_, crate::store::ProxyStarted> {
        let provider = self.providers.get(provider).cloned();
        let slot = proxy::Slot::take(&self.proxies);
        Box::pin(async move {
            let provider = provider.ok_or_else(|| skein_shared::assistant::GenerationError {
                code: skein_shared::assistant::GenerationErrorCode::ProviderNotConfigured,
                message: "no such provider is configured".into(),
            })?;
            let chunks = provider.stream(&request).await?;
            Ok(Box::new(proxy::ProxyStream::new(chunks, provider.timeout(), slot))
                as Box<dyn skein_domain::ports::ProxyCompletion>)
        })
    }
}

impl Llm {
    /// Cancels the generation if it runs here and waits (up to `within`) for its terminal
    /// write; false when it does not run here.
    pub async fn cancel_and_wait(&self, message: skein_shared::MessageId, within: Duration) -> bool {
        let Some(live) = self.registry.live(message) else {
            return false;
        };
        let (_, done, mut pieces) = registry::lock_live(&live).follow();
        // The sender lives in `live`: held here, the channel would never close.
        drop(live);
        self.registry.cancel(message);
        if done.is_none() {
            let ended = async {
                loop {
                    match pieces.recv().await {
                        Ok(skein_domain::ports::AnswerPiece::Done(_))
                        | Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        _ => {}
                    }
                }
            };
            let _ = tokio::time::timeout(within, ended).await;
        }
        true
    }

    /// Cancels every running generation and waits (up to `within`) for their terminal writes.
    pub async fn shutdown(&self, within: Duration) {
        self.registry.cancel_all();
        let deadline = tokio::time::Instant::now() + within;
        while !self.registry.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
