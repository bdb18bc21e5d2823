use actix_web::{HttpResponse, get};
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(check_health).service(check_readiness);
}

/// Liveness: the process answers. Does not touch the database.
#[utoipa::path(tag = "health", security(()), responses((status = 200, description = "Alive")))]
#[get("/healthz")]
async fn check_health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(tag = "health", security(()), responses(
    (status = 200, description = "Ready"),
    (status = 503, description = "Not ready: database unreachable or migrations missing"),
))]
#[get("/readyz")]
async fn check_readiness(state: AppState) -> HttpResponse {
    match skein_infra::store::is_ready(state.services.ports().pool(), &state.expected_migration).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(reason) => HttpResponse::ServiceUnavailable().json(json!({ "status": "not_ready", "reason": reason })),
    }
}
