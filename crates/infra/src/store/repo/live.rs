//! Typing, presence and event streams: the domain's `LiveSignals` and `EventFeeds`, carried by
//! the realtime runtime.

use skein_domain::entities::{FeedScope, TypingIn};
use skein_domain::ports::{EventFeeds, LiveSignals};
use skein_domain::{DomainError, DomainResult};
use skein_shared::UserId;
use skein_shared::event::PresenceInfo;

use crate::store::delivery::DeliveryStream;
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

impl EventFeeds for Store {
    type Feed = DeliveryStream;

    async fn open_feed(&self, user: UserId, scope: FeedScope, resume: Option<&str>) -> DomainResult<DeliveryStream> {
        self.live()?.open_feed(user, scope, resume).await
    }
}
