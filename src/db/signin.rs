//! Failed sign-ins, counted per email and per client address for throttling. Kept in the
//! database so that several servers sharing PostgreSQL throttle together.

use chrono::{DateTime, Utc};

use super::{Db, now, with_pool};

pub async fn record_failure(db: &Db, email: &str, ip: &str) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("insert into sign_in_failure (email, ip, created_at) values ($1, $2, $3)")
            .bind(email)
            .bind(ip)
            .bind(now())
            .execute(p)
            .await
            .map(|_| ())
    })
}

/// Failures since `since` for this email and for this address.
pub async fn recent_failures(db: &Db, email: &str, ip: &str, since: DateTime<Utc>) -> sqlx::Result<(i64, i64)> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select (select count(*) from sign_in_failure where email = $1 and created_at > $3),
                    (select count(*) from sign_in_failure where ip = $2 and created_at > $3)",
        )
        .bind(email)
        .bind(ip)
        .bind(since)
        .fetch_one(p)
        .await
    })
}

/// A successful sign-in forgives the email's earlier failures.
pub async fn clear_for_email(db: &Db, email: &str) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query("delete from sign_in_failure where email = $1").bind(email).execute(p).await.map(|_| ())
    })
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
