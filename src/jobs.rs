//! The one job engine every background job runs on: who this process is ([`ProcessId`]), the
//! lease a job holds its work under while it runs ([`Lease`], over [`crate::db::lease`]), and the
//! loop that runs a job's `tick` until the service stops ([`Job`], [`spawn`]).
//!
//! A new job is a struct with a `tick`: the import scheduler (`import::scheduler`), the pushes
//! to Yahoo (`push`) and the stock sync (`stock`) are three. Each unit of work that must run in
//! one process at a time is a row with a lease: take it, [`Lease::hold`] it while the work runs
//! (renewed every third of its time; the work is dropped when the lease is lost), fence the
//! writes that must not outlive it ([`crate::db::lease::fence_sql`]), and give it back.

use std::{future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::db::{
    self, Db,
    lease::{self, Leased},
};

/// This process's name as a lease holder: host, process ID and a random part (a restarted
/// process with the same ID is another holder). One per process, made once in `AppState`; a
/// test that plays two processes in one makes two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessId(Arc<str>);

impl ProcessId {
    pub fn new() -> ProcessId {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "host".into());
        let random = crate::crypto::random_token();
        ProcessId(format!("{host}:{}:{}", std::process::id(), &random[..8]).into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ProcessId {
    fn default() -> Self {
        ProcessId::new()
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The lease was taken over (its time ran out while this process could not renew it): the
/// work stops, and whatever it had not committed is redone by the new holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseLost;

/// One unit of work's lease, held by this process.
#[derive(Clone, Debug)]
pub struct Lease {
    db: Db,
    what: Leased,
    key: i64,
    owner: ProcessId,
    ttl: Duration,
}

impl Lease {
    pub fn new(db: &Db, what: Leased, key: i64, owner: &ProcessId, ttl: Duration) -> Lease {
        Lease { db: db.clone(), what, key, owner: owner.clone(), ttl }
    }

    pub fn owner(&self) -> &str {
        self.owner.as_str()
    }

    /// When a lease taken or renewed at `now` runs out.
    pub fn until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::seconds(60))
    }

    /// Takes the lease if it is free, run out or already this process's.
    pub async fn acquire(&self) -> sqlx::Result<bool> {
        let now = db::now();
        lease::acquire(&self.db, self.what, self.key, self.owner(), now, self.until(now)).await
    }

    /// Gives the lease back.
    pub async fn release(&self) -> sqlx::Result<()> {
        lease::release(&self.db, self.what, self.key, self.owner()).await
    }

    /// Renews the lease every third of its time and calls `beat` after each renewal (an import
    /// run's heartbeat); returns only when the lease is lost. A renewal that fails (the
    /// database away) is logged and tried again: the lease is lost only when someone took it.
    pub async fn keep<F: Future<Output = ()>>(&self, mut beat: impl FnMut(DateTime<Utc>) -> F) {
        let every = (self.ttl / 3).max(Duration::from_millis(50));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            ticker.tick().await;
            let now = db::now();
            match lease::renew(&self.db, self.what, self.key, self.owner(), now, self.until(now)).await {
                Ok(true) => beat(now).await,
                Ok(false) => {
                    tracing::warn!(job = self.what.name(), key = self.key, "lease lost");
                    return;
                }
                Err(e) => tracing::warn!(job = self.what.name(), key = self.key, error = %e, "renewing a lease failed"),
            }
        }
    }

    /// Runs `work` while keeping the lease; `Err(LeaseLost)` (and `work` dropped) as soon as
    /// the lease is someone else's.
    pub async fn hold<T>(&self, work: impl Future<Output = T>) -> Result<T, LeaseLost> {
        self.hold_beating(work, |_| async {}).await
    }

    /// [`Lease::hold`], calling `beat` after each renewal.
    pub async fn hold_beating<T, F: Future<Output = ()>>(
        &self,
        work: impl Future<Output = T>,
        beat: impl FnMut(DateTime<Utc>) -> F,
    ) -> Result<T, LeaseLost> {
        tokio::select! {
            out = work => Ok(out),
            () = self.keep(beat) => Err(LeaseLost),
        }
    }
}

/// A background job: `tick` does what is due now. [`spawn`] runs it every interval until the
/// service stops; a tick that fails is logged once per outage (not once per tick).
pub trait Job: Send + 'static {
    /// The job's name in logs.
    const NAME: &'static str;

    fn tick(&mut self) -> impl Future<Output = Result<(), String>> + Send;
}

/// A running job: stops (its tick dropped where it was) when this is dropped. Work a tick left
/// half-done is redone by the next holder of its lease.
pub struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `job`'s tick every `every` (a tick that overruns delays the next, never doubles it).
pub fn spawn<J: Job>(mut job: J, every: Duration) -> Running {
    Running(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut outage = crate::telemetry::OutageLog::new(J::NAME);
        loop {
            ticker.tick().await;
            match job.tick().await {
                Ok(()) => outage.worked(),
                Err(e) => outage.failed(&e),
            }
        }
    }))
}
