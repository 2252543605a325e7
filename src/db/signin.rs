//! Throttling of sign-ins, wrong current passwords and sign-ups. Kept in the database so that
//! several servers sharing PostgreSQL throttle together.
//!
//! Every attempt is written *before* the password is checked and counts as a failure until it
//! succeeds; the decision is taken on the count that includes it. So parallel attempts cannot
//! slip under the limit (each sees at least every attempt committed before its own), and an
//! attempt that could not be written is refused rather than left uncounted.
//!
//! Limits (per window):
//! - per (email, address) pair: [`Limits::per_pair`] failures;
//! - per address, over every email: [`Limits::per_ip`] failures;
//! - per email, over addresses it has never signed in from: [`Limits::per_email_unknown`]
//!   failures. An address the login has signed in from is exempt from this one, so a third party
//!   failing on an owner's email locks only their own pair and address, never the owner's own
//!   known address.

use chrono::{DateTime, Duration, Utc};

use super::{Db, now, with_pool};

/// The thresholds, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub per_pair: i64,
    pub per_ip: i64,
    pub per_email_unknown: i64,
    pub signups_per_ip: i64,
    pub window: Duration,
}

/// An attempt written before the password check.
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    id: i64,
    /// The limit was reached: answer without checking the password.
    pub throttled: bool,
    /// Attempts of this email from this address within the window, this one included.
    pub pair_attempts: i64,
}

/// Records a sign-in attempt (or a current-password check) for `email` from `ip` and says
/// whether it may go on.
pub async fn begin(db: &Db, limits: &Limits, email: &str, ip: &str) -> sqlx::Result<Attempt> {
    let t = now();
    let since = t - limits.window;
    let (id, pair, by_ip, unknown, known): (i64, i64, i64, i64, i64) = with_pool!(db, |p| {
        let (id,): (i64,) = sqlx::query_as(
            "insert into sign_in_failure (email, ip, kind, created_at) values ($1, $2, 'signin', $3) returning id",
        )
        .bind(email)
        .bind(ip)
        .bind(t)
        .fetch_one(p)
        .await?;
        let (pair, by_ip, unknown, known): (i64, i64, i64, i64) = sqlx::query_as(
            "select
               (select count(*) from sign_in_failure where kind = 'signin' and email = $1 and ip = $2 and created_at > $3),
               (select count(*) from sign_in_failure where kind = 'signin' and ip = $2 and created_at > $3),
               (select count(*) from sign_in_failure f where f.kind = 'signin' and f.email = $1 and f.created_at > $3
                  and not exists (select 1 from sign_in_known_address k where k.email = f.email and k.ip = f.ip)),
               (select count(*) from sign_in_known_address where email = $1 and ip = $2)",
        )
        .bind(email)
        .bind(ip)
        .bind(since)
        .fetch_one(p)
        .await?;
        Ok::<_, sqlx::Error>((id, pair, by_ip, unknown, known))
    })?;
    let throttled =
        pair > limits.per_pair || by_ip > limits.per_ip || (known == 0 && unknown > limits.per_email_unknown);
    if throttled {
        tracing::warn!(pair, by_ip, unknown, known = known > 0, "sign-in throttled");
    }
    Ok(Attempt { id, throttled, pair_attempts: pair })
}

/// The password was right: the attempt and the pair's earlier failures are forgiven and the
/// address becomes one the login is known to sign in from.
pub async fn succeeded(db: &Db, attempt: Attempt, email: &str, ip: &str) -> sqlx::Result<()> {
    let t = now();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("delete from sign_in_failure where id = $1 or (kind = 'signin' and email = $2 and ip = $3)")
            .bind(attempt.id)
            .bind(email)
            .bind(ip)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "insert into sign_in_known_address (email, ip, last_success_at) values ($1, $2, $3)
             on conflict (email, ip) do update set last_success_at = excluded.last_success_at",
        )
        .bind(email)
        .bind(ip)
        .bind(t)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    })
}

/// Forgets the failed log-ins of `email` from every address (an owner reset its password).
pub async fn clear_for_email(db: &Db, email: &str) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("delete from sign_in_failure where kind = 'signin' and email = $1")
            .bind(email)
            .execute(p)
            .await
            .map(|_| ())
    })
}

/// Records a sign-up attempt from `ip`; true when the address has made too many in the window.
pub async fn signup_throttled(db: &Db, limits: &Limits, ip: &str) -> sqlx::Result<bool> {
    ip_throttled(db, limits, ip, "signup").await
}

/// Records a パスワードを忘れた ask from `ip`; true when the address has made too many in the
/// window (the sign-up limit: both are a stranger's requests that cost a mail or an account).
pub async fn reset_throttled(db: &Db, limits: &Limits, ip: &str) -> sqlx::Result<bool> {
    ip_throttled(db, limits, ip, "reset").await
}

/// Records one request of `kind` from `ip` and counts that address's within the window.
async fn ip_throttled(db: &Db, limits: &Limits, ip: &str, kind: &str) -> sqlx::Result<bool> {
    let t = now();
    let since = t - limits.window;
    let count: i64 = with_pool!(db, |p| {
        sqlx::query("insert into sign_in_failure (email, ip, kind, created_at) values ('', $1, $2, $3)")
            .bind(ip)
            .bind(kind)
            .bind(t)
            .execute(p)
            .await?;
        sqlx::query_scalar("select count(*) from sign_in_failure where kind = $1 and ip = $2 and created_at > $3")
            .bind(kind)
            .bind(ip)
            .bind(since)
            .fetch_one(p)
            .await
    })?;
    Ok(count > limits.signups_per_ip)
}

/// Drops rows older than `before`; called periodically.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> sqlx::Result<u64> {
    with_pool!(db, |p| {
        sqlx::query("delete from sign_in_failure where created_at < $1")
            .bind(before)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
    })
}
