//! The per-instance fan-out: one task tails the event log in order and hands each event to
//! the local subscribers allowed to see it.
//!
//! - this file: the handle (subscribe, live events, shutdown);
//! - `protocol`: what a subscription gets and the commands the handle sends the task;
//! - `actor`: the task that owns the subscriber tables, reads the log and dispatches;
//! - `rule`: who may see an event (pure, unit-tested; the replay side is `store/read.rs`);
//! - `answers`: deltas before their answer's `message.done`, none after.
//!
//! The hub is an actor: it alone owns the subscriber tables, so registering a subscriber,
//! dispatching an event and applying a membership change never interleave. A subscriber is
//! registered at the hub's current position and its membership spans are loaded at that
//! moment, so every later event is judged against complete spans; spans are keyed by event
//! position, so applying a membership event the load had already seen changes nothing.
//!
//! Each subscriber has a bounded queue. A subscriber whose queue is full is dropped and
//! flagged as cut off: it never slows the hub, the writers or anyone else.
//!
//! What one pass of the hub has for a subscriber (the events of a commit, the deltas that
//! arrived together) is handed over as one batch before the hub next waits: its connection
//! wakes once and writes the batch in one go, so frames need no Nagle's algorithm to share
//! packets, and no frame waits for a later one.

mod actor;
mod answers;
mod protocol;
mod rule;

use std::sync::Arc;

use skein_domain::cursor::EventCursor;
use skein_shared::{ConversationId, UserId};
use tokio::sync::{Notify, mpsc, oneshot};

use super::live::Touched;
use crate::store::PgPool;
use crate::store::read;

pub use super::live::{Batch, Delivered, Delivery, Ephemeral, Routed};
use protocol::Command;
pub use protocol::{HubConfig, Subscription};
use skein_domain::entities::FeedScope;

#[derive(Debug, thiserror::Error)]
#[error("the event hub has stopped")]
pub struct HubStopped;

/// A handle to the hub task.
#[derive(Clone)]
pub struct Hub {
    commands: mpsc::UnboundedSender<Command>,
    ephemerals: mpsc::UnboundedSender<Routed>,
    /// Presence changes, to be routed off the hub's task.
    presence: mpsc::UnboundedSender<Box<Ephemeral>>,
}

impl Hub {
    /// Starts the hub at the log's newest readable event; `wake` is signalled after commits.
    /// New messages delivered to members are reported to `touched` (the unread notifier).
    pub async fn start(
        pool: PgPool,
        wake: Arc<Notify>,
        config: HubConfig,
        touched: mpsc::UnboundedSender<Touched>,
    ) -> Result<Self, crate::store::SetupError> {
        let mut conn = pool.get().await.map_err(|e| crate::store::SetupError::Start(format!("the event hub: {e}")))?;
        let position = read::bounds(&mut conn)
            .await
            .map_err(|e| crate::store::SetupError::Start(format!("the event hub: {e}")))?
            .readable;
        drop(conn);
        let (commands, rx) = mpsc::unbounded_channel();
        let (ephemerals, ephemeral_rx) = mpsc::unbounded_channel();
        let (presence, presence_rx) = mpsc::unbounded_channel();
        tokio::spawn(super::recipients::run(pool.clone(), presence_rx, ephemerals.clone()));
        let actor = actor::Actor::new(pool, config, position, commands.clone(), ephemeral_rx, touched);
        tokio::spawn(actor.run(rx, wake));
        Ok(Self { commands, ephemerals, presence })
    }

    /// Registers a subscriber. Live deliveries skip everything at or before `after`.
    pub async fn subscribe(
        &self,
        user: UserId,
        scope: FeedScope,
        after: Option<EventCursor>,
    ) -> Result<Subscription, HubStopped> {
        let (reply, rx) = oneshot::channel();
        self.commands.send(Command::Subscribe { user, scope, after, reply }).map_err(|_| HubStopped)?;
        rx.await.map_err(|_| HubStopped)
    }

    /// Hands a live-only event to local subscribers.
    pub fn ephemeral(&self, event: Ephemeral) {
        let event = Box::new(event);
        match event.conversation_id {
            Some(conversation) => {
                let _ = self.ephemerals.send(Routed { event, conversations: vec![conversation] });
            }
            None => {
                let _ = self.presence.send(event);
            }
        }
    }

    /// Hands a live-only event to the user's connections that follow the conversation.
    pub fn send_to_user(&self, user: UserId, conversation: ConversationId, delivery: Delivery) {
        let _ = self.commands.send(Command::ToUser { user, conversation, delivery });
    }

    /// Reports members whose unread counts a replay may have changed.
    pub fn touched(&self, pairs: Vec<Touched>) {
        if !pairs.is_empty() {
            let _ = self.commands.send(Command::Touched(pairs));
        }
    }

    /// Ends every subscription (their streams finish) and stops the hub.
    pub fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown);
    }
}
