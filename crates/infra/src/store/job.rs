//! A generation to run: what the runner, the terminal write and the titler need of it.

use skein_domain::cursor::EventCursor;
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};

use skein_domain::context::PromptMessage;

/// A generation to run.
#[derive(Clone, Debug)]
pub struct Job {
    pub message_id: MessageId,
    pub conversation_id: ConversationId,
    pub root_id: MessageId,
    /// The conversation's workspace when it is workspace-visible (its members see deltas).
    pub open_to: Option<WorkspaceId>,
    pub requested_by: UserId,
    pub request: ChatRequest,
    /// Title the thread once this answer completes (if it still has no title).
    pub auto_title: bool,
    /// The last event written with the message (`thread.activity` after `message.created`):
    /// deltas are delivered after it.
    pub created: EventCursor,
}

/// What to ask the model.
#[derive(Clone, Debug)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<PromptMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}
