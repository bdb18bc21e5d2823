//! Black-box test harness: each [`TestApp`] is the real server, listening on a free port,
//! backed by its own PostgreSQL schema (migrated from scratch, dropped afterwards).
//!
//! The database comes from `DATABASE_URL` (set by `cargo xtask test`), else a PostgreSQL
//! on the default local socket/port. Schemas left behind by crashed runs are swept: their
//! names carry the pid of the process that made them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod client;
pub mod fake_llm;
pub mod sse;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use skein_infra::clock::{Clock, ManualClock};
use skein_server::config::Config;
use skein_server::{StartOptions, Stopper};
use tokio::sync::OnceCell;

pub use client::{Resp, TestUser};

const SCHEMA_PREFIX: &str = "skeintest_";

/// A running server on a private schema.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// URL of the test's schema (for tests that inspect the database directly).
    pub db_url: String,
    schema: String,
    admin_url: String,
    /// The time typing expiry and presence timeouts see; tests move it forward.
    pub clock: Arc<ManualClock>,
    /// The configuration it runs with; change it before `restart` to restart with another.
    pub config: Config,
    server: Option<Instance>,
    /// Peers share the schema and leave dropping it to the app that made it.
    owns_schema: bool,
    users: AtomicU32,
}

/// A server thread.
struct Instance {
    stopper: Stopper,
    thread: std::thread::JoinHandle<()>,
}

impl Instance {
    /// An abrupt stop: to running generations it is a crash (no terminal write; the
    /// instance's liveness lock goes with its connections).
    fn stop(self) {
        self.stop_with(false);
    }

    fn stop_with(self, graceful: bool) {
        // The stop command is sent at once; the server thread then winds down its workers
        // and its connection pool.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let stopper = self.stopper;
        let _ = std::thread::spawn(move || rt.block_on(stopper.stop(graceful))).join();
        let _ = self.thread.join();
    }
}

/// Starts a server on a thread and runtime of its own, so that it shuts down cleanly when
/// the test ends, whatever the test's runtime is doing.
async fn launch(config: Config, db_url: String, clock: Arc<ManualClock>) -> (String, Instance) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("server runtime");
        rt.block_on(async move {
            let options = StartOptions { handle_signals: false, clock: Clock::Manual(clock) };
            match skein_server::start(&config, &db_url, options).await {
                Ok(server) => {
                    let _ = tx.send(Ok((server.addr, server.stopper())));
                    let _ = server.wait().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
    });
    let (addr, stopper) = rx.await.expect("server thread").expect("server starts");
    (format!("http://{addr}"), Instance { stopper, thread })
}

/// The database URL to create schemas in, found once per process.
async fn database_url() -> &'static str {
    static URL: OnceCell<String> = OnceCell::const_new();
    URL.get_or_init(|| async {
        let provisioned = skein_infra::provision::provision(
            std::env::var("DATABASE_URL").ok().as_deref(),
            "skein_test",
            std::path::Path::new("/nonexistent"),
        )
        .await
        .expect("no PostgreSQL for tests: run `cargo xtask test`, or set DATABASE_URL");
        let url = provisioned.url.clone();
        // A private cluster is never started here (xtask does that), so nothing to stop.
        std::mem::forget(provisioned);
        sweep_stale_schemas(&url).await;
        url
    })
    .await
}

/// Drops schemas whose creating process no longer exists.
async fn sweep_stale_schemas(url: &str) {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        nspname: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect for sweeping");
    let names: Vec<Name> =
        diesel::sql_query(format!("SELECT nspname FROM pg_namespace WHERE nspname LIKE '{SCHEMA_PREFIX}%'"))
            .load(&mut conn)
            .await
            .unwrap_or_default();
    for Name { nspname } in names {
        let pid = nspname.trim_start_matches(SCHEMA_PREFIX).split('_').next().unwrap_or_default();
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS \"{nspname}\" CASCADE")).execute(&mut conn).await;
        }
    }
}

fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change first.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = database_url().await.to_owned();
        let schema = format!(
            "{SCHEMA_PREFIX}{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        let mut conn = AsyncPgConnection::establish(&admin_url).await.expect("connect to test database");
        diesel::sql_query(format!("CREATE SCHEMA \"{schema}\"")).execute(&mut conn).await.expect("create test schema");
        let db_url = with_search_path(&admin_url, &schema);

        let mut config = Config::default();
        config.server.bind = "127.0.0.1:0".into();
        config.server.workers = 2;
        config.server.shutdown_timeout_secs = 1;
        config.database.max_connections = 8;
        // Cheaper hashing keeps tests that create many users quick; the algorithm is the same.
        config.auth.argon2_memory_kib = 1024;
        config.auth.argon2_passes = 1;
        // Each test's schema gets its own NOTIFY channel / NATS subject: they share a database.
        config.realtime.fanout.namespace = schema.clone();
        // The clock stands still in tests, so no budget would ever refill: the limits'
        // own tests turn them on (and move the clock).
        config.rate_limits.enabled = false;
        adjust(&mut config);
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let (base, instance) = launch(config.clone(), db_url.clone(), clock.clone()).await;
        Self {
            base,
            http: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("http client"),
            db_url,
            schema,
            admin_url,
            clock,
            config,
            server: Some(instance),
            owns_schema: true,
            users: AtomicU32::new(0),
        }
    }

    /// A second server process sharing this one's database (and clock): another instance of
    /// the same service.
    pub async fn peer(&self) -> TestApp {
        let (base, instance) = launch(self.config.clone(), self.db_url.clone(), self.clock.clone()).await;
        TestApp {
            base,
            http: self.http.clone(),
            db_url: self.db_url.clone(),
            schema: self.schema.clone(),
            admin_url: self.admin_url.clone(),
            clock: self.clock.clone(),
            config: self.config.clone(),
            server: Some(instance),
            owns_schema: false,
            users: AtomicU32::new(1_000_000),
        }
    }

    /// An HTTP client for a server started elsewhere (for tasks that outlive a borrow).
    pub fn client_for(base: &str) -> TestApp {
        TestApp {
            base: base.to_owned(),
            http: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("http client"),
            db_url: String::new(),
            schema: String::new(),
            admin_url: String::new(),
            clock: ManualClock::new(time::OffsetDateTime::now_utc()),
            config: Config::default(),
            server: None,
            owns_schema: false,
            users: AtomicU32::new(2_000_000),
        }
    }

    /// Stops the server abruptly (as a kill would) and starts a new one on the same
    /// database (a new address).
    pub async fn restart(&mut self) {
        self.restart_with(false).await;
    }

    /// Stops the server gracefully (SIGTERM's path) and starts a new one.
    pub async fn restart_gracefully(&mut self) {
        self.restart_with(true).await;
    }

    async fn restart_with(&mut self, graceful: bool) {
        if let Some(instance) = self.server.take() {
            let _ = tokio::task::spawn_blocking(move || instance.stop_with(graceful)).await;
        }
        let (base, instance) = launch(self.config.clone(), self.db_url.clone(), self.clock.clone()).await;
        self.base = base;
        self.server = Some(instance);
    }

    /// Waits until every event committed so far is readable (no older transaction anywhere
    /// in the cluster still running), so that a stream opened without a cursor starts after
    /// them. Parallel tests share the cluster, so this can take a moment.
    pub async fn settle(&self) {
        #[derive(diesel::QueryableByName)]
        struct Settled {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            settled: bool,
        }
        if self.db_url.is_empty() {
            return;
        }
        let mut conn = self.db().await;
        loop {
            let state: Settled = diesel::sql_query(
                "SELECT coalesce((SELECT max(tx) FROM events), 0) \
                 < pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS settled",
            )
            .get_result(&mut conn)
            .await
            .expect("settle query");
            if state.settled {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// A direct connection to the test's schema.
    pub async fn db(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db_url).await.expect("connect to test schema")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(instance) = self.server.take() {
            instance.stop();
        }
        if !self.owns_schema {
            return;
        }
        let (url, schema) = (self.admin_url.clone(), self.schema.clone());
        // Drop runs inside the test's runtime: clean up from a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&url).await {
                    let _ = diesel::sql_query(format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}
