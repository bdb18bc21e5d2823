//! A member's own settings for one conversation: starred, muted, how they are notified.
//! Nobody else sees them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What the member wants to be notified of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    /// Every message (the default).
    #[default]
    All,
    /// Only messages that mention them, `@channel` or `@here` (not in direct conversations).
    Mentions,
    None,
}

/// Until when a conversation is muted: a time, or until the member unmutes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MuteUntil {
    /// `"forever"` on the wire.
    Forever,
    /// An RFC 3339 time on the wire.
    At(OffsetDateTime),
}

impl MuteUntil {
    pub const FOREVER: &'static str = "forever";

    pub fn mutes_at(self, now: OffsetDateTime) -> bool {
        match self {
            Self::Forever => true,
            Self::At(until) => until > now,
        }
    }
}

impl Serialize for MuteUntil {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Forever => serializer.serialize_str(Self::FOREVER),
            Self::At(at) => time::serde::rfc3339::serialize(at, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for MuteUntil {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        if raw == Self::FOREVER {
            return Ok(Self::Forever);
        }
        OffsetDateTime::parse(&raw, &Rfc3339)
            .map(Self::At)
            .map_err(|_| serde::de::Error::custom("expected an RFC 3339 time or \"forever\""))
    }
}

/// The caller's preferences for a conversation (`preferences` on every conversation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberPreferences {
    pub starred: bool,
    /// When the mute ends: an RFC 3339 time, `"forever"` (until unmuted), or `null` (never muted
    /// or unmuted).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "forever"))]
    pub mute_until: Option<MuteUntil>,
    /// Whether the conversation is muted now (`mute_until` is `"forever"` or still ahead).
    pub muted: bool,
    pub notify_level: NotifyLevel,
}

impl MemberPreferences {
    pub fn new(starred: bool, mute_until: Option<MuteUntil>, notify_level: NotifyLevel, now: OffsetDateTime) -> Self {
        let muted = mute_until.is_some_and(|m| m.mutes_at(now));
        Self { starred, mute_until, muted, notify_level }
    }
}

/// `PUT /api/conversations/{id}/preferences`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdatePreferencesRequest {
    #[serde(default)]
    pub starred: Option<bool>,
    /// An RFC 3339 time ahead, `"forever"` (until unmuted), or `null` to unmute.
    #[serde(default, deserialize_with = "crate::double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "2026-12-24T18:00:00Z"))]
    pub mute_until: Option<Option<MuteUntil>>,
    /// `mentions` is not offered in direct conversations.
    #[serde(default)]
    pub notify_level: Option<NotifyLevel>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mute_until_is_a_time_or_forever() {
        let forever: MuteUntil = serde_json::from_str("\"forever\"").unwrap();
        assert_eq!(forever, MuteUntil::Forever);
        let at: MuteUntil = serde_json::from_str("\"2026-12-24T18:00:00Z\"").unwrap();
        assert_eq!(serde_json::to_string(&at).unwrap(), "\"2026-12-24T18:00:00Z\"");
        assert!(serde_json::from_str::<MuteUntil>("\"tomorrow\"").is_err());
        let req: UpdatePreferencesRequest = serde_json::from_str(r#"{"mute_until": null}"#).unwrap();
        assert_eq!(req.mute_until, Some(None));
        let req: UpdatePreferencesRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(req.mute_until, None);
    }
}
