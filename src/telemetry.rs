//! Logging and metrics set-up.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `work` (a request's handling) with its request id at hand for [`request_id`].
pub async fn with_request_id<F: std::future::Future>(id: String, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// `work` with the current request's id, if any: for a task a request spawns (its id is
/// per task, and a spawned task starts without it).
pub fn keeping_request_id<F: std::future::Future>(work: F) -> impl std::future::Future<Output = F::Output> {
    let id = request_id();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, work).await,
            None => work.await,
        }
    }
}

/// The id of the request being handled (`web::RequestId`), where there is one: what a request
/// asks of a job (an import run, a push to Yahoo) records it, so the job's page and log lines
/// show the 受付番号 the merchant saw. `None` in jobs and outside requests.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Structured logs to stdout; `RUST_LOG` overrides the default level.
pub fn init_tracing(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => registry.with(fmt::layer().json().with_current_span(true)).init(),
        LogFormat::Pretty => registry.with(fmt::layer()).init(),
    }
}

/// The Prometheus recorder. The `metrics` facade is process-global by design, so the recorder is
/// installed once per process and every application built in it (tests build many) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; the handle still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Logs a job's trouble with the database once when it starts and once when it ends, with how
/// many attempts failed in between: an outage of 25 s wrote ~400 WARN lines when every tick and
/// every health probe logged its own (issue 27). Each job loop owns one.
#[derive(Debug)]
pub struct OutageLog {
    job: &'static str,
    since: Option<std::time::Instant>,
    failures: u64,
}

impl OutageLog {
    pub fn new(job: &'static str) -> OutageLog {
        OutageLog { job, since: None, failures: 0 }
    }

    /// An attempt failed: logged (WARN) if it is the first of a series, counted otherwise.
    pub fn failed(&mut self, error: &dyn std::fmt::Display) {
        self.failures += 1;
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            tracing::warn!(job = self.job, error = %error, "started failing (logged again when it works)");
        } else {
            tracing::debug!(job = self.job, error = %error, failures = self.failures, "still failing");
        }
    }

    /// An attempt worked: ends a series of failures with one line.
    pub fn worked(&mut self) {
        if let Some(since) = self.since.take() {
            tracing::info!(job = self.job, failures = self.failures, secs = since.elapsed().as_secs(), "works again");
            self.failures = 0;
        }
    }

    /// Whether the last attempt failed.
    pub fn failing(&self) -> bool {
        self.since.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::OutageLog;

    #[test]
    fn an_outage_is_one_start_and_one_end() {
        let mut log = OutageLog::new("test");
        assert!(!log.failing());
        for _ in 0..100 {
            log.failed(&"down");
        }
        assert!(log.failing() && log.failures == 100);
        log.worked();
        assert!(!log.failing() && log.failures == 0);
        log.worked();
    }
}
