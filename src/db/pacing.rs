//! Pacing of Yahoo calls shared by every server on one PostgreSQL database: Yahoo's rate limit
//! is per app (client ID) and API URL, so the next allowed call time lives in the database and
//! each call reserves its slot with one atomic statement, timed by the database's clock (one
//! clock for every server). SQLite is one process (several servers share PostgreSQL, not a
//! SQLite file), so the Yahoo client keeps its in-memory slots there.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Db;

/// Reserves the next slot for (`client_id`, `url`), `interval` after the previous one, and
/// returns how long to wait for it. `None` on SQLite (the caller paces in memory).
pub async fn reserve(db: &Db, client_id: &str, url: &str, interval: Duration) -> sqlx::Result<Option<Duration>> {
    Ok(reserve_slot(db, client_id, url, interval).await?.map(|(_, wait)| wait))
}

/// [`reserve`], also giving the slot itself on the database's clock.
pub async fn reserve_slot(
    db: &Db,
    client_id: &str,
    url: &str,
    interval: Duration,
) -> sqlx::Result<Option<(DateTime<Utc>, Duration)>> {
    let Db::Postgres(pool) = db else { return Ok(None) };
    let (slot, wait): (DateTime<Utc>, f64) = sqlx::query_as(
        "insert into yahoo_pace (client_id, url, next_at)
             values ($1, $2, clock_timestamp() + make_interval(secs => $3))
         on conflict (client_id, url) do update
             set next_at = greatest(yahoo_pace.next_at, clock_timestamp()) + make_interval(secs => $3)
         returning next_at - make_interval(secs => $3),
                   greatest(0, extract(epoch from (next_at - make_interval(secs => $3) - clock_timestamp())))::float8",
    )
    .bind(client_id)
    .bind(url)
    .bind(interval.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok(Some((slot, Duration::from_secs_f64(wait.clamp(0.0, 3600.0)))))
}
