//! `orderdesk bench …`: benchmarks that print figures. Run them on a release build:
//! `cargo run --release -- bench simulator`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rsa::{RsaPrivateKey, RsaPublicKey};

use crate::{
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
