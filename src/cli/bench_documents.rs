//! `orderdesk bench documents`: 納品書 and picking lists at scale (issue 28). One store with N
//! orders imported from the simulator (the generator's mix: gifts, coupons, points, 8 % food);
//! a print batch of all of them (`documents::create_batch`: the gate and the money check), then
//! its 納品書 PDF and its picking list (`documents::render`, as the page serves them), per
//! backend. Then a picking list of `lines` distinct lines (made in memory: no store has that
//! many codes in a day). Prints pages per second and this process's peak RSS during each
//! (VmHWM, reset before each where the kernel allows it).

use std::{collections::HashMap, time::Instant};

use super::bench::{ImportedShop, tempfile_dir};
use crate::{
    db::{
        documents::{self as store, DocumentKind},
        orders::HistoryActor,
    },
    documents::{
        self, MAX_ORDERS,
        picking::{PickItem, PickOrder},
    },
    domain::scope::OrderScope,
    simulator::generate::Generate,
};

/// (VmRSS, VmHWM) of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak (VmHWM) to the current RSS; false where the kernel does not allow it.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn report(label: &str, what: &str, pages: usize, secs: f64, bytes: usize, peak_reset: bool) {
    let (rss, peak) = memory_mb();
    println!(
        "  {label:<10} {what}: {pages} pages in {secs:.2} s = {:.0} pages/s, {:.1} MB PDF; peak RSS {peak:.0} MB{} (now {rss:.0} MB)",
        pages as f64 / secs,
        bytes as f64 / 1_048_576.0,
        if peak_reset { "" } else { " (since start: the kernel did not reset the peak)" }
    );
}

pub async fn documents(orders: usize, lines: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let orders = orders.min(MAX_ORDERS);
    let dir = tempfile_dir()?;
    let secrets = crate::crypto::SecretBox::from_key(&rand::random::<[u8; 32]>());
    println!("documents benchmark: {orders} orders in one print batch, then a picking list of {lines} lines");
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let shop = ImportedShop::start(
            backend,
            &dir,
            &secrets,
            "bench-documents",
            &Generate { count: orders, seed: 28, fraud_share: 0.02, spread_hours: 48 },
        )
        .await?;
        let (label, db, account, store_id) = (shop.label, shop.db.clone(), shop.account, shop.store);
        let settings = store::DocumentSettings {
            seller_name: "ベンチ商店株式会社".into(),
            address: "東京都千代田区千代田1-1".into(),
            phone: "03-1234-5678".into(),
            registration_number: "T7000012050002".into(),
            ..store::DocumentSettings::default()
        };
        store::save_settings(&db, account, store_id, &settings, crate::db::now()).await?;
        let scope = OrderScope::account(account);
        let pks: Vec<_> =
            crate::db::orders::all_of_store(&db, account, store_id).await?.into_iter().map(|(o, _)| o.id).collect();
        for kind in [DocumentKind::Slip, DocumentKind::Picking] {
            let now = crate::db::now();
            let started = Instant::now();
            let id = documents::create_batch(&db, &scope, kind, &pks, true, &HistoryActor::Job, now)
                .await?
                .map_err(|m| anyhow::anyhow!(m))?;
            let batch_secs = started.elapsed().as_secs_f64();
            let batch = store::batch(&db, account, id).await?.expect("the batch");
            let peak_reset = reset_peak();
            let started = Instant::now();
            let rendered = documents::render(&db, &scope, &batch, now).await?.map_err(|m| anyhow::anyhow!(m))?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "  {label:<10} {} batch: {} orders printed, {} left out by the gate, made in {batch_secs:.2} s",
                kind.label(),
                batch.orders.len(),
                batch.excluded.len()
            );
            report(label, &format!("{} PDF", kind.label()), rendered.pages, secs, rendered.pdf.len(), peak_reset);
        }
        shop.finish().await;
    }
    let _ = std::fs::remove_dir_all(&dir);

    // The large picking list: `lines` distinct codes over orders of ten lines each.
    let per_order = 10;
    let orders: Vec<PickOrder> = (0..lines.div_ceil(per_order))
        .map(|o| PickOrder {
            order_id: format!("bench-{:08}", 10_000_000 + o),
            store_name: "ベンチ店".into(),
            ship_method: "宅配便".into(),
            lines: (0..per_order)
                .filter(|l| o * per_order + l < lines)
                .map(|l| PickItem {
                    item_id: format!("item-{:06}", o * per_order + l),
                    sub_code: format!("item-{:06}-m", o * per_order + l),
                    title: format!("オーガニックコットン 今治タオル バスタオル {}", o * per_order + l),
                    options: vec![("カラー".into(), "ホワイト".into()), ("サイズ".into(), "M".into())],
                    quantity: 1 + (l as i64 % 3),
                })
                .collect(),
            parcels: 1,
        })
        .collect();
    let locations: HashMap<String, String> = (0..lines)
        .map(|i| (format!("item-{i:06}"), format!("{}-{:02}", (b'A' + (i % 26) as u8) as char, i % 40)))
        .collect();
    let peak_reset = reset_peak();
    let started = Instant::now();
    let (pdf, pages) =
        documents::write_picking("印刷バッチ #0 ・ ベンチ", &orders, &locations, "ピッキングリスト", crate::db::now())
            .map_err(|m| anyhow::anyhow!(m))?;
    let secs = started.elapsed().as_secs_f64();
    report("in memory", &format!("picking list of {lines} lines"), pages, secs, pdf.len(), peak_reset);
    Ok(())
}
