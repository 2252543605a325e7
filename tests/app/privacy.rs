//! Issue 31: what an outside attack found. Buyers' personal data never reaches a reader whose
//! scope masks it (a masked staff member, support opened without 個人情報), whatever the door:
//! a page, a download, a form's answer, a search, a re-import preview, the history of a change
//! at Yahoo. Walked from the route table, so a page added later is walked too.

use orderdesk::{db::Db, db::imports::Trigger, import::Ending, web::routes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    helpers::{Backend, Browser, PASSWORD, TestApp},
    import::{SELLER, Shop, shop},
    on_both_backends,
};

/// A buyer and a recipient as Yahoo (the simulator) has them.
fn yahoo_people() -> (Value, Value) {
    let bill = json!({
        "last_name": "鬼塚", "first_name": "珠緒", "last_name_kana": "オニヅカ", "first_name_kana": "タマオ",
        "zip_code": "1500042", "prefecture": "東京都", "city": "渋谷区宇田川町", "address1": "九丁目八番地",
        "address2": "灯台ビル七階", "phone": "03-9876-5432", "mail": "tamao.onizuka@example.jp"
    });
    let ship = json!({
        "last_name": "真鍋", "first_name": "翔梧", "last_name_kana": "マナベ", "first_name_kana": "ショウゴ",
        "zip_code": "9040001", "prefecture": "沖縄県", "city": "沖縄市上地", "address1": "三丁目四番",
        "address2": "珊瑚荘二〇一", "phone": "098-765-4321", "mail": ""
    });
    (bill, ship)
}

/// What our copy held before Yahoo's change (so the re-import preview and the history line
/// both carry personal data on each side).
const OURS_BEFORE: [(&str, &str); 9] = [
    ("bill_last_name", "蜂須賀"),
    ("bill_first_name", "雅楽"),
    ("bill_last_name_kana", "ハチスカ"),
    ("bill_first_name_kana", "ウタ"),
    ("bill_city", "杉並区阿佐谷"),
    ("bill_address1", "七丁目十一番"),
    ("bill_phone", "06-2468-1357"),
    ("bill_mail", "uta.hachisuka@example.jp"),
    ("ship_address1", "旧住所五丁目"),
];

/// Every piece of personal data that must never show to a masked reader, with phone-number
/// prefixes (the search oracle recovered a phone number one digit at a time).
fn secrets() -> Vec<String> {
    let (bill, ship) = yahoo_people();
    let mut out = Vec::new();
    for person in [&bill, &ship] {
        for field in [
            "last_name",
            "first_name",
            "last_name_kana",
            "first_name_kana",
            "zip_code",
            "city",
            "address1",
            "address2",
            "phone",
            "mail",
        ] {
            let v = person[field].as_str().unwrap();
            if !v.is_empty() {
                out.push(v.to_owned());
            }
        }
    }
    out.extend(OURS_BEFORE.iter().map(|(_, v)| (*v).to_owned()));
    for phone in ["03-9876-5432", "098-765-4321", "06-2468-1357"] {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        out.push(digits.clone());
        out.push(digits[..6].to_owned());
        out.push(phone[..7].to_owned());
    }
    out.push("tamao.onizuka".into());
    out
}

/// Whether `body` shows `secret`. A run of digits (a phone number or its first digits) counts
/// where a number starts, not inside another one: /metrics' timings (「0.0062468」) are not a
/// phone number's 「062468」.
fn shows(body: &str, secret: &str) -> bool {
    if !secret.bytes().all(|b| b.is_ascii_digit()) {
        return body.contains(secret);
    }
    let bytes = body.as_bytes();
    body.match_indices(secret).any(|(i, _)| i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.'))
}

async fn set_ours(db: &Db, pk: i64) {
    for (column, value) in OURS_BEFORE {
        let sql = format!("update yahoo_order set {column} = $1 where id = $2");
        orderdesk::with_pool!(db, |p| sqlx::query(&sql).bind(value).bind(pk).execute(p).await.map(|_| ())).unwrap();
    }
}

/// A store with one order whose buyer and recipient are known, imported; re-imported after a
/// change at Yahoo, so that its history holds a change of personal data; then changed in our
/// copy again, so that a re-import preview has personal data on both sides.
async fn order_with_known_buyer(backend: Backend) -> (Shop, i64, String) {
    let s = shop(backend, |_| {}).await;
    let (bill, ship) = yahoo_people();
    let made = s
        .sim
        .order(SELLER, json!({ "items": [{ "item_id": "mug", "title": "マグカップ" }], "bill": bill, "ship": ship }))
        .await;
    let order_id = made["order_id"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let (row, _) = s.ours().await.into_iter().find(|(r, _)| r.order_id == order_id).unwrap();
    let pk = row.id.0;
    assert_eq!(row.bill_last_name, "鬼塚");

    set_ours(&s.app.db, pk).await;
    let path = format!("/orders/{pk}/reimport");
    let preview = s.owner.get(&path).await;
    assert!(
        preview.body.contains("蜂須賀") && preview.body.contains("鬼塚"),
        "the owner sees both sides: {}",
        preview.body
    );
    let version = preview.select_attr("input[name=version]", "value").remove(0);
    let applied = s.owner.submit(&path, &path, &[("version", &version)]).await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    let page = s.owner.get(&format!("/orders/{pk}")).await;
    assert!(
        page.body.contains("請求先電話番号: 06-2468-1357 → 03-9876-5432"),
        "the owner reads the change: {}",
        page.body
    );
    set_ours(&s.app.db, pk).await;
    // A label file that holds the buyer's address, and an issued-data upload that names the
    // order: what a masked reader may reach of them is walked too.
    let account = crate::import::account_of(&s.app.db, s.store).await;
    let body = encoding_rs::SHIFT_JIS.encode(&format!("{order_id},鬼塚,蜂須賀\r\n")).0.into_owned();
    let export = orderdesk::db::shipping::NewExport {
        format: orderdesk::carrier::LabelFormat::B2,
        file_name: "b2.csv",
        content_type: "text/csv",
        body: &body,
        shipments: &[],
        reexport: false,
        by: "owner@example.jp",
        ship_date: chrono::Utc::now().date_naive(),
    };
    orderdesk::db::shipping::record_export(&s.app.db, account, &export, orderdesk::db::now()).await.unwrap();
    // A 納品書 batch of the order: a masked reader's batch page shows no personal data, and
    // its PDF is refused to them (the walk reads both).
    orderdesk::db::documents::create_batch(
        &s.app.db,
        account,
        orderdesk::db::documents::DocumentKind::Slip,
        &[orderdesk::db::orders::OrderPk(pk)],
        &[],
        &orderdesk::db::orders::HistoryActor::User("owner@example.jp".into()),
        orderdesk::db::now(),
    )
    .await
    .unwrap();
    let row = orderdesk::db::shipping::UploadRow {
        line_no: 2,
        management_no: "OD1".into(),
        tracking_number: "490714955706".into(),
        shipment_id: None,
        order_pk: Some(orderdesk::db::orders::OrderPk(pk)),
        outcome: "unknown".into(),
        message: String::new(),
        applied: false,
    };
    orderdesk::db::shipping::save_upload(
        &s.app.db,
        account,
        &orderdesk::db::shipping::NewUpload {
            hash: "hash",
            file_name: "issued.csv",
            format: orderdesk::carrier::LabelFormat::B2,
            rows: &[row],
            by: "owner@example.jp",
        },
        orderdesk::db::now(),
    )
    .await
    .unwrap()
    .unwrap();
    (s, pk, order_id)
}

/// Opens every page, download and form answer a reader can reach, with the IDs of the order,
/// its store and run, and asserts that none shows any of the buyer's data. Returns how many
/// answers were read.
async fn walk(s: &Shop, reader: &Browser, who: &str, pk: i64, order_id: &str) -> usize {
    let secrets = secrets();
    let run_id: i64 = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, i64>("select max(id) from import_run where store_id = $1")
            .bind(s.store)
            .fetch_one(p)
            .await
    })
    .unwrap();
    // What the reader typed themselves is shown back to them (the search box): not a leak.
    let check_but = |what: &str, body: &str, typed: &str| {
        for secret in secrets.iter().filter(|s| !typed.contains(s.as_str())) {
            assert!(!shows(body, secret), "{who}: {what} shows 「{secret}」:\n{body}");
        }
    };
    let check = |what: &str, body: &str| check_but(what, body, "");
    let batch_id: i64 = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, i64>("select max(id) from print_batch").fetch_one(p).await
    })
    .unwrap();
    let mut read = 0;
    for route in routes().list().iter().filter(|r| r.method == Method::GET) {
        let mut path = route.path.to_string();
        let mut skip = false;
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').unwrap() + start;
            let value = match &path[start + 1..end] {
                "store_id" => s.store.0.to_string(),
                "order_id" => pk.to_string(),
                "run_id" => run_id.to_string(),
                "export_id" => "1".to_string(),
                "upload_id" => "1".to_string(),
                "rule_id" => "1".to_string(),
                "batch_id" => batch_id.to_string(),
                "mail_id" => "1".to_string(),
                "file" | "token" => {
                    skip = true;
                    break;
                }
                other => panic!("the masking walk does not know how to make a `{other}`; teach it"),
            };
            path.replace_range(start..=end, &value);
        }
        if skip {
            continue;
        }
        let page = reader.get(&path).await;
        check(&path, &page.body);
        read += 1;
    }
    // Searches by what the reader may not see find nothing (the oracle), and say why.
    for typed in
        ["0398", "039876", "03-9876", "tamao", "鬼塚", "オニヅカ", "おにづか", "真鍋", "0987", "06246", "蜂須賀"]
    {
        let path = format!("/orders?q={}", url::form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>());
        let page = reader.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!page.body.contains(order_id), "{who}: searching 「{typed}」 finds the order:\n{}", page.body);
        assert!(page.select_text("#q-hint").join("").contains("注文ID"), "{who}: the page says what can be searched");
        check_but(&path, &page.body, typed);
        let csv = reader.get(&format!("/orders.csv?q={}", &path["/orders?q=".len()..])).await;
        assert!(!csv.body.contains(order_id), "{who}: the CSV of 「{typed}」 finds the order");
        read += 2;
    }
    // By its own ID it is found.
    let found = reader.get(&format!("/orders?q={}", &order_id[..order_id.len() - 2])).await;
    assert!(found.body.contains(order_id), "{who}: a search by order ID still works: {}", found.body);
    for path in [
        format!("/orders/{pk}"),
        "/orders.csv".to_string(),
        format!("/orders/{pk}/reimport"),
        format!("/stores/{}/reimport?order_id={order_id}", s.store),
        format!("/imports/{run_id}"),
    ] {
        let page = reader.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{who}: {path}");
        check(&path, &page.body);
        read += 1;
    }
    // The order page shows the history of the change, without its values.
    let page = reader.get(&format!("/orders/{pk}")).await;
    assert!(page.body.contains("請求先電話番号: ＊＊＊ → ＊＊＊"), "{who}: the change is there, masked: {}", page.body);
    let preview = reader.get(&format!("/orders/{pk}/reimport")).await;
    assert!(preview.select_text("table.diff th").join(" ").contains("請求先氏名"), "{who}: {}", preview.body);
    // A form's answer that lists orders (the bulk ship step) masks them too.
    let pk_text = pk.to_string();
    let answer = reader.submit("/orders", "/orders/bulk", &[("order", &pk_text), ("target", "shipped")]).await;
    check("POST /orders/bulk", &answer.body);
    read += 1;
    read
}

async fn masked_staff_and_support_never_see_buyers_data(backend: Backend) {
    let (s, pk, order_id) = order_with_known_buyer(backend).await;
    // The owner sees it all (so the walk below can fail).
    let owner_page = s.owner.get(&format!("/orders/{pk}")).await;
    assert!(owner_page.body.contains("蜂須賀") && owner_page.body.contains("uta.hachisuka@example.jp"));
    let owner_search = s.owner.get("/orders?q=06246").await;
    assert!(owner_search.body.contains(&order_id), "the owner searches by phone: {}", owner_search.body);

    let staff_id = s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    let saved = s
        .owner
        .submit("/users", &format!("/users/{staff_id}/access"), &[("stores", "all"), ("mask_personal", "on")])
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let staff = s.app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let read = walk(&s, &staff, "masked staff", pk, &order_id).await;
    assert!(read >= 30, "the walk read {read} answers");

    let support = crate::support::support_staff(&s.app).await;
    let opened = crate::support::open_access(&support, s.account, "問い合わせ#31の調査", false).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    walk(&s, &support, "support without 個人情報", pk, &order_id).await;
}

/// Runs of a store outside a staff member's stores do not open (they named the store and its
/// counts and messages).
async fn runs_of_other_stores_are_not_found_for_limited_staff(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let run_id: i64 = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, i64>("select max(id) from import_run where store_id = $1")
            .bind(s.store)
            .fetch_one(p)
            .await
    })
    .unwrap();
    let other = s.app.add_store(&s.owner, "支店", "shop-b", "secret-b").await;
    let staff_id = s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    let only_other = [("stores", "some"), ("store", &other.to_string()[..])];
    s.owner.submit("/users", &format!("/users/{staff_id}/access"), &only_other).await;
    let staff = s.app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(staff.get(&format!("/imports/{run_id}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.owner.get(&format!("/imports/{run_id}")).await.status, StatusCode::OK);
}

/// A reset link's token was written to the WARN log when its form failed the CSRF check; and
/// the request span (at DEBUG) named every path and query, an OAuth callback's code included.
async fn a_reset_token_never_reaches_a_log_line(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("山田商店", "owner@example.jp").await;
    let support = crate::support::support_staff(&app).await;
    let path = crate::reset_link::issue(&app, &support, "owner@example.jp").await;
    let token = path.trim_start_matches("/password-reset/").to_owned();
    let stranger = app.browser();
    let form = stranger.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    let refused = stranger
        .post_raw(
            &path,
            &[("csrf_token", "wrong"), ("password", "new-password-123"), ("password_confirm", "new-password-123")],
            &[],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let refused = stranger.post_raw(&path, &[("password", "x")], &[("origin", "https://evil.example")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    stranger.get("/stores/oauth/callback?code=oauth-code-never-logged&state=state-never-logged").await;
    let logs = crate::helpers::captured_logs();
    assert!(logs.contains("missing or wrong CSRF token"), "the refusal is logged");
    // (The test's own HTML parser logs what it reads at DEBUG; only the service's lines count.)
    let service = |l: &&str| !l.contains("html5ever") && !l.contains("selectors::");
    if let Some(line) = logs.lines().filter(service).find(|l| l.contains(&token)) {
        panic!("the token is in the log: {line}");
    }
    let leaked = logs
        .lines()
        .filter(service)
        .find(|l| l.contains("oauth-code-never-logged") || l.contains("state-never-logged"));
    assert!(leaked.is_none(), "the OAuth code is in the log: {leaked:?}");
}

/// NUL and other control characters gave PostgreSQL's 500 (and cut a CSV short): refused at
/// the one input rule with a Japanese message, on both backends, changing nothing.
async fn control_characters_are_refused_with_a_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    for path in ["/orders?q=%00", "/orders.csv?q=a%00b", "/stock?q=%00", "/audit?q=%01"] {
        let page = owner.get(path).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{path}: {}", page.body);
        assert!(page.body.contains("制御文字"), "{path}: {}", page.body);
    }
    let anonymous = app.browser();
    let page =
        anonymous.submit("/signin", "/signin", &[("email", "owner\u{0}@example.jp"), ("password", PASSWORD)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("制御文字"));
    let store = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let edit = format!("/stores/{store}/edit");
    let renamed = owner.submit(&edit, &format!("/stores/{store}"), &[("name", "本\u{0}店")]).await;
    assert_eq!(renamed.status, StatusCode::BAD_REQUEST, "{}", renamed.body);
    let stock = owner.submit("/stock", "/stock/set", &[("item_code", "mug\u{0}"), ("quantity", "3")]).await;
    assert_eq!(stock.status, StatusCode::BAD_REQUEST, "{}", stock.body);
    let stores = owner.get("/stores").await;
    assert!(stores.body.contains("本店"), "nothing changed: {}", stores.body);
    // A line break in free text is still free text.
    let t = chrono::Utc::now();
    let account = crate::import::account_of(&app.db, orderdesk::domain::StoreId(store)).await;
    crate::dashboard::write_orders(&app.db, account, orderdesk::domain::StoreId(store), &[("shop-a-1", t, 0)]).await;
    let pk: i64 = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select id from yahoo_order where order_id = 'shop-a-1'").fetch_one(p).await
    })
    .unwrap();
    let order = format!("/orders/{pk}");
    let noted = owner.submit(&order, &format!("{order}/note"), &[("note", "一行目\r\n二行目")]).await;
    assert_eq!(noted.status, StatusCode::SEE_OTHER, "{}", noted.body);
    let nul = owner.submit(&order, &format!("{order}/note"), &[("note", "a\u{0}b")]).await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST);
}

/// A reason of one invisible character (U+200B) opened support access, and the merchant's audit
/// log showed an empty reason.
async fn support_needs_a_visible_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    let store = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let account = crate::import::account_of(&app.db, orderdesk::domain::StoreId(store)).await;
    let support = crate::support::support_staff(&app).await;
    for reason in ["\u{200B}", " \u{200B}\u{FEFF}\u{2060} ", "　\u{3164}", "ab"] {
        let refused = crate::support::open_access(&support, account, reason, false).await;
        assert_eq!(refused.location(), "/admin", "{reason:?}");
        let admin = support.get("/admin").await;
        assert!(admin.body.contains("文字以上で具体的に"), "{reason:?}: {}", admin.body);
    }
    assert!(!owner.get("/audit").await.body.contains("サポートが閲覧"), "nothing was opened");
    let opened = crate::support::open_access(&support, account, "問い合わせ\u{200B}#31", false).await;
    assert_eq!(opened.location(), "/");
    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("理由: 問い合わせ#31"), "the audit shows what was visible: {}", audit.body);
}

/// Adding a user told whether the address was registered anywhere (「既に登録されています」),
/// unthrottled: now every new address is added the same way, pending until its first sign-in,
/// and the form takes 20 additions an hour.
async fn adding_a_user_tells_nothing_about_other_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A商店", "owner-a@example.jp").await;
    let other = app.owner("B商店", "owner-b@example.jp").await;
    let add = |email: &'static str| {
        let owner = &owner;
        async move {
            owner
                .submit(
                    "/users",
                    "/users",
                    &[("email", email), ("display_name", "新人"), ("role", "staff"), ("password", PASSWORD)],
                )
                .await
        }
    };
    let taken = add("owner-b@example.jp").await;
    let fresh = add("fresh@example.jp").await;
    assert_eq!((taken.status, fresh.status), (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER), "{}", taken.body);
    assert_eq!(taken.location(), fresh.location());
    let list = owner.get("/users").await;
    let flash = list.select_text(".flash").join("");
    assert!(flash.contains("新人 さんを追加しました"), "{}", list.body);
    let rows: Vec<String> = list.select_text("table.list tbody tr td:nth-child(2)");
    assert!(rows.contains(&"owner-b@example.jp 初回ログイン待ち".to_string()), "{rows:?}");
    assert!(rows.contains(&"fresh@example.jp 初回ログイン待ち".to_string()), "{rows:?}");

    // The new address signs in with the owner's password and is a user from then on.
    let newcomer = app.browser();
    assert_eq!(
        newcomer.sign_in("fresh@example.jp", PASSWORD).await.location(),
        "/account/password?first=1",
        "the first sign-in asks for their own password"
    );
    let rows = owner.get("/users").await.select_text("table.list tbody tr td:nth-child(2)");
    assert!(rows.contains(&"fresh@example.jp".to_string()), "{rows:?}");
    // The registered address stays its owner's: A's password does not open anything of A's.
    let b_owner = app.browser();
    assert_eq!(b_owner.sign_in("owner-b@example.jp", PASSWORD).await.location(), "/");
    assert!(b_owner.get("/").await.body.contains("B商店"));
    assert!(other.get("/users").await.body.contains("owner-b@example.jp"));

    // An owner's reset of a pending user's password does not lift the lock-out of the address
    // (it may be another account's: guessing there must stay throttled).
    let guesser = app.browser();
    for _ in 0..5 {
        guesser.sign_in("owner-b@example.jp", "wrong-password-1").await;
    }
    assert_eq!(guesser.sign_in("owner-b@example.jp", "wrong-password-1").await.status, StatusCode::TOO_MANY_REQUESTS);
    let pending: i64 = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select id from app_user where invited_email = 'owner-b@example.jp'")
            .fetch_one(p)
            .await
    })
    .unwrap();
    let pending_id = format!("/users/{pending}/password");
    let reset = owner.submit("/users", &pending_id, &[("new_password", "another-password-9")]).await;
    assert_eq!(reset.status, StatusCode::SEE_OTHER, "{}", reset.body);
    assert_eq!(
        guesser.sign_in("owner-b@example.jp", "wrong-password-1").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "still locked out"
    );

    // The same address twice in one account is told (the owner sees it listed anyway).
    let again = add("fresh@example.jp").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("このアカウントに追加済み"), "{}", again.body);

    // Throttled: 20 additions an hour.
    const ADDRESSES: [&str; 18] = [
        "u1@example.jp",
        "u2@example.jp",
        "u3@example.jp",
        "u4@example.jp",
        "u5@example.jp",
        "u6@example.jp",
        "u7@example.jp",
        "u8@example.jp",
        "u9@example.jp",
        "u10@example.jp",
        "u11@example.jp",
        "u12@example.jp",
        "u13@example.jp",
        "u14@example.jp",
        "u15@example.jp",
        "u16@example.jp",
        "u17@example.jp",
        "u18@example.jp",
    ];
    for email in ADDRESSES {
        assert_eq!(add(email).await.status, StatusCode::SEE_OTHER, "{email}");
    }
    let limited = add("u19@example.jp").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{}", limited.body);
    assert!(limited.body.contains("1時間に20人まで"));
    assert!(!owner.get("/users").await.body.contains("u19@example.jp"));
}

on_both_backends!(
    adding_a_user_tells_nothing_about_other_accounts,
    masked_staff_and_support_never_see_buyers_data,
    runs_of_other_stores_are_not_found_for_limited_staff,
    a_reset_token_never_reaches_a_log_line,
    control_characters_are_refused_with_a_message,
    support_needs_a_visible_reason
);
