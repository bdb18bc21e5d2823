//! Who receives a `presence.update`: everyone sharing a conversation with its user. That is
//! a database question, so it is answered here, on a task of its own, and never on the hub's
//! task (a user toggling `away` must not hold back delivery for everyone on the instance).
//!
//! Changes that arrive together are looked up in one query, and only the newest change of
//! each user is kept: a burst of heartbeats costs one lookup and one delivery.

use std::collections::HashMap;

use skein_shared::{ConversationId, UserId};
use tokio::sync::mpsc;

use super::live::{Ephemeral, Routed};
use crate::store::PgPool;
use crate::store::read;

/// Resolves presence changes into routed live events for the hub, until either side goes.
pub async fn run(
    pool: PgPool,
    mut changes: mpsc::UnboundedReceiver<Box<Ephemeral>>,
    hub: mpsc::UnboundedSender<Routed>,
) {
    while let Some(first) = changes.recv().await {
        let mut newest: HashMap<UserId, Box<Ephemeral>> = HashMap::new();
        for change in std::iter::once(first).chain(std::iter::from_fn(|| changes.try_recv().ok())) {
            newest.insert(change.user_id, change);
        }
        let users: Vec<UserId> = newest.keys().copied().collect();
        let shared = match pool.get().await {
            Ok(mut conn) => read::member_conversations(&mut conn, &users).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let shared = match shared {
            Ok(shared) => shared,
            Err(e) => {
                // Live-only: the next change (or a snapshot) tells the truth again.
                tracing::warn!(error = %e, users = users.len(), "cannot look up who receives presence changes");
                continue;
            }
        };
        let mut by_user: HashMap<UserId, Vec<ConversationId>> = HashMap::new();
        for (user, conversation) in shared {
            by_user.entry(user).or_default().push(conversation);
        }
        for (user, event) in newest {
            let conversations = by_user.remove(&user).unwrap_or_default();
            if hub.send(Routed { event, conversations }).is_err() {
                return;
            }
        }
    }
}
