//! Each member's own settings for a conversation, and listing conversations by them.

use std::collections::HashMap;

use skein_shared::conversation::{Conversation, ConversationKind, ConversationOrder};
use skein_shared::preferences::{MemberPreferences, MuteUntil, NotifyLevel, UpdatePreferencesRequest};
use skein_shared::{ConversationId, Page, UserId, WorkspaceId};

use super::{Services, keyset_page};
use crate::cursor::TimeCursor;
use crate::entities::ConversationFilter;
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult};

/// A page of a list ordered starred first is in one of two parts; its cursor says which.
const STARRED_PART: &str = "s";
const OTHERS_PART: &str = "o";

impl<P: Ports> Services<P> {
    /// Changes the caller's own preferences for a conversation they can see (implicit
    /// members of workspace channels too).
    pub async fn set_preferences(
        &self,
        caller: UserId,
        id: ConversationId,
        req: UpdatePreferencesRequest,
    ) -> DomainResult<MemberPreferences> {
        let (access, _) = self.visible_conversation(caller, id).await?;
        if access.conversation.archived {
            return Err(DomainError::archived());
        }
        let now = self.ports.now();
        let mut check = Check::new();
        if let Some(Some(MuteUntil::At(until))) = req.mute_until
            && until <= now
        {
            check.fail("mute_until", "invalid", "must be ahead; null unmutes");
        }
        if req.notify_level == Some(NotifyLevel::Mentions) && access.conversation.kind == ConversationKind::Direct {
            check.fail("notify_level", "invalid", "a direct conversation notifies of all messages or none");
        }
        check.finish()?;
        Ok(self.ports.set_preferences(caller, id, req).await?.view(now))
    }

    /// The conversation with the caller's preferences.
    pub(super) async fn own_view(&self, caller: UserId, conversation: Conversation) -> DomainResult<Conversation> {
        let mut one = [conversation];
        self.fill_preferences(caller, &mut one).await?;
        let [conversation] = one;
        Ok(conversation)
    }

    /// Sets each conversation's `preferences` to the caller's: one query for the page.
    pub(super) async fn fill_preferences(
        &self,
        caller: UserId,
        conversations: &mut [Conversation],
    ) -> DomainResult<()> {
        let ids: Vec<ConversationId> = conversations.iter().map(|c| c.id).collect();
        let stored: HashMap<_, _> = self.ports.preferences(caller, &ids).await?.into_iter().collect();
        let now = self.ports.now();
        for conversation in conversations {
            conversation.preferences = stored.get(&conversation.id).copied().unwrap_or_default().view(now);
        }
        Ok(())
    }

    /// Conversations the caller can see in a workspace, or in every workspace of theirs
    /// (`None`: one inbox), newest activity first, or their starred ones first
    /// (`order=starred`, unless `filter.starred` already picks a part).
    pub async fn list_conversations(
        &self,
        caller: UserId,
        workspace: Option<WorkspaceId>,
        filter: ConversationFilter,
        order: ConversationOrder,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<Conversation>> {
        if let Some(workspace) = workspace {
            self.ports.workspace_role(workspace, caller).await?.ok_or(DomainError::NotFound)?;
        }
        let limit = self.limits.page_size(limit);
        let starred_first = order == ConversationOrder::Starred && filter.starred.is_none();
        let mut parts: Vec<(&str, Option<bool>)> = match starred_first {
            true => vec![(STARRED_PART, Some(true)), (OTHERS_PART, Some(false))],
            false => vec![("", filter.starred)],
        };
        let mut after = None;
        if let Some(raw) = cursor {
            let bad = || DomainError::field("cursor", "invalid", "not a cursor from this list");
            let (part, position) = match starred_first {
                true => raw.split_once('~').ok_or_else(bad)?,
                false => ("", raw),
            };
            let at = parts.iter().position(|(p, _)| *p == part).ok_or_else(bad)?;
            parts.drain(..at);
            after = (!position.is_empty()).then(|| TimeCursor::decode(position)).transpose()?;
        }

        let mut data: Vec<Conversation> = Vec::new();
        let mut next = None;
        for (part, starred) in &parts {
            let room = limit - data.len() as u32;
            if room == 0 {
                // Full at the end of a part: the next page starts the following one.
                next = Some(format!("{part}~"));
                break;
            }
            let filter = ConversationFilter { starred: *starred, ..filter };
            let rows = self.ports.list_conversations(workspace, caller, filter, after.take(), room + 1).await?;
            // The cursor is the last row read, shown or not, so that the next page starts after it.
            let (rows, more) = keyset_page(rows, room, |access| {
                TimeCursor { at: access.conversation.last_activity_at, id: access.conversation.id.0 }.encode()
            });
            data.extend(rows.into_iter().filter_map(|access| access.role().map(|role| access.conversation.view(role))));
            if let Some(position) = more {
                next = Some(if starred_first { format!("{part}~{position}") } else { position });
                break;
            }
        }
        self.fill_preferences(caller, &mut data).await?;
        Ok(Page::new(data, next, None))
    }
}
