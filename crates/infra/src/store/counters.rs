//! Small in-process state the store keeps beside the database (a leaf: it imports nothing of
//! the store).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use skein_shared::UserId;

/// Running proxied completions per user on this instance.
#[derive(Debug, Default)]
pub struct ProxyCounts(Mutex<HashMap<UserId, u32>>);

impl ProxyCounts {
    pub(crate) fn count(&self, user: UserId) -> u32 {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(&user).copied().unwrap_or(0)
    }

    pub(crate) fn add(&self, user: UserId, by: i64) {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(user).or_insert(0);
        *n = if by > 0 { n.saturating_add(1) } else { n.saturating_sub(1) };
        if *n == 0 {
            counts.remove(&user);
        }
    }
}

/// A yes/no read from the database, trusted for a second.
#[derive(Debug, Default)]
pub(crate) struct RecentFlag(std::sync::Mutex<Option<(std::time::Instant, bool)>>);

impl RecentFlag {
    const FOR: std::time::Duration = std::time::Duration::from_secs(1);

    pub(crate) fn fresh(&self) -> Option<bool> {
        let known = *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        known.filter(|(at, _)| at.elapsed() < Self::FOR).map(|(_, value)| value)
    }

    /// Read again next time (after a change made here).
    pub(crate) fn forget(&self) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(crate) fn remember(&self, value: bool) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((std::time::Instant::now(), value));
    }
}
