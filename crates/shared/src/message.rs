//! Changing messages after they are posted (edits and their history, deletes, reactions,
//! pins) and what their content mentions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::thread::Message;
use crate::{ConversationId, MessageId, UserId};

/// `PATCH /api/messages/{id}`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditMessageRequest {
    /// The new content (as a post's: not empty, at most the content limit).
    pub content: String,
}

/// One earlier version of a message (`GET /api/messages/{id}/history`, newest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageVersion {
    /// 0 is the message as first posted; version `n` was replaced by the `n + 1`-th edit.
    pub version: i32,
    /// What the message said before this edit.
    pub content: String,
    /// When the edit that replaced this version was made.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub edited_at: OffsetDateTime,
    /// Who made that edit.
    pub editor_id: UserId,
}

/// How many reacted to a message with one emoji.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionCount {
    pub emoji: String,
    pub count: i64,
    /// Whether the caller is one of them. Absent in events, which every viewer shares:
    /// `reaction.added` / `reaction.removed` name the user, so a client keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub me: Option<bool>,
}

/// One user who reacted (`GET /api/messages/{id}/reactions/{emoji}`, oldest first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reactor {
    pub user_id: UserId,
    pub display_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub reacted_at: OffsetDateTime,
}

/// A pinned message (`GET /api/conversations/{id}/pins`, newest pin first).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinnedMessage {
    pub message: Message,
    pub pinned_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub pinned_at: OffsetDateTime,
}

/// `reaction.added` / `reaction.removed`: who reacted, and the emoji's count after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionChanged {
    pub conversation_id: ConversationId,
    pub root_id: MessageId,
    pub message_id: MessageId,
    pub emoji: String,
    pub user_id: UserId,
    /// Reactions with this emoji on the message after the change.
    pub count: i64,
}

/// `message.pinned` / `message.unpinned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinChanged {
    pub conversation_id: ConversationId,
    pub root_id: MessageId,
    pub message_id: MessageId,
    /// Who pinned or unpinned it. (A delete unpins without this event: `message.deleted`
    /// says it.)
    pub by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
}

/// What a mention names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MentionKind {
    /// `<@user_id>`: a member of the conversation.
    User,
    /// `<@assistant_id>`: an assistant of the workspace, which is asked to answer.
    Assistant,
    /// `@channel`: every member.
    Channel,
    /// `@here`: every member who is online (counted as a mention for every member).
    Here,
}

/// One mention in a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mention {
    pub kind: MentionKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<crate::UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assistant_id: Option<crate::AssistantId>,
}
