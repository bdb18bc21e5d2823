//! The domain's ports implemented on PostgreSQL, one file per concern.

mod accounts;
mod admin;
mod api_keys;
mod append;
mod assistants;
mod changes;
mod conversations;
mod follow;
mod generations;
mod live;
mod messages;
mod preferences;
pub(crate) mod proxies;
pub(crate) mod rate_limits;
pub(crate) mod read_state;
mod search;
mod standing;
mod workspaces;

use diesel::result::Error as DieselError;
use skein_domain::DomainError;
use skein_domain::ports::Credentials;

use crate::crypto;
use crate::store::{Store, db_error};

/// What a transaction body can fail with: a database error (which rolls back and may be
/// inspected, e.g. for unique violations) or a domain rule.
pub(crate) enum TxError {
    Db(DieselError),
    Domain(DomainError),
}

impl From<DieselError> for TxError {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

impl From<DomainError> for TxError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl From<TxError> for DomainError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Db(e) => db_error(e),
            TxError::Domain(e) => e,
        }
    }
}

impl skein_domain::ports::Clock for Store {
    fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }
}

impl Credentials for Store {
    async fn hash_password(&self, password: String) -> Result<String, DomainError> {
        self.hasher.hash(password).await
    }

    async fn verify_password(&self, password: String, hash: Option<String>) -> Result<bool, DomainError> {
        self.hasher.verify(password, hash).await
    }

    fn new_secret(&self) -> String {
        crypto::new_secret()
    }

    fn digest(&self, secret: &str) -> Vec<u8> {
        crypto::digest(secret)
    }
}
