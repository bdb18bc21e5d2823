//! Skein's wire types: what travels between the server and its clients.
//!
//! This crate is deliberately light (serde, time, ulid only) so that any Rust program can
//! speak Skein's API without pulling in a web framework, a database driver or a runtime.
//! OpenAPI schemas are derived only with the `openapi` feature. For a ready HTTP client on
//! these types, see the `skein-client` crate.
//!
//! - Requests and responses by resource: [`auth`], [`workspace`], [`conversation`],
//!   [`thread`], [`message`], [`assistant`], [`search`], [`preferences`],
//!   [`limits`] (rate limits, quotas and instance administration); lists come as
//!   [`Page`]s.
//! - Ids are typed ULIDs ([`ids`]): a `MessageId` cannot be passed where a
//!   `ConversationId` is expected.
//! - Errors are RFC 9457 [`Problem`]s whose [`ErrorCode`] is stable.
//! - Realtime: every transport (SSE, WebSocket, replay) carries the same [`event::Event`]
//!   envelope, `type` + `data` plus where it happened and its `cursor`.
//!
//! Reading an event as it arrives on `GET /api/stream`:
//!
//! ```
//! use skein_shared::event::{Event, EventBody};
//!
//! let data = r#"{
//!     "type": "typing.update",
//!     "data": { "user_id": "01JD3Q7ZK6Y1V8W9X0A2B3C4D5", "typing": true },
//!     "conversation_id": "01JD3Q7ZK6Y1V8W9X0A2B3C4D6",
//!     "occurred_at": "2026-12-03T10:00:00Z"
//! }"#;
//! let event: Event = serde_json::from_str(data)?;
//! assert_eq!(event.body.kind(), "typing.update");
//! match event.body {
//!     EventBody::TypingUpdate(update) => assert!(update.typing),
//!     other => panic!("not typing: {}", other.kind()),
//! }
//! // Live-only events have no cursor; logged ones resume a stream after it.
//! assert!(event.cursor.is_none());
//! # Ok::<(), serde_json::Error>(())
//! ```

pub mod api_key;
pub mod assistant;
pub mod auth;
pub mod conversation;
pub mod error;
pub mod event;
pub mod health;
pub mod ids;
pub mod limits;
pub mod message;
pub mod openai;
pub mod page;
pub mod preferences;
pub mod search;
pub mod thread;
pub mod workspace;

pub use error::{ErrorCode, FieldError, Problem};
pub use ids::{ApiKeyId, AssistantId, ConversationId, MessageId, RateLimitProfileId, UserId, WorkspaceId};
pub use page::{Page, PageInfo};

/// For PATCH fields where `null` means "remove": absent stays `None`, `null` becomes
/// `Some(None)`, a value `Some(Some(v))` (use with `#[serde(default)]`).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
