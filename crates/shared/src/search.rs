//! Full-text search over messages (`GET /api/search`).

use serde::{Deserialize, Serialize};

use crate::thread::Message;
use crate::{ConversationId, MessageId};

/// One message that matched a search.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The message as every other endpoint shows it (reactions and mentions included).
    pub message: Message,
    pub conversation_id: ConversationId,
    /// Open the hit in its thread: `GET /api/threads/{root_id}/tree?from={message.id}`, or in
    /// its conversation: `GET /api/conversations/{conversation_id}/messages?around={message.id}`.
    pub root_id: MessageId,
    /// Plain text: the whole content when it is at most 200 characters, else one window of it
    /// from a little before the first match, cut between words, with `…` where text was cut.
    /// Never HTML: render it as text.
    pub snippet: String,
    /// The matched words in `snippet`, in order, as offsets (Unicode scalar values, `end`
    /// exclusive) — in JavaScript, index `Array.from(snippet)`.
    pub highlights: Vec<Highlight>,
}

/// A matched word in a snippet: characters `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Highlight {
    pub start: u32,
    pub end: u32,
}

/// Order of search hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SearchSort {
    /// Best match first (PostgreSQL's cover density rank), newest first among equals.
    #[default]
    Relevance,
    /// Newest message first.
    Newest,
}

/// What a hit must have (`has=reactions,pins`: all of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SearchHas {
    Reactions,
    Pins,
    Attachments,
}
