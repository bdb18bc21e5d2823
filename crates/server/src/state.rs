//! What every handler can reach.

use skein_domain::Services;
use skein_infra::Store;
use skein_infra::realtime::Realtime;

pub struct AppStateInner {
    pub services: Services<Store>,
    /// Opening streams (and their settings); typing and presence go through the services.
    pub realtime: Realtime,
    pub secure_cookies: bool,
    /// The newest migration version; `/readyz` checks it is applied.
    pub expected_migration: String,
}
