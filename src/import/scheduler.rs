//! The scheduler inside every `serve` process: each tick it takes queued manual runs and due
//! stores whose lease it can win, and runs them on a bounded number of workers. Several
//! processes on one PostgreSQL split the work through the leases; a process that dies leaves
//! leases that expire and are taken over, and runs that are marked abandoned.

use std::{collections::HashSet, sync::Arc, time::Duration};

use tokio::task::JoinSet;

use super::{Importer, Job};
use crate::{
    db::{self, imports},
    domain::StoreId,
};

pub struct Scheduler {
    importer: Arc<Importer>,
    tick: Duration,
    workers: usize,
}

impl Scheduler {
    pub fn new(importer: Arc<Importer>, tick: Duration, workers: usize) -> Scheduler {
        Scheduler { importer, tick, workers: workers.max(1) }
    }

    /// Runs until the future is dropped; dropping it also ends the runs it started (their
    /// leases then expire, and the next holder redoes what was not committed).
    pub async fn run(self) {
        let mut running: JoinSet<StoreId> = JoinSet::new();
        let mut busy: HashSet<StoreId> = HashSet::new();
        let mut tick = tokio::time::interval(self.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep = std::time::Instant::now() - Duration::from_secs(3600);
        let mut outage = crate::telemetry::OutageLog::new("import scheduler");
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                Some(done) = running.join_next() => {
                    if let Ok(store) = done { busy.remove(&store); }
                    continue;
                }
            }
            if last_sweep.elapsed() >= self.importer.settings.lease_ttl {
                last_sweep = std::time::Instant::now();
                let now = db::now();
                let stale = now - chrono::Duration::from_std(self.importer.settings.lease_ttl * 2).unwrap_or_default();
                match imports::abandon_stale(self.importer.db(), stale, now).await {
                    Ok(n) if n > 0 => tracing::info!(runs = n, "import runs of a stopped process marked abandoned"),
                    Ok(_) => {}
                    Err(e) => outage.failed(&format!("sweeping stale import runs: {e}")),
                }
            }
            // Calls made outside imports (pages, pushes, stock) reach today's count within a tick.
            self.importer.flush_calls().await;
            match self.pass(&mut running, &mut busy).await {
                Ok(()) => outage.worked(),
                Err(e) => outage.failed(&format!("reading its work: {e}")),
            }
        }
    }

    async fn pass(&self, running: &mut JoinSet<StoreId>, busy: &mut HashSet<StoreId>) -> sqlx::Result<()> {
        let importer = &self.importer;
        let db = importer.db();
        let free = self.workers.saturating_sub(running.len());
        if free == 0 {
            return Ok(());
        }
        let mut started = 0;
        for run in imports::queued_runs(db, 50).await? {
            if started == free {
                return Ok(());
            }
            if busy.contains(&run.store_id) || !importer.acquire(run.account_id, run.store_id).await? {
                continue;
            }
            let now = db::now();
            if !imports::claim_run(db, run.id, importer.owner(), now).await? {
                imports::release(db, run.account_id, run.store_id, importer.owner(), None, now).await?;
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
            self.spawn(running, busy, job);
            started += 1;
        }
        let now = db::now();
        for due in imports::due_stores(db, now, (free - started) as i64 + busy.len() as i64).await? {
            if started == free {
                break;
            }
            if busy.contains(&due.store_id) || !importer.acquire(due.account_id, due.store_id).await? {
                continue;
            }
            let state = imports::state(db, due.account_id, due.store_id).await?;
            if let Some(next) = state.next_run_at {
                metrics::histogram!("import_scheduler_lag_seconds")
                    .record((now - next).num_milliseconds().max(0) as f64 / 1000.0);
            }
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
            self.spawn(running, busy, job);
            started += 1;
        }
        Ok(())
    }

    fn spawn(&self, running: &mut JoinSet<StoreId>, busy: &mut HashSet<StoreId>, job: Job) {
        busy.insert(job.store);
        let importer = self.importer.clone();
        running.spawn(async move {
            importer.execute(&job).await;
            job.store
        });
    }
}
