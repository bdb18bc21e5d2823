use std::collections::HashSet;

use skein_shared::assistant::{GenerateRequest, ReplyWithAssistant};
use skein_shared::thread::{
    CreateRootRequest, Message, MessageRole, ReplyRequest, ThreadSummary, ThreadTreeResponse, TreeNode,
    UpdateThreadRequest, Via,
};
use skein_shared::{ConversationId, MessageId, Page, UserId};

use super::limits::Spend;
use super::mentions::mentioned_assistant;
use super::{Services, ensure_can_post, keyset_page};
use crate::cursor::{TimeCursor, decode_id_cursor};
use crate::entities::{
    ConversationAccess, Created, HistoryAnchor, MessageRecord, NewMessage, NewThread, ThreadAi, ThreadFilter,
    ThreadPatch,
};
use crate::ports::Ports;
use crate::validate::Check;
use crate::{DomainError, DomainResult, roles};
use skein_shared::conversation::ConversationRole;

/// Which page of conversation history to read, by message id.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryQuery {
    pub before: Option<MessageId>,
    pub after: Option<MessageId>,
    pub around: Option<MessageId>,
    pub limit: Option<u32>,
}

/// Which answer a reply asks for.
pub(super) enum Ask {
    /// This one, whatever the reply, the thread and its mentions say.
    This(GenerateRequest),
    /// As the reply's `generate`, the thread's `auto_reply` and its mentions say.
    AsTheThreadSays,
    /// None (the caller may not start answers).
    Nothing,
}

impl<P: Ports> Services<P> {
    /// `may_ask`: whether the caller may start answers (an API key needs the `assistant`
    /// scope); without it a mention of an assistant asks nothing.
    pub async fn create_root(
        &self,
        caller: UserId,
        via: Via,
        may_ask: bool,
        conversation: ConversationId,
        req: CreateRootRequest,
    ) -> DomainResult<Created<Message>> {
        let access = self.writable_conversation(caller, conversation).await?;
        let mut check = Check::new();
        check.content("content", &req.content, self.limits.message_max_chars);
        let title = check.optional_text("title", req.title.as_deref(), self.limits.title_max_chars);
        let tags = self.check_tags(&mut check, &req.tags);
        let mut settings = req.settings.unwrap_or_default();
        self.check_settings(&mut check, access.conversation.workspace_id, &mut settings).await?;
        let client_msg_id = self.check_client_msg_id(&mut check, req.client_msg_id);
        check.finish()?;
        self.check_quota(caller, Some(access.conversation.workspace_id), Spend::Message).await?;
        let mentions = self.resolve_mentions(&access, &req.content).await?;
        let answerer = match mentioned_assistant(&mentions).filter(|_| may_ask) {
            Some(assistant) => {
                let ai = ThreadAi { settings: settings.clone(), default_assistant: None, title: title.clone() };
                let asked = GenerateRequest { assistant_id: Some(assistant), ..GenerateRequest::default() };
                Some(self.answerer(caller, ai, &access, &asked).await?)
            }
            None => None,
        };
        let new = NewMessage {
            id: MessageId::generate(),
            conversation_id: conversation,
            parent: None,
            author_id: caller,
            role: MessageRole::User,
            content: req.content,
            mentions,
            client_msg_id,
            thread: Some(NewThread { title, tags, settings }),
            via,
        };
        let stored = self.ports.insert_message(new).await?;
        if let (Created::New(record), Some(answerer)) = (&stored, answerer) {
            self.start_answer(answerer, record, via).await?;
        }
        Ok(stored.map(|r| r.message))
    }

    /// Stores the reply; with `generate` (or the thread's `auto_reply`) also starts the
    /// assistant's answer to it. Who answers is settled before anything is stored, so a
    /// refused answer stores nothing. A retried `client_msg_id` starts nothing new.
    /// `may_ask` as for [`Self::create_root`]: without it neither `generate`, `auto_reply` nor
    /// a mention starts an answer (`generate` is refused before this, by scope).
    pub async fn reply(
        &self,
        caller: UserId,
        via: Via,
        may_ask: bool,
        parent_id: MessageId,
        req: ReplyRequest,
    ) -> DomainResult<Created<ReplyWithAssistant>> {
        let ask = match may_ask {
            true => Ask::AsTheThreadSays,
            false => Ask::Nothing,
        };
        self.post_reply(caller, via, parent_id, req, ask).await
    }

    /// [`Self::reply`], asking for an answer as `ask` says.
    pub(super) async fn post_reply(
        &self,
        caller: UserId,
        via: Via,
        parent_id: MessageId,
        req: ReplyRequest,
        ask: Ask,
    ) -> DomainResult<Created<ReplyWithAssistant>> {
        let (parent, access, role, ai) = self.visible_message(caller, parent_id).await?;
        ensure_can_post(&access, role)?;
        let conversation = parent.message.conversation_id;
        let mut check = Check::new();
        check.content("content", &req.content, self.limits.message_max_chars);
        let client_msg_id = self.check_client_msg_id(&mut check, req.client_msg_id);
        self.check_depth(&mut check, &parent);
        check.finish()?;
        self.check_quota(caller, Some(access.conversation.workspace_id), Spend::Message).await?;
        let mentions = self.resolve_mentions(&access, &req.content).await?;
        // Mentioning an assistant asks it, as `generate` asks the thread's.
        let mentioned = GenerateRequest { assistant_id: mentioned_assistant(&mentions), ..GenerateRequest::default() };
        let asks = req.generate || ai.settings.auto_reply || mentioned.assistant_id.is_some();
        let asked = match ask {
            Ask::This(request) => Some(request),
            Ask::AsTheThreadSays => asks.then_some(mentioned),
            Ask::Nothing => None,
        };
        let answerer = match asked {
            Some(asked) => Some(self.answerer(caller, ai, &access, &asked).await?),
            None => None,
        };
        let new = NewMessage {
            id: MessageId::generate(),
            conversation_id: conversation,
            parent: Some(parent),
            author_id: caller,
            role: MessageRole::User,
            content: req.content,
            mentions,
            client_msg_id,
            thread: None,
            via,
        };
        let stored = self.ports.insert_message(new).await?;
        let Created::New(record) = stored else {
            return Ok(stored.map(|r| ReplyWithAssistant { message: r.message, assistant_message: None }));
        };
        let assistant_message = match answerer {
            Some(answerer) => Some(self.start_answer(answerer, &record, via).await?),
            None => None,
        };
        Ok(Created::New(ReplyWithAssistant { message: record.message, assistant_message }))
    }

    /// Edits a thread's title, tags and AI settings: its root's author or conversation admins.
    pub async fn update_thread(
        &self,
        caller: UserId,
        root: MessageId,
        req: UpdateThreadRequest,
    ) -> DomainResult<ThreadSummary> {
        let (record, access, role, _) = self.visible_message(caller, root).await?;
        if record.message.root_id != root {
            return Err(DomainError::NotFound);
        }
        ensure_can_post(&access, role)?;
        if record.message.author_id != Some(caller) && !roles::can_manage_conversation(role) {
            return Err(DomainError::Forbidden("only the thread's author or conversation admins can edit it"));
        }
        let mut check = Check::new();
        let title = req.title.map(|t| check.optional_text("title", Some(&t), self.limits.title_max_chars));
        let tags = req.tags.map(|tags| self.check_tags(&mut check, &tags));
        let settings = match req.settings {
            Some(mut settings) => {
                self.check_settings(&mut check, access.conversation.workspace_id, &mut settings).await?;
                Some(settings)
            }
            None => None,
        };
        check.finish()?;
        let patch = ThreadPatch { title, tags, settings };
        if patch.title.is_none() && patch.tags.is_none() && patch.settings.is_none() {
            return self.ports.thread_summary(root).await?.ok_or(DomainError::NotFound);
        }
        self.ports.update_thread(root, patch).await
    }

    /// One page of a thread in depth-first order; with `from`, only that message's subtree.
    pub async fn thread_tree(
        &self,
        caller: UserId,
        root: MessageId,
        from: Option<MessageId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<ThreadTreeResponse> {
        let (root_record, access, _, _) = self.visible_message(caller, root).await?;
        if root_record.message.root_id != root {
            return Err(DomainError::NotFound);
        }
        let visible_after = access.visible_after_seq();
        let thread = self.ports.thread_summary(root).await?.ok_or(DomainError::NotFound)?;
        let in_thread = |m: &MessageRecord| m.message.root_id == root;

        let subtree = match from {
            Some(id) => {
                let top = self.ports.get_message(id).await?;
                Some(top.filter(|m| in_thread(m) && m.message.seq > visible_after).ok_or(DomainError::NotFound)?)
            }
            None => None,
        };
        let after = match cursor {
            Some(raw) => {
                let bad = || DomainError::field("cursor", "invalid", "not a cursor from this thread");
                let id = MessageId(decode_id_cursor(raw)?);
                Some(self.ports.get_message(id).await?.filter(in_thread).ok_or_else(bad)?)
            }
            None => None,
        };
        let limit = self.limits.tree_page_size(limit);
        let rows = self.ports.tree_page(root, subtree.as_ref(), after.as_ref(), visible_after, limit + 1).await?;
        let (rows, next) = keyset_page(rows, limit, |n| n.message.id.to_string());
        let (mut rows, mut thread) = (rows, thread);
        let messages = rows.iter_mut().map(|r| &mut r.message).chain(std::iter::once(&mut thread.root));
        self.fill_reactions(caller, messages.collect()).await?;
        Ok(ThreadTreeResponse::new(thread, Page::new(tree_nodes(rows), next, None)))
    }

    /// Threads of a conversation by last activity, newest first, optionally only those with
    /// every tag of `filter.tags`, rooted by `filter.author` or joined by `filter.participant`.
    pub async fn list_threads(
        &self,
        caller: UserId,
        conversation: ConversationId,
        filter: ThreadFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> DomainResult<Page<ThreadSummary>> {
        let (access, _) = self.visible_conversation(caller, conversation).await?;
        let limit = self.limits.page_size(limit);
        let after = cursor.map(TimeCursor::decode).transpose()?;
        let mut check = Check::new();
        let filter = ThreadFilter { tags: self.check_tags(&mut check, &filter.tags), ..filter };
        check.finish()?;
        let rows = self.ports.list_threads(conversation, &filter, after, access.visible_after_seq(), limit + 1).await?;
        let (mut data, next) =
            keyset_page(rows, limit, |t| TimeCursor { at: t.last_activity_at, id: t.root_id.0 }.encode());
        self.fill_reactions(caller, data.iter_mut().map(|t| &mut t.root).collect()).await?;
        Ok(Page::new(data, next, None))
    }

    /// A page of the conversation's messages in time order. `page.prev` is the id to pass as
    /// `before` for older messages, `page.next` the id to pass as `after` for newer ones.
    pub async fn history(
        &self,
        caller: UserId,
        conversation: ConversationId,
        query: HistoryQuery,
    ) -> DomainResult<Page<Message>> {
        let (access, _) = self.visible_conversation(caller, conversation).await?;
        let visible_after = access.visible_after_seq();
        let anchors = [("before", query.before), ("after", query.after), ("around", query.around)];
        let given: Vec<_> = anchors.iter().filter(|(_, id)| id.is_some()).collect();
        if given.len() > 1 {
            return Err(DomainError::field("before", "invalid", "give at most one of before, after and around"));
        }
        let anchor = match given.first() {
            None => HistoryAnchor::Latest,
            Some((name, Some(id))) => {
                let unknown = || DomainError::field(name, "unknown", "no such message in this conversation");
                let record = self.ports.get_message(*id).await?.ok_or_else(unknown)?;
                if record.message.conversation_id != conversation || record.message.seq <= visible_after {
                    return Err(unknown());
                }
                let seq = record.message.seq;
                match *name {
                    "before" => HistoryAnchor::Before(seq),
                    "after" => HistoryAnchor::After(seq),
                    _ => HistoryAnchor::Around(seq),
                }
            }
            Some((_, None)) => HistoryAnchor::Latest,
        };
        let limit = self.limits.page_size(query.limit);
        let window = self.ports.history(conversation, anchor, visible_after, limit).await?;
        let prev = window.more_before.then(|| window.messages.first().map(|m| m.id.to_string())).flatten();
        let next = window.more_after.then(|| window.messages.last().map(|m| m.id.to_string())).flatten();
        let mut messages = window.messages;
        self.fill_reactions(caller, messages.iter_mut().collect()).await?;
        Ok(Page::new(messages, next, prev))
    }

    /// The message with its ancestry, the caller's access and role, and its thread's AI
    /// settings, if the caller may see it (membership and history policy).
    pub(super) async fn visible_message(
        &self,
        caller: UserId,
        id: MessageId,
    ) -> DomainResult<(MessageRecord, ConversationAccess, ConversationRole, ThreadAi)> {
        let (record, access, thread) = self.ports.message_access(id, caller).await?.ok_or(DomainError::NotFound)?;
        let role = access.role().ok_or(DomainError::NotFound)?;
        if record.message.seq <= access.visible_after_seq() {
            return Err(DomainError::NotFound);
        }
        Ok((record, access, role, thread))
    }

    /// Trimmed, deduplicated tags within the limits.
    pub(super) fn check_tags(&self, check: &mut Check, raw: &[String]) -> Vec<String> {
        if raw.len() > self.limits.tags_max {
            check.fail("tags", "too_long", format!("at most {} tags", self.limits.tags_max));
        }
        let mut tags = Vec::with_capacity(raw.len());
        for (i, tag) in raw.iter().enumerate() {
            let tag = check.text(&format!("tags[{i}]"), tag, self.limits.tag_max_chars);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags
    }

    fn check_client_msg_id(&self, check: &mut Check, raw: Option<String>) -> Option<String> {
        let id = raw?;
        if id.is_empty() {
            check.fail("client_msg_id", "required", "must not be empty when given");
        }
        check.max_chars("client_msg_id", &id, self.limits.client_msg_id_max_chars);
        Some(id)
    }
}

/// Nodes of one page in depth-first order. Ancestry is spelled out only where the parent is
/// not earlier in the page: elsewhere it follows from the parent's.
fn tree_nodes(rows: Vec<MessageRecord>) -> Vec<TreeNode> {
    let mut in_page = HashSet::with_capacity(rows.len());
    rows.into_iter()
        .map(|record| {
            let parent_in_page = record.message.parent_id.is_some_and(|p| in_page.contains(&p));
            in_page.insert(record.message.id);
            let ancestor_ids = (!parent_in_page).then(|| record.ancestors().to_vec());
            TreeNode { message: record.message, ancestor_ids }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use skein_shared::thread::{Message, MessageRole, MessageStatus};
    use skein_shared::{ConversationId, MessageId};
    use time::OffsetDateTime;

    use super::*;

    fn record(path: &[MessageId]) -> MessageRecord {
        let id = *path.last().unwrap_or(&MessageId::generate());
        MessageRecord {
            path: path.to_vec(),
            message: Message {
                id,
                conversation_id: ConversationId::generate(),
                root_id: path[0],
                parent_id: path.len().checked_sub(2).map(|i| path[i]),
                depth: path.len() as i32 - 1,
                seq: 1,
                author_id: None,
                author_kind: Default::default(),
                via: Default::default(),
                role: MessageRole::User,
                content: String::new(),
                status: MessageStatus::Complete,
                client_msg_id: None,
                created_at: OffsetDateTime::UNIX_EPOCH,
                edited_at: None,
                edit_count: 0,
                deleted_at: None,
                deleted_by: None,
                pinned: false,
                reactions: Vec::new(),
                mentions: Vec::new(),
            },
        }
    }

    #[test]
    fn ancestry_is_spelled_out_only_where_the_parent_is_not_in_the_page() {
        let [r, a, b, c, d] = [(); 5].map(|_| MessageId::generate());
        // A page starting at a (under r): a, a/b, a/b/c, then d under r.
        let page = vec![record(&[r, a]), record(&[r, a, b]), record(&[r, a, b, c]), record(&[r, d])];
        let nodes = tree_nodes(page);
        let ancestry: Vec<Option<Vec<MessageId>>> = nodes.into_iter().map(|n| n.ancestor_ids).collect();
        assert_eq!(ancestry, vec![Some(vec![r]), None, None, Some(vec![r])]);
    }
}
