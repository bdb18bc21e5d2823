//! Sessions recently looked up, so that most requests find their caller without a round
//! trip to PostgreSQL.
//!
//! An entry is trusted for [`FRESH_FOR`] (by the server's clock) after it was read; then the next request reads the
//! session again (which also keeps its idle timer running). A logout removes its entry here
//! at once, and on every other instance through the event bus ([`super::AfterCommit::session_ended`]);
//! should that message be lost, the entry still ages out within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use skein_domain::entities::Session;
use time::OffsetDateTime;
use ulid::Ulid;

/// How long a looked-up session is believed without asking PostgreSQL again.
pub const FRESH_FOR: Duration = Duration::from_secs(10);
/// Entries kept at most; past it, stale ones go, and if none are stale, all of them.
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<Vec<u8>, Cached>>,
}

struct Cached {
    session: Session,
    expires_at: OffsetDateTime,
    /// By the server's clock, as expiry is.
    read_at: OffsetDateTime,
}

impl SessionCache {
    /// The session with this token digest, if it was read recently and has not expired.
    pub fn get(&self, digest: &[u8], now: OffsetDateTime) -> Option<Session> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries.get(digest)?;
        (now - cached.read_at < FRESH_FOR && cached.expires_at > now).then(|| cached.session.clone())
    }

    /// Remembers a session read at `now`.
    pub fn put(&self, digest: Vec<u8>, session: Session, expires_at: OffsetDateTime, now: OffsetDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.retain(|_, c| now - c.read_at < FRESH_FOR);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(digest, Cached { session, expires_at, read_at: now });
    }

    /// The session ended (logout): no request may use it from now on.
    pub fn forget(&self, session: Ulid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, c| c.session.id != session);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use skein_shared::UserId;
    use skein_shared::auth::User;

    use super::*;

    fn session() -> Session {
        let user = User {
            id: UserId(Ulid::generate()),
            email: "a@example.com".into(),
            display_name: "A".into(),
            is_instance_admin: false,
            created_at: OffsetDateTime::now_utc(),
        };
        Session { id: Ulid::generate(), user, csrf_token: "csrf".into() }
    }

    #[test]
    fn a_forgotten_or_expired_session_is_not_served() {
        let cache = SessionCache::default();
        let now = OffsetDateTime::now_utc();
        let (kept, ended, expired) = (session(), session(), session());
        cache.put(b"kept".to_vec(), kept.clone(), now + time::Duration::hours(1), now);
        cache.put(b"ended".to_vec(), ended.clone(), now + time::Duration::hours(1), now);
        cache.put(b"expired".to_vec(), expired, now + time::Duration::seconds(1), now);
        cache.forget(ended.id);
        assert_eq!(cache.get(b"kept", now).map(|s| s.id), Some(kept.id));
        assert!(cache.get(b"ended", now).is_none());
        assert!(cache.get(b"expired", now + time::Duration::seconds(2)).is_none());
        assert!(cache.get(b"unknown", now).is_none());
        assert!(cache.get(b"kept", now + FRESH_FOR).is_none(), "read again once stale");
    }
}
