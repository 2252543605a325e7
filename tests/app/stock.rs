//! 在庫連動 (product.md §8) against the simulator over real HTTP, on both backends: imported
//! orders decrement stock exactly once and cancellations give it back once, the new values
//! reach every store with 在庫連動 on (and no other), a job killed anywhere never counts twice,
//! a hundred edits of one code become one value, emergency stop halts pushes, and a CSV applies
//! nothing until the merchant confirms.

use std::{collections::BTreeMap, time::Duration};

use orderdesk::{
    db::{imports::Trigger, stock},
    domain::StoreId,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, Page},
    import::{SELLER, Shop, connect_store, shop},
    on_both_backends,
};

const INITIAL: i64 = 500;

async fn set_sync(s: &Shop, store: StoreId, on: bool) {
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update store set stock_sync_enabled = $2 where id = $1")
            .bind(store)
            .bind(on)
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
}

async fn sim_stock(s: &Shop, seller: &str) -> BTreeMap<String, i64> {
    serde_json::from_value(s.sim.get_json(&format!("/_sim/sellers/{seller}/stock")).await).unwrap()
}

async fn set_calls(s: &Shop) -> u64 {
    s.sim.get_json("/_sim/counters").await["calls.setStock"].as_u64().unwrap_or(0)
}

/// Item codes and quantities of the shop's imported orders: (ordered, cancelled) per code.
async fn ordered(s: &Shop) -> BTreeMap<String, (i64, i64)> {
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (o, items) in s.ours().await {
        let cancelled = o.internal_status() == orderdesk::domain::store::InternalStatus::Cancelled;
        for i in items {
            let code = if i.sub_code.is_empty() { i.item_id.clone() } else { format!("{}:{}", i.item_id, i.sub_code) };
            let e = out.entry(code).or_default();
            e.0 += i.quantity;
            if cancelled {
                e.1 += i.quantity;
            }
        }
    }
    out
}

/// Runs the stock job until nothing is left to take or push (at most ~10 s).
async fn settle(s: &Shop) {
    for _ in 0..200 {
        let t = s.app.stock.tick().await.unwrap();
        let pending = stock::pending_events(&s.app.db, 1).await.unwrap().len();
        let waiting: i64 = orderdesk::with_pool!(&s.app.db, |p| {
            sqlx::query_scalar::<_, i64>("select count(*) from stock_push").fetch_one(p).await
        })
        .unwrap();
        if t == Default::default() && pending == 0 && waiting == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the stock job did not settle");
}

/// A shop whose scheduler is off (tests drive the stock job), with a second synced store and a
/// third store with 在庫連動 off, and the account's stock set to INITIAL for every code the
/// simulator's orders will use.
async fn stock_shop(backend: Backend, orders: usize) -> (Shop, StoreId, StoreId) {
    stock_shop_with_codes(backend, orders).await.0
}

/// [`stock_shop`], and the codes the account keeps stock for (orders with other codes take no
/// stock).
async fn stock_shop_with_codes(backend: Backend, orders: usize) -> ((Shop, StoreId, StoreId), Vec<String>) {
    let s = shop(backend, |c| {
        c.scheduler = false;
        c.yahoo_backoff_ms = 1;
    })
    .await;
    let second = connect_store(&s.app, &s.sim, &s.owner, "二号店", "shop-b").await;
    let off = connect_store(&s.app, &s.sim, &s.owner, "三号店", "shop-c").await;
    // The first store through its settings form, as a merchant would; the second directly.
    crate::import::save_settings(&s, &[("stock_sync_enabled", "on")]).await;
    let page = s.owner.get(&format!("/stores/{}", s.store)).await;
    assert!(page.select_text("#stock-sync").join("").starts_with("オン"), "{}", page.body);
    set_sync(&s, second, true).await;
    s.generate(orders, 11).await;
    // Every code the generator uses, at INITIAL in our stock (through the CSV, as a merchant would).
    let snapshot: serde_json::Value = s.sim.get_json(&format!("/_sim/sellers/{SELLER}/orders")).await;
    let mut codes: Vec<String> = snapshot
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["items"].as_array().cloned().unwrap_or_default())
        .map(|i| {
            let (item, sub) =
                (i["item_id"].as_str().unwrap().to_owned(), i["sub_code"].as_str().unwrap_or("").to_owned());
            if sub.is_empty() { item } else { format!("{item}:{sub}") }
        })
        .collect();
    codes.sort();
    codes.dedup();
    let lines: Vec<(String, i64)> = codes.iter().map(|c| (c.clone(), INITIAL)).collect();
    let account = s.account;
    stock::set_many(&s.app.db, account, &lines, stock::Cause::Csv, None, "test", orderdesk::db::now()).await.unwrap();
    for seller in ["shop-c"] {
        for c in &codes {
            s.sim.control(&format!("/_sim/sellers/{seller}/stock"), json!({ "item_code": c, "quantity": 7 })).await;
        }
    }
    settle(&s).await;
    ((s, second, off), codes)
}

async fn assert_stores_hold_initial_minus_ordered_plus_cancelled(s: &Shop) {
    let kept: Vec<String> = stock::all(&s.app.db, s.account).await.unwrap().into_iter().map(|(c, _)| c).collect();
    let expected: BTreeMap<String, i64> = ordered(s)
        .await
        .into_iter()
        .filter(|(code, _)| kept.contains(code))
        .map(|(code, (o, c))| (code, INITIAL - o + c))
        .collect();
    assert!(!expected.is_empty());
    for seller in [SELLER, "shop-b"] {
        let theirs = sim_stock(s, seller).await;
        for (code, q) in &expected {
            assert_eq!(theirs.get(code), Some(q), "{seller} {code}");
        }
    }
    for (code, q) in &expected {
        assert_eq!(stock::quantity(&s.app.db, s.account, code).await.unwrap(), Some(*q), "ours {code}");
    }
    // The store with 在庫連動 off got nothing.
    assert!(sim_stock(s, "shop-c").await.values().all(|q| *q == 7));
}

async fn orders_take_stock_once_and_every_synced_store_gets_it(backend: Backend) {
    let (s, _, _) = stock_shop(backend, 60).await;
    assert_eq!(
        sim_stock(&s, SELLER).await.values().copied().collect::<std::collections::BTreeSet<_>>(),
        [INITIAL].into()
    );
    s.run_once(Trigger::Manual).await;
    settle(&s).await;
    assert_stores_hold_initial_minus_ordered_plus_cancelled(&s).await;

    // Cancel three orders (the bulk form): their items come back, once.
    let ids: Vec<String> = s
        .ours()
        .await
        .iter()
        .filter(|(o, _)| !o.fraud_hold().is_held())
        .take(3)
        .map(|(o, _)| o.id.to_string())
        .collect();
    let page = s.owner.get("/orders").await;
    let token = page.csrf_token().unwrap();
    let mut form = vec![("csrf_token", token.as_str()), ("target", "cancelled"), ("cancel_reason", "210")];
    form.extend(ids.iter().map(|i| ("order", i.as_str())));
    let r = s.owner.post_raw("/orders/bulk", &form, &[]).await;
    assert_eq!(r.select_text("#bulk-results tr.result-done").len(), 3, "{}", r.body);
    settle(&s).await;
    assert_stores_hold_initial_minus_ordered_plus_cancelled(&s).await;

    // Importing again (and a re-import of every order) changes nothing.
    let before = set_calls(&s).await;
    s.run_once(Trigger::Manual).await;
    settle(&s).await;
    assert_stores_hold_initial_minus_ordered_plus_cancelled(&s).await;
    assert_eq!(set_calls(&s).await, before, "nothing new to push");

    // The stock page shows the codes, the causes and the stores.
    let page = s.owner.get("/stock").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("キャンセル") && page.body.contains("注文"), "{}", page.body);
}

async fn a_killed_stock_job_never_counts_twice(backend: Backend) {
    let ((s, _, _), _) = stock_shop_with_codes(backend, 40).await;
    s.run_once(Trigger::Manual).await;
    let mut rng = 0x9e37_79b9_u64;
    let mut mid = 0;
    let mut kill = 0;
    // At least 14 kills, and more (up to 60) until three of them landed while events were
    // being taken: on a fast or a loaded machine a kill may land before or after them all.
    while kill < 14 || (mid < 3 && kill < 60) {
        kill += 1;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        // New orders (and a re-import of the old ones) before each crash.
        s.generate(15, 100 + kill).await;
        s.run_once(Trigger::Manual).await;
        let before = stock::pending_events(&s.app.db, 1000).await.unwrap().len();
        // The job is driven here, one step (a database round trip) per poll, and dropped after a
        // random number of steps wherever it then is: inside an event's transaction, between
        // two, or pushing. Dropping the future is what killing its task does; counting steps
        // rather than time makes where it lands independent of the machine's speed and load.
        let job = s.app.stock.clone();
        let mut run = Box::pin(async move { job.tick().await });
        let woken = std::sync::Arc::new(Woken(tokio::sync::Notify::new()));
        let waker = futures_util::task::waker(woken.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let target = (rng as usize) % (before * 6 + 1);
        for _ in 0..target {
            if run.as_mut().poll(&mut cx).is_ready() {
                break;
            }
            // The next step once the job can make one (its database answered).
            if tokio::time::timeout(Duration::from_secs(10), woken.0.notified()).await.is_err() {
                break;
            }
        }
        drop(run);
        let after = stock::pending_events(&s.app.db, 1000).await.unwrap().len();
        if after > 0 && after < before {
            mid += 1;
        }
        // A killed job's store lease runs out; the next pass takes it over.
        orderdesk::with_pool!(&s.app.db, |p| {
            sqlx::query("update stock_lease set lease_until = $1")
                .bind(chrono::Utc::now() - chrono::Duration::seconds(1))
                .execute(p)
                .await
                .map(|_| ())
        })
        .unwrap();
    }
    assert!(mid >= 3, "kills landed while events were being taken ({mid} of {kill})");
    settle(&s).await;
    assert_stores_hold_initial_minus_ordered_plus_cancelled(&s).await;
}

/// Wakes the stock test's hand-driven job.
struct Woken(tokio::sync::Notify);

impl futures_util::task::ArcWake for Woken {
    fn wake_by_ref(this: &std::sync::Arc<Self>) {
        this.0.notify_one();
    }
}

async fn a_hundred_edits_become_one_value(backend: Backend) {
    let (s, _, _) = stock_shop(backend, 5).await;
    let before = set_calls(&s).await;
    for q in 1..=100 {
        let page = s.owner.get("/stock").await;
        let token = page.csrf_token().unwrap();
        let r = s
            .owner
            .post_raw(
                "/stock/set",
                &[("csrf_token", &token), ("item_code", "ＢＯＸ－１"), ("quantity", &q.to_string())],
                &[],
            )
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
    }
    settle(&s).await;
    // One call per synced store, carrying the last value (full-width input read as box-1).
    assert_eq!(set_calls(&s).await - before, 2);
    assert_eq!(sim_stock(&s, SELLER).await.get("BOX-1"), Some(&100));
    assert_eq!(sim_stock(&s, "shop-b").await.get("BOX-1"), Some(&100));
}

async fn emergency_stop_halts_pushes_and_resume_catches_up(backend: Backend) {
    let (s, _, _) = stock_shop(backend, 5).await;
    let path = format!("/stores/{}", s.store);
    let r = s
        .owner
        .submit(&format!("{path}/emergency-stop"), &format!("{path}/emergency-stop"), &[("reason", "棚卸し中")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    stock::set_manual(&s.app.db, s.account, "halt-1", None, 42, "test", orderdesk::db::now()).await.unwrap();
    for _ in 0..5 {
        s.app.stock.tick().await.unwrap();
    }
    assert_eq!(sim_stock(&s, SELLER).await.get("halt-1"), None, "stopped: nothing sent");
    assert_eq!(sim_stock(&s, "shop-b").await.get("halt-1"), Some(&42), "the other store is not stopped");
    s.owner.submit(&path, &format!("{path}/resume"), &[]).await;
    settle(&s).await;
    assert_eq!(sim_stock(&s, SELLER).await.get("halt-1"), Some(&42));
}

async fn refused_pushes_are_shown_and_retried(backend: Backend) {
    let (s, _, _) = stock_shop(backend, 5).await;
    s.sim.control("/_sim/faults", json!({ "api": "setStock", "kind": "status_ng", "share": 1.0, "times": 2 })).await;
    stock::set_manual(&s.app.db, s.account, "fail-1", None, 3, "test", orderdesk::db::now()).await.unwrap();
    s.app.stock.tick().await.unwrap();
    let row = s.owner.get("/stock?q=fail").await.select_text("#stock-table tbody tr").join("");
    assert!(
        row.contains("失敗") && row.contains("Yahoo!が在庫の更新を受け付けませんでした"),
        "a refused push is visible: {row}"
    );
    settle(&s).await;
    assert_eq!(sim_stock(&s, SELLER).await.get("fail-1"), Some(&3), "retried until it went through");
    let row = s.owner.get("/stock?q=fail").await.select_text("#stock-table tbody tr").join("");
    assert!(row.contains("送信済み"), "{row}");
}

fn multipart(token: &str, name: &str, bytes: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf_token", token.to_owned())
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("text/csv").unwrap())
}

async fn upload(s: &Shop, name: &str, bytes: Vec<u8>) -> Page {
    let token = s.owner.get("/stock").await.csrf_token().unwrap();
    let r = s
        .owner
        .client
        .post(format!("{}/stock/upload", s.owner.base))
        .multipart(multipart(&token, name, bytes))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    Page { status, headers, body: r.text().await.unwrap() }
}

async fn a_csv_applies_nothing_until_confirmed(backend: Backend) {
    let (s, _, _) = stock_shop(backend, 5).await;
    let text = "商品コード,在庫数\r\ncsv-a,10\r\ncsv-b:red,２０\r\n花瓶,3\r\ncsv-c,-1\r\ncsv-a,4\r\n";
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(text);
    let page = upload(&s, "zaiko.csv", sjis.into_owned()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Shift_JIS"));
    let errors = page.select_text("#upload-errors li");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("4行目") && errors[0].contains("半角英数字"), "{errors:?}");
    assert!(errors[1].starts_with("5行目") && errors[1].contains("0から"));
    assert!(errors[2].starts_with("6行目") && errors[2].contains("2行目にも"));
    assert_eq!(stock::quantity(&s.app.db, s.account, "csv-a").await.unwrap(), None, "nothing applied yet");
    let action = page.select_attr("#apply-upload", "action").remove(0);
    let token = page.csrf_token().unwrap();
    let r = s.owner.post_raw(&action, &[("csrf_token", &token)], &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(stock::quantity(&s.app.db, s.account, "csv-a").await.unwrap(), Some(10));
    assert_eq!(stock::quantity(&s.app.db, s.account, "csv-b:red").await.unwrap(), Some(20));
    // A second press applies nothing more.
    let r = s.owner.post_raw(&action, &[("csrf_token", &token)], &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(s.owner.get("/stock").await.body.contains("すでに反映済み"));
    assert!(s.owner.get("/audit").await.body.contains("在庫CSVの反映"));
    // The download holds what is stored.
    let csv = s.owner.get("/stock.csv").await;
    assert!(csv.body.contains("csv-a,10\r\n") && csv.body.contains("csv-b:red,20\r\n"), "{}", csv.body);
}

/// 「ストアから在庫を取得」: getStock for the account's codes and those in the store's orders.
async fn a_pull_reads_a_stores_quantities(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    s.generate(10, 3).await;
    s.run_once(Trigger::Manual).await;
    let codes: Vec<String> = ordered(&s).await.into_keys().collect();
    for (i, c) in codes.iter().enumerate() {
        s.sim.control(&format!("/_sim/sellers/{SELLER}/stock"), json!({ "item_code": c, "quantity": 40 + i })).await;
    }
    // A code only the account knows, which the store does not have: not found, left alone.
    stock::set_manual(&s.app.db, s.account, "only-ours", None, 9, "test", orderdesk::db::now()).await.unwrap();
    let page = s.owner.get("/stock").await;
    let token = page.csrf_token().unwrap();
    let store = s.store.0.to_string();
    let r = s.owner.post_raw("/stock/pull", &[("csrf_token", &token), ("store", &store)], &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = s.owner.get("/stock").await;
    assert!(page.body.contains(&format!("{}件が見つかりました", codes.len())), "{}", page.body);
    for (i, c) in codes.iter().enumerate() {
        assert_eq!(stock::quantity(&s.app.db, s.account, c).await.unwrap(), Some(40 + i as i64), "{c}");
    }
    assert_eq!(stock::quantity(&s.app.db, s.account, "only-ours").await.unwrap(), Some(9));
    assert!(s.owner.get("/audit").await.body.contains("在庫の取得"));
}

on_both_backends!(
    a_pull_reads_a_stores_quantities,
    orders_take_stock_once_and_every_synced_store_gets_it,
    a_killed_stock_job_never_counts_twice,
    a_hundred_edits_become_one_value,
    emergency_stop_halts_pushes_and_resume_catches_up,
    refused_pushes_are_shown_and_retried,
    a_csv_applies_nothing_until_confirmed,
);
