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
    shipping,
    status::{ChangeRequest, OrderFacts, Plan, Push, Refusal, plan_change},
    store::InternalStatus,
};

/// The order as the plan needs it, with its store's restriction and prepay list, read (and on
/// PostgreSQL locked) inside the change's transaction.
#[derive(Debug, sqlx::FromRow)]
struct Current {
    store_id: StoreId,
    internal_status: String,
    order_status: i64,
    is_seen: Option<bool>,
    ship_status: Option<i64>,
    fraud_hold_status: i64,
    pay_status: Option<i64>,
    pay_method: String,
    pay_method_name: String,
    restrict_fraud_hold_changes: bool,
    prepay_methods: String,
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
            yahoo_seen: self.is_seen,
            unpaid: shipping::unpaid(
                &self.prepay_methods,
                &self.pay_method,
                &self.pay_method_name,
                self.pay_status.and_then(small),
            ),
        }
    }
}

/// `$3`: the prepay list of a store that has not saved its 出荷設定.
const CURRENT_SQL: &str = "select o.store_id, o.internal_status, o.order_status, o.is_seen, o.ship_status,
        o.fraud_hold_status, o.pay_status, o.pay_method, o.pay_method_name, s.restrict_fraud_hold_changes,
        coalesce(ss.prepay_methods, $3) as prepay_methods
     from yahoo_order o join store s on s.id = o.store_id and s.account_id = o.account_id
     left join store_shipping ss on ss.store_id = o.store_id
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
    tokio::spawn(crate::telemetry::keeping_request_id(async move {
        with_pool!(&db, |p| {
            let mut tx = p.begin().await?;
            let outcome = tx.change_order(&scope, pk, &req, &actor, now).await?;
            if outcome.is_ok() {
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(outcome)
        })
    }))
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the status change task ended: {e}")))?
}

/// One order's status change inside a transaction the caller holds (and commits): the shipping
/// paths write a tracking number and its status change together this way. A refusal writes
/// nothing (on SQLite the write lock is taken all the same).
pub(crate) trait ChangeTx {
    async fn change_order(
        &mut self,
        scope: &OrderScope,
        pk: OrderPk,
        req: &ChangeRequest,
        actor: &HistoryActor,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Result<Plan, Refusal>>;
}

/// The change, written once for both backends' connections.
macro_rules! change_tx {
    ($conn:ty, $postgres:expr) => {
        impl ChangeTx for $conn {
            async fn change_order(
                &mut self,
                scope: &OrderScope,
                pk: OrderPk,
                req: &ChangeRequest,
                actor: &HistoryActor,
                now: DateTime<Utc>,
            ) -> sqlx::Result<Result<Plan, Refusal>> {
                let (actor_type, actor_name) = actor.parts();
                let operator = match actor {
                    HistoryActor::Job => "orderdesk",
                    HistoryActor::User(name) | HistoryActor::Support(name) => name.as_str(),
                };
                if !$postgres {
                    // SQLite: take the write lock before reading, so a second change of the
                    // order waits for this one and then reads what it wrote (a read first
                    // would be upgraded later, and fail instead of waiting).
                    sqlx::query("update yahoo_order set updated_at = updated_at where account_id = $1 and id = $2")
                        .bind(scope.account)
                        .bind(pk)
                        .execute(&mut *self)
                        .await?;
                }
                let read = if $postgres { format!("{CURRENT_SQL} for update of o") } else { CURRENT_SQL.to_owned() };
                let current: Option<Current> = sqlx::query_as(&read)
                    .bind(scope.account)
                    .bind(pk)
                    .bind(shipping::DEFAULT_PREPAY_METHODS)
                    .fetch_optional(&mut *self)
                    .await?;
                let Some(current) = current.filter(|c| scope.allows(c.store_id)) else {
                    return Ok(Err(Refusal::NotFound));
                };
                let plan = match plan_change(&current.facts(), req) {
                    Ok(plan) => plan,
                    Err(refusal) => return Ok(Err(refusal)),
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
                .execute(&mut *self)
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
                .execute(&mut *self)
                .await?;
                if !plan.pushes.is_empty() {
                    let last: i64 =
                        sqlx::query_scalar("select coalesce(max(seq), 0) from order_push where order_pk = $1")
                            .bind(pk)
                            .fetch_one(&mut *self)
                            .await?;
                    for (i, push) in plan.pushes.iter().enumerate() {
                        let row = PushColumns::of(push);
                        sqlx::query(
                            "insert into order_push (account_id, store_id, order_pk, seq, kind, order_status,
                                 cancel_reason, ship_status, ship_company_code, ship_invoice_number, ship_date,
                                 ship_url, operator, state, attempts, next_attempt_at, created_at, updated_at,
                                 request_id)
                             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', 0, $14,
                                 $14, $14, $15)",
                        )
                        .bind(scope.account)
                        .bind(current.store_id)
                        .bind(pk)
                        .bind(last + 1 + i as i64)
                        .bind(row.kind)
                        .bind(row.status)
                        .bind(row.reason)
                        .bind(row.ship_status)
                        .bind(row.company)
                        .bind(row.invoice)
                        .bind(row.date)
                        .bind(row.url)
                        .bind(operator)
                        .bind(now)
                        .bind(crate::telemetry::request_id())
                        .execute(&mut *self)
                        .await?;
                    }
                }
                Ok(Ok(plan))
            }
        }
    };
}

change_tx!(sqlx::SqliteConnection, false);
change_tx!(sqlx::PgConnection, true);

/// A push as the outbox's columns hold it.
struct PushColumns<'a> {
    kind: &'static str,
    status: Option<i64>,
    reason: Option<i64>,
    ship_status: Option<i64>,
    company: &'a str,
    invoice: &'a str,
    date: Option<chrono::NaiveDate>,
    url: &'a str,
}

impl PushColumns<'_> {
    fn of(push: &Push) -> PushColumns<'_> {
        match push {
            Push::Status { status, cancel_reason } => PushColumns {
                kind: "status",
                status: Some(i64::from(status.code())),
                reason: cancel_reason.map(i64::from),
                ship_status: None,
                company: "",
                invoice: "",
                date: None,
                url: "",
            },
            Push::Ship { ship_status, company_code, invoice_number, ship_date, ship_url } => PushColumns {
                kind: "ship",
                status: None,
                reason: None,
                ship_status: Some(i64::from(*ship_status)),
                company: company_code,
                invoice: invoice_number,
                date: Some(*ship_date),
                url: ship_url,
            },
        }
    }
}
