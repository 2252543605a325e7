//! 納品書 and picking lists (issue 28): golden PDFs read back with pdftotext (poppler-utils),
//! the fraud-hold rule and the other exclusions of a print batch, masking, settings and bad
//! input. Every test runs on both backends.

use orderdesk::domain::order::FRAUD_HOLD_REFUSAL;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Browser, Page},
    import::Shop,
    shipping::{order, pk_of, quiet},
};

/// The text of a PDF, page by page, as pdftotext reads it (`-layout`).
pub(crate) fn pdf_pages(pdf: &[u8]) -> Vec<String> {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF: {:?}", String::from_utf8_lossy(&pdf[..pdf.len().min(200)]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.pdf");
    std::fs::write(&path, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (Debian poppler-utils) is installed: .ci/run installs it");
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    pages
}

/// Presses 納品書 or ピッキングリスト on the order list with these orders ticked.
pub(crate) async fn print(b: &Browser, kind: &str, pks: &[i64], extra: &[(&str, &str)]) -> Page {
    let ids: Vec<String> = pks.iter().map(i64::to_string).collect();
    let mut fields: Vec<(&str, &str)> = ids.iter().map(|i| ("order", i.as_str())).collect();
    fields.push(("document", kind));
    fields.extend_from_slice(extra);
    b.submit("/orders", "/documents", &fields).await
}

/// The batch a print made (its page after the redirect) and its PDF's bytes.
pub(crate) async fn batch_and_pdf(b: &Browser, made: &Page) -> (Page, Vec<u8>) {
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    let page = b.get(made.location()).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let r = b.client.get(format!("{}{}/pdf", b.base, made.location())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let pdf = r.bytes().await.unwrap().to_vec();
    // ORDERDESK_KEEP_PDFS=<folder> keeps each PDF a test prints (to look at, and to render to
    // PNG with pdftoppm: docs/screenshots).
    if let Ok(dir) = std::env::var("ORDERDESK_KEEP_PDFS") {
        let name = made.location().trim_start_matches('/').replace('/', "-");
        let title = page.select_text("h1").join("");
        let kind = if title.starts_with("納品書") { "slip" } else { "picking" };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{kind}-{name}-{}.pdf", std::process::id())), &pdf)
            .unwrap();
    }
    (page, pdf)
}

async fn save_document_settings(s: &Shop, registration: &str, kind: &str) -> Page {
    let path = format!("/stores/{}/documents", s.store);
    s.owner
        .submit(
            &path,
            &path,
            &[
                ("seller_name", "テスト商店株式会社"),
                ("address", "東京都千代田区千代田1-1"),
                ("phone", "03-1234-5678"),
                ("registration_number", registration),
                ("registration_kind", kind),
                ("message", "このたびはご注文ありがとうございます。"),
                ("print_comments", "on"),
                ("paper", "a4"),
            ],
        )
        .await
}

fn line(item_id: &str, title: &str, price: i64, quantity: i64, rate: u8) -> Value {
    json!({ "item_id": item_id, "title": title, "unit_price": price, "quantity": quantity, "tax_ratio": rate })
}

/// The golden orders: an 8 %/10 % mix with a coupon and points, a social gift, 80 lines, a
/// held one, and one with an emoji, a 100-character title and a zero-price line.
struct Golden {
    mix: (String, i64),
    gift: (String, i64),
    long: (String, i64),
    held: (String, i64),
    odd: (String, i64),
}

async fn golden(s: &Shop) -> Golden {
    let paid = |mut v: Value| {
        v["pay_method"] = json!("payment_a1");
        v["pay_status"] = json!(1);
        v["pay_charge"] = json!(0);
        v
    };
    let (mix, _) = order(
        s,
        paid(json!({
            "items": [
                { "item_id": "rice", "sub_code": "rice-5", "title": "新潟県産コシヒカリ 5kg", "unit_price": 2160, "quantity": 2,
                  "tax_ratio": 8, "options": [{ "name": "精米", "value": "白米" }] },
                line("towel", "今治タオル フェイスタオル", 3300, 1, 10),
            ],
            "ship_charge": 660,
            "total_coupon_discount": 500,
            "use_point": 300,
            "buyer_comments": "不在時は宅配ボックスへお願いします。",
        })),
    )
    .await;
    let (gift, _) = order(
        s,
        paid(json!({ "items": [line("towel-gift", "ギフト用 今治タオル 木箱入り", 5500, 1, 10)], "ship_charge": 0, "social_gift_type": 1 })),
    )
    .await;
    let items: Vec<Value> =
        (0..80).map(|i| line(&format!("part-{i:02}"), &format!("交換用パーツ{i:02}"), 110, 1, 10)).collect();
    let (long, _) = order(s, paid(json!({ "items": items, "ship_charge": 0 }))).await;
    let (held, _) =
        order(s, paid(json!({ "items": [line("mug", "マグカップ", 1100, 1, 10)], "fraud_hold_status": 1 }))).await;
    let long_title = "長い商品名".repeat(20);
    let (odd, _) = order(
        s,
        paid(json!({
            "items": [
                line("cat-mug", "ネコ🐈マグカップ", 1650, 1, 10),
                line("long", &long_title, 1000, 1, 10),
                line("free", "無料サンプル", 0, 1, 10),
            ],
            "ship_charge": 0,
        })),
    )
    .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let mut out = Vec::new();
    for id in [mix, gift, long, held, odd] {
        let pk = pk_of(s, &id).await.0;
        out.push((id, pk));
    }
    let mut it = out.into_iter();
    Golden {
        mix: it.next().unwrap(),
        gift: it.next().unwrap(),
        long: it.next().unwrap(),
        held: it.next().unwrap(),
        odd: it.next().unwrap(),
    }
}

/// The pages of one order's slip.
fn slip_pages<'a>(pages: &'a [String], order_id: &str) -> Vec<&'a String> {
    pages.iter().filter(|p| p.contains(order_id)).collect()
}

async fn golden_slips_and_picking_list(backend: Backend) {
    let s = quiet(backend).await;
    assert_eq!(save_document_settings(&s, "T7000012050002", "corporate").await.status, StatusCode::SEE_OTHER);
    let g = golden(&s).await;
    let all = [g.mix.1, g.gift.1, g.long.1, g.held.1, g.odd.1];

    // 納品書: the batch page lists what is printed and what is not, with the rule's message.
    let made = print(&s.owner, "slip", &all, &[]).await;
    let (page, pdf) = batch_and_pdf(&s.owner, &made).await;
    let excluded = page.select_text("#excluded-table tbody tr").join("\n");
    assert!(excluded.contains(&g.held.0) && excluded.contains(FRAUD_HOLD_REFUSAL), "{}", page.body);
    let printed = page.select_text("#printed-table tbody tr").join("\n");
    for id in [&g.mix.0, &g.gift.0, &g.long.0, &g.odd.0] {
        assert!(printed.contains(id.as_str()), "{id} is printed: {printed}");
    }
    assert!(!printed.contains(&g.held.0));

    let pages = pdf_pages(&pdf);
    let text = pages.join("\n");
    assert!(!text.contains(&g.held.0), "the held order is not in the PDF");
    // The mix: 登録番号, ※ on the 8 % line, per-rate totals and taxes to the yen.
    // 8 %: 2,160 × 2 = 4,320; 10 %: 3,300 + 送料 660 = 3,960. Coupon 500 split 4,320 : 3,960:
    // 8 % ⌊500 × 4320 / 8280⌋ = 260, 10 % 240. 10 %: 3,720 → tax ⌊338.2⌋ = 338;
    // 8 %: 4,060 → tax ⌊300.7⌋ = 300. Points 300 are a payment: billed 7,480 = TotalPrice.
    let mix = slip_pages(&pages, &g.mix.0);
    assert_eq!(mix.len(), 1, "one page");
    let mix = mix[0];
    for want in [
        "登録番号 T7000012050002",
        "テスト商店株式会社",
        "新潟県産コシヒカリ 5kg ※",
        "精米: 白米",
        "3,720円（内消費税 338円）",
        "4,060円（内消費税 300円）",
        "クーポン値引き",
        "-500円",
        "ポイント利用",
        "-300円",
        "7,480円",
        "※は軽減税率（8%）対象商品です。",
        "不在時は宅配ボックスへお願いします。",
    ] {
        assert!(mix.contains(want), "the mix's slip has 「{want}」:\n{mix}");
    }
    assert!(!mix.contains("今治タオル フェイスタオル ※"), "only the 8 % line is marked");
    // pdftotext reads 「1 / 1」 without its spaces.
    assert!(mix.replace(' ', "").contains("1/1"), "{mix}");
    // The gift: no prices, the giver's masked name said plainly.
    let gift = slip_pages(&pages, &g.gift.0);
    assert_eq!(gift.len(), 1);
    assert!(gift[0].contains("納品書（ギフト）") && gift[0].contains("ギフト用 今治タオル"), "{}", gift[0]);
    assert!(!gift[0].contains('円') && !gift[0].contains("5,500"), "no prices on a gift:\n{}", gift[0]);
    assert!(gift[0].contains("（ギフトのため非表示）") && !gift[0].contains("****"), "{}", gift[0]);
    // 80 lines: continued with the header repeated and numbered pages.
    let long = slip_pages(&pages, &g.long.0);
    let n = long.len();
    assert!(n >= 2, "80 lines take more than a page");
    for (i, p) in long.iter().enumerate() {
        assert!(p.contains("商品名") && p.replace(' ', "").contains(&format!("{}/{n}", i + 1)), "page {i}:\n{p}");
    }
    assert!(long[1].contains("納品書（続き）"));
    let long_text = long.iter().map(|p| p.as_str()).collect::<String>();
    for i in 0..80 {
        assert!(long_text.contains(&format!("交換用パーツ{i:02}")), "line {i} is printed");
    }
    assert!(long_text.contains("8,800円"), "80 × 110");
    // An emoji prints as 〓, a 100-character title wraps (all of it is there), 0 yen is 0円.
    let odd = slip_pages(&pages, &g.odd.0)[0];
    assert!(odd.contains("ネコ〓マグカップ"), "{odd}");
    // The title's first line carries the line's prices; without them the lines read as one.
    let squeezed: String =
        odd.chars().filter(|c| !c.is_whitespace()).collect::<String>().replace("1,000円11,000円", "");
    assert!(squeezed.contains(&"長い商品名".repeat(20)), "the whole title wraps onto lines:\n{odd}");
    assert!(odd.contains("無料サンプル") && odd.contains("0円"));

    // Printing is on each printed order's 履歴, not on the held one's.
    let history = s.owner.get(&format!("/orders/{}", g.mix.1)).await.select_text("ol.history").join("\n");
    assert!(history.contains("納品書を印刷しました（印刷バッチ #"), "{history}");
    let held_history = s.owner.get(&format!("/orders/{}", g.held.1)).await.select_text("ol.history").join("\n");
    assert!(!held_history.contains("印刷しました"));

    // Picking list: 棚番 from the stock page, summed lines in shelf order, the held order out.
    for (code, location) in [("rice:rice-5", "A-10"), ("towel", "A-2"), ("part-00", "Z-1")] {
        let set = s.owner.submit("/stock", "/stock/locations", &[("item_code", code), ("location", location)]).await;
        assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    }
    let stock = s.owner.get("/stock").await;
    assert!(stock.select_text("#locations").join("").contains("登録済み: 3件"), "{}", stock.body);
    let made = print(&s.owner, "picking", &all, &[]).await;
    let (page, pdf) = batch_and_pdf(&s.owner, &made).await;
    assert!(page.select_text("#excluded-table").join("").contains(FRAUD_HOLD_REFUSAL));
    let pages = pdf_pages(&pdf);
    let text = pages.join("\n");
    assert!(!text.contains(&g.held.0), "the held order is not picked");
    let batch_no = made.location().rsplit('/').next().unwrap();
    for p in &pages {
        assert!(p.contains(&format!("印刷バッチ #{batch_no}")), "every page names the batch:\n{p}");
    }
    let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("「{needle}」 is on the list:\n{text}"));
    // A-2 (towel) before A-10 (rice) before Z-1 (part-00), then lines without a 棚番 by code.
    assert!(at("今治タオル フェイスタオル") < at("新潟県産コシヒカリ"));
    assert!(at("新潟県産コシヒカリ") < at("交換用パーツ00"));
    assert!(at("交換用パーツ00") < at("交換用パーツ01"));
    assert!(text.contains("注文ごとの個口") && text.contains(&g.long.0));
    // No personal data on a picking list.
    let ours = s.ours().await;
    let mix_row = &ours.iter().find(|(o, _)| o.order_id == g.mix.0).unwrap().0;
    assert!(!text.contains(&mix_row.ship_last_name) && !text.contains(&mix_row.ship_phone));
}

async fn masked_staff_prints_picking_lists_only(backend: Backend) {
    let s = quiet(backend).await;
    let (id, _) = order(
        &s,
        json!({ "items": [line("mug", "マグカップ", 1100, 1, 10)], "pay_method": "payment_a1", "pay_status": 1 }),
    )
    .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await.0;
    let staff = crate::shipping::masked_staff(&s).await;
    let refused = print(&staff, "slip", &[pk], &[]).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.select_text("#documents-message").join("").contains("個人情報"), "{}", refused.body);
    // The owner's 納品書 batch is refused to them too, PDF and all.
    let owners = print(&s.owner, "slip", &[pk], &[]).await;
    let pdf = staff.get(&format!("{}/pdf", owners.location())).await;
    assert_eq!(pdf.status, StatusCode::FORBIDDEN, "{}", pdf.body);
    // A picking list has no personal data: they print it.
    let made = print(&staff, "picking", &[pk], &[]).await;
    let (_, pdf) = batch_and_pdf(&staff, &made).await;
    let text = pdf_pages(&pdf).join("\n");
    assert!(text.contains("マグカップ") && text.contains(&id));
    let row = s.ours().await.into_iter().find(|(o, _)| o.order_id == id).unwrap().0;
    assert!(!text.contains(&row.ship_last_name) && !text.contains(&row.bill_last_name));
}

async fn bad_input_gets_a_message_and_prints_nothing(backend: Backend) {
    let s = quiet(backend).await;
    let (id, _) = order(
        &s,
        json!({ "items": [line("mug", "マグカップ", 1100, 1, 10)], "ship_charge": 0, "pay_charge": 0,
                "total_coupon_discount": 100, "pay_method": "payment_a1", "pay_status": 1 }),
    )
    .await;
    let (unpaid, _) = order(
        &s,
        json!({ "items": [line("cup", "カップ", 1100, 1, 10)], "pay_method": "payment_b1", "pay_status": 0 }),
    )
    .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await.0;
    let unpaid_pk = pk_of(&s, &unpaid).await.0;
    let batches = || async {
        orderdesk::with_pool!(&s.app.db, |p| {
            sqlx::query_scalar::<_, i64>("select count(*) from print_batch").fetch_one(p).await
        })
        .unwrap()
    };

    // Nothing chosen; more than the limit, with the limit said.
    let none = print(&s.owner, "slip", &[], &[]).await;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(none.select_text("#documents-message").join("").contains("注文を選んでください"));
    let many: Vec<i64> = (1..=1001).collect();
    let too_many = print(&s.owner, "picking", &many, &[]).await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    let said = too_many.select_text("#documents-message").join("");
    assert!(said.contains("1000件まで") && said.contains("1001件"), "{said}");
    assert_eq!(batches().await, 0, "nothing recorded");

    // An unpaid bank transfer is left out unless confirmed.
    let made = print(&s.owner, "picking", &[unpaid_pk], &[]).await;
    let page = s.owner.get(made.location()).await;
    assert!(page.select_text("#excluded-table").join("").contains("入金前"), "{}", page.body);
    assert!(page.select_text("#documents-empty").join("").contains("印刷できる注文がありません"));
    assert_eq!(s.owner.get(&format!("{}/pdf", made.location())).await.status, StatusCode::NOT_FOUND);
    let made = print(&s.owner, "picking", &[unpaid_pk], &[("unpaid_confirmed", "on")]).await;
    assert!(s.owner.get(made.location()).await.select_text("#printed-table").join("").contains(&unpaid));

    // A stored order whose amounts no longer add up to TotalPrice (imported before the coupon
    // was read, say) is listed with both sums, never printed wrong.
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update yahoo_order set coupon_discount = 0 where id = $1").bind(pk).execute(p).await.map(|_| ())
    })
    .unwrap();
    let made = print(&s.owner, "slip", &[pk], &[]).await;
    let page = s.owner.get(made.location()).await;
    let why = page.select_text("#excluded-table").join("");
    assert!(why.contains("一致しません") && why.contains("1,100円") && why.contains("1,000円"), "{}", page.body);

    // Settings: a 登録番号 whose check digit is wrong is refused and nothing is saved; a sole
    // proprietor's number is only checked for its form.
    let refused = save_document_settings(&s, "T8000012050002", "corporate").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("チェックデジット"), "{}", refused.body);
    let bad_form = save_document_settings(&s, "1234", "corporate").await;
    assert!(bad_form.body.contains("「T」と13桁"), "{}", bad_form.body);
    let form = s.owner.get(&format!("/stores/{}/documents", s.store)).await;
    assert!(!form.body.contains("T8000012050002"), "nothing was saved");
    assert_eq!(save_document_settings(&s, "t8000-0120-50002", "individual").await.status, StatusCode::SEE_OTHER);
    let form = s.owner.get(&format!("/stores/{}/documents", s.store)).await;
    assert!(form.body.contains("T8000012050002"));

    // A 棚番 CSV with one bad line changes nothing.
    let token = s.owner.get("/stock").await.csrf_token().unwrap();
    let upload = |body: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("csrf_token", token.clone())
            .part("file", reqwest::multipart::Part::bytes(body.as_bytes()).file_name("loc.csv"));
        s.owner.client.post(format!("{}/stock/locations/upload", s.owner.base)).multipart(form).send()
    };
    upload("商品コード,棚番\nmug,A-1\nbad code,B-1\n").await.unwrap();
    assert!(s.owner.get("/stock").await.body.contains("読めない行が1行"));
    assert!(orderdesk::db::documents::locations(&s.app.db, s.account).await.unwrap().is_empty());
    upload("mug,A-1\ncup,B-1\n").await.unwrap();
    assert_eq!(orderdesk::db::documents::locations(&s.app.db, s.account).await.unwrap().len(), 2);
}

async fn a_batch_of_another_store_is_not_found_for_limited_staff(backend: Backend) {
    let s = quiet(backend).await;
    let (id, _) = order(
        &s,
        json!({ "items": [line("mug", "マグカップ", 1100, 1, 10)], "pay_method": "payment_a1", "pay_status": 1 }),
    )
    .await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &id).await.0;
    let made = print(&s.owner, "picking", &[pk], &[]).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER);
    let other = s.app.add_store(&s.owner, "支店", "shop-b", "secret-b").await;
    let staff_id = s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    let only_other = [("stores", "some"), ("store", &other.to_string()[..])];
    s.owner.submit("/users", &format!("/users/{staff_id}/access"), &only_other).await;
    let staff = s.app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(staff.get(made.location()).await.status, StatusCode::NOT_FOUND);
    assert_eq!(staff.get(&format!("{}/pdf", made.location())).await.status, StatusCode::NOT_FOUND);
    // Choosing the order by its key prints nothing for them: it is not in their stores.
    let theirs = print(&staff, "picking", &[pk], &[]).await;
    assert_eq!(theirs.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(theirs.select_text("#documents-message").join("").contains("見つかりません"));
    assert_eq!(s.owner.get(made.location()).await.status, StatusCode::OK);
}

crate::on_both_backends!(
    a_batch_of_another_store_is_not_found_for_limited_staff,
    golden_slips_and_picking_list,
    masked_staff_prints_picking_lists_only,
    bad_input_gets_a_message_and_prints_nothing,
);
