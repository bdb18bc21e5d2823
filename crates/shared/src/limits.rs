//! Rate limits and daily quotas: the profiles instance admins tune, what a caller has left,
//! and the instance's account administration.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ApiKeyId, RateLimitProfileId, UserId, WorkspaceId};

/// What a request is counted as. Every authenticated request is in exactly one class
/// (`read` for the other GETs, `write` for the other changes); `auth` is counted per client
/// address, every other class per caller (a person, or an API key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RouteClass {
    /// Posting a root or a reply (REST, the WebSocket `send` frame, a bound chat completion).
    Post,
    /// Editing or deleting messages and threads, pinning.
    Edit,
    /// Reactions and answer feedback.
    React,
    Typing,
    /// Presence heartbeats (REST and WebSocket).
    Presence,
    /// Asking for an assistant answer (`/generate`, `/v1/chat/completions`).
    Generate,
    Search,
    /// Registering and signing in, per client address.
    Auth,
    /// Attachment uploads.
    Upload,
    /// Every other read.
    Read,
    /// Every other change.
    Write,
}

impl RouteClass {
    pub const ALL: [RouteClass; 11] = [
        Self::Post,
        Self::Edit,
        Self::React,
        Self::Typing,
        Self::Presence,
        Self::Generate,
        Self::Search,
        Self::Auth,
        Self::Upload,
        Self::Read,
        Self::Write,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "post",
            Self::Edit => "edit",
            Self::React => "react",
            Self::Typing => "typing",
            Self::Presence => "presence",
            Self::Generate => "generate",
            Self::Search => "search",
            Self::Auth => "auth",
            Self::Upload => "upload",
            Self::Read => "read",
            Self::Write => "write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.as_str() == s)
    }
}

/// `burst` requests at once; the budget refills at `burst` per `per_seconds` (GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateRule {
    pub route_class: RouteClass,
    /// 1 to 1,000,000.
    pub burst: u32,
    /// 1 to 86,400.
    pub per_seconds: u32,
}

/// Daily quotas a profile sets for whoever it applies to; `null`: the configured default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaOverrides {
    #[serde(default)]
    pub daily_messages: Option<u64>,
    #[serde(default)]
    pub daily_tokens: Option<u64>,
}

/// A named set of rules. A class without a rule is not limited by this profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimitProfile {
    pub id: RateLimitProfileId,
    pub name: String,
    /// The instance default: it applies to whoever has no profile of their own, their key's
    /// or their workspace's.
    pub is_default: bool,
    pub rules: Vec<RateRule>,
    pub quotas: QuotaOverrides,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

/// `POST /api/admin/rate-limit-profiles`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRateLimitProfile {
    /// Unique, 1–100 characters.
    pub name: String,
    /// At most one per class.
    pub rules: Vec<RateRule>,
    #[serde(default)]
    pub quotas: QuotaOverrides,
}

/// `PATCH /api/admin/rate-limit-profiles/{id}`: what is present replaces what was (`rules`
/// replaces the whole set).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateRateLimitProfile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub rules: Option<Vec<RateRule>>,
    #[serde(default)]
    pub quotas: Option<QuotaOverrides>,
}

/// Who a profile is assigned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LimitSubject {
    /// The instance default (no id).
    Instance,
    Workspace(WorkspaceId),
    User(UserId),
    ApiKey(ApiKeyId),
}

/// `PUT /api/admin/rate-limit-assignments`: gives the subject this profile, or with
/// `profile_id: null` takes its own away (the next most specific applies). The instance
/// always has one: assigning it moves the default.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RateLimitAssignment {
    pub subject: LimitSubject,
    pub profile_id: Option<RateLimitProfileId>,
}

/// Where the profile that applies comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AssignedTo {
    Instance,
    Workspace,
    User,
    ApiKey,
}

/// One class's budget as it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassBudget {
    pub route_class: RouteClass,
    pub burst: u32,
    pub per_seconds: u32,
    /// Requests that would pass now.
    pub remaining: u32,
    /// Seconds until the budget is full again.
    pub reset_secs: u64,
}

/// What a daily quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QuotaKind {
    /// Messages posted (roots and replies; not assistant answers).
    Messages,
    /// Assistant tokens (prompt + completion) of the answers asked for.
    Tokens,
}

/// Whose day a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QuotaScope {
    /// The caller across every workspace (an API key is its own caller).
    Caller,
    /// Everyone in the workspace together.
    Workspace,
}

/// A daily quota and how much of today's is used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaUsage {
    pub kind: QuotaKind,
    pub scope: QuotaScope,
    /// Present for `workspace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<WorkspaceId>,
    pub limit: u64,
    pub used: u64,
    pub remaining: u64,
    /// When today's count starts again from zero.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub resets_at: OffsetDateTime,
}

/// `GET /api/me/limits` (and `GET /api/admin/users/{id}/limits`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitsResponse {
    /// False when the instance runs without rate limits (`rate_limits.enabled = false`).
    pub enabled: bool,
    pub profile: Option<AppliedProfile>,
    /// Each limited class (a class not listed is not limited).
    pub classes: Vec<ClassBudget>,
    /// Each quota that applies (none: unlimited).
    pub quotas: Vec<QuotaUsage>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedProfile {
    pub id: RateLimitProfileId,
    pub name: String,
    pub assigned_to: AssignedTo,
}

/// What kind of account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AccountKind {
    Person,
    /// An API key's service user.
    Service,
}

/// An account as instance admins see it (`GET /api/admin/users`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUser {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub kind: AccountKind,
    pub is_instance_admin: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `PATCH /api/admin/users/{id}`: `disabled: true` ends the account's sessions, streams and
/// (for a service user) its key at once, and refuses its logins; `false` lets it sign in
/// again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateAdminUser {
    pub disabled: bool,
}
