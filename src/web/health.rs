//! Operations endpoints: `/healthz` (the database takes a write) and Prometheus `/metrics`, plus the
//! middleware that counts requests per route.

use std::time::{Duration, Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::session::ClientIp;
use crate::app::AppState;

/// 200 `ok` when the database takes a write now (one committed row, the write lock within two
/// seconds) and, on SQLite, its folder has room; 503 with the reason otherwise. One probe at a
/// time, its answer reused for a second (anyone may ask, as often as they like); the cause is
/// logged once when trouble starts and once when it ends (`telemetry::OutageLog`).
pub async fn healthz(State(state): State<AppState>) -> Response {
    let mut last = state.health.lock().await;
    let fresh = last.as_ref().is_some_and(|(at, _)| at.elapsed() < Duration::from_secs(1));
    if !fresh {
        let (problem, detail) = match tokio::time::timeout(Duration::from_secs(5), state.db.write_probe()).await {
            Err(_) => (Some("database write timed out"), "the write probe took over 5 s".to_owned()),
            Ok(Err(e)) => (Some("database cannot take a write"), e.to_string()),
            Ok(Ok(())) => match low_disk(&state) {
                Some(detail) => (Some("data folder nearly full"), detail),
                None => (None, String::new()),
            },
        };
        let mut log = state.health_log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match problem {
            None => log.worked(),
            Some(why) => log.failed(&format!("{why}: {detail}")),
        }
        *last = Some((Instant::now(), problem));
    }
    match last.as_ref().and_then(|(_, p)| *p) {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// When `/healthz` last probed, and what was wrong (`None`: nothing).
pub type Probe = (Instant, Option<&'static str>);

/// Below this much free space in the SQLite file's folder, writes are about to fail.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

/// The SQLite folder's free space, when it is (nearly) gone.
fn low_disk(state: &AppState) -> Option<String> {
    let folder = state.db.sqlite_folder()?;
    let stat = rustix::fs::statvfs(&folder).ok()?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    (free < MIN_FREE_BYTES).then(|| format!("{} has {} KiB free", folder.display(), free / 1024))
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
