//! What the domain needs from the outside world. `skein-infra` implements these against
//! PostgreSQL. Each method is atomic: where a rule must hold under concurrency (the last
//! owner, one direct conversation per pair, gapless message order, idempotent sends) the
//! implementation enforces it inside one transaction and reports the domain error.

use std::future::Future;
use std::pin::Pin;

use skein_shared::api_key::ApiKey;
use skein_shared::assistant::{
    Assistant, FeedbackRequest, FeedbackSummary, Generation, MessageChunk, MessageDelta, MessageDone,
};
use skein_shared::auth::User;
use skein_shared::conversation::{ConversationMember, ConversationRole, Invite};
use skein_shared::event::{ConversationUnread, MembershipChange, PresenceInfo};
use skein_shared::limits::{AdminUser, LimitSubject, RateLimitProfile};
use skein_shared::message::{
    Mention, MessageVersion, PinChanged, PinnedMessage, ReactionChanged, ReactionCount, Reactor,
};
use skein_shared::preferences::UpdatePreferencesRequest;
use skein_shared::thread::{Message, ThreadSummary};
use skein_shared::workspace::{Workspace, WorkspaceMember, WorkspaceRole};
use skein_shared::{ApiKeyId, AssistantId, ConversationId, MessageId, RateLimitProfileId, UserId, WorkspaceId};
use time::{Duration, OffsetDateTime};
use ulid::Ulid;

use crate::DomainResult;
use crate::context::BranchMessage;
use crate::cursor::TimeCursor;
use crate::entities::*;

pub trait AccountRepo: Send + Sync {
    /// Counts a login attempt for `email` as a failure before its password is checked (a
    /// success clears it), atomically per email, so parallel guesses cannot all pass the
    /// limit: unless `max` failures since `since` already stand, in which case nothing is
    /// counted and the oldest of them is returned. Older failures are forgotten.
    fn begin_login_attempt(
        &self,
        email: &str,
        since: time::OffsetDateTime,
        max: u32,
    ) -> impl Future<Output = DomainResult<Option<time::OffsetDateTime>>> + Send;
    fn clear_login_failures(&self, email: &str) -> impl Future<Output = DomainResult<()>> + Send;
    /// Deletes what can no longer be used: people's sessions a day past their expiry (idle or
    /// absolute) or revocation, expired stream tokens, login failures from before
    /// `failures_before`, full rate-limit buckets. Returns how many rows went.
    fn sweep_expired(
        &self,
        idle: time::Duration,
        failures_before: time::OffsetDateTime,
    ) -> impl Future<Output = DomainResult<u64>> + Send;
    /// Creates the user; the first user of an instance becomes its admin.
    /// `EmailTaken` when the (normalised) email is in use.
    fn create_user(&self, new: NewUser) -> impl Future<Output = DomainResult<User>> + Send;
    fn any_user_exists(&self) -> impl Future<Output = DomainResult<bool>> + Send;
    fn find_credential(&self, email: &str) -> impl Future<Output = DomainResult<Option<Credential>>> + Send;
    fn find_user_by_email(&self, email: &str) -> impl Future<Output = DomainResult<Option<User>>> + Send;
    fn create_session(&self, new: NewSession) -> impl Future<Output = DomainResult<()>> + Send;
    /// The live session with this token digest (not revoked, not past its absolute expiry,
    /// used within `idle`); marks it used.
    fn find_session(
        &self,
        token_digest: &[u8],
        idle: Duration,
    ) -> impl Future<Output = DomainResult<Option<Session>>> + Send;
    fn revoke_session(&self, id: Ulid) -> impl Future<Output = DomainResult<()>> + Send;
    /// Stores a stream token's digest for the session, valid until `expires_at`.
    fn create_stream_token(
        &self,
        session: Ulid,
        token_digest: Vec<u8>,
        expires_at: time::OffsetDateTime,
    ) -> impl Future<Output = DomainResult<()>> + Send;
    /// Resolves when the session ends (logout, a revoked key) on any instance, or expires:
    /// the streams it opened end with it.
    fn session_ended(
        &self,
        session: Ulid,
        expires_at: OffsetDateTime,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
    /// The session of an unexpired stream token, while that session is live.
    fn find_stream_token(&self, token_digest: &[u8]) -> impl Future<Output = DomainResult<Option<Session>>> + Send;
}

pub trait ApiKeyRepo: Send + Sync {
    /// Creates, in one transaction, the key's service user, its workspace membership (and its
    /// membership of each listed conversation), the session its secret opens (id = the key's,
    /// no idle expiry) and the key.
    fn create_api_key(&self, new: NewApiKey) -> impl Future<Output = DomainResult<ApiKey>> + Send;
    /// The workspace's live keys (not revoked), oldest first, after the key `after`.
    fn list_api_keys(
        &self,
        workspace: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<ApiKey>>> + Send;
    /// Revokes the key and ends its session on every instance; false when no live key of the
    /// workspace has this id.
    fn revoke_api_key(&self, workspace: WorkspaceId, id: ApiKeyId) -> impl Future<Output = DomainResult<bool>> + Send;
}

/// Password hashing and secret tokens.
pub trait Credentials: Send + Sync {
    fn hash_password(&self, password: String) -> impl Future<Output = DomainResult<String>> + Send;
    /// Verifies against `hash`, or against a fixed dummy hash when `None` so that an unknown
    /// email costs as much time as a wrong password.
    fn verify_password(
        &self,
        password: String,
        hash: Option<String>,
    ) -> impl Future<Output = DomainResult<bool>> + Send;
    /// A new unguessable URL-safe secret.
    fn new_secret(&self) -> String;
    /// The digest under which a secret is stored.
    fn digest(&self, secret: &str) -> Vec<u8>;
}

/// The time, as the server's clock says (a test's manual clock drives expiry).
pub trait Clock: Send + Sync {
    fn now(&self) -> time::OffsetDateTime;
}

pub trait WorkspaceRepo: Send + Sync {
    fn create_workspace(
        &self,
        id: WorkspaceId,
        name: String,
        owner: UserId,
    ) -> impl Future<Output = DomainResult<Workspace>> + Send;
    fn workspace_for(
        &self,
        id: WorkspaceId,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Option<Workspace>>> + Send;
    /// The user's workspaces, ordered by id, after the given id.
    fn list_workspaces(
        &self,
        user: UserId,
        after: Option<Ulid>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<Workspace>>> + Send;
    fn workspace_role(
        &self,
        id: WorkspaceId,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Option<WorkspaceRole>>> + Send;
    fn list_workspace_members(
        &self,
        id: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<WorkspaceMember>>> + Send;
    /// Adds the user; `Existing` (unchanged) when they already belong.
    fn add_workspace_member(
        &self,
        id: WorkspaceId,
        user: UserId,
        role: WorkspaceRole,
    ) -> impl Future<Output = DomainResult<Created<WorkspaceMember>>> + Send;
    /// `NotFound` when not a member; `LastOwner` when it would leave no owner.
    fn set_workspace_role(
        &self,
        id: WorkspaceId,
        user: UserId,
        role: WorkspaceRole,
    ) -> impl Future<Output = DomainResult<WorkspaceMember>> + Send;
    /// `NotFound` when not a member; `LastOwner` when it would leave no owner. Also removes
    /// the user from the workspace's conversations.
    fn remove_workspace_member(&self, id: WorkspaceId, user: UserId) -> impl Future<Output = DomainResult<()>> + Send;
    /// The subset of `users` that belong to the workspace.
    fn workspace_members_among(
        &self,
        id: WorkspaceId,
        users: &[UserId],
    ) -> impl Future<Output = DomainResult<Vec<UserId>>> + Send;
}

pub trait ConversationRepo: Send + Sync {
    /// For `direct` with a `direct_key` already taken: `Existing` with that conversation.
    fn create_conversation(
        &self,
        new: NewConversation,
    ) -> impl Future<Output = DomainResult<Created<ConversationRecord>>> + Send;
    /// The conversation and the user's standing, or `None` when the conversation does not
    /// exist or the user is not in its workspace.
    fn access(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Option<ConversationAccess>>> + Send;
    /// Conversations of the workspace the user can see, by last activity (newest first).
    /// The user's conversations in one workspace, or in all of theirs (`None`).
    fn list_conversations(
        &self,
        workspace: Option<WorkspaceId>,
        user: UserId,
        filter: ConversationFilter,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<ConversationAccess>>> + Send;
    fn update_conversation(
        &self,
        id: ConversationId,
        patch: ConversationPatch,
    ) -> impl Future<Output = DomainResult<ConversationRecord>> + Send;
    fn list_conversation_members(
        &self,
        id: ConversationId,
        after: Option<Ulid>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<ConversationMember>>> + Send;
    fn conversation_member_role(
        &self,
        id: ConversationId,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Option<ConversationRole>>> + Send;
    /// Adds the user (joining now, for the history policy); `Existing` when already there.
    /// `change` says how (added by someone, or joined by themselves), for the event; either
    /// ends a departure.
    fn add_conversation_member(
        &self,
        id: ConversationId,
        user: UserId,
        role: ConversationRole,
        change: MembershipChange,
    ) -> impl Future<Output = DomainResult<Created<ConversationMember>>> + Send;
    /// `NotFound` when not a member; `LastOwner` when other members would be left without an owner.
    /// `change` says how (removed by someone, or left), for the event.
    fn remove_conversation_member(
        &self,
        id: ConversationId,
        user: UserId,
        change: MembershipChange,
    ) -> impl Future<Output = DomainResult<()>> + Send;
    /// An implicit member leaves a workspace-visible conversation: `left` is appended and
    /// the conversation is hidden from them until they join.
    fn leave_implicitly(&self, id: ConversationId, user: UserId) -> impl Future<Output = DomainResult<()>> + Send;
    /// Of `ids`, the users who are members of the conversation (explicit, or implicit in a
    /// workspace-visible one) and the assistants of its workspace.
    fn mentionable(
        &self,
        conversation: &ConversationRecord,
        ids: &[Ulid],
    ) -> impl Future<Output = DomainResult<Mentionable>> + Send;
    /// Deletes the conversation and everything in it for good; each member gets a
    /// `membership.changed` (`conversation_deleted`) as their last event from it.
    fn delete_conversation(&self, id: ConversationId) -> impl Future<Output = DomainResult<()>> + Send;
    fn create_invite(&self, invite: Invite) -> impl Future<Output = DomainResult<Invite>> + Send;
    /// Uses the invite: `NotFound` (unknown or revoked), `InviteExpired`, `ConversationArchived`.
    /// Adds the user to the workspace as a guest when they are not in it yet.
    fn accept_invite(
        &self,
        code: &str,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Created<ConversationId>>> + Send;
    /// `NotFound` when there is no such live invite in this conversation.
    fn revoke_invite(&self, id: ConversationId, code: &str) -> impl Future<Output = DomainResult<()>> + Send;
}

/// Changing messages after they are posted. Every change appends its event in the same
/// transaction, under the conversation's lock; each answers `ConversationArchived` when the
/// conversation was archived since the caller's access was read.
pub trait MessageChanges: Send + Sync {
    /// Replaces a standing message's content, keeping the old version, and appends
    /// `message.updated`. `MessageDeleted` when it was deleted meanwhile.
    fn edit_message(
        &self,
        id: MessageId,
        editor: UserId,
        content: String,
        mentions: Vec<Mention>,
    ) -> impl Future<Output = DomainResult<MessageRecord>> + Send;
    /// Earlier versions, newest first, before version `before` if given.
    fn message_versions(
        &self,
        id: MessageId,
        before: Option<i32>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<MessageVersion>>> + Send;
    /// Turns what `target` names into tombstones (the ones still standing): reactions, pin
    /// and edit history go, the content is erased now or, with `purge_at`, then (never shown
    /// meanwhile); one `message.deleted` each, in tree order. Returns the tombstones.
    fn delete_messages(
        &self,
        target: Deletion,
        by: UserId,
        purge_at: Option<OffsetDateTime>,
    ) -> impl Future<Output = DomainResult<Vec<Message>>> + Send;
    /// Erases the content of tombstones whose purge time has come (from the message, its
    /// edit history, its chunks and the events that carried it). Returns how many.
    fn purge_deleted(&self, now: OffsetDateTime) -> impl Future<Output = DomainResult<u64>> + Send;
    /// Assistant answers still streaming in a thread or a conversation.
    fn streaming_answers(&self, within: Within) -> impl Future<Output = DomainResult<Vec<MessageId>>> + Send;
    /// Adds (`on`) or removes the user's reaction; `None` when it was already so. Adding a
    /// new emoji to a message that has `max_emoji` distinct ones is `ReactionLimit`.
    fn set_reaction(
        &self,
        message: &Message,
        user: UserId,
        emoji: &str,
        on: bool,
        max_emoji: usize,
    ) -> impl Future<Output = DomainResult<Option<ReactionChanged>>> + Send;
    /// The reactions on those of `messages` that have any (one query), with `me` for `viewer`.
    fn reaction_counts(
        &self,
        viewer: UserId,
        messages: &[MessageId],
    ) -> impl Future<Output = DomainResult<Vec<(MessageId, Vec<ReactionCount>)>>> + Send;
    /// Who reacted with `emoji`, oldest first, after `after`.
    fn reactors(
        &self,
        message: MessageId,
        emoji: &str,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<Reactor>>> + Send;
    /// Pins or unpins; `None` when it was already so.
    fn set_pinned(
        &self,
        message: &Message,
        by: UserId,
        pinned: bool,
    ) -> impl Future<Output = DomainResult<Option<PinChanged>>> + Send;
    /// The conversation's pinned messages, newest pin first, after `after`.
    fn pins(
        &self,
        conversation: ConversationId,
        visible_after_seq: i64,
        after: Option<TimeCursor>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<PinnedMessage>>> + Send;
}

pub trait MessageRepo: Send + Sync {
    /// Appends the message with the conversation's next sequence number, in commit order.
    /// With a `client_msg_id` that the author already used in the conversation: `Existing`.
    /// `ConversationArchived` when the conversation was archived meanwhile.
    fn insert_message(&self, new: NewMessage) -> impl Future<Output = DomainResult<Created<MessageRecord>>> + Send;
    fn get_message(&self, id: MessageId) -> impl Future<Output = DomainResult<Option<MessageRecord>>> + Send;
    /// The thread's newest message that is neither deleted nor still streaming (where a
    /// conversation that only ever continues the thread goes on); `None` for no such thread.
    fn thread_leaf(&self, root: MessageId) -> impl Future<Output = DomainResult<Option<MessageId>>> + Send;
    /// The message with its conversation, the user's standing there and its thread's AI
    /// settings, in one read; `None` when the message does not exist or the user is not in the
    /// conversation's workspace.
    fn message_access(
        &self,
        id: MessageId,
        user: UserId,
    ) -> impl Future<Output = DomainResult<Option<(MessageRecord, ConversationAccess, ThreadAi)>>> + Send;
    fn thread_summary(&self, root: MessageId) -> impl Future<Output = DomainResult<Option<ThreadSummary>>> + Send;
    /// Nodes of the thread in depth-first order (siblings oldest first): those under
    /// `subtree` (its root first) or the whole thread, strictly after `after` in that order,
    /// hiding messages with `seq <= visible_after_seq`.
    fn tree_page(
        &self,
        root: MessageId,
        subtree: Option<&MessageRecord>,
        after: Option<&MessageRecord>,
        visible_after_seq: i64,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<MessageRecord>>> + Send;
    /// Threads of the conversation by last activity (newest first).
    fn list_threads(
        &self,
        conversation: ConversationId,
        filter: &ThreadFilter,
        after: Option<TimeCursor>,
        visible_after_seq: i64,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<ThreadSummary>>> + Send;
    fn history(
        &self,
        conversation: ConversationId,
        anchor: HistoryAnchor,
        visible_after_seq: i64,
        limit: u32,
    ) -> impl Future<Output = DomainResult<HistoryWindow>> + Send;
}

/// Read cursors and unread counts. Counts are exact: roots posted by others after the
/// conversation cursor; per thread, replies by others after both the conversation's and the
/// thread's cursor. Cursors are sequence numbers, so a reply arriving deep in an earlier
/// branch is as unread as one at the end.
pub trait ReadStateRepo: Send + Sync {
    /// Moves the cursor (the thread's when `thread` is given) forward to `seq`; never back.
    /// When it moved, appends `unread.update` for the user and returns the new counts.
    fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        thread: Option<MessageId>,
        seq: i64,
    ) -> impl Future<Output = DomainResult<Option<ConversationUnread>>> + Send;
    /// Counts for every conversation the user keeps a read cursor of and may see: explicit
    /// members from joining, implicit ones from their first read (or only `only`).
    fn unread_counts(
        &self,
        user: UserId,
        only: Option<ConversationId>,
    ) -> impl Future<Output = DomainResult<Vec<ConversationUnread>>> + Send;
}

/// Assistants of workspaces. Deleted ones are kept (their messages name them) but never found.
pub trait AssistantRepo: Send + Sync {
    fn create_assistant(&self, assistant: Assistant) -> impl Future<Output = DomainResult<Assistant>> + Send;
    /// By id, oldest first, after `after`.
    fn list_assistants(
        &self,
        workspace: WorkspaceId,
        after: Option<Ulid>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<Assistant>>> + Send;
    fn find_assistant(&self, id: AssistantId) -> impl Future<Output = DomainResult<Option<Assistant>>> + Send;
    /// The assistants of every workspace `user` is a member of, with each workspace's name,
    /// oldest first, at most `limit`.
    fn assistants_of_member(
        &self,
        user: UserId,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<(Assistant, String)>>> + Send;
    fn update_assistant(&self, assistant: Assistant) -> impl Future<Output = DomainResult<Assistant>> + Send;
    fn delete_assistant(&self, id: AssistantId) -> impl Future<Output = DomainResult<()>> + Send;
}

/// What a follower of one answer receives: content at a character offset, or the end.
#[derive(Clone, Debug)]
pub enum AnswerPiece {
    Delta(MessageDelta),
    Done(MessageDone),
}

/// One answer's pieces as they come, wherever it runs (or from the database, where it runs
/// elsewhere or has ended). Content may repeat what was sent before (a follower that fell
/// behind starts again from the content so far): offsets tell.
pub trait AnswerFollower: Send {
    /// The next piece; `None` once the end has been given, or when the answer is gone.
    fn next(&mut self) -> Pin<Box<dyn Future<Output = Option<AnswerPiece>> + Send + '_>>;
}

/// Assistant answers: who answers in a thread, what the model is sent, and the generations
/// themselves (which run in the background once started).
pub trait GenerationRepo: Send + Sync {
    /// Follows the answer from its content so far to its end.
    fn follow_answer(&self, message: MessageId) -> Box<dyn AnswerFollower>;
    /// The messages on `path` (root first), with their authors' display names.
    /// The messages of `path` (root first) with `seq` above `visible_after_seq`: what the
    /// requester may see of it.
    fn branch(
        &self,
        path: &[MessageId],
        visible_after_seq: i64,
    ) -> impl Future<Output = DomainResult<Vec<BranchMessage>>> + Send;
    /// Generations the user asked for that are still running, on any instance.
    fn running_generations(&self, user: UserId) -> impl Future<Output = DomainResult<u32>> + Send;
    /// Whether this instance may run another generation.
    fn has_generation_room(&self) -> bool;
    /// Appends the assistant message (with `message.created` and `thread.activity`) and starts
    /// generating it. `GenerationRunning` when an answer to the same parent is still running.
    fn start_generation(&self, new: NewGeneration) -> impl Future<Output = DomainResult<MessageRecord>> + Send;
    /// Stops the generation if it runs (here, or through the database on another instance)
    /// and waits a moment for its terminal state. Nothing when it has ended.
    fn cancel_generation(&self, message: MessageId) -> impl Future<Output = DomainResult<()>> + Send;
    fn generation(&self, message: MessageId) -> impl Future<Output = DomainResult<Option<Generation>>> + Send;
    fn message_chunks(&self, message: MessageId) -> impl Future<Output = DomainResult<Vec<MessageChunk>>> + Send;
    /// A streaming answer's content so far (what has been flushed): while it streams, the
    /// message row's content stays empty and is written whole at the end.
    fn streamed_content(&self, message: MessageId) -> impl Future<Output = DomainResult<String>> + Send;
    /// Sets (or with `None` removes) the user's feedback; returns the new summary.
    fn set_feedback(
        &self,
        message: MessageId,
        user: UserId,
        feedback: Option<FeedbackRequest>,
    ) -> impl Future<Output = DomainResult<FeedbackSummary>> + Send;
    fn feedback(&self, message: MessageId, user: UserId) -> impl Future<Output = DomainResult<FeedbackSummary>> + Send;
    /// Applies the patch and appends `thread.activity` with what changed.
    fn update_thread(
        &self,
        root: MessageId,
        patch: ThreadPatch,
    ) -> impl Future<Output = DomainResult<ThreadSummary>> + Send;
}

/// Live-only signals of the realtime runtime: typing indicators and presence. Never
/// persisted as events; the services decide who may send and see them.
pub trait LiveSignals: Send + Sync {
    /// Starts or stops the user's typing indicator in a conversation (or one of its threads).
    fn set_typing(&self, place: TypingIn, user: UserId, typing: bool);
    /// The user is here (or idle, with `away`); returns their presence now.
    fn heartbeat(&self, user: UserId, away: bool) -> impl Future<Output = DomainResult<PresenceInfo>> + Send;
    /// The presence of those of `users` who share a workspace with `viewer`.
    fn presence(
        &self,
        viewer: UserId,
        users: &[UserId],
    ) -> impl Future<Output = DomainResult<Vec<PresenceInfo>>> + Send;
}

/// Event streams: what a client missed since its cursor (from the log), then live events, as
/// the realtime runtime delivers them.
pub trait EventFeeds: Send + Sync {
    /// One client's stream; what it yields is the runtime's (events serialised once for
    /// every subscriber), which the domain only hands on.
    type Feed: Send + 'static;
    /// Opens a stream for `user` resuming after `resume` (a client's cursor; one that cannot
    /// be resumed from starts with a `resync`). The caller has checked `scope` is theirs.
    fn open_feed(
        &self,
        user: UserId,
        scope: FeedScope,
        resume: Option<&str>,
    ) -> impl Future<Output = DomainResult<Self::Feed>> + Send;
}

/// Each member's own settings for a conversation.
pub trait PreferenceRepo: Send + Sync {
    /// The user's preferences for those of `conversations` where they set any.
    fn preferences(
        &self,
        user: UserId,
        conversations: &[ConversationId],
    ) -> impl Future<Output = DomainResult<Vec<(ConversationId, StoredPreferences)>>> + Send;
    /// Changes the given fields and returns the result. When muting or unmuting an explicit
    /// member, their `unread.update` goes out with the new `muted`.
    fn set_preferences(
        &self,
        user: UserId,
        conversation: ConversationId,
        change: UpdatePreferencesRequest,
    ) -> impl Future<Output = DomainResult<StoredPreferences>> + Send;
}

/// Everything the services need, in one bound.
/// Full-text search over messages (`search_vector`, kept by the store with every write).
pub trait SearchRepo: Send + Sync {
    /// The query in web-search syntax as a `tsquery` in text form, through the configured
    /// language (stemming, stop words, accents folded); empty when nothing searchable is left.
    fn search_terms(&self, query: &str) -> impl Future<Output = DomainResult<String>> + Send;
    /// The conversations of the user's workspaces (or of one) that they may see, or that they
    /// left and could join again (`include_departed`); the caller applies the roles.
    fn searchable_conversations(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        include_departed: bool,
    ) -> impl Future<Output = DomainResult<Vec<ConversationAccess>>> + Send;
    /// One page of hits (never tombstones), in the search's order.
    fn search_messages(&self, search: MessageSearch) -> impl Future<Output = DomainResult<Vec<FoundMessage>>> + Send;
}

/// A piece of a completion asked of a provider directly (nothing stored).
#[derive(Clone, Debug, PartialEq)]
pub enum ProxyPiece {
    Text(String),
    /// The last piece: why it ended and what it used.
    End {
        finish_reason: Option<String>,
        usage: Option<skein_shared::assistant::Usage>,
    },
}

/// The next piece of a proxied completion, or how it failed.
pub type ProxyNext = Option<Result<ProxyPiece, skein_shared::assistant::GenerationError>>;

/// A provider's streamed completion, as it comes.
pub trait ProxyCompletion: Send {
    /// The next piece; `None` after `End` (or an error).
    fn next(&mut self) -> Pin<Box<dyn Future<Output = ProxyNext> + Send + '_>>;
}

/// Asking a provider for a completion without storing anything (the OpenAI-compatible
/// endpoint's plain proxy).
pub trait ChatProxy: Send + Sync {
    /// Proxied completions the user has running on this instance.
    fn running_proxies(&self, user: UserId) -> u32;
    /// Starts the completion; fails as an answer would (unreachable, refused, timed out).
    fn proxy_chat(
        &self,
        provider: &str,
        request: ProxyRequest,
    ) -> impl Future<Output = DomainResult<Result<Box<dyn ProxyCompletion>, skein_shared::assistant::GenerationError>>> + Send;
}

/// What a proxied completion sends the provider.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    /// Who asked: the completion's usage counts toward their (and the workspace's) quota.
    pub user: UserId,
    /// The assistant's workspace; `None` for a provider named directly.
    pub workspace: Option<WorkspaceId>,
    pub model: String,
    pub messages: Vec<crate::context::PromptMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}

/// Rate-limit profiles and the budgets they govern (instance administration).
pub trait RateLimitRepo: Send + Sync {
    /// Counts one request against its bucket, exactly across instances; `None` when no rule
    /// limits the class for this spender.
    fn take_rate(
        &self,
        request: crate::rate::RateRequest,
        now: OffsetDateTime,
    ) -> impl Future<Output = DomainResult<Option<crate::rate::Taken>>> + Send;
    /// The profile that applies to the user (their key's, for a service user) outside any
    /// workspace's, with each rule and its bucket's time.
    fn rate_standing(&self, user: UserId) -> impl Future<Output = DomainResult<Option<RateStanding>>> + Send;
    /// One UTC day's use: the user's (every workspace), the workspace's when
    /// `count_workspace`, and the quota overrides of the profile that applies to the user
    /// there.
    fn usage_today(
        &self,
        user: UserId,
        workspace: Option<WorkspaceId>,
        count_workspace: bool,
        day: time::Date,
    ) -> impl Future<Output = DomainResult<UsageToday>> + Send;
    /// Whether any profile sets a daily quota (known within a second on every instance).
    fn profiles_set_quotas(&self) -> impl Future<Output = DomainResult<bool>> + Send;
    fn list_rate_profiles(&self) -> impl Future<Output = DomainResult<Vec<RateLimitProfile>>> + Send;
    fn rate_profile(
        &self,
        id: RateLimitProfileId,
    ) -> impl Future<Output = DomainResult<Option<RateLimitProfile>>> + Send;
    /// `Rule(Conflict)` when the name is taken.
    fn save_rate_profile(
        &self,
        profile: RateLimitProfile,
    ) -> impl Future<Output = DomainResult<RateLimitProfile>> + Send;
    /// False when there was none (the default cannot be deleted: the caller checks).
    fn delete_rate_profile(&self, id: RateLimitProfileId) -> impl Future<Output = DomainResult<bool>> + Send;
    /// Gives the subject the profile (`None`: takes its own away). `NotFound` when the
    /// subject or the profile does not exist.
    fn assign_rate_profile(
        &self,
        subject: LimitSubject,
        profile: Option<RateLimitProfileId>,
    ) -> impl Future<Output = DomainResult<()>> + Send;
}

/// Accounts as instance admins see them.
pub trait AccountAdmin: Send + Sync {
    /// Accounts by id (ascending), after `after`; `query` matches email or name, case-blind.
    fn list_accounts(
        &self,
        after: Option<UserId>,
        query: Option<String>,
        limit: u32,
    ) -> impl Future<Output = DomainResult<Vec<AdminUser>>> + Send;
    fn account(&self, id: UserId) -> impl Future<Output = DomainResult<Option<AdminUser>>> + Send;
    /// Disabling revokes every session of the account (a service user's is its key) on every
    /// instance at once, so its streams end; enabling lets it sign in again.
    fn set_account_disabled(
        &self,
        id: UserId,
        disabled: bool,
    ) -> impl Future<Output = DomainResult<Option<AdminUser>>> + Send;
}

pub trait Ports:
    AccountRepo
    + AccountAdmin
    + RateLimitRepo
    + ApiKeyRepo
    + ChatProxy
    + Clock
    + Credentials
    + WorkspaceRepo
    + ConversationRepo
    + MessageRepo
    + ReadStateRepo
    + AssistantRepo
    + GenerationRepo
    + LiveSignals
    + EventFeeds
    + MessageChanges
    + PreferenceRepo
    + SearchRepo
    + Clone
    + 'static
{
}
impl<T> Ports for T where
    T: AccountRepo
        + AccountAdmin
        + RateLimitRepo
        + ApiKeyRepo
        + ChatProxy
        + Clock
        + Credentials
        + WorkspaceRepo
        + ConversationRepo
        + MessageRepo
        + ReadStateRepo
        + AssistantRepo
        + GenerationRepo
        + LiveSignals
        + EventFeeds
        + MessageChanges
        + PreferenceRepo
        + SearchRepo
        + Clone
        + 'static
{
}
