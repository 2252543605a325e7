//! Stores: the form's rules, defaults, editing, deleting, and the client secret never shown.

use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp};

async fn store_form_rejects_bad_input_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let page = owner
        .submit(
            "/stores/new",
            "/stores",
            &[
                ("name", "本店"),
                ("seller_id", "My Store"),
                ("environment", "sandbox"),
                ("client_secret", "typed-secret-xyz"),
                ("auto_import_interval_minutes", "0"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        page.field_error("seller_id").as_deref(),
        Some("ストアアカウントは半角英小文字・数字・ハイフンで入力してください")
    );
    assert_eq!(
        page.field_error("auto_import_interval_minutes").as_deref(),
        Some("取込間隔は1〜1440分の整数で入力してください")
    );
    assert_eq!(page.select_attr("input[name=name]", "value"), vec!["本店"], "typed input is kept");
    assert!(!page.body.contains("typed-secret-xyz"), "a typed secret is never echoed back");
    assert!(owner.get("/stores").await.body.contains("まだストアが登録されていません"));

    let page = owner
        .submit("/stores/new", "/stores", &[("name", "本店"), ("seller_id", "honten"), ("environment", "sandbox")])
        .await;
    assert_eq!(page.field_error("seller_id").as_deref(), Some("テスト環境のストアアカウントは「snbx-」で始まります"));
}

async fn new_store_defaults_and_duplicate_seller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let form = owner.get("/stores/new").await;
    assert_eq!(
        form.select_attr("input[name=restrict_fraud_hold_changes][checked]", "name").len(),
        1,
        "fraud-hold restriction on by default"
    );
    assert!(
        form.select_attr("input[name=auto_status_change_enabled][checked]", "name").is_empty(),
        "auto status change off by default"
    );

    let id = app.add_store(&owner, "本店", "honten", "s3cret-value").await;
    let page = owner.get(&format!("/stores/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("設定済み"), "the page says a secret is set");
    assert!(page.body.contains("/stores/oauth/callback"), "the redirect URI to register is shown");

    let dup = owner
        .submit("/stores/new", "/stores", &[("name", "別名"), ("seller_id", "honten"), ("environment", "production")])
        .await;
    assert_eq!(dup.field_error("seller_id").as_deref(), Some("このストアアカウントは既に登録されています"));
}

async fn edit_keeps_secret_unless_retyped_and_delete(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "first-secret").await;
    let account = orderdesk::db::accounts::find_credentials(&app.db, "a@example.jp").await.unwrap().unwrap().account_id;
    let store_id = orderdesk::domain::StoreId(id);
    let sealed = orderdesk::db::stores::sealed_client_secret(&app.db, account, store_id).await.unwrap().unwrap();

    let edit = owner.get(&format!("/stores/{id}/edit")).await;
    assert_eq!(edit.select_attr("input[name=client_secret]", "value"), vec![""]);
    let saved = owner
        .submit(
            &format!("/stores/{id}/edit"),
            &format!("/stores/{id}"),
            &[
                ("name", "本店2"),
                ("seller_id", "honten"),
                ("environment", "simulator"),
                ("client_id", "dj00client"),
                ("client_secret", ""),
                ("auto_import_enabled", "on"),
                ("auto_import_interval_minutes", "30"),
                ("restrict_fraud_hold_changes", "on"),
            ],
        )
        .await;
    assert_eq!(saved.location(), format!("/stores/{id}"));
    let after = orderdesk::db::stores::get(&app.db, account, store_id).await.unwrap().unwrap();
    assert_eq!(
        (after.name.as_str(), after.auto_import_enabled, after.auto_import_interval_minutes),
        ("本店2", true, 30)
    );
    let still = orderdesk::db::stores::sealed_client_secret(&app.db, account, store_id).await.unwrap().unwrap();
    assert_eq!(sealed, still, "blank secret keeps the stored one");

    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("ストア名 本店 → 本店2"), "the change is described in the audit log");
    assert!(audit.body.contains("取込間隔(分) 15 → 30"));

    let deleted = owner.submit(&format!("/stores/{id}"), &format!("/stores/{id}/delete"), &[]).await;
    assert_eq!(deleted.location(), "/stores");
    assert_eq!(owner.get(&format!("/stores/{id}")).await.status, StatusCode::NOT_FOUND);
}

async fn staff_cannot_change_stores(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "x").await;
    app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    assert_eq!(staff.get(&format!("/stores/{id}")).await.status, StatusCode::OK);
    assert_eq!(staff.get(&format!("/stores/{id}/edit")).await.status, StatusCode::FORBIDDEN);
    let del = staff.submit(&format!("/stores/{id}"), &format!("/stores/{id}/delete"), &[]).await;
    assert_eq!(del.status, StatusCode::FORBIDDEN);
    assert_eq!(owner.get(&format!("/stores/{id}")).await.status, StatusCode::OK, "still there");
}

/// A diagnosis box that names the public key as the cause of a px-04102 offers the key form,
/// not only 再認証 (issue 16).
async fn key_cause_offers_the_key_form(backend: Backend) {
    use orderdesk::db::stores;
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "x").await;
    let account = orderdesk::db::accounts::find_credentials(&app.db, "a@example.jp").await.unwrap().unwrap().account_id;
    let store = orderdesk::domain::StoreId(id);
    // Connected, no public key, and Yahoo ended the API session (px-04102).
    let now = orderdesk::db::now();
    let sealed = vec![2_u8; 64];
    stores::save_authorization(&app.db, account, store, sealed.clone(), sealed.clone(), now, now, None).await.unwrap();
    stores::record_call(&app.db, account, store, &sealed, None, None, Some("px-04102")).await.unwrap();

    let page = owner.get(&format!("/stores/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.html();
    let boxes = scraper::Selector::parse("#connection .diagnosis").unwrap();
    let key_box = html
        .select(&boxes)
        .find(|b| b.text().collect::<String>().contains("px-04102"))
        .expect("the px-04102 box is shown");
    let text = key_box.text().collect::<String>();
    assert!(text.contains("公開鍵"), "the box names the key as the cause: {text}");
    let link = scraper::Selector::parse("a.button").unwrap();
    let hrefs: Vec<_> = key_box.select(&link).filter_map(|a| a.value().attr("href")).collect();
    assert_eq!(hrefs, vec![format!("/stores/{id}/public-key")], "the box offers the key form");
    let reauth = scraper::Selector::parse("button.reauthorize").unwrap();
    assert_eq!(key_box.select(&reauth).count(), 1, "and 再認証 too");
    assert_eq!(owner.get(hrefs[0]).await.status, StatusCode::OK, "the key form opens");
}

/// A call that was under way when the owner disconnected the store (a new seller ID) answers
/// afterwards: what it says belongs to the old connection and changes nothing on the store, and
/// a token it refreshed is not kept.
async fn an_answer_after_disconnecting_changes_nothing(backend: Backend) {
    use orderdesk::db::stores;
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "x").await;
    let account = orderdesk::db::accounts::find_credentials(&app.db, "a@example.jp").await.unwrap().unwrap().account_id;
    let store = orderdesk::domain::StoreId(id);
    let now = orderdesk::db::now();
    let old = vec![2_u8; 64];
    stores::save_authorization(&app.db, account, store, old.clone(), old.clone(), now, now, None).await.unwrap();
    let path = format!("/stores/{id}");
    let fields = [
        ("name", "本店"),
        ("seller_id", "honten-2"),
        ("environment", "simulator"),
        ("client_id", "x"),
        ("restrict_fraud_hold_changes", "on"),
        ("confirm_disconnect", "on"),
    ];
    let done = owner.submit(&format!("{path}/edit"), &path, &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    // The old connection's answers arrive now.
    stores::record_call(&app.db, account, store, &old, Some("authorized"), Some(1500), None).await.unwrap();
    let later = now + chrono::Duration::hours(1);
    let kept = stores::save_access_token(&app.db, account, store, &old, vec![3_u8; 64], later).await.unwrap();
    assert!(!kept, "a token of the old connection is not stored");
    let page = owner.get(&path).await;
    assert_eq!(page.select_text("#connected"), vec!["未連携"]);
    assert_eq!(page.select_attr("#authorize-status", "data-status"), vec![""], "no 公開鍵認証 result");

    // On the connection the store has, answers are written as before.
    let new = vec![4_u8; 64];
    stores::save_authorization(&app.db, account, store, new.clone(), new.clone(), now, now, None).await.unwrap();
    stores::record_call(&app.db, account, store, &new, Some("authorized"), Some(0), None).await.unwrap();
    assert!(stores::save_access_token(&app.db, account, store, &new, vec![5_u8; 64], later).await.unwrap());
    let page = owner.get(&path).await;
    assert_eq!(page.select_attr("#authorize-status", "data-status"), vec!["authorized"]);
}

crate::on_both_backends!(
    an_answer_after_disconnecting_changes_nothing,
    key_cause_offers_the_key_form,
    store_form_rejects_bad_input_and_stores_nothing,
    new_store_defaults_and_duplicate_seller,
    edit_keeps_secret_unless_retyped_and_delete,
    staff_cannot_change_stores,
);
