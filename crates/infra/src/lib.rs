//! Skein's outside systems: the PostgreSQL store (diesel-async) behind the domain's ports,
//! embedded migrations, password hashing, and finding or starting a PostgreSQL server.

pub mod clock;
pub mod codec;
pub mod crypto;
pub mod db;
pub mod events;
pub mod llm;
pub mod presence;
pub mod provision;
mod repo;
mod rows;
pub mod schema;

pub use db::{PgPool, Store};
