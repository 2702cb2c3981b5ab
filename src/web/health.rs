//! Probes for orchestrators and load balancers: `/healthz` says the process answers, `/readyz`
//! that it can do its work (database reachable, schema at this binary's version).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db;
use crate::web::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let backend = state.settings.database_url.backend_name();
    let check = tokio::task::spawn_blocking(move || -> Result<bool, String> {
        // A short wait: a probe must answer quickly, and an exhausted pool is not ready either.
        let mut conn = pool
            .get_timeout(Duration::from_secs(2))
            .map_err(|e| format!("database unreachable: {e}"))?;
        db::migrations_current(&mut conn).map_err(|e| e.to_string())
    })
    .await;
    match check {
        Ok(Ok(true)) => HttpResponse::Ok().json(json!({
            "status": "ready", "database": backend, "migrations": "current",
        })),
        Ok(Ok(false)) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready", "database": backend, "reason": "migrations-pending",
            "message": "the database schema is older than this binary; run `edl migrate`",
        })),
        Ok(Err(message)) => {
            tracing::warn!(%message, "Readiness check failed.");
            HttpResponse::ServiceUnavailable().json(json!({
                "status": "not ready", "database": backend, "reason": "database-unreachable",
                "message": message,
            }))
        }
        Err(join_error) => HttpResponse::ServiceUnavailable().json(json!({
            "status": "not ready", "reason": "check-failed", "message": join_error.to_string(),
        })),
    }
}
