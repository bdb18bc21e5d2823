//! One client's stream: what it missed (replayed from the log), then live events, with
//! nothing lost or repeated at the seam.
//!
//! The subscriber is registered with the hub first, at the hub's position P. The replay then
//! covers (client cursor, P] from the database, and live deliveries are all after P. A cursor
//! that cannot be replayed from (pruned, or never issued) gets a `resync` and the stream goes
//! on live from P.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use skein_domain::cursor::EventCursor;
use skein_shared::event::{Event, EventBody, Resync, ResyncReason};
use skein_shared::{ConversationId, UserId};
use time::OffsetDateTime;

use skein_domain::entities::FeedScope;

use super::hub::{Delivered, Delivery, Hub, HubStopped, Subscription};
use super::live::counted_message_by;
use crate::store::PgPool;
use crate::store::delivery::DeliveryStream;
use crate::store::read;

/// Events per replay query.
const REPLAY_PAGE: i64 = 500;

pub struct Feed {
    pool: PgPool,
    user: UserId,
    /// A per-conversation stream's conversation.
    only: Option<ConversationId>,
    hub: Hub,
    /// Conversations where the replay brought others' new messages: their counts are sent
    /// when the replay is done.
    touched: HashSet<ConversationId>,
    subscription: Subscription,
    /// The rest of the last batch the hub handed over.
    batch: std::vec::IntoIter<Delivery>,
    phase: Phase,
}

enum Phase {
    /// Send a `resync` first, then go on with the next phase.
    Resync(ResyncReason, Box<Phase>),
    /// Replaying (after, upto].
    Replay {
        after: EventCursor,
        upto: EventCursor,
        page: std::vec::IntoIter<Delivery>,
    },
    Live,
    Ended,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Stopped(#[from] HubStopped),
    #[error("database: {0}")]
    Database(String),
}

impl Feed {
    /// Opens a stream for `user`, resuming after `resume` (a client-supplied cursor) if given.
    pub async fn open(
        hub: &Hub,
        pool: PgPool,
        user: UserId,
        scope: FeedScope,
        resume: Option<&str>,
    ) -> Result<Self, FeedError> {
        let only = match scope {
            FeedScope::Member => None,
            FeedScope::Conversation { id, .. } => Some(id),
        };
        let bounds = {
            let mut conn = pool.get().await.map_err(|e| FeedError::Database(e.to_string()))?;
            read::bounds(&mut conn).await.map_err(|e| FeedError::Database(e.to_string()))?
        };
        // Without a usable cursor the stream starts at the newest readable event: "now", for
        // a log whose order is not quite commit order. (The hub may be behind it or ahead.)
        let (start, resync) = match resume.map(EventCursor::decode) {
            None => (bounds.readable, None),
            Some(None) => (bounds.readable, Some(ResyncReason::UnknownCursor)),
            Some(Some(c)) if c < bounds.pruned => (bounds.readable, Some(ResyncReason::TooOld)),
            Some(Some(c)) => (c, None),
        };
        let subscription = hub.subscribe(user, scope, Some(start)).await?;
        let position = subscription.position;
        let (start, resync) = match resync {
            // Issued by no one: beyond anything in the log or dispatched.
            None if start > bounds.newest.max(position) => (bounds.readable, Some(ResyncReason::UnknownCursor)),
            other => (start, other),
        };
        let replay = Phase::Replay { after: start, upto: position, page: Vec::new().into_iter() };
        let phase = match resync {
            Some(reason) => Phase::Resync(reason, Box::new(replay)),
            None => replay,
        };
        Ok(Self {
            pool,
            user,
            only,
            hub: hub.clone(),
            touched: HashSet::new(),
            subscription,
            batch: Vec::new().into_iter(),
            phase,
        })
    }

    /// The feed as a stream of its deliveries.
    pub fn into_stream(self) -> DeliveryStream {
        Box::pin(futures_util::stream::unfold(self, |mut feed| async move { Some((feed.next().await?, feed)) }))
    }

    /// The next event, or `None` when the stream is over (the hub stopped, the subscriber
    /// was removed from the conversation, or it was cut off after its final `resync`).
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            match &mut self.phase {
                Phase::Resync(reason, next) => {
                    let reason = *reason;
                    let from = match **next {
                        Phase::Replay { after, .. } => after,
                        _ => self.subscription.position,
                    };
                    self.phase = std::mem::replace(next, Phase::Ended);
                    return Some(resync(reason, Some(from)));
                }
                Phase::Replay { after, upto, page } => {
                    if let Some(next) = page.next() {
                        return Some(next);
                    }
                    if after >= upto {
                        self.phase = Phase::Live;
                        let touched = std::mem::take(&mut self.touched);
                        self.hub.touched(touched.into_iter().map(|c| (self.user, c)).collect());
                        continue;
                    }
                    let (from, to) = (*after, *upto);
                    let events = match self.pool.get().await {
                        Ok(mut conn) => read::replay(&mut conn, self.user, self.only, from, to, REPLAY_PAGE).await.ok(),
                        Err(_) => None,
                    };
                    let Some(events) = events else {
                        // Cannot replay now: end the stream; the client resumes from its cursor.
                        self.phase = Phase::Ended;
                        return None;
                    };
                    let next_after =
                        if (events.len() as i64) < REPLAY_PAGE { to } else { events.last().map_or(to, |e| e.cursor) };
                    for event in &events {
                        if let (Some(author), Some(c)) = (counted_message_by(&event.event.body), event.conversation_id)
                            && author != Some(self.user)
                        {
                            self.touched.insert(c);
                        }
                    }
                    let deliveries: Vec<Delivery> =
                        events.iter().map(|e| std::sync::Arc::new(Delivered::logged(e))).collect();
                    self.phase = Phase::Replay { after: next_after, upto: to, page: deliveries.into_iter() };
                }
                Phase::Live => match self.batch.next() {
                    Some(delivery) => return Some(delivery),
                    None => match self.subscription.deliveries.recv().await {
                        Some(batch) => {
                            self.subscription.queued.fetch_sub(batch.len(), Ordering::AcqRel);
                            self.batch = batch.into_iter();
                        }
                        None => {
                            self.phase = Phase::Ended;
                            if self.subscription.cut_off.load(Ordering::Acquire) {
                                return Some(resync(ResyncReason::SlowConsumer, None));
                            }
                            return None;
                        }
                    },
                },
                Phase::Ended => return None,
            }
        }
    }
}

fn resync(reason: ResyncReason, from: Option<EventCursor>) -> Delivery {
    let event =
        Event::live(EventBody::Resync(Resync { reason, cursor: from.map(|c| c.encode()) }), OffsetDateTime::now_utc());
    std::sync::Arc::new(Delivered::new(None, &event))
}
