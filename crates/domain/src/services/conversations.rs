use skein_shared::conversation::{
    AddConversationMemberRequest, Conversation, ConversationKind, ConversationMember, ConversationRole,
    ConvertConversationRequest, CreateConversationRequest, CreateInviteRequest, DeleteConversationRequest, Invite,
    PinPolicy, UpdateConversationRequest, Visibility,
};
use skein_shared::event::MembershipChange;
use skein_shared::{ConversationId, ErrorCode, Page, UserId};
use time::Duration;

use super::{Services, fixed_membership, keyset_page};
use crate::cursor::decode_id_cursor;
use crate::entities::{ConversationPatch, ConversationRecord, Created, NewConversation, Within};
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

impl<P: Ports> Services<P> {
    pub async fn create_conversation(
        &self,
        caller: UserId,
        req: CreateConversationRequest,
    ) -> DomainResult<Created<Conversation>> {
        let ws_role = self.ports.workspace_role(req.workspace_id, caller).await?.ok_or(DomainError::NotFound)?;
        if !roles::can_create_conversation(ws_role) {
            return Err(DomainError::Forbidden("guests cannot create conversations"));
        }

        let mut check = Check::new();
        let title = check.optional_text("title", req.title.as_deref(), self.limits.title_max_chars);
        let description =
            check.optional_text("description", req.description.as_deref(), self.limits.description_max_chars);
        let visibility = req.visibility.unwrap_or(Visibility::Private);
        let mut others: Vec<UserId> = req.member_ids.iter().copied().filter(|id| *id != caller).collect();
        others.sort();
        others.dedup();
        match req.kind {
            ConversationKind::Direct if others.len() != 1 => {
                check.fail("member_ids", "invalid", "a direct conversation takes exactly one other member")
            }
            ConversationKind::Channel if title.is_none() => check.fail("title", "required", "a channel needs a title"),
            _ => {}
        }
        if visibility == Visibility::Workspace && req.kind != ConversationKind::Channel {
            check.fail("visibility", "invalid", "only channels can be visible to the whole workspace");
        }
        if others.len() > self.limits.initial_members_max {
            check.fail(
                "member_ids",
                "too_long",
                format!("at most {} members at creation", self.limits.initial_members_max),
            );
        }
        check.finish()?;

        let in_workspace = self.ports.workspace_members_among(req.workspace_id, &others).await?;
        if in_workspace.len() != others.len() {
            let outsider =
                others.iter().find(|id| !in_workspace.contains(id)).map(ToString::to_string).unwrap_or_default();
            return Err(DomainError::field(
                "member_ids",
                "not_in_workspace",
                format!("{outsider} is not a member of this workspace"),
            ));
        }

        let direct = req.kind == ConversationKind::Direct;
        let creator_role = if direct { ConversationRole::Member } else { ConversationRole::Owner };
        let mut members = vec![(caller, creator_role)];
        members.extend(others.iter().map(|id| (*id, ConversationRole::Member)));
        let direct_key = direct.then(|| {
            let (a, b) = (caller.min(others[0]), caller.max(others[0]));
            format!("{}:{a}:{b}", req.workspace_id)
        });
        let now = self.ports.now();
        let record = ConversationRecord {
            id: ConversationId::generate(),
            workspace_id: req.workspace_id,
            kind: req.kind,
            title,
            description,
            visibility,
            history_visible_to_new_members: req.history_visible_to_new_members.unwrap_or(true),
            archived: false,
            created_by: caller,
            created_at: now,
            last_activity_at: now,
            last_seq: 0,
            default_assistant_id: None,
            pin_policy: PinPolicy::Members,
            viewer_reactions: false,
        };
        let created = self.ports.create_conversation(NewConversation { record, members, direct_key }).await?;
        // Only a direct conversation can already exist, and there the caller is a plain member.
        match created {
            Created::New(c) => Ok(Created::New(c.view(creator_role))),
            Created::Existing(c) => Ok(Created::Existing(self.own_view(caller, c.view(creator_role)).await?)),
        }
    }

    pub async fn get_conversation(&self, caller: UserId, id: ConversationId) -> DomainResult<Conversation> {
        let (access, role) = self.visible_conversation(caller, id).await?;
        self.own_view(caller, access.conversation.view(role)).await
    }

    pub async fn update_conversation(
        &self,
        caller: UserId,
        id: ConversationId,
        req: UpdateConversationRequest,
    ) -> DomainResult<Conversation> {
        let (access, role) = self.managed_conversation(caller, id).await?;
        if access.conversation.archived {
            return Err(DomainError::archived());
        }
        let mut check = Check::new();
        let title = req.title.as_deref().map(|t| check.text("title", t, self.limits.title_max_chars));
        let description = req.description.as_deref().map(|d| {
            check.max_chars("description", d.trim(), self.limits.description_max_chars);
            d.trim().to_owned()
        });
        if req.visibility == Some(Visibility::Workspace) && access.conversation.kind != ConversationKind::Channel {
            check.fail("visibility", "invalid", "only channels can be visible to the whole workspace");
        }
        if let Some(Some(assistant)) = req.default_assistant_id
            && self.assistant_in(access.conversation.workspace_id, assistant).await.is_err()
        {
            check.fail("default_assistant_id", "unknown", "no such assistant in this workspace");
        }
        check.finish()?;
        let patch = ConversationPatch {
            title,
            description,
            visibility: req.visibility,
            history_visible_to_new_members: req.history_visible_to_new_members,
            default_assistant_id: req.default_assistant_id,
            pin_policy: req.pin_policy,
            viewer_reactions: req.viewer_reactions,
            ..ConversationPatch::default()
        };
        self.own_view(caller, self.ports.update_conversation(id, patch).await?.view(role)).await
    }

    pub async fn set_archived(&self, caller: UserId, id: ConversationId, archived: bool) -> DomainResult<Conversation> {
        let (_, role) = self.managed_conversation(caller, id).await?;
        let patch = ConversationPatch { archived: Some(archived), ..ConversationPatch::default() };
        self.own_view(caller, self.ports.update_conversation(id, patch).await?.view(role)).await
    }

    /// A group becomes a private channel (it needs a title by then).
    pub async fn convert_to_channel(
        &self,
        caller: UserId,
        id: ConversationId,
        req: ConvertConversationRequest,
    ) -> DomainResult<Conversation> {
        let (access, role) = self.managed_conversation(caller, id).await?;
        if access.conversation.archived {
            return Err(DomainError::archived());
        }
        if access.conversation.kind != ConversationKind::Group {
            return Err(DomainError::rule(ErrorCode::NotConvertible, "only a group can be converted into a channel"));
        }
        let mut check = Check::new();
        let title = check.optional_text("title", req.title.as_deref(), self.limits.title_max_chars);
        if title.is_none() && access.conversation.title.is_none() {
            check.fail("title", "required", "a channel needs a title");
        }
        check.finish()?;
        let patch = ConversationPatch {
            title,
            kind: Some(ConversationKind::Channel),
            visibility: Some(Visibility::Private),
            ..ConversationPatch::default()
        };
        self.own_view(caller, self.ports.update_conversation(id, patch).await?.view(role)).await
    }

    pub async fn list_conversation_members(
        &self,
        caller: UserId,
        id: ConversationId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<ConversationMember>> {
        self.visible_conversation(caller, id).await?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(decode_id_cursor).transpose()?;
        let rows = self.ports.list_conversation_members(id, after, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |m| m.user_id.to_string());
        Ok(Page::new(data, next, None))
    }

    pub async fn add_conversation_member(
        &self,
        caller: UserId,
        id: ConversationId,
        req: AddConversationMemberRequest,
    ) -> DomainResult<Created<ConversationMember>> {
        let (access, actor) = self.managed_conversation(caller, id).await?;
        let conversation = &access.conversation;
        if roles::membership_is_fixed(conversation.kind) {
            return Err(fixed_membership());
        }
        if conversation.archived {
            return Err(DomainError::archived());
        }
        let role = req.role.unwrap_or(ConversationRole::Member);
        let current = self.ports.conversation_member_role(id, req.user_id).await?;
        if !roles::can_grant_conversation_role(actor, current, role) {
            return Err(DomainError::Forbidden("only owners can add owners"));
        }
        let in_workspace = self.ports.workspace_members_among(conversation.workspace_id, &[req.user_id]).await?;
        if in_workspace.is_empty() {
            return Err(DomainError::field(
                "user_id",
                "not_in_workspace",
                "the user is not a member of this workspace",
            ));
        }
        self.ports.add_conversation_member(id, req.user_id, role, MembershipChange::Added).await
    }

    /// Removes a member (admins), or the caller themselves (same as leaving).
    pub async fn remove_conversation_member(
        &self,
        caller: UserId,
        id: ConversationId,
        user: UserId,
    ) -> DomainResult<()> {
        if caller == user {
            return self.leave_conversation(caller, id).await;
        }
        let (access, actor) = self.managed_conversation(caller, id).await?;
        if roles::membership_is_fixed(access.conversation.kind) {
            return Err(fixed_membership());
        }
        let current = self.ports.conversation_member_role(id, user).await?.ok_or(DomainError::NotFound)?;
        if !roles::can_grant_conversation_role(actor, Some(current), ConversationRole::Viewer) {
            return Err(DomainError::Forbidden("only owners can remove owners"));
        }
        self.ports.remove_conversation_member(id, user, MembershipChange::Removed).await
    }

    /// Leaves the conversation: an explicit member stops being one; either way a
    /// workspace-visible conversation is hidden from them (lists, access, streams) until they
    /// join it again.
    pub async fn leave_conversation(&self, caller: UserId, id: ConversationId) -> DomainResult<()> {
        let (access, _) = self.visible_conversation(caller, id).await?;
        if roles::membership_is_fixed(access.conversation.kind) {
            return Err(fixed_membership());
        }
        match access.explicit_role {
            Some(_) => self.ports.remove_conversation_member(id, caller, MembershipChange::Left).await,
            None => self.ports.leave_implicitly(id, caller).await,
        }
    }

    /// Joins a workspace-visible conversation (a non-guest of its workspace, also after
    /// leaving it): the caller becomes an explicit member. Joining twice changes nothing.
    pub async fn join_conversation(&self, caller: UserId, id: ConversationId) -> DomainResult<Created<Conversation>> {
        let access = self.ports.access(id, caller).await?.ok_or(DomainError::NotFound)?;
        if access.explicit_role.is_none() {
            if !roles::can_join(access.conversation.visibility, access.workspace_role) {
                return Err(DomainError::NotFound);
            }
            if access.conversation.archived {
                return Err(DomainError::archived());
            }
            self.ports.add_conversation_member(id, caller, ConversationRole::Member, MembershipChange::Joined).await?;
        }
        let conversation = self.get_conversation(caller, id).await?;
        Ok(if access.explicit_role.is_some() { Created::Existing(conversation) } else { Created::New(conversation) })
    }

    /// Deletes the conversation for good (its owners), once the caller repeats its id.
    /// Answers still streaming in it are cancelled first, so that nothing writes to it after.
    pub async fn delete_conversation(
        &self,
        caller: UserId,
        id: ConversationId,
        req: DeleteConversationRequest,
    ) -> DomainResult<()> {
        let (_, role) = self.visible_conversation(caller, id).await?;
        if role != ConversationRole::Owner {
            return Err(DomainError::Forbidden("only conversation owners can delete it"));
        }
        if req.confirm.trim() != id.to_string() {
            return Err(DomainError::field("confirm", "mismatch", "repeat the conversation's id to delete it"));
        }
        for answer in self.ports.streaming_answers(Within::Conversation(id)).await? {
            self.ports.cancel_generation(answer).await?;
        }
        self.ports.delete_conversation(id).await
    }

    pub async fn create_invite(
        &self,
        caller: UserId,
        id: ConversationId,
        req: CreateInviteRequest,
    ) -> DomainResult<Invite> {
        let (access, _) = self.managed_conversation(caller, id).await?;
        if roles::membership_is_fixed(access.conversation.kind) {
            return Err(fixed_membership());
        }
        if access.conversation.archived {
            return Err(DomainError::archived());
        }
        let mut check = Check::new();
        let role = req.role.unwrap_or(ConversationRole::Member);
        if role == ConversationRole::Owner {
            check.fail("role", "invalid", "an invite cannot grant ownership");
        }
        if req.max_uses.is_some_and(|n| n < 1) {
            check.fail("max_uses", "invalid", "must be at least 1");
        }
        if req.expires_in_seconds.is_some_and(|s| !(1..=31_536_000).contains(&s)) {
            check.fail("expires_in_seconds", "invalid", "must be between 1 second and 1 year");
        }
        check.finish()?;
        let now = self.ports.now();
        let invite = Invite {
            code: self.ports.new_secret(),
            conversation_id: id,
            role,
            max_uses: req.max_uses,
            uses: 0,
            expires_at: req.expires_in_seconds.map(|s| now + Duration::seconds(s)),
            created_by: caller,
            created_at: now,
        };
        self.ports.create_invite(invite).await
    }

    /// Joins through an invite and returns the conversation.
    pub async fn accept_invite(&self, caller: UserId, code: &str) -> DomainResult<Created<Conversation>> {
        let joined = self.ports.accept_invite(code, caller).await?;
        let (Created::New(id) | Created::Existing(id)) = joined;
        let conversation = self.get_conversation(caller, id).await?;
        Ok(joined.map(|_| conversation))
    }

    pub async fn revoke_invite(&self, caller: UserId, id: ConversationId, code: &str) -> DomainResult<()> {
        self.managed_conversation(caller, id).await?;
        self.ports.revoke_invite(id, code).await
    }
}
