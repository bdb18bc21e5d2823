//! Realtime events: one envelope on every transport (SSE, WebSocket, replay).
//!
//! `type` names the event and `data` carries its payload; `cursor` is the event's position
//! in the log (the SSE `id:`), present on every logged event and absent on live-only ones
//! (`typing.update`, `presence.update`, `resync`, `error`).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assistant::{MessageDelta, MessageDone};
use crate::conversation::{ConversationKind, ConversationRole, Visibility};
use crate::message::{PinChanged, ReactionChanged};
use crate::thread::{Message, ThreadSummary};
use crate::workspace::WorkspaceRole;
use crate::{ConversationId, MessageId, UserId, WorkspaceId};

/// An event as a client receives it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    #[serde(flatten)]
    pub body: EventBody,
    /// Absent only on `presence.update`, `resync` and `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// Where this event sits in the log; resume after it with `Last-Event-ID` or `?after=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub occurred_at: OffsetDateTime,
}

/// The event's `type` and its `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "data")]
pub enum EventBody {
    /// A thread root was posted.
    #[serde(rename = "thread.new")]
    ThreadNew(Box<ThreadSummary>),
    /// A thread's last activity changed.
    #[serde(rename = "thread.activity")]
    ThreadActivity(ThreadActivity),
    /// A reply was posted.
    #[serde(rename = "message.created")]
    MessageCreated(Message),
    /// A message was edited: the message as it is now.
    #[serde(rename = "message.updated")]
    MessageUpdated(Message),
    /// A message was deleted: its tombstone (no content, reactions or pin).
    #[serde(rename = "message.deleted")]
    MessageDeleted(Message),
    #[serde(rename = "reaction.added")]
    ReactionAdded(ReactionChanged),
    #[serde(rename = "reaction.removed")]
    ReactionRemoved(ReactionChanged),
    #[serde(rename = "message.pinned")]
    MessagePinned(PinChanged),
    #[serde(rename = "message.unpinned")]
    MessageUnpinned(PinChanged),
    #[serde(rename = "membership.changed")]
    MembershipChanged(MembershipChanged),
    /// The receiving user's own workspace membership changed (sent to them only; no
    /// `conversation_id`). From here on they do, or no longer do, receive the workspace's
    /// workspace-visible conversations on `/api/stream`.
    #[serde(rename = "workspace.membership.changed")]
    WorkspaceMembershipChanged(WorkspaceMembershipChanged),
    #[serde(rename = "conversation.updated")]
    ConversationUpdated(ConversationUpdated),
    /// The next piece of a streaming assistant message (live only; `GET
    /// /api/messages/{id}/stream` resumes one).
    #[serde(rename = "message.delta")]
    MessageDelta(MessageDelta),
    /// An assistant message ended: nothing follows it for that message.
    #[serde(rename = "message.done")]
    MessageDone(MessageDone),
    /// The receiving user's own unread counts in a conversation changed (sent to them only).
    #[serde(rename = "unread.update")]
    UnreadUpdate(ConversationUnread),
    #[serde(rename = "typing.update")]
    TypingUpdate(TypingUpdate),
    #[serde(rename = "presence.update")]
    PresenceUpdate(PresenceInfo),
    /// The stream cannot continue from where the client is: refetch state over REST.
    #[serde(rename = "resync")]
    Resync(Resync),
    /// A terminal failure on the stream.
    #[serde(rename = "error")]
    Error(StreamError),
    /// WebSocket only: the outcome of a client frame. Every `send`, `feedback` and `cancel`
    /// gets one; `typing`, `presence` and cursor `ack` frames only when refused. A refused
    /// frame (unreadable too) leaves the socket open.
    #[serde(rename = "ack")]
    Ack(FrameAck),
}

impl EventBody {
    /// The wire name of this event's type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ThreadNew(_) => "thread.new",
            Self::ThreadActivity(_) => "thread.activity",
            Self::MessageCreated(_) => "message.created",
            Self::MessageUpdated(_) => "message.updated",
            Self::MessageDeleted(_) => "message.deleted",
            Self::ReactionAdded(_) => "reaction.added",
            Self::ReactionRemoved(_) => "reaction.removed",
            Self::MessagePinned(_) => "message.pinned",
            Self::MessageUnpinned(_) => "message.unpinned",
            Self::MembershipChanged(_) => "membership.changed",
            Self::WorkspaceMembershipChanged(_) => "workspace.membership.changed",
            Self::ConversationUpdated(_) => "conversation.updated",
            Self::MessageDelta(_) => "message.delta",
            Self::MessageDone(_) => "message.done",
            Self::UnreadUpdate(_) => "unread.update",
            Self::TypingUpdate(_) => "typing.update",
            Self::PresenceUpdate(_) => "presence.update",
            Self::Resync(_) => "resync",
            Self::Error(_) => "error",
            Self::Ack(_) => "ack",
        }
    }
}

/// `thread.activity`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadActivity {
    pub root_id: MessageId,
    pub reply_count: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_activity_at: OffsetDateTime,
    /// Present when the thread's title changed (edited, or generated by `auto_title`); an
    /// empty string means it was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Present when the thread's tags changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Present when the thread's AI settings changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::assistant::ThreadSettings>,
}

impl ThreadActivity {
    /// Activity only: a new reply or a new last activity time.
    pub fn new(root_id: MessageId, reply_count: i32, last_activity_at: OffsetDateTime) -> Self {
        Self { root_id, reply_count, last_activity_at, title: None, tags: None, settings: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    /// Added by someone else (or at the conversation's creation).
    Added,
    /// Joined with an invite.
    Joined,
    /// Removed by someone else (or with the workspace).
    Removed,
    /// Left by themselves.
    Left,
    RoleChanged,
    /// The conversation itself was deleted: the last event from it.
    ConversationDeleted,
}

impl MembershipChange {
    /// Whether the member is gone after this change.
    pub fn ends_membership(self) -> bool {
        matches!(self, Self::Removed | Self::Left | Self::ConversationDeleted)
    }
}

/// `membership.changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembershipChanged {
    pub user_id: UserId,
    pub change: MembershipChange,
    /// The role after the change; absent when the member is gone.
    pub role: Option<ConversationRole>,
}

/// `workspace.membership.changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceMembershipChanged {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub change: MembershipChange,
    /// The role after the change; absent when the member is gone.
    pub role: Option<WorkspaceRole>,
}

impl WorkspaceMembershipChanged {
    /// Whether the user sees the workspace's workspace-visible conversations after it
    /// (guests do not).
    pub fn sees_open_conversations(&self) -> bool {
        self.role.is_some_and(|r| r != WorkspaceRole::Guest)
    }
}

/// `conversation.updated`: the conversation's settings after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationUpdated {
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub history_visible_to_new_members: bool,
    pub archived: bool,
    #[serde(default)]
    pub default_assistant_id: Option<crate::AssistantId>,
    #[serde(default)]
    pub pin_policy: crate::conversation::PinPolicy,
    #[serde(default)]
    pub viewer_reactions: bool,
}

/// Unread counts of one conversation for one user: exact, never capped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationUnread {
    pub conversation_id: ConversationId,
    /// Thread roots posted by others after the conversation read cursor.
    pub unread: i64,
    /// Of `unread`, those that mention the member (by name, `@channel` or `@here`).
    #[serde(default)]
    pub mentions: i64,
    /// Threads with unread replies (replies by others after both read cursors), by root id.
    pub threads: Vec<ThreadUnread>,
    /// The member muted the conversation: the counts still count, clients show them quietly.
    #[serde(default)]
    pub muted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadUnread {
    pub root_id: MessageId,
    pub unread: i64,
    /// Of `unread`, those that mention the member.
    #[serde(default)]
    pub mentions: i64,
}

/// `GET /api/conversations/unread`: every conversation the caller is a member of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadResponse {
    pub conversations: Vec<ConversationUnread>,
}

/// `POST /api/conversations/{id}/read`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MarkReadRequest {
    /// Everything up to and including this message is read.
    pub message_id: MessageId,
    /// Move this thread's cursor (replies) instead of the conversation's.
    #[serde(default)]
    pub root_id: Option<MessageId>,
}

/// `typing.update`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingUpdate {
    pub user_id: UserId,
    pub root_id: Option<MessageId>,
    pub typing: bool,
}

/// `POST /api/conversations/{id}/typing`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingRequest {
    #[serde(default)]
    pub root_id: Option<MessageId>,
    pub typing: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    Online,
    Away,
    Offline,
}

/// A user's presence (`presence.update` and the snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PresenceInfo {
    pub user_id: UserId,
    pub state: PresenceState,
    /// The latest heartbeat; `null` when never seen.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen_at: Option<OffsetDateTime>,
}

/// `POST /api/presence/heartbeat` (and the WebSocket `presence` frame).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatRequest {
    /// The user is at the device but idle; shown as `away` to others.
    #[serde(default)]
    pub away: bool,
}

/// `GET /api/presence?user_ids=`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PresenceResponse {
    pub users: Vec<PresenceInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The cursor is older than what the log retains.
    TooOld,
    /// The cursor is not one this server issued.
    UnknownCursor,
    /// The connection could not keep up and was cut off.
    SlowConsumer,
}

/// `resync`: refetch state over REST, then follow the stream from `cursor`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resync {
    pub reason: ResyncReason,
    /// Where the stream continues from (absent when it ends here).
    pub cursor: Option<String>,
}

/// `error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamError {
    pub code: crate::ErrorCode,
    pub message: String,
    /// For `generation_failed`: why the assistant answer failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<crate::assistant::GenerationErrorCode>,
}

/// `POST /api/stream/token`: for `?token=` on stream URLs where headers cannot be set.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamTokenResponse {
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
}

/// What a WebSocket client sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// As `POST /api/conversations/{id}/typing`.
    Typing { conversation_id: ConversationId, root_id: Option<MessageId>, typing: bool },
    /// As `POST /api/presence/heartbeat`.
    Presence {
        #[serde(default)]
        away: bool,
    },
    /// The client has processed everything up to `cursor`.
    Ack { cursor: String },
    /// Posts a thread root (`root: true`, in `conversation_id`) or a reply to `parent_id`,
    /// as `POST /api/threads/{conversation_id}/root` and `POST /api/messages/{id}/reply`
    /// do (the same rules, limits and `client_msg_id` replay).
    Send(SendFrame),
    /// As `PUT /api/messages/{id}/feedback` (`rating: null`: as `DELETE`).
    Feedback {
        #[serde(default)]
        request_id: Option<String>,
        message_id: MessageId,
        rating: Option<crate::assistant::Rating>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        comment: Option<String>,
    },
    /// As `POST /api/messages/{id}/cancel`.
    Cancel {
        #[serde(default)]
        request_id: Option<String>,
        message_id: MessageId,
    },
}

/// The `send` client frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendFrame {
    /// Echoed in the `ack`, to match it to this frame.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The conversation; for a reply, when given, it must be the parent's.
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// The message replied to; absent with `root: true`.
    #[serde(default)]
    pub parent_id: Option<MessageId>,
    /// Start a thread instead of replying.
    #[serde(default)]
    pub root: bool,
    pub content: String,
    /// A retry with the same id is acknowledged with the original message (`status: 200`).
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// Ask the thread's assistant to answer the reply.
    #[serde(default)]
    pub generate: bool,
    /// For a root.
    #[serde(default)]
    pub title: Option<String>,
    /// For a root.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `ack`: what became of a client frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FrameAck {
    /// The frame's `request_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The frame's `client_msg_id` (`send`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// What the REST call would have answered: 201 (stored), 200 (done, or a retried
    /// `client_msg_id`: the original), else the problem's status.
    pub status: u16,
    /// `send`: the stored message; `cancel`: the answer cancelled; `feedback`: the answer rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// `send` with an answer started: the assistant's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_message_id: Option<MessageId>,
    /// Why the frame was refused (nothing was done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<crate::Problem>,
}

impl Event {
    /// A live-only event (no cursor) about nothing in particular yet; say what it is about
    /// with [`Event::in_conversation`] or [`Event::about_message`].
    pub fn live(body: EventBody, occurred_at: OffsetDateTime) -> Self {
        Self { body, conversation_id: None, root_id: None, message_id: None, cursor: None, occurred_at }
    }

    /// About a conversation (and a thread of it).
    pub fn in_conversation(mut self, conversation: ConversationId, root: Option<MessageId>) -> Self {
        self.conversation_id = Some(conversation);
        self.root_id = root;
        self
    }

    /// About one message of a thread.
    pub fn about_message(self, conversation: ConversationId, root: MessageId, message: MessageId) -> Self {
        let mut event = self.in_conversation(conversation, Some(root));
        event.message_id = Some(message);
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_flattens_type_and_data() -> serde_json::Result<()> {
        let event = Event {
            body: EventBody::Resync(Resync { reason: ResyncReason::TooOld, cursor: Some("5-7".into()) }),
            conversation_id: None,
            root_id: None,
            message_id: None,
            cursor: None,
            occurred_at: OffsetDateTime::UNIX_EPOCH,
        };
        let json = serde_json::to_value(&event)?;
        assert_eq!(json["type"], "resync");
        assert_eq!(json["data"]["reason"], "too_old");
        assert_eq!(serde_json::from_value::<Event>(json)?, event);
        assert_eq!(event.body.kind(), "resync");
        Ok(())
    }
}
