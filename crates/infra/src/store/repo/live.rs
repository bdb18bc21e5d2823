//! Typing and presence: the domain's `LiveSignals`, carried by the realtime runtime.

use skein_domain::ports::LiveSignals;
use skein_domain::{DomainError, DomainResult};
use skein_shared::event::PresenceInfo;
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};

use crate::store::{LiveRuntime, Store};

impl Store {
    fn live(&self) -> DomainResult<&dyn LiveRuntime> {
        self.live.as_deref().ok_or_else(|| DomainError::Unavailable("no realtime runtime".into()))
    }
}

impl LiveSignals for Store {
    fn set_typing(
        &self,
        conversation: ConversationId,
        root: Option<MessageId>,
        open_to: Option<WorkspaceId>,
        user: UserId,
        typing: bool,
    ) {
        if let Some(live) = &self.live {
            live.set_typing(conversation, root, open_to, user, typing);
        }
    }

    async fn heartbeat(&self, user: UserId, away: bool) -> DomainResult<PresenceInfo> {
        self.live()?.heartbeat(user, away).await
    }

    async fn presence(&self, viewer: UserId, users: &[UserId]) -> DomainResult<Vec<PresenceInfo>> {
        self.live()?.presence(viewer, users).await
    }
}
