//! Sessions recently looked up, so that most requests find their caller without a round
//! trip to PostgreSQL.
//!
//! An entry is trusted for [`FRESH_FOR`] (by the server's clock) after it was read; then the next request reads the
//! session again (which also keeps its idle timer running). A logout removes its entry here
//! at once, and on every other instance through the event bus ([`super::AfterCommit::session_ended`]);
//! should that message be lost, the entry still ages out within [`FRESH_FOR`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use skein_domain::entities::Session;
use time::OffsetDateTime;
use ulid::Ulid;

/// How long a looked-up session is believed without asking PostgreSQL again.
pub const FRESH_FOR: Duration = Duration::from_secs(10);
/// Entries kept at most; past it, stale ones go, and if none are stale, all of them.
const CAPACITY: usize = 100_000;

pub struct SessionCache {
    inner: Mutex<Inner>,
    /// Each ended session's id, for the streams it opened (which end with it).
    ended: tokio::sync::broadcast::Sender<Ulid>,
}

impl Default for SessionCache {
    fn default() -> Self {
        Self { inner: Mutex::default(), ended: tokio::sync::broadcast::channel(1024).0 }
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Vec<u8>, Cached>,
    /// Each cached session's digest, so that a logout finds its entry at once.
    by_id: HashMap<Ulid, Vec<u8>>,
    /// Sessions ended lately: a lookup that read one just before its logout committed must
    /// not cache it afterwards.
    ended: HashMap<Ulid, Instant>,
}

struct Cached {
    session: Session,
    expires_at: OffsetDateTime,
    /// By the server's clock, as expiry is.
    read_at: OffsetDateTime,
}

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session with this token digest, if it was read recently and has not expired.
    pub fn get(&self, digest: &[u8], now: OffsetDateTime) -> Option<Session> {
        let inner = self.lock();
        let cached = inner.entries.get(digest)?;
        (now - cached.read_at < FRESH_FOR && cached.expires_at > now).then(|| cached.session.clone())
    }

    /// Remembers a session read at `now`, unless it has ended since.
    pub fn put(&self, digest: Vec<u8>, session: Session, expires_at: OffsetDateTime, now: OffsetDateTime) {
        let mut inner = self.lock();
        if inner.ended.contains_key(&session.id) {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.entries.retain(|_, c| now - c.read_at < FRESH_FOR);
            if inner.entries.len() >= CAPACITY {
                inner.entries.clear();
            }
            let Inner { entries, by_id, .. } = &mut *inner;
            by_id.retain(|_, digest| entries.contains_key(digest));
        }
        inner.by_id.insert(session.id, digest.clone());
        inner.entries.insert(digest, Cached { session, expires_at, read_at: now });
    }

    /// The session ended (logout): no request may use it from now on, including one whose
    /// lookup is still in flight.
    pub fn forget(&self, session: Ulid) {
        let mut inner = self.lock();
        if let Some(digest) = inner.by_id.remove(&session) {
            inner.entries.remove(&digest);
        }
        // Lookups in flight finish within the pool's wait and a query; a cached entry is
        // trusted for FRESH_FOR at most: remembering the end twice that long covers both.
        inner.ended.retain(|_, at| at.elapsed() < FRESH_FOR * 2);
        inner.ended.insert(session, Instant::now());
        drop(inner);
        // No stream listening is not an error.
        let _ = self.ended.send(session);
    }

    /// Resolves when `session` ends (a logout, a revoked key), here or on another instance.
    pub fn ended(&self, session: Ulid) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut ends = self.ended.subscribe();
        async move {
            loop {
                match ends.recv().await {
                    Ok(id) if id == session => return,
                    // Missed ends (a burst of logouts): the stream's next request finds out.
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        }
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
        let expires_at = OffsetDateTime::now_utc() + time::Duration::hours(1);
        Session { id: Ulid::generate(), user, csrf_token: "csrf".into(), api_key: None, expires_at }
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

        // A lookup that read the session just before its logout cannot cache it after.
        let late = session();
        cache.forget(late.id);
        cache.put(b"late".to_vec(), late, now + time::Duration::hours(1), now);
        assert!(cache.get(b"late", now).is_none());
    }
}
