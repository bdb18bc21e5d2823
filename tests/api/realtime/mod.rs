//! Realtime: the event log, SSE and WebSocket streams, replay, read state, typing, presence
//! and fan-out across instances.

mod basics;
mod instances;
mod membership;
mod replay;
mod retention;
mod rule_vs_replay;
mod slow_consumer;
mod typing_presence;
mod unread;
mod websocket;
mod workspace_channels;

use skein_tests::sse::Received;
use skein_tests::{TestApp, TestUser};

/// Alice owns a workspace with Bob in it, and a channel with both.
pub struct Room {
    pub alice: TestUser,
    pub bob: TestUser,
    pub ws: String,
    pub conv: String,
}

pub async fn room(app: &TestApp) -> Room {
    let (alice, bob) = (app.register("Alice").await, app.register("Bob").await);
    let ws = app.workspace(&alice, &[&bob]).await;
    let conv = app.channel(&alice, &ws, &[&bob]).await;
    Room { alice, bob, ws, conv }
}

/// A cursor as (transaction, id), to compare order.
pub fn position(event: &Received) -> (i64, i64) {
    let raw = event.id.as_deref().expect("logged events carry an id");
    let (tx, id) = raw.split_once('-').expect("cursor shape");
    (tx.parse().expect("tx"), id.parse().expect("id"))
}
