//! Skein's rules: who may see and do what, what valid input looks like, and how threads form
//! trees. Persistence and crypto are reached only through the traits in [`ports`]; this crate
//! knows nothing of SQL or HTTP.

pub mod catalog;
pub mod context;
pub mod cursor;
pub mod entities;
pub mod error;
pub mod limits;
pub mod mentions;
pub mod ports;
pub mod rate;
pub mod roles;
pub mod search;
pub mod services;
pub mod validate;

pub use error::{DomainError, DomainResult};
pub use limits::{AuthPolicy, Limits, RatePolicy};
pub use services::Services;
