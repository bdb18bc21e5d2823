//! Assistants of a workspace: any member may list and read them; admins manage them.

use skein_shared::assistant::{Assistant, CreateAssistantRequest, UpdateAssistantRequest};
use skein_shared::{AssistantId, Page, UserId, WorkspaceId};

use super::{Services, keyset_page};
use crate::cursor::decode_id_cursor;
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

impl<P: Ports> Services<P> {
    pub async fn create_assistant(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        req: CreateAssistantRequest,
    ) -> DomainResult<Assistant> {
        self.managed_workspace(caller, workspace).await?;
        let mut assistant = Assistant {
            id: AssistantId::generate(),
            workspace_id: workspace,
            name: req.name,
            provider: req.provider,
            model: req.model.unwrap_or_default(),
            system_prompt: req.system_prompt,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
            created_by: caller,
            created_at: self.ports.now(),
        };
        self.check_assistant(&mut assistant)?;
        self.ports.create_assistant(assistant).await
    }

    pub async fn list_assistants(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<Assistant>> {
        self.workspace_role_of(caller, workspace).await?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let rows = self.ports.list_assistants(workspace, after, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |a| a.id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn get_assistant(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        id: AssistantId,
    ) -> DomainResult<Assistant> {
        self.workspace_role_of(caller, workspace).await?;
        self.assistant_in(workspace, id).await
    }

    pub async fn update_assistant(
        &self,
        caller: UserId,
        workspace: WorkspaceId,
        id: AssistantId,
        req: UpdateAssistantRequest,
    ) -> DomainResult<Assistant> {
        self.managed_workspace(caller, workspace).await?;
        let mut assistant = self.assistant_in(workspace, id).await?;
        if let Some(name) = req.name {
            assistant.name = name;
        }
        if let Some(provider) = req.provider {
            // A new provider without a model means its default model.
            assistant.model = req.model.clone().unwrap_or_default();
            assistant.provider = provider;
        }
        if let Some(model) = req.model {
            assistant.model = model;
        }
        if let Some(prompt) = req.system_prompt {
            assistant.system_prompt = Some(prompt);
        }
        if let Some(t) = req.temperature {
            assistant.temperature = Some(t);
        }
        if let Some(n) = req.max_tokens {
            assistant.max_tokens = Some(n);
        }
        self.check_assistant(&mut assistant)?;
        self.ports.update_assistant(assistant).await
    }

    /// Deleted assistants stay on the messages they wrote but can no longer be chosen.
    pub async fn delete_assistant(&self, caller: UserId, workspace: WorkspaceId, id: AssistantId) -> DomainResult<()> {
        self.managed_workspace(caller, workspace).await?;
        self.assistant_in(workspace, id).await?;
        self.ports.delete_assistant(id).await
    }

    pub(super) async fn assistant_in(&self, workspace: WorkspaceId, id: AssistantId) -> DomainResult<Assistant> {
        match self.ports.find_assistant(id).await? {
            Some(a) if a.workspace_id == workspace => Ok(a),
            _ => Err(DomainError::NotFound),
        }
    }

    /// Validates and normalises: trimmed name, the provider's default model when none is
    /// given, an empty system prompt removed.
    fn check_assistant(&self, assistant: &mut Assistant) -> DomainResult<()> {
        let mut check = Check::new();
        assistant.name = check.text("name", &assistant.name, self.limits.title_max_chars);
        if let Some(prompt) = &assistant.system_prompt {
            check.max_chars("system_prompt", prompt, self.limits.message_max_chars);
        }
        assistant.system_prompt = assistant.system_prompt.take().filter(|p| !p.trim().is_empty());
        check.temperature("temperature", assistant.temperature);
        check.max_tokens("max_tokens", assistant.max_tokens);
        let cap = self.catalog.max_tokens_cap;
        if assistant.max_tokens.is_some_and(|n| n > cap) {
            check.fail("max_tokens", "out_of_range", format!("at most {cap} (the instance's llm.max_tokens_cap)"));
        }
        check.finish()?;
        let model = (!assistant.model.is_empty()).then_some(assistant.model.as_str());
        let choice = self.catalog.choose(&assistant.provider, model)?;
        assistant.model = choice.model;
        Ok(())
    }

    /// The caller administers the workspace; `NotFound` when not in it.
    async fn managed_workspace(&self, caller: UserId, workspace: WorkspaceId) -> DomainResult<()> {
        let role = self.workspace_role_of(caller, workspace).await?;
        if !roles::can_manage_workspace_members(role) {
            return Err(DomainError::Forbidden("only workspace admins can manage assistants"));
        }
        Ok(())
    }
}
