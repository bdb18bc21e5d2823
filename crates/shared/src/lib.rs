//! Skein's wire types: what travels between the server and its clients.
//!
//! This crate is deliberately light (serde, time, ulid only) so that any Rust program can
//! speak Skein's API without pulling in a web framework, a database driver or a runtime.
//! OpenAPI schemas are derived only with the `openapi` feature.

pub mod assistant;
pub mod auth;
pub mod conversation;
pub mod error;
pub mod event;
pub mod health;
pub mod ids;
pub mod message;
pub mod page;
pub mod preferences;
pub mod search;
pub mod thread;
pub mod workspace;

pub use error::{ErrorCode, FieldError, Problem};
pub use ids::{AssistantId, ConversationId, MessageId, UserId, WorkspaceId};
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
