//! `bench fleet`: what polling many stores costs. N stores, each on its own app at the
//! simulator (in this process, over loopback HTTP) and connected as the connection flow leaves
//! them, with automatic import every minute (the default) and their first polls spread over
//! that minute, are polled by one and then by two `orderdesk serve` child processes on one
//! PostgreSQL database, while a few new orders arrive at random stores. After a warm-up it
//! measures, over a window:
//!
//! - scheduler lag: how late each due poll starts (the serve processes' own
//!   `import_scheduler_lag_seconds` histogram from `/metrics`, p50 and p99 as bucket bounds), and
//!   how many polls are due and how late the oldest is at the end (a scheduler that cannot keep
//!   up starts fewer polls, which the histogram alone would not show);
//! - CPU of the serve processes and of the PostgreSQL server (from /proc), as a share of the
//!   machine and per store-hour;
//! - rows the database wrote per poll (`pg_stat_database`), run records added per poll;
//! - Yahoo calls per store-day (the simulator's counters).

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::bench::{
    BenchTokens, bench_db, connected_store, drop_bench_db, postgres_server_cpu_seconds, process_cpu_seconds, stop_child,
};
use crate::{
    crypto::SecretBox,
    db::{Db, accounts, with_pool},
    domain::{
        AccountId, StoreId,
        store::{Environment, StoreSettings},
    },
    simulator::{self, Simulator, control, state::Key},
};

pub struct Options {
    pub postgres: String,
    pub stores: Vec<usize>,
    pub processes: Vec<usize>,
    pub warmup_secs: u64,
    pub measure_secs: u64,
    pub orders_per_store_day: f64,
}

/// Stores per account (a merchant has a few).
const STORES_PER_ACCOUNT: usize = 5;

pub async fn fleet(o: Options) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "fleet benchmark: {cores} cores; automatic import every minute; {:.0} new orders per store-day; \
         warm-up {} s, measured {} s",
        o.orders_per_store_day, o.warmup_secs, o.measure_secs
    );
    if postgres_server_cpu_seconds().is_none() {
        println!("  (no postgres process on this machine: the CPU figures leave the server out)");
    }
    for &n in &o.stores {
        for &p in &o.processes {
            if let Err(e) = one(&o, n, p, cores).await {
                println!("{n} stores, {p} process(es): failed: {e:#}");
            }
        }
    }
    Ok(())
}

async fn one(o: &Options, n: usize, processes: usize, cores: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("orderdesk-bench-fleet-{}-{n}-{processes}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key_bytes = rand::random::<[u8; 32]>();
    let secrets = SecretBox::from_key(&key_bytes);
    let secret_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key_bytes);
    // Yahoo's limits as they are (each store its own app, so none waits for another).
    let sim = Simulator::bind("127.0.0.1:0".parse()?, simulator::Settings::default()).await?.spawn();
    let (db, name) = bench_db(Some(&o.postgres), &dir).await?;
    let url = {
        let mut u = url::Url::parse(&o.postgres)?;
        u.set_path(name.as_deref().unwrap_or_default());
        u.to_string()
    };
    let started = Instant::now();
    let stores = seed(&db, &secrets, &sim, n).await?;
    println!("{n} stores, {processes} process(es): seeded in {:.0} s", started.elapsed().as_secs_f64());

    let mut children = Vec::new();
    for i in 0..processes {
        children.push(Serve::start(&dir.join(format!("serve-{i}")), &url, &secret_key, sim.base_url.as_str())?);
    }
    // New orders at random stores, at the rate asked, until the measurement ends.
    let generator = {
        let state = sim.state.clone();
        let sellers: Vec<String> = (0..n).map(seller_id).collect();
        let per_sec = n as f64 * o.orders_per_store_day / 86_400.0;
        tokio::spawn(async move {
            let mut owed = 0.0;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                owed += per_sec / 10.0;
                while owed >= 1.0 {
                    owed -= 1.0;
                    let seller = sellers[rand::random::<usize>() % sellers.len()].clone();
                    let spec: simulator::generate::NewOrder = serde_json::from_value(serde_json::json!({
                        "items": [{ "item_id": "fleet-item", "title": "ベンチ商品", "quantity": 1 }]
                    }))
                    .expect("a valid order");
                    let _ = control::add_order(
                        axum::extract::State(state.clone()),
                        axum::extract::Path(seller),
                        axum::Json(spec),
                    )
                    .await;
                }
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(o.warmup_secs)).await;
    let before = Sample::take(&db, &sim, &children).await?;
    tokio::time::sleep(Duration::from_secs(o.measure_secs)).await;
    let after = Sample::take(&db, &sim, &children).await?;
    let behind = crate::db::support::scheduler_lag(&db, crate::db::now()).await?;
    generator.abort();
    for c in children {
        c.stop();
    }

    let secs = after.at.duration_since(before.at).as_secs_f64();
    let calls = after.calls.saturating_sub(before.calls) as f64;
    let cpu = (after.serve_cpu - before.serve_cpu) + (after.pg_cpu - before.pg_cpu);
    let lag = after.lag.minus(&before.lag);
    // A poll is an automatic run the scheduler started (each one's lag is in the histogram).
    let polls = lag.count.max(1) as f64;
    let list_calls = after.list_calls.saturating_sub(before.list_calls) as f64;
    let late = behind.oldest_due_at.map_or(0.0, |t| (crate::db::now() - t).num_milliseconds().max(0) as f64 / 1000.0);
    println!(
        "{n} stores, {processes} process(es): polls {:.1}/s (due {:.1}/s); scheduler lag p50 {} p99 {} ({} polls started); \
         at the end {} due, the oldest {late:.0} s late",
        polls / secs,
        n as f64 / 60.0,
        lag.quantile(0.5),
        lag.quantile(0.99),
        lag.count,
        behind.due,
    );
    println!(
        "    CPU {:.0} % of the machine (serve {:.2} s, PostgreSQL {:.2} s over {secs:.0} s), {:.2} CPU ms per poll, \
         {:.1} CPU ms per store-hour; \
         rows written per poll {:.1}; run records added per poll {:.3}; Yahoo calls per store-day {:.0} ({:.2} per poll, \
         {:.2} of them orderList)",
        cpu / secs / cores as f64 * 100.0,
        after.serve_cpu - before.serve_cpu,
        after.pg_cpu - before.pg_cpu,
        cpu * 1000.0 / polls,
        cpu * 1000.0 / (n as f64 * secs / 3600.0),
        (after.rows - before.rows) as f64 / polls,
        (after.runs - before.runs) as f64 / polls,
        calls / n as f64 * 86_400.0 / secs,
        calls / polls,
        list_calls / polls,
    );
    drop(stores);
    db.close().await;
    drop_bench_db(Some(&o.postgres), name).await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn seller_id(i: usize) -> String {
    format!("fleet-{i:05}")
}

/// N connected stores with automatic import every minute, their first polls spread over the
/// first minute and their cursors at now (a poll reads what is new, as every later one does).
async fn seed(db: &Db, secrets: &SecretBox, sim: &simulator::SimHandle, n: usize) -> anyhow::Result<Vec<StoreId>> {
    // One key pair for every seller: generating 10,000 would take longer than the benchmark.
    let private = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048)).await??;
    let public_pem =
        rsa::pkcs8::EncodePublicKey::to_public_key_pem(&RsaPublicKey::from(&private), rsa::pkcs8::LineEnding::LF)?;
    let private = Arc::new(private);
    let mut tokens = Vec::with_capacity(n);
    {
        let now = sim.state.now();
        let mut world = sim.state.world();
        for i in 0..n {
            let (seller, client_id) = (seller_id(i), format!("fleet-app-{i:05}"));
            world.apps.insert(
                client_id.clone(),
                simulator::App {
                    client_id: client_id.clone(),
                    client_secret: "bench-secret".into(),
                    redirect_uris: vec![],
                    allowed_ips: vec![],
                    approved_for_orders: true,
                },
            );
            world.seller_mut(&seller).keys.push(Key {
                version: 1,
                public_pem: public_pem.clone(),
                private: private.clone(),
                enabled: true,
                issued_at: now,
                expires_at: now + chrono::Duration::days(300),
            });
            let refresh = world.authorize(&client_id, &seller, now);
            let access = world.issue_access_token(&refresh, now);
            tokens.push((seller, client_id, refresh, access));
        }
    }
    let mut account = AccountId(0);
    let mut ids = Vec::with_capacity(n);
    for (i, (seller, client_id, refresh, access)) in tokens.into_iter().enumerate() {
        if i % STORES_PER_ACCOUNT == 0 {
            account = accounts::create_account_with_owner(
                db,
                "ベンチ商店",
                &format!("fleet{i}@bench.example"),
                "ベンチ",
                "x",
                None,
            )
            .await?
            .0;
        }
        let settings = StoreSettings {
            name: format!("ベンチ店{i}"),
            seller_id: seller,
            environment: Environment::Simulator,
            client_id,
            auto_import_enabled: false,
            auto_import_interval_minutes: crate::domain::store::DEFAULT_IMPORT_INTERVAL_MINUTES,
            auto_status_change_enabled: false,
            auto_status_change_target: None,
            restrict_fraud_hold_changes: true,
            stock_sync_enabled: false,
            auto_import_inbox: false,
        };
        let tokens = BenchTokens { refresh: &refresh, access: &access, public_pem: &public_pem, key_version: 1 };
        ids.push(connected_store(db, secrets, account, &settings, tokens).await?);
    }
    // Automatic import on, the first polls spread over the first minute after the warm-up
    // starts (a fleet that grew over time is not due all at once).
    let start = crate::db::now() + chrono::Duration::seconds(5);
    with_pool!(db, |p| {
        sqlx::query("update store set auto_import_enabled = true").execute(p).await?;
        sqlx::query(
            "insert into store_import (store_id, account_id, cursor_at, next_run_at, updated_at)
             select id, account_id, $2, $1, $2 from store
             on conflict (store_id) do update set cursor_at = excluded.cursor_at, next_run_at = excluded.next_run_at",
        )
        .bind(start)
        .bind(crate::db::now())
        .execute(p)
        .await?;
        sqlx::query("update store_import set next_run_at = next_run_at + (store_id % 60) * interval '1 second'")
            .execute(p)
            .await
            .map(|_| ())
    })
    .context("turning automatic import on")?;
    Ok(ids)
}

/// One `orderdesk serve` with its defaults, on the benchmark's database and simulator.
struct Serve {
    child: Child,
    metrics: String,
}

impl Serve {
    fn start(
        data_dir: &std::path::Path,
        database_url: &str,
        secret_key: &str,
        simulator: &str,
    ) -> anyhow::Result<Serve> {
        std::fs::create_dir_all(data_dir)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("ORDERDESK_SECRET_KEY", secret_key)
            .env("ORDERDESK_DATA_DIR", data_dir)
            .env("ORDERDESK_LISTEN", format!("127.0.0.1:{port}"))
            .env("ORDERDESK_SIMULATOR", "off")
            .env("ORDERDESK_SIMULATOR_URL", simulator)
            .env_remove("ORDERDESK_PUBLIC_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting orderdesk serve")?;
        Ok(Serve { child, metrics: format!("http://127.0.0.1:{port}/metrics") })
    }

    fn cpu_seconds(&self) -> f64 {
        process_cpu_seconds(&self.child.id().to_string())
    }

    fn stop(mut self) {
        // SIGTERM: a graceful stop (the leases it holds run out for the next benchmark anyway).
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

/// A histogram read from Prometheus text: cumulative counts per upper bound.
#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: Vec<(f64, u64)>,
    count: u64,
}

impl Histogram {
    fn parse(text: &str, name: &str) -> Histogram {
        let mut h = Histogram::default();
        let prefix = format!("{name}_bucket{{le=\"");
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(&prefix)
                && let Some((le, count)) = rest.split_once("\"}")
            {
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::INFINITY) };
                h.buckets.push((le, count.trim().parse().unwrap_or(0)));
            } else if let Some(count) = line.strip_prefix(&format!("{name}_count ")) {
                h.count = count.trim().parse().unwrap_or(0);
            }
        }
        h
    }

    fn add(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.iter().map(|(le, _)| (*le, 0)).collect();
        }
        for ((_, c), (_, o)) in self.buckets.iter_mut().zip(&other.buckets) {
            *c += o;
        }
        self.count += other.count;
    }

    fn minus(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(le, c)| {
                let e = earlier.buckets.iter().find(|(l, _)| l == le).map_or(0, |(_, c)| *c);
                (*le, c.saturating_sub(e))
            })
            .collect();
        Histogram { buckets, count: self.count.saturating_sub(earlier.count) }
    }

    /// The bucket bound under which a share `q` of the samples lie, as "≤ 0.5 s".
    fn quantile(&self, q: f64) -> String {
        if self.count == 0 {
            return "–".into();
        }
        let want = (q * self.count as f64).ceil() as u64;
        let mut bounds: Vec<&(f64, u64)> = self.buckets.iter().collect();
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        let finite = bounds.iter().filter(|(le, _)| le.is_finite()).map(|(le, _)| *le).fold(0.0, f64::max);
        match bounds.iter().find(|(_, c)| *c >= want) {
            Some((le, _)) if le.is_finite() => format!("≤ {le} s"),
            _ => format!("> {finite} s"),
        }
    }
}

struct Sample {
    at: Instant,
    serve_cpu: f64,
    pg_cpu: f64,
    rows: i64,
    runs: i64,
    list_calls: u64,
    calls: u64,
    lag: Histogram,
}

impl Sample {
    async fn take(db: &Db, sim: &simulator::SimHandle, children: &[Serve]) -> anyhow::Result<Sample> {
        let http = reqwest::Client::new();
        let mut lag = Histogram::default();
        for c in children {
            let text = http.get(&c.metrics).send().await?.text().await?;
            lag.add(&Histogram::parse(&text, "import_scheduler_lag_seconds"));
        }
        let (rows, runs): (i64, i64) = with_pool!(db, |p| {
            sqlx::query_as(
                "select (select (tup_inserted + tup_updated + tup_deleted)::bigint from pg_stat_database
                         where datname = current_database()),
                        (select count(*) from import_run)",
            )
            .fetch_one(p)
            .await
        })?;
        let (list_calls, calls) = {
            let world = sim.state.world();
            let list = world.counters.get("calls.orderList").copied().unwrap_or(0);
            let calls = world.counters.iter().filter(|(k, _)| k.starts_with("calls.")).map(|(_, v)| *v).sum();
            (list, calls)
        };
        Ok(Sample {
            at: Instant::now(),
            serve_cpu: children.iter().map(Serve::cpu_seconds).sum(),
            pg_cpu: postgres_server_cpu_seconds().unwrap_or(0.0),
            rows,
            runs,
            list_calls,
            calls,
            lag,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_from_prometheus_text() {
        let text = "import_scheduler_lag_seconds_bucket{le=\"0.5\"} 50\n\
                    import_scheduler_lag_seconds_bucket{le=\"1\"} 98\n\
                    import_scheduler_lag_seconds_bucket{le=\"5\"} 100\n\
                    import_scheduler_lag_seconds_bucket{le=\"+Inf\"} 100\n\
                    import_scheduler_lag_seconds_count 100\n";
        let h = Histogram::parse(text, "import_scheduler_lag_seconds");
        assert_eq!(h.count, 100);
        assert_eq!(h.quantile(0.5), "≤ 0.5 s");
        assert_eq!(h.quantile(0.99), "≤ 5 s");
        let mut sum = Histogram::default();
        sum.add(&h);
        sum.add(&h);
        assert_eq!(sum.minus(&h).quantile(0.98), "≤ 1 s");
    }
}
