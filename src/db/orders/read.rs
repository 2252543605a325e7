//! Reading orders: by the account for jobs (the import's known versions, reconciliation, the
//! held orders to re-check), and by a reader's scope for pages ([`read`], [`read_rows`],
//! [`history`]: only the reader's stores, personal data masked as their scope says).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{ItemRow, OrderPk, OrderRow, placeholders};
use crate::{
    db::{Db, with_pool},
    domain::{
        AccountId, StoreId,
        order::{Known, OrderItem},
        scope::OrderScope,
    },
};

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

const ORDER_SELECT: &str = "select * from yahoo_order";

pub async fn items_of(db: &Db, pks: &[OrderPk]) -> sqlx::Result<HashMap<OrderPk, Vec<OrderItem>>> {
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
