//! Changing messages after they are posted: edits with history, deletes (tombstones),
//! reactions and pins. Who may do what:
//!
//! - edit: the author (an assistant's answer: whoever asked for it, once it has ended);
//!   within `limits.edit_window_secs` of posting when that is set;
//! - delete: the author, or a conversation admin or owner; deleting a thread deletes every
//!   message in it (its root's author or admins); a streaming answer is cancelled first;
//! - react: members, and viewers where the conversation allows it (`viewer_reactions`);
//! - pin: members, or admins only where `pin_policy` is `admins`.
//!
//! Non-members get `NotFound`, viewers `Forbidden` (except reacting where allowed), and an
//! archived conversation refuses every change with `ConversationArchived`.

use std::collections::HashMap;

use skein_shared::conversation::{ConversationRole, PinPolicy};
use skein_shared::message::{MessageVersion, PinnedMessage, Reactor};
use skein_shared::thread::{Message, MessageRole, MessageStatus};
use skein_shared::{ErrorCode, MessageId, Page, UserId};
use time::Duration;

use super::{Services, ensure_can_post, keyset_page};
use crate::cursor::TimeCursor;
use crate::entities::{ConversationAccess, Deletion, MessageRecord, Within};
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};

/// Longest `:shortcode:` reaction, colons included.
pub const SHORTCODE_MAX_CHARS: usize = 64;

impl<P: Ports> Services<P> {
    /// Replaces the message's content; the previous version stays in its history.
    pub async fn edit_message(&self, caller: UserId, id: MessageId, content: String) -> DomainResult<Message> {
        let (record, access, role, _) = self.visible_message(caller, id).await?;
        ensure_can_post(&access, role)?;
        let message = &record.message;
        ensure_standing(message)?;
        let author = match message.role {
            MessageRole::Assistant => self.ports.generation(id).await?.map(|g| g.requested_by),
            _ => message.author_id,
        };
        if author != Some(caller) {
            return Err(DomainError::Forbidden("only its author can edit a message"));
        }
        if message.status == MessageStatus::Streaming {
            return Err(DomainError::rule(ErrorCode::GenerationRunning, "the answer is still being generated"));
        }
        let window = self.limits.edit_window_secs;
        if window > 0 && self.ports.now() - message.created_at > Duration::seconds(window as i64) {
            return Err(DomainError::rule(ErrorCode::EditWindowClosed, "the time for editing this message has passed"));
        }
        let mut check = Check::new();
        check.content("content", &content, self.limits.message_max_chars);
        check.finish()?;
        // Mentions follow the words; an assistant newly mentioned is not asked again.
        let mentions = self.resolve_mentions(&access, &content).await?;
        let mut edited = self.ports.edit_message(id, caller, content, mentions).await?.message;
        self.fill_reactions(caller, vec![&mut edited]).await?;
        Ok(edited)
    }

    /// Earlier versions of a message, newest first; the cursor is a version number.
    pub async fn message_versions(
        &self,
        caller: UserId,
        id: MessageId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<MessageVersion>> {
        self.visible_message(caller, id).await?;
        let before = cursor
            .map(|c| {
                c.parse::<i32>().map_err(|_| DomainError::field("cursor", "invalid", "not a cursor from this list"))
            })
            .transpose()?;
        let limit = self.limits.page_size(limit);
        let rows = self.ports.message_versions(id, before, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |v| v.version.to_string());
        Ok(Page::new(data, next, None))
    }

    /// Deletes a message (its author, or conversation admins): it becomes a tombstone.
    /// Deleting a tombstone again changes nothing.
    pub async fn delete_message(&self, caller: UserId, id: MessageId) -> DomainResult<Message> {
        let (record, access, role, _) = self.visible_message(caller, id).await?;
        self.ensure_may_delete(caller, &record, &access, role)?;
        if record.message.deleted_at.is_some() {
            return Ok(record.message);
        }
        if record.message.status == MessageStatus::Streaming {
            self.ports.cancel_generation(id).await?;
        }
        let deleted = self.ports.delete_messages(Deletion::Message(id), caller, self.purge_at()).await?;
        match deleted.into_iter().next() {
            Some(tombstone) => Ok(tombstone),
            // Someone else deleted it meanwhile.
            None => Ok(self.visible_message(caller, id).await?.0.message),
        }
    }

    /// Deletes a whole thread (its root's author, or conversation admins): every message in
    /// it becomes a tombstone. Returns how many were deleted now.
    pub async fn delete_thread(&self, caller: UserId, root: MessageId) -> DomainResult<usize> {
        let (record, access, role, _) = self.visible_message(caller, root).await?;
        if record.message.root_id != root {
            return Err(DomainError::NotFound);
        }
        self.ensure_may_delete(caller, &record, &access, role)?;
        for answer in self.ports.streaming_answers(Within::Thread(root)).await? {
            self.ports.cancel_generation(answer).await?;
        }
        Ok(self.ports.delete_messages(Deletion::Thread(root), caller, self.purge_at()).await?.len())
    }

    /// Erases the content of deleted messages whose purge time has come.
    pub async fn purge_deleted(&self) -> DomainResult<u64> {
        self.ports.purge_deleted(self.ports.now()).await
    }

    /// Adds or removes the caller's reaction (idempotent). Returns the message as it is then.
    pub async fn set_reaction(&self, caller: UserId, id: MessageId, emoji: &str, on: bool) -> DomainResult<Message> {
        let (record, access, role, _) = self.visible_message(caller, id).await?;
        let may_react =
            roles::can_post(role) || (role == ConversationRole::Viewer && access.conversation.viewer_reactions);
        if !may_react {
            return Err(DomainError::Forbidden("viewers cannot react in this conversation"));
        }
        if access.conversation.archived {
            return Err(DomainError::archived());
        }
        ensure_standing(&record.message)?;
        let emoji = reaction_emoji(emoji)?;
        let max = self.limits.reactions_per_message_max;
        self.ports.set_reaction(&record.message, caller, &emoji, on, max).await?;
        let mut message = record.message;
        self.fill_reactions(caller, vec![&mut message]).await?;
        Ok(message)
    }

    /// Who reacted with `emoji`, oldest first.
    pub async fn reactors(
        &self,
        caller: UserId,
        id: MessageId,
        emoji: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<Reactor>> {
        self.visible_message(caller, id).await?;
        let emoji = reaction_emoji(emoji)?;
        let after = cursor.map(TimeCursor::decode).transpose()?;
        let limit = self.limits.page_size(limit);
        let rows = self.ports.reactors(id, &emoji, after, limit + 1).await?;
        let (data, next) = keyset_page(rows, limit, |r| TimeCursor { at: r.reacted_at, id: r.user_id.0 }.encode());
        Ok(Page::new(data, next, None))
    }

    /// Pins or unpins the message (idempotent). Returns the message as it is then.
    pub async fn set_pinned(&self, caller: UserId, id: MessageId, pinned: bool) -> DomainResult<Message> {
        let (record, access, role, _) = self.visible_message(caller, id).await?;
        ensure_can_post(&access, role)?;
        if access.conversation.pin_policy == PinPolicy::Admins && !roles::can_manage_conversation(role) {
            return Err(DomainError::Forbidden("only conversation admins can pin here"));
        }
        ensure_standing(&record.message)?;
        let mut message = record.message;
        self.ports.set_pinned(&message, caller, pinned).await?;
        message.pinned = pinned;
        self.fill_reactions(caller, vec![&mut message]).await?;
        Ok(message)
    }

    /// The conversation's pinned messages, newest pin first.
    pub async fn pins(
        &self,
        caller: UserId,
        conversation: skein_shared::ConversationId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<PinnedMessage>> {
        let (access, _) = self.visible_conversation(caller, conversation).await?;
        let after = cursor.map(TimeCursor::decode).transpose()?;
        let limit = self.limits.page_size(limit);
        let rows = self.ports.pins(conversation, access.visible_after_seq(), after, limit + 1).await?;
        let (mut pins, next) =
            keyset_page(rows, limit, |p| TimeCursor { at: p.pinned_at, id: p.message.id.0 }.encode());
        self.fill_reactions(caller, pins.iter_mut().map(|p| &mut p.message).collect()).await?;
        Ok(Page::new(pins, next, None))
    }

    /// Fills in the messages' reactions as `viewer` sees them: one query for all of them.
    pub(super) async fn fill_reactions(&self, viewer: UserId, mut messages: Vec<&mut Message>) -> DomainResult<()> {
        let ids: Vec<MessageId> = messages.iter().filter(|m| m.deleted_at.is_none()).map(|m| m.id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        // One message can be listed twice (a tree's root is in its summary and its page).
        let counts: HashMap<MessageId, _> = self.ports.reaction_counts(viewer, &ids).await?.into_iter().collect();
        for message in messages.iter_mut() {
            if let Some(reactions) = counts.get(&message.id) {
                message.reactions = reactions.clone();
            }
        }
        Ok(())
    }

    fn ensure_may_delete(
        &self,
        caller: UserId,
        record: &MessageRecord,
        access: &ConversationAccess,
        role: ConversationRole,
    ) -> DomainResult<()> {
        ensure_can_post(access, role)?;
        if record.message.author_id != Some(caller) && !roles::can_manage_conversation(role) {
            return Err(DomainError::Forbidden("only its author or conversation admins can delete a message"));
        }
        Ok(())
    }

    fn purge_at(&self) -> Option<time::OffsetDateTime> {
        match self.limits.purge_deleted_after_secs {
            0 => None,
            secs => Some(self.ports.now() + Duration::seconds(secs as i64)),
        }
    }
}

fn ensure_standing(message: &Message) -> DomainResult<()> {
    match message.deleted_at {
        Some(_) => Err(DomainError::rule(ErrorCode::MessageDeleted, "the message was deleted")),
        None => Ok(()),
    }
}

/// The reaction as stored: one emoji (in its fully qualified form, so `❤` and `❤️` are one
/// reaction) or a `:shortcode:` of letters, digits, `_`, `+` and `-`.
pub fn reaction_emoji(raw: &str) -> DomainResult<String> {
    if let Some(emoji) = emojis::get(raw) {
        return Ok(emoji.as_str().to_owned());
    }
    let name = raw.strip_prefix(':').and_then(|r| r.strip_suffix(':')).unwrap_or_default();
    let valid = !name.is_empty()
        && raw.chars().count() <= SHORTCODE_MAX_CHARS
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_+-".contains(c));
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(DomainError::field(
            "emoji",
            "invalid",
            format!("one emoji, or a :shortcode: of at most {SHORTCODE_MAX_CHARS} characters (a-z, 0-9, _, +, -)"),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reactions_are_one_emoji_or_a_shortcode() {
        assert_eq!(reaction_emoji("👍").unwrap(), "👍");
        assert_eq!(reaction_emoji("👍🏽").unwrap(), "👍🏽");
        assert_eq!(reaction_emoji("👨‍👩‍👧").unwrap(), "👨‍👩‍👧");
        // The unqualified heart is the same reaction as the fully qualified one.
        assert_eq!(reaction_emoji("\u{2764}").unwrap(), "\u{2764}\u{fe0f}");
        assert_eq!(reaction_emoji(":party_parrot:").unwrap(), ":party_parrot:");
        assert_eq!(reaction_emoji(":+1:").unwrap(), ":+1:");
        for bad in ["", "a", "👍👍", ":", "::", ":Upper:", ":has space:", "👍 ", "<b>", ":a:b:"] {
            assert!(reaction_emoji(bad).is_err(), "{bad:?} should be refused");
        }
        let longest = format!(":{}:", "a".repeat(SHORTCODE_MAX_CHARS - 2));
        assert!(reaction_emoji(&longest).is_ok());
        assert!(reaction_emoji(&format!(":{}:", "a".repeat(SHORTCODE_MAX_CHARS - 1))).is_err());
    }
}
