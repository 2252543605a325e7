//! Writing orders: an import's batch ([`write_batch`]) and a 社内メモ ([`set_note`]).
//!
//! A batch's sequence is written once (in `write_batch_now`): the lease fence, the orders'
//! upsert, their item lines replaced, their history appended, the unchanged orders marked
//! checked, the cursor and the orders left to retry. The steps whose SQL really differs
//! between the backends are the [`BatchDialect`]: SQLite writes many rows per statement with
//! anonymous parameters, PostgreSQL one statement per table with array parameters (`unnest`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    HistoryActor, OrderPk,
    columns::{self, Array, COLUMNS, Value},
};
use crate::{
    db::{
        Db,
        lease::{Leased, fence_sql},
        rules::{RuleTarget, RuleTx, TRIGGER_IMPORT, trigger_change},
        with_pool,
    },
    domain::{
        AccountId, StoreId,
        order::{HistoryLine, OrderDetail, OrderItem},
        store::InternalStatus,
    },
};

/// One order to write: Yahoo's fields, the internal status for a new order, and its history.
#[derive(Clone, Debug)]
pub struct OrderWrite {
    pub detail: OrderDetail,
    /// Used only when the order is new; an existing order keeps its own.
    pub new_status: InternalStatus,
    /// Fraud confirmed (1 → 3) just now: flag it for cancellation.
    pub flag_cancel: bool,
    pub history: Vec<HistoryLine>,
    /// An existing order Yahoo's change moves on by itself, `(from, to)`, applied only if it is
    /// still at `from` when written (a person's change since stands): paid at Yahoo, 入金待ち →
    /// 出荷待ち (`import::rules::paid_now`); a held order the automatic change left at 失敗,
    /// released now, to that change's target (`import::rules::released_move`).
    pub moves_on: Option<(InternalStatus, InternalStatus)>,
    /// A held order released or confirmed just now: the owners are told by mail.
    pub notify: Option<crate::domain::mail::MailKind>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another process holds this store's import now; nothing was written.
    #[error("the import lease was lost")]
    LeaseLost,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a batch wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub inserted: u64,
    pub updated: u64,
    pub checked: u64,
}

/// One transaction's worth of an import's writes.
#[derive(Clone, Debug)]
pub struct Batch {
    pub writes: Vec<OrderWrite>,
    /// Orders looked at again and found unchanged: only their `checked_at` moves.
    pub unchanged: Vec<String>,
    /// Moves the store's cursor here in the same transaction.
    pub cursor_to: Option<DateTime<Utc>>,
    /// With the cursor: the orders the next run must fetch by ID (they failed in this run's
    /// window, which the cursor now passes), as `[[order ID, reason], …]` JSON. Written in the
    /// same transaction, so the cursor never passes an order without it being listed.
    pub retry: Option<String>,
    /// The lease that must still be this process's (`None`: a person's re-import).
    pub lease_owner: Option<String>,
    /// The service's URL for links in the notifications this batch queues (`None`: it queues
    /// none, as for a person's re-import: they are looking at the order).
    pub notify_base: Option<String>,
    pub actor: HistoryActor,
    pub now: DateTime<Utc>,
}

/// Writes one batch of an import in one transaction: upserts the writes keyed by (store, order
/// ID), replaces their item lines, appends their history, marks the unchanged ones as checked
/// now, and moves the cursor when asked. With a lease owner, the store's lease is checked first
/// (and on PostgreSQL its row locked until commit), so a process that lost its lease writes
/// nothing.
///
/// The transaction runs on a task of its own and always reaches its commit or rollback: a
/// caller cancelled half-way (an import task killed, a request dropped) would otherwise hand a
/// pooled connection back inside an open transaction, whose locks then block everyone.
pub async fn write_batch(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    batch: Batch,
) -> Result<BatchOutcome, BatchError> {
    start_batch(db, account_id, store_id, batch).finish().await
}

/// A batch being written on its own task (see [`start_batch`]).
pub struct BatchWrite {
    task: Option<tokio::task::JoinHandle<Result<BatchOutcome, BatchError>>>,
    ended: Option<Result<BatchOutcome, BatchError>>,
}

impl BatchWrite {
    /// Whether the batch is committed (or failed) already.
    pub fn is_done(&self) -> bool {
        self.task.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits until the batch is committed (or failed), keeping the outcome for [`finish`].
    /// Cancel-safe: dropped half-way, the write goes on and can be waited for again.
    ///
    /// [`finish`]: BatchWrite::finish
    pub async fn done(&mut self) {
        if let Some(task) = &mut self.task {
            let ended = task
                .await
                .map_err(|e| BatchError::Db(sqlx::Error::Protocol(format!("the write task ended: {e}"))))
                .and_then(|r| r);
            self.ended = Some(ended);
            self.task = None;
        }
    }

    /// Waits until the batch is committed (or failed).
    pub async fn finish(mut self) -> Result<BatchOutcome, BatchError> {
        self.done().await;
        self.ended.take().unwrap_or(Ok(BatchOutcome::default()))
    }
}

/// Starts [`write_batch`] without waiting for it, so that the caller can prepare the next
/// batch meanwhile. The write reaches its commit or rollback even if the handle is dropped.
pub fn start_batch(db: &Db, account_id: AccountId, store_id: StoreId, batch: Batch) -> BatchWrite {
    let db = db.clone();
    let task = tokio::spawn(async move { write_batch_now(&db, account_id, store_id, &batch).await });
    BatchWrite { task: Some(task), ended: None }
}

/// Time spent in import transactions by this process, begin to commit (`bench import` prints
/// it; `/metrics` has each batch's time and size as `import_batch_seconds`, `import_batch_orders`).
pub fn write_time() -> std::time::Duration {
    std::time::Duration::from_nanos(WRITE_NANOS.load(std::sync::atomic::Ordering::Relaxed))
}

static WRITE_NANOS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn write_batch_now(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    batch: &Batch,
) -> Result<BatchOutcome, BatchError> {
    let started = std::time::Instant::now();
    // The sequence, once: `with_pool!` types it against each backend, whose connection brings
    // its own [`BatchDialect`].
    let outcome: Result<BatchOutcome, BatchError> = with_pool!(db, |pool| {
        async {
            let Batch { writes, unchanged, cursor_to, retry, lease_owner, notify_base, actor, now } = batch;
            let now = *now;
            let mut outcome = BatchOutcome::default();
            let mut tx = pool.begin().await?;
            tx.start().await?;
            // The fence: a process that lost the store's lease writes nothing.
            if let Some(owner) = lease_owner.as_deref() {
                let sql = fence_sql(Leased::StoreImport);
                let held = sqlx::query(&sql).bind(store_id).bind(owner).bind(now).execute(&mut *tx).await?;
                if held.rows_affected() != 1 {
                    return Err(BatchError::LeaseLost);
                }
            }
            // The orders: inserted, or replacing Yahoo's fields of the stored ones.
            let mut pks: HashMap<&str, OrderPk> = HashMap::with_capacity(writes.len());
            let mut existing: Vec<OrderPk> = Vec::new();
            let mut inserted: std::collections::HashSet<OrderPk> = std::collections::HashSet::new();
            if !writes.is_empty() {
                for (pk, order_id, imported_at) in tx.upsert_orders(account_id, store_id, now, writes).await? {
                    if imported_at == now {
                        outcome.inserted += 1;
                        inserted.insert(pk);
                    } else {
                        outcome.updated += 1;
                        existing.push(pk);
                    }
                    if let Some(w) = writes.iter().find(|w| w.detail.order_id == order_id) {
                        pks.insert(w.detail.order_id.as_str(), pk);
                    }
                }
            }
            // Item lines: replaced as a whole (a new order has none to delete).
            if !existing.is_empty() {
                tx.delete_items(&existing).await?;
            }
            let pk_of = |w: &OrderWrite| pks.get(w.detail.order_id.as_str()).copied();
            let items: Vec<(OrderPk, &OrderItem)> = writes
                .iter()
                .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                .flat_map(|(pk, w)| w.detail.items.iter().map(move |i| (pk, i)))
                .collect();
            if !items.is_empty() {
                tx.insert_items(&items).await?;
            }
            // History, appended.
            let lines: Vec<(OrderPk, &HistoryLine)> = writes
                .iter()
                .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                .flat_map(|(pk, w)| w.history.iter().map(move |h| (pk, h)))
                .collect();
            if !lines.is_empty() {
                tx.insert_history(account_id, actor.parts(), now, &lines).await?;
            }
            // Moved on by Yahoo's change (paid; a held order released), only from where it stood
            // (a person's change since stands).
            for (pk, (from, to)) in writes.iter().filter_map(|w| pk_of(w).zip(w.moves_on)) {
                sqlx::query(
                    "update yahoo_order set internal_status = $4, updated_at = $3
                     where account_id = $1 and id = $2 and internal_status = $5",
                )
                .bind(account_id)
                .bind(pk)
                .bind(now)
                .bind(to.as_str())
                .bind(from.as_str())
                .execute(&mut *tx)
                .await?;
            }
            // The account's rules, on the orders that arrived and those Yahoo changed (with a
            // difference the history names), in this transaction: a killed import leaves no
            // order half-ruled, and its rerun applies them once.
            let targets: Vec<RuleTarget> = writes
                .iter()
                .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                .filter(|(pk, w)| inserted.contains(pk) || !w.history.is_empty())
                .map(|(pk, w)| RuleTarget {
                    pk,
                    store: store_id,
                    detail: &w.detail,
                    trigger: if inserted.contains(&pk) { TRIGGER_IMPORT.to_owned() } else { trigger_change(&w.detail) },
                })
                .collect();
            if !targets.is_empty() {
                tx.apply_rules(account_id, &targets, None, actor, now).await?;
            }
            // Held orders released or confirmed at Yahoo: a notice each, raised with the change
            // itself (the notifier folds them into mail for whoever wants them).
            if let Some(base) = notify_base {
                use crate::db::notify::{NewNotice, NoticeTx};
                let notices: Vec<NewNotice> = writes
                    .iter()
                    .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                    .filter_map(|(pk, w)| {
                        w.notify.map(|kind| NewNotice {
                            account: account_id,
                            store: Some(store_id),
                            kind,
                            key: w.detail.order_id.clone(),
                            line: w.detail.order_id.clone(),
                            link: format!("{base}/orders/{pk}"),
                        })
                    })
                    .collect();
                if !notices.is_empty() {
                    tx.raise(&notices, now).await?;
                }
            }
            // Orders looked at again and found unchanged: only when they were checked moves.
            if !unchanged.is_empty() {
                outcome.checked = tx.mark_checked(account_id, store_id, now, unchanged).await?;
            }
            // The cursor, with the orders the next run must fetch by ID, in the same transaction.
            // It is set to the window's end even when that is earlier than where it stood: only
            // the run holding the store's lease moves it, and a cursor past Yahoo's clock (moved
            // back) must come back to it. `cursor_set_at` is our clock's (see
            // `import::auto_window`).
            if let Some(to) = cursor_to {
                sqlx::query(
                    "update store_import set cursor_at = $3, cursor_set_at = $4, updated_at = $4
                     where store_id = $1 and account_id = $2",
                )
                .bind(store_id)
                .bind(account_id)
                .bind(*to)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(retry) = retry {
                sqlx::query("update store_import set retry_orders = $3 where store_id = $1 and account_id = $2")
                    .bind(store_id)
                    .bind(account_id)
                    .bind(retry.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(outcome)
        }
        .await
    });
    if let (Db::Postgres(pool), Ok(o)) = (db, &outcome)
        && o.inserted > 0
    {
        refresh_statistics(pool);
    }
    let took = started.elapsed();
    WRITE_NANOS.fetch_add(took.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    metrics::histogram!("import_batch_seconds").record(took.as_secs_f64());
    metrics::histogram!("import_batch_orders").record(batch.writes.len() as f64);
    outcome
}

/// What a row of the upsert returns: the order's key, its Yahoo order ID and when it was first
/// imported (`now` for an order this batch inserted).
type Upserted = (OrderPk, String, DateTime<Utc>);

/// The steps of a batch write whose SQL differs between the backends (its history insert is
/// also every other path's that writes an order's 履歴 inside its own transaction).
pub(crate) trait BatchDialect {
    /// Settings of the batch's transaction.
    async fn start(&mut self) -> sqlx::Result<()>;
    async fn upsert_orders(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        writes: &[OrderWrite],
    ) -> sqlx::Result<Vec<Upserted>>;
    async fn delete_items(&mut self, orders: &[OrderPk]) -> sqlx::Result<()>;
    async fn insert_items(&mut self, items: &[(OrderPk, &OrderItem)]) -> sqlx::Result<()>;
    async fn insert_history(
        &mut self,
        account_id: AccountId,
        actor: (&str, &str),
        now: DateTime<Utc>,
        lines: &[(OrderPk, &HistoryLine)],
    ) -> sqlx::Result<()>;
    async fn mark_checked(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        order_ids: &[String],
    ) -> sqlx::Result<u64>;
}

/// `(?, ?, …)` rows of `per_row` anonymous parameters. SQLite statements of many rows use `?`
/// rather than `$N`: SQLite finds a numbered parameter's name by a linear scan of the
/// statement's names (so binding costs the square of their number), an anonymous one at once.
fn sqlite_rows(rows: usize, per_row: usize) -> String {
    let row = format!("({})", sqlite_list(per_row));
    vec![row.as_str(); rows].join(", ")
}

/// `?, ?, …`: a list of `n` anonymous parameters (for `in (…)`).
fn sqlite_list(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// Rows per statement on SQLite: with anonymous parameters a statement of many rows costs
/// what its rows cost, and saves a round trip to the connection's thread per row.
const SQLITE_PARAMS_PER_STATEMENT: usize = 3000;

/// SQLite: multi-row statements of anonymous parameters.
impl BatchDialect for sqlx::SqliteConnection {
    async fn start(&mut self) -> sqlx::Result<()> {
        Ok(())
    }

    async fn upsert_orders(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        writes: &[OrderWrite],
    ) -> sqlx::Result<Vec<Upserted>> {
        // The batch writes its new orders' search terms itself, in key order (see
        // migrations/sqlite/0019_import_speed.sql); the marker never outlives this transaction.
        sqlx::query("insert into order_search_batch (id) values (1)").execute(&mut *self).await?;
        let per_row = COLUMNS.len() + 7;
        let mut upserted = Vec::with_capacity(writes.len());
        for chunk in writes.chunks(SQLITE_PARAMS_PER_STATEMENT / per_row) {
            let sql = format!(
                "insert into yahoo_order (account_id, store_id, checked_at, imported_at, updated_at, {},
                     internal_status, cancel_flagged)
                 values {}
                 on conflict (store_id, order_id) do update set {},
                     checked_at = excluded.checked_at, updated_at = excluded.updated_at,
                     cancel_flagged = (yahoo_order.cancel_flagged or excluded.cancel_flagged)
                 returning id, order_id, imported_at",
                columns::names(),
                sqlite_rows(chunk.len(), per_row),
                columns::replaced(),
            );
            let mut q = sqlx::query_as::<_, Upserted>(&sql);
            for w in chunk {
                q = q.bind(account_id).bind(store_id).bind(now).bind(now).bind(now);
                for column in COLUMNS {
                    q = match (column.value)(&w.detail) {
                        Value::Text(v) => q.bind(v),
                        Value::Int(v) => q.bind(v),
                        Value::OptInt(v) => q.bind(v),
                        Value::Time(v) => q.bind(v),
                        Value::OptTime(v) => q.bind(v),
                        Value::OptDate(v) => q.bind(v),
                        Value::OptBool(v) => q.bind(v),
                    };
                }
                q = q.bind(w.new_status.as_str()).bind(w.flag_cancel);
            }
            upserted.extend(q.fetch_all(&mut *self).await?);
        }
        let inserted: Vec<OrderPk> = upserted.iter().filter(|(_, _, at)| *at == now).map(|(pk, _, _)| *pk).collect();
        for part in inserted.chunks(SQLITE_PARAMS_PER_STATEMENT) {
            let sql = format!(
                "insert or ignore into order_search (account_id, term, order_pk, order_time)
                 select account_id, term, order_pk, order_time from order_search_terms
                 where order_pk in ({}) and term <> ''
                 order by account_id, term, order_pk",
                sqlite_list(part.len())
            );
            let mut q = sqlx::query(&sql);
            for pk in part {
                q = q.bind(*pk);
            }
            q.execute(&mut *self).await?;
        }
        sqlx::query("delete from order_search_batch").execute(&mut *self).await?;
        Ok(upserted)
    }

    async fn delete_items(&mut self, orders: &[OrderPk]) -> sqlx::Result<()> {
        for part in orders.chunks(SQLITE_PARAMS_PER_STATEMENT) {
            let sql = format!("delete from order_item where order_pk in ({})", sqlite_list(part.len()));
            let mut q = sqlx::query(&sql);
            for pk in part {
                q = q.bind(*pk);
            }
            q.execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_items(&mut self, items: &[(OrderPk, &OrderItem)]) -> sqlx::Result<()> {
        for part in items.chunks(SQLITE_PARAMS_PER_STATEMENT / 11) {
            let sql = format!(
                "insert into order_item (order_pk, line_id, item_id, title, sub_code, options, unit_price, quantity,
                     tax_ratio, product_id, category_id) values {}",
                sqlite_rows(part.len(), 11)
            );
            let mut q = sqlx::query(&sql);
            for (pk, item) in part {
                q = q
                    .bind(*pk)
                    .bind(item.line_id)
                    .bind(&item.item_id)
                    .bind(&item.title)
                    .bind(&item.sub_code)
                    .bind(serde_json::to_string(&item.options).unwrap_or_else(|_| "[]".into()))
                    .bind(item.unit_price)
                    .bind(item.quantity)
                    .bind(item.tax_ratio)
                    .bind(&item.product_id)
                    .bind(item.category_id);
            }
            q.execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn insert_history(
        &mut self,
        account_id: AccountId,
        (actor_type, actor_name): (&str, &str),
        now: DateTime<Utc>,
        lines: &[(OrderPk, &HistoryLine)],
    ) -> sqlx::Result<()> {
        for part in lines.chunks(SQLITE_PARAMS_PER_STATEMENT / 7) {
            let sql = format!(
                "insert into order_history (account_id, actor_type, actor, created_at, order_pk, kind, message) values {}",
                sqlite_rows(part.len(), 7)
            );
            let mut q = sqlx::query(&sql);
            for (pk, line) in part {
                q = q
                    .bind(account_id)
                    .bind(actor_type)
                    .bind(actor_name)
                    .bind(now)
                    .bind(*pk)
                    .bind(line.kind)
                    .bind(&line.message);
            }
            q.execute(&mut *self).await?;
        }
        Ok(())
    }

    async fn mark_checked(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        order_ids: &[String],
    ) -> sqlx::Result<u64> {
        let mut checked = 0;
        for part in order_ids.chunks(SQLITE_PARAMS_PER_STATEMENT) {
            let sql = format!(
                "update yahoo_order set checked_at = ? where account_id = ? and store_id = ? and order_id in ({})",
                sqlite_list(part.len())
            );
            let mut q = sqlx::query(&sql).bind(now).bind(account_id).bind(store_id);
            for id in part {
                q = q.bind(id.as_str());
            }
            checked += q.execute(&mut *self).await?.rows_affected();
        }
        Ok(checked)
    }
}

/// The upsert of a batch's orders on PostgreSQL: `$1` account, `$2` store, `$3` now, then one
/// array per column of [`COLUMNS`], the internal status and the cancel flag.
fn pg_upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let types = columns::pg_types().into_iter().chain(["text", "boolean"]);
        let arrays = types.enumerate().map(|(i, t)| format!("${}::{t}[]", i + 4)).collect::<Vec<_>>();
        format!(
            "insert into yahoo_order (account_id, store_id, checked_at, imported_at, updated_at, {},
                 internal_status, cancel_flagged)
             select $1, $2, $3, $3, $3, t.* from unnest({}) as t
             on conflict (store_id, order_id) do update set {},
                 checked_at = excluded.checked_at, updated_at = excluded.updated_at,
                 cancel_flagged = (yahoo_order.cancel_flagged or excluded.cancel_flagged)
             returning id, order_id, imported_at",
            columns::names(),
            arrays.join(", "),
            columns::replaced(),
        )
    })
}

/// PostgreSQL: each table written with one statement of array parameters (`unnest`), however
/// many orders the batch has (a multi-row `values` list of ten thousand parameters costs
/// PostgreSQL more to parse and plan than to write).
impl BatchDialect for sqlx::PgConnection {
    async fn start(&mut self) -> sqlx::Result<()> {
        // An import batch can always be fetched again, and the cursor commits with it: a batch
        // lost to a PostgreSQL crash is redone by the next run, so it need not wait for its WAL
        // flush (on this kind of disk the flush costs more than the batch).
        sqlx::query("set local synchronous_commit = off").execute(&mut *self).await.map(drop)
    }

    async fn upsert_orders(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        writes: &[OrderWrite],
    ) -> sqlx::Result<Vec<Upserted>> {
        let details: Vec<&OrderDetail> = writes.iter().map(|w| &w.detail).collect();
        let arrays = Array::columns(&details);
        let status: Vec<&str> = writes.iter().map(|w| w.new_status.as_str()).collect();
        let cancel: Vec<bool> = writes.iter().map(|w| w.flag_cancel).collect();
        let mut q = sqlx::query_as::<_, Upserted>(pg_upsert_sql()).bind(account_id).bind(store_id).bind(now);
        for array in &arrays {
            q = match array {
                Array::Text(v) => q.bind(v),
                Array::Int(v) => q.bind(v),
                Array::Time(v) => q.bind(v),
                Array::Date(v) => q.bind(v),
                Array::Bool(v) => q.bind(v),
            };
        }
        q.bind(&status).bind(&cancel).fetch_all(&mut *self).await
    }

    async fn delete_items(&mut self, orders: &[OrderPk]) -> sqlx::Result<()> {
        let pks: Vec<i64> = orders.iter().map(|pk| pk.0).collect();
        sqlx::query("delete from order_item where order_pk = any($1)").bind(&pks).execute(&mut *self).await.map(drop)
    }

    async fn insert_items(&mut self, items: &[(OrderPk, &OrderItem)]) -> sqlx::Result<()> {
        let options: Vec<String> =
            items.iter().map(|(_, i)| serde_json::to_string(&i.options).unwrap_or_else(|_| "[]".into())).collect();
        sqlx::query(
            "insert into order_item (order_pk, line_id, item_id, title, sub_code, options, unit_price, quantity,
                 tax_ratio, product_id, category_id)
             select * from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                 $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[])",
        )
        .bind(items.iter().map(|(pk, _)| pk.0).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.line_id).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.item_id.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.title.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.sub_code.as_str()).collect::<Vec<_>>())
        .bind(&options)
        .bind(items.iter().map(|(_, i)| i.unit_price).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.quantity).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.tax_ratio).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.product_id.as_str()).collect::<Vec<_>>())
        .bind(items.iter().map(|(_, i)| i.category_id).collect::<Vec<_>>())
        .execute(&mut *self)
        .await
        .map(drop)
    }

    async fn insert_history(
        &mut self,
        account_id: AccountId,
        (actor_type, actor_name): (&str, &str),
        now: DateTime<Utc>,
        lines: &[(OrderPk, &HistoryLine)],
    ) -> sqlx::Result<()> {
        sqlx::query(
            "insert into order_history (account_id, actor_type, actor, created_at, order_pk, kind, message)
             select $1, $2, $3, $4, t.* from unnest($5::bigint[], $6::text[], $7::text[]) as t",
        )
        .bind(account_id)
        .bind(actor_type)
        .bind(actor_name)
        .bind(now)
        .bind(lines.iter().map(|(pk, _)| pk.0).collect::<Vec<_>>())
        .bind(lines.iter().map(|(_, l)| l.kind).collect::<Vec<_>>())
        .bind(lines.iter().map(|(_, l)| l.message.as_str()).collect::<Vec<_>>())
        .execute(&mut *self)
        .await
        .map(drop)
    }

    async fn mark_checked(
        &mut self,
        account_id: AccountId,
        store_id: StoreId,
        now: DateTime<Utc>,
        order_ids: &[String],
    ) -> sqlx::Result<u64> {
        sqlx::query(
            "update yahoo_order set checked_at = $3 where account_id = $1 and store_id = $2 and order_id = any($4)",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(now)
        .bind(order_ids)
        .execute(&mut *self)
        .await
        .map(|r| r.rows_affected())
    }
}

/// Analyzes `yahoo_order` once it holds more than twice the rows the planner last counted.
/// A store's first import can multiply the table within seconds, long before autovacuum looks
/// (a minute at least); until then the planner thinks the table nearly empty and reads an
/// import page's thousand known orders by scanning the store's orders with each of them
/// (`bench import` on a fresh database: a plan flip doubled the import's time).
///
/// On a task of its own, one at a time per process, so that the next batch does not wait for
/// it; only the columns that the import's and the list's conditions read (the row count comes
/// with any analyze; autovacuum analyzes every column later, 0.3–0.9 s of a 20,000-order
/// import's writer time went to the whole-table analyze).
fn refresh_statistics(pool: &sqlx::PgPool) {
    static RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if RUNNING.swap(true, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    // Cleared however the task ends, so that a failed or dropped analyze never stops the next.
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            RUNNING.store(false, std::sync::atomic::Ordering::Release);
        }
    }
    let (pool, running) = (pool.clone(), Running);
    tokio::spawn(async move {
        let _running = running;
        let due: sqlx::Result<Option<bool>> = sqlx::query_scalar(
            "select n_mod_since_analyze > greatest(c.reltuples, 1000)
             from pg_class c join pg_stat_user_tables s on s.relid = c.oid
             where c.oid = 'yahoo_order'::regclass",
        )
        .fetch_optional(&pool)
        .await;
        if let Ok(Some(true)) = due
            && let Err(e) = sqlx::query(
                "analyze (skip_locked) yahoo_order (account_id, store_id, order_id, order_time, publication_time,
                     internal_status, fraud_hold_status)",
            )
            .execute(&pool)
            .await
            // A pool closed meanwhile (a test's database dropped) leaves nothing to analyze.
            && !matches!(e, sqlx::Error::PoolClosed)
        {
            tracing::warn!(error = %e, "analyzing yahoo_order failed");
        }
    });
}

/// Saves an order's 社内メモ with a history line, in one transaction.
pub async fn set_note(
    db: &Db,
    account_id: AccountId,
    pk: OrderPk,
    note: &str,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let (actor_type, actor_name) = actor.parts();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let changed =
            sqlx::query("update yahoo_order set note = $3, updated_at = $4 where account_id = $1 and id = $2")
                .bind(account_id)
                .bind(pk)
                .bind(note)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 1 {
            let message = if note.is_empty() {
                "社内メモを消去しました".to_owned()
            } else {
                "社内メモを更新しました".to_owned()
            };
            sqlx::query(
                "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
                 values ($1, $2, $3, $4, 'note', $5, $6)",
            )
            .bind(account_id)
            .bind(pk)
            .bind(actor_type)
            .bind(actor_name)
            .bind(message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}
