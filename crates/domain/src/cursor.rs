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
        let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad())?;
        // Nothing stored is dated outside these years, and PostgreSQL cannot compare with
        // times before 4713 BC: such a cursor was not issued here.
        if !(1..=9999).contains(&at.year()) {
            return Err(bad());
        }
        Ok(Self { at, id: Ulid::from_string(id).map_err(|_| bad())? })
    }
}

/// A hit's place in a search's order: its rank (0 when sorted by newest), then its id, both
/// descending, and the ceiling of the search's first page (the newest id it could see), which
/// keeps the messages ranked the same from page to page. The rank travels as its bits, so the
/// next page compares it exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchPosition {
    pub rank: f32,
    pub id: Ulid,
    pub ceiling: Ulid,
}

impl SearchPosition {
    pub fn encode(&self) -> String {
        format!("{:08x}.{}.{}", self.rank.to_bits(), self.id, self.ceiling)
    }

    pub fn decode(raw: &str) -> DomainResult<Self> {
        let bad = || DomainError::field("cursor", "invalid", "not a cursor from this list");
        let mut parts = raw.split('.');
        let (Some(bits), Some(id), Some(ceiling), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let rank = f32::from_bits(u32::from_str_radix(bits, 16).map_err(|_| bad())?);
        if !rank.is_finite() {
            return Err(bad());
        }
        let ulid = |raw: &str| Ulid::from_string(raw).map_err(|_| bad());
        Ok(Self { rank, id: ulid(id)?, ceiling: ulid(ceiling)? })
    }
}

/// A keyset position in a list ordered by id ascending.
pub fn decode_id_cursor(raw: &str) -> DomainResult<Ulid> {
    Ulid::from_string(raw).map_err(|_| DomainError::field("cursor", "invalid", "not a cursor from this list"))
}

/// A position in the event log: the writing transaction's id, then the event's id. Log order
/// is this order. Sent to clients as `"<tx>-<id>"` (the SSE `id:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventCursor {
    pub tx: i64,
    pub id: i64,
}

impl EventCursor {
    pub fn encode(&self) -> String {
        format!("{}-{}", self.tx, self.id)
    }

    /// `None` for anything this server could not have issued.
    pub fn decode(raw: &str) -> Option<Self> {
        let (tx, id) = raw.trim().split_once('-')?;
        let cursor = Self { tx: tx.parse().ok()?, id: id.parse().ok()? };
        (cursor.tx >= 0 && cursor.id >= 0).then_some(cursor)
    }
}

/// In its client form (`"<tx>-<id>"`), as it travels between instances.
impl serde::Serialize for EventCursor {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.encode())
    }
}

impl<'de> serde::Deserialize<'de> for EventCursor {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::decode(&raw).ok_or_else(|| serde::de::Error::custom("not an event cursor"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_cursors_outside_storable_years_are_refused() {
        let id = Ulid::generate();
        let far_past = OffsetDateTime::from_unix_timestamp(-300_000_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        assert!(far_past.year() < 0);
        let encoded = TimeCursor { at: far_past, id }.encode();
        assert!(TimeCursor::decode(&encoded).is_err());
        let now = TimeCursor { at: OffsetDateTime::UNIX_EPOCH, id };
        assert_eq!(TimeCursor::decode(&now.encode()).ok(), Some(now));
    }

    #[test]
    fn search_positions_round_trip_exactly() {
        for rank in [0.0_f32, 0.1, 1.0 / 3.0, 7.5e-8] {
            let p = SearchPosition {
                rank,
                id: Ulid::from_parts(1_700_000_000_000, 42),
                ceiling: Ulid::from_parts(1_700_000_000_001, 7),
            };
            assert_eq!(SearchPosition::decode(&p.encode()).ok(), Some(p));
        }
        assert!(SearchPosition::decode("7fc00000.01ARZ3NDEKTSV4RRFFQ69G5FAV.01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err());
        assert!(SearchPosition::decode("00000000.01ARZ3NDEKTSV4RRFFQ69G5FAV").is_err(), "no ceiling");
        assert!(SearchPosition::decode("nope").is_err());
    }

    #[test]
    fn time_cursor_round_trips() {
        let c = TimeCursor {
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            id: Ulid::generate(),
        };
        assert_eq!(TimeCursor::decode(&c.encode()).ok(), Some(c));
    }

    #[test]
    fn event_cursor_round_trips_and_orders_by_transaction_first() {
        let a = EventCursor { tx: 10, id: 99 };
        let b = EventCursor { tx: 11, id: 1 };
        assert!(a < b);
        assert_eq!(EventCursor::decode(&a.encode()), Some(a));
        for bad in ["", "10", "x-1", "1-", "-1-2", "1-2-3"] {
            assert_eq!(EventCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn event_cursor_travels_in_its_client_form() {
        let c = EventCursor { tx: 10, id: 99 };
        assert_eq!(serde_json::to_string(&c).ok().as_deref(), Some("\"10-99\""));
        assert_eq!(serde_json::from_str::<EventCursor>("\"10-99\"").ok(), Some(c));
        for bad in ["\"10\"", "\"x-1\"", "10"] {
            assert!(serde_json::from_str::<EventCursor>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn garbage_cursor_is_a_validation_error() {
        assert!(matches!(TimeCursor::decode("nope"), Err(DomainError::Validation(_))));
        assert!(matches!(TimeCursor::decode("12.notaulid"), Err(DomainError::Validation(_))));
    }
}
