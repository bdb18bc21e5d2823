//! Accounts and sessions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::UserId;

/// `POST /api/auth/register`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    pub email: String,
    /// At least 8 characters, not a well-known password.
    pub password: String,
    pub display_name: String,
}

/// `POST /api/auth/login`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// A user as others see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    /// The first account on an instance administers it.
    pub is_instance_admin: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// A new session: the token is shown once and stored only as a hash.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthResponse {
    pub user: User,
    /// Send as `Authorization: Bearer <token>` (it is also set as an HttpOnly cookie).
    pub token: String,
    /// Absolute expiry; an idle session expires earlier.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    /// Echo in the `X-CSRF-Token` header on cookie-authenticated writes.
    pub csrf_token: String,
}
