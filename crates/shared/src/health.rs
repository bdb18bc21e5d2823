//! `GET /healthz` and `GET /readyz`.

use serde::{Deserialize, Serialize};

/// Whether the server is alive, or ready for traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    pub status: HealthState,
    /// Why the server is not ready (database unreachable, a migration missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HealthState {
    /// `/healthz`: the process answers.
    Ok,
    /// `/readyz`: the database answers and every migration is applied.
    Ready,
    /// `/readyz`: not ready; see `reason`.
    NotReady,
}
