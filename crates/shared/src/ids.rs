//! Typed identifiers. Every id is a ULID (time-ordered), sent as its 26-character string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// ULIDs made in the same millisecond are random in their low bits; a shared generator keeps
/// one process's ids strictly increasing, so "oldest first" (e.g. sibling replies) is id order.
fn monotonic_ulid() -> Ulid {
    use std::sync::Mutex;
    static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match generator.generate() {
        Ok(id) => id,
        // 2^80 ids in one millisecond: fall back to a fresh random id.
        Err(_) => Ulid::generate(),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-7][0-9A-HJKMNP-TV-Z]{25}$", example = "01JD3Q7ZK6Y1V8W9X0A2B3C4D5"))]
        pub struct $name(pub Ulid);

        impl $name {
            /// A new id for the current time, greater than every id this process made before.
            pub fn generate() -> Self {
                Self(monotonic_ulid())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ulid::DecodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ulid::from_string(s).map(Self)
            }
        }

        impl From<$name> for Ulid {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl From<Ulid> for $name {
            fn from(value: Ulid) -> Self {
                Self(value)
            }
        }
    };
}

id_type!(
    /// A person with a login.
    UserId
);
id_type!(
    /// A workspace (the tenant).
    WorkspaceId
);
id_type!(
    /// A conversation inside a workspace.
    ConversationId
);
id_type!(
    /// A message; a thread is identified by its root message's id.
    MessageId
);
id_type!(
    /// An AI assistant of a workspace.
    AssistantId
);
id_type!(
    /// A workspace's API key (a service's credential).
    ApiKeyId
);
id_type!(
    /// A rate-limit profile (instance administration).
    RateLimitProfileId
);
