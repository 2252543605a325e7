//! Pacing of Yahoo calls shared by every server on one PostgreSQL database: Yahoo's rate limit
//! is per app (client ID) and API URL, so the time the next call may go lives in the database
//! and each call claims its turn with one atomic statement, timed by the database's clock (one
//! clock for every server). A turn is claimed only once it has come, and the next one counts
//! from that moment: nothing is booked ahead, so callers woken late under load cannot go out
//! together. SQLite is one process (several servers share PostgreSQL, not a SQLite file), so
//! the Yahoo client's own gate paces calls there.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Db;

/// Waits until (`client_id`, `url`) may be called again, `interval` after the last claimed
/// call, and claims the call. Returns how long it waited for its turn (the round trips to the
/// database not counted); `None` on SQLite (the caller paces in memory).
pub async fn claim(db: &Db, client_id: &str, url: &str, interval: Duration) -> sqlx::Result<Option<Duration>> {
    Ok(claim_turn(db, client_id, url, interval).await?.map(|(_, waited)| waited))
}

/// [`claim`], giving the moment of the claimed call on the database's clock.
pub async fn claim_at(db: &Db, client_id: &str, url: &str, interval: Duration) -> sqlx::Result<Option<DateTime<Utc>>> {
    Ok(claim_turn(db, client_id, url, interval).await?.map(|(at, _)| at))
}

async fn claim_turn(
    db: &Db,
    client_id: &str,
    url: &str,
    interval: Duration,
) -> sqlx::Result<Option<(DateTime<Utc>, Duration)>> {
    let Db::Postgres(pool) = db else { return Ok(None) };
    let mut waited = Duration::ZERO;
    loop {
        let claimed: Option<DateTime<Utc>> = sqlx::query_scalar(
            "insert into yahoo_pace (client_id, url, next_at)
                 values ($1, $2, clock_timestamp() + make_interval(secs => $3))
             on conflict (client_id, url) do update
                 set next_at = clock_timestamp() + make_interval(secs => $3)
                 where yahoo_pace.next_at <= clock_timestamp()
             returning next_at - make_interval(secs => $3)",
        )
        .bind(client_id)
        .bind(url)
        .bind(interval.as_secs_f64())
        .fetch_optional(pool)
        .await?;
        if let Some(at) = claimed {
            return Ok(Some((at, waited)));
        }
        // Another caller's turn: wait until the next one may come, then try again.
        let wait: Option<f64> = sqlx::query_scalar(
            "select greatest(0, extract(epoch from (next_at - clock_timestamp())))::float8
             from yahoo_pace where client_id = $1 and url = $2",
        )
        .bind(client_id)
        .bind(url)
        .fetch_optional(pool)
        .await?;
        let wait = Duration::from_secs_f64(wait.unwrap_or(0.0).clamp(0.0, interval.as_secs_f64().max(0.001)))
            .max(Duration::from_micros(200));
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}
