//! Full-text search over every message the caller may see.

use skein_shared::search::SearchHit;
use skein_shared::{ConversationId, MessageId, Page, UserId, WorkspaceId};

use super::{Services, keyset_page};
use crate::cursor::SearchPosition;
use crate::entities::{ConversationAccess, MessageSearch, SearchFilters};
use crate::ports::Ports;
use crate::search;
use crate::validate::Check;
use crate::{DomainError, DomainResult};

/// Longest accepted query, in characters.
pub const SEARCH_QUERY_MAX_CHARS: usize = 256;

/// `GET /api/search`: the query and its filters.
#[derive(Clone, Debug, Default)]
pub struct SearchRequest {
    /// Web-search syntax: words, `"exact phrase"`, `-excluded`, `or`.
    pub q: String,
    pub conversation: Option<ConversationId>,
    pub workspace: Option<WorkspaceId>,
    pub filters: SearchFilters,
    /// Also workspace channels the caller left (they may join them again).
    pub include_hidden: bool,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl<P: Ports> Services<P> {
    /// A page of messages matching the query in the conversations the caller may see now
    /// (history policy applied), best first or newest first.
    pub async fn search(&self, caller: UserId, req: SearchRequest) -> DomainResult<Page<SearchHit>> {
        let mut check = Check::new();
        let q = check.text("q", &req.q, SEARCH_QUERY_MAX_CHARS);
        let tags = self.check_tags(&mut check, &req.filters.tags);
        if let (Some(from), Some(to)) = (req.filters.from, req.filters.to)
            && from >= to
        {
            check.fail("to", "invalid", "must be after from");
        }
        check.finish()?;
        let after = req.cursor.as_deref().map(SearchPosition::decode).transpose()?;
        // The first page's newest possible id: later pages rank the same messages.
        let ceiling = after.map_or_else(MessageId::generate, |position| MessageId(position.ceiling));
        let limit = self.limits.page_size(req.limit);

        let scope = self.search_scope(caller, &req).await?;
        let terms = self.ports.search_terms(&q).await?;
        if terms.is_empty() {
            return Err(DomainError::field(
                "q",
                "no_terms",
                "nothing to search for: the query has only stop words or punctuation",
            ));
        }
        if scope.is_empty() {
            return Ok(Page::new(Vec::new(), None, None));
        }
        // The untrimmed query: a trailing space ends the last word.
        let word_terms = match search::open_last_word(&req.q) {
            Some(word) => self.ports.search_terms(word).await?,
            None => String::new(),
        };
        let search = MessageSearch {
            terms: search::with_prefix(&terms, &word_terms),
            scope,
            filters: SearchFilters { tags, ..req.filters },
            after,
            ceiling,
            ranked: self.limits.search_ranked_max,
            limit: limit + 1,
        };
        let rows = self.ports.search_messages(search).await?;
        let (rows, next) = keyset_page(rows, limit, |found| {
            SearchPosition { rank: found.rank, id: found.record.message.id.0, ceiling: ceiling.0 }.encode()
        });
        let mut hits: Vec<SearchHit> = rows
            .into_iter()
            .map(|found| {
                let message = found.record.message;
                let (snippet, highlights) = search::snippet(&message.content, &found.marked_content);
                SearchHit {
                    conversation_id: message.conversation_id,
                    root_id: message.root_id,
                    message,
                    snippet,
                    highlights,
                }
            })
            .collect();
        self.fill_reactions(caller, hits.iter_mut().map(|hit| &mut hit.message).collect()).await?;
        Ok(Page::new(hits, next, None))
    }

    /// The conversations searched, each with the `seq` at or below which the caller sees
    /// nothing. A conversation, thread or workspace the caller may not see is `NotFound`.
    async fn search_scope(&self, caller: UserId, req: &SearchRequest) -> DomainResult<Vec<(ConversationId, i64)>> {
        let floor = |access: &ConversationAccess| access.search_floor(req.include_hidden);
        let mut only = req.conversation;
        if let Some(root) = req.filters.root {
            let (record, access, _) = self.ports.message_access(root, caller).await?.ok_or(DomainError::NotFound)?;
            let root = &record.message;
            let floor = floor(&access).ok_or(DomainError::NotFound)?;
            if root.parent_id.is_some() || root.seq <= floor {
                return Err(DomainError::NotFound);
            }
            if only.is_some_and(|id| id != root.conversation_id) {
                return Ok(Vec::new());
            }
            only = Some(root.conversation_id);
        }
        if let Some(id) = only {
            let access = self.ports.access(id, caller).await?.ok_or(DomainError::NotFound)?;
            let floor = floor(&access).ok_or(DomainError::NotFound)?;
            if req.workspace.is_some_and(|ws| ws != access.conversation.workspace_id) {
                return Ok(Vec::new());
            }
            return Ok(vec![(id, floor)]);
        }
        if let Some(workspace) = req.workspace {
            self.ports.workspace_role(workspace, caller).await?.ok_or(DomainError::NotFound)?;
        }
        let candidates = self.ports.searchable_conversations(caller, req.workspace, req.include_hidden).await?;
        Ok(candidates.iter().filter_map(|a| Some((a.conversation.id, floor(a)?))).collect())
    }
}
