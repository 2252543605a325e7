//! Imported orders, their item lines and history (product.md §5, §6). Every function takes the
//! account. Writes of an import go through [`write_batch`]: one transaction that upserts the
//! orders, replaces their item lines, appends their history and (on the last batch of a window)
//! moves the store's cursor, fenced by the import lease so that a process that lost its lease
//! cannot write.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db,
    lease::{Leased, fence_sql},
    with_pool,
};
use crate::domain::{
    AccountId, StoreId,
    order::{Address, OrderDetail, OrderItem},
    scope::OrderScope,
    store::InternalStatus,
};

pub use crate::domain::order::{HistoryLine, Known};

/// The primary key of a stored order (never reused).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct OrderPk(pub i64);

impl std::fmt::Display for OrderPk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Yahoo's columns of `yahoo_order`, in the order [`bind_detail`] binds them.
const DETAIL_COLUMNS: [&str; 51] = [
    "order_id",
    "version",
    "order_time",
    "last_update_time",
    "publication_time",
    "order_status",
    "is_seen",
    "fraud_hold_status",
    "cancel_reason",
    "buyer_comments",
    "pay_status",
    "pay_method",
    "pay_method_name",
    "pay_date",
    "bill_last_name",
    "bill_first_name",
    "bill_last_name_kana",
    "bill_first_name_kana",
    "bill_zip_code",
    "bill_prefecture",
    "bill_city",
    "bill_address1",
    "bill_address2",
    "bill_phone",
    "bill_mail",
    "ship_status",
    "ship_method",
    "ship_method_name",
    "ship_request_date",
    "ship_request_time",
    "ship_company_code",
    "ship_invoice_number1",
    "ship_invoice_number2",
    "ship_date",
    "ship_last_name",
    "ship_first_name",
    "ship_last_name_kana",
    "ship_first_name_kana",
    "ship_zip_code",
    "ship_prefecture",
    "ship_city",
    "ship_address1",
    "ship_address2",
    "ship_phone",
    "pay_charge",
    "ship_charge",
    "gift_wrap_charge",
    "discount",
    "use_point",
    "total_price",
    "settle_amount",
];

/// Binds an order's Yahoo fields in [`DETAIL_COLUMNS`] order.
macro_rules! bind_detail {
    ($q:expr, $d:expr) => {{
        let d: &OrderDetail = $d;
        $q.bind(&d.order_id)
            .bind(d.version)
            .bind(d.order_time)
            .bind(d.last_update_time)
            .bind(d.publication_time)
            .bind(i64::from(d.order_status))
            .bind(d.is_seen)
            .bind(i64::from(d.fraud_hold_status))
            .bind(d.cancel_reason)
            .bind(&d.buyer_comments)
            .bind(d.pay_status.map(i64::from))
            .bind(&d.pay_method)
            .bind(&d.pay_method_name)
            .bind(d.pay_date)
            .bind(&d.bill.last_name)
            .bind(&d.bill.first_name)
            .bind(&d.bill.last_name_kana)
            .bind(&d.bill.first_name_kana)
            .bind(&d.bill.zip_code)
            .bind(&d.bill.prefecture)
            .bind(&d.bill.city)
            .bind(&d.bill.address1)
            .bind(&d.bill.address2)
            .bind(&d.bill.phone)
            .bind(&d.bill_mail)
            .bind(d.ship_status.map(i64::from))
            .bind(&d.ship_method)
            .bind(&d.ship_method_name)
            .bind(d.ship_request_date)
            .bind(&d.ship_request_time)
            .bind(&d.ship_company_code)
            .bind(&d.ship_invoice_number1)
            .bind(&d.ship_invoice_number2)
            .bind(d.ship_date)
            .bind(&d.ship.last_name)
            .bind(&d.ship.first_name)
            .bind(&d.ship.last_name_kana)
            .bind(&d.ship.first_name_kana)
            .bind(&d.ship.zip_code)
            .bind(&d.ship.prefecture)
            .bind(&d.ship.city)
            .bind(&d.ship.address1)
            .bind(&d.ship.address2)
            .bind(&d.ship.phone)
            .bind(d.pay_charge)
            .bind(d.ship_charge)
            .bind(d.gift_wrap_charge)
            .bind(d.discount)
            .bind(d.use_point)
            .bind(d.total_price)
            .bind(d.settle_amount)
    }};
}

/// A stored order row: Yahoo's fields plus ours.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrderRow {
    pub id: OrderPk,
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub order_id: String,
    pub version: i64,
    pub order_time: DateTime<Utc>,
    pub last_update_time: Option<DateTime<Utc>>,
    pub publication_time: Option<DateTime<Utc>>,
    pub order_status: i64,
    pub is_seen: Option<bool>,
    pub fraud_hold_status: i64,
    pub cancel_reason: Option<i64>,
    pub buyer_comments: String,
    pub pay_status: Option<i64>,
    pub pay_method: String,
    pub pay_method_name: String,
    pub pay_date: Option<NaiveDate>,
    pub bill_last_name: String,
    pub bill_first_name: String,
    pub bill_last_name_kana: String,
    pub bill_first_name_kana: String,
    pub bill_zip_code: String,
    pub bill_prefecture: String,
    pub bill_city: String,
    pub bill_address1: String,
    pub bill_address2: String,
    pub bill_phone: String,
    pub bill_mail: String,
    pub ship_status: Option<i64>,
    pub ship_method: String,
    pub ship_method_name: String,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: String,
    pub ship_company_code: String,
    pub ship_invoice_number1: String,
    pub ship_invoice_number2: String,
    pub ship_date: Option<NaiveDate>,
    pub ship_last_name: String,
    pub ship_first_name: String,
    pub ship_last_name_kana: String,
    pub ship_first_name_kana: String,
    pub ship_zip_code: String,
    pub ship_prefecture: String,
    pub ship_city: String,
    pub ship_address1: String,
    pub ship_address2: String,
    pub ship_phone: String,
    pub pay_charge: i64,
    pub ship_charge: i64,
    pub gift_wrap_charge: i64,
    pub discount: i64,
    pub use_point: i64,
    pub total_price: i64,
    pub settle_amount: i64,
    internal_status: String,
    pub note: String,
    pub cancel_flagged: bool,
    pub checked_at: DateTime<Utc>,
    pub imported_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn small(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

impl OrderRow {
    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_hold(&self) -> crate::domain::order::FraudHoldStatus {
        crate::domain::order::FraudHoldStatus::from_code(Some(small(self.fraud_hold_status))).unwrap_or_default()
    }

    /// Yahoo's side of the row, as orderInfo would show it (with the item lines given).
    pub fn to_detail(&self, items: Vec<OrderItem>, seller_id: &str) -> OrderDetail {
        let bill = Address {
            last_name: self.bill_last_name.clone(),
            first_name: self.bill_first_name.clone(),
            last_name_kana: self.bill_last_name_kana.clone(),
            first_name_kana: self.bill_first_name_kana.clone(),
            zip_code: self.bill_zip_code.clone(),
            prefecture: self.bill_prefecture.clone(),
            city: self.bill_city.clone(),
            address1: self.bill_address1.clone(),
            address2: self.bill_address2.clone(),
            phone: self.bill_phone.clone(),
        };
        let ship = Address {
            last_name: self.ship_last_name.clone(),
            first_name: self.ship_first_name.clone(),
            last_name_kana: self.ship_last_name_kana.clone(),
            first_name_kana: self.ship_first_name_kana.clone(),
            zip_code: self.ship_zip_code.clone(),
            prefecture: self.ship_prefecture.clone(),
            city: self.ship_city.clone(),
            address1: self.ship_address1.clone(),
            address2: self.ship_address2.clone(),
            phone: self.ship_phone.clone(),
        };
        OrderDetail {
            order_id: self.order_id.clone(),
            version: self.version,
            order_time: self.order_time,
            last_update_time: self.last_update_time,
            publication_time: self.publication_time,
            order_status: small(self.order_status),
            is_seen: self.is_seen,
            fraud_hold_status: small(self.fraud_hold_status),
            cancel_reason: self.cancel_reason,
            buyer_comments: self.buyer_comments.clone(),
            pay_status: self.pay_status.map(small),
            pay_method: self.pay_method.clone(),
            pay_method_name: self.pay_method_name.clone(),
            pay_date: self.pay_date,
            bill,
            bill_mail: self.bill_mail.clone(),
            ship_status: self.ship_status.map(small),
            ship_method: self.ship_method.clone(),
            ship_method_name: self.ship_method_name.clone(),
            ship_request_date: self.ship_request_date,
            ship_request_time: self.ship_request_time.clone(),
            ship_company_code: self.ship_company_code.clone(),
            ship_invoice_number1: self.ship_invoice_number1.clone(),
            ship_invoice_number2: self.ship_invoice_number2.clone(),
            ship_date: self.ship_date,
            ship,
            pay_charge: self.pay_charge,
            ship_charge: self.ship_charge,
            gift_wrap_charge: self.gift_wrap_charge,
            discount: self.discount,
            use_point: self.use_point,
            total_price: self.total_price,
            settle_amount: self.settle_amount,
            items,
            seller_id: seller_id.to_owned(),
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct ItemRow {
    order_pk: OrderPk,
    line_id: i64,
    item_id: String,
    title: String,
    sub_code: String,
    options: String,
    unit_price: i64,
    quantity: i64,
    tax_ratio: Option<i64>,
    product_id: String,
    category_id: Option<i64>,
}

impl ItemRow {
    fn into_item(self) -> OrderItem {
        OrderItem {
            line_id: self.line_id,
            item_id: self.item_id,
            title: self.title,
            sub_code: self.sub_code,
            options: serde_json::from_str(&self.options).unwrap_or_default(),
            unit_price: self.unit_price,
            quantity: self.quantity,
            tax_ratio: self.tax_ratio,
            product_id: self.product_id,
            category_id: self.category_id,
        }
    }
}

/// `$a, $b, …` for `n` values starting at `$first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The stored version of each of `order_ids` that this store has.
pub async fn known(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    order_ids: &[&str],
) -> sqlx::Result<HashMap<String, Known>> {
    let mut out = HashMap::with_capacity(order_ids.len());
    if let Db::Postgres(pool) = db {
        // One array parameter: a list of hundreds of parameters gets a generic plan that scans
        // the whole table once it has grown (a page of an import took a second on 20,000).
        let rows: Vec<Known> = sqlx::query_as(
            "select order_id, version, last_update_time, fraud_hold_status from yahoo_order
             where account_id = $1 and store_id = $2 and order_id = any($3)",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(order_ids)
        .fetch_all(pool)
        .await?;
        out.extend(rows.into_iter().map(|k| (k.order_id.clone(), k)));
        return Ok(out);
    }
    for chunk in order_ids.chunks(db.rows_per_statement(1)) {
        let sql = format!(
            "select order_id, version, last_update_time, fraud_hold_status from yahoo_order
             where account_id = $1 and store_id = $2 and order_id in ({})",
            placeholders(3, chunk.len())
        );
        let rows: Vec<Known> = with_pool!(db, |p| {
            let mut q = sqlx::query_as(&sql).bind(account_id).bind(store_id);
            for id in chunk {
                q = q.bind(*id);
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows.into_iter().map(|k| (k.order_id.clone(), k)));
    }
    Ok(out)
}

/// Order IDs of this store's orders under fraud review (1) last checked before `before`.
pub async fn held_to_check(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    before: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select order_id from yahoo_order
             where account_id = $1 and store_id = $2 and fraud_hold_status = 1 and checked_at < $3
             order by checked_at, id",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(before)
        .fetch_all(p)
        .await
    })
}

/// Number of this store's orders under fraud review (1).
pub async fn held_count(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select count(*) from yahoo_order where account_id = $1 and store_id = $2 and fraud_hold_status = 1",
        )
        .bind(account_id)
        .bind(store_id)
        .fetch_one(p)
        .await
    })
}

/// Who wrote a history entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryActor {
    User(String),
    Job,
    Support(String),
}

impl HistoryActor {
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            HistoryActor::User(name) => ("user", name),
            HistoryActor::Job => ("job", ""),
            HistoryActor::Support(name) => ("support", name),
        }
    }
}

/// One order to write: Yahoo's fields, the internal status for a new order, and its history.
#[derive(Clone, Debug)]
pub struct OrderWrite {
    pub detail: OrderDetail,
    /// Used only when the order is new; an existing order keeps its own.
    pub new_status: InternalStatus,
    /// Fraud confirmed (1 → 3) just now: flag it for cancellation.
    pub flag_cancel: bool,
    pub history: Vec<HistoryLine>,
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
    let outcome = match db {
        Db::Postgres(pool) => write_batch_pg(pool, account_id, store_id, batch).await,
        Db::Sqlite(pool) => write_batch_sqlite(pool, account_id, store_id, batch).await,
    };
    let took = started.elapsed();
    WRITE_NANOS.fetch_add(took.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
    metrics::histogram!("import_batch_seconds").record(took.as_secs_f64());
    metrics::histogram!("import_batch_orders").record(batch.writes.len() as f64);
    outcome
}

/// `(?, ?, …)` rows of `per_row` anonymous parameters. SQLite statements of many rows use `?`
/// rather than `$N`: SQLite finds a numbered parameter's name by a linear scan of the
/// statement's names (so binding costs the square of their number), an anonymous one at once.
fn sqlite_rows(rows: usize, per_row: usize) -> String {
    let row = format!("({})", vec!["?"; per_row].join(", "));
    vec![row.as_str(); rows].join(", ")
}

/// Rows per statement on SQLite: with anonymous parameters a statement of many rows costs
/// what its rows cost, and saves a round trip to the connection's thread per row.
const SQLITE_PARAMS_PER_STATEMENT: usize = 3000;

/// [`write_batch_now`] on SQLite: multi-row statements of anonymous parameters.
async fn write_batch_sqlite(
    pool: &sqlx::SqlitePool,
    account_id: AccountId,
    store_id: StoreId,
    batch: &Batch,
) -> Result<BatchOutcome, BatchError> {
    let Batch { writes, unchanged, cursor_to, retry, lease_owner, actor, now } = batch;
    let (now, cursor_to) = (*now, *cursor_to);
    let mut outcome = BatchOutcome::default();
    let (actor_type, actor_name) = actor.parts();
    let mut tx = pool.begin().await?;
    if let Some(owner) = lease_owner.as_deref() {
        let held =
            sqlx::query(&fence_sql(Leased::StoreImport)).bind(store_id).bind(owner).bind(now).execute(&mut *tx).await?;
        if held.rows_affected() != 1 {
            return Err(BatchError::LeaseLost);
        }
    }
    // The batch writes its new orders' search terms itself, in key order (see
    // migrations/sqlite/0019_import_speed.sql); the marker never outlives this transaction.
    if !writes.is_empty() {
        sqlx::query("insert into order_search_batch (id) values (1)").execute(&mut *tx).await?;
    }
    let per_row = DETAIL_COLUMNS.len() + 7;
    let mut pks: HashMap<&str, OrderPk> = HashMap::with_capacity(writes.len());
    let mut existing: Vec<OrderPk> = Vec::new();
    let mut inserted: Vec<OrderPk> = Vec::new();
    for chunk in writes.chunks(SQLITE_PARAMS_PER_STATEMENT / per_row) {
        let sql = format!(
            "insert into yahoo_order (account_id, store_id, checked_at, imported_at, updated_at, {},
                 internal_status, cancel_flagged)
             values {}
             on conflict (store_id, order_id) do update set {},
                 checked_at = excluded.checked_at, updated_at = excluded.updated_at,
                 cancel_flagged = (yahoo_order.cancel_flagged or excluded.cancel_flagged)
             returning id, order_id, imported_at",
            DETAIL_COLUMNS.join(", "),
            sqlite_rows(chunk.len(), per_row),
            DETAIL_COLUMNS.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
        );
        let mut q = sqlx::query_as::<_, (OrderPk, String, DateTime<Utc>)>(&sql);
        for w in chunk {
            q = q.bind(account_id).bind(store_id).bind(now).bind(now).bind(now);
            q = bind_detail!(q, &w.detail).bind(w.new_status.as_str()).bind(w.flag_cancel);
        }
        for (pk, order_id, imported_at) in q.fetch_all(&mut *tx).await? {
            if imported_at == now {
                outcome.inserted += 1;
                inserted.push(pk);
            } else {
                outcome.updated += 1;
                existing.push(pk);
            }
            if let Some(w) = chunk.iter().find(|w| w.detail.order_id == order_id) {
                pks.insert(w.detail.order_id.as_str(), pk);
            }
        }
    }
    if !writes.is_empty() {
        for part in inserted.chunks(SQLITE_PARAMS_PER_STATEMENT) {
            let sql = format!(
                "insert or ignore into order_search (account_id, term, order_pk, order_time)
                 select account_id, term, order_pk, order_time from order_search_terms
                 where order_pk in ({}) and term <> ''
                 order by account_id, term, order_pk",
                vec!["?"; part.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for pk in part {
                q = q.bind(*pk);
            }
            q.execute(&mut *tx).await?;
        }
        sqlx::query("delete from order_search_batch").execute(&mut *tx).await?;
    }
    // Item lines: replaced as a whole (a new order has none to delete).
    for part in existing.chunks(SQLITE_PARAMS_PER_STATEMENT) {
        let sql = format!("delete from order_item where order_pk in ({})", vec!["?"; part.len()].join(", "));
        let mut q = sqlx::query(&sql);
        for pk in part {
            q = q.bind(*pk);
        }
        q.execute(&mut *tx).await?;
    }
    let pk_of = |w: &OrderWrite| pks.get(w.detail.order_id.as_str()).copied();
    let items: Vec<(OrderPk, &OrderItem)> = writes
        .iter()
        .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
        .flat_map(|(pk, w)| w.detail.items.iter().map(move |i| (pk, i)))
        .collect();
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
        q.execute(&mut *tx).await?;
    }
    // History, appended.
    let lines: Vec<(OrderPk, &HistoryLine)> = writes
        .iter()
        .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
        .flat_map(|(pk, w)| w.history.iter().map(move |h| (pk, h)))
        .collect();
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
        q.execute(&mut *tx).await?;
    }
    for part in unchanged.chunks(SQLITE_PARAMS_PER_STATEMENT) {
        let sql = format!(
            "update yahoo_order set checked_at = ? where account_id = ? and store_id = ? and order_id in ({})",
            vec!["?"; part.len()].join(", ")
        );
        let mut q = sqlx::query(&sql).bind(now).bind(account_id).bind(store_id);
        for id in part {
            q = q.bind(id.as_str());
        }
        outcome.checked += q.execute(&mut *tx).await?.rows_affected();
    }
    if let Some(to) = cursor_to {
        sqlx::query(
            "update store_import set cursor_at = $3, updated_at = $4
             where store_id = $1 and account_id = $2 and (cursor_at is null or cursor_at < $3)",
        )
        .bind(store_id)
        .bind(account_id)
        .bind(to)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(retry) = retry {
        sqlx::query("update store_import set retry_orders = $3 where store_id = $1 and account_id = $2")
            .bind(store_id)
            .bind(account_id)
            .bind(retry)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// The columns of a batch's orders for PostgreSQL's `unnest`: one array per column, so that a
/// batch is one statement of a fixed, small number of parameters (a multi-row `values` list
/// of ten thousand parameters costs PostgreSQL more to parse and plan than to write).
#[derive(Default)]
struct OrderColumns<'a> {
    order_id: Vec<&'a str>,
    version: Vec<i64>,
    order_time: Vec<DateTime<Utc>>,
    last_update_time: Vec<Option<DateTime<Utc>>>,
    publication_time: Vec<Option<DateTime<Utc>>>,
    order_status: Vec<i64>,
    is_seen: Vec<Option<bool>>,
    fraud_hold_status: Vec<i64>,
    cancel_reason: Vec<Option<i64>>,
    buyer_comments: Vec<&'a str>,
    pay_status: Vec<Option<i64>>,
    pay_method: Vec<&'a str>,
    pay_method_name: Vec<&'a str>,
    pay_date: Vec<Option<NaiveDate>>,
    bill: [Vec<&'a str>; 10],
    bill_mail: Vec<&'a str>,
    ship_status: Vec<Option<i64>>,
    ship_method: Vec<&'a str>,
    ship_method_name: Vec<&'a str>,
    ship_request_date: Vec<Option<NaiveDate>>,
    ship_request_time: Vec<&'a str>,
    ship_company_code: Vec<&'a str>,
    ship_invoice_number1: Vec<&'a str>,
    ship_invoice_number2: Vec<&'a str>,
    ship_date: Vec<Option<NaiveDate>>,
    ship: [Vec<&'a str>; 10],
    amounts: [Vec<i64>; 7],
    internal_status: Vec<&'static str>,
    cancel_flagged: Vec<bool>,
}

fn address_fields(a: &Address) -> [&str; 10] {
    [
        &a.last_name,
        &a.first_name,
        &a.last_name_kana,
        &a.first_name_kana,
        &a.zip_code,
        &a.prefecture,
        &a.city,
        &a.address1,
        &a.address2,
        &a.phone,
    ]
}

impl<'a> OrderColumns<'a> {
    fn push(&mut self, w: &'a OrderWrite) {
        let d = &w.detail;
        self.order_id.push(&d.order_id);
        self.version.push(d.version);
        self.order_time.push(d.order_time);
        self.last_update_time.push(d.last_update_time);
        self.publication_time.push(d.publication_time);
        self.order_status.push(i64::from(d.order_status));
        self.is_seen.push(d.is_seen);
        self.fraud_hold_status.push(i64::from(d.fraud_hold_status));
        self.cancel_reason.push(d.cancel_reason);
        self.buyer_comments.push(&d.buyer_comments);
        self.pay_status.push(d.pay_status.map(i64::from));
        self.pay_method.push(&d.pay_method);
        self.pay_method_name.push(&d.pay_method_name);
        self.pay_date.push(d.pay_date);
        for (column, value) in self.bill.iter_mut().zip(address_fields(&d.bill)) {
            column.push(value);
        }
        self.bill_mail.push(&d.bill_mail);
        self.ship_status.push(d.ship_status.map(i64::from));
        self.ship_method.push(&d.ship_method);
        self.ship_method_name.push(&d.ship_method_name);
        self.ship_request_date.push(d.ship_request_date);
        self.ship_request_time.push(&d.ship_request_time);
        self.ship_company_code.push(&d.ship_company_code);
        self.ship_invoice_number1.push(&d.ship_invoice_number1);
        self.ship_invoice_number2.push(&d.ship_invoice_number2);
        self.ship_date.push(d.ship_date);
        for (column, value) in self.ship.iter_mut().zip(address_fields(&d.ship)) {
            column.push(value);
        }
        let amounts =
            [d.pay_charge, d.ship_charge, d.gift_wrap_charge, d.discount, d.use_point, d.total_price, d.settle_amount];
        for (column, value) in self.amounts.iter_mut().zip(amounts) {
            column.push(value);
        }
        self.internal_status.push(w.new_status.as_str());
        self.cancel_flagged.push(w.flag_cancel);
    }
}

/// The upsert of a batch's orders on PostgreSQL: `$1` account, `$2` store, `$3` now, then one
/// array per column of [`DETAIL_COLUMNS`], the internal status and the cancel flag.
fn pg_upsert_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let types = [
            "text",
            "bigint",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "bigint",
            "boolean",
            "bigint",
            "bigint",
            "text",
            "bigint",
            "text",
            "text",
            "date",
        ]
        .into_iter()
        .chain(std::iter::repeat_n("text", 11)) // bill_* and bill_mail
        .chain(["bigint", "text", "text", "date", "text", "text", "text", "text", "date"])
        .chain(std::iter::repeat_n("text", 10)) // ship_*
        .chain(std::iter::repeat_n("bigint", 7))
        .chain(["text", "boolean"]);
        let arrays = types.enumerate().map(|(i, t)| format!("${}::{t}[]", i + 4)).collect::<Vec<_>>();
        assert_eq!(arrays.len(), DETAIL_COLUMNS.len() + 2);
        let columns = DETAIL_COLUMNS.join(", ");
        let updates =
            DETAIL_COLUMNS.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ");
        format!(
            "insert into yahoo_order (account_id, store_id, checked_at, imported_at, updated_at, {columns},
                 internal_status, cancel_flagged)
             select $1, $2, $3, $3, $3, t.* from unnest({}) as t
             on conflict (store_id, order_id) do update set {updates},
                 checked_at = excluded.checked_at, updated_at = excluded.updated_at,
                 cancel_flagged = (yahoo_order.cancel_flagged or excluded.cancel_flagged)
             returning id, order_id, imported_at",
            arrays.join(", ")
        )
    })
}

/// [`write_batch_now`] on PostgreSQL: each table written with one statement of array
/// parameters (`unnest`), however many orders the batch has.
async fn write_batch_pg(
    pool: &sqlx::PgPool,
    account_id: AccountId,
    store_id: StoreId,
    batch: &Batch,
) -> Result<BatchOutcome, BatchError> {
    let Batch { writes, unchanged, cursor_to, retry, lease_owner, actor, now } = batch;
    let now = *now;
    let mut outcome = BatchOutcome::default();
    let (actor_type, actor_name) = actor.parts();
    let mut tx = pool.begin().await?;
    // An import batch can always be fetched again, and the cursor commits with it: a batch
    // lost to a PostgreSQL crash is redone by the next run, so it need not wait for its WAL
    // flush (on this kind of disk the flush costs more than the batch).
    sqlx::query("set local synchronous_commit = off").execute(&mut *tx).await?;
    if let Some(owner) = lease_owner.as_deref() {
        let held =
            sqlx::query(&fence_sql(Leased::StoreImport)).bind(store_id).bind(owner).bind(now).execute(&mut *tx).await?;
        if held.rows_affected() != 1 {
            return Err(BatchError::LeaseLost);
        }
    }
    if !writes.is_empty() {
        let mut c = OrderColumns::default();
        for w in writes {
            c.push(w);
        }
        let mut q = sqlx::query_as::<_, (OrderPk, String, DateTime<Utc>)>(pg_upsert_sql())
            .bind(account_id)
            .bind(store_id)
            .bind(now)
            .bind(&c.order_id)
            .bind(&c.version)
            .bind(&c.order_time)
            .bind(&c.last_update_time)
            .bind(&c.publication_time)
            .bind(&c.order_status)
            .bind(&c.is_seen)
            .bind(&c.fraud_hold_status)
            .bind(&c.cancel_reason)
            .bind(&c.buyer_comments)
            .bind(&c.pay_status)
            .bind(&c.pay_method)
            .bind(&c.pay_method_name)
            .bind(&c.pay_date);
        for column in &c.bill {
            q = q.bind(column);
        }
        q = q
            .bind(&c.bill_mail)
            .bind(&c.ship_status)
            .bind(&c.ship_method)
            .bind(&c.ship_method_name)
            .bind(&c.ship_request_date)
            .bind(&c.ship_request_time)
            .bind(&c.ship_company_code)
            .bind(&c.ship_invoice_number1)
            .bind(&c.ship_invoice_number2)
            .bind(&c.ship_date);
        for column in &c.ship {
            q = q.bind(column);
        }
        for column in &c.amounts {
            q = q.bind(column);
        }
        let returned = q.bind(&c.internal_status).bind(&c.cancel_flagged).fetch_all(&mut *tx).await?;
        let pks: HashMap<&str, OrderPk> = returned.iter().map(|(pk, id, _)| (id.as_str(), *pk)).collect();
        let mut existing: Vec<i64> = Vec::new();
        for (pk, _, imported_at) in &returned {
            if *imported_at == now {
                outcome.inserted += 1;
            } else {
                outcome.updated += 1;
                existing.push(pk.0);
            }
        }
        // Item lines: replaced as a whole (a new order has none to delete).
        if !existing.is_empty() {
            sqlx::query("delete from order_item where order_pk = any($1)").bind(&existing).execute(&mut *tx).await?;
        }
        let mut item_pk = Vec::new();
        let mut line_id = Vec::new();
        let mut item_id = Vec::new();
        let mut title = Vec::new();
        let mut sub_code = Vec::new();
        let mut options = Vec::new();
        let mut unit_price = Vec::new();
        let mut quantity = Vec::new();
        let mut tax_ratio = Vec::new();
        let mut product_id = Vec::new();
        let mut category_id = Vec::new();
        let mut history_pk = Vec::new();
        let mut kind = Vec::new();
        let mut message = Vec::new();
        for w in writes {
            let Some(pk) = pks.get(w.detail.order_id.as_str()) else { continue };
            for item in &w.detail.items {
                item_pk.push(pk.0);
                line_id.push(item.line_id);
                item_id.push(item.item_id.as_str());
                title.push(item.title.as_str());
                sub_code.push(item.sub_code.as_str());
                options.push(serde_json::to_string(&item.options).unwrap_or_else(|_| "[]".into()));
                unit_price.push(item.unit_price);
                quantity.push(item.quantity);
                tax_ratio.push(item.tax_ratio);
                product_id.push(item.product_id.as_str());
                category_id.push(item.category_id);
            }
            for line in &w.history {
                history_pk.push(pk.0);
                kind.push(line.kind);
                message.push(line.message.as_str());
            }
        }
        if !item_pk.is_empty() {
            sqlx::query(
                "insert into order_item (order_pk, line_id, item_id, title, sub_code, options, unit_price, quantity,
                     tax_ratio, product_id, category_id)
                 select * from unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::bigint[])",
            )
            .bind(&item_pk)
            .bind(&line_id)
            .bind(&item_id)
            .bind(&title)
            .bind(&sub_code)
            .bind(&options)
            .bind(&unit_price)
            .bind(&quantity)
            .bind(&tax_ratio)
            .bind(&product_id)
            .bind(&category_id)
            .execute(&mut *tx)
            .await?;
        }
        if !history_pk.is_empty() {
            sqlx::query(
                "insert into order_history (account_id, actor_type, actor, created_at, order_pk, kind, message)
                 select $1, $2, $3, $4, t.* from unnest($5::bigint[], $6::text[], $7::text[]) as t",
            )
            .bind(account_id)
            .bind(actor_type)
            .bind(actor_name)
            .bind(now)
            .bind(&history_pk)
            .bind(&kind)
            .bind(&message)
            .execute(&mut *tx)
            .await?;
        }
    }
    if !unchanged.is_empty() {
        outcome.checked += sqlx::query(
            "update yahoo_order set checked_at = $3 where account_id = $1 and store_id = $2 and order_id = any($4)",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(now)
        .bind(unchanged)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    if let Some(to) = cursor_to {
        sqlx::query(
            "update store_import set cursor_at = $3, updated_at = $4
             where store_id = $1 and account_id = $2 and (cursor_at is null or cursor_at < $3)",
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
            .bind(retry)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if outcome.inserted > 0 {
        refresh_statistics(pool);
    }
    Ok(outcome)
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

const ORDER_SELECT: &str = "select * from yahoo_order";

async fn items_of(db: &Db, pks: &[OrderPk]) -> sqlx::Result<HashMap<OrderPk, Vec<OrderItem>>> {
    let mut out: HashMap<OrderPk, Vec<OrderItem>> = HashMap::new();
    if let Db::Postgres(pool) = db {
        let pks: Vec<i64> = pks.iter().map(|pk| pk.0).collect();
        let rows: Vec<ItemRow> =
            sqlx::query_as("select * from order_item where order_pk = any($1) order by order_pk, line_id")
                .bind(&pks)
                .fetch_all(pool)
                .await?;
        for row in rows {
            out.entry(row.order_pk).or_default().push(row.into_item());
        }
        return Ok(out);
    }
    for part in pks.chunks(db.rows_per_statement(1)) {
        let sql = format!(
            "select * from order_item where order_pk in ({}) order by order_pk, line_id",
            placeholders(1, part.len())
        );
        let rows: Vec<ItemRow> = with_pool!(db, |p| {
            let mut q = sqlx::query_as(&sql);
            for pk in part {
                q = q.bind(*pk);
            }
            q.fetch_all(p).await
        })?;
        for row in rows {
            out.entry(row.order_pk).or_default().push(row.into_item());
        }
    }
    Ok(out)
}

/// Full stored orders (row and item lines) of this store, by order ID.
pub async fn by_order_ids(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    order_ids: &[&str],
) -> sqlx::Result<HashMap<String, (OrderRow, Vec<OrderItem>)>> {
    let mut rows: Vec<OrderRow> = Vec::new();
    if let Db::Postgres(pool) = db {
        rows =
            sqlx::query_as(&format!("{ORDER_SELECT} where account_id = $1 and store_id = $2 and order_id = any($3)"))
                .bind(account_id)
                .bind(store_id)
                .bind(order_ids)
                .fetch_all(pool)
                .await?;
    }
    for part in order_ids.chunks(db.rows_per_statement(1)).filter(|_| matches!(db, Db::Sqlite(_))) {
        let sql = format!(
            "{ORDER_SELECT} where account_id = $1 and store_id = $2 and order_id in ({})",
            placeholders(3, part.len())
        );
        let found: Vec<OrderRow> = with_pool!(db, |p| {
            let mut q = sqlx::query_as(&sql).bind(account_id).bind(store_id);
            for id in part {
                q = q.bind(*id);
            }
            q.fetch_all(p).await
        })?;
        rows.extend(found);
    }
    let pks: Vec<OrderPk> = rows.iter().map(|r| r.id).collect();
    let mut items = items_of(db, &pks).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let lines = items.remove(&r.id).unwrap_or_default();
            (r.order_id.clone(), (r, lines))
        })
        .collect())
}

/// Every stored order of a store with its item lines (tests and reconciliation compare them).
pub async fn all_of_store(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
) -> sqlx::Result<Vec<(OrderRow, Vec<OrderItem>)>> {
    let rows: Vec<OrderRow> = with_pool!(db, |p| {
        sqlx::query_as(&format!("{ORDER_SELECT} where account_id = $1 and store_id = $2 order by id"))
            .bind(account_id)
            .bind(store_id)
            .fetch_all(p)
            .await
    })?;
    let pks: Vec<OrderPk> = rows.iter().map(|r| r.id).collect();
    let mut items = items_of(db, &pks).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let lines = items.remove(&r.id).unwrap_or_default();
            (r, lines)
        })
        .collect())
}

/// Order IDs this store has with a publication time inside the window (reconciliation).
pub async fn ids_published_between(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select order_id from yahoo_order where account_id = $1 and store_id = $2
                 and publication_time >= $3 and publication_time <= $4 order by order_id",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(from)
        .bind(to)
        .fetch_all(p)
        .await
    })
}

/// One order with its item lines, for its page.
pub async fn get(db: &Db, account_id: AccountId, pk: OrderPk) -> sqlx::Result<Option<(OrderRow, Vec<OrderItem>)>> {
    let row: Option<OrderRow> = with_pool!(db, |p| {
        sqlx::query_as(&format!("{ORDER_SELECT} where account_id = $1 and id = $2"))
            .bind(account_id)
            .bind(pk)
            .fetch_optional(p)
            .await
    })?;
    let Some(row) = row else { return Ok(None) };
    let items = items_of(db, &[row.id]).await?.remove(&row.id).unwrap_or_default();
    Ok(Some((row, items)))
}

/// One order as this reader may see it: `None` unless it is in one of the reader's stores, and
/// with buyers' personal data masked when their scope says so. Pages read an order only
/// through this (jobs, which act for the whole account, use [`get`]).
pub async fn read(db: &Db, scope: &OrderScope, pk: OrderPk) -> sqlx::Result<Option<(OrderRow, Vec<OrderItem>)>> {
    let Some((mut row, items)) = get(db, scope.account, pk).await? else { return Ok(None) };
    if !scope.allows(row.store_id) {
        return Ok(None);
    }
    row.mask(scope);
    Ok(Some((row, items)))
}

/// These orders as this reader may see them (others' are simply not there).
pub async fn read_rows(db: &Db, scope: &OrderScope, pks: &[OrderPk]) -> sqlx::Result<Vec<OrderRow>> {
    let mut found: Vec<OrderRow> =
        rows(db, scope.account, pks).await?.into_iter().filter(|r| scope.allows(r.store_id)).collect();
    for row in &mut found {
        row.mask(scope);
    }
    Ok(found)
}

impl OrderRow {
    /// Replaces buyers' personal data with the mask when the scope says so.
    pub fn mask(&mut self, scope: &OrderScope) {
        scope.mask_fields(crate::personal_fields!(self));
    }
}

/// A history entry as the order page shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct HistoryEntry {
    pub actor_type: String,
    pub actor: String,
    pub kind: String,
    pub message: String,
    pub created_at: DateTime<Utc>,
}

impl HistoryEntry {
    pub fn who(&self) -> String {
        match self.actor_type.as_str() {
            "job" => "自動処理".to_owned(),
            "support" => format!("サポート: {}", self.actor),
            _ => self.actor.clone(),
        }
    }
}

/// An order's history, newest first, as this reader may read it (changes of buyers' personal
/// data without their values for a masked reader). The caller has read the order through
/// [`read`], which checked its store against the scope.
pub async fn history(db: &Db, scope: &OrderScope, pk: OrderPk) -> sqlx::Result<Vec<HistoryEntry>> {
    let mut entries: Vec<HistoryEntry> = with_pool!(db, |p| {
        sqlx::query_as(
            "select actor_type, actor, kind, message, created_at from order_history
             where account_id = $1 and order_pk = $2 order by id desc",
        )
        .bind(scope.account)
        .bind(pk)
        .fetch_all(p)
        .await
    })?;
    for e in &mut entries {
        e.message = scope.history_message(&e.kind, &e.message);
    }
    Ok(entries)
}

/// Orders of the account by primary key (others' keys are simply not found).
pub async fn rows(db: &Db, account_id: AccountId, pks: &[OrderPk]) -> sqlx::Result<Vec<OrderRow>> {
    let mut out = Vec::with_capacity(pks.len());
    for part in pks.chunks(db.rows_per_statement(1)) {
        let sql = format!("{ORDER_SELECT} where account_id = $1 and id in ({})", placeholders(2, part.len()));
        let found: Vec<OrderRow> = with_pool!(db, |p| {
            let mut q = sqlx::query_as(&sql).bind(account_id);
            for pk in part {
                q = q.bind(*pk);
            }
            q.fetch_all(p).await
        })?;
        out.extend(found);
    }
    Ok(out)
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
