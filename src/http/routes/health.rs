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
/// `server.metrics_listen` set, only that listener answers. Otherwise the
/// public listener answers only loopback clients and
/// `server.metrics_allowed_addresses`: route names, counts and pool sizes
/// are nobody else's business.
pub async fn metrics(req: actix_web::HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let allowed = match state.metrics_addr {
        Some(metrics_addr) => req.app_config().local_addr() == metrics_addr,
        None => may_scrape(&req, &state.settings.server),
    };
    if !allowed {
        return HttpResponse::NotFound().finish();
    }
    let (connections, idle) = state.db.pool_state();
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/plain; version=0.0.4"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render(connections, idle))
}

/// Whether this request on the public listener may read `/metrics`: the
/// client (as trusted proxies report it) is on loopback or listed. A request
/// carrying forwarding headers from a peer that is not a trusted proxy came
/// through some proxy tessera was not told about: its peer address says
/// nothing about the client, so it is refused.
fn may_scrape(req: &actix_web::HttpRequest, server: &crate::config::ServerSettings) -> bool {
    let Some(peer) = req.peer_addr().map(|addr| addr.ip()) else {
        return false;
    };
    let trusted = server.trusted_proxies.contains(&peer);
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| req.headers().contains_key(*name));
    if forwarded && !trusted {
        return false;
    }
    let client = if trusted {
        crate::http::browser::client_ip(req, &server.trusted_proxies)
            .parse::<std::net::IpAddr>()
            .ok()
    } else {
        Some(peer)
    };
    client.is_some_and(|ip| ip.is_loopback() || server.metrics_allowed_addresses.contains(&ip))
}
