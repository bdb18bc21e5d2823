//! Tunable limits and policies, filled from configuration by the server.

use time::Duration;

/// Input and page-size limits. Defaults are what a new instance runs with; the server reads
/// them from the `[limits]` section of its configuration.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Maximum message length in characters.
    pub message_max_chars: usize,
    /// Maximum title length (threads, conversations, workspaces) in characters.
    pub title_max_chars: usize,
    pub description_max_chars: usize,
    pub display_name_max_chars: usize,
    pub tags_max: usize,
    pub tag_max_chars: usize,
    pub client_msg_id_max_chars: usize,
    /// Deepest reply allowed (a root is depth 0). Bounded because each message stores its
    /// ancestry, and that ancestry is indexed (see [`Limits::THREAD_DEPTH_CEILING`]).
    pub thread_max_depth: i32,
    pub password_min_chars: usize,
    /// Default and maximum page size of ordinary lists.
    pub page_default: u32,
    pub page_max: u32,
    /// Default and maximum page size of thread trees (a tree page is cheap per node).
    pub tree_page_default: u32,
    pub tree_page_max: u32,
    /// Most members a conversation may be created with in one request.
    pub initial_members_max: usize,
    /// How long after posting a message its author may edit it (seconds; 0: always).
    pub edit_window_secs: u64,
    /// How long a deleted message's content is kept (never shown) before it is erased
    /// (seconds; 0: at once).
    pub purge_deleted_after_secs: u64,
    /// Distinct emoji one message may carry.
    pub reactions_per_message_max: usize,
    /// Search by relevance ranks the newest this many matches: a word found in most messages
    /// costs a bounded amount per page, and the hits are the best of recent history.
    pub search_ranked_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            message_max_chars: 16_000,
            title_max_chars: 200,
            description_max_chars: 2_000,
            display_name_max_chars: 100,
            tags_max: 20,
            tag_max_chars: 50,
            client_msg_id_max_chars: 100,
            thread_max_depth: 100,
            password_min_chars: 8,
            page_default: 50,
            page_max: 200,
            tree_page_default: 500,
            tree_page_max: 10_000,
            initial_members_max: 500,
            edit_window_secs: 0,
            purge_deleted_after_secs: 0,
            reactions_per_message_max: 50,
            search_ranked_max: 2_000,
        }
    }
}

impl Limits {
    /// The deepest any configuration may allow: a path of 151 ids (16 bytes each) still fits
    /// in a PostgreSQL btree index entry.
    pub const THREAD_DEPTH_CEILING: i32 = 150;

    /// The configured depth, kept within what the storage can index.
    pub fn max_depth(&self) -> i32 {
        self.thread_max_depth.clamp(1, Self::THREAD_DEPTH_CEILING)
    }

    /// The page size to use for a requested `limit` of an ordinary list.
    pub fn page_size(&self, requested: Option<u32>) -> u32 {
        clamp_page(requested, self.page_default, self.page_max)
    }

    pub fn tree_page_size(&self, requested: Option<u32>) -> u32 {
        clamp_page(requested, self.tree_page_default, self.tree_page_max)
    }
}

fn clamp_page(requested: Option<u32>, default: u32, max: u32) -> u32 {
    requested.unwrap_or(default).clamp(1, max)
}

/// Who may register and how long sessions live.
#[derive(Clone, Debug)]
pub struct AuthPolicy {
    /// When false, only the very first account can register (it becomes the instance admin).
    pub open_registration: bool,
    /// A session unused for this long expires.
    pub session_idle: Duration,
    /// A session expires this long after login, however active.
    pub session_absolute: Duration,
    /// Failed logins allowed per email within `login_failure_window`; beyond it, logins for
    /// that email (even with the right password) answer 429 until the window moves on.
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        Self {
            open_registration: true,
            session_idle: Duration::days(7),
            session_absolute: Duration::days(30),
            login_max_failures: 10,
            login_failure_window: Duration::minutes(15),
        }
    }
}

/// Rate limits and daily quotas (the `[rate_limits]` section of the configuration). The
/// rules themselves are profiles in the database, tuned through the admin API. Days are UTC
/// days.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatePolicy {
    /// Off: no request is counted against a profile, and profiles' quota overrides do not
    /// apply (the quotas configured here still do).
    pub enabled: bool,
    /// Messages one caller (a person, or an API key) may post per day; `null`: unlimited.
    /// A profile's `quotas` override it for whoever the profile applies to.
    pub daily_messages: Option<u64>,
    /// Assistant tokens (prompt + completion) of the answers one caller may ask for per day.
    pub daily_tokens: Option<u64>,
    /// Messages everyone in one workspace may post per day together.
    pub workspace_daily_messages: Option<u64>,
    pub workspace_daily_tokens: Option<u64>,
}

impl Default for RatePolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            daily_messages: None,
            daily_tokens: None,
            workspace_daily_messages: None,
            workspace_daily_tokens: None,
        }
    }
}
