//! Realtime: the event log, SSE and WebSocket streams, replay, read state, typing, presence
//! and fan-out across instances.

mod basics;
