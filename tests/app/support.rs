//! Issue 11: the support view and support access (product.md §9, §10), through the real router.
//! Merchants never reach `/admin`; support staff do; a support session looking at an account
//! can read but never change (walked from the route table, so a new route is covered); the
//! access needs a reason, ends after an hour, masks buyers' data and shows in the merchant's
//! audit log; the 「要対応」 filter finds the stores that need a person.

use chrono::Duration;
use orderdesk::{
    db::Db,
    domain::{AccountId, StoreId, scope::MASK},
    web::routes,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::{
    helpers::{Backend, Browser, TestApp},
    import::{account_of, connect_store, shop},
    on_both_backends,
};

const SUPPORT_PASSWORD: &str = "support-password-123";

pub async fn support_staff(app: &TestApp) -> Browser {
    let hash = orderdesk::crypto::hash_password_blocking(SUPPORT_PASSWORD.into()).await.unwrap();
    orderdesk::db::support::create(&app.db, "sato@support.example", "佐藤", &hash).await.unwrap();
    let b = app.browser();
    assert_eq!(b.sign_in("sato@support.example", SUPPORT_PASSWORD).await.location(), "/admin");
    b
}

/// Opens a support access to `account` from /admin; returns the answer.
pub async fn open_access(
    support: &Browser,
    account: AccountId,
    reason: &str,
    needs_personal: bool,
) -> crate::helpers::Page {
    let account = account.0.to_string();
    let mut fields = vec![("account_id", account.as_str()), ("reason", reason)];
    if needs_personal {
        fields.push(("needs_personal", "1"));
    }
    support.submit("/admin", "/admin/access", &fields).await
}

async fn order_pk(db: &Db, store: i64) -> i64 {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_scalar::<_, i64>("select id from yahoo_order where store_id = $1").bind(store).fetch_one(p).await
    })
    .unwrap()
}

/// Replaces every `{…}` of a route with `value`.
fn fill(path: &str, value: &str) -> String {
    let mut path = path.to_string();
    while let Some(start) = path.find('{') {
        let end = path[start..].find('}').unwrap() + start;
        path.replace_range(start..=end, value);
    }
    path
}

async fn admin_is_for_support_staff_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    let support = support_staff(&app).await;
    let admin_routes: Vec<_> = routes().list().iter().filter(|r| r.path.starts_with("/admin")).cloned().collect();
    assert!(admin_routes.len() >= 5, "{admin_routes:?}");
    for route in &admin_routes {
        let path = fill(route.path, "1");
        let page =
            if route.method == Method::POST { owner.submit("/", &path, &[]).await } else { owner.get(&path).await };
        assert_eq!(page.status, StatusCode::FORBIDDEN, "a merchant reached {} {}", route.method, route.path);
        if route.method == Method::GET {
            assert_eq!(support.get(&path).await.status, StatusCode::OK, "support reaches {path}");
        } else {
            let page = support.submit("/admin", &path, &[]).await;
            assert_ne!(page.status, StatusCode::FORBIDDEN, "support reaches {path}: {}", page.body);
        }
    }
    let page = support.get("/admin").await;
    assert!(page.body.contains("山田商店"), "{}", page.body);
    // Without an open access, merchant pages are not for support staff.
    assert_eq!(support.get("/orders").await.status, StatusCode::FORBIDDEN);
}

async fn support_access_reads_but_never_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("青空商店", "owner@example.jp").await;
    let store = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let user = app.add_user(&owner, "staff@example.jp", "staff").await;
    let account = account_of(&app.db, StoreId(store)).await;
    let t = chrono::Utc::now() - Duration::hours(1);
    crate::dashboard::write_orders(&app.db, account, StoreId(store), &[("a-1", t, 0)]).await;
    let order = order_pk(&app.db, store).await;
    let support = support_staff(&app).await;

    // No reason, no access.
    let refused = open_access(&support, account, "  ", false).await;
    assert_eq!(refused.location(), "/admin");
    assert!(support.get("/admin").await.body.contains("閲覧の理由を4文字以上で具体的に入力してください"));
    assert_eq!(support.get("/orders").await.status, StatusCode::FORBIDDEN);

    let opened = open_access(&support, account, "問い合わせ#123の調査", false).await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let dashboard = support.get("/").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains("読み取り専用"), "{}", dashboard.body);
    // Buyers' personal data is masked.
    let page = support.get(&format!("/orders/{order}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("山田") && page.body.contains(MASK), "{}", page.body);
    let list = support.get("/orders").await;
    assert!(!list.body.replace("例: 山田", "").contains("山田") && list.body.contains(MASK), "{}", list.body);

    // Every route that could change merchant data refuses, whatever its parameters.
    let mut walked = 0;
    for route in routes().list() {
        if route.method != Method::POST
            || route.path.starts_with("/admin")
            || matches!(route.path, "/signin" | "/signout")
        {
            continue;
        }
        let path = route
            .path
            .replace("{store_id}", &store.to_string())
            .replace("{order_id}", &order.to_string())
            .replace("{user_id}", &user.to_string());
        let path = fill(&path, "1");
        let page = support.submit("/", &path, &[("reason", "x"), ("status", "cancelled")]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "support changed something through POST {}", route.path);
        assert!(page.body.contains("読み取り専用"), "{}: {}", route.path, page.body);
        walked += 1;
    }
    assert!(walked >= 30, "only {walked} routes walked");
    // Every page reads fine for the support viewer (none answers an error).
    for route in routes().list() {
        if route.method != Method::GET || route.path.starts_with("/admin") || route.path.contains("{file}") {
            continue;
        }
        let path = route
            .path
            .replace("{store_id}", &store.to_string())
            .replace("{order_id}", &order.to_string())
            .replace("{user_id}", &user.to_string());
        let page = support.get(&fill(&path, "1")).await;
        assert!(!page.status.is_server_error(), "GET {} as support: {}", route.path, page.body);
    }
    // Nothing changed: the user is still there, no stop.
    assert!(owner.get("/users").await.body.contains("staff@example.jp"));
    assert!(!owner.get(&format!("/stores/{store}")).await.body.contains("緊急停止中です"));

    // The merchant sees the access, its reason and who, on their own audit page.
    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("サポートによる閲覧"), "{}", audit.body);
    assert!(audit.body.contains("問い合わせ#123の調査") && audit.body.contains("サポート: 佐藤"), "{}", audit.body);

    // A reason that needs the buyer's data shows it.
    open_access(&support, account, "配送先の確認（お客様のご依頼）", true).await;
    assert!(support.get(&format!("/orders/{order}")).await.body.contains("山田"));

    // After an hour the access ends.
    orderdesk::with_pool!(&app.db, |p| {
        sqlx::query("update support_access set expires_at = $1")
            .bind(orderdesk::db::now() - Duration::minutes(1))
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
    let ended = support.get(&format!("/orders/{order}")).await;
    assert_eq!(ended.status, StatusCode::FORBIDDEN);
    assert!(ended.body.contains("期限が切れました"), "{}", ended.body);
    assert_eq!(support.get("/orders").await.status, StatusCode::FORBIDDEN, "the access stays ended");
    assert_eq!(support.get("/admin").await.status, StatusCode::OK, "the support view stays open");
}

async fn emergency_stop_from_admin_is_shown_and_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    let store = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let account = account_of(&app.db, StoreId(store)).await.0.to_string();
    let support = support_staff(&app).await;
    let s = store.to_string();
    let stopped = support
        .submit(
            "/admin",
            "/admin/stop",
            &[("account_id", &account), ("store_id", &s), ("reason", "Yahoo!側の障害のため")],
        )
        .await;
    assert_eq!(stopped.location(), "/admin");
    let page = owner.get(&format!("/stores/{store}")).await;
    assert!(page.body.contains("緊急停止中です") && page.body.contains("Yahoo!側の障害のため"), "{}", page.body);
    support.submit("/admin", "/admin/resume", &[("account_id", &account), ("store_id", &s)]).await;
    assert!(!owner.get(&format!("/stores/{store}")).await.body.contains("緊急停止中です"));
    // The whole account.
    support.submit("/admin", "/admin/stop", &[("account_id", &account), ("reason", "調査のため")]).await;
    assert!(owner.get(&format!("/stores/{store}")).await.body.contains("調査のため"));
    assert!(support.get("/admin?attention=1").await.body.contains("山田商店"));
    support.submit("/admin", "/admin/resume", &[("account_id", &account)]).await;
    let audit = owner.get("/audit").await;
    assert_eq!(audit.body.matches("<td>サポート: 佐藤</td>").count(), 4, "{}", audit.body);
    assert!(audit.body.contains("緊急停止の解除"));
}

/// Stores of the account, as `data-store-id`s of the 「要対応」 view.
async fn flagged(support: &Browser) -> Vec<String> {
    support.get("/admin?attention=1").await.select_attr("tr.admin-store", "data-store-id")
}

async fn attention_filter_finds_stores_that_need_a_person(backend: Backend) {
    let shop = shop(backend, |_| {}).await;
    let (app, sim, owner) = (&shop.app, &shop.sim, &shop.owner);
    let healthy = shop.store;
    // A key expiring in 5 days, saved through the key form.
    let expiring = connect_store(app, sim, owner, "期限店", "shop-expiring").await;
    let version = sim.key("shop-expiring", 2).await.to_string();
    let in_5_days = (orderdesk::domain::jst::today(chrono::Utc::now()) + Duration::days(5)).to_string();
    let path = format!("/stores/{expiring}/public-key");
    let saved = owner
        .submit(
            &path,
            &path,
            &[
                ("public_key", &crate::sim::fixture("public-2.pem")),
                ("public_key_version", &version),
                ("public_key_expires_on", &in_5_days),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    // The 12-hour regime: the key switched off at Yahoo, seen by the connection test.
    let short = connect_store(app, sim, owner, "十二時間店", "shop-short").await;
    sim.control("/_sim/sellers/shop-short/keys/1", json!({ "enabled": false })).await;
    let tested = owner.submit(&format!("/stores/{short}"), &format!("/stores/{short}/test"), &[]).await;
    assert!(tested.status.is_success() || tested.status.is_redirection(), "{}", tested.body);
    // Failing imports: the grant revoked at Yahoo, then an import.
    let failing = connect_store(app, sim, owner, "失敗店", "shop-failing").await;
    sim.control("/_sim/grants/revoke", json!({ "seller_id": "shop-failing" })).await;
    let path = format!("/stores/{failing}");
    let run = owner.submit(&path, &format!("{path}/import"), &[]).await;
    shop.wait_run(run.location()).await;

    let support = support_staff(app).await;
    let all = support.get("/admin").await.select_attr("tr.admin-store", "data-store-id");
    assert_eq!(all.len(), 4, "every store in the overview");
    let flagged = flagged(&support).await;
    for (store, what) in [(expiring, "key expiring"), (short, "12-hour regime"), (failing, "failing imports")] {
        assert!(flagged.contains(&store.0.to_string()), "{what} is flagged: {flagged:?}");
    }
    assert!(!flagged.contains(&healthy.0.to_string()), "a healthy store is not flagged: {flagged:?}");
    let page = support.get("/admin?attention=1").await;
    for label in ["公開鍵の期限が7日以内", "12時間認証", "取込が失敗"] {
        assert!(page.body.contains(label), "{label}: {}", page.body);
    }
    // Search by seller ID and by store name finds the account; a stranger's name does not.
    assert!(support.get("/admin?q=shop-short").await.body.contains("十二時間店"));
    assert!(!support.get("/admin?q=nobody-here").await.body.contains("十二時間店"));
}

async fn audit_log_filters_and_exports(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("青空商店", "owner@example.jp").await;
    let store = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    app.add_store(&owner, "支店", "shop-b", "secret-b").await;
    let account = account_of(&app.db, StoreId(store)).await;
    let support = support_staff(&app).await;
    let (a, s) = (account.0.to_string(), store.to_string());
    support.submit("/admin", "/admin/stop", &[("account_id", &a), ("store_id", &s), ("reason", "障害対応")]).await;
    open_access(&support, account, "問い合わせ対応", false).await;

    let column =
        |page: &crate::helpers::Page, n: usize| page.select_text(&format!("table.audit tbody td:nth-child({n})"));
    let by_support = owner.get("/audit?actor=support").await;
    let actors = column(&by_support, 2);
    assert_eq!(actors.len(), 2, "{actors:?}");
    assert!(actors.iter().all(|a| a == "サポート: 佐藤"), "{actors:?}");
    let by_users = owner.get("/audit?actor=user").await;
    let actors = column(&by_users, 2);
    assert!(!actors.is_empty() && actors.iter().all(|a| !a.starts_with("サポート")), "{actors:?}");
    let stops = column(&owner.get("/audit?action=emergency_stop").await, 3);
    assert_eq!(stops, ["緊急停止"]);
    let of_store = column(&owner.get(&format!("/audit?store={store}")).await, 4);
    assert!(!of_store.is_empty() && of_store.iter().all(|d| d.contains("本店")), "{of_store:?}");
    let tomorrow = (orderdesk::domain::jst::today(chrono::Utc::now()) + Duration::days(1)).to_string();
    assert!(column(&owner.get(&format!("/audit?from={tomorrow}")).await, 1).is_empty());
    let today = orderdesk::domain::jst::today(chrono::Utc::now()).to_string();
    assert!(!column(&owner.get(&format!("/audit?from={today}&to={today}")).await, 1).is_empty());

    let csv = owner.get("/audit.csv?actor=support").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with('\u{feff}'), "UTF-8 with BOM");
    assert!(csv.body.contains("サポートによる閲覧") && csv.body.contains("問い合わせ対応"), "{}", csv.body);
    assert!(!csv.body.contains("ストア追加"), "{}", csv.body);
    assert!(owner.get("/audit").await.body.contains("監査ログのCSV出力"), "the export is recorded");
    // Staff do not read the log.
    app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    assert_eq!(staff.get("/audit.csv").await.status, StatusCode::FORBIDDEN);
}

/// The store filter goes by the store an entry was written about, not by names in the detail:
/// a store whose name begins another's does not pick up the other's entries, a renamed store
/// keeps its entries, and an entry without a store (as those written before the column) that
/// merely names the store is not matched. The page and the CSV export agree.
async fn audit_store_filter_goes_by_store_id(backend: Backend) {
    use orderdesk::db::audit::{self, Action, Actor};

    let app = TestApp::spawn(backend).await;
    let owner = app.owner("青空商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "本店二号", "shop-b", "secret-b").await;
    let account = account_of(&app.db, StoreId(a)).await;
    // An entry with no store whose detail begins with store A's name.
    audit::record(&app.db, account, Actor::System, Action::ManualImport, "本店 (no store)", None).await.unwrap();

    let details = |path: String| {
        let owner = &owner;
        async move {
            let page = owner.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            page.select_text("table.audit tbody td:nth-child(4)")
        }
    };
    let of_a = details(format!("/audit?store={a}")).await;
    assert_eq!(of_a.len(), 1, "{of_a:?}");
    assert!(of_a[0].starts_with("本店 (shop-a"), "{of_a:?}");
    let of_b = details(format!("/audit?store={b}")).await;
    assert_eq!(of_b.len(), 1, "{of_b:?}");
    assert!(of_b[0].starts_with("本店二号 (shop-b"), "{of_b:?}");

    // Store A renamed: its entries, old and new, stay with it; B's filter does not see them.
    let edit = format!("/stores/{a}/edit");
    let fields = [
        ("name", "新本店"),
        ("seller_id", "shop-a"),
        ("environment", "simulator"),
        ("client_id", "dj00client"),
        ("client_secret", ""),
        ("auto_import_interval_minutes", "15"),
        ("restrict_fraud_hold_changes", "on"),
    ];
    assert_eq!(owner.submit(&edit, &format!("/stores/{a}"), &fields).await.status, StatusCode::SEE_OTHER);
    let of_a = details(format!("/audit?store={a}")).await;
    assert_eq!(of_a.len(), 2, "{of_a:?}");
    assert!(of_a[0].contains("ストア名 本店 → 新本店"), "{of_a:?}");
    assert!(of_a[1].starts_with("本店 (shop-a"), "{of_a:?}");
    assert_eq!(details(format!("/audit?store={b}")).await, of_b, "B's entries only");
    let all = details("/audit".to_string()).await;
    assert!(all.iter().any(|d| d == "本店 (no store)"), "unfiltered, the storeless entry shows: {all:?}");

    // The export selects the same.
    let csv_a = owner.get(&format!("/audit.csv?store={a}")).await;
    assert_eq!(csv_a.status, StatusCode::OK);
    assert!(csv_a.body.contains("ストア名 本店 → 新本店") && csv_a.body.contains("本店 (shop-a"), "{}", csv_a.body);
    assert!(!csv_a.body.contains("shop-b") && !csv_a.body.contains("(no store)"), "{}", csv_a.body);
    let csv_b = owner.get(&format!("/audit.csv?store={b}")).await;
    assert!(csv_b.body.contains("本店二号 (shop-b"), "{}", csv_b.body);
    assert!(!csv_b.body.contains("shop-a") && !csv_b.body.contains("新本店"), "{}", csv_b.body);

    // Another account's store is not found, on the page and in the export.
    let other = app.owner("他社", "other@example.jp").await;
    let foreign = app.add_store(&other, "本店", "shop-x", "secret-x").await;
    assert_eq!(owner.get(&format!("/audit?store={foreign}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(owner.get(&format!("/audit.csv?store={foreign}")).await.status, StatusCode::NOT_FOUND);
}

async fn support_sign_in_is_throttled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    support_staff(&app).await;
    let b = app.browser();
    for _ in 0..5 {
        assert_eq!(b.sign_in("sato@support.example", "wrong-password-000").await.status, StatusCode::UNAUTHORIZED);
    }
    let refused = b.sign_in("sato@support.example", SUPPORT_PASSWORD).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.body);
}

on_both_backends!(
    audit_log_filters_and_exports,
    audit_store_filter_goes_by_store_id,
    support_sign_in_is_throttled,
    admin_is_for_support_staff_only,
    support_access_reads_but_never_changes,
    emergency_stop_from_admin_is_shown_and_audited,
    attention_filter_finds_stores_that_need_a_person,
);
