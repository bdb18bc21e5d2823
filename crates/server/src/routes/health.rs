use actix_web::{HttpResponse, get};
use skein_shared::health::{HealthState, HealthStatus};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(check_health).service(check_readiness);
}

/// Liveness: the process answers. Does not touch the database.
#[utoipa::path(tag = "health", security(()), responses((status = 200, description = "Alive", body = HealthStatus)))]
#[get("/healthz")]
async fn check_health() -> HttpResponse {
    HttpResponse::Ok().json(HealthStatus { status: HealthState::Ok })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(tag = "health", security(()), responses(
    (status = 200, description = "Ready", body = HealthStatus),
    (status = 503, description = "Not ready: database unreachable or migrations missing", body = HealthStatus),
))]
#[get("/readyz")]
async fn check_readiness(state: AppState) -> HttpResponse {
    match skein_infra::store::is_ready(state.services.ports().pool(), &state.expected_migration).await {
        Ok(()) => HttpResponse::Ok().json(HealthStatus { status: HealthState::Ready }),
        Err(reason) => {
            // The database's own words (addresses, user names) are for the operator's log only.
            tracing::warn!(%reason, "not ready");
            HttpResponse::ServiceUnavailable().json(HealthStatus { status: HealthState::NotReady })
        }
    }
}
