//! Configuration: defaults, then a TOML file, then `SKEIN_*` environment variables
//! (`SKEIN_SERVER__BIND=0.0.0.0:8080`; nested keys joined by `__`). `DATABASE_URL` is also
//! honoured. Every key and its default is listed in `skein.example.toml`.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use skein_domain::{AuthPolicy, Limits, RatePolicy};
use skein_infra::answers::LlmConfig;
use skein_infra::realtime::RealtimeConfig;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    /// Input, depth and page-size limits (see [`Limits`]).
    pub limits: Limits,
    /// Event streams, fan-out across instances, typing, presence and retention.
    pub realtime: RealtimeConfig,
    /// AI providers (OpenAI-compatible) and generation limits.
    pub llm: LlmConfig,
    /// Full-text search.
    pub search: SearchConfig,
    /// Rate limits on or off and daily quotas (the profiles are in the database, tuned
    /// through `/api/admin/rate-limit-profiles`).
    pub rate_limits: RatePolicy,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// The PostgreSQL text search configuration whose stemming and stop words apply
    /// (`english`, `german`, `french`, `russian`, …, or `simple` for none; `SELECT cfgname FROM
    /// pg_ts_config` lists them). Words also match as written, in any language. Changing it
    /// rebuilds the index at the next start.
    pub language: String,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self { language: "english".into() }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// HTTP worker threads (0 = one per core).
    pub workers: usize,
    /// Largest accepted JSON body, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds to finish in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Mark session cookies `Secure` (turn on behind HTTPS).
    pub secure_cookies: bool,
    /// Send small writes at once (TCP_NODELAY) instead of letting Nagle's algorithm hold them
    /// until the previous one is acknowledged (a client's delayed ACK: up to 40 ms). On by
    /// default: token delivery's tail at 200 answers goes from ~32 ms to ~2 ms; fan-out to
    /// thousands of streams costs ~10% more, as each connection already writes a pass's
    /// events in one go (see BENCHMARKS.md).
    pub tcp_nodelay: bool,
    /// Behind a reverse proxy: the header it appends the client's address to
    /// (`x-forwarded-for`); the last address in it counts for per-address limits. Empty: the
    /// connection's peer address.
    pub client_ip_header: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            body_limit_bytes: 256 * 1024,
            shutdown_timeout_secs: 10,
            secure_cookies: false,
            tcp_nodelay: true,
            client_ip_header: String::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// PostgreSQL URL. Empty: use `DATABASE_URL`, else a local server, else a private cluster.
    pub url: String,
    /// Database to use (and create) on a local server or private cluster.
    pub name: String,
    /// Where the private cluster lives (created on first start).
    pub data_dir: PathBuf,
    pub max_connections: usize,
    /// Milliseconds a request waits for a database connection before answering 503.
    pub acquire_timeout_ms: u64,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            name: "skein".into(),
            data_dir: ".skein".into(),
            max_connections: 16,
            acquire_timeout_ms: 5_000,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Anyone may register. When false, only the first account (the instance admin) can.
    pub open_registration: bool,
    /// A session unused this long expires (seconds).
    pub session_idle_secs: i64,
    /// A session expires this long after login (seconds).
    pub session_absolute_secs: i64,
    /// Failed logins allowed per email within the window; then 429 until it moves on.
    pub login_max_failures: u32,
    pub login_failure_window_secs: i64,
    /// argon2id memory cost in KiB and number of passes.
    pub argon2_memory_kib: u32,
    pub argon2_passes: u32,
    /// How often expired sessions, stream tokens, old login failures and full rate-limit
    /// buckets are deleted (seconds).
    pub sweep_interval_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let policy = AuthPolicy::default();
        Self {
            open_registration: policy.open_registration,
            session_idle_secs: policy.session_idle.whole_seconds(),
            session_absolute_secs: policy.session_absolute.whole_seconds(),
            login_max_failures: policy.login_max_failures,
            login_failure_window_secs: policy.login_failure_window.whole_seconds(),
            argon2_memory_kib: 19 * 1024,
            argon2_passes: 2,
            sweep_interval_secs: 300,
        }
    }
}

impl AuthConfig {
    pub fn policy(&self) -> AuthPolicy {
        AuthPolicy {
            open_registration: self.open_registration,
            session_idle: time::Duration::seconds(self.session_idle_secs),
            session_absolute: time::Duration::seconds(self.session_absolute_secs),
            login_max_failures: self.login_max_failures,
            login_failure_window: time::Duration::seconds(self.login_failure_window_secs),
        }
    }
}

impl Config {
    /// Defaults, then the TOML file (`path`, or `skein.toml` when present), then environment.
    pub fn load(path: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None => figment = figment.merge(Toml::file("skein.toml")),
        }
        figment = figment.merge(Env::prefixed("SKEIN_").ignore(&["config"]).split("__"));
        if let Ok(url) = std::env::var("DATABASE_URL") {
            figment = figment.merge(Serialized::default("database.url", url));
        }
        figment.extract().map_err(Box::new)
    }
}
