//! Stock (在庫連動, product.md §8): the account's quantities, their change ledger, the order
//! events the triggers record, and the per-store pushes collapsed to the latest value. Every
//! change of a quantity goes through [`change_in`], in the transaction of its cause, which also
//! queues the new value for every store with 在庫連動 on.

use chrono::{DateTime, Utc};

use super::{Db, orders::OrderPk, with_pool};
use crate::domain::{AccountId, StoreId, scope::OrderScope};

/// What caused a change (stored as text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    Order,
    Cancel,
    Manual,
    Csv,
    Pull,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Order => "order",
            Cause::Cancel => "cancel",
            Cause::Manual => "manual",
            Cause::Csv => "csv",
            Cause::Pull => "pull",
        }
    }

    pub fn label_for(code: &str) -> &'static str {
        match code {
            "order" => "注文",
            "cancel" => "キャンセル",
            "manual" => "手入力",
            "csv" => "CSV",
            "pull" => "Yahoo!から取得",
            _ => "その他",
        }
    }
}

/// A line of the stock page.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StockRow {
    pub code: String,
    pub quantity: i64,
    pub updated_at: DateTime<Utc>,
    /// Pushes waiting for this code (all stores).
    pub pending: i64,
    /// Pushes Yahoo refused for this code, with the last error.
    pub failed: i64,
    pub last_error: Option<String>,
}

/// The account's stock, by code, `limit` codes after `after`, optionally those starting with
/// `prefix`.
pub async fn list(db: &Db, account: AccountId, prefix: &str, after: &str, limit: i64) -> sqlx::Result<Vec<StockRow>> {
    let hi = format!("{prefix}\u{10FFFF}");
    with_pool!(db, |p| {
        sqlx::query_as(
            "select s.code, s.quantity, s.updated_at,
                    (select count(*) from stock_push q where q.account_id = s.account_id and q.code = s.code) as pending,
                    (select count(*) from stock_push q where q.account_id = s.account_id and q.code = s.code
                        and q.state = 'failed') as failed,
                    (select max(q.last_error) from stock_push q where q.account_id = s.account_id and q.code = s.code
                        and q.state = 'failed') as last_error
             from stock s
             where s.account_id = $1 and s.code >= $2 and s.code < $3 and s.code > $4
             order by s.code limit $5",
        )
        .bind(account)
        .bind(prefix)
        .bind(&hi)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

pub async fn quantity(db: &Db, account: AccountId, code: &str) -> sqlx::Result<Option<i64>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select quantity from stock where account_id = $1 and code = $2")
            .bind(account)
            .bind(code)
            .fetch_optional(p)
            .await
    })
}

/// Every code and quantity of the account (the CSV download), in code order.
pub async fn all(db: &Db, account: AccountId) -> sqlx::Result<Vec<(String, i64)>> {
    with_pool!(db, |p| {
        sqlx::query_as("select code, quantity from stock where account_id = $1 order by code")
            .bind(account)
            .fetch_all(p)
            .await
    })
}

/// One change in the ledger.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Change {
    pub code: String,
    pub delta: i64,
    pub quantity_after: i64,
    pub cause: String,
    pub order_pk: Option<i64>,
    pub actor: String,
    pub created_at: DateTime<Utc>,
}

pub async fn recent_changes(db: &Db, scope: &OrderScope, limit: i64) -> sqlx::Result<Vec<Change>> {
    // Changes an order made are shown only to those who may see the order's store.
    let limited = super::scope_condition(scope, "o.store_id", 3);
    let sql = format!(
        "select c.code, c.delta, c.quantity_after, c.cause, c.order_pk, c.actor, c.created_at from stock_change c
         where c.account_id = $1
           and (c.order_pk is null or exists (select 1 from yahoo_order o where o.id = c.order_pk{limited}))
         order by c.id desc limit $2"
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(limit);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}

/// How a change sets the quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Set {
    /// To this value (manual, CSV, pull).
    To(i64),
    /// By this much (orders and cancels), only for codes the account keeps stock for.
    By(i64),
}

/// Applies one change inside `tx`: the new quantity, its ledger line, and the value queued for
/// every store of the account with 在庫連動 on (except `skip_store`, the store a pull read it
/// from). Returns the new quantity, or `None` for a relative change of a code without stock.
macro_rules! change_in {
    ($tx:expr, $account:expr, $code:expr, $set:expr, $cause:expr, $order:expr, $actor:expr, $skip:expr, $now:expr) => {{
        let (account, code, set, cause, order, actor, skip, now): (
            AccountId,
            &str,
            Set,
            Cause,
            Option<OrderPk>,
            &str,
            Option<StoreId>,
            DateTime<Utc>,
        ) = ($account, $code, $set, $cause, $order, $actor, $skip, $now);
        let current: Option<i64> = sqlx::query_scalar("select quantity from stock where account_id = $1 and code = $2")
            .bind(account)
            .bind(code)
            .fetch_optional(&mut *$tx)
            .await?;
        let next = match (set, current) {
            (Set::To(v), _) => Some(v),
            (Set::By(d), Some(c)) => Some(c + d),
            (Set::By(_), None) => None,
        };
        if let Some(q) = next {
            let delta = q - current.unwrap_or(0);
            sqlx::query(
                "insert into stock (account_id, code, quantity, updated_at) values ($1, $2, $3, $4)
                 on conflict (account_id, code) do update set quantity = excluded.quantity, updated_at = excluded.updated_at",
            )
            .bind(account)
            .bind(code)
            .bind(q)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(
                "insert into stock_change (account_id, code, delta, quantity_after, cause, order_pk, actor, created_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(account)
            .bind(code)
            .bind(delta)
            .bind(q)
            .bind(cause.as_str())
            .bind(order)
            .bind(actor)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            // Collapsed per store and code: a newer value overwrites a pending one.
            sqlx::query(
                "insert into stock_push (store_id, code, account_id, quantity, version, state, attempts,
                                         next_attempt_at, updated_at)
                 select s.id, $2, $1, $3, 1, 'pending', 0, $4, $4 from store s
                 where s.account_id = $1 and s.stock_sync_enabled and ($5 is null or s.id <> $5)
                 on conflict (store_id, code) do update set quantity = excluded.quantity,
                     version = stock_push.version + 1, state = 'pending', attempts = 0,
                     next_attempt_at = excluded.next_attempt_at, error_code = null, last_error = null,
                     updated_at = excluded.updated_at",
            )
            .bind(account)
            .bind(code)
            .bind(q)
            .bind(now)
            .bind(skip)
            .execute(&mut *$tx)
            .await?;
        }
        next
    }};
}

/// Sets each (code, quantity) inside `tx`, skipping codes already at that value; the number
/// changed.
macro_rules! set_all_in {
    ($tx:expr, $account:expr, $lines:expr, $cause:expr, $skip:expr, $actor:expr, $now:expr) => {{
        let mut changed = 0usize;
        for (code, quantity) in $lines {
            let current: Option<i64> =
                sqlx::query_scalar("select quantity from stock where account_id = $1 and code = $2")
                    .bind($account)
                    .bind(code.as_str())
                    .fetch_optional(&mut *$tx)
                    .await?;
            if current == Some(*quantity) {
                continue;
            }
            change_in!($tx, $account, code.as_str(), Set::To(*quantity), $cause, None, $actor, $skip, $now);
            changed += 1;
        }
        changed
    }};
}

/// A person's edit of one code. `seen` is the quantity the form showed: when an order changed
/// it since, the order wins and the edit is applied as the difference the person meant
/// (`domain::stock::merge_manual_edit`). Returns the quantity now stored.
pub async fn set_manual(
    db: &Db,
    account: AccountId,
    code: &str,
    seen: Option<i64>,
    typed: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let current: Option<i64> = sqlx::query_scalar("select quantity from stock where account_id = $1 and code = $2")
            .bind(account)
            .bind(code)
            .fetch_optional(&mut *tx)
            .await?;
        let value = match (seen, current) {
            (Some(s), Some(c)) if s != c => crate::domain::stock::merge_manual_edit(s, typed, c),
            _ => typed,
        };
        let q = change_in!(tx, account, code, Set::To(value), Cause::Manual, None, actor, None, now);
        tx.commit().await?;
        Ok(q.unwrap_or(value))
    })
}

/// Sets many codes at once (a confirmed CSV, or a pull from `from_store`), in one transaction.
pub async fn set_many(
    db: &Db,
    account: AccountId,
    lines: &[(String, i64)],
    cause: Cause,
    from_store: Option<StoreId>,
    actor: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<usize> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let changed = set_all_in!(tx, account, lines, cause, from_store, actor, now);
        tx.commit().await?;
        Ok(changed)
    })
}

/// An order event the stock has not taken yet.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrderEvent {
    pub order_pk: OrderPk,
    pub kind: String,
    pub account_id: AccountId,
}

pub async fn pending_events(db: &Db, limit: i64) -> sqlx::Result<Vec<OrderEvent>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select order_pk, kind, account_id from stock_order_event where done_at is null
             order by order_pk, kind desc limit $1",
        )
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// Takes one order event in one transaction: claims it (only one process can), then moves the
/// stock of each item line of the order (an order takes, a cancel gives back) for the codes the
/// account keeps stock for. A cancel whose order event is still pending waits for it, so the
/// two always apply in that order. Returns false when the event was not (or not yet) taken.
pub async fn apply_event(db: &Db, event: &OrderEvent, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let sign = if event.kind == "cancel" { 1 } else { -1 };
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        if event.kind == "cancel" {
            let order_done: Option<Option<DateTime<Utc>>> =
                sqlx::query_scalar("select done_at from stock_order_event where order_pk = $1 and kind = 'order'")
                    .bind(event.order_pk)
                    .fetch_optional(&mut *tx)
                    .await?;
            if matches!(order_done, Some(None)) {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        let claimed = sqlx::query(
            "update stock_order_event set done_at = $3 where order_pk = $1 and kind = $2 and done_at is null",
        )
        .bind(event.order_pk)
        .bind(&event.kind)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            tx.rollback().await?;
            return Ok(false);
        }
        let lines: Vec<(String, String, i64)> = sqlx::query_as(
            "select i.item_id, i.sub_code, i.quantity from order_item i
             join yahoo_order o on o.id = i.order_pk
             where i.order_pk = $1 and o.account_id = $2 order by i.line_id",
        )
        .bind(event.order_pk)
        .bind(event.account_id)
        .fetch_all(&mut *tx)
        .await?;
        let cause = if sign > 0 { Cause::Cancel } else { Cause::Order };
        for (item, sub, quantity) in lines {
            let code = if sub.is_empty() { item } else { format!("{item}:{sub}") };
            change_in!(
                tx,
                event.account_id,
                code.as_str(),
                Set::By(sign * quantity),
                cause,
                Some(event.order_pk),
                "",
                None,
                now
            );
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// A store with pushes due, and its account.
#[derive(Clone, Copy, Debug, sqlx::FromRow)]
pub struct DueStore {
    pub store_id: StoreId,
    pub account_id: AccountId,
}

/// Stores with pushes due now whose stock sync is on and not stopped (store or account).
pub async fn due_stores(db: &Db, now: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<DueStore>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select distinct q.store_id, q.account_id from stock_push q
             join store s on s.id = q.store_id and s.account_id = q.account_id
             join account a on a.id = q.account_id
             left join store_import i on i.store_id = q.store_id
             where q.next_attempt_at <= $1 and s.stock_sync_enabled
               and a.stopped_reason is null and i.stopped_reason is null
             limit $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// A pending value to push.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Push {
    pub code: String,
    pub quantity: i64,
    pub version: i64,
    pub attempts: i64,
}

/// Up to `limit` due pushes of a store, in code order.
pub async fn due_pushes(db: &Db, store: StoreId, now: DateTime<Utc>, limit: i64) -> sqlx::Result<Vec<Push>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select code, quantity, version, attempts from stock_push
             where store_id = $1 and next_attempt_at <= $2 order by code limit $3",
        )
        .bind(store)
        .bind(now)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// Yahoo took the value: the push is done unless a newer value arrived meanwhile.
pub async fn pushed(db: &Db, store: StoreId, done: &[(String, i64)]) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        for (code, version) in done {
            sqlx::query("delete from stock_push where store_id = $1 and code = $2 and version = $3")
                .bind(store)
                .bind(code.as_str())
                .bind(*version)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    })
}

/// A push that failed: retried at `retry_at`; `failed` marks Yahoo's refusal of the item (shown
/// per item), as against a call that did not go through.
#[expect(clippy::too_many_arguments, reason = "one update's inputs, each named")]
pub async fn push_failed(
    db: &Db,
    store: StoreId,
    items: &[(String, i64)],
    failed: bool,
    error_code: Option<&str>,
    message: &str,
    retry_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        for (code, version) in items {
            sqlx::query(
                "update stock_push set state = $4, attempts = attempts + 1, next_attempt_at = $5,
                     error_code = $6, last_error = $7, updated_at = $8
                 where store_id = $1 and code = $2 and version = $3",
            )
            .bind(store)
            .bind(code.as_str())
            .bind(*version)
            .bind(if failed { "failed" } else { "pending" })
            .bind(retry_at)
            .bind(error_code)
            .bind(message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// Pushes per store of the account: (store, waiting, failed, last error).
pub async fn push_summary(db: &Db, account: AccountId) -> sqlx::Result<Vec<(StoreId, i64, i64, Option<String>)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select store_id, count(*), sum(case when state = 'failed' then 1 else 0 end), max(last_error)
             from stock_push where account_id = $1 group by store_id",
        )
        .bind(account)
        .fetch_all(p)
        .await
    })
}

/// Codes a pull from a store should ask for: the account's stock codes and those in the store's
/// orders.
pub async fn codes_for_pull(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<Vec<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select code from stock where account_id = $1
             union
             select case when i.sub_code = '' then i.item_id else i.item_id || ':' || i.sub_code end
             from order_item i join yahoo_order o on o.id = i.order_pk
             where o.account_id = $1 and o.store_id = $2 and i.item_id <> ''
             order by 1",
        )
        .bind(account)
        .bind(store)
        .fetch_all(p)
        .await
    })
}

/// Keeps the good lines of an uploaded CSV until the merchant confirms them.
pub async fn save_upload(
    db: &Db,
    account: AccountId,
    file_name: &str,
    lines: &[(String, i64)],
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    let json = serde_json::to_string(lines).unwrap_or_else(|_| "[]".into());
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "insert into stock_upload (account_id, file_name, lines, created_at) values ($1, $2, $3, $4) returning id",
        )
        .bind(account)
        .bind(file_name)
        .bind(&json)
        .bind(now)
        .fetch_one(p)
        .await
    })
}

/// An upload not yet applied: its file name and lines.
pub async fn upload(db: &Db, account: AccountId, id: i64) -> sqlx::Result<Option<(String, Vec<(String, i64)>, bool)>> {
    let row: Option<(String, String, Option<DateTime<Utc>>)> = with_pool!(db, |p| {
        sqlx::query_as("select file_name, lines, applied_at from stock_upload where account_id = $1 and id = $2")
            .bind(account)
            .bind(id)
            .fetch_optional(p)
            .await
    })?;
    Ok(row.map(|(name, lines, applied)| (name, serde_json::from_str(&lines).unwrap_or_default(), applied.is_some())))
}

/// Applies a confirmed upload once: marks it applied and sets the quantities in one transaction.
/// False when it was applied already (a second press of the button).
pub async fn apply_upload(
    db: &Db,
    account: AccountId,
    id: i64,
    actor: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<usize>> {
    let Some((_, lines, _)) = upload(db, account, id).await? else { return Ok(None) };
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let claimed = sqlx::query(
            "update stock_upload set applied_at = $3 where account_id = $1 and id = $2 and applied_at is null",
        )
        .bind(account)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            tx.rollback().await?;
            return Ok(None);
        }
        let changed = set_all_in!(tx, account, &lines, Cause::Csv, None, actor, now);
        tx.commit().await?;
        Ok(Some(changed))
    })
}

/// Current quantities of these codes (for the upload's preview).
pub async fn quantities(
    db: &Db,
    account: AccountId,
    codes: &[String],
) -> sqlx::Result<std::collections::HashMap<String, i64>> {
    let mut out = std::collections::HashMap::new();
    for chunk in codes.chunks(db.rows_per_statement(1)) {
        let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!("select code, quantity from stock where account_id = $1 and code in ({})", list.join(", "));
        let rows: Vec<(String, i64)> = with_pool!(db, |p| {
            let mut q = sqlx::query_as(&sql).bind(account);
            for c in chunk {
                q = q.bind(c.as_str());
            }
            q.fetch_all(p).await
        })?;
        out.extend(rows);
    }
    Ok(out)
}
