//! The dashboard (issue 10): held orders whose review ended raise one alert each, through the
//! simulator and a real import, until someone acknowledges them; the held count and the chart
//! of orders per JST day per store; all of it limited to a staff member's stores.

use chrono::{DateTime, Duration, TimeZone, Utc};
use orderdesk::{
    db::{Db, orders},
    domain::{AccountId, StoreId, store::InternalStatus},
    yahoo::api::OrderDetail,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, Browser, PASSWORD, TestApp},
    import::{SELLER, make_due, set_auto, shop, wait_for},
    on_both_backends,
};

/// Every alert row of an order: (outcome, acknowledged by).
async fn alerts_of(db: &Db, order_pk: i64) -> Vec<(i64, Option<String>)> {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_as(
            "select fraud_hold_status, acknowledged_by from fraud_hold_alert where order_pk = $1 order by id",
        )
        .bind(order_pk)
        .fetch_all(p)
        .await
    })
    .unwrap()
}

/// (alert id, text) of each alert on the dashboard.
async fn shown(b: &Browser) -> Vec<(String, String)> {
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let ids = page.select_attr("#hold-alerts li", "data-alert");
    ids.into_iter().zip(page.select_text("#hold-alerts li")).collect()
}

async fn held_count(b: &Browser) -> String {
    b.get("/").await.select_text("#held-count strong").join("")
}

/// Re-imports one order from its page, as a person would.
async fn reimport(b: &Browser, pk: i64) {
    let path = format!("/orders/{pk}/reimport");
    let preview = b.get(&path).await;
    let version = preview.select_attr("input[name=version]", "value").remove(0);
    let applied = b.submit(&path, &path, &[("version", &version)]).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
}

async fn held_orders_raise_one_alert_each_until_acknowledged(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    let days_ago = (Utc::now() - Duration::days(3)).to_rfc3339();
    let held = |category: u32| json!({ "order_time": days_ago, "items": [{ "item_id": "flower", "title": "注文保留_テスト", "category_id": category }] });
    let release = s.sim.order(SELLER, held(4101)).await["order_id"].as_str().unwrap().to_owned();
    let confirm = s.sim.order(SELLER, held(2947)).await["order_id"].as_str().unwrap().to_owned();
    s.sim.plain_order(SELLER).await;
    set_auto(&s.app.db, s.store, true).await;
    make_due(&s.app.db, s.store).await;
    wait_for(&s, |o| o.len() == 3).await;
    assert!(shown(&s.owner).await.is_empty(), "held at import: nothing to report yet");
    assert_eq!(held_count(&s.owner).await, "2件");
    let legend = s.owner.get("/").await.select_text("#orders-chart ul.legend li");
    assert_eq!(legend, ["本店 3件"], "the import's orders are in the chart");
    let dashboard = s.owner.get("/").await;
    assert_eq!(dashboard.select_attr("#held-count", "href"), ["/orders?hold=held"]);

    // Yahoo's review ends: one released, one confirmed; the next import sees it.
    s.sim.control("/_sim/review", json!({})).await;
    make_due(&s.app.db, s.store).await;
    let stored = wait_for(&s, |o| {
        o.iter().any(|(r, _)| r.order_id == confirm && r.fraud_hold_status == 3)
            && o.iter().any(|(r, _)| r.order_id == release && r.fraud_hold_status == 2)
    })
    .await;
    let pk = |id: &str| stored.iter().find(|(r, _)| r.order_id == id).unwrap().0.id.0;
    let (released_pk, confirmed_pk) = (pk(&release), pk(&confirm));
    let alerts = shown(&s.owner).await;
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let says = |text: String| alerts.iter().any(|(_, t)| t.contains(&text));
    assert!(says(format!("保留解除 注文 {release}（本店）")), "{alerts:?}");
    assert!(says(format!("不正確定 注文 {confirm}（本店）")), "{alerts:?}");
    let page = s.owner.get("/").await;
    let links = page.select_attr("#hold-alerts a", "href");
    assert!(links.contains(&format!("/orders/{released_pk}")) && links.contains(&format!("/orders/{confirmed_pk}")));
    assert_eq!(held_count(&s.owner).await, "1件", "a confirmed fraud is still held (3)");

    // Imported again (the next run, and a person's 注文再取込): no second alert.
    make_due(&s.app.db, s.store).await;
    reimport(&s.owner, released_pk).await;
    reimport(&s.owner, confirmed_pk).await;
    assert_eq!(alerts_of(&s.app.db, released_pk).await, [(2, None)]);
    assert_eq!(alerts_of(&s.app.db, confirmed_pk).await, [(3, None)]);
    assert_eq!(shown(&s.owner).await.len(), 2);

    // A staff member limited to another store sees none of it and cannot acknowledge it.
    let other = s.app.add_store(&s.owner, "支店", "shop-b", "secret-b").await;
    let staff_id = s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    let access = format!("/users/{staff_id}/access");
    let limit = |store: i64| [("stores".to_string(), "some".to_string()), ("store".to_string(), store.to_string())];
    let set = |store: i64| {
        let fields = limit(store);
        let owner = &s.owner;
        let access = access.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(owner.submit("/users", &access, &fields).await.status, StatusCode::SEE_OTHER);
        }
    };
    set(other).await;
    let staff = s.app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert!(shown(&staff).await.is_empty());
    assert_eq!(held_count(&staff).await, "0件");
    let release_alert = alerts.iter().find(|(_, t)| t.contains(&release)).unwrap().0.clone();
    let refused = staff.submit("/", &format!("/alerts/{release_alert}/acknowledge"), &[]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let all = staff.submit("/", "/alerts/acknowledge", &[("up_to", "999999")]).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert_eq!(shown(&s.owner).await.len(), 2, "acknowledging all of nothing touched another store's alerts");

    // The owner acknowledges one; it is gone, with who and when kept.
    let done = s.owner.submit("/", &format!("/alerts/{release_alert}/acknowledge"), &[]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let left = shown(&s.owner).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].1.contains(&confirm));
    assert_eq!(alerts_of(&s.app.db, released_pk).await, [(2, Some("owner@example.jp".into()))]);
    reimport(&s.owner, released_pk).await;
    assert_eq!(shown(&s.owner).await.len(), 1, "an acknowledged alert does not come back on re-import");

    // Limited to the store again, the staff member sees the rest and acknowledges all.
    set(s.store.0).await;
    assert_eq!(shown(&staff).await.len(), 1, "the new scope applies without signing in again");
    let page = staff.get("/").await;
    let up_to = page.select_attr("#acknowledge-all input[name=up_to]", "value").remove(0);
    let all = staff.submit("/", "/alerts/acknowledge", &[("up_to", &up_to)]).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert!(staff.get("/").await.body.contains("お知らせ1件を確認済みにしました"));
    assert!(shown(&s.owner).await.is_empty());
    assert_eq!(alerts_of(&s.app.db, confirmed_pk).await, [(3, Some("staff@example.jp".into()))]);

    // An order the import first sees already confirmed (3) raises its alert as well: it is
    // flagged for cancellation like one that went 1 → 3 here.
    let late = s.sim.order(SELLER, held(2947)).await["order_id"].as_str().unwrap().to_owned();
    s.sim.control("/_sim/review", json!({})).await;
    make_due(&s.app.db, s.store).await;
    let stored = wait_for(&s, |o| o.iter().any(|(r, _)| r.order_id == late)).await;
    let late_pk = stored.iter().find(|(r, _)| r.order_id == late).unwrap().0.id.0;
    assert_eq!(alerts_of(&s.app.db, late_pk).await, [(3, None)]);
    let alerts = shown(&s.owner).await;
    assert!(alerts.iter().any(|(_, t)| t.contains(&format!("不正確定 注文 {late}（本店）"))), "{alerts:?}");
}

/// Writes orders as an import would (any writer keeps the day counts); the buyer is 山田.
pub async fn write_orders(db: &Db, account: AccountId, store: StoreId, orders: &[(&str, DateTime<Utc>, u8)]) {
    let now = orderdesk::db::now();
    let writes = orders
        .iter()
        .map(|(id, time, hold)| orders::OrderWrite {
            detail: OrderDetail {
                order_id: (*id).into(),
                version: 1,
                order_time: *time,
                fraud_hold_status: *hold,
                bill: orderdesk::yahoo::api::Address { last_name: "山田".into(), ..Default::default() },
                ..OrderDetail::default()
            },
            new_status: InternalStatus::New,
            moves_on: None,
            flag_cancel: false,
            history: vec![],
            notify: None,
        })
        .collect();
    let batch = orders::Batch {
        writes,
        unchanged: vec![],
        cursor_to: None,
        retry: None,
        lease_owner: None,
        notify_base: None,
        actor: orders::HistoryActor::Job,
        now,
    };
    orders::write_batch(db, account, store, batch).await.unwrap();
}

/// An alert of account `store`'s account: an order written held (1), then released (2).
pub async fn seed_alert(app: &TestApp, store: i64) -> i64 {
    let store = StoreId(store);
    let account = crate::import::account_of(&app.db, store).await;
    let t = Utc::now() - Duration::hours(1);
    orderdesk::db::imports::ensure(&app.db, account, store, orderdesk::db::now()).await.unwrap();
    write_orders(&app.db, account, store, &[("seed-alert-1", t, 1)]).await;
    write_orders(&app.db, account, store, &[("seed-alert-1", t, 2)]).await;
    orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select id from fraud_hold_alert where account_id = $1 order by id desc")
            .bind(account)
            .fetch_one(p)
            .await
    })
    .unwrap()
}

/// The chart's table: (day, counts per store…, total) for one day.
fn chart_row(page: &crate::helpers::Page, day: &str) -> Vec<String> {
    let html = page.html();
    let rows = scraper::Selector::parse("#orders-chart ~ details tbody tr").unwrap();
    let cell = scraper::Selector::parse("th, td").unwrap();
    html.select(&rows)
        .map(|r| r.select(&cell).map(|c| c.text().collect::<String>()).collect::<Vec<_>>())
        .find(|cells| cells[0] == day)
        .unwrap_or_else(|| panic!("no row for {day}: {}", page.body))
}

async fn the_chart_counts_orders_per_jst_day_and_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "支店", "shop-b", "secret-b").await;
    let account = crate::import::account_of(&app.db, StoreId(a)).await;
    let empty = owner.get("/").await;
    assert!(empty.select_text("#orders-chart desc").join("").contains("受注はありません"), "{}", empty.body);

    // Around midnight in Japan two days ago (15:00 UTC), and today.
    let today = orderdesk::domain::jst::today(Utc::now());
    let midnight = orderdesk::domain::jst::offset()
        .from_local_datetime(&(today - Duration::days(1)).and_hms_opt(0, 0, 0).unwrap())
        .unwrap()
        .with_timezone(&Utc);
    let (before, at) = (midnight - Duration::seconds(1), midnight);
    let label = |d: chrono::NaiveDate| format!("{}/{}", chrono::Datelike::month(&d), chrono::Datelike::day(&d));
    let (day1, day2) = (label(today - Duration::days(2)), label(today - Duration::days(1)));
    write_orders(&app.db, account, StoreId(a), &[("a-1", before, 0), ("a-2", at, 0), ("a-3", at, 0)]).await;
    write_orders(&app.db, account, StoreId(b), &[("b-1", before, 0), ("b-2", Utc::now() - Duration::days(45), 0)])
        .await;
    // Written again (an import's upsert): counted once.
    write_orders(&app.db, account, StoreId(a), &[("a-3", at, 0)]).await;
    // Deleted: no longer counted.
    orderdesk::with_pool!(&app.db, |p| {
        sqlx::query("delete from yahoo_order where order_id = 'a-2'").execute(p).await.map(|_| ())
    })
    .unwrap();

    let (counted, stored): (i64, i64) = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_as(
            "select (select cast(coalesce(sum(n), 0) as bigint) from order_day_count where account_id = $1),
                    (select count(*) from yahoo_order where account_id = $1)",
        )
        .bind(account)
        .fetch_one(p)
        .await
    })
    .unwrap();
    assert_eq!((counted, stored), (4, 4), "the day counts add up to the orders");

    let page = owner.get("/").await;
    let svg = page.select_attr("#orders-chart svg[role=img]", "viewBox");
    assert_eq!(svg, ["0 0 360 200"]);
    assert_eq!(page.select_text("#orders-chart ul.legend li"), ["支店 1件", "本店 2件"]);
    assert_eq!(chart_row(&page, &day1), [day1.as_str(), "1", "1", "2"], "23:59:59 JST is the day before");
    assert_eq!(chart_row(&page, &day2), [day2.as_str(), "0", "1", "1"], "00:00:00 JST is the next day");
    assert_eq!(page.select_text("#orders-chart rect title").len(), 3);

    // A staff member limited to 本店 sees only 本店 in the chart.
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let access = format!("/users/{staff_id}/access");
    let a_str = a.to_string();
    let saved = owner.submit("/users", &access, &[("stores", "some"), ("store", &a_str)]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let page = staff.get("/").await;
    assert_eq!(page.select_text("#orders-chart ul.legend li"), ["本店 2件"]);
    assert_eq!(chart_row(&page, &day1), [day1.as_str(), "1", "1"]);
    let chart = page.select_text("section.orders-chart").join("");
    assert!(chart.contains("本店") && !chart.contains("支店"), "{chart}");
}

on_both_backends!(held_orders_raise_one_alert_each_until_acknowledged, the_chart_counts_orders_per_jst_day_and_store);
