//! What every handler can reach.

use skein_domain::Services;
use skein_infra::Store;
use skein_infra::answers::Llm;
use skein_infra::realtime::Realtime;

pub struct AppStateInner {
    pub services: Services<Store>,
    /// Streams, typing and presence.
    pub realtime: Realtime,
    /// Running assistant answers (for following one generation's stream).
    pub llm: Llm,
    pub secure_cookies: bool,
    /// The newest migration version; `/readyz` checks it is applied.
    pub expected_migration: String,
}
