//! A merchant's first day, tried again (issue 32): what a newcomer is told where they type, an
//! emergency stop said on every page while it lasts, and words where codes were.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::Backend,
    import::shop,
    shipping::{order, pk_of},
};

async fn the_store_and_key_forms_say_what_to_type_for_the_simulator(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let form = s.owner.get("/stores/new").await;
    let hint = form.select_text("#simulator-hint").join("");
    for value in ["demo-store", "demo-client", "demo-secret"] {
        assert!(hint.contains(value), "{hint}");
    }
    let key = s.owner.get(&format!("/stores/{}/public-key", s.store)).await;
    let hint = key.select_text("#simulator-key-hint").join("");
    assert!(hint.contains("シミュレーターの画面") && hint.contains(crate::import::SELLER), "{hint}");
}

async fn an_emergency_stop_is_said_on_every_page_while_it_lasts(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    for page in ["/", "/orders", "/shipping", "/stock"] {
        assert!(s.owner.get(page).await.select_text("#stop-banner").is_empty(), "{page} before the stop");
    }
    let path = format!("/stores/{}/emergency-stop", s.store);
    let stopped = s.owner.submit(&path, &path, &[("reason", "出荷トラブルのため")]).await;
    assert_eq!(stopped.status, StatusCode::SEE_OTHER, "{}", stopped.body);
    for page in ["/", "/orders", "/shipping", "/stock", "/mail"] {
        let banner = s.owner.get(page).await.select_text("#stop-banner").join("");
        assert!(
            banner.contains("緊急停止中") && banner.contains("本店") && banner.contains("再開"),
            "{page}: {banner}"
        );
    }
    // A staff member is told who lifts it, not sent to a button they do not have.
    let staff_id = s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    assert!(staff_id > 0);
    let staff = s.app.browser();
    staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    let banner = staff.get("/orders").await.select_text("#stop-banner").join("");
    assert!(banner.contains("オーナーが行います"), "{banner}");
    // Lifted: gone everywhere.
    let resumed = s.owner.submit(&format!("/stores/{}", s.store), &format!("/stores/{}/resume", s.store), &[]).await;
    assert_eq!(resumed.status, StatusCode::SEE_OTHER);
    assert!(s.owner.get("/orders").await.select_text("#stop-banner").is_empty());
    // The whole account stopped: every store is named.
    let all = s.owner.submit("/emergency-stop", "/emergency-stop", &[("reason", "点検")]).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert!(s.owner.get("/stock").await.select_text("#stop-banner").join("").contains("本店"));
}

async fn an_order_shows_yahoos_status_in_words(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let (id, _) = order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }] })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await;
    let page = s.owner.get(&format!("/orders/{}", pk.0)).await;
    let text = page.select_text("dd").join(" | ");
    assert!(!text.contains("2: ") && !text.contains("1: "), "no bare codes: {text}");
    // 注文再取込 is there, but not the page's main button.
    assert!(page.body.contains(r#"class="button secondary" href="/orders/"#), "{}", page.body);
}

/// Turning the fraud-hold restriction off is asked again, naming the risk, and audited; while
/// it is off, a held order's page says so.
async fn turning_the_fraud_hold_restriction_off_is_asked_twice(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let (held, _) =
        order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }], "fraud_hold_status": 1 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &held).await;
    assert!(s.owner.get(&format!("/orders/{}", pk.0)).await.select_text("#restriction-off").is_empty());
    let path = format!("/stores/{}", s.store);
    let fields = [
        ("name", "本店"),
        ("seller_id", crate::import::SELLER),
        ("environment", "simulator"),
        ("client_id", crate::sim::CLIENT_ID),
        ("auto_import_interval_minutes", "1"),
    ];
    let asked = s.owner.submit(&format!("{path}/edit"), &path, &fields).await;
    assert_eq!(asked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(asked.select_text("#confirm_unrestrict-error").join("").contains("不正利用の被害"), "{}", asked.body);
    let store = orderdesk::db::stores::get(&s.app.db, s.account, s.store).await.unwrap().unwrap();
    assert!(store.restrict_fraud_hold_changes, "nothing saved");
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm_unrestrict", "on"));
    let saved = s.owner.submit(&format!("{path}/edit"), &path, &confirmed).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let audit = s.owner.get("/audit").await.body;
    assert!(audit.contains("不正保留注文の変更制限"), "audited");
    let page = s.owner.get(&format!("/orders/{}", pk.0)).await;
    assert!(page.select_text("#restriction-off").join("").contains("オフです"), "{}", page.body);
    // The held order is offered other statuses now, but never 出荷済み (it would carry a
    // tracking number); asked all the same, the server refuses it and nothing changes.
    let offered = page.select_attr("#target option", "value");
    assert!(offered.contains(&"cancelled".to_owned()) && offered.contains(&"on_hold".to_owned()), "{offered:?}");
    assert!(!offered.contains(&"shipped".to_owned()), "{offered:?}");
    let order_path = format!("/orders/{}", pk.0);
    let shipped = s
        .owner
        .submit(
            &order_path,
            &format!("{order_path}/status"),
            &[
                ("target", "shipped"),
                ("ship_company", "1001"),
                ("ship_invoice", "123456789012"),
                ("ship_date", "2026-12-07"),
            ],
        )
        .await;
    assert_eq!(shipped.status, StatusCode::SEE_OTHER);
    let after = s.owner.get(&order_path).await;
    assert_ne!(after.select_text("#internal-status").join(""), "出荷済み", "{}", after.body);
    // Pages that change many orders' statuses say which stores have it off.
    for page in ["/orders", "/rules"] {
        let banner = s.owner.get(page).await.select_text("#restriction-off-banner").join("");
        assert!(banner.contains("本店") && banner.contains("キャンセル"), "{page}: {banner}");
    }
    assert!(s.owner.get("/stock").await.select_text("#restriction-off-banner").is_empty());
}

/// A confirmed fraud's page says what to do until its cancellation reaches Yahoo, then that it
/// is done.
async fn a_confirmed_fraud_says_when_its_cancellation_reached_yahoo(backend: Backend) {
    use orderdesk::{db::imports::Trigger, import::Ending};
    let s = shop(backend, |c| c.scheduler = false).await;
    let (fraud, _) =
        order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }], "fraud_hold_status": 3 })).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let pk = pk_of(&s, &fraud).await;
    let path = format!("/orders/{}", pk.0);
    let notice = |page: &crate::helpers::Page| page.select_text("#hold-notice").join("");
    assert!(notice(&s.owner.get(&path).await).contains("キャンセルしてください"));
    let cancelled =
        s.owner.submit(&path, &format!("{path}/status"), &[("target", "cancelled"), ("cancel_reason", "170")]).await;
    assert_eq!(cancelled.status, StatusCode::SEE_OTHER);
    let sending = notice(&s.owner.get(&path).await);
    assert!(sending.contains("送信しています") && !sending.contains("キャンセルしてください"), "{sending}");
    s.app.pusher.drain().await.unwrap();
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let done = notice(&s.owner.get(&path).await);
    assert!(done.contains("Yahoo!に反映されています"), "{done}");
}

/// The number people quote (`10000059`) finds the order whose ID is the store account, a
/// hyphen and that number, for an owner and for a masked staff member alike.
async fn the_order_number_alone_finds_the_order(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let (id, _) = order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }] })).await;
    let (other, _) = order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }] })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let number = id.rsplit('-').next().unwrap().to_owned();
    let found = s.owner.get(&format!("/orders?q={number}")).await;
    assert!(found.body.contains(&id), "{}", found.body);
    assert!(!found.body.contains(&format!(">{other}<")), "only that order: {}", found.body);
    let masked = crate::shipping::masked_staff(&s).await;
    assert!(masked.get(&format!("/orders?q={number}")).await.body.contains(&id));
}

/// A store whose key Yahoo refuses: the owner gets the key form, a staff member is told the
/// owner does it (never sent to a button they do not have).
async fn staff_are_told_to_ask_the_owner(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update store set last_authorize_status = 'invalid-key-version'").execute(p).await.map(|_| ())
    })
    .unwrap();
    let path = format!("/stores/{}", s.store);
    let owner_page = s.owner.get(&path).await;
    assert!(owner_page.body.contains("公開鍵を設定する"));
    assert!(owner_page.select_text(".owner-only").is_empty());
    s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    let staff = s.app.browser();
    staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    let page = staff.get(&path).await;
    let told = page.select_text(".owner-only").join("");
    assert!(told.contains("オーナーに依頼してください"), "{}", page.body);
    assert!(page.select_attr("form[action$='/connect'] button", "type").is_empty(), "no owner button for staff");
}

/// The order CSV's item-level variant: one row per item line, no personal data.
async fn the_order_csv_has_one_row_per_item_line(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let items = json!([
        { "item_id": "apple", "title": "りんご", "quantity": 3 },
        { "item_id": "mug", "sub_code": "red", "title": "マグカップ", "quantity": 1 }
    ]);
    let (id, _) = order(&s, json!({ "items": items })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let list = s.owner.get("/orders").await;
    let href = list.select_attr("#items-csv", "href");
    assert_eq!(href.len(), 1, "the list offers it");
    let csv = s.owner.get(&href[0]).await;
    assert_eq!(csv.status, StatusCode::OK);
    let text = csv.body.trim_start_matches('\u{feff}').to_owned();
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[0].starts_with("注文ID,ストア,注文日時,ステータス,商品コード,サブコード,商品名,オプション,数量"),
        "{text}"
    );
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows.iter().any(|r| r.starts_with(&id) && r.contains(",apple,,りんご,,3,")), "{text}");
    assert!(rows.iter().any(|r| r.contains(",mug,red,マグカップ,,1,")), "{text}");
    let buyer = orderdesk::db::buyer_mail::order(&s.app.db, s.account, pk_of(&s, &id).await).await.unwrap().unwrap();
    assert!(!text.contains(&buyer.facts.buyer_name) && !text.contains(&buyer.email), "no personal data");
}

/// A held order that the automatic status change left at 失敗 is moved on by the same change
/// when Yahoo releases it; one confirmed as fraud stays.
async fn a_released_order_left_at_failed_moves_on(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    crate::import::save_settings(
        &s,
        &[("auto_status_change_enabled", "on"), ("auto_status_change_target", "awaiting_shipment")],
    )
    .await;
    let days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let held = |category: u32| {
        json!({ "order_time": days_ago, "pay_method": "payment_a1",
                "items": [{ "item_id": "flower", "title": "注文保留_テスト", "category_id": category }] })
    };
    let release = s.sim.order(crate::import::SELLER, held(4101)).await["order_id"].as_str().unwrap().to_owned();
    let confirm = s.sim.order(crate::import::SELLER, held(2947)).await["order_id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Auto).await, orderdesk::import::Ending::Done);
    let status = |id: String| {
        let s = &s;
        async move {
            s.ours().await.into_iter().find(|(o, _)| o.order_id == id).unwrap().0.internal_status().as_str().to_owned()
        }
    };
    assert_eq!(status(release.clone()).await, "failed");
    assert_eq!(status(confirm.clone()).await, "failed");
    s.sim.control("/_sim/review", json!({})).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Auto).await, orderdesk::import::Ending::Done);
    assert_eq!(status(release.clone()).await, "awaiting_shipment", "released: moved on");
    assert_eq!(status(confirm.clone()).await, "failed", "confirmed: stays");
    let pk = pk_of(&s, &release).await;
    let page = s.owner.get(&format!("/orders/{}", pk.0)).await;
    assert!(page.body.contains("不正保留が解除されたため、ステータス自動変更: 失敗 → 出荷待ち"), "{}", page.body);
}

/// A cursor never runs ahead of Yahoo's clock: after Yahoo's clock was moved forward (runs
/// moved the cursor with it) and then back, the first run finds the order Yahoo published on
/// its earlier clock, and the cursor comes back to Yahoo's time.
async fn a_cursor_never_runs_ahead_of_yahoos_clock(backend: Backend) {
    use chrono::{Duration, TimeZone, Utc};
    use orderdesk::{db::imports, import::Ending};
    let s = shop(backend, |c| c.scheduler = false).await;
    s.sim.control("/_sim/clock", json!({ "offset_secs": 3000 })).await;
    for _ in 0..2 {
        assert_eq!(s.run_once(imports::Trigger::Auto).await, Ending::Done);
    }
    let ahead = imports::state(&s.app.db, s.account, s.store).await.unwrap().cursor_at.unwrap();
    assert!(ahead > Utc::now() + Duration::minutes(40), "the cursor followed Yahoo's clock: {ahead}");
    // Yahoo's clock is put an hour behind ours; an order is published on it.
    s.sim.control("/_sim/clock", json!({ "offset_secs": -3600 })).await;
    let yahoo_now = Utc.timestamp_opt(s.sim.now().await, 0).unwrap();
    let published = (yahoo_now - Duration::minutes(5)).to_rfc3339();
    let o = s
        .sim
        .order(
            crate::import::SELLER,
            json!({ "items": [{ "item_id": "apple", "title": "りんご" }], "order_time": published, "publication_time": published }),
        )
        .await;
    let id = o["order_id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_once(imports::Trigger::Auto).await, Ending::Done);
    let list = s.owner.get(&format!("/orders?q={id}")).await;
    assert!(list.body.contains(&id), "the first run after the clock moved back found {id}: {}", list.body);
    let cursor = imports::state(&s.app.db, s.account, s.store).await.unwrap().cursor_at.unwrap();
    let yahoo_now = Utc.timestamp_opt(s.sim.now().await, 0).unwrap();
    assert!(cursor <= yahoo_now, "the cursor {cursor} is not past Yahoo's now {yahoo_now}");
    // And the next order published on Yahoo's clock arrives with the next run.
    let next = s.sim.plain_order(crate::import::SELLER).await;
    s.sim.advance(5).await;
    assert_eq!(s.run_once(imports::Trigger::Auto).await, Ending::Done);
    assert!(s.owner.get(&format!("/orders?q={next}")).await.body.contains(&next));
}

/// An order opened from a filtered list leads back to that list, and on to the orders beside
/// it there, in the list's order.
async fn an_order_page_leads_back_to_its_list_and_on(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    for _ in 0..3 {
        order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }] })).await;
    }
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let list = s.owner.get("/orders?sort=ordered_asc").await;
    let rows: Vec<String> =
        list.select_attr("table.orders td a.id", "href").into_iter().map(|h| h.replace("&amp;", "&")).collect();
    assert_eq!(rows.len(), 3);
    assert!(rows[0].ends_with("?list=sort%3Dordered_asc"), "{rows:?}");
    let first = s.owner.get(&rows[0]).await;
    assert_eq!(first.select_attr("#back-to-list", "href"), ["/orders?sort=ordered_asc"]);
    assert!(first.select_attr("#previous-order", "href").is_empty(), "the first row has no previous");
    let next = first.select_attr("#next-order", "href")[0].replace("&amp;", "&");
    assert_eq!(next, rows[1]);
    let second = s.owner.get(&next).await;
    assert_eq!(second.select_attr("#previous-order", "href")[0].replace("&amp;", "&"), rows[0]);
    assert_eq!(second.select_attr("#next-order", "href")[0].replace("&amp;", "&"), rows[2]);
    // From the plain list: back to /orders, newest first.
    let plain = s.owner.get("/orders").await.select_attr("table.orders td a.id", "href");
    let page = s.owner.get(&plain[0]).await;
    assert_eq!(page.select_attr("#back-to-list", "href"), ["/orders"]);
    assert_eq!(page.select_attr("#next-order", "href")[0], plain[1]);
    // Opened from elsewhere (a notification, a bookmark): no list, no neighbours.
    let alone = s.owner.get(plain[0].split('?').next().unwrap()).await;
    assert!(
        alone.select_attr("#next-order", "href").is_empty() && alone.select_attr("#previous-order", "href").is_empty()
    );
    assert_eq!(alone.select_attr("#back-to-list", "href"), ["/orders"]);
}

/// A store whose grant Yahoo revoked says so everywhere: the store list and the dashboard say
/// 期限切れ (not 連携済み), its page's clock stops counting days, 次回の自動取込 says it is
/// stopped, and the cause is in words with the code beside it.
async fn a_revoked_store_says_one_thing_everywhere(backend: Backend) {
    use orderdesk::{db::imports::Trigger, import::Ending};
    let s = shop(backend, |c| c.scheduler = false).await;
    crate::import::set_auto(&s.app.db, s.store, true).await;
    let connected = s.owner.get("/stores").await.select_text("table.list tbody td").join(" | ");
    assert!(connected.contains("連携済み"), "{connected}");
    s.sim.control("/_sim/grants/revoke", json!({ "seller_id": crate::import::SELLER })).await;
    s.sim.advance(2 * 3600).await;
    assert!(matches!(s.run_once(Trigger::Auto).await, Ending::Auth(_)));
    for page in ["/stores", "/"] {
        let cells = s.owner.get(page).await.select_text("table.list tbody td").join(" | ");
        assert!(cells.contains("期限切れ（再連携が必要です）") && !cells.contains("連携済み"), "{page}: {cells}");
    }
    let page = s.owner.get(&format!("/stores/{}", s.store)).await;
    let clock = page.select_text("#clock-authorization").join("");
    assert!(clock.starts_with("期限切れ"), "{clock}");
    let next = page.select_text("#import-next").join("");
    assert!(next.starts_with("止まっています"), "{next}");
    let blocked = page.select_text("#import-blocked").join("");
    assert!(blocked.contains("有効期限切れ、または取り消し") && blocked.contains("invalid_grant"), "{blocked}");
}

crate::on_both_backends!(
    a_revoked_store_says_one_thing_everywhere,
    an_order_page_leads_back_to_its_list_and_on,
    a_confirmed_fraud_says_when_its_cancellation_reached_yahoo,
    a_cursor_never_runs_ahead_of_yahoos_clock,
    a_released_order_left_at_failed_moves_on,
    the_order_csv_has_one_row_per_item_line,
    staff_are_told_to_ask_the_owner,
    the_order_number_alone_finds_the_order,
    turning_the_fraud_hold_restriction_off_is_asked_twice,
    the_store_and_key_forms_say_what_to_type_for_the_simulator,
    an_emergency_stop_is_said_on_every_page_while_it_lasts,
    an_order_shows_yahoos_status_in_words,
);
