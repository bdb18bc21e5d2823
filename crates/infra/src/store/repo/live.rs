//! Typing and presence: the domain's `LiveSignals`, carried by the realtime runtime.

use skein_domain::entities::TypingIn;
use skein_domain::ports::LiveSignals;
use skein_domain::{DomainError, DomainResult};
use skein_shared::UserId;
use skein_shared::event::PresenceInfo;

use crate::store::{LiveRuntime, Store};

impl Store {
    fn live(&self) -> DomainResult<&dyn LiveRuntime> {
        self.live.as_deref().ok_or_else(|| DomainError::Unavailable("no realtime runtime".into()))
    }
}

impl LiveSignals for Store {
    fn set_typing(&self, place: TypingIn, user: UserId, typing: bool) {
        if let Some(live) = &self.live {
            live.set_typing(place, user, typing);
        }
    }

    async fn heartbeat(&self, user: UserId, away: bool) -> DomainResult<PresenceInfo> {
        self.live()?.heartbeat(user, away).await
    }

    async fn presence(&self, viewer: UserId, users: &[UserId]) -> DomainResult<Vec<PresenceInfo>> {
        self.live()?.presence(viewer, users).await
    }
}
