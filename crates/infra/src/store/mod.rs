//! Persistence: the connection pool, embedded migrations, the schema, every table's SQL, and
//! the [`Store`] that implements the domain's ports.
//!
//! - `repo/`: the ports, one file per area; `log` / `read`: writing and reading the event log;
//! - `answers`: generations' ends and recovery (`repo/generations.rs` starts them);
//! - `job`: what a started answer hands the answer runtime; `delivery`: events as streams send them;
//! - `schema`, `rows`, `codec`: tables, row mapping, enums in their wire spelling.

pub mod answers;
pub mod codec;
pub(crate) mod counters;
pub mod delivery;
pub mod job;
pub mod log;
pub mod presence;
pub mod read;
pub(crate) mod repo;
pub(crate) mod rows;
pub mod schema;
pub mod search_index;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use deadpool::Runtime;
use diesel::Connection;
use diesel::result::Error as DieselError;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use skein_domain::DomainError;

use skein_domain::entities::{FeedScope, TypingIn};
use skein_domain::ports::AnswerPiece;
use skein_shared::assistant::MessageDone;
use skein_shared::event::PresenceInfo;
use skein_shared::{MessageId, UserId};

use crate::clock::Clock;
use crate::crypto::PasswordHasher;
use crate::store::job::Job;
use crate::store::sessions::SessionCache;
use delivery::DeliveryStream;

pub type PgPool = Pool<AsyncPgConnection>;
pub type PgConn = Object<AsyncPgConnection>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot connect to PostgreSQL at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("migrations failed: {0}")]
    Migrate(String),
    #[error("cannot start {0}")]
    Start(String),
    #[error("{0}")]
    Provision(String),
}

/// What the store's own functions (those the runtimes call, outside the domain's ports) fail
/// with. The domain sees it as [`DomainError`]: a pool that has no connection to give is
/// `Unavailable`, a database error as [`db_error`] says.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] DieselError),
    #[error("pool: {0}")]
    Pool(String),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => db_error(e),
            StoreError::Pool(e) => DomainError::Unavailable(e),
        }
    }
}

/// A pooled connection: the one way the store's functions take one.
pub(crate) async fn conn(pool: &PgPool) -> Result<PgConn, StoreError> {
    pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
}

/// Pool settings from configuration.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: usize,
    /// How long a request waits for a free connection before answering 503.
    pub acquire_timeout: Duration,
}

/// What the store tells after commits: that events were appended (the realtime runtime's
/// wake-up), and that a session ended (every instance forgets it). Persistence defines it and
/// knows nothing of who listens.
pub trait AfterCommit: Send + Sync {
    fn committed(&self);
    fn session_ended(&self, session: ulid::Ulid);
}

/// What runs assistant answers on this instance (the answer runtime), as the store needs it
/// to start and stop them. Persistence defines it and knows nothing of how answers run.
pub trait AnswerRunner: Send + Sync {
    /// This instance's id as a runner (recorded on the answers it runs).
    fn instance(&self) -> uuid::Uuid;
    /// Whether this instance may start another answer.
    fn has_room(&self) -> bool;
    /// Runs the job (its rows are committed) with the named provider.
    fn launch(&self, job: Job, provider: &str);
    /// Cancels the answer if it runs here and waits (up to `within`) for its end; false when
    /// it does not run here.
    fn cancel_here(&self, message: MessageId, within: Duration) -> BoxFuture<'_, bool>;
    /// The answer's content so far, its end if it has ended, and the pieces after it, when
    /// it runs here.
    fn follow_here(&self, message: MessageId) -> Option<FollowHere>;
    /// How often followers of answers running elsewhere read what has been flushed.
    fn flush_interval(&self) -> Duration;
    /// Starts a completion with the named provider that nothing stores (the OpenAI-compatible
    /// endpoint's proxy).
    fn proxy(&self, provider: &str, request: job::ChatRequest) -> BoxFuture<'_, ProxyStarted>;
}

/// A proxied completion, or why the provider could not be asked.
pub type ProxyStarted = Result<Box<dyn skein_domain::ports::ProxyCompletion>, skein_shared::assistant::GenerationError>;

/// Following an answer that runs on this instance.
pub type FollowHere = (String, Option<MessageDone>, tokio::sync::broadcast::Receiver<AnswerPiece>);

/// The realtime runtime (typing, presence, event streams), as the store needs it to implement
/// the domain's `LiveSignals` and `EventFeeds`. Persistence defines it and knows nothing of
/// how events travel.
pub trait LiveRuntime: Send + Sync {
    fn open_feed<'a>(
        &'a self,
        user: UserId,
        scope: FeedScope,
        resume: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeliveryStream, DomainError>>;
    fn set_typing(&self, place: TypingIn, user: UserId, typing: bool);
    fn heartbeat(&self, user: UserId, away: bool) -> BoxFuture<'_, Result<PresenceInfo, DomainError>>;
    fn presence<'a>(
        &'a self,
        viewer: UserId,
        users: &'a [UserId],
    ) -> BoxFuture<'a, Result<Vec<PresenceInfo>, DomainError>>;
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The PostgreSQL implementation of every domain port.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: PgPool,
    pub(crate) hasher: Arc<PasswordHasher>,
    /// Told after every commit that appended events.
    pub(crate) signals: Arc<dyn AfterCommit>,
    /// Runs assistant answers; without it none can start.
    pub(crate) llm: Option<Arc<dyn AnswerRunner>>,
    /// Carries typing and presence; without it they are unavailable.
    pub(crate) live: Option<Arc<dyn LiveRuntime>>,
    /// Sessions looked up recently (shared with the bus, which clears other instances' logouts).
    pub(crate) sessions: Arc<SessionCache>,
    /// What "now" is for every rule and row with a time (the system clock, or a test's).
    pub(crate) clock: Clock,
    /// Proxied completions running here, per user.
    pub(crate) proxies: Arc<counters::ProxyCounts>,
    /// Whether any rate-limit profile sets a quota, as last read.
    pub(crate) quota_profiles: Arc<counters::RecentFlag>,
}

impl Store {
    pub fn new(
        pool: PgPool,
        hasher: PasswordHasher,
        after_commit: Arc<dyn AfterCommit>,
        sessions: Arc<SessionCache>,
    ) -> Self {
        Self {
            pool,
            hasher: Arc::new(hasher),
            signals: after_commit,
            llm: None,
            live: None,
            sessions,
            clock: Clock::System,
            proxies: Arc::default(),
            quota_profiles: Arc::default(),
        }
    }

    /// Assistant answers start on this runner.
    pub fn with_answers(mut self, runner: Arc<dyn AnswerRunner>) -> Self {
        self.llm = Some(runner);
        self
    }

    /// Time is this clock's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Typing and presence go through this runtime.
    pub fn with_live(mut self, runtime: Arc<dyn LiveRuntime>) -> Self {
        self.live = Some(runtime);
        self
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn conn(&self) -> Result<PgConn, DomainError> {
        Ok(conn(&self.pool).await?)
    }
}

pub fn connect_pool(url: &str, settings: &PoolSettings) -> Result<PgPool, SetupError> {
    // `Fast` recycling: the default runs `SELECT 1` on every checkout, a round trip per
    // repository call. A connection that died fails its next query and is then dropped.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(settings.max_connections)
        .wait_timeout(Some(settings.acquire_timeout))
        .create_timeout(Some(settings.acquire_timeout))
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|e| SetupError::Connect { url: redact(url), reason: e.to_string() })
}

/// Applies pending migrations. Blocks: call from a blocking thread (see [`migrate`]).
pub fn run_migrations_blocking(url: &str) -> Result<usize, SetupError> {
    let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(url)
        .map_err(|e| SetupError::Connect { url: redact(url), reason: e.to_string() })?;
    let applied = conn.run_pending_migrations(MIGRATIONS).map_err(|e| SetupError::Migrate(e.to_string()))?;
    Ok(applied.len())
}

/// Applies pending migrations without blocking the async runtime.
pub async fn migrate(url: &str) -> Result<usize, SetupError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || run_migrations_blocking(&url))
        .await
        .map_err(|e| SetupError::Migrate(e.to_string()))?
}

/// The version of the newest embedded migration (what `/readyz` expects to find applied).
pub fn latest_migration_version() -> String {
    use diesel::migration::MigrationSource;
    let migrations: Vec<_> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS).unwrap_or_default();
    migrations.iter().map(|m| m.name().version().to_string()).max().unwrap_or_default()
}

/// Ready = the database answers and the newest migration is applied.
pub async fn is_ready(pool: &PgPool, expected_version: &str) -> Result<(), String> {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        version: Option<String>,
    }
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let row: Version = diesel::sql_query("SELECT max(version) AS version FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    match row.version {
        Some(v) if v.as_str() >= expected_version => Ok(()),
        other => Err(format!("migrations not applied (found {other:?}, need {expected_version})")),
    }
}

pub(crate) fn db_error(err: DieselError) -> DomainError {
    match err {
        DieselError::NotFound => DomainError::NotFound,
        // The migration's trigger that keeps a key's service user where its key puts it.
        DieselError::DatabaseError(_, ref info) if info.constraint_name() == Some("api_key_reach") => {
            DomainError::Forbidden("an API key's service user stays in its key's workspace and conversations")
        }
        DieselError::DatabaseError(_, ref info) if info.message().contains("canceling statement") => {
            DomainError::Unavailable(err.to_string())
        }
        other => DomainError::Internal(other.to_string()),
    }
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
