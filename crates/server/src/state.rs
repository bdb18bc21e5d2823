//! What every handler can reach.

use skein_domain::Services;
use skein_infra::Store;

pub struct AppStateInner {
    pub services: Services<Store>,
    pub secure_cookies: bool,
    /// The newest migration version; `/readyz` checks it is applied.
    pub expected_migration: String,
}
