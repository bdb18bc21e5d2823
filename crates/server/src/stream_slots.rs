//! How many streams each user holds open on this instance: a stream takes a slot for as long
//! as it lives, and a user past `realtime.max_streams_per_user` is refused (429) rather than
//! let hold connections (and replays) without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use skein_shared::{ErrorCode, UserId};

use crate::error::ApiError;

#[derive(Debug, Default)]
pub struct StreamSlots {
    max: u32,
    open: Arc<Mutex<HashMap<UserId, u32>>>,
}

/// An open stream's slot, given back when dropped (with the stream).
#[derive(Debug)]
pub struct StreamSlot {
    user: UserId,
    open: Arc<Mutex<HashMap<UserId, u32>>>,
}

impl StreamSlots {
    /// `max == 0`: no limit.
    pub fn new(max: u32) -> Self {
        Self { max, open: Arc::default() }
    }

    pub fn take(&self, user: UserId) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(user).or_insert(0);
        if self.max > 0 && *held >= self.max {
            return Err(ApiError::new(ErrorCode::RateLimited, "Too many open streams")
                .with_detail(format!("a user may hold {} streams open at once; close one first", self.max))
                .retry_after(5));
        }
        *held += 1;
        Ok(StreamSlot { user, open: self.open.clone() })
    }

    /// Streams the user holds open now.
    pub fn held(&self, user: UserId) -> u32 {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(&user).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_user_and_given_back_on_drop() {
        let slots = StreamSlots::new(2);
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let first = slots.take(ann).unwrap();
        let _second = slots.take(ann).unwrap();
        assert!(slots.take(ann).is_err());
        assert!(slots.take(bob).is_ok());
        drop(first);
        assert_eq!(slots.held(ann), 1);
        assert!(slots.take(ann).is_ok());
        assert!(StreamSlots::new(0).take(ann).is_ok());
    }
}
