//! What the dashboard reads, each limited to the signed-in person's [`OrderScope`]: the alerts
//! raised when a held order is released or confirmed as fraud (written by a trigger on
//! `yahoo_order`, migration 0012) and orders per JST day per store
//! (kept by triggers in `order_day_count`, so the chart never counts the orders themselves).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, now, scope_condition, with_pool};
use crate::{
    db::orders::OrderPk,
    domain::{StoreId, order::FraudHoldStatus, scope::OrderScope},
};

/// An alert not yet acknowledged.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub order_pk: OrderPk,
    pub order_id: String,
    pub store_id: StoreId,
    pub store_name: String,
    fraud_hold_status: i64,
    pub created_at: DateTime<Utc>,
}

impl Alert {
    /// What became of the hold: 保留解除 (2) or 不正確定 (3).
    pub fn outcome(&self) -> FraudHoldStatus {
        FraudHoldStatus::from_code(u8::try_from(self.fraud_hold_status).ok()).unwrap_or_default()
    }

    pub fn is_release(&self) -> bool {
        self.outcome() == FraudHoldStatus::Released
    }

    pub fn label(&self) -> &'static str {
        self.outcome().badge().unwrap_or("")
    }
}

/// The newest open alerts of the scope, at most `limit`.
pub async fn open_alerts(db: &Db, scope: &OrderScope, limit: i64) -> sqlx::Result<Vec<Alert>> {
    let sql = format!(
        "select a.id, a.order_pk, o.order_id, a.store_id, s.name as store_name, a.fraud_hold_status, a.created_at
         from fraud_hold_alert a
         join yahoo_order o on o.id = a.order_pk and o.account_id = a.account_id
         join store s on s.id = a.store_id and s.account_id = a.account_id
         where a.account_id = $1 and a.acknowledged_at is null{}
         order by a.id desc limit $2",
        scope_condition(scope, "a.store_id", 3)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(limit);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}

/// Whether an alert the scope may see exists (acknowledged or not).
pub async fn alert_exists(db: &Db, scope: &OrderScope, alert_id: i64) -> sqlx::Result<bool> {
    let sql = format!(
        "select count(*) from fraud_hold_alert where account_id = $1 and id = $2{}",
        scope_condition(scope, "store_id", 3)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(scope.account).bind(alert_id);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_one(p).await.map(|n| n > 0)
    })
}

/// Acknowledges the scope's open alerts with ids in `ids` (one alert), or every open one up
/// to `up_to` (the newest the person saw), by `who`. The first acknowledgement is kept.
/// Returns how many were acknowledged now.
pub async fn acknowledge(db: &Db, scope: &OrderScope, which: Acknowledge, who: &str) -> sqlx::Result<u64> {
    let (low, high) = match which {
        Acknowledge::One(id) => (id, id),
        Acknowledge::UpTo(id) => (0, id),
    };
    let sql = format!(
        "update fraud_hold_alert set acknowledged_at = $2, acknowledged_by = $3
         where account_id = $1 and acknowledged_at is null and id >= $4 and id <= $5{}",
        scope_condition(scope, "store_id", 6)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query(&sql).bind(scope.account).bind(now()).bind(who).bind(low).bind(high);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.execute(p).await.map(|r| r.rows_affected())
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledge {
    One(i64),
    UpTo(i64),
}

/// Orders per store per JST day from `from` to `to` (both included), days without orders left
/// out.
pub async fn day_counts(
    db: &Db,
    scope: &OrderScope,
    from: NaiveDate,
    to: NaiveDate,
) -> sqlx::Result<Vec<(StoreId, NaiveDate, i64)>> {
    let sql = format!(
        "select store_id, day, n from order_day_count
         where account_id = $1 and day >= $2 and day <= $3 and n > 0{}
         order by day, store_id",
        scope_condition(scope, "store_id", 4)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(from).bind(to);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}
