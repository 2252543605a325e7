//! The outbox of pushes to Yahoo (`order_push`): what the pages show of it ([`for_order`],
//! [`failing`], [`failed_per_store`], [`retry`], all taking the account) and the drainer's
//! queries (`claim`, `renew`, `finish`, `reschedule`), which span accounts as the import
//! scheduler's do and are never reachable from a route.
//!
//! A push is due when it is pending and its time has come, or when it is being sent under a
//! lease that ran out (its process died). It is claimed only when every earlier push of its
//! order is settled (done or failed), so an order's pushes reach Yahoo strictly in sequence;
//! nothing of a store or account under 緊急停止, or of a store whose authentication failed and
//! nobody has acted on since, is claimed.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db,
    imports::BLOCK_IN_FORCE,
    orders::{HistoryActor, OrderPk},
    with_pool,
};
use crate::domain::{AccountId, StoreId, order::OrderStatus, scope::OrderScope, status::Push};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct PushId(pub i64);

impl std::fmt::Display for PushId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a push stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushState {
    Pending,
    Sending,
    Done,
    Failed,
}

impl PushState {
    pub fn parse(s: &str) -> PushState {
        match s {
            "sending" => PushState::Sending,
            "done" => PushState::Done,
            "failed" => PushState::Failed,
            _ => PushState::Pending,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Pending => "pending",
            PushState::Sending => "sending",
            PushState::Done => "done",
            PushState::Failed => "failed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            PushState::Pending => "送信待ち",
            PushState::Sending => "送信中",
            PushState::Done => "完了",
            PushState::Failed => "失敗",
        }
    }
}

/// One outbox row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PushRow {
    pub id: PushId,
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub order_pk: OrderPk,
    pub seq: i64,
    kind: String,
    order_status: Option<i64>,
    cancel_reason: Option<i64>,
    ship_status: Option<i64>,
    ship_company_code: String,
    ship_invoice_number: String,
    ship_date: Option<NaiveDate>,
    ship_url: String,
    pub operator: String,
    state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub last_message: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// The request that asked for the push (its 受付番号).
    pub request_id: Option<String>,
}

impl PushRow {
    /// What Yahoo is to be told (`None` for a row this version cannot read).
    pub fn push(&self) -> Option<Push> {
        let small = |v: Option<i64>| v.and_then(|v| u8::try_from(v).ok());
        match self.kind.as_str() {
            "status" => Some(Push::Status {
                status: small(self.order_status).and_then(OrderStatus::from_code)?,
                cancel_reason: self.cancel_reason.and_then(|r| u16::try_from(r).ok()),
            }),
            "ship" => Some(Push::Ship {
                ship_status: small(self.ship_status)?,
                company_code: self.ship_company_code.clone(),
                invoice_number: self.ship_invoice_number.clone(),
                ship_date: self.ship_date?,
                ship_url: self.ship_url.clone(),
            }),
            _ => None,
        }
    }

    pub fn state(&self) -> PushState {
        PushState::parse(&self.state)
    }

    /// The push in words.
    pub fn label(&self) -> String {
        self.push().map_or_else(|| format!("不明な送信（{}）", self.kind), |p| p.label())
    }
}

/// A push as the pages show it.
#[derive(Clone, Debug)]
pub struct PushView {
    pub id: PushId,
    pub order_pk: OrderPk,
    /// Yahoo's order ID.
    pub order_id: String,
    pub store_id: StoreId,
    pub store_name: String,
    /// What was (or is to be) pushed, in Japanese: 「ステータス「キャンセル」（キャンセル理由: 欠品）」.
    pub what: String,
    pub state: PushState,
    /// 送信待ち / 送信中 / 完了 / 失敗.
    pub state_label: &'static str,
    pub attempts: i64,
    /// Yahoo's last answer: its error message, or the warnings of a success.
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
    /// The request that asked for the push (受付番号), to match with the logs.
    pub request_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct ViewRow {
    #[sqlx(flatten)]
    push: PushRow,
    order_id: String,
    store_name: String,
}

impl From<ViewRow> for PushView {
    fn from(r: ViewRow) -> PushView {
        let state = r.push.state();
        PushView {
            what: r.push.label(),
            id: r.push.id,
            order_pk: r.push.order_pk,
            order_id: r.order_id,
            store_id: r.push.store_id,
            store_name: r.store_name,
            state,
            state_label: state.label(),
            attempts: r.push.attempts,
            message: r.push.last_message,
            created_at: r.push.created_at,
            updated_at: r.push.updated_at,
            next_attempt_at: r.push.next_attempt_at,
            done_at: r.push.done_at,
            request_id: r.push.request_id,
        }
    }
}

const VIEW_SELECT: &str = "select p.*, o.order_id, s.name as store_name
     from order_push p
     join yahoo_order o on o.id = p.order_pk and o.account_id = p.account_id
     join store s on s.id = p.store_id and s.account_id = p.account_id";

/// Every push of one order, in sequence (the order page).
pub async fn for_order(db: &Db, account_id: AccountId, pk: OrderPk) -> sqlx::Result<Vec<PushView>> {
    let rows: Vec<ViewRow> = with_pool!(db, |p| {
        sqlx::query_as(&format!("{VIEW_SELECT} where p.account_id = $1 and p.order_pk = $2 order by p.seq"))
            .bind(account_id)
            .bind(pk)
            .fetch_all(p)
            .await
    })?;
    Ok(rows.into_iter().map(PushView::from).collect())
}

/// Pushes that are not going well, newest first: refused by Yahoo (失敗), or waiting to be
/// tried again after a failed attempt. Limited to the scope's stores.
pub async fn failing(db: &Db, scope: &OrderScope, limit: i64) -> sqlx::Result<Vec<PushView>> {
    let stores = match &scope.stores {
        Some(s) if s.is_empty() => return Ok(Vec::new()),
        Some(s) => format!(
            " and p.store_id in ({})",
            (0..s.len()).map(|i| format!("${}", i + 3)).collect::<Vec<_>>().join(", ")
        ),
        None => String::new(),
    };
    let sql = format!(
        "{VIEW_SELECT} where p.account_id = $1
           and (p.state = 'failed' or (p.state = 'pending' and p.attempts > 0)){stores}
         order by p.updated_at desc, p.id desc limit $2"
    );
    let rows: Vec<ViewRow> = with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(limit);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })?;
    Ok(rows.into_iter().map(PushView::from).collect())
}

/// Failed pushes per store of the account (the store page's warning). Stores without any are
/// left out.
pub async fn failed_per_store(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<(StoreId, i64)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select store_id, count(*) from order_push where account_id = $1 and state = 'failed'
             group by store_id order by store_id",
        )
        .bind(account_id)
        .fetch_all(p)
        .await
    })
}

/// Sends a failed push again (a person pressed 再送信): it becomes pending now with its attempts
/// counted afresh, and so do the later failed pushes of its order (those that failed with it
/// follow it, in sequence). False when it is not a failed push of this account.
pub async fn retry(db: &Db, account_id: AccountId, id: PushId, now: DateTime<Utc>) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query(
            "update order_push set state = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3,
                 lease_owner = null, lease_until = null
             where account_id = $1 and state = 'failed'
               and order_pk = (select order_pk from order_push where account_id = $1 and id = $2 and state = 'failed')
               and seq >= (select seq from order_push where account_id = $1 and id = $2)",
        )
        .bind(account_id)
        .bind(id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() >= 1)
    })
}

/// Claims up to `limit` due pushes for `owner` until `until`, each the first unsettled push of
/// its order (so at most one per order), counting an attempt. One statement: on SQLite it is
/// atomic by itself; on PostgreSQL rows another process is claiming are skipped, and a row
/// claimed meanwhile is re-checked against the conditions before it is taken.
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<PushRow>> {
    let lock = if matches!(db, Db::Postgres(_)) { "for update of p skip locked" } else { "" };
    let sql = format!(
        "update order_push set state = 'sending', lease_owner = $1, lease_until = $3, attempts = attempts + 1,
             updated_at = $2
         where id in (
             select p.id from order_push p
             join account a on a.id = p.account_id
             join store s on s.id = p.store_id and s.account_id = p.account_id
             left join store_import i on i.store_id = p.store_id
             where ((p.state = 'pending' and p.next_attempt_at <= $2) or (p.state = 'sending' and p.lease_until < $2))
               and a.stopped_at is null and i.stopped_at is null
               and not {BLOCK_IN_FORCE}
               and not exists (select 1 from order_push e
                               where e.order_pk = p.order_pk and e.seq < p.seq and e.state in ('pending', 'sending'))
             order by p.next_attempt_at, p.id
             limit $4
             {lock})
         returning *"
    );
    with_pool!(db, |p| { sqlx::query_as(&sql).bind(owner).bind(now).bind(until).bind(limit).fetch_all(p).await })
}

/// How a claimed push ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Yahoo has it; `message` holds its warnings, if any.
    Done { message: String },
    /// Yahoo refused it: failed for good (a person may send it again). The pushes of the same
    /// change queued after it depend on it and fail with it.
    Failed { message: String },
}

/// Settles a claimed push, writes its history line and (when done) what Yahoo now has onto
/// the stored order, in one transaction, only if the claim
/// is still `owner`'s (a process whose lease ran out writes nothing). False when it was not.
pub async fn finish(
    db: &Db,
    row: &PushRow,
    owner: &str,
    outcome: &Outcome,
    history: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let (state, message) = match outcome {
        Outcome::Done { message } => ("done", message),
        Outcome::Failed { message } => ("failed", message),
    };
    let (actor_type, actor_name) = HistoryActor::Job.parts();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let settled = sqlx::query(
            "update order_push set state = $3, last_message = $4, updated_at = $5,
                 done_at = case when $3 = 'done' then $5 else done_at end, lease_owner = null, lease_until = null
             where id = $1 and lease_owner = $2 and state = 'sending'",
        )
        .bind(row.id)
        .bind(owner)
        .bind(state)
        .bind(message)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !settled {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
             values ($1, $2, $3, $4, 'push', $5, $6)",
        )
        .bind(row.account_id)
        .bind(row.order_pk)
        .bind(actor_type)
        .bind(actor_name)
        .bind(history)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if state == "done" {
            // What Yahoo now has, on our copy of the order: the page shows it at once, and the
            // next import finds nothing changed.
            if row.kind == "ship" {
                sqlx::query(
                    "update yahoo_order set ship_status = $3, ship_company_code = $4, ship_invoice_number1 = $5,
                         ship_date = coalesce($6, ship_date)
                     where account_id = $1 and id = $2",
                )
                .bind(row.account_id)
                .bind(row.order_pk)
                .bind(row.ship_status)
                .bind(&row.ship_company_code)
                .bind(&row.ship_invoice_number)
                .bind(row.ship_date)
                .execute(&mut *tx)
                .await?;
            } else if let Some(status) = row.order_status {
                sqlx::query(
                    "update yahoo_order set order_status = $3, is_seen = true where account_id = $1 and id = $2",
                )
                .bind(row.account_id)
                .bind(row.order_pk)
                .bind(status)
                .execute(&mut *tx)
                .await?;
            }
        }
        if state == "failed" {
            // The rest of the same change assumed it would go through (ship status after
            // status). One change's pushes share their creation time (one transaction's
            // `now`); a later change of the order is sent on its own.
            sqlx::query(
                "update order_push set state = 'failed', last_message = $4, updated_at = $5
                 where order_pk = $1 and seq > $2 and created_at = $3 and state = 'pending'",
            )
            .bind(row.order_pk)
            .bind(row.seq)
            .bind(row.created_at)
            .bind(DEPENDENT_FAILED)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// The message of a push that was not sent because an earlier one of its order failed.
pub const DEPENDENT_FAILED: &str = "先の送信が失敗したため送信しませんでした";

/// Puts a claimed push back to wait until `at` (a temporary failure, or authentication that
/// must be fixed first), keeping what went wrong visible. False when it was not `owner`'s.
pub async fn reschedule(
    db: &Db,
    id: PushId,
    owner: &str,
    at: DateTime<Utc>,
    message: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query(
            "update order_push set state = 'pending', next_attempt_at = $3, last_message = $4, updated_at = $5,
                 lease_owner = null, lease_until = null
             where id = $1 and lease_owner = $2 and state = 'sending'",
        )
        .bind(id)
        .bind(owner)
        .bind(at)
        .bind(message)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Every push of the account's store, in order of creation (tests and the store page).
pub async fn of_store(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<Vec<PushRow>> {
    with_pool!(db, |p| {
        sqlx::query_as("select * from order_push where account_id = $1 and store_id = $2 order by id")
            .bind(account_id)
            .bind(store_id)
            .fetch_all(p)
            .await
    })
}
