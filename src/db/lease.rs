//! The one lease every background job holds its work under. A lease is two columns,
//! `lease_owner` and `lease_until`, on the row that names the work (a store's import, a store's
//! stock pushes, one push to Yahoo); taking it is a conditional update of that row, which
//! exactly one of several racing processes wins, on SQLite and on PostgreSQL alike. A lease
//! whose holder died runs out and is taken over; a write that must not happen after the lease
//! is lost checks it inside its own transaction with [`fence_sql`].
//!
//! The loop that renews a lease while its work runs is [`crate::jobs::Lease`].

use chrono::{DateTime, Utc};

use super::{Db, with_pool};

/// The rows that carry a lease, each keyed by one integer column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leased {
    /// A store's import (`store_import`, by store).
    StoreImport,
    /// A store's stock pushes (`stock_lease`, by store).
    StoreStock,
    /// One push of an order's change to Yahoo (`order_push`, by push).
    Push,
    /// The notifier, one across all processes (`notify_lease`, its one row).
    Notify,
}

impl Leased {
    const fn table(self) -> &'static str {
        match self {
            Leased::StoreImport => "store_import",
            Leased::StoreStock => "stock_lease",
            Leased::Push => "order_push",
            Leased::Notify => "notify_lease",
        }
    }

    const fn key(self) -> &'static str {
        match self {
            Leased::StoreImport | Leased::StoreStock => "store_id",
            Leased::Push | Leased::Notify => "id",
        }
    }

    /// The name the job has in logs.
    pub const fn name(self) -> &'static str {
        match self {
            Leased::StoreImport => "import",
            Leased::StoreStock => "stock",
            Leased::Push => "push",
            Leased::Notify => "notify",
        }
    }
}

/// The condition of a lease that is free to take at `$now` for `$owner`: nobody's, run out, or
/// already the owner's. `owner` and `now` are the parameter numbers.
pub fn free_sql(owner: usize, now: usize) -> String {
    format!("(lease_owner is null or lease_until is null or lease_until < ${now} or lease_owner = ${owner})")
}

/// The condition of a lease still held by `$owner` at `$now`.
pub fn held_sql(owner: usize, now: usize) -> String {
    format!("(lease_owner = ${owner} and lease_until >= ${now})")
}

/// The fence a writing transaction runs first: `$1` key, `$2` owner, `$3` now. It affects one
/// row when the lease is still the owner's and then, being an update, keeps the row locked
/// until the transaction ends (on PostgreSQL; SQLite's writer holds the database), so the
/// lease cannot be taken over between the check and the commit. Zero rows: write nothing.
pub fn fence_sql(what: Leased) -> String {
    format!(
        "update {} set lease_until = lease_until where {} = $1 and lease_owner = $2 and lease_until > $3",
        what.table(),
        what.key()
    )
}

/// Takes the lease of `key` for `owner` until `until`, if it is free, run out or already
/// `owner`'s. The row must exist (a stock lease's is made here; the others are the work itself).
pub async fn acquire(
    db: &Db,
    what: Leased,
    key: i64,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let sql = format!(
        "update {} set lease_owner = $2, lease_until = $4 where {} = $1 and {}",
        what.table(),
        what.key(),
        free_sql(2, 3)
    );
    with_pool!(db, |p| {
        if what == Leased::StoreStock {
            sqlx::query("insert into stock_lease (store_id) values ($1) on conflict (store_id) do nothing")
                .bind(key)
                .execute(p)
                .await?;
        }
        sqlx::query(&sql).bind(key).bind(owner).bind(now).bind(until).execute(p).await.map(|r| r.rows_affected() == 1)
    })
}

/// Extends a lease `owner` holds; false when it is no longer theirs.
pub async fn renew(
    db: &Db,
    what: Leased,
    key: i64,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let sql = format!("update {} set lease_until = $4 where {} = $1 and {}", what.table(), what.key(), held_sql(2, 3));
    with_pool!(db, |p| {
        sqlx::query(&sql).bind(key).bind(owner).bind(now).bind(until).execute(p).await.map(|r| r.rows_affected() == 1)
    })
}

/// Gives the lease back (nothing happens when it is no longer `owner`'s).
pub async fn release(db: &Db, what: Leased, key: i64, owner: &str) -> sqlx::Result<()> {
    let sql = format!(
        "update {} set lease_owner = null, lease_until = null where {} = $1 and lease_owner = $2",
        what.table(),
        what.key()
    );
    with_pool!(db, |p| { sqlx::query(&sql).bind(key).bind(owner).execute(p).await.map(|_| ()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_name_their_parameters() {
        assert_eq!(
            free_sql(2, 3),
            "(lease_owner is null or lease_until is null or lease_until < $3 or lease_owner = $2)"
        );
        assert_eq!(held_sql(4, 1), "(lease_owner = $4 and lease_until >= $1)");
        assert!(fence_sql(Leased::StoreImport).contains("update store_import set"));
        assert!(fence_sql(Leased::Push).contains("where id = $1 and lease_owner = $2 and lease_until > $3"));
    }
}
