//! `unread.update` when others' messages raise a member's counts.
//!
//! Logging a count per member per message would multiply the log by the size of every
//! conversation, so these updates are derived, not logged: the hub reports each new message
//! it delivers to a member (not its author) as a (member, conversation) pair, the notifier
//! gathers pairs for a short window, computes their exact counts in one query, and hands each
//! result back to the hub for that member's connections on this instance. Every instance does
//! this for its own connections, so nothing crosses instances. They are live-only (no `id:`);
//! after a replay, the stream reports the conversations the replay touched the same way.
//! Moving one's own read cursor stays a logged event (`mark_read`), replayed like any other.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use skein_shared::event::{Event, EventBody};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::hub::{Delivered, Hub};
use crate::store::PgPool;
use crate::store::codec::uuid;
use crate::store::repo::read_state::counts_for;

/// Pairs per counting query.
const PAIRS_PER_QUERY: usize = 1000;

pub use super::live::Touched;

/// Gathers touched pairs for `window`, then counts and delivers them, until the hub stops.
pub async fn run(pool: PgPool, hub: Hub, mut touched: mpsc::UnboundedReceiver<Touched>, window: Duration) {
    while let Some(first) = touched.recv().await {
        let mut pending: HashSet<Touched> = HashSet::from([first]);
        let deadline = Instant::now() + window;
        loop {
            tokio::select! {
                more = touched.recv() => match more {
                    Some(pair) => { pending.insert(pair); }
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let pairs: Vec<(uuid::Uuid, uuid::Uuid)> = pending.into_iter().map(|(u, c)| (uuid(u), uuid(c))).collect();
        for chunk in pairs.chunks(PAIRS_PER_QUERY) {
            let counted = match pool.get().await {
                Ok(mut conn) => counts_for(&mut conn, chunk).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let counted = match counted {
                Ok(counted) => counted,
                Err(e) => {
                    // Counts are always available over REST; a missed update is not a lost event.
                    tracing::warn!(error = %e, "cannot compute unread counts");
                    continue;
                }
            };
            for (user, counts) in counted {
                let conversation = counts.conversation_id;
                let event = Event::live(EventBody::UnreadUpdate(counts), OffsetDateTime::now_utc())
                    .in_conversation(conversation, None);
                hub.send_to_user(user, conversation, Arc::new(Delivered::new(None, &event)));
            }
        }
    }
}
