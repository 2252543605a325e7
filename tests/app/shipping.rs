//! The shipping day (issue 33): label files out, issued numbers in, 出荷済み to Yahoo, and the
//! fraud-hold rule (and payment before shipping) on every shipping path.

use orderdesk::{
    db::{orders::OrderPk, outbox::PushState},
    domain::{
        order::FRAUD_HOLD_REFUSAL,
        scope::OrderScope,
        status::{ChangeRequest, Refusal},
        store::InternalStatus,
    },
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Page},
    import::{SELLER, Shop, shop},
};

/// A shop whose app runs no drainer or scheduler of its own: the test drains.
pub(crate) async fn quiet(backend: Backend) -> Shop {
    shop(backend, |c| c.scheduler = false).await
}

/// The store's 出荷設定 as an owner saves them.
pub(crate) async fn save_settings(s: &Shop) {
    let path = format!("/stores/{}/shipping", s.store);
    let saved = s
        .owner
        .submit(
            &path,
            &path,
            &[
                ("sender_name", "テスト商店"),
                ("sender_kana", "テストショウテン"),
                ("sender_phone", "03-1234-5678"),
                ("sender_zip", "100-0001"),
                ("sender_address", "東京都千代田区千代田1-1"),
                ("b2_customer_code", "012345678901"),
                ("b2_freight_no", "01"),
                ("ehiden_cool_codes", "001,002,003"),
                ("prepay_methods", "payment_b1, payment_c1"),
                ("default_format", "b2"),
                ("default_service", "0"),
                ("map_0_pay", "payment_d1"),
                ("map_0_format", "b2"),
                ("map_0_service", "2"),
                ("map_0_cool", "normal"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
}

/// A valid tracking number: 11 digits and their 7DR check digit.
pub(crate) fn number(base: u64) -> String {
    format!("{base:011}{}", base % 7)
}

/// An order at the simulator, imported; its primary key here.
pub(crate) async fn order(s: &Shop, mut spec: Value) -> (String, OrderPk) {
    // An hour ago: an import reads up to a moment before now.
    spec["order_time"] = json!((chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339());
    let o = s.sim.order(SELLER, spec).await;
    let id = o["order_id"].as_str().unwrap().to_owned();
    (id, OrderPk(0))
}

pub(crate) async fn pk_of(s: &Shop, order_id: &str) -> OrderPk {
    let ours = s.ours().await;
    ours.iter()
        .find(|(o, _)| o.order_id == order_id)
        .map(|(o, _)| o.id)
        .unwrap_or_else(|| panic!("{order_id} not imported"))
}

pub(crate) async fn to_awaiting(s: &Shop, pk: OrderPk) {
    let scope = OrderScope::account(s.account);
    let req = ChangeRequest::to(InternalStatus::AwaitingShipment);
    let actor = orderdesk::db::orders::HistoryActor::User("owner@example.jp".into());
    orderdesk::db::changes::change_status(&s.app.db, &scope, pk, &req, &actor, orderdesk::db::now())
        .await
        .unwrap()
        .unwrap();
}

pub(crate) async fn status_of(s: &Shop, pk: OrderPk) -> String {
    s.ours().await.into_iter().find(|(o, _)| o.id == pk).unwrap().0.internal_status().as_str().to_owned()
}

pub(crate) async fn export(s: &Shop, pks: &[OrderPk], extra: &[(&str, &str)]) -> Page {
    let ids: Vec<String> = pks.iter().map(|p| p.0.to_string()).collect();
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|i| ("order", i.as_str())).collect();
    fields.extend_from_slice(extra);
    s.owner.submit("/shipping", "/shipping/labels", &fields).await
}

async fn upload(s: &Shop, name: &str, bytes: Vec<u8>) -> Page {
    let token = s.owner.get("/shipping").await.csrf_token().unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str("text/csv").unwrap());
    let r = s.owner.client.post(format!("{}/shipping/tracking", s.owner.base)).multipart(form).send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    Page { status, headers, body: r.text().await.unwrap() }
}

fn sjis(text: &str) -> Vec<u8> {
    encoding_rs::SHIFT_JIS.encode(text).0.into_owned()
}

fn item() -> Value {
    json!([{ "item_id": "mug", "title": "マグカップ" }])
}

async fn a_merchant_ships_from_label_file_to_yahoo(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let (paid, _) = order(&s, json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1 })).await;
    let (held, _) = order(&s, json!({ "items": item(), "fraud_hold_status": 1 })).await;
    let (unpaid, _) = order(&s, json!({ "items": item(), "pay_method": "payment_b1", "pay_status": 0 })).await;
    let (odd, _) = order(
        &s,
        json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1, "ship": { "last_name": "𠮷田" } }),
    )
    .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let (paid, held, unpaid, odd) =
        (pk_of(&s, &paid).await, pk_of(&s, &held).await, pk_of(&s, &unpaid).await, pk_of(&s, &odd).await);
    for pk in [paid, unpaid, odd] {
        to_awaiting(&s, pk).await;
    }

    // The 出荷 page lists what waits, with why an order cannot go.
    let page = s.owner.get("/shipping").await;
    assert_eq!(page.status, StatusCode::OK);
    let rows = page.select_text("#waiting-orders tbody tr").join("\n");
    assert!(rows.contains("未入金"), "{rows}");

    // 𠮷 cannot be printed: the whole export is refused with a table, and nothing is recorded.
    let refused = export(&s, &[paid, held, unpaid, odd], &[("format", "b2")]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", refused.body);
    let table = refused.select_text("#problem-table tbody tr").join("\n");
    assert!(table.contains("𠮷") && table.contains("吉"), "the value and a replacement: {table}");
    let excluded = refused.select_text("#excluded-table tbody tr").join("\n");
    assert!(excluded.contains(FRAUD_HOLD_REFUSAL), "the held order says why: {excluded}");
    assert!(excluded.contains("未入金"), "{excluded}");
    assert!(s.owner.get("/shipping").await.select_text("#exports tbody tr").is_empty(), "nothing recorded");
    let fine = refused.select_attr("#export-fine input[name=order]", "value");
    assert_eq!(fine, vec![paid.0.to_string()], "the rest is offered on its own");

    // Without it: one row, the held and unpaid orders left out and named.
    let done = export(&s, &[paid, held, unpaid], &[("format", "b2")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.select_text("#labels-done").join("").contains("1件"), "{}", done.body);
    let excluded = done.select_text("#excluded-table tbody tr").join("\n");
    assert!(excluded.contains(FRAUD_HOLD_REFUSAL) && excluded.contains("未入金"), "{excluded}");
    let href = done.select_attr("#labels-download", "href")[0].clone();
    let file = s.owner.client.get(format!("{}{href}", s.owner.base)).send().await.unwrap();
    assert_eq!(file.status(), StatusCode::OK);
    let bytes = file.bytes().await.unwrap();
    let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!bad, "CP932");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "a header and one row: {text}");
    assert!(lines[0].starts_with("お客様管理番号,送り状種類"), "{}", lines[0]);
    let management_no = lines[1].trim_matches('"').split(',').next().unwrap().trim_matches('"').to_owned();
    assert!(management_no.starts_with("OD"), "{}", lines[1]);
    let held_row = s.ours().await.into_iter().find(|(o, _)| o.id == held).unwrap().0;
    assert!(!text.contains(&held_row.order_id), "the held order is not in the file");

    // Exported already: left out unless the merchant confirms a re-export.
    let again = export(&s, &[paid], &[("format", "b2")]).await;
    assert!(again.select_text("#already-table").join("").contains("出力済み"), "{}", again.body);
    let confirmed = export(&s, &[paid], &[("format", "b2"), ("reexport", "on")]).await;
    assert!(confirmed.select_text("#labels-done").join("").contains("1件"), "{}", confirmed.body);
    assert_eq!(s.owner.get("/shipping").await.select_text("#exports tbody tr").len(), 2, "both exports are listed");

    // B2's issued data: the number comes back by お客様管理番号.
    let tracking = number(4_9071_4955);
    let issued = format!(
        "お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n{management_no},0,0,{tracking},2026/12/07\r\nOD999999,0,0,{},2026/12/07\r\n",
        number(1)
    );
    let preview = upload(&s, "issued.csv", sjis(&issued)).await;
    assert_eq!(preview.status, StatusCode::SEE_OTHER, "{}", preview.body);
    let preview_path = preview.location().to_owned();
    let page = s.owner.get(&preview_path).await;
    assert_eq!(page.select_text("#count-matched"), vec!["1"], "{}", page.body);
    assert_eq!(page.select_text("#count-unknown"), vec!["1"]);
    assert_eq!(status_of(&s, paid).await, "awaiting_shipment", "a preview changes nothing");
    let applied = s.owner.submit(&preview_path, &format!("{preview_path}/apply"), &[("ship_date", "")]).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    assert_eq!(status_of(&s, paid).await, "shipped");

    // Yahoo gets 出荷済み with the company, the number and the tracking URL.
    s.app.pusher.drain().await.unwrap();
    let pushes = orderdesk::db::outbox::of_store(&s.app.db, s.account, s.store).await.unwrap();
    assert!(pushes.iter().all(|p| p.state() == PushState::Done), "{pushes:?}");
    let paid_id = s.ours().await.into_iter().find(|(o, _)| o.id == paid).unwrap().0.order_id;
    let at_yahoo = s.snapshot(SELLER).await.into_iter().find(|o| o.order_id == paid_id).unwrap();
    assert_eq!(at_yahoo.ship_status, 3);
    assert_eq!(at_yahoo.ship_company_code, "1001");
    assert_eq!(at_yahoo.ship_invoice_number1, tracking);

    // The same file again changes nothing.
    let again = upload(&s, "issued.csv", sjis(&issued)).await;
    assert_eq!(again.location(), preview_path, "the earlier upload");
    let pushes_after = orderdesk::db::outbox::of_store(&s.app.db, s.account, s.store).await.unwrap();
    assert_eq!(pushes_after.len(), pushes.len(), "nothing queued twice");

    // Upload: a parcel of the held order (made before the hold, say) is refused in the preview
    // and never applied.
    let scope = OrderScope::account(s.account);
    let held_order = orderdesk::db::shipping::orders(&s.app.db, &scope, &[held]).await.unwrap();
    let fallback = orderdesk::db::shipping::Settings::default().fallback();
    let parcel = orderdesk::db::shipping::ensure_shipments(
        &s.app.db,
        s.account,
        &[(&held_order[0], &fallback)],
        orderdesk::db::now(),
    )
    .await
    .unwrap();
    let held_file = format!(
        "お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n{},0,0,{},2026/12/07\r\n",
        parcel[0].management_no(),
        number(31)
    );
    let preview = upload(&s, "held.csv", sjis(&held_file)).await;
    let path = preview.location().to_owned();
    let page = s.owner.get(&path).await;
    assert_eq!(page.select_text("#count-held"), vec!["1"], "{}", page.body);
    assert!(page.select_text("#tracking-rows").join("").contains(FRAUD_HOLD_REFUSAL), "{}", page.body);
    assert!(page.select_attr("#apply-tracking", "action").is_empty(), "nothing to apply is offered");
    let forced =
        s.owner.submit(&path, &format!("{path}/apply"), &[("ship_date", ""), ("unpaid_confirmed", "on")]).await;
    assert_eq!(forced.status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&s, held).await, "new", "a posted apply changes nothing for it");

    // By hand: the held order never takes a number, the unpaid one only when confirmed.
    let held_id = held_row.order_id.clone();
    let unpaid_id = s.ours().await.into_iter().find(|(o, _)| o.id == unpaid).unwrap().0.order_id;
    let lines = format!("{held_id} {}\n{unpaid_id} {}", number(22), number(23));
    let manual = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("ship_date", ""), ("lines", &lines)],
        )
        .await;
    let results = manual.select_text("#manual-results tbody tr");
    assert!(results[0].contains(FRAUD_HOLD_REFUSAL), "{results:?}");
    assert!(results[1].contains("未入金"), "{results:?}");
    assert_eq!(status_of(&s, held).await, "new");
    let confirmed = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("ship_date", ""), ("lines", &lines), ("unpaid_confirmed", "on")],
        )
        .await;
    let results = confirmed.select_text("#manual-results tbody tr");
    assert!(results[0].contains(FRAUD_HOLD_REFUSAL), "never, even confirmed: {results:?}");
    assert!(results[1].contains("出荷済み"), "{results:?}");
    // A wrong check digit is refused before anything is looked up.
    let wrong = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("lines", &format!("{paid_id} 123456789010"))],
        )
        .await;
    assert!(wrong.select_text("#manual-results tbody tr").join("").contains("チェックディジット"), "{}", wrong.body);
}

/// A held order never ships by the status path either, even with the store's restriction off.
async fn a_held_order_takes_no_tracking_number_on_any_path(backend: Backend) {
    let s = quiet(backend).await;
    let (held, _) = order(&s, json!({ "items": item(), "fraud_hold_status": 1 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &held).await;
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update store set restrict_fraud_hold_changes = false where id = $1")
            .bind(s.store)
            .execute(p)
            .await
            .map(drop)
    })
    .unwrap();
    // The order page.
    let path = format!("/orders/{pk}");
    let page = s
        .owner
        .submit(
            &path,
            &format!("{path}/status"),
            &[
                ("target", "shipped"),
                ("ship_company", "1001"),
                ("ship_invoice", &number(5)),
                ("ship_date", "2026-12-07"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(s.owner.get(&path).await.body.contains(FRAUD_HOLD_REFUSAL), "the page says why");
    // The list's bulk ship step.
    let pk_text = pk.0.to_string();
    let invoice = number(6);
    let bulk = s
        .owner
        .submit(
            "/orders",
            "/orders/bulk",
            &[
                ("order", pk_text.as_str()),
                ("target", "shipped"),
                ("ship_step", "1"),
                ("ship_company", "1001"),
                ("ship_date", "2026-12-07"),
                (&format!("invoice_{pk_text}"), invoice.as_str()),
            ],
        )
        .await;
    assert!(bulk.select_text("#bulk-results").join("").contains(FRAUD_HOLD_REFUSAL), "{}", bulk.body);
    // The label list from the order list.
    let labels = export(&s, &[pk], &[("format", "ehiden")]).await;
    assert!(labels.select_text("#excluded-table").join("").contains(FRAUD_HOLD_REFUSAL), "{}", labels.body);
    let labels = export(&s, &[pk], &[("format", "clickpost")]).await;
    assert!(labels.select_text("#excluded-table").join("").contains(FRAUD_HOLD_REFUSAL), "{}", labels.body);
    assert_eq!(status_of(&s, pk).await, "new", "nothing changed");
    let scope = OrderScope::account(s.account);
    let req = ChangeRequest {
        target: InternalStatus::Shipped,
        cancel_reason: None,
        ship: Some(orderdesk::domain::status::ShipInput {
            company_code: "1001".into(),
            invoice_number: number(7),
            ship_date: chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            ship_url: String::new(),
        }),
        unpaid_confirmed: true,
    };
    let refused = orderdesk::db::changes::change_status(
        &s.app.db,
        &scope,
        pk,
        &req,
        &orderdesk::db::orders::HistoryActor::Job,
        orderdesk::db::now(),
    )
    .await
    .unwrap();
    assert!(matches!(refused, Err(Refusal::Leave(_))), "{refused:?}");
}

/// Staff whose personal-data view is masked cannot write label files, and are told so.
async fn masked_staff_cannot_export_labels(backend: Backend) {
    let s = quiet(backend).await;
    let (id, _) = order(&s, json!({ "items": item() })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await;
    to_awaiting(&s, pk).await;
    let staff = masked_staff(&s).await;
    let page = staff.get("/shipping").await;
    assert!(page.select_text("#masked-note").join("").contains("個人情報"), "{}", page.body);
    let pk_text = pk.0.to_string();
    let refused = staff.submit("/shipping", "/shipping/labels", &[("order", pk_text.as_str()), ("format", "b2")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.select_text("#labels-message").join("").contains("個人情報"), "{}", refused.body);
}

/// A staff member of the shop's store whose personal-data view is masked, signed in.
pub(crate) async fn masked_staff(s: &Shop) -> crate::helpers::Browser {
    let staff_id = s.app.add_user(&s.owner, "masked@example.jp", "staff").await;
    let store = s.store.0.to_string();
    let access = s
        .owner
        .submit(
            "/users",
            &format!("/users/{staff_id}/access"),
            &[("stores", "some"), ("store", store.as_str()), ("mask_personal", "on")],
        )
        .await;
    assert_eq!(access.status, StatusCode::SEE_OTHER, "{}", access.body);
    let staff = s.app.browser();
    staff.sign_in("masked@example.jp", crate::helpers::PASSWORD).await;
    staff
}

/// Per order: whether its shipment has the file's number, whether it is 出荷済み, and how many
/// ship pushes it has queued.
async fn shipped_state(s: &Shop, upload: i64) -> Vec<(bool, bool, bool, i64)> {
    let rows: Vec<(bool, Option<String>, String, String, i64)> = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_as(
            "select r.applied, sh.tracking_number, r.tracking_number, o.internal_status,
                 (select count(*) from order_push op where op.order_pk = o.id and op.kind = 'ship')
             from tracking_upload_row r join shipment sh on sh.id = r.shipment_id join yahoo_order o on o.id = r.order_pk
             where r.upload_id = $1 order by r.line_no",
        )
        .bind(upload)
        .fetch_all(p)
        .await
    })
    .unwrap();
    rows.into_iter()
        .map(|(applied, stored, wanted, status, ship_pushes)| {
            (applied, stored.as_deref() == Some(wanted.as_str()), status == "shipped", ship_pushes)
        })
        .collect()
}

/// A tracking upload's apply killed (SIGKILL) mid-way leaves every row applied once or not at
/// all, and applying the same upload again completes it; nothing is queued twice.
async fn a_killed_apply_leaves_each_row_once_or_not_at_all(backend: Backend) {
    let s = quiet(backend).await;
    s.sim
        .control(
            &format!("/_sim/sellers/{SELLER}/orders/generate"),
            json!({ "count": 1500, "seed": 33, "fraud_share": 0.0, "spread_hours": 24, "published": "order_time" }),
        )
        .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let scope = OrderScope::account(s.account);
    let pks: Vec<OrderPk> = s.ours().await.into_iter().map(|(o, _)| o.id).collect();
    let orders = orderdesk::db::shipping::orders(&s.app.db, &scope, &pks).await.unwrap();
    let fallback = orderdesk::db::shipping::Settings::default().fallback();
    let pairs: Vec<_> = orders.iter().map(|o| (o, &fallback)).collect();
    let shipments =
        orderdesk::db::shipping::ensure_shipments(&s.app.db, s.account, &pairs, orderdesk::db::now()).await.unwrap();
    let mut file = String::from("お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n");
    for (i, sh) in shipments.iter().enumerate() {
        file.push_str(&format!("{},0,0,{},2026/12/07\r\n", sh.management_no(), number(3_000_000 + i as u64)));
    }
    let preview = upload(&s, "issued.csv", sjis(&file)).await;
    let preview_path = preview.location().to_owned();
    let upload_id: i64 = preview_path.rsplit('/').next().unwrap().parse().unwrap();
    let total = shipments.len();

    // A second process applies it and is killed mid-way.
    let (mut serve, base) = crate::import::ServeProcess::start_listening(&s.app, 1);
    let there = crate::helpers::Browser { base, client: s.owner.client.clone(), jar: s.owner.jar.clone() };
    let apply_path = format!("{preview_path}/apply");
    let request = tokio::spawn(async move {
        there.submit(&preview_path, &apply_path, &[("ship_date", ""), ("unpaid_confirmed", "on")]).await
    });
    let mut seen = 0;
    for _ in 0..1000 {
        seen = shipped_state(&s, upload_id).await.iter().filter(|r| r.0).count();
        if seen > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    serve.kill();
    let _ = request.await;
    assert!(seen > 0, "the apply started");
    let after_kill = shipped_state(&s, upload_id).await;
    let applied = after_kill.iter().filter(|r| r.0).count();
    assert!(applied < total, "killed mid-way ({applied} of {total} applied)");
    for (i, (applied, has_number, shipped, ship_pushes)) in after_kill.iter().enumerate() {
        assert_eq!(*applied, *has_number, "row {i}: applied and stored together");
        assert_eq!(*has_number, *shipped, "row {i}: the number and 出荷済み together");
        assert_eq!(*ship_pushes, i64::from(*shipped), "row {i}: its push once or not at all");
    }

    // The same upload applied again completes it, once.
    let preview_path = format!("/shipping/tracking/{upload_id}");
    let again = s
        .owner
        .submit(&preview_path, &format!("{preview_path}/apply"), &[("ship_date", ""), ("unpaid_confirmed", "on")])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let done = shipped_state(&s, upload_id).await;
    assert!(
        done.iter().all(|(applied, has_number, shipped, pushes)| *applied && *has_number && *shipped && *pushes == 1),
        "every row once"
    );
    let page = s.owner.get(&preview_path).await;
    assert_eq!(page.select_text("#count-applied"), vec![total.to_string()], "{}", page.body);
}

/// 出荷後の自動完了: a paid order whose ship status Yahoo has is completed the set number of
/// days after its number, once; an unpaid one (shipped with the merchant's confirmation) is
/// not; with the setting at 0 nothing is.
async fn a_paid_order_is_completed_days_after_shipping(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let (paid, _) = order(&s, json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1 })).await;
    let (unpaid, _) = order(&s, json!({ "items": item(), "pay_method": "payment_b1", "pay_status": 0 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let (paid, unpaid) = (pk_of(&s, &paid).await, pk_of(&s, &unpaid).await);
    let ids: Vec<String> = {
        let ours = s.ours().await;
        [paid, unpaid].iter().map(|pk| ours.iter().find(|(o, _)| o.id == *pk).unwrap().0.order_id.clone()).collect()
    };
    for pk in [paid, unpaid] {
        to_awaiting(&s, pk).await;
    }
    let lines = format!("{} {}\n{} {}", ids[0], number(41), ids[1], number(42));
    let manual = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("ship_date", ""), ("lines", &lines), ("unpaid_confirmed", "on")],
        )
        .await;
    assert_eq!(manual.select_text("#manual-results tbody tr").len(), 2, "{}", manual.body);
    s.app.pusher.drain().await.unwrap();
    let complete = orderdesk::shipping::complete::complete_due;

    // The numbers were set `days` ago.
    let numbered = |days: i64| {
        let at = orderdesk::db::now() - chrono::Duration::days(days) - chrono::Duration::minutes(1);
        let db = s.app.db.clone();
        async move {
            orderdesk::with_pool!(&db, |p| {
                sqlx::query("update shipment set tracking_set_at = $1").bind(at).execute(p).await.map(drop)
            })
            .unwrap()
        }
    };

    // Off by default.
    let now = orderdesk::db::now();
    numbered(10).await;
    assert_eq!(complete(&s.app.db, now).await.unwrap(), 0, "the setting is 0");

    // Three days: not before, then the paid order once.
    let path = format!("/stores/{}/shipping", s.store);
    let page = s.owner.get(&path).await;
    assert_eq!(page.select_attr("#complete_after_days", "value"), vec!["0"]);
    let bad = s.owner.submit(&path, &path, &[("default_service", "0"), ("complete_after_days", "99")]).await;
    assert!(bad.body.contains("0〜60"), "{}", bad.body);
    let mut settings = orderdesk::db::shipping::settings(&s.app.db, s.account, s.store).await.unwrap().0;
    assert_eq!(settings.complete_after_days, 0, "a refused form changes nothing");
    settings.complete_after_days = 3;
    let mapping = orderdesk::db::shipping::settings(&s.app.db, s.account, s.store).await.unwrap().1;
    orderdesk::db::shipping::save_settings(&s.app.db, s.account, s.store, &settings, &mapping, now).await.unwrap();
    numbered(2).await;
    assert_eq!(complete(&s.app.db, orderdesk::db::now()).await.unwrap(), 0, "not yet");
    numbered(3).await;
    assert_eq!(complete(&s.app.db, orderdesk::db::now()).await.unwrap(), 1);
    assert_eq!(status_of(&s, paid).await, "completed");
    assert_eq!(status_of(&s, unpaid).await, "shipped", "not paid: left at 出荷済み");
    assert_eq!(complete(&s.app.db, orderdesk::db::now()).await.unwrap(), 0, "once");
    s.app.pusher.drain().await.unwrap();
    let at_yahoo = s.snapshot(SELLER).await.into_iter().find(|o| o.order_id == ids[0]).unwrap();
    assert_eq!(at_yahoo.order_status, 5, "完了 at Yahoo");
    let pushes = orderdesk::db::outbox::of_store(&s.app.db, s.account, s.store).await.unwrap();
    assert!(pushes.iter().all(|p| p.state() == PushState::Done), "{pushes:?}");
}

/// The order list's 「この条件の全件を出力」: the filter chooses, not the ticks.
async fn the_filtered_list_exports_every_order_of_it(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(order(&s, json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1 })).await.0);
    }
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let mut pks = Vec::new();
    for id in &made {
        pks.push(pk_of(&s, id).await);
    }
    for pk in &pks[..2] {
        to_awaiting(&s, *pk).await;
    }
    let list = s.owner.get("/orders?status=awaiting_shipment").await;
    let href = list.select_attr("#labels-all", "formaction")[0].clone();
    assert!(href.starts_with("/shipping/labels?all=1&") && href.contains("status=awaiting_shipment"), "{href}");
    let done = s.owner.submit("/orders?status=awaiting_shipment", &href, &[("format", "b2")]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.select_text("#labels-done").join("").contains("2件"), "{}", done.body);
    let file =
        s.owner.client.get(format!("{}{}", s.owner.base, done.select_attr("#labels-download", "href")[0])).send();
    let bytes = file.await.unwrap().bytes().await.unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(text.contains(&made[0]) && text.contains(&made[1]) && !text.contains(&made[2]), "{text}");

    // A filter with no orders says so.
    let none = s.owner.submit("/orders", "/shipping/labels?all=1&status=cancelled", &[("format", "b2")]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.body.contains("この条件の注文はありません"), "{}", none.body);
}

/// 荷物を分ける: an order split into two parcels exports two label rows and takes a number per
/// parcel; Yahoo gets the first; a parcel that left cannot be removed, a shipped order not split.
async fn an_order_split_into_parcels_ships_each(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let (id, _) = order(&s, json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await;
    to_awaiting(&s, pk).await;
    let page_path = format!("/orders/{pk}");
    let action = format!("/orders/{pk}/parcels");
    let added = s.owner.submit(&page_path, &action, &[("action", "add")]).await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let saved = s
        .owner
        .submit(
            &page_path,
            &action,
            &[("action", "save"), ("parcel_no", "2"), ("packages", "2"), ("item_name", "割れ物")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let refused =
        s.owner.submit(&page_path, &action, &[("action", "save"), ("parcel_no", "2"), ("packages", "0")]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    let page = s.owner.get(&page_path).await;
    assert!(page.body.contains("個口数は1〜99"), "the refusal is said: {}", page.body);
    let rows = page.select_text("#shipments tbody tr");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(page.select_text("ol.history").join("").contains("荷物を2個に分けました"), "{}", page.body);

    let done = export(&s, &[pk], &[("format", "b2")]).await;
    assert!(done.select_text("#labels-done").join("").contains("2件"), "{}", done.body);
    let href = done.select_attr("#labels-download", "href")[0].clone();
    let bytes = s.owner.client.get(format!("{}{href}", s.owner.base)).send().await.unwrap().bytes().await.unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
    let nos: Vec<String> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').next().unwrap().trim_matches('"').to_owned())
        .collect();
    assert_eq!(nos.len(), 2, "a label per parcel: {text}");
    assert!(text.contains("割れ物"), "the parcel's 品名: {text}");
    let removed = s.owner.submit(&page_path, &action, &[("action", "remove"), ("parcel_no", "2")]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER);
    assert_eq!(s.owner.get(&page_path).await.select_text("#shipments tbody tr").len(), 2, "an exported parcel stays");

    let issued = format!(
        "お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n{},0,0,{},2026/12/07\r\n{},0,0,{},2026/12/07\r\n",
        nos[0],
        number(51),
        nos[1],
        number(52)
    );
    let preview = upload(&s, "issued.csv", sjis(&issued)).await;
    let path = preview.location().to_owned();
    assert_eq!(s.owner.get(&path).await.select_text("#count-matched"), vec!["2"]);
    s.owner.submit(&path, &format!("{path}/apply"), &[("ship_date", "")]).await;
    assert_eq!(status_of(&s, pk).await, "shipped");
    let page = s.owner.get(&page_path).await;
    let rows = page.select_text("#shipments tbody tr").join("\n");
    assert!(rows.contains(&number(51)) && rows.contains(&number(52)), "both numbers: {rows}");
    s.app.pusher.drain().await.unwrap();
    let at_yahoo = s.snapshot(SELLER).await.into_iter().find(|o| o.order_id == id).unwrap();
    assert_eq!(at_yahoo.ship_invoice_number1, number(51), "Yahoo has the first parcel's number");
    let ours = s.ours().await.into_iter().find(|(o, _)| o.id == pk).unwrap().0;
    assert_eq!(
        (ours.ship_status, ours.ship_invoice_number1.as_str()),
        (Some(3), number(51).as_str()),
        "our copy shows what Yahoo has once the push is done"
    );
    let pushes = orderdesk::db::outbox::of_store(&s.app.db, s.account, s.store).await.unwrap();
    let ships = pushes.iter().filter(|p| matches!(p.push(), Some(orderdesk::domain::status::Push::Ship { .. })));
    assert_eq!(ships.count(), 1, "one ship push: {pushes:?}");
    let late = s.owner.submit(&page_path, &action, &[("action", "add")]).await;
    assert_eq!(late.status, StatusCode::SEE_OTHER);
    assert!(s.owner.get(&page_path).await.body.contains("出荷済み・完了・キャンセルの注文の荷物は変えられません"));
    assert!(page.select_attr("#add-parcel", "action").is_empty(), "a shipped order offers no split");
}

/// A tag marked 出荷止め keeps an order off every shipping path, named as the reason, until it
/// is taken off; the list and the order show it.
async fn a_stop_tag_keeps_an_order_from_shipping(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let (id, _) = order(&s, json!({ "items": item(), "pay_method": "payment_a1", "pay_status": 1 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await;
    to_awaiting(&s, pk).await;

    let made =
        s.owner.submit("/tags", "/tags", &[("name", "住所確認中"), ("color", "red"), ("stops_shipping", "on")]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let again = s.owner.submit("/tags", "/tags", &[("name", "住所確認中")]).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("同じ名前のタグがあります"), "{}", again.body);
    let tag = orderdesk::db::tags::list(&s.app.db, s.account).await.unwrap()[0].clone();
    let page_path = format!("/orders/{pk}");
    let tags_path = format!("/orders/{pk}/tags");
    let tagged = s.owner.submit(&page_path, &tags_path, &[("tag", &tag.id.to_string()), ("action", "add")]).await;
    assert_eq!(tagged.status, StatusCode::SEE_OTHER);
    let page = s.owner.get(&page_path).await;
    assert!(page.select_text("#tags").join("").contains("住所確認中（出荷止め）"), "{}", page.body);
    assert!(page.select_text("ol.history").join("").contains("タグ「住所確認中」を付けました"));
    assert!(s.owner.get("/orders").await.select_text("table .tag").join("").contains("住所確認中"));
    let stopped = s.owner.get("/orders?tag=stop").await;
    assert!(stopped.body.contains(&id), "the 出荷止め filter lists it");
    assert!(!s.owner.get(&format!("/orders?tag=-{}", tag.id)).await.body.contains(&id), "without the tag: not listed");
    assert!(s.owner.get(&format!("/orders?tag={}", tag.id)).await.body.contains(&id));

    // Every shipping path names the tag and leaves the order as it is.
    let refused = export(&s, &[pk], &[("format", "b2")]).await;
    let excluded = refused.select_text("#excluded-table tbody tr").join("");
    assert!(excluded.contains("出荷止めのタグ「住所確認中」"), "{}", refused.body);
    let lines = format!("{id} {}", number(61));
    let manual = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("lines", &lines), ("unpaid_confirmed", "on")],
        )
        .await;
    assert!(manual.select_text("#manual-results tbody tr").join("").contains("住所確認中"), "{}", manual.body);
    let scope = OrderScope::account(s.account);
    let actor = orderdesk::db::orders::HistoryActor::User("owner@example.jp".into());
    let mut req = ChangeRequest::to(InternalStatus::Shipped);
    req.ship = Some(orderdesk::domain::status::ShipInput {
        company_code: "1001".into(),
        invoice_number: number(62),
        ship_date: chrono::Utc::now().date_naive(),
        ship_url: String::new(),
    });
    let by_status = orderdesk::db::changes::change_status(&s.app.db, &scope, pk, &req, &actor, orderdesk::db::now());
    assert!(matches!(by_status.await.unwrap(), Err(Refusal::Leave(_))), "the status path too");
    assert_eq!(status_of(&s, pk).await, "awaiting_shipment");

    let csv = s.owner.get("/orders.csv?encoding=utf8").await;
    assert!(csv.body.lines().next().unwrap().ends_with(",タグ"), "{}", csv.body);
    assert!(csv.body.contains("住所確認中"), "the CSV has the tag: {}", csv.body);

    // Taken off from the list, with a result per order: the order ships.
    let pk_text = pk.to_string();
    let tag_text = tag.id.to_string();
    let fields = [("order", pk_text.as_str()), ("tag", tag_text.as_str()), ("tag_action", "remove")];
    let bulk = s.owner.submit("/orders", "/orders/tags", &fields).await;
    assert_eq!(bulk.select_text("#bulk-tag-results tbody tr").len(), 1, "{}", bulk.body);
    assert!(bulk.select_text("#bulk-tag-results tbody tr").join("").contains("外しました"), "{}", bulk.body);
    let done = export(&s, &[pk], &[("format", "b2")]).await;
    assert!(done.select_text("#labels-done").join("").contains("1件"), "{}", done.body);

    // Tagged after its number was set, before Yahoo was told: the ship push stays here.
    let lines = format!("{id} {}", number(63));
    s.owner.submit("/shipping", "/shipping/tracking/manual", &[("carrier", "yamato"), ("lines", &lines)]).await;
    assert_eq!(status_of(&s, pk).await, "shipped");
    s.owner.submit(&page_path, &tags_path, &[("tag", &tag.id.to_string()), ("action", "add")]).await;
    s.app.pusher.drain().await.unwrap();
    let at_yahoo = s.snapshot(SELLER).await.into_iter().find(|o| o.order_id == id).unwrap();
    assert_ne!(at_yahoo.ship_status, 3, "Yahoo was not told");
    let page = s.owner.get(&page_path).await;
    assert!(page.select_text("ol.history").join("").contains("出荷連絡を送りませんでした"), "{}", page.body);
}

crate::on_both_backends!(
    a_killed_apply_leaves_each_row_once_or_not_at_all,
    a_merchant_ships_from_label_file_to_yahoo,
    a_held_order_takes_no_tracking_number_on_any_path,
    masked_staff_cannot_export_labels,
    a_paid_order_is_completed_days_after_shipping,
    the_filtered_list_exports_every_order_of_it,
    an_order_split_into_parcels_ships_each,
    a_stop_tag_keeps_an_order_from_shipping,
);
