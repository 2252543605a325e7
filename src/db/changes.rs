//! PLACEHOLDER until the status-change engine lands (branch issue-10-push replaces this file):
//! plans the change with `domain::status::plan_change` and moves the status; no outbox yet.

use chrono::{DateTime, Utc};

use super::{
    Db, orders,
    orders::{HistoryActor, HistoryLine, OrderPk},
    stores,
};
use crate::domain::{
    order::OrderStatus,
    scope::OrderScope,
    status::{ChangeRequest, OrderFacts, Plan, Refusal, plan_change},
};

pub async fn change_status(
    db: &Db,
    scope: &OrderScope,
    pk: OrderPk,
    req: &ChangeRequest,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<Plan, Refusal>> {
    let Some(row) = orders::rows(db, scope.account, &[pk]).await?.into_iter().next() else {
        return Ok(Err(Refusal::NotFound));
    };
    if !scope.allows(row.store_id) {
        return Ok(Err(Refusal::NotFound));
    }
    let Some(store) = stores::get(db, scope.account, row.store_id).await? else {
        return Ok(Err(Refusal::NotFound));
    };
    let facts = OrderFacts {
        internal_status: row.internal_status(),
        yahoo_status: u8::try_from(row.order_status).ok().and_then(OrderStatus::from_code),
        ship_status: row.ship_status.and_then(|s| u8::try_from(s).ok()),
        fraud_hold: row.fraud_hold(),
        restriction_on: store.restrict_fraud_hold_changes,
    };
    let plan = match plan_change(&facts, req) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let line = HistoryLine { kind: "status", message: plan.history.clone() };
    orders::move_status(db, scope.account, pk, facts.internal_status, plan.to, &line, actor, now).await?;
    Ok(Ok(plan))
}
