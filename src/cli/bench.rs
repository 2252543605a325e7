//! `orderdesk bench …`: benchmarks that print figures. Run them on a release build:
//! `cargo run --release -- bench simulator`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::{
    jobs::ProcessId,
    simulator::{self, Simulator, control, generate::Generate},
    yahoo::signature,
};

/// orderInfo calls per second against an in-process simulator over loopback HTTP, with rate
/// limiting and the quota off, every call carrying a valid signature.
pub async fn simulator_order_info(seconds: u64, concurrency: usize, orders: usize) -> anyhow::Result<()> {
    let settings = simulator::Settings { rate_per_sec: 0.0, daily_quota: 0, ..Default::default() };
    let sim = Simulator::bind("127.0.0.1:0".parse()?, settings).await?.spawn();
    let seller = "bench-store";
    let private = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048)).await??;
    let public = RsaPublicKey::from(&private);
    let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&private, rsa::pkcs8::LineEnding::LF)?.to_string();
    control::issue_key(&sim.state, seller, control::IssueKey { private_pem: Some(pem), ..Default::default() })
        .await
        .map_err(|_| anyhow::anyhow!("issuing the key failed"))?;
    control::generate_into(
        &sim.state,
        seller,
        &Generate { count: orders, seed: 1, fraud_share: 0.05, spread_hours: 72 },
    );
    let token = {
        let now = sim.state.now();
        let mut world = sim.state.world();
        let refresh = world.authorize("bench-app", seller, now);
        world.issue_access_token(&refresh, now)
    };
    let ids: Arc<Vec<String>> = Arc::new(sim.state.world().sellers[seller].orders.keys().cloned().collect());
    let url = sim.base_url.join("ShoppingWebService/V1/orderInfo")?;
    let http = reqwest::Client::builder().no_gzip().pool_max_idle_per_host(concurrency).build()?;

    println!("simulator orderInfo benchmark: {orders} orders, {concurrency} in flight, {seconds} s per run");
    for (label, fresh_signature) in
        [("one signature per second (as the client sends)", false), ("a new signature every call", true)]
    {
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut workers = Vec::new();
        for w in 0..concurrency {
            let (http, url, token, ids, public) =
                (http.clone(), url.clone(), token.clone(), ids.clone(), public.clone());
            let (done, failed, stop) = (done.clone(), failed.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let mut i = w;
                let mut cached: Option<(i64, String)> = None;
                while !stop.load(Ordering::Relaxed) {
                    let now = chrono::Utc::now().timestamp();
                    let sig = match &cached {
                        Some((at, sig)) if *at == now && !fresh_signature => sig.clone(),
                        _ => {
                            let public = public.clone();
                            let sig = tokio::task::spawn_blocking(move || signature::build(&public, seller, now)).await??;
                            cached = Some((now, sig.clone()));
                            sig
                        }
                    };
                    let id = &ids[i % ids.len()];
                    i += concurrency;
                    let body = format!(
                        "<Req><Target><OrderId>{id}</OrderId><Field>OrderId,Version,OrderStatus,FraudHoldStatus,PayStatus,ShipStatus,BillLastName,ShipCity,TotalPrice,LineId,ItemId,Title,UnitPrice,Quantity</Field></Target><SellerId>{seller}</SellerId></Req>"
                    );
                    let response = http
                        .post(url.clone())
                        .bearer_auth(&token)
                        .header("X-sws-signature", sig)
                        .header("X-sws-signature-version", "1")
                        .header("Content-Type", "application/xml; charset=UTF-8")
                        .body(body)
                        .send()
                        .await;
                    let ok = match response {
                        Ok(r) => {
                            let authorized = r.headers().get("x-sws-authorize-status").is_some_and(|v| v == "authorized");
                            r.status().is_success() && authorized && r.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    if ok { done.fetch_add(1, Ordering::Relaxed) } else { failed.fetch_add(1, Ordering::Relaxed) };
                }
                anyhow::Ok(())
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let calls = done.load(Ordering::Relaxed);
        println!(
            "  {label}: {calls} calls in {elapsed:.2} s = {:.0} orderInfo calls/s ({} failed)",
            calls as f64 / elapsed,
            failed.load(Ordering::Relaxed)
        );
    }
    sim.stop().await;
    Ok(())
}

/// CPU time (user + system) this process has used so far, from /proc (Linux); zero elsewhere.
fn cpu_seconds() -> f64 {
    process_cpu_seconds("self")
}

/// CPU time (user + system) process `pid` ("self" for this one) has used so far, from /proc
/// (Linux); zero elsewhere or once it has ended.
pub(crate) fn process_cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks/s.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time (user + system, children included) of every `postgres` process on this machine,
/// from /proc (Linux): the database server's share of a measurement when it runs here, as it
/// does in CI. `None` when no such process is visible (another machine, another OS).
pub(crate) fn postgres_server_cpu_seconds() -> Option<f64> {
    let mut total = 0.0;
    let mut seen = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        if std::fs::read_to_string(path.join("comm")).map_or(true, |c| c.trim_end() != "postgres") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime, stime, cutime, cstime: fields 14 to 17 of the line, 12 to 15 after the name.
        total += (11..15).filter_map(|i| fields.get(i)?.parse::<f64>().ok()).sum::<f64>() / 100.0;
        seen = true;
    }
    seen.then_some(total)
}

/// CPU seconds of this process, plus the PostgreSQL server's when `postgres` is set and the
/// server runs on this machine.
fn cpu_seconds_with(postgres: bool) -> f64 {
    cpu_seconds() + if postgres { postgres_server_cpu_seconds().unwrap_or(0.0) } else { 0.0 }
}

/// A connected store on a fresh database against `sim`: account, store, sealed secret and
/// tokens, public key, as the connection flow would leave them.
pub(crate) async fn bench_store(
    db: &crate::db::Db,
    secrets: &crate::crypto::SecretBox,
    sim: &simulator::SimHandle,
    seller: &str,
) -> anyhow::Result<(crate::domain::AccountId, crate::domain::StoreId)> {
    bench_store_in(db, secrets, sim, seller, "bench-app", None).await
}

/// [`bench_store`] on the app `client_id`, in `account` (or a new account).
pub(crate) async fn bench_store_in(
    db: &crate::db::Db,
    secrets: &crate::crypto::SecretBox,
    sim: &simulator::SimHandle,
    seller: &str,
    client_id: &str,
    account: Option<crate::domain::AccountId>,
) -> anyhow::Result<(crate::domain::AccountId, crate::domain::StoreId)> {
    use crate::{
        db::accounts,
        domain::store::{Environment, StoreSettings},
    };
    sim.state.world().apps.insert(
        client_id.into(),
        simulator::App {
            client_id: client_id.into(),
            client_secret: "bench-secret".into(),
            redirect_uris: vec![],
            allowed_ips: vec![],
            approved_for_orders: true,
        },
    );
    let private = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048)).await??;
    let public_pem =
        rsa::pkcs8::EncodePublicKey::to_public_key_pem(&RsaPublicKey::from(&private), rsa::pkcs8::LineEnding::LF)?;
    let pem = rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&private, rsa::pkcs8::LineEnding::LF)?.to_string();
    let key =
        control::issue_key(&sim.state, seller, control::IssueKey { private_pem: Some(pem), ..Default::default() })
            .await
            .map_err(|_| anyhow::anyhow!("issuing the key failed"))?;
    let account = match account {
        Some(a) => a,
        None => {
            accounts::create_account_with_owner(
                db,
                "ベンチ商店",
                &format!("bench@{seller}.example"),
                "ベンチ",
                "x",
                None,
            )
            .await?
            .0
        }
    };
    let settings = StoreSettings {
        name: "ベンチ店".into(),
        seller_id: seller.into(),
        environment: Environment::Simulator,
        client_id: client_id.into(),
        auto_import_enabled: false,
        auto_import_interval_minutes: 1,
        auto_status_change_enabled: false,
        auto_status_change_target: None,
        restrict_fraud_hold_changes: true,
        stock_sync_enabled: false,
        auto_import_inbox: false,
    };
    let (refresh, access) = {
        let now = sim.state.now();
        let mut world = sim.state.world();
        let refresh = world.authorize(client_id, seller, now);
        let access = world.issue_access_token(&refresh, now);
        (refresh, access)
    };
    let tokens = BenchTokens { refresh: &refresh, access: &access, public_pem: &public_pem, key_version: key.version };
    let store = connected_store(db, secrets, account, &settings, tokens).await?;
    Ok((account, store))
}

/// What the simulator issued for a bench store: its tokens and its public key.
pub(crate) struct BenchTokens<'a> {
    pub refresh: &'a str,
    pub access: &'a str,
    pub public_pem: &'a str,
    pub key_version: u32,
}

/// A store as the connection flow leaves it: created with its sealed client secret, authorized
/// with the simulator's tokens, its public key saved.
pub(crate) async fn connected_store(
    db: &crate::db::Db,
    secrets: &crate::crypto::SecretBox,
    account: crate::domain::AccountId,
    settings: &crate::domain::store::StoreSettings,
    tokens: BenchTokens<'_>,
) -> anyhow::Result<crate::domain::StoreId> {
    use crate::{db::stores, yahoo::client};
    let secret = stores::NewSecret { secrets, plaintext: "bench-secret" };
    let store = stores::create(db, account, settings, Some(secret), None).await?;
    let now = crate::db::now();
    stores::save_authorization(
        db,
        account,
        store,
        secrets.seal(client::REFRESH_TOKEN, store.0, tokens.refresh),
        secrets.seal(client::ACCESS_TOKEN, store.0, tokens.access),
        now + chrono::Duration::hours(1),
        now,
        None,
    )
    .await?;
    stores::set_public_key(
        db,
        account,
        store,
        tokens.public_pem,
        i64::from(tokens.key_version),
        now.date_naive() + chrono::Duration::days(300),
        None,
    )
    .await?;
    Ok(store)
}

/// Waits up to `within` for a child that was asked to stop, then kills it.
pub(crate) fn stop_child(child: &mut std::process::Child, within: std::time::Duration) {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A fresh database for one measurement: a SQLite file in a temporary folder, or a new
/// PostgreSQL database next to `admin_url`'s.
pub(crate) async fn bench_db(
    postgres: Option<&str>,
    dir: &std::path::Path,
) -> anyhow::Result<(crate::db::Db, Option<String>)> {
    match postgres {
        None => {
            let db = crate::db::Db::connect(None, dir).await?;
            db.migrate().await?;
            Ok((db, None))
        }
        Some(admin) => {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("orderdesk_bench_{}_{n}", std::process::id());
            let pool = sqlx::PgPool::connect(admin).await?;
            sqlx::query(&format!("drop database if exists {name}")).execute(&pool).await?;
            sqlx::query(&format!("create database {name}")).execute(&pool).await?;
            pool.close().await;
            let mut url = url::Url::parse(admin)?;
            url.set_path(&name);
            let db = crate::db::Db::connect(Some(url.as_str()), dir).await?;
            db.migrate().await?;
            Ok((db, Some(name)))
        }
    }
}

pub(crate) async fn drop_bench_db(admin: Option<&str>, name: Option<String>) {
    if let (Some(admin), Some(name)) = (admin, name)
        && let Ok(pool) = sqlx::PgPool::connect(admin).await
    {
        let _ = sqlx::query(&format!("drop database if exists {name} with (force)")).execute(&pool).await;
        pool.close().await;
    }
}

/// `bench import`: the simulator runs in this process (so CPU seconds include it); the import
/// goes over loopback HTTP through the real client, signatures and all.
/// Rounds of each rate-limit-off measurement of `bench import`.
const ROUNDS: usize = 3;

pub async fn import(
    orders: usize,
    postgres: Option<String>,
    limited_orders: usize,
    rate: f64,
    rules: usize,
) -> anyhow::Result<()> {
    use crate::{
        config::Config,
        import::{ImportSettings, Importer},
        yahoo::{YahooClient, api, client::Body},
    };
    let dir = tempfile_dir()?;
    let secrets = crate::crypto::SecretBox::from_key(&rand::random::<[u8; 32]>());
    println!("import benchmark: simulator in this process, loopback HTTP, {orders} orders per backend");
    if postgres.is_some() && postgres_server_cpu_seconds().is_none() {
        println!("  (no postgres process on this machine: PostgreSQL CPU figures leave the server out)");
    }
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        // Each figure is the median of a few rounds (a fresh simulator and database each):
        // on a shared 2-core machine one round's import or bare loop varies by a quarter.
        let mut rounds = Vec::new();
        let mut ruled_rounds: Vec<f64> = Vec::new();
        for round in 1..=ROUNDS {
            let settings = simulator::Settings { rate_per_sec: 0.0, daily_quota: 0, ..Default::default() };
            let sim = Simulator::bind("127.0.0.1:0".parse()?, settings).await?.spawn();
            let seller = "bench-store";
            let sub = dir.join(format!("{label}-{round}"));
            std::fs::create_dir_all(&sub)?;
            let (db, pg_name) = bench_db(backend, &sub).await?;
            let (account, store) = bench_store(&db, &secrets, &sim, seller).await?;
            control::generate_into(
                &sim.state,
                seller,
                &Generate { count: orders, seed: 9, fraud_share: 0.05, spread_hours: 72 },
            );
            let mut config = Config::defaults();
            config.simulator_url = Some(sim.base_url.clone());
            config.yahoo_min_interval_ms = 0;
            config.yahoo_daily_quota = i64::MAX / 2;
            let yahoo = Arc::new(YahooClient::new(&config, db.clone(), secrets.clone())?);
            let importer = Arc::new(Importer::new(
                db.clone(),
                yahoo.clone(),
                ProcessId::new(),
                ImportSettings::from_config(&config),
            ));

            // The import and the bare loop each run as a task on the runtime's workers, as `serve`
            // runs imports (not on this thread, which would compete with the workers for the cores).
            let cpu = cpu_seconds_with(backend.is_some());
            let writing = crate::db::orders::write_time();
            let started = Instant::now();
            let ending = import_once(&importer, account, store).await?;
            let secs = started.elapsed().as_secs_f64();
            let cpu_used = cpu_seconds_with(backend.is_some()) - cpu;
            let writing = (crate::db::orders::write_time() - writing).as_secs_f64();
            let stored: Vec<_> = crate::db::orders::all_of_store(&db, account, store)
                .await?
                .into_iter()
                .map(|(row, items)| row.to_detail(items, seller))
                .collect();
            anyhow::ensure!(stored.len() == orders, "imported {} of {orders} ({ending:?})", stored.len());
            let import_rate = orders as f64 / secs;

            // The bare loop: the same orderInfo calls through the same client, read as the import
            // reads them, nothing stored.
            let ids: Vec<String> = sim.state.world().sellers[seller].orders.keys().cloned().collect();
            let concurrency = config.import_concurrency;
            let bare_cpu = cpu_seconds();
            let started = Instant::now();
            let bare: Vec<bool> = tokio::spawn({
                let yahoo = yahoo.clone();
                async move {
                    let calls: Vec<_> = ids
                        .iter()
                        .map(|id| {
                            let (yahoo, xml) = (yahoo.clone(), api::order_info_xml(seller, id));
                            async move { yahoo.call_order_info(account, store, Body::Xml(xml)).await.is_ok() }
                        })
                        .collect();
                    futures_util::stream::iter(calls).buffer_unordered(concurrency).collect().await
                }
            })
            .await?;
            let bare_ok = bare.iter().filter(|ok| **ok).count() as f64;
            let bare_rate = bare_ok / started.elapsed().as_secs_f64();
            let bare_cpu = (cpu_seconds() - bare_cpu) * 1000.0 / bare_ok.max(1.0);
            let alone =
                writer_alone(backend, &sub, &secrets, &sim, stored, ImportSettings::from_config(&config).max_batch)
                    .await?;
            // Both loops are bound by the two cores: a rate is the cores in use divided by the CPU
            // per order. An imported order costs at least a bare call plus its writing (each
            // costs more during the import than alone, never less), so at the bare loop's core
            // use import ÷ bare cannot exceed this, however little else the import does.
            let bound = bare_cpu / (bare_cpu + alone.cpu);
            println!(
                "  {label:<10} round {round}: import {import_rate:>6.0} orders/s ({secs:.2} s), {:.3} CPU s per 1,000 orders (simulator{server} included), \
                 writing {:.3} s per 1,000; batch writer alone {:.3} s, {:.3} CPU s per 1,000{alone_server}; \
                 bare orderInfo loop {bare_rate:.0} calls/s, {bare_cpu:.3} CPU s per 1,000 calls; import ÷ bare = {:.2} (bound {bound:.2})",
                cpu_used * 1000.0 / orders as f64,
                writing * 1000.0 / orders as f64,
                alone.secs,
                alone.cpu,
                import_rate / bare_rate,
                server = if backend.is_some() { " and PostgreSQL server" } else { "" },
                alone_server = if backend.is_some() { " (server included)" } else { "" },
            );
            rounds.push((import_rate, bare_rate, cpu_used * 1000.0 / orders as f64, alone.cpu, bound));
            // The same orders at a second seller, imported into an account with `rules` rules
            // (issue 30): the CPU per order beside the run without rules.
            if rules > 0 {
                let ruled_seller = "bench-ruled";
                let (ruled_account, ruled_store) = bench_store(&db, &secrets, &sim, ruled_seller).await?;
                control::generate_into(
                    &sim.state,
                    ruled_seller,
                    &Generate { count: orders, seed: 9, fraud_share: 0.05, spread_hours: 72 },
                );
                seed_rules(&db, ruled_account, rules).await?;
                let cpu = cpu_seconds_with(backend.is_some());
                let started = Instant::now();
                import_once(&importer, ruled_account, ruled_store).await?;
                let ruled_secs = started.elapsed().as_secs_f64();
                let ruled_cpu = (cpu_seconds_with(backend.is_some()) - cpu) * 1000.0 / orders as f64;
                let (tagged,): (i64,) = crate::with_pool!(&db, |p| {
                    sqlx::query_as("select count(distinct order_pk) from order_tag where account_id = $1")
                        .bind(ruled_account)
                        .fetch_one(p)
                        .await
                })?;
                let plain_cpu = cpu_used * 1000.0 / orders as f64;
                println!(
                    "  {label:<10} round {round}: with {rules} rules {:.0} orders/s, {ruled_cpu:.3} CPU s per 1,000 orders \
                     ({:+.1} % against {plain_cpu:.3} without rules); {tagged} orders tagged by a rule",
                    orders as f64 / ruled_secs,
                    (ruled_cpu / plain_cpu - 1.0) * 100.0,
                );
                ruled_rounds.push(ruled_cpu / plain_cpu);
            }
            sim.stop().await;
            db.close().await;
            drop_bench_db(backend, pg_name).await;
        }
        let median = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| {
            let mut v: Vec<f64> = rounds.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (import_rate, bare_rate) = (median(|r| r.0), median(|r| r.1));
        println!(
            "  {label:<10} rate limit off, median of {ROUNDS}: {import_rate:.0} orders/s, {:.3} CPU s per 1,000 orders; \
             batch writer alone {:.3} CPU s per 1,000; bare orderInfo loop {bare_rate:.0} calls/s; import ÷ bare = {:.2} \
             (median of the rounds' ratios {:.2}; bound bare ÷ (bare + writer alone) {:.2})",
            median(|r| r.2),
            median(|r| r.3),
            import_rate / bare_rate,
            {
                let mut v: Vec<f64> = rounds.iter().map(|r| r.0 / r.1).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            },
            median(|r| r.4),
        );
        if !ruled_rounds.is_empty() {
            ruled_rounds.sort_by(f64::total_cmp);
            println!(
                "  {label:<10} with {rules} rules on the account, median of {ROUNDS}: import CPU per order {:+.1} % against none",
                (ruled_rounds[ruled_rounds.len() / 2] - 1.0) * 100.0
            );
        }
    }

    // Rate limit on: the simulator enforces `rate` calls/s per app and API URL; the client paces
    // to it. While a backlog exists every allowed orderInfo slot should be used, none refused.
    let settings = simulator::Settings { rate_per_sec: rate, daily_quota: 0, ..Default::default() };
    let sim = Simulator::bind("127.0.0.1:0".parse()?, settings).await?.spawn();
    let seller = "bench-limited";
    let sub = dir.join("limited");
    std::fs::create_dir_all(&sub)?;
    let (db, _) = bench_db(None, &sub).await?;
    let (account, store) = bench_store(&db, &secrets, &sim, seller).await?;
    control::generate_into(
        &sim.state,
        seller,
        &Generate { count: limited_orders, seed: 10, fraud_share: 0.05, spread_hours: 72 },
    );
    let mut config = Config::defaults();
    config.simulator_url = Some(sim.base_url.clone());
    config.yahoo_min_interval_ms = (1000.0 / rate).ceil() as u64;
    let yahoo = Arc::new(YahooClient::new(&config, db.clone(), secrets.clone())?);
    let importer = Arc::new(Importer::new(db.clone(), yahoo, ProcessId::new(), ImportSettings::from_config(&config)));
    let started = Instant::now();
    let ending = import_once(&importer, account, store).await?;
    let secs = started.elapsed().as_secs_f64();
    let counters = sim.state.world().counters.clone();
    let info_calls = counters.get("calls.orderInfo").copied().unwrap_or(0) as f64;
    let throttled: u64 = counters.iter().filter(|(k, _)| k.starts_with("throttled.")).map(|(_, v)| v).sum();
    println!(
        "  SQLite     rate limit on ({rate}/s per API URL): {limited_orders} orders in {secs:.1} s ({ending:?}); \
         orderInfo used {:.1} % of the allowed calls while the backlog lasted; {throttled} throttled answers",
        100.0 * info_calls / (secs * rate)
    );
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One manual import of the store from its cursor, run as a task on the runtime's workers (as
/// `serve` runs imports), holding the store's lease as the scheduler would.
pub(crate) async fn import_once(
    importer: &Arc<crate::import::Importer>,
    account: crate::domain::AccountId,
    store: crate::domain::StoreId,
) -> anyhow::Result<crate::import::Ending> {
    use crate::{
        db::imports::{self, Trigger},
        import::Job,
    };
    anyhow::ensure!(importer.acquire(account, store).await?, "lease");
    let run = imports::create_run(
        importer.db(),
        account,
        store,
        Trigger::Manual,
        "running",
        (None, None),
        importer.owner(),
        crate::db::now(),
    )
    .await?;
    let job = Job { account, store, trigger: Trigger::Manual, run, window: None, only: None };
    let importer = importer.clone();
    Ok(tokio::spawn(async move { importer.execute(&job).await }).await?)
}

pub(crate) fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("orderdesk-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Seconds and CPU seconds (the PostgreSQL server's included) per 1,000 orders.
struct PerThousand {
    secs: f64,
    cpu: f64,
}

/// The batch writer alone: the orders one round imported, written again into a fresh database
/// in batches of the import's largest size, one after the other, with nothing else running (the
/// import's own writing time shares the two cores with the fetching).
async fn writer_alone(
    backend: Option<&str>,
    dir: &std::path::Path,
    secrets: &crate::crypto::SecretBox,
    sim: &crate::simulator::SimHandle,
    details: Vec<crate::yahoo::api::OrderDetail>,
    batch: usize,
) -> anyhow::Result<PerThousand> {
    use crate::db::orders::{self, Batch, HistoryActor, HistoryLine, OrderWrite};
    let sub = dir.join("alone");
    std::fs::create_dir_all(&sub)?;
    let (db, name) = bench_db(backend, &sub).await?;
    let seller = "bench-alone";
    control::generate_into(&sim.state, seller, &Generate { count: 1, seed: 9, fraud_share: 0.0, spread_hours: 1 });
    let (account, store) = bench_store(&db, secrets, sim, seller).await?;
    let n = details.len();
    let batches: Vec<Batch> = details
        .chunks(batch.max(1))
        .map(|chunk| Batch {
            writes: chunk
                .iter()
                .map(|d| OrderWrite {
                    detail: d.clone(),
                    new_status: crate::domain::store::InternalStatus::New,
                    flag_cancel: false,
                    history: vec![HistoryLine { kind: "new", message: "新規注文を取り込みました".into() }],
                    moves_on: None,
                    notify: None,
                })
                .collect(),
            unchanged: Vec::new(),
            cursor_to: None,
            retry: None,
            lease_owner: None,
            notify_base: None,
            actor: HistoryActor::Job,
            now: crate::db::now(),
        })
        .collect();
    let cpu = cpu_seconds_with(backend.is_some());
    let started = Instant::now();
    let written = tokio::spawn({
        let db = db.clone();
        async move {
            for b in batches {
                orders::write_batch(&db, account, store, b).await?;
            }
            anyhow::Ok(())
        }
    })
    .await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds_with(backend.is_some()) - cpu;
    db.close().await;
    drop_bench_db(backend, name).await;
    written?;
    let per_thousand = 1000.0 / n.max(1) as f64;
    Ok(PerThousand { secs: secs * per_thousand, cpu: cpu * per_thousand })
}

/// `n` rules on the account, as a merchant's list might hold them: prefectures, pay methods,
/// amounts, item codes, comments, repeat buyers, each adding one of five tags; the prefecture
/// rules match often (each its own prefecture, one 沖縄・北海道), the rest rarely or never.
async fn seed_rules(db: &crate::db::Db, account: crate::domain::AccountId, n: usize) -> anyhow::Result<()> {
    use crate::domain::rules::{Action, CommentIs, Condition, PREFECTURES, RuleSpec};
    let now = crate::db::now();
    let mut tags = Vec::new();
    for i in 0..5 {
        let id = crate::db::tags::create(db, account, &format!("ルール{i}"), "blue", i == 0, now)
            .await?
            .map_err(|e| anyhow::anyhow!(e))?;
        tags.push(id);
    }
    for i in 0..n {
        let conditions = match i % 10 {
            // One rule for 沖縄・北海道, the others each for a prefecture of its own (a merchant
            // does not write the same condition ten times).
            0 if i == 0 => vec![Condition::Prefecture(vec!["沖縄県".into(), "北海道".into()])],
            0 => vec![Condition::Prefecture(vec![PREFECTURES[(i * 7) % 47].into()])],
            1 => vec![Condition::Prefecture(vec![PREFECTURES[i % 47].into()]), Condition::Gift(true)],
            2 => vec![Condition::PayMethod(vec![format!("payment_z{i}")])],
            3 => vec![Condition::Total { min: Some(50_000 + i as i64), max: None }],
            4 => vec![Condition::ItemCode(vec![format!("no-such-item-{i}")])],
            5 => vec![Condition::Comment(CommentIs::Contains(vec![format!("至急{i}")]))],
            6 => vec![Condition::ItemOption(vec![format!("のし{i}")]), Condition::Lines { min: Some(2), max: None }],
            7 => vec![Condition::RepeatBuyer(true), Condition::Total { min: Some(30_000), max: None }],
            8 => vec![Condition::ShipMethod(vec![format!("postage{}", 10 + i)])],
            _ => vec![Condition::FraudHold(vec![3]), Condition::DeliveryRequested(true)],
        };
        let spec = RuleSpec { conditions, actions: vec![Action::AddTag(tags[i % tags.len()])], match_all: false };
        let input = crate::db::rules::RuleInput {
            name: format!("ルール{i:03}"),
            enabled: true,
            stores: vec![],
            spec,
            stop_after: false,
        };
        crate::db::rules::save(db, account, None, &input, now).await?;
    }
    Ok(())
}

/// One backend's store with generated orders imported, as the shipping and documents
/// benchmarks start: a simulator in this process, a fresh database (`backend`: PostgreSQL's
/// admin URL, or `None` for SQLite under `dir`), a connected store, `generate` orders made
/// there and imported once. [`ImportedShop::finish`] drops it all.
pub(crate) struct ImportedShop {
    pub label: &'static str,
    pub db: crate::db::Db,
    pub account: crate::domain::AccountId,
    pub store: crate::domain::StoreId,
    /// How long the import took (from [`ImportedShop::import`]).
    pub import_secs: f64,
    importer: std::sync::Arc<crate::import::Importer>,
    sim: simulator::SimHandle,
    backend: Option<String>,
    pg_name: Option<String>,
}

impl ImportedShop {
    pub(crate) async fn start(
        backend: Option<&str>,
        dir: &std::path::Path,
        secrets: &crate::crypto::SecretBox,
        seller: &str,
        generate: &simulator::generate::Generate,
    ) -> anyhow::Result<ImportedShop> {
        let mut shop = ImportedShop::prepare(backend, dir, secrets, seller, generate).await?;
        shop.import().await?;
        Ok(shop)
    }

    /// Everything but the import: the orders wait at the simulator.
    pub(crate) async fn prepare(
        backend: Option<&str>,
        dir: &std::path::Path,
        secrets: &crate::crypto::SecretBox,
        seller: &str,
        generate: &simulator::generate::Generate,
    ) -> anyhow::Result<ImportedShop> {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        let settings = simulator::Settings { rate_per_sec: 0.0, daily_quota: 0, ..Default::default() };
        let sim = simulator::Simulator::bind("127.0.0.1:0".parse()?, settings).await?.spawn();
        let sub = dir.join(label);
        std::fs::create_dir_all(&sub)?;
        let (db, pg_name) = bench_db(backend, &sub).await?;
        let (account, store) = bench_store(&db, secrets, &sim, seller).await?;
        simulator::control::generate_into(&sim.state, seller, generate);
        let mut config = crate::config::Config::defaults();
        config.simulator_url = Some(sim.base_url.clone());
        config.yahoo_min_interval_ms = 0;
        config.yahoo_daily_quota = i64::MAX / 2;
        let yahoo = std::sync::Arc::new(crate::yahoo::YahooClient::new(&config, db.clone(), secrets.clone())?);
        let importer = std::sync::Arc::new(crate::import::Importer::new(
            db.clone(),
            yahoo,
            crate::jobs::ProcessId::new(),
            crate::import::ImportSettings::from_config(&config),
        ));
        Ok(ImportedShop {
            label,
            db,
            account,
            store,
            import_secs: 0.0,
            importer,
            sim,
            backend: backend.map(str::to_owned),
            pg_name,
        })
    }

    /// Imports what waits at the simulator, timed.
    pub(crate) async fn import(&mut self) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let ending = import_once(&self.importer, self.account, self.store).await?;
        anyhow::ensure!(ending == crate::import::Ending::Done, "the import ended {ending:?}");
        self.import_secs = started.elapsed().as_secs_f64();
        Ok(())
    }

    pub(crate) async fn finish(self) {
        self.db.close().await;
        drop_bench_db(self.backend.as_deref(), self.pg_name).await;
        self.sim.stop().await;
    }
}
