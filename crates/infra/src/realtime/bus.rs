//! Carrying wake-ups and live-only events between instances.
//!
//! Events themselves never travel here: every instance reads them from the log, so nothing
//! published can be lost between a commit and a wake-up, and a lost wake-up only delays
//! delivery until the hub's next poll. What crosses instances is
//! - a wake-up pointer after a commit (an empty message), coalesced while one is in flight;
//! - live-only events (typing, presence, assistant deltas) as JSON, received by every
//!   instance including the sender's, which delivers them locally only on receipt;
//! - ended sessions (a line `-` and the session id), which every instance drops from its
//!   session cache.
//!
//! Live events wait in a bounded queue (a stalled bus drops them, with a warning, rather
//! than grow without limit) and leave in batches: what has queued up goes as few messages as
//! fit, one JSON event per line, each message under PostgreSQL's NOTIFY limit (a delta too
//! long for one is split in two, recursively). The wake-up for a commit leaves after the
//! live events queued before it, so deltas reach other instances before the `message.done`
//! that follows them is announced; the hub on the other side holds a `message.done` until
//! its deltas have arrived (see `hub.rs`).
//!
//! `local` needs nothing; `postgres` uses LISTEN/NOTIFY on one channel; `nats` one subject.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::sql_types::{Array, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use skein_shared::assistant::MessageDelta;
use skein_shared::event::EventBody;
use tokio::sync::{Notify, mpsc};

use super::hub::{Ephemeral, Hub};
use crate::store::sessions::SessionCache;
use crate::store::{PgPool, SetupError};

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
    Remote(mpsc::Sender<Outgoing>, Arc<AtomicU64>),
}

/// What waits for the bus. Live events are by far the most (deltas): they stay unboxed, as
/// they were before session ends shared the queue, so that none costs an allocation.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Outgoing {
    Live(Ephemeral),
    SessionEnded(ulid::Ulid),
}

/// Starts a bus line that names an ended session (no JSON line starts with it).
const SESSION_ENDED: u8 = b'-';

/// Live events waiting for the bus at most; more are dropped.
const OUTBOUND_QUEUE: usize = 65_536;
/// Live events per batch taken from the queue.
const BATCH_EVENTS: usize = 4096;
/// Bytes per bus message: under PostgreSQL's 8,000-byte NOTIFY payload limit, with room for
/// the channel name.
const PAYLOAD_MAX: usize = 7_800;

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
            EphemeralSink::Remote(tx, dropped) => send(tx, dropped, Outgoing::Live(event)),
        }
    }

    /// Other instances forget the session (this one's store already has).
    pub fn session_ended(&self, session: ulid::Ulid) {
        if let EphemeralSink::Remote(tx, dropped) = &self.ephemeral {
            send(tx, dropped, Outgoing::SessionEnded(session));
        }
    }
}

fn send(tx: &mpsc::Sender<Outgoing>, dropped: &AtomicU64, out: Outgoing) {
    if tx.try_send(out).is_err() {
        let n = dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(dropped = n, "the event bus is not keeping up; live events dropped");
        }
    }
}

#[cfg(test)]
impl Signals {
    /// Signals whose live-only events are captured (for unit tests of what publishes them).
    pub(crate) fn capture() -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let sink = EphemeralSink::Remote(tx, Arc::default());
        (Self { hub_wake: Arc::new(Notify::new()), remote_wake: None, ephemeral: sink }, rx)
    }
}

impl crate::store::AfterCommit for Signals {
    fn committed(&self) {
        Signals::committed(self);
    }

    fn session_ended(&self, session: ulid::Ulid) {
        Signals::session_ended(self, session);
    }
}

/// Connects the hub to the other instances as configured.
pub async fn start(
    config: &FanoutConfig,
    pool: PgPool,
    database_url: &str,
    hub: Hub,
    hub_wake: Arc<Notify>,
    sessions: Arc<SessionCache>,
) -> Result<Signals, SetupError> {
    if config.mode == FanoutMode::Local {
        return Ok(Signals { hub_wake, remote_wake: None, ephemeral: EphemeralSink::Local(hub) });
    }
    let remote_wake = Arc::new(Notify::new());
    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    let inbound = Inbound { hub, hub_wake: hub_wake.clone(), sessions };
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
    let sink = EphemeralSink::Remote(tx, Arc::default());
    Ok(Signals { hub_wake, remote_wake: Some(remote_wake), ephemeral: sink })
}

/// Hands what arrives from the bus to the local hub.
struct Inbound {
    hub: Hub,
    hub_wake: Arc<Notify>,
    sessions: Arc<SessionCache>,
}

impl Inbound {
    fn receive(&self, payload: &[u8]) {
        if payload.is_empty() {
            self.hub_wake.notify_one();
            return;
        }
        for line in payload.split(|b| *b == b'\n') {
            if let Some(ended) = ended_session(line) {
                match ended {
                    Some(id) => self.sessions.forget(id),
                    None => tracing::warn!("unreadable session id on the event bus"),
                }
                continue;
            }
            match serde_json::from_slice::<Ephemeral>(line) {
                Ok(event) => self.hub.ephemeral(event),
                Err(e) => tracing::warn!(error = %e, "unreadable message on the event bus"),
            }
        }
    }
}

/// A line naming an ended session: `Some` with its id (`None` if unreadable); `None` for
/// any other line.
fn ended_session(line: &[u8]) -> Option<Option<ulid::Ulid>> {
    let id = line.strip_prefix(&[SESSION_ENDED])?;
    Some(std::str::from_utf8(id).ok().and_then(|id| id.parse().ok()))
}

/// What goes out next: the live events queued so far (as bus messages), or else a wake-up.
enum Outbound {
    Wake,
    Payloads(Vec<String>),
}

async fn next_outbound(wake: &Notify, rx: &mut mpsc::Receiver<Outgoing>) -> Option<Outbound> {
    let mut batch = Vec::new();
    tokio::select! {
        // Live events first: a wake-up must not overtake the deltas queued before it.
        biased;
        n = rx.recv_many(&mut batch, BATCH_EVENTS) => (n > 0).then(|| Outbound::Payloads(pack(batch))),
        _ = wake.notified() => Some(Outbound::Wake),
    }
}

/// Lines, as few bus messages as fit under [`PAYLOAD_MAX`].
fn pack(batch: Vec<Outgoing>) -> Vec<String> {
    let mut payloads: Vec<String> = Vec::new();
    let mut lines = Vec::new();
    for out in batch {
        match out {
            Outgoing::Live(event) => fitting_lines(event, &mut lines),
            Outgoing::SessionEnded(id) => lines.push(format!("{}{id}", SESSION_ENDED as char)),
        }
    }
    for line in lines {
        match payloads.last_mut() {
            Some(payload) if payload.len() + 1 + line.len() <= PAYLOAD_MAX => {
                payload.push('\n');
                payload.push_str(&line);
            }
            _ => payloads.push(line),
        }
    }
    payloads
}

/// The event as JSON lines of at most [`PAYLOAD_MAX`] bytes: a delta too long is split into
/// consecutive deltas; anything else that long (nothing we send) is dropped.
fn fitting_lines(event: Ephemeral, lines: &mut Vec<String>) {
    let Ok(json) = serde_json::to_string(&event) else { return };
    if json.len() <= PAYLOAD_MAX {
        lines.push(json);
        return;
    }
    let EventBody::MessageDelta(delta) = &event.event.body else {
        tracing::warn!(kind = event.event.body.kind(), bytes = json.len(), "live event too large for the bus");
        return;
    };
    let chars = delta.delta.chars().count();
    if chars < 2 {
        return;
    }
    let cut = delta.delta.char_indices().nth(chars / 2).map_or(delta.delta.len(), |(i, _)| i);
    let (head, tail) = delta.delta.split_at(cut);
    let part = |offset: u32, text: &str| {
        let mut part = event.clone();
        part.event.body =
            EventBody::MessageDelta(MessageDelta { message_id: delta.message_id, offset, delta: text.to_owned() });
        part
    };
    let (first, second) = (part(delta.offset, head), part(delta.offset + (chars / 2) as u32, tail));
    fitting_lines(first, lines);
    fitting_lines(second, lines);
}

async fn listen(url: &str, channel: &str) -> Result<AsyncPgConnection, SetupError> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| SetupError::Connect { url: crate::store::redact(url), reason: e.to_string() })?;
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

async fn pg_publisher(pool: PgPool, channel: String, wake: Arc<Notify>, mut rx: mpsc::Receiver<Outgoing>) {
    while let Some(out) = next_outbound(&wake, &mut rx).await {
        let payloads = match out {
            Outbound::Wake => vec![String::new()],
            Outbound::Payloads(payloads) => payloads,
        };
        let sent = match pool.get().await {
            // One statement for the whole batch: its notifications are delivered together,
            // in order, at commit.
            Ok(mut conn) => diesel::sql_query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS t(p)")
                .bind::<Text, _>(&channel)
                .bind::<Array<Text>, _>(payloads)
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
    mut rx: mpsc::Receiver<Outgoing>,
) {
    while let Some(out) = next_outbound(&wake, &mut rx).await {
        let payloads = match out {
            Outbound::Wake => vec![String::new()],
            Outbound::Payloads(payloads) => payloads,
        };
        for payload in payloads {
            if let Err(e) = client.publish(subject.clone(), payload.into()).await {
                tracing::warn!(error = %e, "NATS publish failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use skein_shared::event::Event;
    use skein_shared::{ConversationId, MessageId, UserId};

    use super::*;

    fn delta(text: &str) -> Ephemeral {
        let message_id = MessageId::generate();
        Ephemeral {
            conversation_id: Some(ConversationId::generate()),
            open_to: None,
            user_id: UserId::generate(),
            to_self: true,
            after_event: None,
            event: Event::live(
                EventBody::MessageDelta(MessageDelta { message_id, offset: 7, delta: text.to_owned() }),
                time::OffsetDateTime::UNIX_EPOCH,
            ),
        }
    }

    fn deltas(payloads: &[String]) -> Vec<MessageDelta> {
        payloads
            .iter()
            .flat_map(|p| p.split('\n'))
            .filter_map(|line| match serde_json::from_str::<Ephemeral>(line).ok()?.event.body {
                EventBody::MessageDelta(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn ended_sessions_share_payloads_with_live_events_and_read_back() {
        let (first, second) = (ulid::Ulid::generate(), ulid::Ulid::generate());
        let batch = vec![Outgoing::SessionEnded(first), Outgoing::Live(delta("t")), Outgoing::SessionEnded(second)];
        let payloads = pack(batch);
        assert_eq!(payloads.len(), 1);
        let lines: Vec<&str> = payloads[0].split('\n').collect();
        let ended: Vec<_> = lines.iter().filter_map(|l| ended_session(l.as_bytes())).collect();
        assert_eq!(ended, [Some(first), Some(second)]);
        assert_eq!(deltas(&payloads).len(), 1, "the live event is still there");
        assert_eq!(ended_session(b"-not-an-id"), Some(None), "unreadable, not taken for an event");
        assert_eq!(ended_session(b"{\"type\":1}"), None);
    }

    #[test]
    fn small_events_share_a_payload_and_long_deltas_are_split_in_order_under_the_limit() {
        let small: Vec<Ephemeral> = (0..10).map(|i| delta(&format!("t{i} "))).collect();
        let payloads = pack(small.into_iter().map(Outgoing::Live).collect());
        assert_eq!(payloads.len(), 1, "ten small deltas, one NOTIFY");
        assert_eq!(deltas(&payloads).len(), 10);

        // 9,000 two-byte characters with quotes to escape: far over one payload.
        let long: String = "é\"".repeat(3_000);
        let payloads = pack(vec![Outgoing::Live(delta(&long))]);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_MAX), "every payload fits");
        let parts = deltas(&payloads);
        let mut at = 7;
        for part in &parts {
            assert_eq!(part.offset, at, "consecutive offsets");
            at += part.delta.chars().count() as u32;
        }
        assert_eq!(parts.iter().map(|d| d.delta.as_str()).collect::<String>(), long);
    }
}
