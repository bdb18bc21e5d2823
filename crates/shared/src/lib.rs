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
pub mod ids;
pub mod page;
pub mod thread;
pub mod workspace;

pub use error::{ErrorCode, FieldError, Problem};
pub use ids::{AssistantId, ConversationId, MessageId, UserId, WorkspaceId};
pub use page::{Page, PageInfo};
