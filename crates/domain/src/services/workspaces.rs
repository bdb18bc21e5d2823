use skein_shared::workspace::{
    AddWorkspaceMemberRequest, CreateWorkspaceRequest, Workspace, WorkspaceMember, WorkspaceRole,
};
use skein_shared::{Page, UserId, WorkspaceId};

use super::{Services, keyset_page};
use crate::cursor::decode_id_cursor;
use crate::entities::Created;
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

impl<P: Ports> Services<P> {
    pub async fn create_workspace(&self, caller: UserId, req: CreateWorkspaceRequest) -> DomainResult<Workspace> {
        let mut check = Check::new();
        let name = check.text("name", &req.name, self.limits.title_max_chars);
        check.finish()?;
        self.ports.create_workspace(WorkspaceId::generate(), name, caller).await
    }

    pub async fn list_workspaces(
        &self,
        caller: UserId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<Workspace>> {
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let rows = self.ports.list_workspaces(caller, after, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |w| w.id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn get_workspace(&self, caller: UserId, id: WorkspaceId) -> DomainResult<Workspace> {
        self.ports.workspace_for(id, caller).await?.ok_or(DomainError::NotFound)
    }

    /// The caller's role; `NotFound` when they are not in the workspace.
    pub(super) async fn workspace_role_of(&self, caller: UserId, id: WorkspaceId) -> DomainResult<WorkspaceRole> {
        self.ports.workspace_role(id, caller).await?.ok_or(DomainError::NotFound)
    }

    pub async fn list_workspace_members(
        &self,
        caller: UserId,
        id: WorkspaceId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<WorkspaceMember>> {
        let role = self.workspace_role_of(caller, id).await?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let mut rows = self.ports.list_workspace_members(id, after, limit + 1).await?;
        // Addresses are for those who manage membership (guests and members see names).
        if !roles::can_manage_workspace_members(role) {
            rows.iter_mut().filter(|m| m.user_id != caller).for_each(|m| m.email = None);
        }
        let (data, next) = keyset_page(rows, limit, |m| m.user_id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn add_workspace_member(
        &self,
        caller: UserId,
        id: WorkspaceId,
        req: AddWorkspaceMemberRequest,
    ) -> DomainResult<Created<WorkspaceMember>> {
        let actor = self.workspace_role_of(caller, id).await?;
        let role = req.role.unwrap_or(WorkspaceRole::Member);
        if !roles::can_grant_workspace_role(actor, None, Some(role)) {
            return Err(DomainError::Forbidden("only workspace admins add members, and only owners add owners"));
        }
        let user = match (req.user_id, req.email.as_deref()) {
            (Some(user_id), None) => user_id,
            (None, Some(email)) => {
                let mut check = Check::new();
                let email = check.email("email", email);
                check.finish()?;
                self.ports
                    .find_user_by_email(&email)
                    .await?
                    .ok_or_else(|| DomainError::field("email", "unknown", "no account has this email"))?
                    .id
            }
            _ => {
                return Err(DomainError::field("email", "required", "give exactly one of email or user_id"));
            }
        };
        self.ports.add_workspace_member(id, user, role).await.map_err(|e| match e {
            // An unknown user id is a field error, not a missing workspace.
            DomainError::NotFound => DomainError::field("user_id", "unknown", "no such user"),
            other => other,
        })
    }

    pub async fn update_workspace_member(
        &self,
        caller: UserId,
        id: WorkspaceId,
        user: UserId,
        role: WorkspaceRole,
    ) -> DomainResult<WorkspaceMember> {
        let actor = self.workspace_role_of(caller, id).await?;
        let current = self.ports.workspace_role(id, user).await?.ok_or(DomainError::NotFound)?;
        if !roles::can_grant_workspace_role(actor, Some(current), Some(role)) {
            return Err(DomainError::Forbidden("only workspace admins change roles, and only owners touch owners"));
        }
        self.ports.set_workspace_role(id, user, role).await
    }

    /// Removes a member; anyone may remove themselves (leave).
    pub async fn remove_workspace_member(&self, caller: UserId, id: WorkspaceId, user: UserId) -> DomainResult<()> {
        let actor = self.workspace_role_of(caller, id).await?;
        let current = self.ports.workspace_role(id, user).await?.ok_or(DomainError::NotFound)?;
        if caller != user && !roles::can_grant_workspace_role(actor, Some(current), None) {
            return Err(DomainError::Forbidden("only workspace admins remove members, and only owners remove owners"));
        }
        self.ports.remove_workspace_member(id, user).await
    }
}
