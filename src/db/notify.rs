//! Notices (issue 29): raised inside the transaction of the event that causes them
//! ([`NoticeTx::raise`], once per key: a second process or a second scan inserts nothing),
//! fanned out to the users who want them, and read back by the notifier to fold into mail.
//! Each user's choices (通知の設定) are here too.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, with_pool};
use crate::domain::{
    AccountId, StoreId, UserId,
    mail::MailKind,
    notify::{Mode, Prefs, Reader},
};

/// An event worth telling people about. `key` makes it happen once per account and kind; its
/// line and link never hold personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotice {
    pub account: AccountId,
    pub store: Option<StoreId>,
    pub kind: MailKind,
    pub key: String,
    pub line: String,
    pub link: String,
}

/// The users of an account as the fan-out sees them (pending invitations excluded).
#[derive(Clone, Debug, sqlx::FromRow)]
struct ReaderRow {
    id: UserId,
    role: String,
    all_stores: bool,
    modes: Option<String>,
    stores: Option<String>,
}

const READERS_SQL: &str = "select u.id, u.role, u.all_stores, p.modes, p.stores
     from app_user u left join notify_pref p on p.user_id = u.id
     where u.account_id = $1 and u.invited_email is null order by u.id";
const SCOPES_SQL: &str = "select user_id, store_id from user_store where account_id = $1";

fn readers(rows: Vec<ReaderRow>, scopes: &[(UserId, StoreId)]) -> Vec<(UserId, Reader)> {
    rows.into_iter()
        .map(|r| {
            let is_owner = r.role == "owner";
            let scope = (!is_owner && !r.all_stores)
                .then(|| scopes.iter().filter(|(u, _)| *u == r.id).map(|(_, s)| *s).collect());
            let prefs = Prefs::from_stored(r.modes.as_deref().unwrap_or("{}"), r.stores.as_deref());
            (r.id, Reader { is_owner, scope, prefs })
        })
        .collect()
}

/// Raises notices inside a transaction the caller holds: a notice and its deliveries exist if
/// and only if the event was written.
pub(crate) trait NoticeTx {
    /// Inserts the notices not raised before and delivers each to the users who want it;
    /// returns how many were new.
    async fn raise(&mut self, notices: &[NewNotice], now: DateTime<Utc>) -> sqlx::Result<usize>;
}

macro_rules! notice_tx {
    ($conn:ty) => {
        impl NoticeTx for $conn {
            async fn raise(&mut self, notices: &[NewNotice], now: DateTime<Utc>) -> sqlx::Result<usize> {
                let mut new = 0;
                let mut account: Option<(AccountId, Vec<(UserId, Reader)>)> = None;
                for n in notices {
                    let id: Option<i64> = sqlx::query_scalar(
                        "insert into notice (account_id, store_id, kind, key, line, link, created_at)
                         values ($1, $2, $3, $4, $5, $6, $7)
                         on conflict (account_id, kind, key) do nothing returning id",
                    )
                    .bind(n.account)
                    .bind(n.store)
                    .bind(n.kind.as_str())
                    .bind(&n.key)
                    .bind(&n.line)
                    .bind(&n.link)
                    .bind(now)
                    .fetch_optional(&mut *self)
                    .await?;
                    let Some(id) = id else { continue };
                    new += 1;
                    if account.as_ref().is_none_or(|(a, _)| *a != n.account) {
                        let rows: Vec<ReaderRow> =
                            sqlx::query_as(READERS_SQL).bind(n.account).fetch_all(&mut *self).await?;
                        let scopes: Vec<(UserId, StoreId)> =
                            sqlx::query_as(SCOPES_SQL).bind(n.account).fetch_all(&mut *self).await?;
                        account = Some((n.account, readers(rows, &scopes)));
                    }
                    let Some((_, users)) = &account else { continue };
                    for (user, reader) in users {
                        let Some(mode) = reader.wants(n.kind, n.store) else { continue };
                        sqlx::query(
                            "insert into notice_delivery (notice_id, user_id, account_id, store_id, kind, mode, created_at)
                             values ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(id)
                        .bind(*user)
                        .bind(n.account)
                        .bind(n.store)
                        .bind(n.kind.as_str())
                        .bind(mode.as_str())
                        .bind(now)
                        .execute(&mut *self)
                        .await?;
                    }
                }
                Ok(new)
            }
        }
    };
}

notice_tx!(sqlx::SqliteConnection);
notice_tx!(sqlx::PgConnection);

/// Raises notices in a transaction of their own (the watcher's, which writes nothing else).
pub async fn raise(db: &Db, notices: &[NewNotice], now: DateTime<Utc>) -> sqlx::Result<usize> {
    if notices.is_empty() {
        return Ok(0);
    }
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let n = tx.raise(notices, now).await?;
        tx.commit().await?;
        Ok(n)
    })
}

/// A delivery waiting to be folded into mail, with what the mail needs.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Pending {
    pub notice_id: i64,
    pub user_id: UserId,
    pub account_id: AccountId,
    pub store_id: Option<StoreId>,
    pub kind: String,
    pub mode: String,
    pub line: String,
    pub link: String,
    pub email: String,
    pub store_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The (user, kind, store) groups with deliveries of `mode` waiting to be folded.
pub async fn pending_groups(db: &Db, mode: Mode) -> sqlx::Result<Vec<(UserId, String, Option<StoreId>)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select distinct user_id, kind, store_id from notice_delivery where not folded and mode = $1
             order by user_id, kind, store_id",
        )
        .bind(mode.as_str())
        .fetch_all(p)
        .await
    })
}

/// A user's waiting deliveries of `mode` (one kind and store, or all of them), oldest first.
pub async fn pending(
    db: &Db,
    user: UserId,
    mode: Mode,
    group: Option<(&str, Option<StoreId>)>,
) -> sqlx::Result<Vec<Pending>> {
    let filter = if group.is_some() { "and d.kind = $3 and coalesce(d.store_id, 0) = coalesce($4, 0)" } else { "" };
    let sql = format!(
        "select d.notice_id, d.user_id, d.account_id, d.store_id, d.kind, d.mode, n.line, n.link, u.email,
                s.name as store_name, n.created_at
         from notice_delivery d
         join notice n on n.id = d.notice_id
         join app_user u on u.id = d.user_id
         left join store s on s.id = d.store_id
         where d.user_id = $1 and not d.folded and d.mode = $2 {filter}
         order by d.kind, d.store_id, d.notice_id"
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(user).bind(mode.as_str());
        if let Some((kind, store)) = group {
            q = q.bind(kind).bind(store);
        }
        q.fetch_all(p).await
    })
}

/// When `user` was last mailed `kind` about `store`.
pub async fn last_mailed(
    db: &Db,
    user: UserId,
    kind: MailKind,
    store: Option<StoreId>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select max(created_at) from mail_message
             where user_id = $1 and kind = $2 and coalesce(store_id, 0) = coalesce($3, 0)",
        )
        .bind(user)
        .bind(kind.as_str())
        .bind(store)
        .fetch_one(p)
        .await
    })
}

/// A folded mail: the message and the deliveries it covers.
pub struct Folded {
    pub mail: super::mail::NewMail,
    pub user: UserId,
    pub deliveries: Vec<i64>,
    /// The digest's day (its mail is made once per user and day).
    pub digest_day: Option<NaiveDate>,
}

/// Queues a folded mail and marks what it covers, in one transaction; false (nothing written)
/// when a delivery was folded meanwhile or the day's digest already exists.
pub async fn commit_fold(db: &Db, f: &Folded, now: DateTime<Utc>) -> sqlx::Result<bool> {
    use super::mail::MailTx;
    let pg = db.is_postgres();
    let mark = format!(
        "update notice_delivery set folded = true, mail_id = $3
         where user_id = $1 and not folded and {}",
        super::in_ids(pg, "notice_id", 2)
    );
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        if let Some(day) = f.digest_day {
            let fresh = sqlx::query(
                "insert into notify_digest (user_id, day) values ($1, $2) on conflict (user_id, day) do nothing",
            )
            .bind(f.user)
            .bind(day)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fresh != 1 {
                return Ok(false);
            }
        }
        let id = tx.queue_one(&f.mail, now).await?;
        if !f.deliveries.is_empty() {
            let marked = sqlx::query(&mark)
                .bind(f.user)
                .bind(super::ids_value(pg, f.deliveries.iter().copied()))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if marked != f.deliveries.len() as u64 {
                return Ok(false);
            }
        }
        if let Some(day) = f.digest_day {
            sqlx::query("update notify_digest set mail_id = $3 where user_id = $1 and day = $2")
                .bind(f.user)
                .bind(day)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// Users whose daily digest of `day` has not been made yet, created before it was due, with
/// what the digest needs to know about them.
#[derive(Clone, Debug)]
pub struct DigestReader {
    pub user: UserId,
    pub account: AccountId,
    pub email: String,
    pub reader: Reader,
}

pub async fn digest_readers(
    db: &Db,
    day: NaiveDate,
    due: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DigestReader>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        id: UserId,
        account_id: AccountId,
        email: String,
        role: String,
        all_stores: bool,
        modes: Option<String>,
        stores: Option<String>,
    }
    with_pool!(db, |p| {
        let rows: Vec<Row> = sqlx::query_as(
            "select u.id, u.account_id, u.email, u.role, u.all_stores, p.modes, p.stores
             from app_user u left join notify_pref p on p.user_id = u.id
             where u.invited_email is null and u.created_at < $2
               and not exists (select 1 from notify_digest g where g.user_id = u.id and g.day = $1)
             order by u.id limit $3",
        )
        .bind(day)
        .bind(due)
        .bind(limit)
        .fetch_all(p)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let scopes: Vec<(UserId, StoreId)> = if r.role == "owner" || r.all_stores {
                Vec::new()
            } else {
                sqlx::query_as("select user_id, store_id from user_store where user_id = $1")
                    .bind(r.id)
                    .fetch_all(p)
                    .await?
            };
            let reader = readers(
                vec![ReaderRow { id: r.id, role: r.role, all_stores: r.all_stores, modes: r.modes, stores: r.stores }],
                &scopes,
            )
            .remove(0)
            .1;
            out.push(DigestReader { user: r.id, account: r.account_id, email: r.email, reader });
        }
        Ok(out)
    })
}

/// A store's figures for the daily summary: (store, name, orders imported since `since`,
/// held now, pushes failed now).
pub type StoreDayRow = (StoreId, String, i64, i64, i64);

pub async fn store_days(db: &Db, account: AccountId, since: DateTime<Utc>) -> sqlx::Result<Vec<StoreDayRow>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select s.id, s.name,
                    (select count(*) from yahoo_order o where o.store_id = s.id and o.account_id = $1 and o.imported_at >= $2),
                    (select count(*) from yahoo_order o where o.store_id = s.id and o.account_id = $1
                        and o.fraud_hold_status = 1 and o.order_status <> 4),
                    (select count(*) from order_push q where q.store_id = s.id and q.account_id = $1 and q.state = 'failed')
             from store s where s.account_id = $1 order by s.id",
        )
        .bind(account)
        .bind(since)
        .fetch_all(p)
        .await
    })
}

/// A user's choices (their role's defaults when they never chose).
pub async fn prefs(db: &Db, account: AccountId, user: UserId) -> sqlx::Result<Prefs> {
    with_pool!(db, |p| {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("select modes, stores from notify_pref where account_id = $1 and user_id = $2")
                .bind(account)
                .bind(user)
                .fetch_optional(p)
                .await?;
        Ok(row.map(|(m, s)| Prefs::from_stored(&m, s.as_deref())).unwrap_or_default())
    })
}

pub async fn save_prefs(
    db: &Db,
    account: AccountId,
    user: UserId,
    prefs: &Prefs,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "insert into notify_pref (user_id, account_id, modes, stores, updated_at) values ($1, $2, $3, $4, $5)
             on conflict (user_id) do update set modes = excluded.modes, stores = excluded.stores, updated_at = excluded.updated_at",
        )
        .bind(user)
        .bind(account)
        .bind(prefs.modes_json())
        .bind(prefs.stores_json())
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// The newest notices of stores `scope` can see, for the settings page's 「最近のお知らせ」.
pub async fn recent(
    db: &Db,
    scope: &crate::domain::scope::OrderScope,
    limit: i64,
) -> sqlx::Result<Vec<(String, Option<String>, String, DateTime<Utc>)>> {
    let sql = format!(
        "select n.kind, s.name, n.line, n.created_at from notice n left join store s on s.id = n.store_id
         where n.account_id = $1{} order by n.id desc limit $2",
        match &scope.stores {
            None => String::new(),
            Some(_) => format!(" and {}", super::in_ids(matches!(db, Db::Postgres(_)), "n.store_id", 3)),
        }
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account).bind(limit);
        if let Some(stores) = &scope.stores {
            q = q.bind(super::ids_value(matches!(db, Db::Postgres(_)), stores.iter().map(|s| s.0)));
        }
        q.fetch_all(p).await
    })
}

/// A push to Yahoo failed for good that no notice names yet (`key`: push and attempt).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FailedPush {
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub order_pk: i64,
    pub order_id: String,
    pub message: String,
    pub key: String,
}

pub async fn unnoticed_failed_pushes(db: &Db, limit: i64) -> sqlx::Result<Vec<FailedPush>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select q.account_id, q.store_id, q.order_pk, o.order_id, coalesce(q.last_message, '') as message, q.key
             from (select p.*, 'push:' || p.id || ':' || p.attempts as key from order_push p
                   where p.state = 'failed' and coalesce(p.last_message, '') <> $1) q
             join yahoo_order o on o.id = q.order_pk
             where not exists (select 1 from notice n
                               where n.account_id = q.account_id and n.kind = 'push_failed' and n.key = q.key)
             order by q.id limit $2",
        )
        .bind(super::outbox::DEPENDENT_FAILED)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// An item code whose stock Yahoo refused, that no notice names yet.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FailedStock {
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub code: String,
    pub message: String,
    pub key: String,
}

pub async fn unnoticed_failed_stock(db: &Db, limit: i64) -> sqlx::Result<Vec<FailedStock>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select q.account_id, q.store_id, q.code, coalesce(q.last_error, '') as message, q.key
             from (select s.*, s.store_id || ':' || s.code || ':' || s.version as key from stock_push s
                   where s.state = 'failed') q
             where not exists (select 1 from notice n
                               where n.account_id = q.account_id and n.kind = 'stock_failing' and n.key = q.key)
             order by q.store_id, q.code limit $1",
        )
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// A store's newest finished import runs (newest first) and when it last polled Yahoo idle
/// with success (idle polls are counted, not recorded as runs).
pub async fn recent_runs(
    db: &Db,
    store: StoreId,
    n: i64,
) -> sqlx::Result<(Vec<(i64, String, Option<String>, DateTime<Utc>)>, Option<DateTime<Utc>>)> {
    with_pool!(db, |p| {
        let runs = sqlx::query_as(
            "select id, status, message, started_at from import_run
             where store_id = $1 and status in ('done', 'failed') order by id desc limit $2",
        )
        .bind(store)
        .bind(n)
        .fetch_all(p)
        .await?;
        let idle: Option<Option<DateTime<Utc>>> =
            sqlx::query_scalar("select idle_at from store_import where store_id = $1")
                .bind(store)
                .fetch_optional(p)
                .await?;
        Ok((runs, idle.flatten()))
    })
}

/// Import-failing notices of stores that have not been told of a recovery yet.
pub async fn open_import_failures(db: &Db) -> sqlx::Result<Vec<(AccountId, StoreId, String)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select n.account_id, n.store_id, n.key from notice n
             where n.kind = 'import_failing' and n.store_id is not null
               and not exists (select 1 from notice m
                               where m.account_id = n.account_id and m.kind = 'import_recovered' and m.key = n.key)",
        )
        .fetch_all(p)
        .await
    })
}

/// Marks `user`'s digest of `day` as made with nothing to say (no mail).
pub async fn skip_digest(db: &Db, user: UserId, day: NaiveDate) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("insert into notify_digest (user_id, day) values ($1, $2) on conflict (user_id, day) do nothing")
            .bind(user)
            .bind(day)
            .execute(p)
            .await
            .map(|_| ())
    })
}
