//! `orderdesk bench admin`: the support overview at scale (issue 11). Seeds 1,000 accounts with
//! 5,000 stores (a few needing attention) and ten import runs per store over the last day, then
//! prints the p99 of the overview's first page, of a page deep in the list, and of the 「要対応」
//! filter, on SQLite and (with a URL) PostgreSQL. Target: ≤ 200 ms.

use std::time::Instant;

use chrono::Duration;

use crate::{db::Db, web::admin::overview, with_pool};

const ACCOUNTS: i64 = 1_000;
const STORES_PER_ACCOUNT: i64 = 5;
const RUNS_PER_STORE: i64 = 10;
const ROUNDS: usize = 50;

pub async fn admin(postgres: Option<String>) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("orderdesk-bench-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "admin overview benchmark: {ACCOUNTS} accounts, {} stores, {} import runs; p99 of {ROUNDS} rounds",
        ACCOUNTS * STORES_PER_ACCOUNT,
        ACCOUNTS * STORES_PER_ACCOUNT * RUNS_PER_STORE
    );
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        let (db, pg_name) = super::bench::bench_db(backend, &dir).await?;
        let started = Instant::now();
        seed(&db).await?;
        // As autovacuum would after a bulk load: the planner needs the tables' statistics.
        if let Db::Postgres(p) = &db {
            sqlx::query("analyze").execute(p).await?;
        }
        println!("{label}: seeded in {:.1} s", started.elapsed().as_secs_f64());
        let now = crate::db::now();
        let mut first = Vec::new();
        let mut deep = Vec::new();
        let mut attention = Vec::new();
        let mut flagged = 0;
        for round in 0..ROUNDS {
            let t = Instant::now();
            overview(&db, "", false, 0, now).await?;
            first.push(t.elapsed());
            let after = (round as i64 * 37) % (ACCOUNTS - 60);
            let t = Instant::now();
            overview(&db, "", false, after, now).await?;
            deep.push(t.elapsed());
            let t = Instant::now();
            let (rows, _) = overview(&db, "", true, 0, now).await?;
            attention.push(t.elapsed());
            flagged = rows.len();
        }
        println!(
            "{label}: overview first page p99 {} ms, a page deep in the list p99 {} ms, 要対応 p99 {} ms ({flagged} accounts on its first page)",
            p99(&mut first),
            p99(&mut deep),
            p99(&mut attention)
        );
        db.close().await;
        super::bench::drop_bench_db(backend, pg_name).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn p99(samples: &mut [std::time::Duration]) -> u128 {
    samples.sort();
    let i = ((samples.len() as f64) * 0.99).ceil() as usize;
    samples[i.saturating_sub(1).min(samples.len() - 1)].as_millis()
}

/// Accounts, owners, stores (every 50th store with its key expiring in 5 days, every 70th with
/// its last run failed) and runs, in one transaction.
async fn seed(db: &Db) -> anyhow::Result<()> {
    let now = crate::db::now();
    let today = crate::domain::jst::today(now);
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        for a in 1..=ACCOUNTS {
            let account: i64 = sqlx::query_scalar(
                "insert into account (name, created_at, updated_at) values ($1, $2, $2) returning id",
            )
            .bind(format!("ベンチ商店{a:04}"))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "insert into app_user (account_id, email, display_name, password_hash, role, created_at, updated_at)
                 values ($1, $2, '店長', 'x', 'owner', $3, $3)",
            )
            .bind(account)
            .bind(format!("owner{a}@bench.example"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for s in 0..STORES_PER_ACCOUNT {
                let n = a * STORES_PER_ACCOUNT + s;
                let expires = if n % 50 == 0 { today + Duration::days(5) } else { today + Duration::days(300) };
                let store: i64 = sqlx::query_scalar(
                    "insert into store (account_id, name, seller_id, environment, public_key_pem, public_key_version,
                         public_key_expires_on, authorized_at, last_authorize_status, clock_offset_ms,
                         auto_import_enabled, created_at, updated_at)
                     values ($1, $2, $3, 'simulator', 'bench', 1, $4, $5, 'authorized', 0, true, $6, $6)
                     returning id",
                )
                .bind(account)
                .bind(format!("ストア{n}"))
                .bind(format!("bench-{n}"))
                .bind(expires)
                .bind(now - Duration::days(2))
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query(
                    "insert into store_import (store_id, account_id, next_run_at, updated_at) values ($1, $2, $3, $3)",
                )
                .bind(store)
                .bind(account)
                .bind(now + Duration::minutes(5))
                .execute(&mut *tx)
                .await?;
                for r in 0..RUNS_PER_STORE {
                    let failed = n % 70 == 0 && r == RUNS_PER_STORE - 1;
                    let at = now - Duration::hours(23) + Duration::minutes(r * 120);
                    sqlx::query(
                        "insert into import_run (account_id, store_id, trigger_kind, status, owner, started_at, heartbeat_at, finished_at)
                         values ($1, $2, 'auto', $3, 'bench', $4, $4, $4)",
                    )
                    .bind(account)
                    .bind(store)
                    .bind(if failed { "failed" } else { "done" })
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
