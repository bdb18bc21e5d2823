//! Workspaces (tenants) and their members.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{UserId, WorkspaceId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkspaceRole {
    Guest,
    Member,
    Admin,
    Owner,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_by: UserId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// The caller's role in this workspace.
    pub my_role: WorkspaceRole,
}

/// `POST /api/workspaces`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWorkspaceRequest {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkspaceMember {
    pub user_id: UserId,
    pub display_name: String,
    /// Shown to the workspace's admins (and to the member themselves) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub role: WorkspaceRole,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub joined_at: OffsetDateTime,
}

/// `POST /api/workspaces/{id}/members`: name the user by `email` or by `user_id`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddWorkspaceMemberRequest {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// Defaults to `member`.
    #[serde(default)]
    pub role: Option<WorkspaceRole>,
}

/// `PATCH /api/workspaces/{id}/members/{user_id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateWorkspaceMemberRequest {
    pub role: WorkspaceRole,
}
