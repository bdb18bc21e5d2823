//! Row types as read from PostgreSQL, and their conversion into domain and wire types.

use diesel::prelude::*;
use skein_domain::DomainError;
use skein_domain::entities::{ConversationAccess, ConversationRecord, Credential, InviteRecord, MessageRecord};
use skein_shared::api_key::ApiKey;
use skein_shared::assistant::ThreadSettings;
use skein_shared::auth::User;
use skein_shared::conversation::{ConversationMember, Invite};
use skein_shared::thread::{Message, ThreadSummary, Via};
use skein_shared::workspace::{Workspace, WorkspaceMember};
use skein_shared::{ApiKeyId, ConversationId, MessageId, UserId, WorkspaceId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::codec::{enum_from_db, ulid};
use crate::store::schema::*;

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub is_instance_admin: bool,
    pub created_at: OffsetDateTime,
    pub disabled_at: Option<OffsetDateTime>,
}

impl UserRow {
    pub fn into_credential(self) -> Credential {
        let password_hash = self.password_hash.clone();
        let disabled = self.disabled_at.is_some();
        Credential { user: self.into_user(), password_hash, disabled }
    }

    pub fn into_user(self) -> User {
        User {
            id: UserId(ulid(self.id)),
            email: self.email,
            display_name: self.display_name,
            is_instance_admin: self.is_instance_admin,
            created_at: self.created_at,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub conversation_ids: Option<Vec<Uuid>>,
    pub prefix: String,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl ApiKeyRow {
    /// With its session's `last_used_at`.
    pub fn into_api_key(self, last_used_at: OffsetDateTime) -> Result<ApiKey, DomainError> {
        Ok(ApiKey {
            id: ApiKeyId(ulid(self.id)),
            workspace_id: WorkspaceId(ulid(self.workspace_id)),
            name: self.name,
            scopes: self.scopes.iter().map(|s| enum_from_db(s)).collect::<Result<_, _>>()?,
            conversation_ids: self
                .conversation_ids
                .map(|ids| ids.into_iter().map(|c| ConversationId(ulid(c))).collect()),
            user_id: UserId(ulid(self.user_id)),
            prefix: self.prefix,
            created_by: self.created_by.map(|u| UserId(ulid(u))),
            created_at: self.created_at,
            expires_at: self.expires_at,
            // A key's session is stored as last used before the key existed: not used yet.
            last_used_at: (last_used_at >= self.created_at).then_some(last_used_at),
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = workspaces)]
pub struct WorkspaceRow {
    pub id: Uuid,
    pub name: String,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
}

impl WorkspaceRow {
    pub fn with_role(self, role: &str) -> Result<Workspace, DomainError> {
        Ok(Workspace {
            id: WorkspaceId(ulid(self.id)),
            name: self.name,
            created_by: UserId(ulid(self.created_by)),
            created_at: self.created_at,
            my_role: enum_from_db(role)?,
        })
    }
}

/// `(user_id, display_name, email, role, joined_at)` of a workspace member.
pub type WorkspaceMemberRow = (Uuid, String, String, String, OffsetDateTime);

pub fn workspace_member(
    (user_id, display_name, email, role, joined_at): WorkspaceMemberRow,
) -> Result<WorkspaceMember, DomainError> {
    let email = Some(email);
    Ok(WorkspaceMember { user_id: UserId(ulid(user_id)), display_name, email, role: enum_from_db(&role)?, joined_at })
}

/// `(user_id, display_name, role, joined_at)` of a conversation member.
pub type ConversationMemberRow = (Uuid, String, String, OffsetDateTime);

pub fn conversation_member(
    (user_id, display_name, role, joined_at): ConversationMemberRow,
) -> Result<ConversationMember, DomainError> {
    Ok(ConversationMember { user_id: UserId(ulid(user_id)), display_name, role: enum_from_db(&role)?, joined_at })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = conversations)]
pub struct ConversationRow {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub kind: String,
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: String,
    pub history_visible: bool,
    pub archived_at: Option<OffsetDateTime>,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub last_seq: i64,
    pub default_assistant_id: Option<Uuid>,
    pub pin_policy: String,
    pub viewer_reactions: bool,
}

impl ConversationRow {
    pub fn into_record(self) -> Result<ConversationRecord, DomainError> {
        Ok(ConversationRecord {
            id: ConversationId(ulid(self.id)),
            workspace_id: WorkspaceId(ulid(self.workspace_id)),
            kind: enum_from_db(&self.kind)?,
            title: self.title,
            description: self.description,
            visibility: enum_from_db(&self.visibility)?,
            history_visible_to_new_members: self.history_visible,
            archived: self.archived_at.is_some(),
            created_by: UserId(ulid(self.created_by)),
            created_at: self.created_at,
            last_activity_at: self.last_activity_at,
            last_seq: self.last_seq,
            default_assistant_id: self.default_assistant_id.map(|id| skein_shared::AssistantId(ulid(id))),
            pin_policy: enum_from_db(&self.pin_policy)?,
            viewer_reactions: self.viewer_reactions,
        })
    }
}

/// A conversation with one user's explicit role, joined_seq and workspace role.
/// The conversation and the standing columns: explicit role, joined_seq, workspace role and
/// where the user's open departure began (if they left).
pub type AccessRow = (ConversationRow, (Option<String>, Option<i64>, String, Option<i64>));

pub fn access(
    (conversation, (explicit_role, joined_seq, workspace_role, departed_at)): AccessRow,
) -> Result<ConversationAccess, DomainError> {
    Ok(ConversationAccess {
        conversation: conversation.into_record()?,
        explicit_role: explicit_role.as_deref().map(enum_from_db).transpose()?,
        joined_seq,
        workspace_role: enum_from_db(&workspace_role)?,
        departed: departed_at.is_some(),
    })
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invites)]
pub struct InviteRow {
    pub code: String,
    pub conversation_id: Uuid,
    pub role: String,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub expires_at: Option<OffsetDateTime>,
    pub created_by: Uuid,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl InviteRow {
    pub fn into_record(self) -> Result<InviteRecord, DomainError> {
        Ok(InviteRecord {
            revoked: self.revoked_at.is_some(),
            invite: Invite {
                code: self.code,
                conversation_id: ConversationId(ulid(self.conversation_id)),
                role: enum_from_db(&self.role)?,
                max_uses: self.max_uses,
                uses: self.uses,
                expires_at: self.expires_at,
                created_by: UserId(ulid(self.created_by)),
                created_at: self.created_at,
            },
        })
    }
}

#[derive(Queryable, QueryableByName, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub root_id: Uuid,
    pub parent_id: Option<Uuid>,
    pub depth: i32,
    pub path: Vec<Uuid>,
    pub seq: i64,
    pub author_id: Option<Uuid>,
    pub role: String,
    pub content: String,
    pub status: String,
    pub client_msg_id: Option<String>,
    pub created_at: OffsetDateTime,
    pub edited_at: Option<OffsetDateTime>,
    pub edit_count: i32,
    pub deleted_at: Option<OffsetDateTime>,
    pub deleted_by: Option<Uuid>,
    /// When a deleted message's content is erased (it is never shown meanwhile). Only the
    /// purge reads it, in SQL; it is here so that every statement returns the same row.
    #[allow(dead_code)]
    pub purge_at: Option<OffsetDateTime>,
    pub pinned_at: Option<OffsetDateTime>,
    pub pinned_by: Option<Uuid>,
    pub mentions: serde_json::Value,
    /// For unread counting, in SQL; `mentions` says the same for showing.
    #[allow(dead_code)]
    pub mentioned_user_ids: Vec<Uuid>,
    pub author_kind: String,
    pub via_kind: String,
    pub via_api_key_id: Option<Uuid>,
}

/// The columns of a [`MessageRow`], for raw SQL that names `messages` as `alias` (never
/// `alias.*`: that would also carry `search_vector`, which no row type reads).
pub fn message_columns(alias: &str) -> String {
    const COLUMNS: [&str; 25] = [
        "id",
        "conversation_id",
        "root_id",
        "parent_id",
        "depth",
        "path",
        "seq",
        "author_id",
        "role",
        "content",
        "status",
        "client_msg_id",
        "created_at",
        "edited_at",
        "edit_count",
        "deleted_at",
        "deleted_by",
        "purge_at",
        "pinned_at",
        "pinned_by",
        "mentions",
        "mentioned_user_ids",
        "author_kind",
        "via_kind",
        "via_api_key_id",
    ];
    COLUMNS.map(|column| format!("{alias}.{column}")).join(", ")
}

impl MessageRow {
    pub fn into_record(self) -> Result<MessageRecord, DomainError> {
        let path = self.path.iter().map(|id| MessageId(ulid(*id))).collect();
        Ok(MessageRecord {
            path,
            message: Message {
                id: MessageId(ulid(self.id)),
                conversation_id: ConversationId(ulid(self.conversation_id)),
                root_id: MessageId(ulid(self.root_id)),
                parent_id: self.parent_id.map(|p| MessageId(ulid(p))),
                depth: self.depth,
                seq: self.seq,
                author_id: self.author_id.map(|a| UserId(ulid(a))),
                author_kind: enum_from_db(&self.author_kind)?,
                via: Via {
                    kind: enum_from_db(&self.via_kind)?,
                    api_key_id: self.via_api_key_id.map(|k| ApiKeyId(ulid(k))),
                },
                role: enum_from_db(&self.role)?,
                // A tombstone shows nothing of what it said, even before the purge erases it.
                content: if self.deleted_at.is_some() { String::new() } else { self.content },
                status: enum_from_db(&self.status)?,
                client_msg_id: self.client_msg_id,
                created_at: self.created_at,
                edited_at: self.edited_at,
                edit_count: self.edit_count,
                deleted_at: self.deleted_at,
                deleted_by: self.deleted_by.map(|u| UserId(ulid(u))),
                pinned: self.pinned_at.is_some(),
                reactions: Vec::new(),
                // Written by this server from a Vec<Mention>; unreadable means none.
                mentions: match self.deleted_at {
                    Some(_) => Vec::new(),
                    None => serde_json::from_value(self.mentions).unwrap_or_default(),
                },
            },
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = threads)]
pub struct ThreadRow {
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub reply_count: i32,
    pub participant_ids: Vec<Uuid>,
    pub created_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub settings: serde_json::Value,
}

/// A thread's stored AI settings. Written only from validated `ThreadSettings` (unknown
/// fields are ignored); a column that does not read as them is an error, not "no settings"
/// (which would silently answer with another assistant, or none).
pub fn thread_settings(stored: serde_json::Value) -> Result<ThreadSettings, DomainError> {
    serde_json::from_value(stored).map_err(|e| DomainError::Internal(format!("corrupt thread settings: {e}")))
}

impl ThreadRow {
    pub fn with_root(self, root: MessageRow) -> Result<ThreadSummary, DomainError> {
        let root = root.into_record()?.message;
        Ok(ThreadSummary {
            root_id: root.id,
            conversation_id: root.conversation_id,
            title: self.title,
            tags: self.tags,
            settings: thread_settings(self.settings)?,
            reply_count: self.reply_count,
            participant_ids: self.participant_ids.into_iter().map(|id| UserId(ulid(id))).collect(),
            last_activity_at: self.last_activity_at,
            created_at: self.created_at,
            root,
        })
    }
}
