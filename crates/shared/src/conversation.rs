//! Conversations, their members and invites.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ConversationId, UserId, WorkspaceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConversationKind {
    /// Exactly two people; one per pair.
    Direct,
    /// Ad hoc, several people, no name needed.
    Group,
    /// Named.
    Channel,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Visibility {
    /// Members only.
    Private,
    /// Every (non-guest) workspace member is implicitly a member.
    Workspace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ConversationRole {
    /// Reads only.
    Viewer,
    Member,
    Admin,
    Owner,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub history_visible_to_new_members: bool,
    pub archived: bool,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_activity_at: OffsetDateTime,
    /// Sequence number of the latest message (0 when empty).
    pub last_seq: i64,
    /// The assistant answering in threads whose settings name none.
    #[serde(default)]
    pub default_assistant_id: Option<crate::AssistantId>,
    #[serde(default)]
    pub pin_policy: PinPolicy,
    /// Whether viewers may react (they may do nothing else).
    #[serde(default)]
    pub viewer_reactions: bool,
    /// The caller's effective role.
    pub my_role: ConversationRole,
    /// The caller's own settings for it.
    #[serde(default)]
    pub preferences: crate::preferences::MemberPreferences,
}

/// How `GET /api/conversations` orders its page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationOrder {
    /// Latest activity first.
    #[default]
    Activity,
    /// The caller's starred conversations first, each part by latest activity.
    Starred,
}

/// Who may pin messages in a conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PinPolicy {
    /// Members, admins and owners.
    #[default]
    Members,
    /// Admins and owners only.
    Admins,
}

/// `POST /api/conversations`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateConversationRequest {
    pub workspace_id: WorkspaceId,
    pub kind: ConversationKind,
    /// Required for channels.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to `private`; only channels may be `workspace`.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    /// The other members (the caller is added as owner). `direct` takes exactly one.
    #[serde(default)]
    pub member_ids: Vec<UserId>,
    /// Defaults to `true`.
    #[serde(default)]
    pub history_visible_to_new_members: Option<bool>,
}

/// `PATCH /api/conversations/{id}`: absent fields are left alone; `null` clears the description.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateConversationRequest {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub history_visible_to_new_members: Option<bool>,
    /// An assistant of the workspace; `null` removes the default.
    #[serde(default, deserialize_with = "crate::double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub default_assistant_id: Option<Option<crate::AssistantId>>,
    #[serde(default)]
    pub pin_policy: Option<PinPolicy>,
    #[serde(default)]
    pub viewer_reactions: Option<bool>,
}

/// `DELETE /api/conversations/{id}`: deleting is for good, so the caller repeats the
/// conversation's id.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteConversationRequest {
    /// The id of the conversation being deleted.
    pub confirm: String,
}

/// `POST /api/conversations/{id}/convert`: a group becomes a private channel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConvertConversationRequest {
    /// Required when the group has no title yet.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationMember {
    pub user_id: UserId,
    pub display_name: String,
    pub role: ConversationRole,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub joined_at: OffsetDateTime,
}

/// `POST /api/conversations/{id}/members`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddConversationMemberRequest {
    pub user_id: UserId,
    /// Defaults to `member`.
    #[serde(default)]
    pub role: Option<ConversationRole>,
}

/// `POST /api/conversations/{id}/invites`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInviteRequest {
    /// Defaults to `member`; `owner` cannot be granted by invite.
    #[serde(default)]
    pub role: Option<ConversationRole>,
    /// Unlimited when absent.
    #[serde(default)]
    pub max_uses: Option<i32>,
    /// Never expires when absent.
    #[serde(default)]
    pub expires_in_seconds: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    pub code: String,
    pub conversation_id: ConversationId,
    pub role: ConversationRole,
    pub max_uses: Option<i32>,
    pub uses: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}
