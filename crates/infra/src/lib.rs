//! Skein's outside systems, on three floors (imports only run down; `cargo xtask modules`
//! checks it):
//!
//! - [`store`]: persistence. The connection pool, migrations, schema and every table's SQL:
//!   the domain's ports on PostgreSQL, the event log, generations. It knows nothing of what
//!   runs above it: it tells an [`store::AfterCommit`] hook after commits and starts answers
//!   through an [`store::AnswerRunner`], both its own traits.
//! - [`realtime`]: the realtime runtime: the hub that tails the log, feeds, the fan-out bus,
//!   typing, presence, live unread counts.
//! - [`answers`]: the answer runtime: providers (async-openai), runners, the flusher, titles.
//!
//! Beside them, leaves every floor may use: [`clock`], [`crypto`], [`provision`].

pub mod answers;
pub mod clock;
pub mod crypto;
pub mod provision;
pub mod realtime;
pub mod store;

pub use store::{PgPool, Store};
