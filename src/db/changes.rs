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
    id: OrderPk,
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
    stop_tag: Option<String>,
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
            stop_tag: self.stop_tag.clone(),
        }
    }
}

/// `$2`: the prepay list of a store that has not saved its 出荷設定; the orders' IDs follow.
const CURRENT_SQL: &str = concat!(
    "select o.id, o.store_id, o.internal_status, o.order_status, o.is_seen, o.ship_status,
        o.fraud_hold_status, o.pay_status, o.pay_method, o.pay_method_name, s.restrict_fraud_hold_changes,
        coalesce(ss.prepay_methods, $2) as prepay_methods, ",
    crate::db::tags::stop_tag_of_o!(),
    " as stop_tag
     from yahoo_order o join store s on s.id = o.store_id and s.account_id = o.account_id
     left join store_shipping ss on ss.store_id = o.store_id
     where o.account_id = $1 and"
);

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
    let mut out = change_statuses(db, scope, &[(pk, req.clone())], actor, now).await?;
    Ok(out.pop().unwrap_or(Err(Refusal::NotFound)))
}

/// Several orders' status changes in one transaction (see [`ChangeTx::change_orders`]): the
/// outcomes in the order asked; refused ones wrote nothing.
pub async fn change_statuses(
    db: &Db,
    scope: &OrderScope,
    changes: &[(OrderPk, ChangeRequest)],
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Result<Plan, Refusal>>> {
    let (db, scope, changes, actor) = (db.clone(), scope.clone(), changes.to_vec(), actor.clone());
    tokio::spawn(crate::telemetry::keeping_request_id(async move {
        with_pool!(&db, |p| {
            let mut tx = p.begin().await?;
            let asked: Vec<(OrderPk, &ChangeRequest)> = changes.iter().map(|(pk, req)| (*pk, req)).collect();
            let outcomes = tx.change_orders(&scope, &asked, &actor, now).await?;
            tx.commit().await?;
            Ok(outcomes)
        })
    }))
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the status change task ended: {e}")))?
}

/// Status changes inside a transaction the caller holds (and commits): the shipping paths write
/// tracking numbers and their status changes together this way. A refusal writes nothing for
/// its order (on SQLite the write lock is taken all the same).
pub(crate) trait ChangeTx {
    /// How many bound values one statement of this backend should carry
    /// (see [`Db::rows_per_statement`]).
    const PARAMS_PER_STATEMENT: usize;

    /// Several orders' changes, each planned and written as [`change_status`] does, with a few
    /// statements for a few hundred orders instead of a few per order. The outcomes are in the
    /// order of `changes`; an order named twice is planned the second time on what the first
    /// change wrote, as if the two had been asked one after the other.
    async fn change_orders(
        &mut self,
        scope: &OrderScope,
        changes: &[(OrderPk, &ChangeRequest)],
        actor: &HistoryActor,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Vec<Result<Plan, Refusal>>>;
}

/// Rows of `per_row` bound values (besides `shared` ones) that one statement carries.
pub(crate) fn rows_per_statement(budget: usize, shared: usize, per_row: usize) -> usize {
    (budget.saturating_sub(shared) / per_row.max(1)).clamp(1, 500)
}

/// Indexes of `items` split into waves in which no key appears twice, in their order: the
/// second mention of a key waits for the next wave.
pub(crate) fn waves<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> Vec<Vec<usize>> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut seen: std::collections::HashMap<K, usize> = std::collections::HashMap::new();
    for (i, key) in keys.enumerate() {
        let wave = seen.entry(key).and_modify(|w| *w += 1).or_insert(0);
        if waves.len() <= *wave {
            waves.push(Vec::new());
        }
        waves[*wave].push(i);
    }
    waves
}

/// The changes, written once for both backends' connections.
macro_rules! change_tx {
    ($conn:ty, $postgres:expr) => {
        impl ChangeTx for $conn {
            const PARAMS_PER_STATEMENT: usize = if $postgres { 6000 } else { 100 };

            async fn change_orders(
                &mut self,
                scope: &OrderScope,
                changes: &[(OrderPk, &ChangeRequest)],
                actor: &HistoryActor,
                now: DateTime<Utc>,
            ) -> sqlx::Result<Vec<Result<Plan, Refusal>>> {
                let budget = Self::PARAMS_PER_STATEMENT;
                let mut results: Vec<Option<Result<Plan, Refusal>>> = changes.iter().map(|_| None).collect();
                for part in waves(changes.iter().map(|(pk, _)| *pk)) {
                    let mut pks: Vec<OrderPk> = part.iter().map(|&i| changes[i].0).collect();
                    // One lock order for every writer: by primary key.
                    pks.sort_unstable();
                    let list = super::ids_value($postgres, pks.iter().map(|pk| pk.0));
                    if !$postgres {
                        // SQLite: take the write lock before reading, so a second change of an
                        // order waits for this one and then reads what it wrote (a read first
                        // would be upgraded later, and fail instead of waiting).
                        let sql = format!(
                            "update yahoo_order set updated_at = updated_at where account_id = $1 and {}",
                            super::in_ids($postgres, "id", 2)
                        );
                        sqlx::query(&sql).bind(scope.account).bind(&list).execute(&mut *self).await?;
                    }
                    let lock = if $postgres { " order by o.id for update of o" } else { "" };
                    let read = format!("{CURRENT_SQL} {}{lock}", super::in_ids($postgres, "o.id", 3));
                    let q = sqlx::query_as::<_, Current>(&read)
                        .bind(scope.account)
                        .bind(shipping::DEFAULT_PREPAY_METHODS)
                        .bind(&list);
                    let current: std::collections::HashMap<OrderPk, Current> =
                        q.fetch_all(&mut *self).await?.into_iter().map(|c| (c.id, c)).collect();
                    let mut planned: Vec<(OrderPk, StoreId, Plan)> = Vec::new();
                    for &i in &part {
                        let (pk, req) = changes[i];
                        let outcome = match current.get(&pk).filter(|c| scope.allows(c.store_id)) {
                            None => Err(Refusal::NotFound),
                            Some(c) => plan_change(&c.facts(), req),
                        };
                        if let (Ok(plan), Some(c)) = (&outcome, current.get(&pk)) {
                            planned.push((pk, c.store_id, plan.clone()));
                        }
                        results[i] = Some(outcome);
                    }
                    // The writes: each order's status (grouped by where it goes), its
                    // history line, and its pushes numbered after the order's earlier ones.
                    let (actor_type, actor_name) = actor.parts();
                    let operator = match actor {
                        HistoryActor::Job => "orderdesk",
                        HistoryActor::User(name) | HistoryActor::Support(name) => name.as_str(),
                    };
                    let mut by_target: Vec<(InternalStatus, Vec<OrderPk>)> = Vec::new();
                    for (pk, _, plan) in &planned {
                        match by_target.iter_mut().find(|(to, _)| *to == plan.to) {
                            Some((_, pks)) => pks.push(*pk),
                            None => by_target.push((plan.to, vec![*pk])),
                        }
                    }
                    for (to, pks) in &by_target {
                        let sql = format!(
                            "update yahoo_order set internal_status = $2, updated_at = $3,
                                     cancel_flagged = case when $4 then false else cancel_flagged end
                                 where account_id = $1 and {}",
                            super::in_ids($postgres, "id", 5)
                        );
                        sqlx::query(&sql)
                            .bind(scope.account)
                            .bind(to.as_str())
                            .bind(now)
                            .bind(*to == InternalStatus::Cancelled)
                            .bind(super::ids_value($postgres, pks.iter().map(|pk| pk.0)))
                            .execute(&mut *self)
                            .await?;
                    }
                    for rows in planned.chunks(rows_per_statement(budget, 4, 2)) {
                        let values: Vec<String> = (0..rows.len())
                            .map(|i| format!("($1, ${}, $2, $3, 'status', ${}, $4)", 5 + 2 * i, 6 + 2 * i))
                            .collect();
                        let sql = format!(
                            "insert into order_history (account_id, order_pk, actor_type, actor, kind, message,
                                     created_at) values {}",
                            values.join(", ")
                        );
                        let mut q = sqlx::query(&sql).bind(scope.account).bind(actor_type).bind(actor_name).bind(now);
                        for (pk, _, plan) in rows {
                            q = q.bind(*pk).bind(&plan.history);
                        }
                        q.execute(&mut *self).await?;
                    }
                    let pushing: Vec<&(OrderPk, StoreId, Plan)> =
                        planned.iter().filter(|(_, _, plan)| !plan.pushes.is_empty()).collect();
                    let mut last: std::collections::HashMap<OrderPk, i64> = std::collections::HashMap::new();
                    if !pushing.is_empty() {
                        let sql = format!(
                            "select order_pk, max(seq) from order_push where {} group by order_pk",
                            super::in_ids($postgres, "order_pk", 1)
                        );
                        last = sqlx::query_as::<_, (OrderPk, i64)>(&sql)
                            .bind(super::ids_value($postgres, pushing.iter().map(|(pk, _, _)| pk.0)))
                            .fetch_all(&mut *self)
                            .await?
                            .into_iter()
                            .collect();
                    }
                    let pushes: Vec<(OrderPk, StoreId, i64, &Push)> = pushing
                        .iter()
                        .flat_map(|(pk, store, plan)| {
                            let after = last.get(pk).copied().unwrap_or(0);
                            plan.pushes
                                .iter()
                                .enumerate()
                                .map(move |(i, push)| (*pk, *store, after + 1 + i as i64, push))
                        })
                        .collect();
                    let request_id = crate::telemetry::request_id();
                    for rows in pushes.chunks(rows_per_statement(budget, 4, 11)) {
                        let values: Vec<String> = (0..rows.len())
                            .map(|i| {
                                let b = 5 + 11 * i;
                                let cols: Vec<String> = (b..b + 11).map(|n| format!("${n}")).collect();
                                format!("($1, {}, $2, 'pending', 0, $3, $3, $3, $4)", cols.join(", "))
                            })
                            .collect();
                        let sql = format!(
                            "insert into order_push (account_id, store_id, order_pk, seq, kind, order_status,
                                     cancel_reason, ship_status, ship_company_code, ship_invoice_number, ship_date,
                                     ship_url, operator, state, attempts, next_attempt_at, created_at, updated_at,
                                     request_id)
                                 values {}",
                            values.join(", ")
                        );
                        let mut q = sqlx::query(&sql).bind(scope.account).bind(operator).bind(now).bind(&request_id);
                        for (pk, store, seq, push) in rows {
                            let row = PushColumns::of(push);
                            q = q
                                .bind(*store)
                                .bind(*pk)
                                .bind(*seq)
                                .bind(row.kind)
                                .bind(row.status)
                                .bind(row.reason)
                                .bind(row.ship_status)
                                .bind(row.company)
                                .bind(row.invoice)
                                .bind(row.date)
                                .bind(row.url);
                        }
                        q.execute(&mut *self).await?;
                    }
                }
                Ok(results.into_iter().map(|r| r.unwrap_or(Err(Refusal::NotFound))).collect())
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
