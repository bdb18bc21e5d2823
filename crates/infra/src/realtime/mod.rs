//! The event log and realtime delivery.
//!
//! - [`log`]: writers append events inside the transaction that makes the change;
//! - [`read`]: tailing and replaying the log in its one order, bounds and pruning;
//! - [`hub`]: one task per instance tails the log and fans events out to local subscribers;
//! - [`feed`]: one client's stream, replay then live, with exact resumption;
//! - [`bus`]: wake-ups and live-only events between instances (local, postgres, nats);
//! - [`typing`]: typing indicators with server-side expiry;
//! - `recipients`: who receives a presence change, looked up off the hub's task.

pub mod bus;
pub mod feed;
pub mod hub;
pub mod live;
pub mod presence;
mod recipients;
pub mod typing;
pub mod unread;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use crate::clock::Clock;
use crate::realtime::presence::{Presence, PresencePolicy};
use crate::store::delivery::DeliveryStream;
use crate::store::read;
use crate::store::sessions::SessionCache;
use crate::store::{BoxFuture, LiveRuntime, PgPool, SetupError};
pub use bus::{FanoutConfig, FanoutMode, Signals};
use feed::{Feed, FeedError};
pub use hub::{Hub, HubConfig};
use skein_domain::DomainError;
use skein_domain::entities::{FeedScope, TypingIn};
use skein_shared::UserId;
use skein_shared::event::PresenceInfo;
pub use typing::Typing;

/// The `[realtime]` configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealtimeConfig {
    pub fanout: FanoutConfig,
    /// Events a connection may have waiting before it is cut off as too slow.
    pub connection_buffer: usize,
    /// Read the log at least this often even without a wake-up (milliseconds).
    pub poll_interval_ms: u64,
    /// SSE keep-alive comments and WebSocket pings (seconds).
    pub keep_alive_secs: u64,
    /// How long a typing indicator lasts without a repeat (seconds).
    pub typing_ttl_secs: u64,
    pub presence: PresencePolicy,
    /// Events older than this are pruned (hours).
    pub retention_max_age_hours: u64,
    /// At most this many events are kept.
    pub retention_max_events: i64,
    /// How often each instance prunes (seconds).
    pub prune_interval_secs: u64,
    /// Others' new messages are gathered this long before members' `unread.update`s are
    /// computed and sent (milliseconds).
    pub unread_window_ms: u64,
    /// Lifetime of a `POST /api/stream/token` token (seconds).
    pub stream_token_ttl_secs: u64,
    /// Origins allowed to open a WebSocket, besides the server's own host.
    pub allowed_origins: Vec<String>,
    /// Streams (SSE, WebSocket, answer streams) one user may hold open on one instance at
    /// once; more are refused with 429 (0: no limit).
    pub max_streams_per_user: u32,
}

impl Default for RealtimeConfig {
    fn default() -> Self {
        Self {
            fanout: FanoutConfig::default(),
            connection_buffer: 1024,
            poll_interval_ms: 1000,
            keep_alive_secs: 15,
            typing_ttl_secs: 6,
            presence: PresencePolicy::default(),
            retention_max_age_hours: 24 * 7,
            retention_max_events: 10_000_000,
            prune_interval_secs: 300,
            unread_window_ms: 1000,
            stream_token_ttl_secs: 300,
            allowed_origins: Vec::new(),
            max_streams_per_user: 32,
        }
    }
}

/// Everything realtime on this instance.
#[derive(Clone)]
pub struct Realtime {
    hub: Hub,
    /// What the store and the answer runtime tell other instances through.
    pub signals: Signals,
    typing: Typing,
    presence: Presence,
    pool: PgPool,
}

impl Realtime {
    /// Starts the hub, connects it to the other instances, and starts the background jobs
    /// (pruning, presence sweeps) on the current runtime.
    pub async fn start(
        config: &RealtimeConfig,
        pool: PgPool,
        database_url: &str,
        clock: Clock,
        sessions: Arc<SessionCache>,
    ) -> Result<Self, SetupError> {
        let wake = Arc::new(Notify::new());
        let (touched, touched_rx) = mpsc::unbounded_channel();
        let hub = Hub::start(
            pool.clone(),
            wake.clone(),
            HubConfig {
                buffer: config.connection_buffer.max(1),
                poll_interval: Duration::from_millis(config.poll_interval_ms.max(10)),
                batch: 1000,
            },
            touched,
        )
        .await?;
        let window = Duration::from_millis(config.unread_window_ms);
        tokio::spawn(unread::run(pool.clone(), hub.clone(), touched_rx, window));
        let signals = bus::start(&config.fanout, pool.clone(), database_url, hub.clone(), wake, sessions).await?;
        let typing = Typing::new(signals.clone(), clock.clone(), Duration::from_secs(config.typing_ttl_secs.max(1)));
        let presence = Presence::new(pool.clone(), clock.clone(), config.presence, signals.clone());
        tokio::spawn(presence.clone().run_sweeper());
        tokio::spawn(prune_periodically(pool.clone(), config.clone(), clock));
        Ok(Self { hub, signals, typing, presence, pool })
    }

    /// Ends every stream on this instance (clients reconnect elsewhere).
    pub fn shutdown(&self) {
        self.hub.shutdown();
    }
}

impl LiveRuntime for Realtime {
    fn open_feed<'a>(
        &'a self,
        user: UserId,
        scope: FeedScope,
        resume: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeliveryStream, DomainError>> {
        Box::pin(async move {
            let feed = Feed::open(&self.hub, self.pool.clone(), user, scope, resume).await.map_err(|e| match e {
                FeedError::Stopped(_) => DomainError::Unavailable("this server is shutting down".into()),
                FeedError::Database(e) => DomainError::Unavailable(format!("opening a stream: {e}")),
            })?;
            Ok(feed.into_stream())
        })
    }

    fn set_typing(&self, place: TypingIn, user: UserId, typing: bool) {
        self.typing.set(place, user, typing);
    }

    fn heartbeat(&self, user: UserId, away: bool) -> BoxFuture<'_, Result<PresenceInfo, DomainError>> {
        Box::pin(self.presence.heartbeat(user, away))
    }

    fn presence<'a>(
        &'a self,
        viewer: UserId,
        users: &'a [UserId],
    ) -> BoxFuture<'a, Result<Vec<PresenceInfo>, DomainError>> {
        Box::pin(self.presence.snapshot(viewer, users))
    }
}

async fn prune_periodically(pool: PgPool, config: RealtimeConfig, clock: Clock) {
    let max_age = time::Duration::hours(config.retention_max_age_hours as i64);
    loop {
        tokio::time::sleep(Duration::from_secs(config.prune_interval_secs.max(1))).await;
        let pruned = match pool.get().await {
            Ok(mut conn) => read::prune(&mut conn, clock.now(), max_age, config.retention_max_events)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match pruned {
            Ok(Some(boundary)) => tracing::info!(through = %boundary.encode(), "event log pruned"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "event log pruning failed"),
        }
    }
}
