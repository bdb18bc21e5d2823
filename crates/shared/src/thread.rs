//! Threads (trees of messages) and messages.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::assistant::ThreadSettings;
use crate::{ApiKeyId, ConversationId, MessageId, Page, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageRole {
    User,
    Assistant,
    System,
}

/// Who wrote a message: a person, a service (through an API key), an assistant, or the
/// server itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthorKind {
    #[default]
    User,
    Service,
    Assistant,
    System,
}

/// How a message came in: a person's session, an API key, or the OpenAI-compatible
/// endpoint (with a session or a key). An assistant's answer records how it was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ViaKind {
    #[default]
    Session,
    ApiKey,
    Openai,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Via {
    pub kind: ViaKind,
    /// The key, when one authenticated the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<ApiKeyId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MessageStatus {
    Complete,
    Streaming,
    Failed,
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// The thread's root; equal to `id` for a root.
    pub root_id: MessageId,
    /// `null` for a root.
    pub parent_id: Option<MessageId>,
    /// 0 for a root, parent's depth + 1 for a reply.
    pub depth: i32,
    /// Position in the conversation: gapless and increasing in commit order.
    pub seq: i64,
    pub author_id: Option<UserId>,
    /// `service` when an API key's service user wrote it.
    #[serde(default)]
    pub author_kind: AuthorKind,
    /// How it came in.
    #[serde(default)]
    pub via: Via,
    pub role: MessageRole,
    pub content: String,
    pub status: MessageStatus,
    pub client_msg_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// When the content was last edited (`GET /api/messages/{id}/history` lists what it was).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub edited_at: Option<OffsetDateTime>,
    /// Edits so far (previous versions kept).
    #[serde(default)]
    pub edit_count: i32,
    /// Set on a tombstone: the message was deleted (its content is `""`; it keeps its place
    /// in the tree so replies keep their parent).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub deleted_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub deleted_by: Option<UserId>,
    /// Pinned to its conversation (`GET /api/conversations/{id}/pins`).
    #[serde(default)]
    pub pinned: bool,
    /// Reactions by emoji, in the order each was first used.
    #[serde(default)]
    pub reactions: Vec<crate::message::ReactionCount>,
    /// Who the content mentions (`<@user_id>`, `<@assistant_id>`, `@channel`, `@here`), as
    /// the server resolved it when the message was posted or last edited.
    #[serde(default)]
    pub mentions: Vec<crate::message::Mention>,
}

/// `POST /api/threads/{conversation_id}/root`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRootRequest {
    pub content: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// A retry with the same id returns the original message (200).
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// The thread's AI settings.
    #[serde(default)]
    pub settings: Option<ThreadSettings>,
}

/// `POST /api/messages/{message_id}/reply`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplyRequest {
    pub content: String,
    /// A retry with the same id returns the original message (200).
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// Ask the thread's assistant to answer this reply (the thread's `auto_reply` does it
    /// always). The response then carries `assistant_message`.
    #[serde(default)]
    pub generate: bool,
}

/// `PATCH /api/threads/{root_id}`: absent fields stay; an empty `title` removes it;
/// `settings` replaces the thread's settings as a whole.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateThreadRequest {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub settings: Option<ThreadSettings>,
}

/// What a thread list shows about a thread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadSummary {
    pub root_id: MessageId,
    pub conversation_id: ConversationId,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// The thread's AI settings.
    #[serde(default)]
    pub settings: ThreadSettings,
    /// Messages in the thread other than the root.
    pub reply_count: i32,
    /// Distinct authors, in order of first message.
    pub participant_ids: Vec<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_activity_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    pub root: Message,
}

/// One message in a depth-first listing of a thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TreeNode {
    #[serde(flatten)]
    pub message: Message,
    /// Ids from the root down to the parent (empty for the root). Present when the node's
    /// parent is not earlier in the same page (always on a page's first node); otherwise it is
    /// the parent's ancestry followed by `parent_id`. Either way a page can be placed in the
    /// tree without fetching anything else, and its size grows with its nodes, not their depth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ancestor_ids: Option<Vec<MessageId>>,
}

/// `GET /api/threads/{root_id}/tree`: the summary and one page of nodes in depth-first
/// order, siblings oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadTreeResponse {
    pub thread: ThreadSummary,
    pub data: Vec<TreeNode>,
    pub page: crate::PageInfo,
}

impl ThreadTreeResponse {
    pub fn new(thread: ThreadSummary, nodes: Page<TreeNode>) -> Self {
        Self { thread, data: nodes.data, page: nodes.page }
    }
}

/// The query of `GET /api/threads/{root_id}/tree`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct TreeParams {
    /// Only the subtree under this message (it comes first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MessageId>,
    /// `page.next` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// The query of `GET /api/conversations/{id}/messages` (at most one anchor).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct HistoryParams {
    /// Messages older than this one (pass `page.prev`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<MessageId>,
    /// Messages newer than this one (pass `page.next`, or the newest id you have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<MessageId>,
    /// A page centred on this message (it is included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub around: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}
