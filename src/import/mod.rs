//! Importing orders (product.md §5, yahoo-store-api.md §4): one store's run, and the scheduler
//! that starts runs in every `serve` process.
//!
//! A run holds the store's lease (`db::imports`), searches orderList by PublicationTime (and by
//! LastUpdateTime, for changes to older orders) from the saved cursor minus an overlap, asks
//! for held orders with `FraudHoldDisplayType=1`, fetches orderInfo only for orders that are new
//! or changed (concurrently, paced by the client), re-checks orders held as 1, and writes in
//! batches through `db::orders::write_batch`: idempotent upserts keyed by (store, order ID),
//! fenced by the lease, the cursor moved in the last batch's transaction and only when every
//! order of the window was stored. Killing a run anywhere leaves either a committed batch or
//! nothing; the next run redoes the window and skips what is stored.

pub mod reconcile;
pub mod reimport;
pub mod rules;
pub mod scheduler;

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};

use crate::{
    config::Config,
    db::{
        Db,
        imports::{self, Progress, RunId, Trigger},
        lease::Leased,
        orders::{self, Batch, BatchError, BatchWrite, HistoryActor, OrderWrite},
        stores::{self, Store},
    },
    domain::{AccountId, StoreId, jst},
    jobs::{Lease, ProcessId},
    yahoo::{
        YahooClient,
        api::{self, OrderDetail, OrderListQuery, SearchBy},
        client::Body,
        error::YahooError,
    },
};

/// How runs behave; from the configuration, adjustable by tests and the benchmark.
#[derive(Clone, Debug)]
pub struct ImportSettings {
    pub lease_ttl: Duration,
    /// Each run searches again this far before the cursor (late-visible orders, clock skew).
    pub overlap: chrono::Duration,
    /// The first run of a store looks back this far.
    pub initial_lookback: chrono::Duration,
    pub page_size: u32,
    pub info_concurrency: usize,
    /// Orders written per transaction once the previous transaction is committed.
    pub batch_size: usize,
    /// While a transaction is being written, answers that arrive meanwhile join the next one
    /// (group commit), up to this many orders: when the database is slower than Yahoo's
    /// answers, fewer and larger transactions write each index page once for many orders,
    /// and the fetching never waits for the writing.
    pub max_batch: usize,
    /// A smaller batch is written once its oldest order waited this long, so that orders show up
    /// while a paced run (one orderInfo a second) is still going.
    pub batch_max_wait: Duration,
    pub daily_quota: i64,
    /// Share of the daily quota automatic work may use; the rest is kept for people.
    pub auto_quota_share: f64,
    /// Calls a day kept for re-checking held orders.
    pub held_budget: i64,
    /// The service's URL, for the links in the notifications an import queues.
    pub public_url: String,
}

impl ImportSettings {
    pub fn from_config(config: &Config) -> ImportSettings {
        ImportSettings {
            lease_ttl: Duration::from_secs(config.import_lease_secs.max(3)),
            overlap: chrono::Duration::minutes(10),
            initial_lookback: chrono::Duration::days(30),
            page_size: 1000,
            info_concurrency: config.import_concurrency.max(1),
            batch_size: 200,
            max_batch: 2000,
            batch_max_wait: Duration::from_secs(2),
            daily_quota: config.yahoo_daily_quota,
            auto_quota_share: 0.8,
            held_budget: config.yahoo_daily_quota / 5,
            public_url: config.public_url().as_str().trim_end_matches('/').to_owned(),
        }
    }
}

/// Between batches the emergency stop is looked at this often.
const STOP_CHECK_EVERY: Duration = Duration::from_millis(200);

/// A PublicationTime period, both ends included.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// A store's cursor: how far on Yahoo's clock its automatic runs have searched, and when (on
/// our clock) that was written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    pub at: Option<DateTime<Utc>>,
    pub set_at: Option<DateTime<Utc>>,
}

/// A window found to end this far past Yahoo's clock was taken from a clock that has moved back.
const CLOCK_MOVED: chrono::Duration = chrono::Duration::seconds(60);

/// The window an automatic run searches: from the cursor (less the overlap) to a little before
/// Yahoo's now, so that orders published during the run fall in the next window. A cursor is
/// never taken as ahead of Yahoo's clock: when it stands past Yahoo's now (the clock was moved
/// back after it was written), it is taken as Yahoo's now less the time our clock has run since
/// it was written, which reaches every order Yahoo has published since on its own clock.
pub fn auto_window(cursor: Cursor, yahoo_now: DateTime<Utc>, local_now: DateTime<Utc>, s: &ImportSettings) -> Window {
    let to = yahoo_now - chrono::Duration::seconds(2);
    let from = match cursor.at {
        None => to - s.initial_lookback,
        Some(at) if at <= to => at - s.overlap,
        Some(_) => {
            let since = cursor
                .set_at
                .map_or(s.initial_lookback, |set| (local_now - set).max(chrono::Duration::zero()))
                .min(s.initial_lookback);
            to - since - s.overlap
        }
    };
    (from.min(to - s.overlap), to)
}

/// One run to do.
#[derive(Clone, Debug)]
pub struct Job {
    pub account: AccountId,
    pub store: StoreId,
    pub trigger: Trigger,
    pub run: RunId,
    /// A period chosen by a person (manual import); `None` continues from the cursor.
    pub window: Option<Window>,
    /// Only these order IDs (reconciliation, re-import of an order never imported).
    pub only: Option<Vec<String>>,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// 緊急停止 during the run: it stopped between batches; the cursor stays where it was.
    Stopped,
    /// Another process holds the store now.
    LeaseLost,
    /// An authentication problem: automatic import of the store stops until it is fixed.
    Auth(YahooError),
    Failed(String),
    /// The day's call budget for automatic work is spent.
    Budget,
}

impl Ending {
    fn status(&self) -> &'static str {
        match self {
            Ending::Done | Ending::Budget => "done",
            Ending::Stopped => "stopped",
            Ending::LeaseLost | Ending::Auth(_) | Ending::Failed(_) => "failed",
        }
    }

    fn message(&self) -> Option<String> {
        match self {
            Ending::Done => None,
            Ending::Stopped => Some("緊急停止のため途中で停止しました。再開すると続きから取り込みます".into()),
            Ending::LeaseLost => Some("別のサーバーがこのストアの取込を引き継ぎました".into()),
            Ending::Auth(e) => Some(format!("{}（自動受注取込を停止しました）", e.message_ja())),
            Ending::Failed(m) => Some(m.clone()),
            Ending::Budget => {
                Some("本日のAPI呼び出し回数が上限に近いため、自動取込を見合わせました（手動取込はできます）".into())
            }
        }
    }
}

impl From<sqlx::Error> for Ending {
    fn from(e: sqlx::Error) -> Ending {
        tracing::error!(error = %e, "database error during an import");
        if crate::db::is_unreachable(&e) {
            Ending::Failed(DB_UNREACHABLE.into())
        } else {
            Ending::Failed(DB_FAILED.into())
        }
    }
}

/// How a run cut off by a database outage ends (its process lived on).
pub const DB_UNREACHABLE: &str = "データベースに接続できなかったため中断しました。次回の取込で続きから取り込みます";

/// A run ended by a database error that was not (recognisably) an outage.
pub const DB_FAILED: &str = "データベースの処理に失敗しました。次回の取込で再試行します";

impl From<BatchError> for Ending {
    fn from(e: BatchError) -> Ending {
        match e {
            BatchError::LeaseLost => Ending::LeaseLost,
            BatchError::Db(e) => e.into(),
        }
    }
}

/// Runs imports. One per process, shared by the scheduler and the pages.
pub struct Importer {
    db: Db,
    yahoo: Arc<YahooClient>,
    /// This process's name in leases and run records.
    owner: ProcessId,
    pub settings: ImportSettings,
}

/// A run's batching: the writes staged since the last batch, and the batch being written while
/// the next is fetched (one at a time, in order).
#[derive(Default)]
struct Staged {
    writes: Vec<OrderWrite>,
    /// Orders looked at again and found unchanged (only when they were checked moves).
    unchanged: Vec<String>,
    /// When the oldest staged write was staged.
    since: Option<std::time::Instant>,
    writing: Option<BatchWrite>,
}

impl Staged {
    fn stage(&mut self, write: OrderWrite) {
        self.since.get_or_insert_with(std::time::Instant::now);
        self.writes.push(write);
    }

    fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no batch is being written.
    fn writer_free(&self) -> bool {
        self.writing.as_ref().is_none_or(BatchWrite::is_done)
    }

    /// Waits for the batch being written to commit (or fail).
    async fn settle(&mut self) -> Result<(), BatchError> {
        match self.writing.take() {
            Some(writing) => writing.finish().await.map(drop),
            None => Ok(()),
        }
    }

    /// What is staged as one batch, with the cursor and the orders to retry when given; `None`
    /// when there is nothing to write.
    fn take(&mut self, cursor_to: Option<DateTime<Utc>>, retry: Option<String>, owner: &str) -> Option<Batch> {
        self.since = None;
        let writes = std::mem::take(&mut self.writes);
        let unchanged = std::mem::take(&mut self.unchanged);
        if writes.is_empty() && unchanged.is_empty() && cursor_to.is_none() && retry.is_none() {
            return None;
        }
        Some(Batch {
            writes,
            unchanged,
            cursor_to,
            retry,
            lease_owner: Some(owner.to_owned()),
            notify_base: None,
            actor: HistoryActor::Job,
            now: crate::db::now(),
        })
    }
}

/// How [`Importer::flush`] writes what is staged.
enum Flush {
    /// Behind the fetching: returns while the batch is written (never with the cursor).
    Behind,
    /// Now, returning once committed, moving the cursor and replacing the orders to retry when
    /// given: the cursor commits only after every order it covers.
    Commit { cursor: Option<DateTime<Utc>>, retry: Option<String> },
}

/// What a run carries between its steps.
struct RunCtx<'a> {
    job: &'a Job,
    store: Store,
    progress: Progress,
    /// Orders fetched with orderInfo in this run (not fetched twice).
    fetched: HashSet<String>,
    /// What is staged to be written, and the batch being written.
    staged: Staged,
    /// When the emergency stop was last looked at.
    stop_checked: Option<std::time::Instant>,
    /// Orders this run could not fetch yet, with the reason in Japanese; an order fetched by a
    /// later pass of the same run leaves the list. Whatever remains at the end is the run's
    /// failures: listed on its page and fetched by ID by the next run.
    failures: BTreeMap<String, String>,
    /// Of those, the ones Yahoo says do not exist (od10001): listed, but not retried.
    gone: HashSet<String>,
    day: String,
    started: DateTime<Utc>,
    /// When progress was last written.
    reported: Option<std::time::Instant>,
    /// Orders of the current page that the store does not hold.
    absent: HashSet<String>,
    /// Answers count towards the run's progress (the PublicationTime pass, whose orders make
    /// the run's total).
    counts_seen: bool,
}

impl Importer {
    pub fn new(db: Db, yahoo: Arc<YahooClient>, owner: ProcessId, settings: ImportSettings) -> Importer {
        Importer { db, yahoo, owner, settings }
    }

    pub fn owner(&self) -> &str {
        self.owner.as_str()
    }

    /// The store's import lease, as this process would hold it.
    fn lease(&self, store: StoreId) -> Lease {
        Lease::new(&self.db, Leased::StoreImport, store.0, &self.owner, self.settings.lease_ttl)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Writes the Yahoo calls counted since the last flush (see [`YahooClient::flush_calls`]).
    pub async fn flush_calls(&self) {
        self.yahoo.flush_calls().await;
    }

    /// Takes the store's lease for this process.
    pub async fn acquire(&self, account: AccountId, store: StoreId) -> sqlx::Result<bool> {
        imports::ensure(&self.db, account, store, crate::db::now()).await?;
        self.lease(store).acquire().await
    }

    /// Gives the store's lease back, with when its next automatic run is due (`None` keeps it).
    pub async fn release(
        &self,
        account: AccountId,
        store: StoreId,
        next_run_at: Option<DateTime<Utc>>,
    ) -> sqlx::Result<()> {
        if let Some(next) = next_run_at {
            imports::set_next_run(&self.db, account, store, self.owner(), next, crate::db::now()).await?;
        }
        self.lease(store).release().await
    }

    /// Runs a job whose lease this process holds, records how it ended and gives the lease
    /// back. If the task dies on the way, the lease expires and the run is marked abandoned.
    pub async fn execute(&self, job: &Job) -> Ending {
        let started = std::time::Instant::now();
        let began = crate::db::now();
        let mut progress = Progress::default();
        // The run's heartbeat beats with its lease.
        let beat = |now| async move {
            let _ = imports::touch_run(&self.db, job.run, now).await;
        };
        let ending =
            self.lease(job.store).hold_beating(self.run(job, &mut progress), beat).await.unwrap_or(Ending::LeaseLost);
        let now = crate::db::now();
        if job.trigger == Trigger::Auto && ending == Ending::Done && progress.is_idle() {
            // A check that found nothing is counted, not recorded (`imports::fold_idle_run`).
            if let Err(e) = imports::fold_idle_run(&self.db, job.account, job.store, job.run, now).await {
                tracing::warn!(error = %e, run = job.run.0, "folding an idle import run failed");
                self.record_end(job.run, &progress, &ending, now).await;
            }
        } else {
            self.record_end(job.run, &progress, &ending, now).await;
            if job.trigger == Trigger::Auto
                && let Err(e) = imports::reset_idle(&self.db, job.account, job.store).await
            {
                tracing::warn!(error = %e, store = job.store.0, "resetting the idle check count failed");
            }
        }
        let next = if job.trigger == Trigger::Auto {
            let interval = stores::get(&self.db, job.account, job.store)
                .await
                .ok()
                .flatten()
                .map_or(1, |s| s.auto_import_interval_minutes.max(1));
            // The interval counts from the run's start: a run that took a minute (a first import
            // paced at one orderInfo a second) is followed at once, so what arrived while it ran
            // shows up within the interval, not within the interval plus the run.
            Some((began + chrono::Duration::minutes(interval)).max(now))
        } else {
            None
        };
        if ending != Ending::LeaseLost
            && let Err(e) = self.release(job.account, job.store, next).await
        {
            tracing::warn!(error = %e, store = job.store.0, "releasing an import lease failed");
        }
        let status = ending.status();
        metrics::counter!("import_runs_total", "trigger" => job.trigger.as_str(), "status" => status).increment(1);
        metrics::counter!("import_orders_total", "kind" => "new").increment(progress.orders_new as u64);
        metrics::counter!("import_orders_total", "kind" => "changed").increment(progress.orders_changed as u64);
        metrics::counter!("import_calls_total").increment(progress.calls as u64);
        metrics::counter!("import_errors_total").increment(progress.errors as u64);
        tracing::info!(
            store = job.store.0,
            run = job.run.0,
            trigger = job.trigger.as_str(),
            status,
            new = progress.orders_new,
            changed = progress.orders_changed,
            calls = progress.calls,
            errors = progress.errors,
            ms = started.elapsed().as_millis() as u64,
            "import run ended"
        );
        ending
    }

    /// Records how a run ended. When the database cannot take it (an outage), it is tried again
    /// in the background until it can, for up to ten minutes, so the run says what happened
    /// instead of being swept as 「処理していたサーバーが停止した」 while this process lived on.
    async fn record_end(&self, run: RunId, progress: &Progress, ending: &Ending, now: DateTime<Utc>) {
        let message = ending.message();
        let first =
            imports::finish_run(&self.db, run, progress, ending.status(), message.as_deref(), (None, None), now).await;
        let Err(e) = first else { return };
        tracing::warn!(error = %e, run = run.0, "recording the end of an import run failed; retrying in the background");
        let (db, progress, status) = (self.db.clone(), progress.clone(), ending.status());
        // The end cannot be written either: the database is away. A run that a database error
        // ended was cut off by that outage, whatever the first error looked like (a connection
        // dropped during its set-up reads as a protocol error, not as one of I/O).
        let db_failure = *ending == Ending::Failed(DB_FAILED.into());
        let message = if (crate::db::is_unreachable(&e) || db_failure) && *ending != Ending::Done {
            Some(DB_UNREACHABLE.to_owned())
        } else {
            message
        };
        tokio::spawn(async move {
            for _ in 0..300 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let at = crate::db::now();
                if imports::finish_run(&db, run, &progress, status, message.as_deref(), (None, None), at).await.is_ok()
                {
                    tracing::info!(run = run.0, "recorded the end of an import run after the database came back");
                    return;
                }
            }
        });
    }

    async fn run(&self, job: &Job, progress: &mut Progress) -> Ending {
        let store = match stores::get(&self.db, job.account, job.store).await {
            Ok(Some(s)) => s,
            Ok(None) => return Ending::Failed("ストアが見つかりません".into()),
            Err(e) => return e.into(),
        };
        let now = crate::db::now();
        let mut ctx = RunCtx {
            job,
            store,
            progress: Progress::default(),
            fetched: HashSet::new(),
            staged: Staged::default(),
            stop_checked: None,
            failures: BTreeMap::new(),
            gone: HashSet::new(),
            day: jst::today(now).to_string(),
            started: now,
            reported: None,
            absent: HashSet::new(),
            counts_seen: false,
        };
        let ending = match self.run_steps(&mut ctx).await {
            Ok(()) => Ending::Done,
            Err(e) => {
                // The batch being written when the run ended is committed or failed.
                if let Err(failed) = ctx.staged.settle().await {
                    tracing::warn!(store = job.store.0, ending = ?failed, "the last batch of an import run failed");
                }
                // Keep what was fetched before the failure (the cursor does not move).
                if matches!(e, Ending::Failed(_) | Ending::Auth(_)) && ctx.staged.len() > 0 {
                    let _ = self.flush(&mut ctx, Flush::Commit { cursor: None, retry: None }).await;
                }
                e
            }
        };
        // Today's calls (the client counted each one it sent).
        self.yahoo.flush_calls().await;
        match &ending {
            Ending::Auth(e) => {
                let _ = imports::set_blocked(&self.db, job.account, job.store, e.auth_code(), crate::db::now()).await;
            }
            Ending::Done => {
                let _ = imports::set_blocked(&self.db, job.account, job.store, None, crate::db::now()).await;
            }
            _ => {}
        }
        ctx.progress.failures = ctx.failures.into_iter().collect();
        *progress = ctx.progress;
        ending
    }

    async fn run_steps(&self, ctx: &mut RunCtx<'_>) -> Result<(), Ending> {
        let job = ctx.job;
        let state = imports::state(&self.db, job.account, job.store).await?;
        if state.halts(job.trigger == Trigger::Auto, ctx.started) {
            return Err(Ending::Stopped);
        }
        if job.trigger == Trigger::Auto {
            let used = imports::app_calls_today(&self.db, job.account, job.store, &ctx.day).await?;
            if used as f64 >= self.settings.daily_quota as f64 * self.settings.auto_quota_share {
                return Err(Ending::Budget);
            }
        }
        if let Some(ids) = &job.only {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            self.fetch_and_stage(ctx, &ids).await?;
            return self.flush(ctx, Flush::Commit { cursor: None, retry: None }).await;
        }
        if job.trigger == Trigger::Reconcile {
            // Exactly the orders Yahoo lists for the period that we do not hold.
            let window = job.window.ok_or_else(|| Ending::Failed("照合する期間がありません".into()))?;
            let seller = ctx.store.seller_id.clone();
            let compared = self.compare(job.account, job.store, &seller, window).await.map_err(|e| match e {
                reconcile::CompareError::Yahoo(e) if e.is_auth_problem() => Ending::Auth(e),
                reconcile::CompareError::Yahoo(e) => {
                    Ending::Failed(format!("注文検索に失敗しました: {}", e.message_ja()))
                }
                reconcile::CompareError::Db(e) => e.into(),
            })?;
            ctx.progress.orders_total = compared.missing.len() as i64;
            let missing: Vec<&str> = compared.missing.iter().map(String::as_str).collect();
            self.fetch_and_stage(ctx, &missing).await?;
            ctx.progress.orders_seen = ctx.progress.orders_total;
            self.flush(ctx, Flush::Commit { cursor: None, retry: None }).await?;
            if !ctx.failures.is_empty() {
                return Err(Ending::Failed(format!("{}件の注文を取得できませんでした", ctx.failures.len())));
            }
            return Ok(());
        }
        // Yahoo's clock, as measured from its Date header.
        let yahoo_now = |offset_ms: i64| Utc::now() + chrono::Duration::milliseconds(offset_ms);
        let cursor = Cursor { at: state.cursor_at, set_at: state.cursor_set_at };
        let (mut from, mut to, moves_cursor) = match job.window {
            Some((from, to)) => (from, to.min(yahoo_now(ctx.store.clock_offset_ms.unwrap_or(0))), false),
            None => {
                let (from, to) =
                    auto_window(cursor, yahoo_now(ctx.store.clock_offset_ms.unwrap_or(0)), Utc::now(), &self.settings);
                (from, to, true)
            }
        };
        let now = crate::db::now();
        let _ = imports::set_window(&self.db, job.run, from, to).await;
        for by in [SearchBy::Publication, SearchBy::LastUpdate] {
            self.search(ctx, by, from, to).await?;
        }
        // The window was taken from the clock measured by earlier runs. When these searches find
        // Yahoo's clock well behind it (moved back since), the window is taken again from the
        // clock just measured and searched too, before the cursor moves: orders Yahoo publishes
        // now carry its earlier times, which the first window did not reach.
        if moves_cursor {
            let fresh = self.yahoo.measured_offset_ms(job.store).map(yahoo_now);
            if let Some(fresh) = fresh.filter(|fresh| *fresh < to - CLOCK_MOVED) {
                (from, to) = auto_window(cursor, fresh, Utc::now(), &self.settings);
                tracing::info!(store = job.store.0, %from, %to, "Yahoo's clock moved back; searching again from it");
                let _ = imports::set_window(&self.db, job.run, from, to).await;
                for by in [SearchBy::Publication, SearchBy::LastUpdate] {
                    self.search(ctx, by, from, to).await?;
                }
            }
        }
        self.recheck_held(ctx, now).await?;
        // Orders an earlier run could not fetch, though its cursor passed them.
        if moves_cursor {
            let retry: Vec<String> = state.retry_orders().into_iter().filter(|id| !ctx.fetched.contains(id)).collect();
            let retry: Vec<&str> = retry.iter().map(String::as_str).collect();
            self.fetch_and_stage(ctx, &retry).await?;
        }
        // The run is complete when every order it found is stored, whichever pass fetched it.
        // The cursor moves either way: what is still missing is kept, in the cursor's own
        // transaction, for the next run to fetch by ID (and not the whole window again).
        let failures: Vec<(String, String)> = ctx.failures.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let retry: Vec<(String, String)> = failures.iter().filter(|(id, _)| !ctx.gone.contains(id)).cloned().collect();
        let retry = moves_cursor.then(|| imports::failures_json(&retry));
        self.flush(ctx, Flush::Commit { cursor: moves_cursor.then_some(to), retry }).await?;
        if !failures.is_empty() {
            let next = if moves_cursor {
                "次回の取込でこの注文だけ取得し直します"
            } else {
                "もう一度取り込んでください"
            };
            return Err(Ending::Failed(format!(
                "{}件の注文を取得できませんでした（注文IDと理由は下の一覧）。{next}",
                failures.len()
            )));
        }
        Ok(())
    }

    /// One orderList page. It borrows nothing of the run, so the next page can be asked for
    /// while the current page's orders are fetched (their rate limits are separate).
    async fn list_page(
        &self,
        account: AccountId,
        store: StoreId,
        query: OrderListQuery,
        seller_id: String,
    ) -> Result<api::OrderListPage, Ending> {
        let root = match self.yahoo.call(account, store, "orderList", Body::Xml(query.to_xml(&seller_id))).await {
            Ok(root) => root,
            Err(e) if e.is_auth_problem() => return Err(Ending::Auth(e)),
            Err(e) => return Err(Ending::Failed(format!("注文検索に失敗しました: {}", e.message_ja()))),
        };
        api::parse_order_list(&root).map_err(|e| Ending::Failed(format!("注文検索の応答を読めませんでした: {e}")))
    }

    /// Pages through one orderList search and stages what is new or changed; the next page is
    /// fetched while this page's orders are.
    async fn search(
        &self,
        ctx: &mut RunCtx<'_>,
        by: SearchBy,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(), Ending> {
        let (account, store) = (ctx.job.account, ctx.job.store);
        let seller = ctx.store.seller_id.clone();
        let query = |start| OrderListQuery { by, from, to, start, result: self.settings.page_size, include_held: true };
        let mut start = 1u32;
        ctx.progress.calls += 1;
        let mut page = self
            .list_page(account, store, query(start), seller.clone())
            .await
            .inspect_err(|_| ctx.progress.errors += 1)?;
        loop {
            ctx.progress.pages += 1;
            if by == SearchBy::Publication && start == 1 {
                ctx.progress.orders_total += page.total as i64;
            }
            // Orders this run fetched already (the LastUpdateTime pass lists most of them again)
            // need no lookup either.
            let unseen: Vec<&api::OrderSummary> =
                page.orders.iter().filter(|o| !ctx.fetched.contains(&o.order_id)).collect();
            let ids: Vec<&str> = unseen.iter().map(|o| o.order_id.as_str()).collect();
            let known =
                if ids.is_empty() { Default::default() } else { orders::known(&self.db, account, store, &ids).await? };
            ctx.absent =
                unseen.iter().filter(|o| !known.contains_key(&o.order_id)).map(|o| o.order_id.clone()).collect();
            let wanted: Vec<&str> = unseen
                .iter()
                .filter(|o| rules::needs_fetch(o, known.get(&o.order_id)))
                .map(|o| o.order_id.as_str())
                .collect();
            if by == SearchBy::Publication {
                ctx.progress.orders_seen += (page.orders.len() - wanted.len()) as i64;
            }
            let n = page.orders.len() as u32;
            let last = n == 0 || u64::from(start) + u64::from(n) > page.total;
            let next_start = start + n;
            let next = async {
                if last { None } else { Some(self.list_page(account, store, query(next_start), seller.clone()).await) }
            };
            // The page's answers count as they arrive, so that a paced run (one orderInfo a
            // second) shows its progress move, not a page of a thousand orders at once.
            ctx.counts_seen = by == SearchBy::Publication;
            let (staged, next) = tokio::join!(self.fetch_and_stage(ctx, &wanted), next);
            ctx.counts_seen = false;
            staged?;
            self.report(ctx).await;
            self.check_stop(ctx).await?;
            match next {
                None => return Ok(()),
                Some(next) => {
                    ctx.progress.calls += 1;
                    page = next.inspect_err(|_| ctx.progress.errors += 1)?;
                    start = next_start;
                }
            }
        }
    }

    /// Fetches these orders with orderInfo, `batch_size` at a time (several in flight), stages
    /// the writes and flushes each batch; checks the emergency stop between batches.
    async fn fetch_and_stage(&self, ctx: &mut RunCtx<'_>, ids: &[&str]) -> Result<(), Ending> {
        if ids.is_empty() {
            return Ok(());
        }
        let (account, store) = (ctx.job.account, ctx.job.store);
        let calls: Vec<(String, String)> =
            ids.iter().map(|id| ((*id).to_owned(), api::order_info_xml(&ctx.store.seller_id, id))).collect();
        // The fetching goes on while the previous batch is compared and written: a bounded
        // channel between the two halves of one task (a killed run ends both).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, Result<OrderDetail, YahooError>)>(
            self.settings.batch_size + self.settings.info_concurrency,
        );
        let fetch = async move {
            let mut results = stream::iter(calls)
                .map(|(id, xml)| {
                    let yahoo = self.yahoo.clone();
                    async move {
                        let result = yahoo.call_order_info(account, store, Body::Xml(xml)).await;
                        (id, result)
                    }
                })
                .buffer_unordered(self.settings.info_concurrency);
            while let Some(result) = results.next().await {
                if tx.send(result).await.is_err() {
                    return; // the writing half stopped
                }
            }
        };
        // `move`: when the writing half ends early (a stop, an auth failure), the receiver is
        // dropped with it and the fetching half stops at its next send instead of waiting.
        let write = async move {
            let (batch_size, max_batch) = (self.settings.batch_size, self.settings.max_batch.max(1));
            let mut buffer = Vec::with_capacity(batch_size);
            loop {
                // A full batch waits for the previous one to commit while answers keep coming
                // into it; it is written as soon as the database is free.
                let staged = ctx.staged.len();
                let next = match ctx.staged.writing.as_mut() {
                    Some(writing) if staged >= batch_size && staged < max_batch => {
                        tokio::select! {
                            () = writing.done() => None,
                            n = rx.recv_many(&mut buffer, batch_size) => Some(n),
                        }
                    }
                    _ => Some(rx.recv_many(&mut buffer, batch_size).await),
                };
                let Some(n) = next else {
                    self.flush(ctx, Flush::Behind).await?;
                    self.check_stop(ctx).await?;
                    continue;
                };
                if n == 0 {
                    return Ok(());
                }
                ctx.progress.calls += n as i64;
                if ctx.counts_seen {
                    ctx.progress.orders_seen += n as i64;
                }
                let mut details = Vec::with_capacity(n);
                for (id, result) in buffer.drain(..) {
                    match result {
                        Ok(d) if d.order_id == id => details.push(d),
                        Ok(d) => {
                            tracing::warn!(asked = %id, got = %d.order_id, "orderInfo answered another order");
                            ctx.progress.errors += 1;
                            ctx.failures.insert(id, "Yahoo!が別の注文の内容を返しました".into());
                        }
                        Err(e) if e.is_auth_problem() => return Err(Ending::Auth(e)),
                        Err(e) => {
                            tracing::warn!(store = store.0, order = %id, error = %e, "orderInfo failed");
                            ctx.progress.errors += 1;
                            if e.is_order_not_found() {
                                ctx.gone.insert(id.clone());
                            }
                            ctx.failures.insert(id, e.message_ja());
                        }
                    }
                }
                self.stage(ctx, details).await?;
                let waited = ctx.staged.since.is_some_and(|t| t.elapsed() >= self.settings.batch_max_wait);
                let staged = ctx.staged.len();
                let full = (staged >= batch_size && ctx.staged.writer_free()) || staged >= max_batch || waited;
                if full {
                    self.flush(ctx, Flush::Behind).await?;
                }
                // After each batch, and every so often between (one query, not one per answer).
                if full || ctx.stop_checked.is_none_or(|t| t.elapsed() >= STOP_CHECK_EVERY) {
                    self.check_stop(ctx).await?;
                }
                // At most once a second, and never while a batch is in flight.
                self.report(ctx).await;
            }
        };
        let ((), written) = tokio::join!(fetch, write);
        written
    }

    /// 緊急停止 pressed: keep what was fetched (without moving the cursor) and stop here.
    async fn check_stop(&self, ctx: &mut RunCtx<'_>) -> Result<(), Ending> {
        ctx.stop_checked = Some(std::time::Instant::now());
        let state = imports::state(&self.db, ctx.job.account, ctx.job.store).await?;
        if state.halts(ctx.job.trigger == Trigger::Auto, ctx.started) {
            self.flush(ctx, Flush::Commit { cursor: None, retry: None }).await?;
            return Err(Ending::Stopped);
        }
        Ok(())
    }

    /// Compares fetched orders with what is stored and stages the writes and history.
    async fn stage(&self, ctx: &mut RunCtx<'_>, details: Vec<OrderDetail>) -> Result<(), Ending> {
        if details.is_empty() {
            return Ok(());
        }
        // Orders the list showed as absent need no lookup (a first import looks up nothing).
        let ids: Vec<&str> =
            details.iter().map(|d| d.order_id.as_str()).filter(|id| !ctx.absent.contains(*id)).collect();
        let stored = if ids.is_empty() {
            Default::default()
        } else {
            orders::by_order_ids(&self.db, ctx.job.account, ctx.job.store, &ids).await?
        };
        // Only automatic imports go to the inbox or change status by themselves; the inbox wins
        // (the status can be changed once the order is taken in).
        let arrival = match (ctx.job.trigger, ctx.store.auto_status_change_target()) {
            (Trigger::Auto, _) if ctx.store.auto_import_inbox => rules::Arrival::Inbox,
            (Trigger::Auto, Some(target)) if ctx.store.auto_status_change_enabled => rules::Arrival::AutoChange(target),
            _ => rules::Arrival::New,
        };
        // Which pay methods are settled before shipping: only needed when new orders would
        // move on to 出荷待ち by themselves.
        let prepay = match arrival {
            rules::Arrival::AutoChange(crate::domain::store::InternalStatus::AwaitingShipment) => {
                Some(crate::db::shipping::prepay_methods(&self.db, ctx.job.account, ctx.job.store).await?)
            }
            _ => None,
        };
        for detail in details {
            ctx.failures.remove(&detail.order_id);
            ctx.gone.remove(&detail.order_id);
            ctx.fetched.insert(detail.order_id.clone());
            match stored.get(&detail.order_id) {
                None => {
                    let unpaid = prepay.as_deref().and_then(|list| {
                        crate::domain::shipping::unpaid(
                            list,
                            &detail.pay_method,
                            &detail.pay_method_name,
                            detail.pay_status,
                        )
                    });
                    let (status, history, flag_cancel) =
                        rules::new_order(&detail, arrival, ctx.store.restrict_fraud_hold_changes, unpaid.as_deref());
                    ctx.progress.orders_new += 1;
                    ctx.staged.stage(OrderWrite {
                        detail,
                        new_status: status,
                        flag_cancel,
                        history,
                        moves_on: None,
                        notify: None,
                    });
                }
                Some((row, items)) => {
                    let before = row.to_detail(items.clone(), &detail.seller_id);
                    if before == detail {
                        ctx.staged.unchanged.push(detail.order_id);
                        continue;
                    }
                    let (mut history, flag_cancel) = rules::change_history(&before, &detail);
                    use crate::domain::store::InternalStatus;
                    let paid = rules::paid_now(&before, &detail, row.internal_status());
                    let mut moves_on =
                        paid.is_some().then_some((InternalStatus::AwaitingPayment, InternalStatus::AwaitingShipment));
                    history.extend(paid);
                    // A held order the automatic change left at 失敗, released now: the same
                    // automatic change moves it on.
                    let auto_target =
                        ctx.store.auto_status_change_target().filter(|_| ctx.store.auto_status_change_enabled);
                    if let Some(target) = auto_target.filter(|_| row.internal_status() == InternalStatus::Failed) {
                        let unpaid = if target == InternalStatus::AwaitingShipment
                            && rules::hold_event(before.fraud_hold_status, detail.fraud_hold_status)
                                == Some(rules::HoldEvent::Released)
                        {
                            let list =
                                crate::db::shipping::prepay_methods(&self.db, ctx.job.account, ctx.job.store).await?;
                            crate::domain::shipping::unpaid(
                                &list,
                                &detail.pay_method,
                                &detail.pay_method_name,
                                detail.pay_status,
                            )
                        } else {
                            None
                        };
                        let released = rules::released_move(
                            &before,
                            &detail,
                            row.internal_status(),
                            target,
                            ctx.store.restrict_fraud_hold_changes,
                            unpaid.as_deref(),
                        );
                        if let Some((to, line)) = released {
                            moves_on = Some((InternalStatus::Failed, to));
                            history.push(line);
                        }
                    }
                    ctx.progress.orders_changed += 1;
                    let new_status = row.internal_status();
                    let notify = rules::hold_notice(&before, &detail);
                    ctx.staged.stage(OrderWrite { detail, new_status, flag_cancel, history, moves_on, notify });
                }
            }
        }
        Ok(())
    }

    /// Writes what is staged, after the batch being written (batches commit one after the
    /// other, in order): behind the fetching, or now with the cursor (see [`Flush`]).
    async fn flush(&self, ctx: &mut RunCtx<'_>, how: Flush) -> Result<(), Ending> {
        ctx.staged.settle().await?;
        let (cursor, retry) = match &how {
            Flush::Behind => {
                self.report(ctx).await;
                (None, None)
            }
            Flush::Commit { cursor, retry } => (*cursor, retry.clone()),
        };
        let Some(mut batch) = ctx.staged.take(cursor, retry, self.owner()) else { return Ok(()) };
        batch.notify_base = Some(self.settings.public_url.clone());
        let write = orders::start_batch(&self.db, ctx.job.account, ctx.job.store, batch);
        match how {
            Flush::Behind => ctx.staged.writing = Some(write),
            Flush::Commit { .. } => {
                write.finish().await?;
                self.report(ctx).await;
            }
        }
        Ok(())
    }

    /// The run's progress and today's calls, written at most once a second (each write is a
    /// commit; the page that shows them refreshes every two seconds), and only while no batch
    /// is in flight: the calls are counted on the store's import row, which a batch keeps
    /// locked until it commits (SQLite: the one writer), and waiting for that would hold up
    /// the next answers (`bench import`: about a tenth of a run).
    async fn report(&self, ctx: &mut RunCtx<'_>) {
        if ctx.reported.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) || !ctx.staged.writer_free() {
            return;
        }
        ctx.reported = Some(std::time::Instant::now());
        self.yahoo.flush_calls().await;
        if let Err(e) = imports::update_run(&self.db, ctx.job.run, &ctx.progress, crate::db::now()).await {
            tracing::warn!(error = %e, "recording an import's progress failed");
        }
    }

    /// Follows orders held as 1 with orderInfo (both outcomes of the review are seen even when
    /// orderList never shows held orders), as often as the call budget allows.
    async fn recheck_held(&self, ctx: &mut RunCtx<'_>, now: DateTime<Utc>) -> Result<(), Ending> {
        let (account, store) = (ctx.job.account, ctx.job.store);
        let held = orders::held_count(&self.db, account, store).await?;
        if held == 0 {
            return Ok(());
        }
        let interval = chrono::Duration::minutes(ctx.store.auto_import_interval_minutes.max(1));
        let before = rules::held_check_before(now, held, interval, self.settings.held_budget);
        let due: Vec<String> = orders::held_to_check(&self.db, account, store, before)
            .await?
            .into_iter()
            .filter(|id| !ctx.fetched.contains(id))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = due.iter().map(String::as_str).collect();
        self.fetch_and_stage(ctx, &ids).await?;
        imports::held_checked(&self.db, account, store, now).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration as Span, TimeZone};

    use super::*;

    fn settings() -> ImportSettings {
        ImportSettings {
            lease_ttl: Duration::from_secs(30),
            overlap: Span::minutes(10),
            initial_lookback: Span::days(30),
            page_size: 1000,
            info_concurrency: 4,
            batch_size: 200,
            max_batch: 2000,
            batch_max_wait: Duration::from_secs(2),
            daily_quota: 50_000,
            auto_quota_share: 0.8,
            held_budget: 10_000,
            public_url: "http://localhost".into(),
        }
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, h, m, 0).unwrap()
    }

    #[test]
    fn the_window_runs_from_the_cursor_less_the_overlap_to_just_before_yahoos_now() {
        let s = settings();
        let cursor = Cursor { at: Some(at(10, 0)), set_at: Some(at(10, 0)) };
        assert_eq!(auto_window(cursor, at(10, 5), at(10, 5), &s), (at(9, 50), at(10, 5) - Span::seconds(2)));
        // A first run looks back 30 days.
        let (from, to) = auto_window(Cursor::default(), at(10, 5), at(10, 5), &s);
        assert_eq!(to - from, Span::days(30));
        // Yahoo's clock ahead of ours: the window follows Yahoo's.
        assert_eq!(auto_window(cursor, at(11, 0), at(10, 5), &s).1, at(11, 0) - Span::seconds(2));
    }

    #[test]
    fn a_cursor_past_yahoos_clock_is_taken_back_by_the_time_since_it_was_written() {
        let s = settings();
        // Written at 10:00 (ours) while Yahoo's clock read 10:50; Yahoo's clock has since been
        // moved back to the truth, and it is 10:30 here and there.
        let cursor = Cursor { at: Some(at(10, 50)), set_at: Some(at(10, 0)) };
        let (from, to) = auto_window(cursor, at(10, 30), at(10, 30), &s);
        assert_eq!(to, at(10, 30) - Span::seconds(2));
        // Everything Yahoo has published in the 30 minutes since, with the overlap.
        assert_eq!(from, to - Span::minutes(30) - Span::minutes(10));
        assert!(from <= at(10, 0));
        // Not knowing when it was written: back the whole lookback.
        let unknown = Cursor { at: Some(at(10, 50)), set_at: None };
        assert_eq!(auto_window(unknown, at(10, 30), at(10, 30), &s).0, to - Span::days(30) - Span::minutes(10));
        // Our own clock moved back too: never a window that ends before it starts.
        let (from, to) = auto_window(cursor, at(10, 30), at(9, 0), &s);
        assert_eq!(to - from, Span::minutes(10));
    }
}
