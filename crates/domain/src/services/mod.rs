//! Use cases. Each public method authorises the caller, validates input and calls the store.

mod accounts;
mod admin;
mod api_keys;
mod assistants;
mod conversations;
mod generation;
mod limits;
mod mentions;
mod messaging;
mod openai;
mod preferences;
pub use generation::AnswerFollow;
pub use messaging::reaction_emoji;
pub use openai::OpenAiChat;
mod realtime;
pub use realtime::PRESENCE_MAX_USERS;
mod search;
pub use search::{SEARCH_QUERY_MAX_CHARS, SearchRequest};
mod threads;
pub use threads::HistoryQuery;
mod workspaces;

use skein_shared::conversation::ConversationRole;
use skein_shared::{ConversationId, ErrorCode, UserId};

use crate::catalog::ModelCatalog;
use crate::entities::ConversationAccess;
use crate::ports::Ports;
use crate::{AuthPolicy, DomainError, DomainResult, Limits, RatePolicy, roles};

/// The application's use cases over some implementation of the ports.
#[derive(Clone)]
pub struct Services<P> {
    ports: P,
    limits: Limits,
    auth: AuthPolicy,
    catalog: ModelCatalog,
    rate: RatePolicy,
}

impl<P: Ports> Services<P> {
    pub fn new(ports: P, limits: Limits, auth: AuthPolicy) -> Self {
        Self { ports, limits, auth, catalog: ModelCatalog::default(), rate: RatePolicy::default() }
    }

    /// The providers and models assistants may use.
    pub fn with_catalog(mut self, catalog: ModelCatalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// Rate limits on or off, and the daily quotas.
    pub fn with_rate_policy(mut self, rate: RatePolicy) -> Self {
        self.rate = rate;
        self
    }

    pub fn ports(&self) -> &P {
        &self.ports
    }

    /// The conversation as the caller may see it; `NotFound` when they may not.
    async fn visible_conversation(
        &self,
        caller: UserId,
        id: ConversationId,
    ) -> DomainResult<(ConversationAccess, ConversationRole)> {
        let access = self.ports.access(id, caller).await?.ok_or(DomainError::NotFound)?;
        let role = access.role().ok_or(DomainError::NotFound)?;
        Ok((access, role))
    }

    /// As [`Self::visible_conversation`], and the caller may write to it now.
    async fn writable_conversation(&self, caller: UserId, id: ConversationId) -> DomainResult<ConversationAccess> {
        let (access, role) = self.visible_conversation(caller, id).await?;
        ensure_can_post(&access, role)?;
        Ok(access)
    }

    /// As [`Self::visible_conversation`], and the caller administers it.
    async fn managed_conversation(
        &self,
        caller: UserId,
        id: ConversationId,
    ) -> DomainResult<(ConversationAccess, ConversationRole)> {
        let (access, role) = self.visible_conversation(caller, id).await?;
        if !roles::can_manage_conversation(role) {
            return Err(DomainError::Forbidden("only conversation admins can do this"));
        }
        Ok((access, role))
    }
}

/// Posting needs `member` or above and a conversation that is not archived.
fn ensure_can_post(access: &ConversationAccess, role: ConversationRole) -> DomainResult<()> {
    if !roles::can_post(role) {
        return Err(DomainError::Forbidden("viewers cannot post"));
    }
    if access.conversation.archived {
        return Err(DomainError::archived());
    }
    Ok(())
}

fn fixed_membership() -> DomainError {
    DomainError::rule(ErrorCode::DirectConversationFixed, "a direct conversation has exactly its two members")
}

/// One page of rows fetched with `limit + 1`: the first `limit`, and, when more follow, the
/// cursor of the last of them (what the next page starts after).
fn keyset_page<T>(mut rows: Vec<T>, limit: u32, cursor: impl FnOnce(&T) -> String) -> (Vec<T>, Option<String>) {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = if more { rows.last().map(cursor) } else { None };
    (rows, next)
}
