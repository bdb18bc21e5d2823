//! Typed methods for the endpoints most programs use; each is one line over the generic verbs.

use skein_shared::api_key::{ApiKey, CreateApiKeyRequest, CreatedApiKey};
use skein_shared::assistant::{Assistant, CreateAssistantRequest, GenerateRequest, ReplyWithAssistant};
use skein_shared::auth::{AuthResponse, LoginRequest, RegisterRequest, User};
use skein_shared::conversation::{Conversation, CreateConversationRequest};
use skein_shared::thread::{CreateRootRequest, HistoryParams, Message, ReplyRequest, ThreadTreeResponse, TreeParams};
use skein_shared::workspace::{CreateWorkspaceRequest, Workspace};
use skein_shared::{ApiKeyId, ConversationId, MessageId, Page, WorkspaceId};

use crate::{Client, EventStream, Result};

impl Client {
    /// `POST /api/auth/register`: a new account and its first session.
    pub async fn register(&self, request: &RegisterRequest) -> Result<AuthResponse> {
        self.post("/api/auth/register", request).await
    }

    /// `POST /api/auth/login`.
    pub async fn log_in(&self, request: &LoginRequest) -> Result<AuthResponse> {
        self.post("/api/auth/login", request).await
    }

    /// `GET /api/me`.
    pub async fn current_user(&self) -> Result<User> {
        self.get("/api/me").await
    }

    /// `POST /api/workspaces`: the caller becomes its owner.
    pub async fn create_workspace(&self, name: &str) -> Result<Workspace> {
        self.post("/api/workspaces", &CreateWorkspaceRequest { name: name.to_owned() }).await
    }

    /// `POST /api/workspaces/{id}/assistants` (workspace admins).
    pub async fn create_assistant(
        &self,
        workspace: WorkspaceId,
        request: &CreateAssistantRequest,
    ) -> Result<Assistant> {
        self.post(&format!("/api/workspaces/{workspace}/assistants"), request).await
    }

    /// `POST /api/workspaces/{id}/api-keys` (workspace admins): the secret is in this
    /// response only; a client for the service is `Client::new(base).with_token(secret)`.
    pub async fn create_api_key(&self, workspace: WorkspaceId, request: &CreateApiKeyRequest) -> Result<CreatedApiKey> {
        self.post(&format!("/api/workspaces/{workspace}/api-keys"), request).await
    }

    /// `GET /api/workspaces/{id}/api-keys`: the first page of live keys (never secrets).
    pub async fn list_api_keys(&self, workspace: WorkspaceId) -> Result<Page<ApiKey>> {
        self.get(&format!("/api/workspaces/{workspace}/api-keys")).await
    }

    /// `DELETE /api/workspaces/{id}/api-keys/{key_id}`: refused from now on, on every instance.
    pub async fn revoke_api_key(&self, workspace: WorkspaceId, key: ApiKeyId) -> Result<()> {
        self.delete(&format!("/api/workspaces/{workspace}/api-keys/{key}")).await
    }

    /// `POST /api/conversations`.
    pub async fn create_conversation(&self, request: &CreateConversationRequest) -> Result<Conversation> {
        self.post("/api/conversations", request).await
    }

    /// `POST /api/threads/{conversation_id}/root`: a new thread.
    pub async fn create_thread(&self, conversation: ConversationId, request: &CreateRootRequest) -> Result<Message> {
        self.post(&format!("/api/threads/{conversation}/root"), request).await
    }

    /// `POST /api/messages/{parent}/reply`.
    pub async fn reply(&self, parent: MessageId, request: &ReplyRequest) -> Result<ReplyWithAssistant> {
        self.post(&format!("/api/messages/{parent}/reply"), request).await
    }

    /// `GET /api/threads/{root}/tree`: one page of the thread, depth first.
    pub async fn thread_tree(&self, root: MessageId, query: &TreeParams) -> Result<ThreadTreeResponse> {
        self.get_with(&format!("/api/threads/{root}/tree"), query).await
    }

    /// `GET /api/conversations/{id}/messages`: one page of history, oldest first.
    pub async fn history(&self, conversation: ConversationId, query: &HistoryParams) -> Result<Page<Message>> {
        self.get_with(&format!("/api/conversations/{conversation}/messages"), query).await
    }

    /// `POST /api/messages/{id}/generate`: an assistant answer to `parent` (or a sibling
    /// answer when `parent` is an assistant message), streaming.
    pub async fn generate_answer(&self, parent: MessageId, request: &GenerateRequest) -> Result<Message> {
        self.post(&format!("/api/messages/{parent}/generate"), request).await
    }

    /// `POST /api/messages/{id}/cancel`.
    pub async fn cancel_answer(&self, answer: MessageId) -> Result<Message> {
        self.post(&format!("/api/messages/{answer}/cancel"), &serde_json::Value::Null).await
    }

    /// `GET /api/stream`: every event the caller may see, after `after` (a cursor), else
    /// from the moment this returns. Endless; it reconnects by itself.
    pub async fn events(&self, after: Option<String>) -> Result<EventStream> {
        EventStream::open(self.clone(), "/api/stream".to_owned(), after, false).await
    }

    /// `GET /api/conversations/{id}/stream`: one conversation's events.
    pub async fn conversation_events(
        &self,
        conversation: ConversationId,
        after: Option<String>,
    ) -> Result<EventStream> {
        EventStream::open(self.clone(), format!("/api/conversations/{conversation}/stream"), after, false).await
    }

    /// `GET /api/messages/{id}/stream`: one answer's `message.delta`s from the start, then its
    /// `message.done`, after which the stream ends.
    pub async fn answer_stream(&self, answer: MessageId) -> Result<EventStream> {
        EventStream::open(self.clone(), format!("/api/messages/{answer}/stream"), None, true).await
    }
}
