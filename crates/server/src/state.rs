//! What every handler can reach.

use skein_domain::Services;
use skein_infra::Store;
use skein_infra::realtime::RealtimeConfig;

pub struct AppStateInner {
    pub services: Services<Store>,
    /// How streams behave (keep-alives, allowed origins, stream tokens' lifetime); opening
    /// them, typing and presence go through the services.
    pub streams: RealtimeConfig,
    pub secure_cookies: bool,
    /// The newest migration version; `/readyz` checks it is applied.
    pub expected_migration: String,
    /// The proxy header with the client's address, when behind one.
    pub client_ip_header: Option<actix_web::http::header::HeaderName>,
    /// Largest accepted body, in bytes.
    pub body_limit_bytes: usize,
    /// Each route pattern's methods (`GET, PATCH`), from the OpenAPI document: the `Allow`
    /// header of a 405.
    pub methods: std::collections::HashMap<String, String>,
    /// The streams each user holds open here.
    pub stream_slots: crate::stream_slots::StreamSlots,
}
