//! What passes between the hub's handle and its task: subscriptions and commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;

use skein_domain::cursor::EventCursor;
use skein_domain::entities::FeedScope;
use skein_shared::{ConversationId, UserId};
use tokio::sync::{mpsc, oneshot};

use crate::realtime::live::{Batch, Delivery, Touched};

#[derive(Clone, Copy, Debug)]
pub struct HubConfig {
    /// Deliveries a subscriber may have queued before it is cut off.
    pub buffer: usize,
    /// Read the log at least this often even without a wake-up.
    pub poll_interval: Duration,
    /// Events per log read.
    pub batch: i64,
}

/// A registered subscriber's end.
pub struct Subscription {
    pub deliveries: mpsc::Receiver<Batch>,
    /// Deliveries handed over and not yet taken (the receiver subtracts what it takes).
    pub queued: Arc<AtomicUsize>,
    /// The hub's position at registration: live deliveries all come after it.
    pub position: EventCursor,
    /// Set when the hub dropped this subscriber for being too slow.
    pub cut_off: Arc<AtomicBool>,
    pub(super) _registration: Registration,
}

/// Unregisters the subscriber when its connection goes away.
pub(super) struct Registration {
    pub(super) id: u64,
    pub(super) commands: mpsc::UnboundedSender<Command>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe(self.id));
    }
}

pub(super) enum Command {
    Subscribe {
        user: UserId,
        scope: FeedScope,
        after: Option<EventCursor>,
        reply: oneshot::Sender<Subscription>,
    },
    Unsubscribe(u64),
    /// A live-only event for one user's connections that follow the conversation.
    ToUser {
        user: UserId,
        conversation: ConversationId,
        delivery: Delivery,
    },
    /// Counts that a replay may have changed: for the unread notifier.
    Touched(Vec<Touched>),
    Shutdown,
}
