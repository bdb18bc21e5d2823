//! API keys: workspace admins mint them for services; each acts as a service user of its
//! own, so every membership and role rule applies to it unchanged.

use skein_shared::api_key::{API_KEY_PREFIX, ApiKey, ApiScope, CreateApiKeyRequest, CreatedApiKey};
use skein_shared::workspace::WorkspaceRole;
use skein_shared::{ApiKeyId, Page, UserId, WorkspaceId};

use super::{Services, keyset_page};
use crate::cursor::decode_id_cursor;
use crate::entities::NewApiKey;
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

/// Characters of the secret after the prefix that listings show.
const SHOWN_CHARS: usize = 6;

impl<P: Ports> Services<P> {
    pub async fn create_api_key(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        req: CreateApiKeyRequest,
    ) -> DomainResult<CreatedApiKey> {
        self.administered_workspace(caller, workspace).await?;
        let mut check = Check::new();
        let name = check.text("name", &req.name, self.limits.display_name_max_chars);
        let mut scopes = req.scopes.clone();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() {
            check.fail("scopes", "required", "name at least one of read, write, assistant, admin");
        }
        let admin = scopes.contains(&ApiScope::Admin);
        if let Some(ids) = &req.conversation_ids {
            if admin {
                check.fail("conversation_ids", "invalid", "an admin key acts in the whole workspace");
            }
            if ids.is_empty() || ids.len() > self.limits.initial_members_max {
                let max = self.limits.initial_members_max;
                check.fail("conversation_ids", "invalid", format!("list 1 to {max} conversations, or leave it out"));
            }
        }
        if req.expires_at.is_some_and(|at| at <= self.ports.now()) {
            check.fail("expires_at", "invalid", "must be in the future");
        }
        check.finish()?;
        let mut conversation_ids = req.conversation_ids.clone();
        if let Some(ids) = &mut conversation_ids {
            let mut check = Check::new();
            // Indices as the request lists them; at most `initial_members_max` lookups, on a
            // rare admin action.
            for (i, id) in ids.iter().enumerate() {
                // The key joins each listed conversation: its creator must be able to add members.
                let managed = self.managed_conversation(caller, *id).await;
                if !managed.is_ok_and(|(access, _)| access.conversation.workspace_id == workspace) {
                    check.fail(
                        &format!("conversation_ids[{i}]"),
                        "unknown",
                        "no conversation of this workspace that you administer",
                    );
                }
            }
            check.finish()?;
            ids.sort_unstable();
            ids.dedup();
        }
        let secret = format!("{API_KEY_PREFIX}{}", self.ports.new_secret());
        let workspace_role = match (admin, &conversation_ids) {
            (true, _) => WorkspaceRole::Admin,
            (false, Some(_)) => WorkspaceRole::Guest,
            (false, None) => WorkspaceRole::Member,
        };
        let key = self
            .ports
            .create_api_key(NewApiKey {
                id: ApiKeyId::generate(),
                workspace_id: workspace,
                name,
                scopes,
                conversation_ids,
                service_user: UserId::generate(),
                workspace_role,
                prefix: secret.chars().take(API_KEY_PREFIX.len() + SHOWN_CHARS).collect(),
                token_digest: self.ports.digest(&secret),
                created_by: caller,
                expires_at: req.expires_at,
            })
            .await?;
        Ok(CreatedApiKey { key, secret })
    }

    pub async fn list_api_keys(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<ApiKey>> {
        self.administered_workspace(caller, workspace).await?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let rows = self.ports.list_api_keys(workspace, after, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |k| k.id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn revoke_api_key(&self, caller: UserId, workspace: WorkspaceId, id: ApiKeyId) -> DomainResult<()> {
        self.administered_workspace(caller, workspace).await?;
        match self.ports.revoke_api_key(workspace, id).await? {
            true => Ok(()),
            false => Err(DomainError::NotFound),
        }
    }

    /// The workspace, when the caller administers it (members get 403, others 404).
    async fn administered_workspace(&self, caller: UserId, workspace: WorkspaceId) -> DomainResult<()> {
        let role = self.workspace_role_of(caller, workspace).await?;
        if !roles::can_grant_workspace_role(role, None, Some(WorkspaceRole::Member)) {
            return Err(DomainError::Forbidden("only workspace admins manage API keys"));
        }
        Ok(())
    }
}
