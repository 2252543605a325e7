//! `orderdesk bench shipping`: the shipping day at scale (issue 33). One store with N orders
//! (imported from the simulator, the generator's realistic mix); a B2 label file for all of
//! them through `shipping::export_labels` (the gate, shipments, every value checked, the file
//! written and recorded), then the carrier's issued-data file of N rows previewed
//! (`shipping::preview_tracking`) and applied (`shipping::apply_tracking`: numbers, 出荷済み and
//! the pushes queued). Prints rows per second of each and this process's RSS growth, per backend.

use std::time::Instant;

use super::bench::{ImportedShop, tempfile_dir};
use crate::{
    carrier::LabelFormat,
    db::{orders::HistoryActor, shipping as store},
    domain::{jst, scope::OrderScope},
    shipping::{self, LabelOutcome, LabelRequest, TrackingPreview},
    simulator::generate::Generate,
};

/// This process's resident set, in MB (VmRSS of /proc/self/status).
fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

pub async fn shipping(orders: usize, postgres: Option<String>) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let secrets = crate::crypto::SecretBox::from_key(&rand::random::<[u8; 32]>());
    println!("shipping benchmark: {orders} orders, one store, simulator in this process");
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let shop = ImportedShop::start(
            backend,
            &dir,
            &secrets,
            "bench-shipping",
            &Generate { count: orders, seed: 33, fraud_share: 0.02, spread_hours: 48 },
        )
        .await?;
        let (label, db, account, store_id) = (shop.label, shop.db.clone(), shop.account, shop.store);
        let s = store::Settings {
            sender_name: "ベンチ商店".into(),
            sender_phone: "03-1234-5678".into(),
            sender_zip: "100-0001".into(),
            sender_address: "東京都千代田区千代田1-1".into(),
            b2_customer_code: "012345678901".into(),
            ..store::Settings::default()
        };
        store::save_settings(&db, account, store_id, &s, &crate::domain::shipping::default_mapping(), crate::db::now())
            .await?;
        let scope = OrderScope::account(account);
        let pks: Vec<_> =
            crate::db::orders::all_of_store(&db, account, store_id).await?.into_iter().map(|(o, _)| o.id).collect();
        let now = crate::db::now();
        let today = jst::today(now);
        let req = LabelRequest {
            orders: pks.clone(),
            format: LabelFormat::B2,
            ship_date: today,
            reexport: false,
            unpaid_confirmed: true,
        };

        // Label export. Orders whose values a carrier refuses (the generator's 𠮷, a long
        // address) are refused as a merchant would see; the export is then made of the rest.
        let rss_before = rss_mb();
        let started = Instant::now();
        let mut outcome = shipping::export_labels(&db, &scope, &req, "bench", today, now).await?;
        let mut checked_secs = 0.0;
        if let Ok(LabelOutcome::Refused { problems, fine, .. }) = &outcome {
            checked_secs = started.elapsed().as_secs_f64();
            println!(
                "  {label:<10} label check: {} problems refused the file ({:.0} rows/s checked); exporting the {} orders without one",
                problems.len(),
                pks.len() as f64 / checked_secs,
                fine.len()
            );
            let req = LabelRequest { orders: fine.clone(), ..req.clone() };
            let again = Instant::now();
            outcome = shipping::export_labels(&db, &scope, &req, "bench", today, now).await?;
            checked_secs = again.elapsed().as_secs_f64();
        }
        let secs = if checked_secs > 0.0 { checked_secs } else { started.elapsed().as_secs_f64() };
        let rss_export = rss_mb() - rss_before;
        let Ok(LabelOutcome::Written { export_id, rows, excluded, .. }) = outcome else {
            anyhow::bail!("the label export did not write a file: {outcome:?}");
        };
        println!(
            "  {label:<10} label export: {rows} rows in {secs:.2} s = {:.0} rows/s ({} orders excluded by the gate), RSS +{rss_export:.0} MB",
            rows as f64 / secs,
            excluded.len()
        );

        // The issued-data file: every exported shipment with a number.
        let (_, _, file) = store::export_file(&db, &scope, export_id).await?.expect("the export");
        let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&file);
        let mut issued = String::from("お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n");
        for (i, line) in text.split("\r\n").skip(1).filter(|l| !l.is_empty()).enumerate() {
            let management_no = line.split(',').next().unwrap_or("").trim_matches('"');
            let base = 4_000_000_000 + i as u64;
            issued.push_str(&format!("{management_no},0,0,{base:011}{},{}\r\n", base % 7, today.format("%Y/%m/%d")));
        }
        let bytes = encoding_rs::SHIFT_JIS.encode(&issued).0.into_owned();
        let rss_before = rss_mb();
        let started = Instant::now();
        let preview = shipping::preview_tracking(&db, &scope, "issued.csv", &bytes, "bench", now).await?;
        let preview_secs = started.elapsed().as_secs_f64();
        let TrackingPreview::Saved(upload_id) = preview else {
            anyhow::bail!("the preview was not saved: {preview:?}")
        };
        let started = Instant::now();
        let applied = shipping::apply_tracking(&db, &scope, upload_id, today, true, &HistoryActor::Job, now)
            .await?
            .expect("the upload");
        let apply_secs = started.elapsed().as_secs_f64();
        let rss_tracking = rss_mb() - rss_before;
        let pushes: i64 = crate::with_pool!(&db, |p| {
            sqlx::query_scalar("select count(*) from order_push where store_id = $1 and kind = 'ship'")
                .bind(store_id)
                .fetch_one(p)
                .await
        })?;
        println!(
            "  {label:<10} tracking preview: {rows} rows in {preview_secs:.2} s = {:.0} rows/s; apply: {} set, {} refused in {apply_secs:.2} s = {:.0} rows/s, {pushes} ship pushes queued; RSS +{rss_tracking:.0} MB",
            rows as f64 / preview_secs,
            applied.set,
            applied.refused,
            applied.set as f64 / apply_secs
        );
        shop.finish().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
