use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use skein_domain::DomainError;
use skein_domain::entities::SearchFilters;
use skein_domain::services::SearchRequest;
use skein_shared::search::{SearchHas, SearchHit, SearchSort};
use skein_shared::thread::MessageRole;
use skein_shared::{ConversationId, MessageId, Page, UserId, WorkspaceId};
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::comma_list;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiResult;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(search_messages);
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Web-search syntax: every word must match (stemmed in the configured language, case and
    /// accents ignored; the last word also as a prefix while it is being typed, i.e. when the
    /// query does not end in a space, from 3 characters on and unless it is a stop word), `"exact phrase"`, `-excluded`, `a or b`. A query with
    /// nothing but stop words or punctuation is refused (422 `no_terms`).
    pub q: String,
    /// Only this conversation.
    pub conversation_id: Option<ConversationId>,
    /// Only this workspace's conversations.
    pub workspace_id: Option<WorkspaceId>,
    /// Only this thread (its root's id).
    pub root_id: Option<MessageId>,
    /// Only messages this user wrote.
    pub author_id: Option<UserId>,
    /// Only prompts (`user`), answers (`assistant`) or `system` messages.
    #[param(inline)]
    pub role: Option<MessageRole>,
    /// Created at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<OffsetDateTime>,
    /// Created before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<OffsetDateTime>,
    /// Comma-separated: only in threads carrying every one of these tags.
    pub tags: Option<String>,
    /// Comma-separated, each of `reactions`, `pins`, `attachments`: only messages having all.
    pub has: Option<String>,
    /// `relevance` (default: the newest `limits.search_ranked_max` matches, ranked) or `newest`
    /// (every match, newest first).
    #[serde(default)]
    #[param(inline)]
    pub sort: SearchSort,
    /// Also the workspace channels the caller left (hidden from their lists until they join), as
    /// rejoining would show them: not archived ones, nothing from before with history hidden.
    #[serde(default)]
    pub include_hidden: bool,
    /// `page.next` of the previous page (with the same query and filters).
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// Search messages in every conversation the caller can see now (or in one conversation,
/// workspace or thread), with the history policy applied: what a member may not read is never
/// found. Hits come with a plain-text snippet and the highlighted ranges in it; open one with
/// `GET /api/threads/{root_id}/tree?from={message.id}` or
/// `GET /api/conversations/{conversation_id}/messages?around={message.id}`. Pages are keyset
/// pages: messages posted meanwhile never repeat or shift a hit.
#[utoipa::path(tag = "search", params(SearchParams), responses(
    (status = 200, description = "A page of hits", body = Page<SearchHit>),
    (status = 404, description = "`not_found`: the conversation, workspace or thread is not one the caller can see", body = skein_shared::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`validation_failed`: no searchable words (`q`: `no_terms`), a bad filter or cursor", body = skein_shared::Problem, content_type = "application/problem+json"),
))]
#[get("/search")]
async fn search_messages(
    state: AppState,
    caller: Caller,
    q: web::Query<SearchParams>,
) -> ApiResult<web::Json<Page<SearchHit>>> {
    let q = q.into_inner();
    let has = comma_list(q.has.as_deref())
        .into_iter()
        .map(|raw| {
            serde_json::from_value::<SearchHas>(serde_json::Value::String(raw.to_owned()))
                .map_err(|_| DomainError::field("has", "invalid", "each of reactions, pins, attachments"))
        })
        .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
    let req = SearchRequest {
        q: q.q,
        conversation: q.conversation_id,
        workspace: q.workspace_id,
        filters: SearchFilters {
            root: q.root_id,
            author: q.author_id,
            role: q.role,
            from: q.from,
            to: q.to,
            tags: comma_list(q.tags.as_deref()).into_iter().map(str::to_owned).collect(),
            has: has.into_iter().collect(),
            sort: q.sort,
        },
        include_hidden: q.include_hidden,
        cursor: q.cursor,
        limit: q.limit,
    };
    Ok(web::Json(state.services.search(caller.id(), req).await?))
}
