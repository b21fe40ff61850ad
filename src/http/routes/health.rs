//! `/health/live` and `/health/ready` for orchestrators and load balancers.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::http::state::AppState;

/// How long readiness waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP. Never touches the database, so a
/// database outage does not get healthy instances restarted.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "status": "live" }))
}

/// The database answers and every migration is applied; 503 otherwise, and
/// 200 again as soon as the database is back.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state
        .shutting_down
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({ "status": "unavailable", "reason": "shutting down" }));
    }
    let outcome = tokio::time::timeout(READY_TIMEOUT, state.db.is_ready()).await;
    let reason = match outcome {
        Ok(Ok(true)) => {
            return HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({ "status": "ready" }));
        }
        Ok(Ok(false)) => "migrations pending",
        Ok(Err(error)) => {
            tracing::warn!(error = ?error, "readiness check failed");
            "database unavailable"
        }
        Err(_) => "database did not answer in time",
    };
    HttpResponse::ServiceUnavailable()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::RETRY_AFTER, "5"))
        .json(json!({ "status": "unavailable", "reason": reason }))
}

/// Prometheus metrics (text exposition format). With
/// `server.metrics_listen` set, only that listener answers.
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Some(metrics_addr) = state.metrics_addr
        && req.app_config().local_addr() != metrics_addr
    {
        return HttpResponse::NotFound().finish();
    }
    let (connections, idle) = state.db.pool_state();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(connections, idle))
}
