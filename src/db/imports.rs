//! Where each store's import stands (cursor, lease, stops, today's calls) and the record of
//! every import run. The store's import lease is the row's `lease_owner`/`lease_until`, taken and
//! renewed through [`crate::db::lease`] like every job's.
//!
//! The scheduler's queries ([`due_stores`], [`queued_runs`]) span accounts: they are the jobs'
//! view, never reachable from a route. Everything a page reads takes the account.

use chrono::{DateTime, Utc};

use super::{
    Db,
    audit::{self, Note},
    with_pool,
};
use crate::domain::{AccountId, StoreId, scope::OrderScope};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether the authentication block of `store_import i` on `store s` is still in force: set, and
/// nobody has acted since (reconnecting or saving a key touches the store, which lifts it). The
/// scheduler, the outbox, the store page and support's console all ask this one condition.
pub const BLOCK_IN_FORCE: &str = "(i.blocked_at is not null and s.updated_at <= i.blocked_at
     and (s.authorized_at is null or s.authorized_at <= i.blocked_at))";

/// A store's import state as the store page and the importer see it.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct ImportState {
    pub cursor_at: Option<DateTime<Utc>>,
    /// When the cursor was written, on our clock (not Yahoo's).
    pub cursor_set_at: Option<DateTime<Utc>>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// The authentication failure that stops automatic import, while it is in force
    /// ([`BLOCK_IN_FORCE`]: after 再認証 it is gone at once, not at the next run's end).
    pub blocked_reason: Option<String>,
    pub blocked_at: Option<DateTime<Utc>>,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub held_checked_at: Option<DateTime<Utc>>,
    pub calls_day: Option<String>,
    pub calls_today: i64,
    /// The account's emergency stop, if any.
    pub account_stopped_reason: Option<String>,
    pub account_stopped_at: Option<DateTime<Utc>>,
    /// Automatic runs that found nothing since the last recorded one, and when the last was
    /// ([`fold_idle_run`]).
    pub idle_polls: i64,
    pub idle_at: Option<DateTime<Utc>>,
    /// Orders an earlier run could not fetch although the cursor passed them (JSON; see
    /// [`ImportState::retry_orders`]).
    retry_orders: Option<String>,
}

impl ImportState {
    /// The orders the next run fetches by ID: failures of an earlier run past the cursor.
    pub fn retry_orders(&self) -> Vec<String> {
        failures_from_json(self.retry_orders.as_deref()).into_iter().map(|(id, _)| id).collect()
    }

    /// 緊急停止 of the store or of its whole account.
    pub fn emergency_stopped(&self) -> bool {
        self.stopped_at.is_some() || self.account_stopped_at.is_some()
    }

    /// Whether a run started at `started` must stop: an automatic run stops for any stop; a
    /// manual one only for a stop pressed after it started (manual import is how a merchant
    /// works during an emergency stop).
    pub fn halts(&self, automatic: bool, started: DateTime<Utc>) -> bool {
        let since = |t: Option<DateTime<Utc>>| t.is_some_and(|t| automatic || t >= started);
        since(self.stopped_at) || since(self.account_stopped_at)
    }

    /// Calls made on the JST day `day` (zero on a new day).
    pub fn calls_on(&self, day: &str) -> i64 {
        if self.calls_day.as_deref() == Some(day) { self.calls_today } else { 0 }
    }
}

/// Makes sure the store has its import row (created on first use; stores predate imports).
pub async fn ensure(db: &Db, account_id: AccountId, store_id: StoreId, now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "insert into store_import (store_id, account_id, next_run_at, updated_at)
             select id, account_id, $3, $3 from store where id = $1 and account_id = $2
             on conflict (store_id) do nothing",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

pub async fn state(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<ImportState> {
    let row: Option<ImportState> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select i.cursor_at, i.cursor_set_at, i.next_run_at, i.lease_owner, i.lease_until,
                    case when {BLOCK_IN_FORCE} then i.blocked_reason end as blocked_reason,
                    case when {BLOCK_IN_FORCE} then i.blocked_at end as blocked_at,
                    i.stopped_reason, i.stopped_at, i.held_checked_at, i.calls_day, coalesce(i.calls_today, 0) as calls_today,
                    a.stopped_reason as account_stopped_reason, a.stopped_at as account_stopped_at, i.retry_orders,
                    coalesce(i.idle_polls, 0) as idle_polls, i.idle_at
             from account a
             left join store_import i on i.account_id = a.id and i.store_id = $2
             left join store s on s.id = i.store_id and s.account_id = a.id
             where a.id = $1"
        ))
        .bind(account_id)
        .bind(store_id)
        .fetch_optional(p)
        .await
    })?;
    Ok(row.unwrap_or_default())
}

/// A store whose automatic import is due.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct DueStore {
    pub account_id: AccountId,
    pub store_id: StoreId,
    /// When its run was due (the scheduler's lag is measured from it).
    pub next_run_at: DateTime<Utc>,
}

/// Gives every store with automatic import its import row (stores predate imports, and a store
/// whose automatic import was just turned on has none yet). It reads every store, so the
/// scheduler runs it every few seconds, not on every pass.
pub async fn ensure_rows(db: &Db, now: DateTime<Utc>) -> sqlx::Result<u64> {
    with_pool!(db, |p| {
        sqlx::query(
            "insert into store_import (store_id, account_id, next_run_at, updated_at)
             select s.id, s.account_id, $1, $1 from store s
             where s.auto_import_enabled and not exists (select 1 from store_import i where i.store_id = s.id)",
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
}

/// Stores whose automatic import is due and whose lease is free: enabled, connected, with a
/// public key (Yahoo refuses order APIs without one; the store page says the import starts once
/// it is set), not stopped, and not blocked by an authentication failure that nobody has acted on since
/// (reconnecting or saving a key touches the store, which lifts the block).
pub async fn due_stores(db: &Db, now: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<DueStore>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select i.account_id, i.store_id, i.next_run_at
             from store_import i
             join store s on s.id = i.store_id and s.account_id = i.account_id
             join account a on a.id = i.account_id
             where s.auto_import_enabled and s.refresh_token_enc is not null
               and s.public_key_pem is not null and s.public_key_version is not null
               and i.next_run_at <= $1
               and (i.lease_until is null or i.lease_until < $1)
               and i.stopped_at is null and a.stopped_at is null
               and not {BLOCK_IN_FORCE}
             order by i.next_run_at
             limit $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// Sets when the store's next automatic run is due, while `owner` holds its import lease (the
/// lease itself is [`crate::db::lease`]'s).
pub async fn set_next_run(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    owner: &str,
    next_run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "update store_import set next_run_at = $4, updated_at = $5
             where store_id = $1 and account_id = $2 and lease_owner = $3",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(owner)
        .bind(next_run_at)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// Records (or with `None` clears) the authentication failure that stops automatic import.
pub async fn set_blocked(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "update store_import set blocked_reason = $3,
                 blocked_at = case when $3 is null then null else $4 end, updated_at = $4
             where store_id = $1 and account_id = $2",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(reason)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// 緊急停止 of one store (`Some(reason)`), or its end (`None`: the next automatic run is due at
/// once and catches up from the saved cursor). False when there is no such store.
pub async fn set_store_stop(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    reason: Option<&str>,
    now: DateTime<Utc>,
    note: &Note,
) -> sqlx::Result<bool> {
    ensure(db, account_id, store_id, now).await?;
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let changed = sqlx::query(
            "update store_import set stopped_reason = $3, stopped_at = case when $3 is null then null else $4 end,
                 next_run_at = case when $3 is null then $4 else next_run_at end, updated_at = $4
             where store_id = $1 and account_id = $2",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if changed {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(changed)
    })
}

/// The account's emergency stop reason, if it is stopped.
pub async fn account_stop(db: &Db, account_id: AccountId) -> sqlx::Result<Option<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar::<_, Option<String>>(
            "select stopped_reason from account where id = $1 and stopped_at is not null",
        )
        .bind(account_id)
        .fetch_optional(p)
        .await
        .map(|r| r.map(Option::unwrap_or_default))
    })
}

/// The account's stores under their own 緊急停止.
pub async fn stopped_stores(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<StoreId>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select store_id from store_import where account_id = $1 and stopped_at is not null")
            .bind(account_id)
            .fetch_all(p)
            .await
    })
}

/// 緊急停止 of every store of the account, or its end.
pub async fn set_account_stop(
    db: &Db,
    account_id: AccountId,
    reason: Option<&str>,
    now: DateTime<Utc>,
    note: &Note,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query(
            "update account set stopped_reason = $2, stopped_at = case when $2 is null then null else $3 end
             where id = $1",
        )
        .bind(account_id)
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if reason.is_none() {
            sqlx::query("update store_import set next_run_at = $2 where account_id = $1 and stopped_at is null")
                .bind(account_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        audit::record_in(&mut *tx, note).await?;
        tx.commit().await
    })
}

/// Notes that held orders were re-checked now.
pub async fn held_checked(db: &Db, account_id: AccountId, store_id: StoreId, now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("update store_import set held_checked_at = $3 where store_id = $1 and account_id = $2")
            .bind(store_id)
            .bind(account_id)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
    })
}

/// Adds `n` calls to the store's count for the JST day `day`.
pub async fn add_calls(db: &Db, account_id: AccountId, store_id: StoreId, day: &str, n: i64) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "update store_import set
                 calls_today = case when calls_day = $3 then calls_today + $4 else $4 end, calls_day = $3
             where store_id = $1 and account_id = $2",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(day)
        .bind(n)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// Calls made today by every store that uses the same Yahoo app (Client ID) as this one: the
/// daily quota is per app.
///
/// Two steps, each by an index, whatever the planner believes of today's rows: the stores on the
/// app (`store_client`), then their import rows (`bench fleet` at 10,000 stores: as one join,
/// PostgreSQL read every store's import row on every automatic run).
pub async fn app_calls_today(db: &Db, account_id: AccountId, store_id: StoreId, day: &str) -> sqlx::Result<i64> {
    let stores: Vec<StoreId> = with_pool!(db, |p| {
        sqlx::query_scalar(
            "select id from store where client_id = (select client_id from store where id = $2 and account_id = $1)",
        )
        .bind(account_id)
        .bind(store_id)
        .fetch_all(p)
        .await
    })?;
    let mut total = 0;
    for chunk in stores.chunks(db.rows_per_statement(1).max(1)) {
        let sql = format!(
            "select cast(coalesce(sum(calls_today), 0) as bigint) from store_import
             where calls_day = $1 and store_id in ({})",
            (2..2 + chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
        );
        let n: i64 = with_pool!(db, |p| {
            let mut q = sqlx::query_scalar(&sql).bind(day);
            for s in chunk {
                q = q.bind(*s);
            }
            q.fetch_one(p).await
        })?;
        total += n;
    }
    Ok(total)
}

/// How an import run was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Auto,
    Manual,
    /// A 手動取込 a person confirmed while the store (or account) was under 緊急停止: it runs
    /// as a manual import does, and its record says so.
    ManualWhileStopped,
    Reimport,
    Reconcile,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Auto => "auto",
            Trigger::Manual => "manual",
            Trigger::ManualWhileStopped => "manual_stopped",
            Trigger::Reimport => "reimport",
            Trigger::Reconcile => "reconcile",
        }
    }

    /// The value of `import_run.trigger_kind`.
    fn column(self) -> &'static str {
        match self {
            Trigger::ManualWhileStopped => Trigger::Manual.as_str(),
            other => other.as_str(),
        }
    }

    pub fn parse(s: &str) -> Trigger {
        match s {
            "manual" => Trigger::Manual,
            "manual_stopped" => Trigger::ManualWhileStopped,
            "reimport" => Trigger::Reimport,
            "reconcile" => Trigger::Reconcile,
            _ => Trigger::Auto,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Trigger::Auto => "自動",
            Trigger::Manual => "手動",
            Trigger::ManualWhileStopped => "手動（緊急停止中）",
            Trigger::Reimport => "再取込",
            Trigger::Reconcile => "照合",
        }
    }
}

/// One import run, as the runs page shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Run {
    pub id: RunId,
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub store_name: String,
    trigger_kind: String,
    pub status: String,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub owner: String,
    pub pages: i64,
    pub calls: i64,
    pub orders_seen: i64,
    pub orders_total: i64,
    pub orders_new: i64,
    pub orders_changed: i64,
    pub errors: i64,
    pub message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    failures: String,
    /// The request that asked for the run (its 受付番号), when a person did.
    pub request_id: Option<String>,
    /// Running, but its process has not written a heartbeat for longer than the lease: it
    /// died or lost the database (see [`Run::flag_unresponsive`]).
    #[sqlx(skip)]
    pub unresponsive: bool,
}

impl Run {
    /// The orders this run could not fetch, with the reason (its page lists them).
    pub fn failed_orders(&self) -> Vec<(String, String)> {
        failures_from_json(Some(&self.failures))
    }

    pub fn trigger(&self) -> Trigger {
        Trigger::parse(&self.trigger_kind)
    }

    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "queued" | "running")
    }

    /// Marks a running run whose heartbeat is older than the lease as 応答なし: its process
    /// died (the sweep will record it as 中断 after twice the lease) or cannot reach the
    /// database. Pages call this with the lease of the configuration.
    pub fn flag_unresponsive(runs: &mut [Run], lease: std::time::Duration, now: DateTime<Utc>) {
        let before = now - chrono::Duration::from_std(lease).unwrap_or_default();
        for r in runs {
            r.unresponsive = r.status == "running" && r.heartbeat_at < before;
        }
    }

    /// What the pages say of an unresponsive run, with its last sign of life.
    pub fn unresponsive_message(&self) -> String {
        format!(
            "処理しているサーバーから{}以降応答がありません。中断として記録し、次の取込で続きから取り込みます",
            crate::domain::jst::format_response(self.heartbeat_at)
        )
    }

    pub fn status_label(&self) -> &'static str {
        if self.unresponsive {
            return "応答なし（中断）";
        }
        match self.status.as_str() {
            "queued" => "待機中",
            "running" => "実行中",
            "done" => "完了",
            "failed" => "失敗",
            "stopped" => "停止",
            _ => "中断",
        }
    }

    /// Progress in percent (orders looked at of those the search reported).
    pub fn percent(&self) -> i64 {
        if self.status == "done" {
            100
        } else if self.orders_total > 0 {
            (self.orders_seen * 100 / self.orders_total).clamp(0, 100)
        } else {
            0
        }
    }

    pub fn duration_secs(&self) -> Option<i64> {
        self.finished_at.map(|f| (f - self.started_at).num_seconds())
    }
}

const RUN_SELECT: &str = "select r.id, r.account_id, r.store_id, s.name as store_name,
        case when r.while_stopped then 'manual_stopped' else r.trigger_kind end as trigger_kind, r.status,
        r.window_from, r.window_to, r.owner, r.pages, r.calls, r.orders_seen, r.orders_total, r.orders_new,
        r.orders_changed, r.errors, r.message, r.started_at, r.heartbeat_at, r.finished_at, r.failures, r.request_id
    from import_run r join store s on s.id = r.store_id and s.account_id = r.account_id";

/// Records a run: `queued` (a person asked; the scheduler of any process will take it) or
/// `running` (this process holds the lease already).
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn create_run(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    trigger: Trigger,
    status: &str,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    owner: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<RunId> {
    with_pool!(db, |p| {
        sqlx::query_scalar(INSERT_RUN)
            .bind(account_id)
            .bind(store_id)
            .bind(trigger.column())
            .bind(status)
            .bind(window.0)
            .bind(window.1)
            .bind(owner)
            .bind(now)
            .bind(trigger == Trigger::ManualWhileStopped)
            .bind(crate::telemetry::request_id())
            .fetch_one(p)
            .await
    })
}

/// (`trigger_kind` keeps the four kinds its check allows; a manual run during a stop is
/// `manual` with `while_stopped`, read back as [`Trigger::ManualWhileStopped`].)
/// A run's record, with the request that asked for it (none for the scheduler's).
const INSERT_RUN: &str = "insert into import_run (account_id, store_id, trigger_kind, status, window_from, window_to,
         owner, started_at, heartbeat_at, while_stopped, request_id)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) returning id";

/// Queues a run for each of `stores` that a person asked for, with the one audit entry that
/// records the request, in one transaction.
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn queue_runs(
    db: &Db,
    account_id: AccountId,
    stores: &[StoreId],
    trigger: Trigger,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    owner: &str,
    now: DateTime<Utc>,
    note: &Note,
) -> sqlx::Result<Vec<RunId>> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let mut runs = Vec::with_capacity(stores.len());
        for store_id in stores {
            let run: RunId = sqlx::query_scalar(INSERT_RUN)
                .bind(account_id)
                .bind(store_id)
                .bind(trigger.column())
                .bind("queued")
                .bind(window.0)
                .bind(window.1)
                .bind(owner)
                .bind(now)
                .bind(trigger == Trigger::ManualWhileStopped)
                .bind(crate::telemetry::request_id())
                .fetch_one(&mut *tx)
                .await?;
            runs.push(run);
        }
        audit::record_in(&mut *tx, note).await?;
        tx.commit().await?;
        Ok(runs)
    })
}

/// Queued runs, oldest first (across accounts: the scheduler's view).
pub async fn queued_runs(db: &Db, limit: i64) -> sqlx::Result<Vec<Run>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("{RUN_SELECT} where r.status = 'queued' order by r.id limit $1"))
            .bind(limit)
            .fetch_all(p)
            .await
    })
}

/// Moves a queued run to running for `owner`; false when another process took it first.
pub async fn claim_run(db: &Db, run: RunId, owner: &str, now: DateTime<Utc>) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query(
            "update import_run set status = 'running', owner = $2, started_at = $3, heartbeat_at = $3
             where id = $1 and status = 'queued'",
        )
        .bind(run)
        .bind(owner)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Progress counters of a running run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub pages: i64,
    pub calls: i64,
    pub orders_seen: i64,
    pub orders_total: i64,
    pub orders_new: i64,
    pub orders_changed: i64,
    /// Failed calls (each try counts; an order fetched on a later try is not a failure).
    pub errors: i64,
    /// Orders still not fetched when the run ended, with the reason in Japanese.
    pub failures: Vec<(String, String)>,
}

impl Progress {
    /// Nothing new, nothing changed, nothing failed: a check worth counting, not recording.
    pub fn is_idle(&self) -> bool {
        self.orders_new == 0 && self.orders_changed == 0 && self.errors == 0 && self.failures.is_empty()
    }
}

/// `[[order ID, reason], …]`, as runs and the store's import row keep them.
pub fn failures_json(failures: &[(String, String)]) -> String {
    serde_json::to_string(failures).unwrap_or_else(|_| "[]".into())
}

pub fn failures_from_json(json: Option<&str>) -> Vec<(String, String)> {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
}

pub async fn update_run(db: &Db, run: RunId, p: &Progress, now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |pool| {
        sqlx::query(
            "update import_run set pages = $2, calls = $3, orders_seen = $4, orders_total = $5, orders_new = $6,
                 orders_changed = $7, errors = $8, heartbeat_at = $9
             where id = $1",
        )
        .bind(run)
        .bind(p.pages)
        .bind(p.calls)
        .bind(p.orders_seen)
        .bind(p.orders_total)
        .bind(p.orders_new)
        .bind(p.orders_changed)
        .bind(p.errors)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// The run is alive (its process renews its lease).
pub async fn touch_run(db: &Db, run: RunId, now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("update import_run set heartbeat_at = $2 where id = $1")
            .bind(run)
            .bind(now)
            .execute(p)
            .await
            .map(|_| ())
    })
}

/// The PublicationTime window a run searches.
pub async fn set_window(db: &Db, run: RunId, from: DateTime<Utc>, to: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("update import_run set window_from = $2, window_to = $3 where id = $1")
            .bind(run)
            .bind(from)
            .bind(to)
            .execute(p)
            .await
            .map(|_| ())
    })
}

pub async fn finish_run(
    db: &Db,
    run: RunId,
    p: &Progress,
    status: &str,
    message: Option<&str>,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    update_run(db, run, p, now).await?;
    with_pool!(db, |pool| {
        sqlx::query(
            "update import_run set status = $2, message = $3, finished_at = $4,
                 window_from = coalesce($5, window_from), window_to = coalesce($6, window_to), failures = $7
             where id = $1",
        )
        .bind(run)
        .bind(status)
        .bind(message)
        .bind(now)
        .bind(window.0)
        .bind(window.1)
        .bind(failures_json(&p.failures))
        .execute(pool)
        .await
        .map(|_| ())
    })
}

/// Ends an automatic run that found nothing (no new or changed order, no error, nothing left
/// to fetch) without a record: its row goes and the store's count of such checks goes up, in
/// one transaction. A store polled every minute would otherwise add 1,440 rows a day that say
/// nothing; the 取込 page shows the count and the time of the last check instead.
pub async fn fold_idle_run(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    run: RunId,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("delete from import_run where id = $1 and account_id = $2 and store_id = $3")
            .bind(run)
            .bind(account_id)
            .bind(store_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update store_import set idle_polls = idle_polls + 1, idle_at = $3
             where store_id = $1 and account_id = $2",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })
}

/// Starts the count of idle checks again: an automatic run was recorded (it found something,
/// or failed), so the page's count is of the checks since that run.
pub async fn reset_idle(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "update store_import set idle_polls = 0
             where store_id = $1 and account_id = $2 and idle_polls <> 0",
        )
        .bind(store_id)
        .bind(account_id)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// Runs whose process stopped beating (it died): marked abandoned so that pages do not show
/// them running for ever. Their work is safe: the next run redoes what was not committed.
pub async fn abandon_stale(db: &Db, before: DateTime<Utc>, now: DateTime<Utc>) -> sqlx::Result<u64> {
    with_pool!(db, |p| {
        sqlx::query(
            "update import_run set status = 'abandoned', finished_at = $2,
                 message = '処理していたサーバーが停止したため中断しました。次の取込で続きから取り込みます'
             where status = 'running' and heartbeat_at < $1",
        )
        .bind(before)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    })
}

/// Recent runs this reader may see (optionally of one store), newest first.
pub async fn visible_runs(
    db: &Db,
    scope: &OrderScope,
    store_id: Option<StoreId>,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    let limited = super::scope_condition(scope, "r.store_id", 4);
    let sql = format!(
        "{RUN_SELECT} where r.account_id = $1 and ($2 is null or r.store_id = $2){limited} order by r.id desc limit $3"
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(store_id).bind(limit);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}

/// Recent runs of the account (optionally one store), newest first.
pub async fn list_runs(
    db: &Db,
    account_id: AccountId,
    store_id: Option<StoreId>,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "{RUN_SELECT} where r.account_id = $1 and ($2 is null or r.store_id = $2) order by r.id desc limit $3"
        ))
        .bind(account_id)
        .bind(store_id)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// One run, if the reader may see its store (a staff member limited to other stores does not).
pub async fn get_run(db: &Db, scope: &OrderScope, run: RunId) -> sqlx::Result<Option<Run>> {
    let limited = super::scope_condition(scope, "r.store_id", 3);
    let sql = format!("{RUN_SELECT} where r.account_id = $1 and r.id = $2{limited}");
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(run);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_optional(p).await
    })
}
