//! The one way an order's internal status changes (product.md §6): [`change_status`] reads the
//! order inside one transaction, asks [`crate::domain::status::plan_change`] (the fraud-hold rule
//! first, then the transition table), and writes the new status, the history line and the
//! pushes Yahoo must get into the outbox (`order_push`, drained by `crate::push`). The list's
//! bulk action, the detail page and taking orders in from the inbox all call it; the import's
//! automatic change of a new order asks the same `plan_change` (`import::rules::new_order`).

use chrono::{DateTime, Utc};

use super::{
    Db,
    orders::{HistoryActor, OrderPk},
    with_pool,
};
use crate::domain::{
    StoreId,
    order::{FraudHoldStatus, OrderStatus},
    scope::OrderScope,
    status::{ChangeRequest, OrderFacts, Plan, Push, Refusal, plan_change},
    store::InternalStatus,
};

/// The order as the plan needs it, with its store's restriction, read (and on PostgreSQL
/// locked) inside the change's transaction.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    store_id: StoreId,
    internal_status: String,
    order_status: i64,
    ship_status: Option<i64>,
    fraud_hold_status: i64,
    restrict_fraud_hold_changes: bool,
}

impl Current {
    fn facts(&self) -> OrderFacts {
        let small = |v: i64| u8::try_from(v).ok();
        OrderFacts {
            internal_status: InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New),
            yahoo_status: small(self.order_status).and_then(OrderStatus::from_code),
            ship_status: self.ship_status.and_then(small),
            // An unknown code is treated as held: the safe side of the rule.
            fraud_hold: FraudHoldStatus::from_code(small(self.fraud_hold_status).or(Some(u8::MAX)))
                .unwrap_or(FraudHoldStatus::UnderReview),
            restriction_on: self.restrict_fraud_hold_changes,
        }
    }
}

const CURRENT_SQL: &str = "select o.store_id, o.internal_status, o.order_status, o.ship_status, o.fraud_hold_status,
        s.restrict_fraud_hold_changes
     from yahoo_order o join store s on s.id = o.store_id and s.account_id = o.account_id
     where o.account_id = $1 and o.id = $2";

/// Changes one order's internal status, in one transaction: reads the order (it must be the
/// scope's account's, in a store the scope allows, else [`Refusal::NotFound`]), plans the
/// change, writes the status (a cancel clears the 不正確定 flag), the history line by `actor`,
/// and queues the plan's pushes in order. A refusal writes nothing.
///
/// Two changes of one order serialize: PostgreSQL locks the order's row, SQLite takes its write
/// lock before reading. The transaction runs on a task of its own so that a caller dropped
/// half-way (a request cancelled) never hands back a connection inside an open transaction.
pub async fn change_status(
    db: &Db,
    scope: &OrderScope,
    pk: OrderPk,
    req: &ChangeRequest,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<Plan, Refusal>> {
    let (db, scope, req, actor) = (db.clone(), scope.clone(), req.clone(), actor.clone());
    tokio::spawn(crate::telemetry::keeping_request_id(
        async move { change_now(&db, &scope, pk, &req, &actor, now).await },
    ))
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the status change task ended: {e}")))?
}

async fn change_now(
    db: &Db,
    scope: &OrderScope,
    pk: OrderPk,
    req: &ChangeRequest,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<Plan, Refusal>> {
    let postgres = matches!(db, Db::Postgres(_));
    let (actor_type, actor_name) = actor.parts();
    let operator = match actor {
        HistoryActor::Job => "orderdesk",
        HistoryActor::User(name) | HistoryActor::Support(name) => name.as_str(),
    };
    let read = if postgres { format!("{CURRENT_SQL} for update of o") } else { CURRENT_SQL.to_owned() };
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        if !postgres {
            // SQLite: take the write lock before reading, so a second change of the order waits
            // for this one and then reads what it wrote (a read first would be upgraded later,
            // and fail instead of waiting).
            sqlx::query("update yahoo_order set updated_at = updated_at where account_id = $1 and id = $2")
                .bind(scope.account)
                .bind(pk)
                .execute(&mut *tx)
                .await?;
        }
        let current: Option<Current> =
            sqlx::query_as(&read).bind(scope.account).bind(pk).fetch_optional(&mut *tx).await?;
        let Some(current) = current.filter(|c| scope.allows(c.store_id)) else {
            tx.rollback().await?;
            return Ok(Err(Refusal::NotFound));
        };
        let plan = match plan_change(&current.facts(), req) {
            Ok(plan) => plan,
            Err(refusal) => {
                tx.rollback().await?;
                return Ok(Err(refusal));
            }
        };
        sqlx::query(
            "update yahoo_order set internal_status = $3, updated_at = $4,
                 cancel_flagged = case when $5 then false else cancel_flagged end
             where account_id = $1 and id = $2",
        )
        .bind(scope.account)
        .bind(pk)
        .bind(plan.to.as_str())
        .bind(now)
        .bind(plan.to == InternalStatus::Cancelled)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
             values ($1, $2, $3, $4, 'status', $5, $6)",
        )
        .bind(scope.account)
        .bind(pk)
        .bind(actor_type)
        .bind(actor_name)
        .bind(&plan.history)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if !plan.pushes.is_empty() {
            let last: i64 = sqlx::query_scalar("select coalesce(max(seq), 0) from order_push where order_pk = $1")
                .bind(pk)
                .fetch_one(&mut *tx)
                .await?;
            for (i, push) in plan.pushes.iter().enumerate() {
                let (kind, status, reason, ship_status, company, invoice, date) = match push {
                    Push::Status { status, cancel_reason } => {
                        ("status", Some(i64::from(status.code())), cancel_reason.map(i64::from), None, "", "", None)
                    }
                    Push::Ship { ship_status, company_code, invoice_number, ship_date } => (
                        "ship",
                        None,
                        None,
                        Some(i64::from(*ship_status)),
                        company_code.as_str(),
                        invoice_number.as_str(),
                        Some(*ship_date),
                    ),
                };
                sqlx::query(
                    "insert into order_push (account_id, store_id, order_pk, seq, kind, order_status, cancel_reason,
                         ship_status, ship_company_code, ship_invoice_number, ship_date, operator, state, attempts,
                         next_attempt_at, created_at, updated_at, request_id)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', 0, $13, $13, $13, $14)",
                )
                .bind(scope.account)
                .bind(current.store_id)
                .bind(pk)
                .bind(last + 1 + i as i64)
                .bind(kind)
                .bind(status)
                .bind(reason)
                .bind(ship_status)
                .bind(company)
                .bind(invoice)
                .bind(date)
                .bind(operator)
                .bind(now)
                .bind(crate::telemetry::request_id())
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(Ok(plan))
    })
}
