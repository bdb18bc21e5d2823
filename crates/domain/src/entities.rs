//! What the store hands back beyond the wire types: records with the internal fields the
//! rules need (password hashes, membership details, ancestry paths).

use skein_shared::auth::User;
use skein_shared::conversation::{Conversation, ConversationKind, ConversationRole, Invite, PinPolicy, Visibility};
use skein_shared::message::Mention;
use skein_shared::preferences::{MemberPreferences, MuteUntil, NotifyLevel};
use skein_shared::search::{SearchHas, SearchSort};
use skein_shared::thread::{Message, MessageRole};
use skein_shared::workspace::WorkspaceRole;
use skein_shared::{ConversationId, MessageId, UserId, WorkspaceId};
use time::OffsetDateTime;
use ulid::Ulid;

use crate::roles;

/// A user with the password hash, for login only.
#[derive(Clone, Debug)]
pub struct Credential {
    pub user: User,
    pub password_hash: String,
    /// Disabled by an instance admin: the right password still does not sign in.
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewSession {
    pub id: Ulid,
    pub user_id: UserId,
    pub token_digest: Vec<u8>,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

/// A live session and its user.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: Ulid,
    pub user: User,
    pub csrf_token: String,
    /// Set when the session is an API key's (its id is the key's): what the key may do.
    pub api_key: Option<ApiKeyGrant>,
    /// When it ends at the latest (a key's expiry, a session's absolute lifetime): the
    /// streams it opened end then too.
    pub expires_at: OffsetDateTime,
}

/// The scopes of the API key a request authenticated with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyGrant {
    pub id: skein_shared::ApiKeyId,
    pub scopes: Vec<skein_shared::api_key::ApiScope>,
}

impl ApiKeyGrant {
    /// Whether the key may do what `scope` covers (`admin` covers everything).
    pub fn allows(&self, scope: skein_shared::api_key::ApiScope) -> bool {
        use skein_shared::api_key::ApiScope;
        self.scopes.contains(&scope) || self.scopes.contains(&ApiScope::Admin)
    }
}

/// An API key to store, with the service user it acts as.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: skein_shared::ApiKeyId,
    pub workspace_id: skein_shared::WorkspaceId,
    pub name: String,
    pub scopes: Vec<skein_shared::api_key::ApiScope>,
    pub conversation_ids: Option<Vec<ConversationId>>,
    /// The service user to create.
    pub service_user: UserId,
    /// Its role in the workspace: `admin` for admin keys, `guest` for keys limited to a
    /// list of conversations (guests see only what they are members of), else `member`.
    pub workspace_role: skein_shared::workspace::WorkspaceRole,
    pub prefix: String,
    pub token_digest: Vec<u8>,
    pub created_by: UserId,
    pub expires_at: Option<OffsetDateTime>,
}

/// A conversation as stored, without any caller's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationRecord {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub history_visible_to_new_members: bool,
    pub archived: bool,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub last_activity_at: OffsetDateTime,
    pub last_seq: i64,
    pub default_assistant_id: Option<skein_shared::AssistantId>,
    pub pin_policy: PinPolicy,
    pub viewer_reactions: bool,
}

impl ConversationRecord {
    pub fn view(self, my_role: ConversationRole) -> Conversation {
        Conversation {
            id: self.id,
            workspace_id: self.workspace_id,
            kind: self.kind,
            title: self.title,
            description: self.description,
            visibility: self.visibility,
            history_visible_to_new_members: self.history_visible_to_new_members,
            archived: self.archived,
            created_by: self.created_by,
            created_at: self.created_at,
            last_activity_at: self.last_activity_at,
            last_seq: self.last_seq,
            default_assistant_id: self.default_assistant_id,
            pin_policy: self.pin_policy,
            viewer_reactions: self.viewer_reactions,
            my_role,
            preferences: Default::default(),
        }
    }
}

/// A conversation together with one user's standing in it and in its workspace.
#[derive(Clone, Debug)]
pub struct ConversationAccess {
    pub conversation: ConversationRecord,
    /// The user's row in the conversation's member list, if any.
    pub explicit_role: Option<ConversationRole>,
    /// The conversation's `last_seq` when the user joined (explicit members only).
    pub joined_seq: Option<i64>,
    pub workspace_role: WorkspaceRole,
    /// They left (or were removed from) the conversation and have not joined again.
    pub departed: bool,
}

impl ConversationAccess {
    /// The role the user acts with, or `None` when they may not see the conversation.
    pub fn role(&self) -> Option<ConversationRole> {
        roles::effective_conversation_role(
            self.conversation.visibility,
            self.explicit_role,
            self.workspace_role,
            self.departed,
        )
    }

    /// The role the user would act with had they not left.
    pub fn role_if_rejoined(&self) -> Option<ConversationRole> {
        roles::effective_conversation_role(self.conversation.visibility, self.explicit_role, self.workspace_role, false)
    }

    /// What search may look at, as the `seq` at or below which nothing is found, or `None`:
    /// what the user sees now, or with `include_hidden` what rejoining a channel they left would
    /// show them (only a channel they can rejoin: not archived; with history hidden from new
    /// members, nothing from before rejoining, which is nothing yet).
    pub fn search_floor(&self, include_hidden: bool) -> Option<i64> {
        if self.role().is_some() {
            return Some(self.visible_after_seq());
        }
        let conversation = &self.conversation;
        let rejoinable = include_hidden && !conversation.archived && self.role_if_rejoined().is_some();
        rejoinable.then_some(if conversation.history_visible_to_new_members { 0 } else { conversation.last_seq })
    }

    /// Messages with `seq` at or below this are hidden from the user (history policy).
    pub fn visible_after_seq(&self) -> i64 {
        match (self.conversation.history_visible_to_new_members, self.joined_seq) {
            (false, Some(joined)) => joined,
            _ => 0,
        }
    }
}

/// A conversation to create with its initial members (the creator among them).
#[derive(Clone, Debug)]
pub struct NewConversation {
    pub record: ConversationRecord,
    pub members: Vec<(UserId, ConversationRole)>,
    /// For `direct`: a key unique to the pair, so a pair has one direct conversation.
    pub direct_key: Option<String>,
}

/// Changes to a conversation's settings; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct ConversationPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub visibility: Option<Visibility>,
    pub history_visible_to_new_members: Option<bool>,
    pub kind: Option<ConversationKind>,
    pub archived: Option<bool>,
    pub default_assistant_id: Option<Option<skein_shared::AssistantId>>,
    pub pin_policy: Option<PinPolicy>,
    pub viewer_reactions: Option<bool>,
}

impl ConversationPatch {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.visibility.is_none()
            && self.history_visible_to_new_members.is_none()
            && self.kind.is_none()
            && self.archived.is_none()
            && self.default_assistant_id.is_none()
            && self.pin_policy.is_none()
            && self.viewer_reactions.is_none()
    }
}

/// Whether an insert made something new or found what an earlier request made.
#[derive(Clone, Debug)]
pub enum Created<T> {
    New(T),
    Existing(T),
}

impl<T> Created<T> {
    /// The value, new or not.
    pub fn into_inner(self) -> T {
        match self {
            Self::New(v) | Self::Existing(v) => v,
        }
    }

    /// The same outcome with the value transformed.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Self::New(v) => Created::New(f(v)),
            Self::Existing(v) => Created::Existing(f(v)),
        }
    }
}

impl<T, E> Created<Result<T, E>> {
    pub fn transpose(self) -> Result<Created<T>, E> {
        match self {
            Self::New(v) => v.map(Created::New),
            Self::Existing(v) => v.map(Created::Existing),
        }
    }
}

/// A message with its ancestry: ids from the root down to the message itself.
#[derive(Clone, Debug)]
pub struct MessageRecord {
    pub message: Message,
    pub path: Vec<MessageId>,
}

impl MessageRecord {
    pub fn ancestors(&self) -> &[MessageId] {
        self.path.split_last().map_or(&[], |(_, rest)| rest)
    }
}

/// Thread metadata given when a root is created.
#[derive(Clone, Debug, Default)]
pub struct NewThread {
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub settings: skein_shared::assistant::ThreadSettings,
}

#[derive(Clone, Debug)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// `None` for a root.
    pub parent: Option<MessageRecord>,
    pub author_id: UserId,
    pub role: MessageRole,
    pub content: String,
    /// Resolved from `content`.
    pub mentions: Vec<Mention>,
    pub client_msg_id: Option<String>,
    /// Present for a root.
    pub thread: Option<NewThread>,
    /// How it came in; with an API key its author is a service.
    pub via: skein_shared::thread::Via,
}

/// Who of a list of ids can be mentioned in a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mentionable {
    pub users: Vec<UserId>,
    pub assistants: Vec<skein_shared::AssistantId>,
}

/// Where a page of conversation history is anchored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryAnchor {
    Latest,
    Before(i64),
    After(i64),
    Around(i64),
}

/// One page of history in time order, with whether more exists on either side.
#[derive(Clone, Debug, Default)]
pub struct HistoryWindow {
    pub messages: Vec<Message>,
    pub more_before: bool,
    pub more_after: bool,
}

/// An invite as stored, with whether it was revoked.
#[derive(Clone, Debug)]
pub struct InviteRecord {
    pub invite: Invite,
    pub revoked: bool,
}

impl InviteRecord {
    /// An invite can be used while it is not revoked, not expired and has uses left.
    pub fn usable_at(&self, now: OffsetDateTime) -> bool {
        let inv = &self.invite;
        !self.revoked && inv.expires_at.is_none_or(|at| at > now) && inv.max_uses.is_none_or(|max| inv.uses < max)
    }
}

/// What decides who answers in a thread: its settings and its conversation's default
/// assistant.
#[derive(Clone, Debug, Default)]
pub struct ThreadAi {
    pub settings: skein_shared::assistant::ThreadSettings,
    pub default_assistant: Option<skein_shared::AssistantId>,
    pub title: Option<String>,
}

/// An assistant answer to start: its message (a child of `parent`, `status: streaming`, no
/// author) and what to ask the model.
#[derive(Clone, Debug)]
pub struct NewGeneration {
    pub id: MessageId,
    pub parent: MessageRecord,
    /// The conversation's workspace when it is workspace-visible (its members see deltas).
    pub open_to: Option<WorkspaceId>,
    pub assistant_id: Option<skein_shared::AssistantId>,
    pub provider: String,
    pub model: String,
    pub requested_by: UserId,
    /// How the answer was asked for.
    pub via: skein_shared::thread::Via,
    pub prompt: Vec<crate::context::PromptMessage>,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    /// Give the thread a generated title once this answer completes (if it still has none).
    pub auto_title: bool,
}

/// `PATCH /api/threads/{root_id}`, validated. `title: Some(None)` removes it.
#[derive(Clone, Debug, Default)]
pub struct ThreadPatch {
    pub title: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub settings: Option<skein_shared::assistant::ThreadSettings>,
}

/// What a delete removes: one message, or a whole thread (its root and every reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    Message(MessageId),
    Thread(MessageId),
}

/// Which of a workspace's conversations a user lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// Archived ones only, or active ones only.
    pub archived: bool,
    /// Only those the user starred (`true`) or did not (`false`).
    pub starred: Option<bool>,
    /// Only those the user has muted now (`true`) or has not (`false`).
    pub muted: Option<bool>,
    /// Only those with messages the user has not read (as unread counts count them).
    pub unread: bool,
}

/// Which of a conversation's threads to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    /// Threads carrying every one of these tags.
    pub tags: Vec<String>,
    /// Threads whose root this user wrote.
    pub author: Option<UserId>,
    /// Threads this user took part in (wrote the root or a reply).
    pub participant: Option<UserId>,
}

/// What a search keeps of the hits, and their order: as asked, and as the store runs it.
#[derive(Clone, Debug, Default)]
pub struct SearchFilters {
    /// Only this thread (a root's id).
    pub root: Option<MessageId>,
    pub author: Option<UserId>,
    pub role: Option<MessageRole>,
    /// Created at or after.
    pub from: Option<OffsetDateTime>,
    /// Created before.
    pub to: Option<OffsetDateTime>,
    /// Hits in threads carrying every one of these tags.
    pub tags: Vec<String>,
    pub has: Vec<SearchHas>,
    pub sort: SearchSort,
}

/// A full-text search as the store runs it: every conversation in `scope` is one the caller
/// may see, with the `seq` at or below which they see nothing (the history policy).
#[derive(Clone, Debug)]
pub struct MessageSearch {
    /// A PostgreSQL `tsquery` in its text form, as `SearchRepo::search_terms` gave it.
    pub terms: String,
    pub scope: Vec<(ConversationId, i64)>,
    pub filters: SearchFilters,
    /// Only hits after this position in `filters.sort` order.
    pub after: Option<crate::cursor::SearchPosition>,
    /// By relevance: only the `ranked` newest matches with an id at or below `ceiling` are
    /// ranked (`Limits::search_ranked_max`).
    pub ceiling: MessageId,
    pub ranked: u32,
    pub limit: u32,
}

/// A message that matched, with its rank and its content with every matched word marked
/// (`search::HIGHLIGHT_START`/`HIGHLIGHT_END`).
#[derive(Clone, Debug)]
pub struct FoundMessage {
    pub record: MessageRecord,
    pub rank: f32,
    pub marked_content: String,
}

/// A user's stored preferences for one conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoredPreferences {
    pub starred: bool,
    pub mute_until: Option<MuteUntil>,
    pub notify_level: NotifyLevel,
}

impl StoredPreferences {
    pub fn view(self, now: OffsetDateTime) -> MemberPreferences {
        MemberPreferences::new(self.starred, self.mute_until, self.notify_level, now)
    }
}

/// A thread (by its root) or a whole conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Within {
    Thread(MessageId),
    Conversation(ConversationId),
}

/// What an event stream follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedScope {
    /// Every conversation the user can see: as a member, or as a (non-guest) member of the
    /// workspace of a workspace-visible conversation.
    Member,
    /// One conversation, with its workspace and whether it is workspace-visible as the
    /// stream opens (later events of the conversation update that).
    Conversation { id: ConversationId, workspace: WorkspaceId, open: bool },
}

/// Where a typing indicator is shown: the conversation, its thread, and the conversation's
/// workspace when it is workspace-visible (its members see it too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypingIn {
    pub conversation: ConversationId,
    pub root: Option<MessageId>,
    pub open_to: Option<WorkspaceId>,
}

/// The rate-limit profile that applies to a user, and where each rule's bucket stands.
#[derive(Clone, Debug)]
pub struct RateStanding {
    pub profile: skein_shared::limits::AppliedProfile,
    pub quotas: skein_shared::limits::QuotaOverrides,
    /// Each rule with its bucket (`None`: full).
    pub rules: Vec<(skein_shared::limits::RateRule, Option<crate::rate::Bucket>)>,
}

/// One day's use, counted from what was stored (messages) and recorded (answers' usage).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageToday {
    pub caller_messages: u64,
    pub caller_tokens: u64,
    pub workspace_messages: u64,
    pub workspace_tokens: u64,
    /// The quotas of the profile that applies to the caller.
    pub overrides: skein_shared::limits::QuotaOverrides,
}
