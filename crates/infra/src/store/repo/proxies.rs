//! The OpenAI-compatible endpoint's plain proxy, on the store's side: how many proxied
//! completions each user has running here, and counting what each used (its `usage`, once,
//! when it ends) toward the daily quotas, as a stored answer's is counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use diesel::sql_types::{Date, Int8, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use skein_domain::ports::{ChatProxy, ProxyCompletion, ProxyNext, ProxyPiece, ProxyRequest};
use skein_domain::{DomainError, DomainResult};
use skein_shared::UserId;
use skein_shared::assistant::GenerationError;
use time::UtcOffset;
use uuid::Uuid;

use crate::store::codec::uuid;
use crate::store::counters::ProxyCounts;
use crate::store::job::ChatRequest;
use crate::store::{PgPool, Store, conn};

/// A provider's completion that counts as running while it lives and records its usage.
struct Counted {
    inner: Box<dyn ProxyCompletion>,
    user: UserId,
    /// The assistant's workspace; a provider named directly counts under the nil id (no
    /// workspace's quota).
    workspace: Uuid,
    counts: Arc<ProxyCounts>,
    pool: PgPool,
    clock: crate::clock::Clock,
}

impl ProxyCompletion for Counted {
    fn next(&mut self) -> Pin<Box<dyn Future<Output = ProxyNext> + Send + '_>> {
        Box::pin(async move {
            let piece = self.inner.next().await;
            if let Some(Ok(ProxyPiece::End { usage: Some(usage), .. })) = &piece {
                let day = self.clock.now().to_offset(UtcOffset::UTC).date();
                if let Err(e) = record_tokens(&self.pool, self.user, self.workspace, day, usage.total_tokens).await {
                    tracing::warn!(error = %e, user = %self.user, "a proxied completion's usage was not counted");
                }
            }
            piece
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts.add(self.user, -1);
    }
}

async fn record_tokens(
    pool: &PgPool,
    user: UserId,
    workspace: Uuid,
    day: time::Date,
    tokens: u32,
) -> Result<(), DomainError> {
    let mut conn = conn(pool).await.map_err(DomainError::from)?;
    diesel::sql_query(
        "INSERT INTO usage_daily AS u (user_id, workspace_id, day, tokens) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (user_id, day, workspace_id) DO UPDATE SET tokens = u.tokens + EXCLUDED.tokens",
    )
    .bind::<SqlUuid, _>(uuid(user))
    .bind::<SqlUuid, _>(workspace)
    .bind::<Date, _>(day)
    .bind::<Int8, _>(i64::from(tokens))
    .execute(&mut conn)
    .await
    .map_err(crate::store::db_error)?;
    Ok(())
}

impl ChatProxy for Store {
    fn running_proxies(&self, user: UserId) -> u32 {
        self.proxies.count(user)
    }

    async fn proxy_chat(
        &self,
        provider: &str,
        request: ProxyRequest,
    ) -> DomainResult<Result<Box<dyn ProxyCompletion>, GenerationError>> {
        let llm = self.llm.clone().ok_or_else(|| DomainError::Unavailable("no generation runner".into()))?;
        let (user, workspace) = (request.user, request.workspace.map_or(Uuid::nil(), uuid));
        let chat = ChatRequest {
            model: request.model,
            messages: request.messages,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        // Counted from the request on, so parallel requests see each other.
        self.proxies.add(user, 1);
        let counted = |inner| Counted {
            inner,
            user,
            workspace,
            counts: self.proxies.clone(),
            pool: self.pool.clone(),
            clock: self.clock.clone(),
        };
        match llm.proxy(provider, chat).await {
            Ok(inner) => Ok(Ok(Box::new(counted(inner)))),
            Err(e) => {
                self.proxies.add(user, -1);
                Ok(Err(e))
            }
        }
    }
}
