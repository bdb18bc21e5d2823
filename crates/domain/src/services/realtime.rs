//! Streams, read state, typing and presence: who may follow, mark and signal what.

use skein_shared::conversation::Visibility;
use skein_shared::event::{ConversationUnread, MarkReadRequest, PresenceInfo, StreamTokenResponse, UnreadResponse};
use skein_shared::{ConversationId, MessageId, UserId};
use time::Duration;

use super::Services;
use crate::entities::{FeedScope, Session, TypingIn};
use crate::ports::Ports;
use crate::{DomainError, DomainResult};

/// Users per presence snapshot.
pub const PRESENCE_MAX_USERS: usize = 200;

impl<P: Ports> Services<P> {
    /// A short-lived token that opens streams (and nothing else) for this session.
    pub async fn issue_stream_token(&self, session: &Session, ttl: Duration) -> DomainResult<StreamTokenResponse> {
        let token = self.ports.new_secret();
        let expires_at = self.ports.now() + ttl;
        self.ports.create_stream_token(session.id, self.ports.digest(&token), expires_at).await?;
        Ok(StreamTokenResponse { token, expires_at })
    }

    pub async fn authenticate_stream_token(&self, token: &str) -> DomainResult<Session> {
        self.ports.find_stream_token(&self.ports.digest(token)).await?.ok_or(DomainError::Unauthenticated)
    }

    /// Opens the caller's event stream: every conversation they can see, or `conversation`
    /// only (`NotFound` when they may not see it), resuming after `resume`.
    pub async fn open_feed(
        &self,
        caller: UserId,
        conversation: Option<ConversationId>,
        resume: Option<&str>,
    ) -> DomainResult<P::Feed> {
        let scope = match conversation {
            None => FeedScope::Member,
            Some(id) => {
                let (access, _) = self.visible_conversation(caller, id).await?;
                let conversation = access.conversation;
                let open = conversation.visibility == Visibility::Workspace;
                FeedScope::Conversation { id, workspace: conversation.workspace_id, open }
            }
        };
        self.ports.open_feed(caller, scope, resume).await
    }

    /// Moves the caller's read cursor to the message (forward only; an older message changes
    /// nothing). Returns the conversation's counts after it.
    pub async fn mark_read(
        &self,
        caller: UserId,
        id: ConversationId,
        req: MarkReadRequest,
    ) -> DomainResult<ConversationUnread> {
        let (record, _, _, _) = self.visible_message(caller, req.message_id).await?;
        if record.message.conversation_id != id {
            return Err(DomainError::field("message_id", "not_in_conversation", "not a message of this conversation"));
        }
        if let Some(root) = req.root_id
            && record.message.root_id != root
        {
            return Err(DomainError::field("root_id", "not_in_thread", "the message is not in this thread"));
        }
        if let Some(moved) = self.ports.mark_read(id, caller, req.root_id, record.message.seq).await? {
            return Ok(moved);
        }
        let mut counts = self.ports.unread_counts(caller, Some(id)).await?;
        counts.pop().ok_or(DomainError::NotFound)
    }

    pub async fn unread(&self, caller: UserId) -> DomainResult<UnreadResponse> {
        Ok(UnreadResponse { conversations: self.ports.unread_counts(caller, None).await? })
    }

    /// Starts or stops the caller's typing indicator: they can post here, and `root` is a
    /// thread of the conversation. Workspace-visible conversations' indicators reach the
    /// workspace's members too.
    pub async fn typing(
        &self,
        caller: UserId,
        id: ConversationId,
        root: Option<MessageId>,
        typing: bool,
    ) -> DomainResult<()> {
        let access = self.writable_conversation(caller, id).await?;
        let conversation = &access.conversation;
        let open_to = (conversation.visibility == Visibility::Workspace).then_some(conversation.workspace_id);
        if let Some(root) = root {
            let (record, _, _, _) = self.visible_message(caller, root).await?;
            if record.message.conversation_id != id || record.message.parent_id.is_some() {
                return Err(DomainError::field("root_id", "not_a_thread", "not a thread root of this conversation"));
            }
        }
        self.ports.set_typing(TypingIn { conversation: id, root, open_to }, caller, typing);
        Ok(())
    }

    /// The caller is here (or idle, with `away`).
    pub async fn heartbeat(&self, caller: UserId, away: bool) -> DomainResult<PresenceInfo> {
        self.ports.heartbeat(caller, away).await
    }

    /// The presence of those of `users` who share a workspace with the caller.
    pub async fn presence(&self, caller: UserId, users: &[UserId]) -> DomainResult<Vec<PresenceInfo>> {
        self.check_presence_request(users)?;
        self.ports.presence(caller, users).await
    }

    /// Checks a presence snapshot request.
    fn check_presence_request(&self, users: &[UserId]) -> DomainResult<()> {
        if users.is_empty() || users.len() > PRESENCE_MAX_USERS {
            return Err(DomainError::field(
                "user_ids",
                "count",
                format!("give between 1 and {PRESENCE_MAX_USERS} user ids, comma-separated"),
            ));
        }
        Ok(())
    }
}
