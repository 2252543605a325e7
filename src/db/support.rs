//! Support staff: operators of the service, outside every account.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, WriteError, imports::BLOCK_IN_FORCE, now, with_pool};
use crate::domain::{AccountId, StoreId, SupportStaffId, diagnosis::Facts, health::StoreHealth};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SupportStaff {
    pub id: SupportStaffId,
    pub email: String,
    pub display_name: String,
    pub auth_epoch: i64,
}

#[derive(Clone, sqlx::FromRow)]
pub struct SupportCredentials {
    pub id: SupportStaffId,
    pub password_hash: String,
    pub auth_epoch: i64,
}

pub async fn create(
    db: &Db,
    email: &str,
    display_name: &str,
    password_hash: &str,
) -> Result<SupportStaffId, WriteError> {
    let t = now();
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "insert into support_staff (email, display_name, password_hash, created_at, updated_at)
             values ($1, $2, $3, $4, $4) returning id",
        )
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(t)
        .fetch_one(p)
        .await
        .map_err(WriteError::classify)
    })
}

pub async fn find_credentials(db: &Db, email: &str) -> sqlx::Result<Option<SupportCredentials>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, password_hash, auth_epoch from support_staff where email = $1")
            .bind(email)
            .fetch_optional(p)
            .await
    })
}

pub async fn get(db: &Db, id: SupportStaffId) -> sqlx::Result<Option<SupportStaff>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, email, display_name, auth_epoch from support_staff where id = $1")
            .bind(id)
            .fetch_optional(p)
            .await
    })
}

/// Accounts with their owner's email and store count, for the support view.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountSummary {
    pub id: crate::domain::AccountId,
    pub name: String,
    pub owner_email: Option<String>,
    pub store_count: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_accounts(db: &Db) -> sqlx::Result<Vec<AccountSummary>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select a.id, a.name,
                    (select min(u.email) from app_user u where u.account_id = a.id and u.role = 'owner' and u.invited_email is null) as owner_email,
                    (select count(*) from store s where s.account_id = a.id) as store_count,
                    a.created_at
             from account a order by a.id",
        )
        .fetch_all(p)
        .await
    })
}

/// One account of the support overview.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OverviewAccount {
    pub id: AccountId,
    pub name: String,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub user_count: i64,
    pub store_count: i64,
}

/// One store of the support overview: credential facts, runs of the last 24 hours, failing
/// pushes, and its automatic import's schedule and stop.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OverviewStore {
    pub id: StoreId,
    pub account_id: AccountId,
    pub name: String,
    pub seller_id: String,
    pub connected: bool,
    pub authorized_at: Option<DateTime<Utc>>,
    pub has_public_key: bool,
    pub public_key_version: Option<i64>,
    pub public_key_expires_on: Option<NaiveDate>,
    pub last_authorize_status: Option<String>,
    pub last_auth_error: Option<String>,
    pub clock_offset_ms: Option<i64>,
    pub auto_import_enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    pub stopped_reason: Option<String>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub blocked_reason: Option<String>,
    pub blocked: bool,
    pub runs_24h: i64,
    pub failed_runs_24h: i64,
    pub last_run_status: Option<String>,
    pub failing_pushes: i64,
}

impl OverviewStore {
    pub fn facts(&self) -> Facts {
        Facts {
            connected: self.connected,
            authorized_at: self.authorized_at,
            has_public_key: self.has_public_key,
            public_key_version: self.public_key_version,
            public_key_expires_on: self.public_key_expires_on,
            last_authorize_status: self.last_authorize_status.clone(),
            last_auth_error: self.last_auth_error.clone(),
            clock_offset_ms: self.clock_offset_ms,
        }
    }

    /// What the 「要対応」 rule needs; `account_stopped` is the account's own emergency stop.
    pub fn health(&self, account_stopped: bool) -> StoreHealth {
        StoreHealth {
            facts: self.facts(),
            last_run_status: self.last_run_status.clone(),
            blocked: self.blocked,
            failing_pushes: self.failing_pushes,
            stopped: account_stopped || self.stopped_at.is_some(),
        }
    }
}

/// A LIKE pattern matching `term` anywhere, lower-cased, with `\` as escape.
pub fn like_pattern(term: &str) -> String {
    let mut p = String::from("%");
    for c in term.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Accounts after `after_id` in ID order (keyset paging), matching `search` (account name,
/// store name or seller ID; empty: all), at most `limit`.
pub async fn overview_accounts(db: &Db, after_id: i64, search: &str, limit: i64) -> sqlx::Result<Vec<OverviewAccount>> {
    let pattern = if search.trim().is_empty() { String::new() } else { like_pattern(search) };
    with_pool!(db, |p| {
        sqlx::query_as(
            "select a.id, a.name, a.stopped_reason, a.stopped_at,
                    (select count(*) from app_user u where u.account_id = a.id) as user_count,
                    (select count(*) from store s where s.account_id = a.id) as store_count
             from account a
             where a.id > $1
               and ($2 = '' or lower(a.name) like $2 escape '\\'
                    or exists (select 1 from store s where s.account_id = a.id
                               and (lower(s.name) like $2 escape '\\' or lower(s.seller_id) like $2 escape '\\')))
             order by a.id
             limit $3",
        )
        .bind(after_id)
        .bind(pattern)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// The automatic runs since `$3` that found nothing and so left no record (they are counted on
/// the store's import row since its last recorded run, `imports::fold_idle_run`): all of that
/// count when the last recorded run is inside the window, else as many as the store's interval
/// fits into a day (the count cannot be split at the window's start).
const IDLE_RUNS_SINCE: &str = "coalesce(case when i.idle_at >= $3 then
         case when coalesce((select max(r.started_at) from import_run r where r.store_id = s.id), $3) >= $3
                   or i.idle_polls < 1440 / (case when s.auto_import_interval_minutes > 0 then s.auto_import_interval_minutes else 1 end)
              then i.idle_polls
              else 1440 / (case when s.auto_import_interval_minutes > 0 then s.auto_import_interval_minutes else 1 end) end end, 0)";

/// The stores of the accounts with IDs from `first` to `last` (one page of accounts: the range
/// is walked through the account index, never the whole table), with their runs since `since`.
pub async fn overview_stores(
    db: &Db,
    first: AccountId,
    last: AccountId,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<OverviewStore>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select s.id, s.account_id, s.name, s.seller_id,
                    s.refresh_token_enc is not null as connected, s.authorized_at,
                    s.public_key_pem is not null as has_public_key, s.public_key_version, s.public_key_expires_on,
                    s.last_authorize_status, s.last_auth_error, s.clock_offset_ms, s.auto_import_enabled,
                    i.next_run_at, i.stopped_reason, i.stopped_at, i.blocked_reason,
                    {BLOCK_IN_FORCE} as blocked,
                    (select count(*) from import_run r where r.store_id = s.id and r.started_at >= $3)
                      + {IDLE_RUNS_SINCE} as runs_24h,
                    (select count(*) from import_run r
                     where r.store_id = s.id and r.started_at >= $3 and r.status = 'failed') as failed_runs_24h,
                    case when i.idle_at is not null
                              and not exists (select 1 from import_run r where r.store_id = s.id and r.started_at >= i.idle_at)
                         then 'done'
                         else (select r.status from import_run r where r.store_id = s.id order by r.id desc limit 1)
                    end as last_run_status,
                    (select count(*) from order_push o
                     where o.account_id = s.account_id and o.store_id = s.id and o.state = 'failed') as failing_pushes
             from store s left join store_import i on i.store_id = s.id and i.account_id = s.account_id
             where s.account_id >= $1 and s.account_id <= $2
             order by s.account_id, s.id"
        ))
        .bind(first)
        .bind(last)
        .bind(since)
        .fetch_all(p)
        .await
    })
}

/// Scheduler lag: how many automatic imports are due now and how late the oldest is.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct SchedulerLag {
    pub due: i64,
    pub oldest_due_at: Option<DateTime<Utc>>,
}

pub async fn scheduler_lag(db: &Db, now: DateTime<Utc>) -> sqlx::Result<SchedulerLag> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select count(*) as due, min(i.next_run_at) as oldest_due_at
             from store_import i
             join store s on s.id = i.store_id and s.account_id = i.account_id
             join account a on a.id = i.account_id
             where i.next_run_at <= $1 and s.auto_import_enabled and s.refresh_token_enc is not null
               and i.stopped_at is null and a.stopped_at is null
               and not {BLOCK_IN_FORCE}"
        ))
        .bind(now)
        .fetch_one(p)
        .await
    })
}

/// A support person's access to one account's data (product.md §9).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Access {
    pub id: i64,
    pub account_id: AccountId,
    pub staff_id: SupportStaffId,
    pub staff_name: String,
    pub reason: String,
    pub needs_personal: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
/// Opens an access, with its audit entry in the same transaction. None when there is no such
/// account.
pub async fn open_access(
    db: &Db,
    account_id: AccountId,
    staff: &SupportStaff,
    reason: &str,
    needs_personal: bool,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    note: &crate::db::audit::Note,
) -> sqlx::Result<Option<i64>> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "insert into support_access (account_id, staff_id, staff_name, reason, needs_personal, created_at, expires_at)
             select a.id, $2, $3, $4, $5, $6, $7 from account a where a.id = $1
             returning id",
        )
        .bind(account_id)
        .bind(staff.id)
        .bind(&staff.display_name)
        .bind(reason)
        .bind(needs_personal)
        .bind(now)
        .bind(expires_at)
        .fetch_optional(&mut *tx)
        .await?;
        if id.is_some() {
            crate::db::audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(id)
    })
}

/// The access `id` of `staff_id`, if it has not expired at `now`.
pub async fn live_access(
    db: &Db,
    id: i64,
    staff_id: SupportStaffId,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Access>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id, account_id, staff_id, staff_name, reason, needs_personal, created_at, expires_at
             from support_access where id = $1 and staff_id = $2 and expires_at > $3",
        )
        .bind(id)
        .bind(staff_id)
        .bind(now)
        .fetch_optional(p)
        .await
    })
}
