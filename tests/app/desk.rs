//! The order desk (product.md §6) through real HTTP on both backends, with orders imported from
//! the simulator: the list's tabs, filters, search and paging; the bulk change with a result
//! per order and the fraud-hold rule; the detail page's status form and notes; the CSV export
//! of exactly the filtered list, in UTF-8 and Shift_JIS.

use std::collections::HashSet;

use orderdesk::{
    db::{imports::Trigger, orders::OrderRow},
    domain::{order::FRAUD_HOLD_REFUSAL, shipping, store::InternalStatus},
};
use reqwest::StatusCode;

use crate::{
    helpers::{Backend, Page},
    import::{Shop, shop},
    on_both_backends,
};

/// A shop with `n` imported orders (about a tenth of them held).
async fn desk(backend: Backend, n: usize) -> (Shop, Vec<OrderRow>) {
    let s = shop(backend, |_| {}).await;
    s.generate(n, 7).await;
    s.run_once(Trigger::Manual).await;
    let rows: Vec<OrderRow> = s.ours().await.into_iter().map(|(o, _)| o).collect();
    assert_eq!(rows.len(), n);
    (s, rows)
}

fn ids_on(page: &Page) -> Vec<String> {
    page.select_text("table.orders tbody td a.id")
}

/// Walks the list's "next" links from `path`, returning every order ID in order.
async fn walk(s: &Shop, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(p) = next {
        let page = s.owner.get(&p).await;
        assert_eq!(page.status, StatusCode::OK, "{p}: {}", page.body);
        out.extend(ids_on(&page));
        next = link(&page, "next");
    }
    out
}

/// The pager's link `rel` (next or prev), as a path.
fn link(page: &Page, rel: &str) -> Option<String> {
    page.select_attr(&format!("nav.pager a[rel={rel}]"), "href").into_iter().next().map(|h| h.replace("&amp;", "&"))
}

/// Walks forward to the last page, then back with 前へ: each page going back shows what it
/// showed going forward, and says which rows those are.
async fn walk_back(s: &Shop, path: &str, total: usize) {
    let mut forward = Vec::new();
    let mut at = Some(path.to_owned());
    let mut last = String::new();
    while let Some(p) = at {
        let page = s.owner.get(&p).await;
        let ids = ids_on(&page);
        let first = forward.iter().map(Vec::len).sum::<usize>() + 1;
        let shown = page.select_text("#rows-shown").join("");
        assert_eq!(shown, format!("{}〜{}件目（全{}件）", first, first + ids.len() - 1, total), "{p}");
        forward.push(ids);
        at = link(&page, "next");
        last = p;
    }
    let mut page = s.owner.get(&last).await;
    for expected in forward.iter().rev().skip(1) {
        let prev = link(&page, "prev").expect("前へ on every page but the first");
        page = s.owner.get(&prev).await;
        assert_eq!(&ids_on(&page), expected, "{prev}");
    }
    assert!(link(&page, "prev").is_none(), "the first page has no 前へ");
    assert!(page.select_text("#rows-shown").join("").starts_with("1〜50件目"));
}

fn tab_count(page: &Page, label: &str) -> i64 {
    let tabs = page.select_text("nav.tabs a");
    let tab = tabs.iter().find(|t| t.starts_with(label)).unwrap_or_else(|| panic!("no tab {label}: {tabs:?}"));
    tab.rsplit(' ').next().unwrap().parse().unwrap()
}

async fn list_filters_search_and_paging(backend: Backend) {
    let (s, rows) = desk(backend, 130).await;

    // Paging walks every order once, newest first (order time, then id).
    let all = walk(&s, "/orders").await;
    assert_eq!(all.len(), rows.len(), "every order once");
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), rows.len(), "no order twice");
    let mut expected = rows.clone();
    expected.sort_by_key(|o| std::cmp::Reverse((o.order_time, o.id)));
    assert_eq!(all, expected.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>());
    // Oldest first is the exact reverse.
    let mut oldest = walk(&s, "/orders?sort=ordered_asc").await;
    oldest.reverse();
    assert_eq!(oldest, all);
    // 前へ goes back page by page, and each page says which rows it shows.
    walk_back(&s, "/orders", rows.len()).await;
    walk_back(&s, "/orders?sort=ordered_asc", rows.len()).await;

    // The tabs count what is there (from the counters the triggers keep).
    let page = s.owner.get("/orders").await;
    assert_eq!(tab_count(&page, "すべて"), rows.len() as i64);
    assert_eq!(tab_count(&page, "新規受付"), rows.len() as i64);

    // The fraud-hold queue: exactly the held orders (1 and 3), with how long they are held.
    let held: HashSet<String> = rows.iter().filter(|o| o.fraud_hold().is_held()).map(|o| o.order_id.clone()).collect();
    assert!(!held.is_empty(), "the generator holds some orders");
    let queue = walk(&s, "/orders?hold=held").await;
    assert_eq!(queue.iter().cloned().collect::<HashSet<_>>(), held);
    let page = s.owner.get("/orders?hold=held").await;
    assert!(page.body.contains("保留期間"), "{}", page.body);
    // The tabs count what the filter shows, not the whole store.
    assert_eq!(tab_count(&page, "すべて"), held.len() as i64, "tab counts follow the filter");
    assert!(s.owner.get("/orders").await.body.contains(&format!("不正保留の注文が{}件あります", held.len())));

    // Search: a buyer's family name, typed with a space before it; kana typed in hiragana; a
    // phone number with its hyphens; the start of an order ID.
    let someone = &rows[17];
    let by_name: Vec<&OrderRow> = rows
        .iter()
        .filter(|o| {
            format!("{}{}", o.bill_last_name, o.bill_first_name).starts_with(&someone.bill_last_name)
                || format!("{}{}", o.ship_last_name, o.ship_first_name).starts_with(&someone.bill_last_name)
        })
        .collect();
    let found = walk(&s, &format!("/orders?q=%20{}", urlencode(&someone.bill_last_name))).await;
    assert_eq!(
        found.iter().cloned().collect::<HashSet<_>>(),
        by_name.iter().map(|o| o.order_id.clone()).collect::<HashSet<_>>(),
        "search by family name"
    );
    if !someone.bill_last_name_kana.is_empty() {
        let hiragana: String = someone
            .bill_last_name_kana
            .chars()
            .map(|c| if ('\u{30A1}'..='\u{30F6}').contains(&c) { char::from_u32(c as u32 - 0x60).unwrap() } else { c })
            .collect();
        let found = walk(&s, &format!("/orders?q={}", urlencode(&hiragana))).await;
        assert!(found.contains(&someone.order_id), "hiragana finds the katakana reading");
    }
    if !someone.bill_phone.is_empty() {
        let found = walk(&s, &format!("/orders?q={}", urlencode(&someone.bill_phone))).await;
        assert!(found.contains(&someone.order_id), "the phone number as written");
    }
    let found = walk(&s, &format!("/orders?q={}", urlencode(&someone.order_id))).await;
    assert_eq!(found, vec![someone.order_id.clone()]);
    let found = walk(&s, "/orders?q=no-such-thing-anywhere").await;
    assert!(found.is_empty());

    // A search matching more than a page (order IDs 10000001–10000099 of the store) pages in
    // the list's order: alone, with another filter (the held queue), and oldest first.
    let (seller, _) = someone.order_id.rsplit_once('-').expect("seller-number");
    let q = urlencode(&format!("{seller}-100000"));
    let matching: Vec<&OrderRow> =
        expected.iter().filter(|o| o.order_id.starts_with(&format!("{seller}-100000"))).collect();
    assert!(matching.len() > 50, "more than one page: {}", matching.len());
    let ids = |v: &[&OrderRow]| v.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>();
    assert_eq!(walk(&s, &format!("/orders?q={q}")).await, ids(&matching));
    walk_back(&s, &format!("/orders?q={q}"), matching.len()).await;
    let searched = s.owner.get(&format!("/orders?q={q}")).await;
    assert_eq!(tab_count(&searched, "すべて"), matching.len() as i64);
    let held_matching: Vec<&OrderRow> = matching.iter().copied().filter(|o| o.fraud_hold().is_held()).collect();
    assert_eq!(walk(&s, &format!("/orders?hold=held&q={q}")).await, ids(&held_matching));
    let mut oldest = walk(&s, &format!("/orders?sort=ordered_asc&q={q}")).await;
    oldest.reverse();
    assert_eq!(oldest, ids(&matching));

    // Order date range in JST days; an unreadable date is said in Japanese and left out.
    let day = (someone.order_time + chrono::Duration::hours(9)).date_naive();
    let on_day: HashSet<String> = rows
        .iter()
        .filter(|o| (o.order_time + chrono::Duration::hours(9)).date_naive() == day)
        .map(|o| o.order_id.clone())
        .collect();
    let found = walk(&s, &format!("/orders?ordered_from={day}&ordered_to={day}")).await;
    assert_eq!(found.into_iter().collect::<HashSet<_>>(), on_day);
    let page = s.owner.get("/orders?ordered_from=2026-13-45").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("は日付として読めません"), "{}", page.body);
    assert_eq!(ids_on(&page).len(), 50, "the rest of the list still shows");

    // A cursor that is not ours starts from the top with a message, never an error.
    let page = s.owner.get("/orders?after=garbage").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("先頭から表示しています"));
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Submits the list's bulk form for `orders`.
async fn bulk(s: &Shop, fields: &[(&str, &str)]) -> Page {
    let page = s.owner.get("/orders").await;
    let token = page.csrf_token().unwrap();
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    s.owner.post_raw("/orders/bulk", &all, &[]).await
}

/// Not held, 処理中 at Yahoo, and not waiting for a prepayment: an order the desk may ship. The
/// import's order of IDs follows the order orderInfo answers come back in, so tests pick by
/// these facts, never by position.
fn shippable(o: &OrderRow) -> bool {
    let pay_status = o.pay_status.and_then(|v| u8::try_from(v).ok());
    !o.fraud_hold().is_held()
        && o.order_status == 2
        && shipping::unpaid(shipping::DEFAULT_PREPAY_METHODS, &o.pay_method, &o.pay_method_name, pay_status).is_none()
}

async fn status_of(s: &Shop, order_id: &str) -> InternalStatus {
    s.ours().await.into_iter().find(|(o, _)| o.order_id == order_id).unwrap().0.internal_status()
}

async fn bulk_change_refuses_held_orders_and_retries(backend: Backend) {
    let (s, rows) = desk(backend, 40).await;
    let held = rows.iter().find(|o| o.fraud_hold_status == 1).expect("a held order");
    let free: Vec<&OrderRow> = rows.iter().filter(|o| shippable(o)).take(3).collect();
    let (held_pk, f0, f1, f2) =
        (held.id.to_string(), free[0].id.to_string(), free[1].id.to_string(), free[2].id.to_string());

    let page = bulk(
        &s,
        &[("order", &held_pk), ("order", &f0), ("order", &f1), ("order", &f2), ("target", "awaiting_shipment")],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let refused = page.select_text("#bulk-results tr.result-refused");
    assert_eq!(refused.len(), 1, "{}", page.body);
    assert!(refused[0].contains(&held.order_id) && refused[0].contains(FRAUD_HOLD_REFUSAL), "{refused:?}");
    assert_eq!(page.select_text("#bulk-results tr.result-done").len(), 3);
    assert_eq!(status_of(&s, &held.order_id).await, InternalStatus::New, "the held order did not move");
    assert_eq!(status_of(&s, &free[0].order_id).await, InternalStatus::AwaitingShipment);
    // The retry form holds exactly the refused order, and does not offer the refused target
    // as the choice already made; the summary says 成功 / 拒否.
    assert_eq!(page.select_attr("#retry input[name=order]", "value"), vec![held_pk.clone()]);
    assert_eq!(page.select_attr("#retry-target option[selected]", "value"), vec![String::new()]);
    // The fraud-hold rule refuses the same change every time: it is not offered again.
    let offered = page.select_attr("#retry-target option", "value");
    assert!(
        !offered.contains(&"awaiting_shipment".to_owned()) && offered.contains(&"cancelled".to_owned()),
        "{offered:?}"
    );
    let summary = page.select_text("#bulk-summary").join("");
    assert!(summary.contains("成功 3件") && summary.contains("拒否 1件"), "{summary}");

    // Shipping from the list asks for tracking numbers first, then refuses the held order.
    let step = bulk(&s, &[("order", &held_pk), ("order", &f0), ("target", "shipped")]).await;
    assert!(step.body.contains("伝票番号を入力してください"), "{}", step.body);
    // The held order is listed without a field for its number, saying why.
    assert!(step.select_attr(&format!("#invoice_{held_pk}"), "name").is_empty(), "{}", step.body);
    assert_eq!(step.select_text(".held-no-invoice").len(), 1);
    let invoice_held = format!("invoice_{held_pk}");
    let invoice_free = format!("invoice_{f0}");
    let done = bulk(
        &s,
        &[
            ("order", &held_pk),
            ("order", &f0),
            ("target", "shipped"),
            ("ship_step", "1"),
            ("ship_company", "1001"),
            ("ship_date", "2026-11-30"),
            (&invoice_held, "1111-2222-3333"),
            (&invoice_free, "4444-5555-6666"),
        ],
    )
    .await;
    let refused = done.select_text("#bulk-results tr.result-refused");
    assert_eq!(refused.len(), 1, "{}", done.body);
    assert!(refused[0].contains(FRAUD_HOLD_REFUSAL));
    assert_eq!(status_of(&s, &held.order_id).await, InternalStatus::New);
    assert_eq!(status_of(&s, &free[0].order_id).await, InternalStatus::Shipped);
    // Sent without a number (the step gives a held order no field): refused for the hold, and
    // 出荷済み is not offered again.
    let blank = bulk(
        &s,
        &[
            ("order", &held_pk),
            ("target", "shipped"),
            ("ship_step", "1"),
            ("ship_company", "1001"),
            ("ship_date", "2026-11-30"),
        ],
    )
    .await;
    let refused = blank.select_text("#bulk-results tr.result-refused").join("");
    assert!(refused.contains(FRAUD_HOLD_REFUSAL), "{refused}");
    assert!(!blank.select_attr("#retry-target option", "value").contains(&"shipped".to_owned()));

    // Retrying the refused one as a cancel (with a reason) is accepted.
    let page = bulk(&s, &[("order", &held_pk), ("target", "cancelled")]).await;
    assert!(page.body.contains("キャンセル理由を選んでください"), "a cancel needs its reason");
    assert_eq!(status_of(&s, &held.order_id).await, InternalStatus::New);
    let page = bulk(&s, &[("order", &held_pk), ("target", "cancelled"), ("cancel_reason", "170")]).await;
    assert_eq!(page.select_text("#bulk-results tr.result-done").len(), 1, "{}", page.body);
    assert_eq!(status_of(&s, &held.order_id).await, InternalStatus::Cancelled);

    // The tab counts follow every change.
    let page = s.owner.get("/orders").await;
    assert_eq!(tab_count(&page, "出荷待ち"), 2);
    assert_eq!(tab_count(&page, "出荷済み"), 1);
    assert_eq!(tab_count(&page, "キャンセル"), 1);
    assert_eq!(tab_count(&page, "新規受付"), rows.len() as i64 - 4);
    // The bulk action is in the audit log.
    assert!(s.owner.get("/audit").await.body.contains("ステータス一括変更"));
}

async fn detail_page_changes_status_through_the_rule(backend: Backend) {
    let (s, rows) = desk(backend, 30).await;
    let held = rows.iter().find(|o| o.fraud_hold_status == 1).expect("a held order");
    let path = format!("/orders/{}", held.id);
    let page = s.owner.get(&path).await;
    // A held order offers only キャンセル.
    assert_eq!(page.select_attr("#target option[value]:not([value=''])", "value"), vec!["cancelled".to_string()]);
    // A forged form asking to ship it is refused by the server, and nothing changes.
    let r = s
        .owner
        .submit(
            &path,
            &format!("{path}/status"),
            &[("target", "shipped"), ("ship_company", "1001"), ("ship_invoice", "123"), ("ship_date", "2026-11-30")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = s.owner.get(&path).await;
    assert!(page.body.contains(FRAUD_HOLD_REFUSAL), "{}", page.body);
    assert_eq!(status_of(&s, &held.order_id).await, InternalStatus::New);
    // Cancelling it works and is written to its history.
    s.owner.submit(&path, &format!("{path}/status"), &[("target", "cancelled"), ("cancel_reason", "170")]).await;
    let page = s.owner.get(&path).await;
    assert_eq!(page.select_text("#internal-status"), vec!["キャンセル".to_string()]);
    assert!(page.body.contains("ステータスを「新規受付」から「キャンセル」に変更しました"), "{}", page.body);

    // A free order: 出荷済み without a tracking number is refused with a message.
    let free = rows.iter().find(|o| shippable(o)).unwrap();
    let path = format!("/orders/{}", free.id);
    s.owner.submit(&path, &format!("{path}/status"), &[("target", "shipped"), ("ship_date", "2026-11-30")]).await;
    assert!(s.owner.get(&path).await.body.contains("伝票番号"), "the ship form asks for the tracking number");
    assert_eq!(status_of(&s, &free.order_id).await, InternalStatus::New);

    // 社内メモ: saved, shown, in the history; too long is refused and changes nothing.
    s.owner.submit(&path, &format!("{path}/note"), &[("note", "  ギフト包装をお忘れなく  ")]).await;
    let page = s.owner.get(&path).await;
    assert_eq!(page.select_text("textarea#note"), vec!["ギフト包装をお忘れなく".to_string()]);
    assert!(page.body.contains("社内メモを更新しました"));
    let long = "あ".repeat(2001);
    s.owner.submit(&path, &format!("{path}/note"), &[("note", &long)]).await;
    let page = s.owner.get(&path).await;
    assert!(page.body.contains("2,000文字以内"));
    assert_eq!(page.select_text("textarea#note"), vec!["ギフト包装をお忘れなく".to_string()]);
}

async fn csv_export_is_exactly_the_filtered_list(backend: Backend) {
    let (s, rows) = desk(backend, 1200).await;
    // Unfiltered, UTF-8 with BOM: every order, in the list's order, more than one chunk.
    let r = s.owner.client.get(format!("{}/orders.csv?encoding=utf8", s.owner.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "a BOM for Excel");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let ids: Vec<String> = text.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(ids, walk(&s, "/orders").await, "the export is the list, in the list's order");
    assert!(text.starts_with("注文ID,ストア,注文日時"));

    // Filtered (held orders of one store), Shift_JIS: the same orders as the filtered list.
    let filter = format!("hold=held&store={}", s.store.0);
    let r = s.owner.client.get(format!("{}/orders.csv?{filter}&encoding=sjis", s.owner.base)).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().contains("shift_jis"));
    let bytes = r.bytes().await.unwrap();
    let (text, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
    assert!(!had_errors, "valid Shift_JIS");
    let ids: Vec<String> = text.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(ids, walk(&s, &format!("/orders?{filter}")).await);
    assert_eq!(ids.len(), rows.iter().filter(|o| o.fraud_hold().is_held()).count());
    assert!(text.contains("審査中") || text.contains("不正確定"));
    // The export is audited.
    assert!(s.owner.get("/audit").await.body.contains("受注CSV出力"));
}

on_both_backends!(
    list_filters_search_and_paging,
    bulk_change_refuses_held_orders_and_retries,
    detail_page_changes_status_through_the_rule,
    csv_export_is_exactly_the_filtered_list,
);
