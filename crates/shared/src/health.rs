//! `GET /healthz` and `GET /readyz`.

use serde::{Deserialize, Serialize};

/// Whether the server is alive, or ready for traffic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthStatus {
    /// Only that: why a server is not ready goes to its log, not to whoever asks.
    pub status: HealthState,
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
