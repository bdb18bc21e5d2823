//! Opaque list cursors. Clients must not parse them; the format may change.

use time::OffsetDateTime;
use ulid::Ulid;

use crate::{DomainError, DomainResult};

/// A keyset position in a list ordered by (time descending, id descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeCursor {
    pub at: OffsetDateTime,
    pub id: Ulid,
}

impl TimeCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at.unix_timestamp_nanos(), self.id)
    }

    pub fn decode(raw: &str) -> DomainResult<Self> {
        let bad = || DomainError::field("cursor", "invalid", "not a cursor from this list");
        let (nanos, id) = raw.split_once('.').ok_or_else(bad)?;
        let nanos: i128 = nanos.parse().map_err(|_| bad())?;
        Ok(Self {
            at: OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?,
            id: Ulid::from_string(id).map_err(|_| bad())?,
        })
    }
}

/// A keyset position in a list ordered by id ascending.
pub fn decode_id_cursor(raw: &str) -> DomainResult<Ulid> {
    Ulid::from_string(raw).map_err(|_| DomainError::field("cursor", "invalid", "not a cursor from this list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cursor_round_trips() {
        let c = TimeCursor {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            id: Ulid::generate(),
        };
        assert_eq!(TimeCursor::decode(&c.encode()).ok(), Some(c));
    }

    #[test]
    fn garbage_cursor_is_a_validation_error() {
        assert!(matches!(TimeCursor::decode("nope"), Err(DomainError::Validation(_))));
        assert!(matches!(TimeCursor::decode("12.notaulid"), Err(DomainError::Validation(_))));
    }
}
