//! The scheduler inside every `serve` process: each tick it takes queued manual runs and due
//! stores whose lease it can win, and runs them on a bounded number of workers. Several
//! processes on one PostgreSQL split the work through the leases; a process that dies leaves
//! leases that expire and are taken over, and runs that are marked abandoned.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Importer, Job};
use crate::{
    db::{self, imports},
    domain::StoreId,
};

pub struct Scheduler {
    importer: Arc<Importer>,
    /// How long a tick waits for a busy worker to finish while due work is left.
    tick: Duration,
    workers: usize,
    running: JoinSet<StoreId>,
    busy: HashSet<StoreId>,
    last_sweep: Option<std::time::Instant>,
    last_rows: Option<std::time::Instant>,
}

/// How often stores that just got automatic import get their import row (it reads every store).
const ROWS_EVERY: Duration = Duration::from_secs(5);

/// While due work is left and every worker is busy, how long a tick lets runs finish before it
/// starts more: one pass for the runs that ended meanwhile, not one per run (a pass reads the
/// due stores; `bench fleet` at 10,000 stores spent most of PostgreSQL's CPU on them).
const REFILL_WAIT: Duration = Duration::from_millis(100);

impl Scheduler {
    pub fn new(importer: Arc<Importer>, tick: Duration, workers: usize) -> Scheduler {
        Scheduler {
            importer,
            tick,
            workers: workers.max(1),
            running: JoinSet::new(),
            busy: HashSet::new(),
            last_sweep: None,
            last_rows: None,
        }
    }

    /// Marks runs of a process that stopped (no heartbeat for twice the lease) abandoned, once
    /// per lease time.
    async fn sweep(&mut self) -> sqlx::Result<()> {
        let ttl = self.importer.settings.lease_ttl;
        if self.last_sweep.is_some_and(|t| t.elapsed() < ttl) {
            return Ok(());
        }
        self.last_sweep = Some(std::time::Instant::now());
        let now = db::now();
        let stale = now - chrono::Duration::from_std(ttl * 2).unwrap_or_default();
        let n = imports::abandon_stale(self.importer.db(), stale, now).await?;
        if n > 0 {
            tracing::info!(runs = n, "import runs of a stopped process marked abandoned");
        }
        Ok(())
    }

    fn reap(&mut self, done: Result<StoreId, tokio::task::JoinError>) {
        if let Ok(store) = done {
            self.busy.remove(&store);
        }
    }
}

impl crate::jobs::Job for Scheduler {
    const NAME: &'static str = "import scheduler";

    /// Starts what is due on the free workers. While due work is left and every worker is busy,
    /// it waits for one to finish (up to a tick) and starts more, so a backlog is worked off at
    /// the workers' pace, not at one tick's worth of runs per tick.
    async fn tick(&mut self) -> Result<(), String> {
        self.sweep().await.map_err(|e| format!("sweeping stale import runs: {e}"))?;
        if self.last_rows.is_none_or(|t| t.elapsed() >= ROWS_EVERY) {
            self.last_rows = Some(std::time::Instant::now());
            imports::ensure_rows(self.importer.db(), db::now())
                .await
                .map_err(|e| format!("giving stores their import row: {e}"))?;
        }
        // Calls made outside imports (pages, pushes, stock) reach today's count within a tick.
        self.importer.flush_calls().await;
        loop {
            while let Some(done) = self.running.try_join_next() {
                self.reap(done);
            }
            let started = self.pass().await.map_err(|e| format!("reading its work: {e}"))?;
            if started == 0 || self.running.len() < self.workers {
                return Ok(());
            }
            // Every worker busy and due work left: let some runs end (up to a tick), then one
            // pass for all of them.
            match tokio::time::timeout(self.tick, self.running.join_next()).await {
                Ok(Some(done)) => self.reap(done),
                Ok(None) | Err(_) => return Ok(()),
            }
            tokio::time::sleep(REFILL_WAIT.min(self.tick)).await;
        }
    }
}

impl Scheduler {
    /// Starts queued manual runs and due automatic ones on the free workers; returns how many.
    async fn pass(&mut self) -> sqlx::Result<usize> {
        let importer = self.importer.clone();
        let db = importer.db();
        let free = self.workers.saturating_sub(self.running.len());
        if free == 0 {
            return Ok(0);
        }
        let mut started = 0;
        for run in imports::queued_runs(db, 50).await? {
            if started == free {
                return Ok(started);
            }
            if self.busy.contains(&run.store_id) || !importer.acquire(run.account_id, run.store_id).await? {
                continue;
            }
            let now = db::now();
            if !imports::claim_run(db, run.id, importer.owner(), now).await? {
                importer.release(run.account_id, run.store_id, None).await?;
                continue;
            }
            let window = run.window_from.zip(run.window_to);
            let job = Job {
                account: run.account_id,
                store: run.store_id,
                trigger: run.trigger(),
                run: run.id,
                window,
                only: None,
            };
            // The run's log lines carry the request that asked for it (its 受付番号).
            self.spawn(job, run.request_id.as_deref());
            started += 1;
        }
        let now = db::now();
        for due in imports::due_stores(db, now, (free - started) as i64 + self.busy.len() as i64).await? {
            if started == free {
                break;
            }
            if self.busy.contains(&due.store_id) || !importer.acquire(due.account_id, due.store_id).await? {
                continue;
            }
            metrics::histogram!("import_scheduler_lag_seconds")
                .record((now - due.next_run_at).num_milliseconds().max(0) as f64 / 1000.0);
            let run = imports::create_run(
                db,
                due.account_id,
                due.store_id,
                imports::Trigger::Auto,
                "running",
                (None, None),
                importer.owner(),
                now,
            )
            .await?;
            let job = Job {
                account: due.account_id,
                store: due.store_id,
                trigger: imports::Trigger::Auto,
                run,
                window: None,
                only: None,
            };
            self.spawn(job, None);
            started += 1;
        }
        Ok(started)
    }

    fn spawn(&mut self, job: Job, request_id: Option<&str>) {
        self.busy.insert(job.store);
        let importer = self.importer.clone();
        let span = tracing::info_span!("import", run = job.run.0, request = request_id.unwrap_or(""));
        self.running.spawn(
            async move {
                importer.execute(&job).await;
                job.store
            }
            .instrument(span),
        );
    }
}
