//! Staff limited to some stores, and buyers' personal data masked (product.md §1): an owner
//! sets both on the users page, the change is audited and applies at the staff member's next
//! request without signing in again, and only owners can make it.

use orderdesk::{
    db::access,
    domain::{StoreId, UserId, scope::OrderScope},
};
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp};

async fn an_owner_limits_staff_to_one_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "支店", "shop-b", "secret-b").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let account = crate::import::account_of(&app.db, StoreId(a)).await;
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let scope = |user: i64| {
        let db = app.db.clone();
        async move { access::scope(&db, account, UserId(user)).await.unwrap().unwrap() }
    };
    assert_eq!(scope(staff_id).await, OrderScope::account(account), "staff work every store by default");

    let path = format!("/users/{staff_id}/access");
    let saved = owner.submit("/users", &path, &[("stores", "some"), ("store", &a.to_string())]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(scope(staff_id).await, OrderScope { account, stores: Some(vec![StoreId(a)]), mask_personal: false });
    let users = owner.get("/users").await;
    assert!(users.select_text("td.user-stores").contains(&"本店".to_string()), "{}", users.body);

    // The staff member's session goes on, with the new scope.
    assert_eq!(staff.get("/").await.status, StatusCode::OK, "no new sign-in is needed");

    // Audited, in words.
    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("担当ストア・個人情報の表示の変更"), "{}", audit.body);
    assert!(audit.body.contains("staff@example.jp: 担当ストア すべてのストア → 本店"), "{}", audit.body);

    // No store at all, masked; then back to every store.
    let saved = owner.submit("/users", &path, &[("stores", "some"), ("mask_personal", "on")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(scope(staff_id).await, OrderScope { account, stores: Some(vec![]), mask_personal: true });
    let home = staff.get("/").await;
    assert!(home.body.contains("担当するストアがありません"), "{}", home.body);
    assert!(home.select_text("#orders-chart").is_empty() && home.select_text("#held-count").is_empty());
    let both = [("stores", "all"), ("store", &a.to_string()[..]), ("store", &b.to_string()[..])];
    assert_eq!(owner.submit("/users", &path, &both).await.status, StatusCode::SEE_OTHER);
    assert_eq!(scope(staff_id).await, OrderScope::account(account));

    // Another account's store id is ignored.
    let other = app.owner("他社", "other@example.jp").await;
    let foreign = app.add_store(&other, "他社の店", "shop-x", "secret-x").await;
    let mixed = [("stores", "some"), ("store", &b.to_string()[..]), ("store", &foreign.to_string()[..])];
    assert_eq!(owner.submit("/users", &path, &mixed).await.status, StatusCode::SEE_OTHER);
    assert_eq!(scope(staff_id).await.stores, Some(vec![StoreId(b)]));

    // Owners work every store whatever the form says; their own mask switch counts.
    let owner_id = owner_id(&app.db, account).await;
    let me = format!("/users/{owner_id}/access");
    let saved = owner.submit("/users", &me, &[("stores", "some"), ("mask_personal", "on")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(scope(owner_id).await, OrderScope { account, stores: None, mask_personal: true });
}

async fn staff_cannot_change_store_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let account = crate::import::account_of(&app.db, StoreId(a)).await;
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    let path = format!("/users/{staff_id}/access");
    let refused = staff.submit("/", &path, &[("stores", "all"), ("mask_personal", "")]).await;
    assert!(matches!(refused.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", refused.status);
    assert_eq!(staff.get("/users").await.status, StatusCode::FORBIDDEN);
    let owner_id = owner_id(&app.db, account).await;
    let refused = staff.submit("/", &format!("/users/{owner_id}/access"), &[("mask_personal", "on")]).await;
    assert!(matches!(refused.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", refused.status);
    assert_eq!(access::scope(&app.db, account, UserId(owner_id)).await.unwrap().unwrap(), OrderScope::account(account));
}

/// The order routes follow `Merchant::scope()`: another store's order is not found, and the
/// buyer's name is masked when the switch is on, from the next request on.
async fn order_pages_follow_the_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "支店", "shop-b", "secret-b").await;
    let account = crate::import::account_of(&app.db, StoreId(a)).await;
    let t = chrono::Utc::now() - chrono::Duration::hours(1);
    crate::dashboard::write_orders(&app.db, account, StoreId(a), &[("a-1", t, 0)]).await;
    crate::dashboard::write_orders(&app.db, account, StoreId(b), &[("b-1", t, 0)]).await;
    let pk = |store: i64| {
        let db = app.db.clone();
        async move {
            orderdesk::with_pool!(&db, |p| {
                sqlx::query_scalar::<_, i64>("select id from yahoo_order where store_id = $1")
                    .bind(store)
                    .fetch_one(p)
                    .await
            })
            .unwrap()
        }
    };
    let (pk_a, pk_b) = (pk(a).await, pk(b).await);
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    assert_eq!(staff.get(&format!("/orders/{pk_b}")).await.status, StatusCode::OK);

    let path = format!("/users/{staff_id}/access");
    let a_str = a.to_string();
    let saved = owner.submit("/users", &path, &[("stores", "some"), ("store", &a_str), ("mask_personal", "on")]).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    assert_eq!(staff.get(&format!("/orders/{pk_b}")).await.status, StatusCode::NOT_FOUND);
    let page = staff.get(&format!("/orders/{pk_a}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("山田") && page.body.contains(orderdesk::domain::scope::MASK), "{}", page.body);
    let list = staff.get("/orders").await;
    assert!(list.body.contains("a-1") && !list.body.contains("b-1"), "{}", list.body);
    assert!(owner.get(&format!("/orders/{pk_a}")).await.body.contains("山田"), "the owner's own switch is off");
}

/// The cross-tenant walk, within one account: staff limited to store A get 404 for store B's
/// order on every `{order_id}` route of the route table (so a new order route is walked without
/// touching this test), and see none of B's orders in the list, the tab counts, the held-order
/// queue, the chart, the bulk change or the CSV.
async fn staff_limited_to_a_store_never_reach_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "本店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "支店", "shop-b", "secret-b").await;
    let account = crate::import::account_of(&app.db, StoreId(a)).await;
    let t = chrono::Utc::now() - chrono::Duration::hours(1);
    crate::dashboard::write_orders(&app.db, account, StoreId(a), &[("a-order-1", t, 0)]).await;
    crate::dashboard::write_orders(&app.db, account, StoreId(b), &[("b-order-1", t, 1), ("b-order-2", t, 0)]).await;
    let pk_b: i64 = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select id from yahoo_order where order_id = 'b-order-2'").fetch_one(p).await
    })
    .unwrap();
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let a_str = a.to_string();
    owner.submit("/users", &format!("/users/{staff_id}/access"), &[("stores", "some"), ("store", &a_str)]).await;
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);

    let mut walked = 0;
    for route in orderdesk::web::routes().list() {
        if !route.path.contains("{order_id}") {
            continue;
        }
        let path = route.path.replace("{order_id}", &pk_b.to_string());
        let page = if route.method == reqwest::Method::POST {
            staff.submit("/orders", &path, &[("target", "cancelled"), ("cancel_reason", "210"), ("note", "x")]).await
        } else {
            staff.get(&path).await
        };
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{} {} with store B's order", route.method, route.path);
        walked += 1;
    }
    assert!(walked >= 5, "the order routes were walked ({walked})");
    // Store B's own pages and order work (import, re-import, reconcile) are B's too.
    for route in orderdesk::web::routes().list() {
        if !route.path.contains("{store_id}") {
            continue;
        }
        let path = route.path.replace("{store_id}", &b.to_string());
        let page = if route.method == reqwest::Method::POST {
            staff.submit("/orders", &path, &[("order_ids", "b-order-1")]).await
        } else {
            staff.get(&path).await
        };
        assert!(
            matches!(page.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN),
            "{} {} with store B: {}",
            route.method,
            route.path,
            page.status
        );
    }

    for path in ["/orders", "/orders?hold=held", "/orders?store=", "/", "/stores", "/imports", "/stock"] {
        let page = staff.get(path).await;
        assert!(!page.body.contains("b-order") && !page.body.contains("支店"), "B shows on {path}: {}", page.body);
    }
    // Stock is the account's, but reading it from store B is acting on B.
    let pull = staff.submit("/stock", "/stock/pull", &[("store", &b.to_string())]).await;
    assert_eq!(pull.status, StatusCode::NOT_FOUND, "{}", pull.body);
    let list = staff.get("/orders").await;
    let all_tab = list.select_text("nav.tabs a").into_iter().next().unwrap();
    assert!(all_tab.ends_with(" 1"), "the counts are A's only: {all_tab}");
    let csv = staff.get("/orders.csv").await;
    assert!(csv.body.contains("a-order-1") && !csv.body.contains("b-order"), "{}", csv.body);
    // Store B's id in the filter is ignored, not obeyed.
    let page = staff.get(&format!("/orders?store={b}")).await;
    assert!(!page.body.contains("b-order"));
    // The bulk change refuses B's order as not found and changes nothing.
    let pk = pk_b.to_string();
    let r = staff
        .submit("/orders", "/orders/bulk", &[("order", &pk), ("target", "cancelled"), ("cancel_reason", "210")])
        .await;
    assert!(r.body.contains("注文が見つかりません"), "{}", r.body);
    let status: String = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, String>("select internal_status from yahoo_order where id = $1")
            .bind(pk_b)
            .fetch_one(p)
            .await
    })
    .unwrap();
    assert_eq!(status, "new");
}

/// A change of a user's stores or mask is audited as before → after of what changed, in the
/// words of the store-settings entries; submitting the same again writes nothing.
async fn access_changes_are_audited_before_and_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let a = app.add_store(&owner, "A店", "shop-a", "secret-a").await;
    let b = app.add_store(&owner, "B店", "shop-b", "secret-b").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let (a, b) = (a.to_string(), b.to_string());
    let path = format!("/users/{staff_id}/access");
    let entries = || async {
        let page = owner.get("/audit?action=user_access_changed").await;
        page.select_text("table.audit tbody td:nth-child(4)")
    };

    let only_a = [("stores", "some"), ("store", &a[..])];
    assert_eq!(owner.submit("/users", &path, &only_a).await.status, StatusCode::SEE_OTHER);
    assert_eq!(entries().await, ["staff@example.jp: 担当ストア すべてのストア → A店"], "the mask did not change");

    let both_masked = [("stores", "some"), ("store", &a[..]), ("store", &b[..]), ("mask_personal", "on")];
    assert_eq!(owner.submit("/users", &path, &both_masked).await.status, StatusCode::SEE_OTHER);
    let logged = entries().await;
    assert_eq!(
        logged.first().map(String::as_str),
        Some("staff@example.jp: 担当ストア A店 → A店・B店、お客様の個人情報 表示する → 伏せる"),
        "{logged:?}"
    );

    // The same again changes nothing and writes nothing.
    assert_eq!(owner.submit("/users", &path, &both_masked).await.status, StatusCode::SEE_OTHER);
    assert_eq!(entries().await.len(), 2);

    let none_shown = [("stores", "some")];
    assert_eq!(owner.submit("/users", &path, &none_shown).await.status, StatusCode::SEE_OTHER);
    let logged = entries().await;
    assert_eq!(
        logged.first().map(String::as_str),
        Some("staff@example.jp: 担当ストア A店・B店 → なし、お客様の個人情報 伏せる → 表示する"),
        "{logged:?}"
    );
    let all = [("stores", "all")];
    assert_eq!(owner.submit("/users", &path, &all).await.status, StatusCode::SEE_OTHER);
    assert_eq!(entries().await.first().map(String::as_str), Some("staff@example.jp: 担当ストア なし → すべてのストア"));
}

crate::on_both_backends!(
    access_changes_are_audited_before_and_after,
    an_owner_limits_staff_to_one_store,
    staff_cannot_change_store_limits,
    order_pages_follow_the_scope,
    staff_limited_to_a_store_never_reach_another
);

/// The account's owner (the user sign-up made).
pub async fn owner_id(db: &orderdesk::db::Db, account: orderdesk::domain::AccountId) -> i64 {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_scalar::<_, i64>("select id from app_user where account_id = $1 and role = 'owner' order by id")
            .bind(account)
            .fetch_one(p)
            .await
    })
    .unwrap()
}
