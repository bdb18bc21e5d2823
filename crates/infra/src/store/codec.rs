//! Conversions between wire values and column values.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use skein_domain::DomainError;
use uuid::Uuid;

/// A snake_case enum as stored in a `text` column (the same spelling as on the wire).
pub fn enum_to_db<T: Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Reads a `text` column back into its enum; an unknown value is a corrupt row.
pub fn enum_from_db<T: DeserializeOwned>(raw: &str) -> Result<T, DomainError> {
    serde_json::from_value(serde_json::Value::String(raw.to_owned()))
        .map_err(|_| DomainError::Internal(format!("unexpected stored value {raw:?}")))
}

pub fn uuid<T: Into<ulid::Ulid>>(id: T) -> Uuid {
    Uuid::from(id.into())
}

pub fn ulid(id: Uuid) -> ulid::Ulid {
    ulid::Ulid::from(id)
}

/// The constraint a unique violation broke, if that is what the error is.
pub fn unique_violation(err: &DieselError) -> Option<&str> {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            Some(info.constraint_name().unwrap_or_default())
        }
        _ => None,
    }
}

pub fn foreign_key_violation(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _))
}
