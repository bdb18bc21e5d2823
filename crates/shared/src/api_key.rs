//! API keys: credentials for services (bots, pipelines) that act in one workspace as a
//! service user, with the least rights their scopes give.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ApiKeyId, ConversationId, UserId, WorkspaceId};

/// The secret's prefix, so that secret scanners recognise a leaked key.
pub const API_KEY_PREFIX: &str = "sk_skein_";

/// What a key may do. A request needs `read` to read (GET), `write` to change anything,
/// `assistant` to ask for, cancel or rate assistant answers; `admin` makes the key's service
/// user a workspace admin and grants the other three.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ApiScope {
    Read,
    Write,
    Assistant,
    Admin,
}

impl ApiScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Assistant => "assistant",
            Self::Admin => "admin",
        }
    }
}

/// `POST /api/workspaces/{id}/api-keys` (workspace admins).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateApiKeyRequest {
    /// Shown as the service user's display name on what the key posts.
    pub name: String,
    /// At least one.
    pub scopes: Vec<ApiScope>,
    /// Only these conversations (others are 404 to the key); absent: the workspace, as a
    /// member sees it. Not with `admin`.
    #[serde(default)]
    pub conversation_ids: Option<Vec<ConversationId>>,
    /// Absent: the key does not expire (revoke it with `DELETE`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
}

/// An API key as listed: never its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub scopes: Vec<ApiScope>,
    pub conversation_ids: Option<Vec<ConversationId>>,
    /// The service user the key acts as (the author of what it posts).
    pub user_id: UserId,
    /// The secret's first characters (`sk_skein_` and 6 more), to tell keys apart.
    pub prefix: String,
    pub created_by: Option<UserId>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    /// Within a minute.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A new key with its secret: shown this once, stored only as a hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// `sk_skein_…`: send as `Authorization: Bearer <secret>`.
    pub secret: String,
}
