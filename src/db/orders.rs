//! Imported orders, their item lines and history (product.md §5, §6). Every function takes the
//! account. Writes of an import go through [`write_batch`]: one transaction that upserts the
//! orders, replaces their item lines, appends their history and (on the last batch of a window)
//! moves the store's cursor, fenced by the import lease so that a process that lost its lease
//! cannot write.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, with_pool};
use crate::{
    domain::{AccountId, StoreId, store::InternalStatus},
    yahoo::api::{Address, OrderDetail, OrderItem},
};

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

/// What an import needs to know of an order it already has, to decide whether to fetch it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Known {
    pub order_id: String,
    pub version: i64,
    pub last_update_time: Option<DateTime<Utc>>,
    pub fraud_hold_status: i64,
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
    fn parts(&self) -> (&'static str, &str) {
        match self {
            HistoryActor::User(name) => ("user", name),
            HistoryActor::Job => ("job", ""),
            HistoryActor::Support(name) => ("support", name),
        }
    }
}

/// One history line to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLine {
    pub kind: &'static str,
    pub message: String,
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
    let db = db.clone();
    tokio::spawn(async move { write_batch_now(&db, account_id, store_id, &batch).await })
        .await
        .map_err(|e| BatchError::Db(sqlx::Error::Protocol(format!("the write task ended: {e}"))))?
}

async fn write_batch_now(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    batch: &Batch,
) -> Result<BatchOutcome, BatchError> {
    let Batch { writes, unchanged, cursor_to, lease_owner, actor, now } = batch;
    let postgres = matches!(db, Db::Postgres(_));
    let (now, cursor_to) = (*now, *cursor_to);
    let mut outcome = BatchOutcome::default();
    let columns = DETAIL_COLUMNS.join(", ");
    let updates = DETAIL_COLUMNS.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ");
    let per_row = DETAIL_COLUMNS.len() + 2;
    let (actor_type, actor_name) = actor.parts();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        if postgres {
            // An import batch can always be fetched again, and the cursor commits with it: a
            // batch lost to a PostgreSQL crash is redone by the next run, so it need not wait
            // for its WAL flush (on this kind of disk the flush costs more than the batch).
            sqlx::query("set local synchronous_commit = off").execute(&mut *tx).await?;
        }
        if let Some(owner) = lease_owner.as_deref() {
            let held = sqlx::query(
                "update store_import set updated_at = $3
                 where store_id = $1 and account_id = $2 and lease_owner = $4 and lease_until > $3",
            )
            .bind(store_id)
            .bind(account_id)
            .bind(now)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() != 1 {
                return Err(BatchError::LeaseLost);
            }
        }
        for chunk in writes.chunks(db.rows_per_statement(per_row)) {
            let rows = (0..chunk.len())
                .map(|i| format!("($1, $2, $3, $3, $3, {})", placeholders(4 + i * per_row, per_row)))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "insert into yahoo_order (account_id, store_id, checked_at, imported_at, updated_at, {columns},
                     internal_status, cancel_flagged)
                 values {rows}
                 on conflict (store_id, order_id) do update set {updates},
                     checked_at = excluded.checked_at, updated_at = excluded.updated_at,
                     cancel_flagged = (yahoo_order.cancel_flagged or excluded.cancel_flagged)
                 returning id, order_id, imported_at"
            );
            let mut q =
                sqlx::query_as::<_, (OrderPk, String, DateTime<Utc>)>(&sql).bind(account_id).bind(store_id).bind(now);
            for w in chunk {
                q = bind_detail!(q, &w.detail).bind(w.new_status.as_str()).bind(w.flag_cancel);
            }
            let returned = q.fetch_all(&mut *tx).await?;
            let pks: HashMap<&str, OrderPk> = returned.iter().map(|(pk, id, _)| (id.as_str(), *pk)).collect();
            for (_, _, imported_at) in &returned {
                if *imported_at == now { outcome.inserted += 1 } else { outcome.updated += 1 }
            }
            let pk_of = |w: &OrderWrite| pks.get(w.detail.order_id.as_str()).copied();

            // Item lines: replaced as a whole (a new order has none to delete).
            let existing: Vec<OrderPk> =
                returned.iter().filter(|(_, _, imported_at)| *imported_at != now).map(|(pk, _, _)| *pk).collect();
            if !existing.is_empty() {
                let sql = format!("delete from order_item where order_pk in ({})", placeholders(1, existing.len()));
                let mut q = sqlx::query(&sql);
                for pk in &existing {
                    q = q.bind(*pk);
                }
                q.execute(&mut *tx).await?;
            }
            let items: Vec<(OrderPk, &OrderItem)> = chunk
                .iter()
                .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                .flat_map(|(pk, w)| w.detail.items.iter().map(move |i| (pk, i)))
                .collect();
            for part in items.chunks(db.rows_per_statement(11)) {
                let rows = (0..part.len())
                    .map(|i| format!("({})", placeholders(1 + i * 11, 11)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "insert into order_item (order_pk, line_id, item_id, title, sub_code, options, unit_price, quantity,
                         tax_ratio, product_id, category_id) values {rows}"
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
            let lines: Vec<(OrderPk, &HistoryLine)> = chunk
                .iter()
                .filter_map(|w| pk_of(w).map(|pk| (pk, w)))
                .flat_map(|(pk, w)| w.history.iter().map(move |h| (pk, h)))
                .collect();
            for part in lines.chunks(db.rows_per_statement(3)) {
                let rows = (0..part.len())
                    .map(|i| format!("($1, $2, $3, $4, {})", placeholders(5 + i * 3, 3)))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "insert into order_history (account_id, actor_type, actor, created_at, order_pk, kind, message) values {rows}"
                );
                let mut q = sqlx::query(&sql).bind(account_id).bind(actor_type).bind(actor_name).bind(now);
                for (pk, line) in part {
                    q = q.bind(*pk).bind(line.kind).bind(&line.message);
                }
                q.execute(&mut *tx).await?;
            }
        }
        for part in unchanged.chunks(db.rows_per_statement(1)) {
            let sql = format!(
                "update yahoo_order set checked_at = $3 where account_id = $1 and store_id = $2 and order_id in ({})",
                placeholders(4, part.len())
            );
            let mut q = sqlx::query(&sql).bind(account_id).bind(store_id).bind(now);
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
        tx.commit().await?;
        Ok(outcome)
    })
}

const ORDER_SELECT: &str = "select * from yahoo_order";

async fn items_of(db: &Db, pks: &[OrderPk]) -> sqlx::Result<HashMap<OrderPk, Vec<OrderItem>>> {
    let mut out: HashMap<OrderPk, Vec<OrderItem>> = HashMap::new();
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
    for part in order_ids.chunks(db.rows_per_statement(1)) {
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

pub async fn history(db: &Db, account_id: AccountId, pk: OrderPk) -> sqlx::Result<Vec<HistoryEntry>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select actor_type, actor, kind, message, created_at from order_history
             where account_id = $1 and order_pk = $2 order by id desc",
        )
        .bind(account_id)
        .bind(pk)
        .fetch_all(p)
        .await
    })
}

/// A line of the order list.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ListedOrder {
    pub id: OrderPk,
    pub store_id: StoreId,
    pub store_name: String,
    pub order_id: String,
    pub order_time: DateTime<Utc>,
    pub publication_time: Option<DateTime<Utc>>,
    pub fraud_hold_status: i64,
    internal_status: String,
    pub bill_last_name: String,
    pub bill_first_name: String,
    pub total_price: i64,
    pub cancel_flagged: bool,
}

impl ListedOrder {
    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_badge(&self) -> Option<&'static str> {
        crate::domain::order::FraudHoldStatus::from_code(Some(small(self.fraud_hold_status))).and_then(|f| f.badge())
    }
}

/// What the list shows: optionally one store and one status; newest first, keyset paging on
/// (order time, id) so that a page deep in a million orders costs what the first one does.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub store_id: Option<StoreId>,
    pub status: Option<InternalStatus>,
    /// Continue after this (order time, id).
    pub after: Option<(DateTime<Utc>, OrderPk)>,
    pub limit: i64,
}

pub async fn list(db: &Db, account_id: AccountId, f: &ListFilter) -> sqlx::Result<Vec<ListedOrder>> {
    let (after_time, after_id) = match f.after {
        Some((t, id)) => (Some(t), Some(id)),
        None => (None, None),
    };
    with_pool!(db, |p| {
        sqlx::query_as(
            "select o.id, o.store_id, s.name as store_name, o.order_id, o.order_time, o.publication_time,
                    o.fraud_hold_status, o.internal_status, o.bill_last_name, o.bill_first_name, o.total_price,
                    o.cancel_flagged
             from yahoo_order o join store s on s.id = o.store_id and s.account_id = o.account_id
             where o.account_id = $1
               and ($2 is null or o.store_id = $2)
               and ($3 is null or o.internal_status = $3)
               and ($4 is null or o.order_time < $4 or (o.order_time = $4 and o.id < $5))
             order by o.order_time desc, o.id desc
             limit $6",
        )
        .bind(account_id)
        .bind(f.store_id)
        .bind(f.status.map(InternalStatus::as_str))
        .bind(after_time)
        .bind(after_id)
        .bind(f.limit)
        .fetch_all(p)
        .await
    })
}

/// Orders per internal status (the list's tabs).
pub async fn count_by_status(
    db: &Db,
    account_id: AccountId,
    store_id: Option<StoreId>,
) -> sqlx::Result<Vec<(String, i64)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select internal_status, count(*) from yahoo_order
             where account_id = $1 and ($2 is null or store_id = $2) group by internal_status",
        )
        .bind(account_id)
        .bind(store_id)
        .fetch_all(p)
        .await
    })
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

/// Moves one order from `from` to `to` with a history line, only if it is still in `from`
/// (two people pressing at once change it once). The caller has applied the fraud-hold rule.
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn move_status(
    db: &Db,
    account_id: AccountId,
    pk: OrderPk,
    from: InternalStatus,
    to: InternalStatus,
    line: &HistoryLine,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let (actor_type, actor_name) = actor.parts();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let moved = sqlx::query(
            "update yahoo_order set internal_status = $4, updated_at = $5
             where account_id = $1 and id = $2 and internal_status = $3",
        )
        .bind(account_id)
        .bind(pk)
        .bind(from.as_str())
        .bind(to.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if moved {
            sqlx::query(
                "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(account_id)
            .bind(pk)
            .bind(actor_type)
            .bind(actor_name)
            .bind(line.kind)
            .bind(&line.message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(moved)
    })
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
        let changed = sqlx::query("update yahoo_order set note = $3, updated_at = $4 where account_id = $1 and id = $2")
            .bind(account_id)
            .bind(pk)
            .bind(note)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            let message = if note.is_empty() { "社内メモを消去しました".to_owned() } else { "社内メモを更新しました".to_owned() };
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
