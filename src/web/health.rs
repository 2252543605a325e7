//! Operations endpoints: `/healthz` (database reachable) and Prometheus `/metrics`, plus the
//! middleware that counts requests per route.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::session::ClientIp;
use crate::app::AppState;

pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

/// Prometheus text, for loopback clients and the configured allow-list only; anyone else gets
/// a plain 404 (request counts by route are nobody else's business). The client is the one
/// [`ClientIp`] rule, so a request through our proxy is judged by its real client.
pub async fn metrics(State(state): State<AppState>, ClientIp(ip): ClientIp) -> Response {
    if !state.config.metrics_allowed(&ip) {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

/// Counts requests and their duration by route pattern (never by raw path, which holds IDs).
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let labels = [("method", method), ("path", path), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(start.elapsed().as_secs_f64());
    response
}
