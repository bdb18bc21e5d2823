//! Carrying wake-ups and live-only events between instances.
//!
//! Events themselves never travel here: every instance reads them from the log, so nothing
//! published can be lost between a commit and a wake-up, and a lost wake-up only delays
//! delivery until the hub's next poll. What crosses instances is
//! - a wake-up pointer after a commit (an empty message), coalesced while one is in flight;
//! - live-only events (typing, presence) as JSON, received by every instance including the
//!   sender's, which delivers them locally only on receipt.
//!
//! `local` needs nothing; `postgres` uses LISTEN/NOTIFY on one channel; `nats` one subject.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use super::hub::{Ephemeral, Hub};
use crate::db::{PgPool, SetupError};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FanoutMode {
    /// One instance: in-process only.
    #[default]
    Local,
    /// Several instances sharing PostgreSQL, woken by LISTEN/NOTIFY.
    Postgres,
    /// Several instances woken through NATS.
    Nats,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutConfig {
    pub mode: FanoutMode,
    pub nats_url: String,
    /// The NOTIFY channel and NATS subject; instances that should form one service share it.
    pub namespace: String,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self { mode: FanoutMode::Local, nats_url: "nats://127.0.0.1:4222".into(), namespace: "skein_events".into() }
    }
}

/// What writers use after a commit and to publish live-only events.
#[derive(Clone)]
pub struct Signals {
    hub_wake: Arc<Notify>,
    remote_wake: Option<Arc<Notify>>,
    ephemeral: EphemeralSink,
}

#[derive(Clone)]
enum EphemeralSink {
    Local(Hub),
    Remote(mpsc::UnboundedSender<Ephemeral>),
}

impl Signals {
    /// Something was committed to the log.
    pub fn committed(&self) {
        self.hub_wake.notify_one();
        if let Some(remote) = &self.remote_wake {
            remote.notify_one();
        }
    }

    pub fn publish(&self, event: Ephemeral) {
        match &self.ephemeral {
            EphemeralSink::Local(hub) => hub.ephemeral(event),
            EphemeralSink::Remote(tx) => {
                let _ = tx.send(event);
            }
        }
    }
}

#[cfg(test)]
impl Signals {
    /// Signals whose live-only events are captured (for unit tests of what publishes them).
    pub(crate) fn capture() -> (Self, mpsc::UnboundedReceiver<Ephemeral>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { hub_wake: Arc::new(Notify::new()), remote_wake: None, ephemeral: EphemeralSink::Remote(tx) }, rx)
    }
}

/// Connects the hub to the other instances as configured.
pub async fn start(
    config: &FanoutConfig,
    pool: PgPool,
    database_url: &str,
    hub: Hub,
    hub_wake: Arc<Notify>,
) -> Result<Signals, SetupError> {
    if config.mode == FanoutMode::Local {
        return Ok(Signals { hub_wake, remote_wake: None, ephemeral: EphemeralSink::Local(hub) });
    }
    let remote_wake = Arc::new(Notify::new());
    let (tx, rx) = mpsc::unbounded_channel();
    let inbound = Inbound { hub, hub_wake: hub_wake.clone() };
    match config.mode {
        FanoutMode::Postgres => {
            let channel = config.namespace.clone();
            let url = database_url.to_owned();
            // Listen before the first commit can happen, so no wake-up is missed at start.
            let conn = listen(&url, &channel).await?;
            tokio::spawn(pg_listener(conn, url, channel.clone(), inbound));
            tokio::spawn(pg_publisher(pool, channel, remote_wake.clone(), rx));
        }
        FanoutMode::Nats => {
            let client = async_nats::connect(&config.nats_url)
                .await
                .map_err(|e| SetupError::Provision(format!("cannot connect to NATS at {}: {e}", config.nats_url)))?;
            let subject = config.namespace.clone();
            let subscriber = client
                .subscribe(subject.clone())
                .await
                .map_err(|e| SetupError::Provision(format!("cannot subscribe on NATS: {e}")))?;
            tokio::spawn(nats_listener(subscriber, inbound));
            tokio::spawn(nats_publisher(client, subject, remote_wake.clone(), rx));
        }
        FanoutMode::Local => {}
    }
    Ok(Signals { hub_wake, remote_wake: Some(remote_wake), ephemeral: EphemeralSink::Remote(tx) })
}

/// Hands what arrives from the bus to the local hub.
struct Inbound {
    hub: Hub,
    hub_wake: Arc<Notify>,
}

impl Inbound {
    fn receive(&self, payload: &[u8]) {
        if payload.is_empty() {
            self.hub_wake.notify_one();
            return;
        }
        match serde_json::from_slice::<Ephemeral>(payload) {
            Ok(event) => self.hub.ephemeral(event),
            Err(e) => tracing::warn!(error = %e, "unreadable message on the event bus"),
        }
    }
}

/// Wake-ups (coalesced) and live-only events out to the bus, one at a time.
enum Outbound {
    Wake,
    Ephemeral(Vec<u8>),
}

async fn next_outbound(wake: &Notify, rx: &mut mpsc::UnboundedReceiver<Ephemeral>) -> Option<Outbound> {
    tokio::select! {
        _ = wake.notified() => Some(Outbound::Wake),
        event = rx.recv() => event.map(|e| Outbound::Ephemeral(serde_json::to_vec(&e).unwrap_or_default())),
    }
}

async fn listen(url: &str, channel: &str) -> Result<AsyncPgConnection, SetupError> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| SetupError::Connect { url: crate::db::redact(url), reason: e.to_string() })?;
    conn.batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "")))
        .await
        .map_err(|e| SetupError::Provision(format!("LISTEN failed: {e}")))?;
    Ok(conn)
}

async fn pg_listener(mut conn: AsyncPgConnection, url: String, channel: String, inbound: Inbound) {
    loop {
        {
            let notifications = conn.notifications_stream();
            let mut notifications = std::pin::pin!(notifications);
            while let Some(Ok(n)) = notifications.next().await {
                inbound.receive(n.payload.as_bytes());
            }
        }
        tracing::warn!("LISTEN connection lost; reconnecting");
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match listen(&url, &channel).await {
                Ok(fresh) => {
                    conn = fresh;
                    // Whatever was committed meanwhile is in the log: read it.
                    inbound.hub_wake.notify_one();
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN reconnect failed"),
            }
        }
    }
}

async fn pg_publisher(pool: PgPool, channel: String, wake: Arc<Notify>, mut rx: mpsc::UnboundedReceiver<Ephemeral>) {
    while let Some(out) = next_outbound(&wake, &mut rx).await {
        let payload = match out {
            Outbound::Wake => String::new(),
            Outbound::Ephemeral(bytes) => String::from_utf8(bytes).unwrap_or_default(),
        };
        let sent = match pool.get().await {
            Ok(mut conn) => diesel::sql_query("SELECT pg_notify($1, $2)")
                .bind::<Text, _>(&channel)
                .bind::<Text, _>(payload)
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "NOTIFY failed");
        }
    }
}

async fn nats_listener(mut subscriber: async_nats::Subscriber, inbound: Inbound) {
    // The client reconnects by itself; wake the hub whenever a message arrives.
    while let Some(message) = subscriber.next().await {
        inbound.receive(&message.payload);
    }
    tracing::warn!("NATS subscription ended");
}

async fn nats_publisher(
    client: async_nats::Client,
    subject: String,
    wake: Arc<Notify>,
    mut rx: mpsc::UnboundedReceiver<Ephemeral>,
) {
    while let Some(out) = next_outbound(&wake, &mut rx).await {
        let payload = match out {
            Outbound::Wake => Vec::new(),
            Outbound::Ephemeral(bytes) => bytes,
        };
        if let Err(e) = client.publish(subject.clone(), payload.into()).await {
            tracing::warn!(error = %e, "NATS publish failed");
        }
    }
}
