//! `orderdesk bench stock`: 在庫連動 at scale (issue 12). One account with five stores, each on
//! its own app (as merchants register one app per store), 在庫連動 on; `codes` codes changed at
//! once; the stock job pushes them with setStock. Prints the setStock calls made against the
//! minimum (⌈codes ÷ 1,000⌉ per store), the time to push everything with the simulator's rate
//! limit off and on, and the delay from an order's import to its new quantity at Yahoo.

use std::{sync::Arc, time::Instant};

use super::bench::{bench_db, bench_store_in, drop_bench_db, tempfile_dir};
use crate::{
    config::Config,
    db::{imports::Trigger, stock},
    domain::{AccountId, StoreId},
    import::{ImportSettings, Importer, Job},
    jobs::ProcessId,
    simulator::{self, Simulator},
    stock::{StockSettings, StockSync},
    yahoo::YahooClient,
};

const STORES: usize = 5;

pub async fn stock(codes: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let secrets = crate::crypto::SecretBox::from_key(&rand::random::<[u8; 32]>());
    println!("stock benchmark: {codes} codes changed, {STORES} stores with 在庫連動 on, simulator in this process");
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        for rate in [0.0, 1.0] {
            let settings = simulator::Settings { rate_per_sec: rate, daily_quota: 0, ..Default::default() };
            let sim = Simulator::bind("127.0.0.1:0".parse()?, settings).await?.spawn();
            let sub = dir.join(format!("{label}-{rate}"));
            std::fs::create_dir_all(&sub)?;
            let (db, pg_name) = bench_db(backend, &sub).await?;
            let mut stores: Vec<(AccountId, StoreId, String)> = Vec::new();
            let mut account = None;
            for i in 0..STORES {
                let seller = format!("bench-stock-{i}");
                let (a, s) = bench_store_in(&db, &secrets, &sim, &seller, &format!("bench-app-{i}"), account).await?;
                account = Some(a);
                crate::with_pool!(&db, |p| {
                    sqlx::query("update store set stock_sync_enabled = true where id = $1")
                        .bind(s)
                        .execute(p)
                        .await
                        .map(|_| ())
                })?;
                stores.push((a, s, seller));
            }
            let account = account.expect("five stores");
            let mut config = Config::defaults();
            config.simulator_url = Some(sim.base_url.clone());
            // Pace as in production when the simulator limits, not at all when it does not.
            if rate == 0.0 {
                config.yahoo_min_interval_ms = 0;
            }
            config.yahoo_daily_quota = i64::MAX / 2;
            let yahoo = Arc::new(YahooClient::new(&config, db.clone(), secrets.clone())?);
            let job = Arc::new(StockSync::new(
                db.clone(),
                yahoo.clone(),
                ProcessId::new(),
                StockSettings::from_config(&config),
            ));

            let lines: Vec<(String, i64)> =
                (0..codes).map(|i| (format!("item-{i:06}"), 10 + (i % 50) as i64)).collect();
            let started = Instant::now();
            stock::set_many(&db, account, &lines, stock::Cause::Csv, None, "bench", crate::db::now()).await?;
            let written = started.elapsed().as_secs_f64();
            loop {
                let t = job.tick().await?;
                if t.calls == 0 && t.events == 0 {
                    break;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            let counters = sim.state.world().counters.clone();
            let calls = counters.get("calls.setStock").copied().unwrap_or(0);
            let throttled = counters.get("status.setStock.403").copied().unwrap_or(0);
            let minimum = STORES * codes.div_ceil(crate::domain::stock::CODES_PER_CALL);
            let mut wrong = 0;
            for (_, _, seller) in &stores {
                let world = sim.state.world();
                let theirs = &world.sellers[seller].stock;
                wrong += lines.iter().filter(|(c, q)| theirs.get(c).map(|s| s.quantity) != Some(*q)).count();
            }
            println!(
                "{label}, rate limit {}: {codes} codes × {STORES} stores pushed in {secs:.1} s (stock and queue written in {written:.1} s); \
                 setStock calls {calls} (minimum {minimum}), throttled {throttled}, values wrong at Yahoo {wrong}",
                if rate > 0.0 { "on (1/s per app and URL)" } else { "off" },
            );

            if rate == 0.0 {
                // An order's import to its new quantity at every store.
                let (a0, s0, seller0) = &stores[0];
                let code = "item-000001";
                let before = sim.state.world().sellers[seller0].stock[code].quantity;
                let spec: simulator::generate::NewOrder = serde_json::from_value(serde_json::json!({
                    "items": [{ "item_id": code, "title": "ベンチ商品", "quantity": 2 }]
                }))?;
                let _created = simulator::control::add_order(
                    axum::extract::State(sim.state.clone()),
                    axum::extract::Path(seller0.clone()),
                    axum::Json(spec),
                )
                .await
                .map_err(|_| anyhow::anyhow!("adding the order failed"))?;
                // The import's window ends a little before now (orders still being published).
                tokio::time::sleep(std::time::Duration::from_millis(4000)).await;
                let importer =
                    Importer::new(db.clone(), yahoo.clone(), ProcessId::new(), ImportSettings::from_config(&config));
                anyhow::ensure!(importer.acquire(*a0, *s0).await?, "lease");
                let run = crate::db::imports::create_run(
                    &db,
                    *a0,
                    *s0,
                    Trigger::Manual,
                    "running",
                    (None, None),
                    importer.owner(),
                    crate::db::now(),
                )
                .await?;
                importer
                    .execute(&Job { account: *a0, store: *s0, trigger: Trigger::Manual, run, window: None, only: None })
                    .await;
                let imported = Instant::now();
                let stored = crate::db::orders::all_of_store(&db, *a0, *s0).await?.len();
                anyhow::ensure!(stored == 1, "the order was not imported ({stored} stored)");
                // The stock job as `serve` runs it: a pass every scheduler tick.
                let tick = std::time::Duration::from_millis(config.scheduler_tick_ms.max(10));
                let background = crate::jobs::spawn(job.clone(), tick);
                let delay = loop {
                    let done = stores.iter().all(|(_, _, seller)| {
                        sim.state.world().sellers[seller].stock.get(code).map(|s| s.quantity) == Some(before - 2)
                    });
                    if done {
                        break imported.elapsed();
                    }
                    if imported.elapsed().as_secs() >= 60 {
                        drop(background);
                        anyhow::bail!("the new quantity did not reach Yahoo");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                };
                drop(background);
                println!(
                    "{label}: an order's import to its new quantity at all {STORES} stores: {:.0} ms (stock job every {} ms)",
                    delay.as_secs_f64() * 1000.0,
                    tick.as_millis()
                );
            }
            db.close().await;
            drop_bench_db(backend, pg_name).await;
            sim.stop().await;
        }
    }
    Ok(())
}
