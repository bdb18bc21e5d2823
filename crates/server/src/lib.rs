//! The Skein HTTP server: a thin actix-web layer over `skein-domain`'s services.

pub mod access_log;
pub mod auth;
pub mod config;
pub mod error;
pub mod input;
pub mod openapi;
pub mod rate_limits;
pub mod routes;
pub mod scopes;
pub mod state;
pub mod stream_slots;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{ServerHandle, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Logger;
use actix_web::{App, HttpResponse, HttpServer, web};
use skein_domain::Services;
use skein_infra::Store;
use skein_infra::answers::Llm;
use skein_infra::clock::Clock;
use skein_infra::crypto::PasswordHasher;
use skein_infra::realtime::Realtime;
use skein_infra::store::sessions::SessionCache;
use skein_infra::store::{self, PoolSettings, SetupError};
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::config::Config;
use crate::openapi::ApiDoc;
pub use crate::state::AppStateInner;

/// How handlers reach the services.
pub type AppState = web::Data<AppStateInner>;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The OpenAPI document, built from the same route table the server serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::health::configure)
        .configure(routes::openai::configure)
        .service(scope("/api").configure(routes::configure))
        .split_for_parts();
    utoipa::Modify::modify(&openapi::Conventions, &mut doc);
    doc
}

/// Each path's methods, as the `Allow` header lists them.
fn route_methods(doc: &utoipa::openapi::OpenApi) -> std::collections::HashMap<String, String> {
    doc.paths
        .paths
        .iter()
        .map(|(path, item)| {
            let methods = [
                (item.get.is_some(), "GET"),
                (item.post.is_some(), "POST"),
                (item.put.is_some(), "PUT"),
                (item.patch.is_some(), "PATCH"),
                (item.delete.is_some(), "DELETE"),
            ];
            let listed: Vec<&str> = methods.iter().filter(|(has, _)| *has).map(|(_, m)| *m).collect();
            (path.clone(), listed.join(", "))
        })
        .collect()
}

/// A server accepting connections.
pub struct RunningServer {
    pub addr: SocketAddr,
    stopper: Stopper,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Waits until the server stops (on SIGINT/SIGTERM when signals are enabled).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.map_err(std::io::Error::other)?
    }

    /// A handle that can stop the server from anywhere.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }
}

/// Stops a running server.
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    realtime: Realtime,
    llm: Llm,
    shutdown_timeout: Duration,
}

impl Stopper {
    /// A graceful stop first cancels running generations and waits (within the shutdown
    /// timeout) for their terminal writes and events. Then it ends every stream (they would
    /// otherwise hold a graceful stop until its timeout; clients reconnect elsewhere with
    /// their cursor) and stops the server. An abrupt stop leaves generations to be failed as
    /// `interrupted` by the next instance, as a crash would.
    pub async fn stop(&self, graceful: bool) {
        if graceful {
            self.llm.shutdown(self.shutdown_timeout).await;
        }
        self.realtime.shutdown();
        self.handle.stop(graceful).await;
    }
}

/// How the process around the server wants it run.
#[derive(Clone, Default)]
pub struct StartOptions {
    /// Stop gracefully on SIGINT/SIGTERM.
    pub handle_signals: bool,
    /// The server's clock: expiry of sessions, invites and typing, presence timeouts, the time
    /// of every row (tests move a manual one).
    pub clock: Clock,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Migrates the database and starts serving.
pub async fn start(config: &Config, database_url: &str, options: StartOptions) -> Result<RunningServer, StartError> {
    let applied = store::migrate(database_url).await?;
    if applied > 0 {
        tracing::info!(applied, "migrations applied");
    }
    let pool = store::connect_pool(
        database_url,
        &PoolSettings {
            max_connections: config.database.max_connections,
            acquire_timeout: Duration::from_millis(config.database.acquire_timeout_ms),
        },
    )?;
    let index = store::search_index::prepare(&pool, &config.search.language).await?;
    if !index.accent_folding {
        tracing::warn!("search: the unaccent extension is not installed, so search is accent-sensitive");
    }
    if !index.unicode_case_folding {
        tracing::warn!("search: the database's LC_CTYPE is C, so only ASCII letters match in either case");
    }
    if index.reindexed > 0 {
        tracing::info!(messages = index.reindexed, language = %config.search.language, "search index rebuilt");
    }
    let hasher = PasswordHasher::new(config.auth.argon2_memory_kib, config.auth.argon2_passes)
        .map_err(|e| StartError::Config(e.to_string()))?;
    let sessions = Arc::new(SessionCache::default());
    let realtime =
        Realtime::start(&config.realtime, pool.clone(), database_url, options.clock.clone(), sessions.clone()).await?;
    let llm = Llm::start(&config.llm, pool.clone(), realtime.signals.clone(), database_url).await?;
    let store = Store::new(pool, hasher, Arc::new(realtime.signals.clone()), sessions)
        .with_clock(options.clock.clone())
        .with_answers(Arc::new(llm.clone()))
        .with_live(Arc::new(realtime.clone()));
    let services = Services::new(store, config.limits.clone(), config.auth.policy())
        .with_catalog(config.llm.catalog())
        .with_rate_policy(config.rate_limits.clone());
    let client_ip_header = match config.server.client_ip_header.trim() {
        "" => None,
        name => {
            Some(HeaderName::try_from(name).map_err(|e| StartError::Config(format!("server.client_ip_header: {e}")))?)
        }
    };
    let state = web::Data::new(AppStateInner {
        services,
        streams: config.realtime.clone(),
        secure_cookies: config.server.secure_cookies,
        expected_migration: store::latest_migration_version(),
        client_ip_header,
        body_limit_bytes: config.server.body_limit_bytes,
        methods: route_methods(&openapi_document()),
        stream_slots: stream_slots::StreamSlots::new(config.realtime.max_streams_per_user),
    });

    if config.limits.purge_deleted_after_secs > 0 {
        let every = Duration::from_secs(config.limits.purge_deleted_after_secs.clamp(1, 60));
        tokio::spawn(purge_periodically(state.clone(), every));
    }

    let every = Duration::from_secs(config.auth.sweep_interval_secs.max(1));
    tokio::spawn(sweep_periodically(state.clone(), every));

    let bind = config.server.bind.clone();
    let listener = TcpListener::bind(&bind).map_err(|e| StartError::Bind(bind.clone(), e))?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind(bind.clone(), e))?;
    let body_limit = config.server.body_limit_bytes;
    let doc = openapi_document();
    let mut server = HttpServer::new(move || {
        // Registered before the /api scope, which would otherwise claim /api/openapi.json.
        let docs = SwaggerUi::new("/docs/{_:.*}")
            .url("/api/openapi.json", doc.clone())
            .config(utoipa_swagger_ui::Config::default().validator_url("none"));
        let (app, _) = App::new()
            .service(docs)
            .app_data(state.clone())
            // Exactly `application/json` (not `text/json` or `*+json`): what the input guard reads.
            .app_data(
                web::JsonConfig::default()
                    .limit(body_limit)
                    .content_type(|mime| mime.essence_str() == "application/json")
                    .content_type_required(true)
                    .error_handler(error::json_error),
            )
            // Bodies read whole (`/v1`'s) have the same limit.
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::PathConfig::default().error_handler(error::path_error))
            .app_data(web::QueryConfig::default().error_handler(error::query_error))
            .wrap(actix_web::middleware::from_fn(input::guard))
            .wrap(actix_web::middleware::from_fn(scopes::enforce))
            .wrap(actix_web::middleware::from_fn(rate_limits::headers))
            .wrap_fn(|req, srv| {
                // Keep the caller's request id, or make one, and echo it in the response.
                let id = req.headers().get(&REQUEST_ID).cloned().filter(|v| v.len() <= 64).unwrap_or_else(|| {
                    HeaderValue::from_str(&ulid::Ulid::generate().to_string()).unwrap_or(HeaderValue::from_static("-"))
                });
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    res.headers_mut().insert(REQUEST_ID, id);
                    Ok(res)
                }
            })
            // Outermost (wrapped last), so each logged line carries the request id set above.
            .wrap(
                Logger::new("%{x-request-id}o \"%{method}xi %{path}xi\" %s %b %Dms")
                    .custom_request_replace("method", |req| req.method().to_string())
                    .custom_request_replace("path", access_log::path),
            )
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(routes::health::configure)
            .configure(routes::openai::configure)
            .service(scope("/api").configure(routes::configure))
            .split_for_parts();
        app.route(
            "/docs",
            web::get()
                .to(|| async { HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish() }),
        )
        .default_service(web::to(error::route_not_found))
    })
    // A trade-off measured both ways (BENCHMARKS.md): without Nagle's algorithm a token no
    // longer waits for the previous frame's delayed ACK (up to 40 ms); each connection writes
    // what one hub pass has for it at once, so fan-out pays little for it. On by default.
    .tcp_nodelay(config.server.tcp_nodelay)
    .listen(listener)
    .map_err(|e| StartError::Bind(bind.clone(), e))?
    .shutdown_timeout(config.server.shutdown_timeout_secs);
    if config.server.workers > 0 {
        server = server.workers(config.server.workers);
    }
    // Signals are ours to handle: streams must end before a graceful stop can finish.
    let server = server.disable_signals().run();
    let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
    let stopper = Stopper { handle: server.handle(), realtime, llm, shutdown_timeout };
    let task = tokio::spawn(server);
    if options.handle_signals {
        let stopper = stopper.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            stopper.stop(true).await;
        });
    }
    tracing::info!(%addr, "listening");
    Ok(RunningServer { addr, stopper, task })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Erases deleted messages' content once their purge time has come (when a purge delay is
/// configured; without one, a delete erases at once).
async fn purge_periodically(state: web::Data<AppStateInner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match state.services.purge_deleted().await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "deleted messages purged"),
            Err(e) => tracing::warn!(error = %e, "purging deleted messages failed"),
        }
    }
}

/// Deletes what has expired (sessions, stream tokens, old login failures, full rate-limit
/// buckets), so those tables hold what is live.
async fn sweep_periodically(state: web::Data<AppStateInner>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match state.services.sweep_expired().await {
            Ok(0) => {}
            Ok(swept) => tracing::debug!(swept, "expired rows deleted"),
            Err(e) => tracing::warn!(error = %e, "deleting expired rows failed"),
        }
    }
}
