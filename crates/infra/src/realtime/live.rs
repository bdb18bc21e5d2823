//! What the hub hands out and takes in: events serialised once for every subscriber, live-only
//! events as they travel between instances, and which deliveries change unread counts.
//! (A leaf: the hub, the bus, the presence router and the unread notifier all use it.)

use skein_domain::cursor::EventCursor;
use skein_shared::event::{Event, EventBody};
use skein_shared::{ConversationId, UserId, WorkspaceId};

pub use crate::store::delivery::{Delivered, Delivery};

/// What one pass of the hub has for one subscriber, in order.
pub type Batch = Vec<Delivery>;

/// A live-only event travelling between instances.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Ephemeral {
    /// `typing.update`: the conversation; `presence.update`: `None` (everyone sharing a
    /// conversation with `user_id` receives it).
    pub conversation_id: Option<ConversationId>,
    /// The conversation's workspace when the conversation is workspace-visible: the
    /// workspace's members receive it too.
    #[serde(default)]
    pub open_to: Option<WorkspaceId>,
    /// Whose typing or presence it is (or who asked for the assistant reply a delta is of).
    pub user_id: UserId,
    /// `user_id` receives it too (assistant deltas); typing and presence are not echoed.
    #[serde(default)]
    pub to_self: bool,
    /// Deliver only after the logged event at this cursor: an assistant's deltas
    /// come after its `message.created`, and before its `message.done`.
    #[serde(default)]
    pub after_event: Option<EventCursor>,
    pub event: Event,
}

/// A live-only event with the conversations it is about: its own, or, for a presence
/// change, every conversation its user is a member of (looked up by `recipients.rs`).
pub struct Routed {
    pub event: Box<Ephemeral>,
    pub conversations: Vec<ConversationId>,
}

/// A member whose counts in a conversation may have changed.
pub type Touched = (UserId, ConversationId);

/// The author of a message whose coming or going changes others' unread counts (`None` for
/// one without a user author): a new message, or a deleted one.
pub fn counted_message_by(body: &EventBody) -> Option<Option<UserId>> {
    match body {
        EventBody::ThreadNew(summary) => Some(summary.root.author_id),
        EventBody::MessageCreated(message) | EventBody::MessageDeleted(message) => Some(message.author_id),
        _ => None,
    }
}
