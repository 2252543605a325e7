//! What a merchant sees around the edges: error pages inside the app's frame, the way back
//! after sign-in and sign-out, the store checklist, input normalisation.

use reqwest::{StatusCode, header};

use crate::helpers::{Backend, PASSWORD, Page, TestApp};

/// An error page drawn by the app: Japanese, inside the frame, with a way back.
fn assert_error_page(page: &Page, status: StatusCode, signed_in: bool, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    let content_type = page.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{what}: {content_type}");
    assert_eq!(page.select_text("header.site-header .brand"), vec!["オーダーデスク"], "{what}: app frame");
    assert_eq!(page.select_text("main h1").len(), 1, "{what}: a heading");
    assert!(!page.select_text(".error-message[role=alert]").is_empty(), "{what}: a message");
    assert!(!page.select_attr(".way-back a", "href").is_empty(), "{what}: a way back");
    assert_eq!(
        !page.select_text("details.menu nav.main-nav").is_empty(),
        signed_in,
        "{what}: navigation kept when signed in"
    );
    for english in ["Invalid URL", "Cannot parse", "Failed to deserialize", "Method Not Allowed"] {
        assert!(!page.body.contains(english), "{what}: raw text {english:?} in {}", page.body);
    }
}

async fn every_error_status_gets_the_japanese_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let visitor = app.browser();
    assert_error_page(&visitor.get("/no/such/page").await, StatusCode::NOT_FOUND, false, "unknown path, signed out");
    assert_error_page(&visitor.get("/signout").await, StatusCode::METHOD_NOT_ALLOWED, false, "GET /signout");

    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "secret-1").await;
    assert_error_page(&owner.get("/no/such/page").await, StatusCode::NOT_FOUND, true, "unknown path");
    let page = owner.get("/signout").await;
    assert_error_page(&page, StatusCode::METHOD_NOT_ALLOWED, true, "GET /signout");
    assert!(page.headers.contains_key(header::ALLOW), "405 keeps its Allow header");
    assert_error_page(&owner.get("/stores/abc").await, StatusCode::BAD_REQUEST, true, "malformed path id");
    assert_error_page(&owner.get("/stores/99999999999999999999").await, StatusCode::BAD_REQUEST, true, "id overflow");
    assert_error_page(&owner.get("/orders?store=1&store=2").await, StatusCode::BAD_REQUEST, true, "malformed query");
    assert_error_page(&owner.get("/stores/999999").await, StatusCode::NOT_FOUND, true, "unknown store");

    // A malformed form body (a field twice), with a valid token: refused, nothing started.
    let token = owner.get("/stores").await.csrf_token().unwrap();
    let fields = [("csrf_token", token.as_str()), ("from", "2026-01-01"), ("from", "2026-01-02")];
    let page = owner.post_raw(&format!("/stores/{id}/import"), &fields, &[]).await;
    assert_error_page(&page, StatusCode::BAD_REQUEST, true, "malformed form");
    // A body of the wrong type (the CSRF check cannot find its token in it).
    let r = owner
        .client
        .post(format!("{}/signin", app.base))
        .header(header::CONTENT_TYPE, "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let page = Page { status: r.status(), headers: r.headers().clone(), body: r.text().await.unwrap() };
    assert_error_page(&page, StatusCode::FORBIDDEN, true, "wrong content type");

    // Staff asking for an owner's page: 403 with their navigation.
    app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    staff.sign_in("staff@example.jp", PASSWORD).await;
    assert_error_page(&staff.get("/users").await, StatusCode::FORBIDDEN, true, "staff on /users");

    // Machines' endpoints stay plain.
    let health = visitor.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (StatusCode::OK, "ok\n"));
}

async fn sign_out_says_so_and_sign_in_returns_to_the_page_asked_for(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let out = owner.sign_out().await;
    assert_eq!(out.location(), "/signin?signed_out=1");
    let signin = owner.get(out.location()).await;
    assert_eq!(signin.select_text(".flash-success"), vec!["ログアウトしました。"]);
    assert!(owner.get("/signin").await.select_text(".flash").is_empty(), "said once");

    // A bookmarked page while signed out: sign in, land on it.
    let asked = owner.get("/orders?status=new").await;
    assert_eq!(asked.location(), "/signin?next=%2Forders%3Fstatus%3Dnew");
    let form = owner.get(asked.location()).await;
    assert_eq!(form.select_attr("input[name=next]", "value"), vec!["/orders?status=new"]);
    let page = owner
        .submit(
            asked.location(),
            "/signin",
            &[("email", "a@example.jp"), ("password", PASSWORD), ("next", "/orders?status=new")],
        )
        .await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/orders?status=new"));

    // Only local paths: other sites and odd forms go to the dashboard.
    for evil in
        ["//evil.example/", "https://evil.example/", "/\\evil.example", "http:/evil", "/\tevil", "javascript:alert(1)"]
    {
        let b = app.browser();
        let form = b.get(&format!("/signin?next={}", urlencode(evil))).await;
        assert!(form.select_attr("input[name=next]", "value").is_empty(), "{evil} not carried");
        let page =
            b.submit("/signin", "/signin", &[("email", "a@example.jp"), ("password", PASSWORD), ("next", evil)]).await;
        assert_eq!(page.location(), "/", "{evil}");
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn lock_out_says_how_long_and_warns_before_the_last_attempt(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signin_max_failures_per_email = 3;
        c.signin_max_failures_per_ip = 100;
        c.signin_window_minutes = 15;
    })
    .await;
    app.owner("A", "a@example.jp").await;
    let b = app.browser();
    let first = b.sign_in("a@example.jp", "wrong wrong wrong").await;
    assert!(first.select_text(".form-warning").is_empty(), "no warning while attempts remain");
    assert_eq!(first.select_attr("#email", "aria-invalid"), vec!["true"]);
    assert_eq!(first.select_attr("#email", "aria-describedby"), vec!["signin-error"]);
    let second = b.sign_in("a@example.jp", "wrong wrong wrong").await;
    assert_eq!(
        second.select_text(".form-warning[role=alert]"),
        vec!["あと1回失敗すると、15分ほどログインできなくなります。"]
    );
    let third = b.sign_in("a@example.jp", "wrong wrong wrong").await;
    assert_eq!(third.status, StatusCode::UNAUTHORIZED);
    let locked = b.sign_in("a@example.jp", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let message = locked.select_text(".form-error").join("");
    assert!(message.contains("15分ほど待ってから"), "{message}");
    assert!(message.contains("オーナーにパスワードの再設定を依頼"), "{message}");
}

async fn an_owner_resets_another_users_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let path = format!("/users/{staff_id}/password");

    // Too short: refused, nothing changed.
    let short = owner.submit("/users", &path, &[("new_password", "short")]).await;
    assert_eq!(short.location(), "/users");
    assert!(!owner.get("/users").await.select_text(".flash-error[role=alert]").is_empty());
    assert_eq!(
        app.browser().sign_in("staff@example.jp", PASSWORD).await.location(),
        "/account/password?first=1",
        "the first sign-in asks for their own password"
    );

    let done = owner.submit("/users", &path, &[("new_password", "temporary pass 123")]).await;
    assert_eq!(done.location(), "/users");
    let users = owner.get("/users").await;
    assert!(users.select_text(".flash-success").join("").contains("パスワードを再設定しました"));
    assert_eq!(app.browser().sign_in("staff@example.jp", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.browser().sign_in("staff@example.jp", "temporary pass 123").await.location(), "/");

    // Audited, with whose password it was.
    let audit = owner.get("/audit").await;
    let rows = audit.select_text("table.audit tr");
    assert!(rows.iter().any(|r| r.contains("パスワード再設定") && r.contains("staff@example.jp")), "{rows:?}");

    // Staff cannot reset anyone's password; another account's user is not found.
    let staff = app.browser();
    staff.sign_in("staff@example.jp", "temporary pass 123").await;
    let own_id = staff_id.to_string();
    let refused =
        staff.submit("/", &format!("/users/{own_id}/password"), &[("new_password", "another pass 456")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let other = app.owner("B", "b@example.jp").await;
    let refused = other.submit("/users", &path, &[("new_password", "another pass 456")]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

/// The step marked next, and the one primary button it offers.
fn next_step(page: &Page) -> (String, Vec<String>) {
    let step = page.select_attr("ol.checklist li[aria-current=step]", "data-step");
    assert!(step.len() <= 1, "one next step: {step:?}");
    (step.join(""), page.select_text("main .primary"))
}

async fn the_store_page_is_a_checklist_with_one_next_step(backend: Backend) {
    let s = crate::import::shop(backend, |_| {}).await;
    let owner = &s.owner;

    // ① A store without its app's secret: the add form shows the redirect URI first.
    let form = owner.get("/stores/new").await;
    assert_eq!(form.select_text("#redirect-uri"), vec![s.app.config.redirect_uri()]);
    assert!(
        form.select_attr("input[name=stock_sync_enabled]", "name").len() == 1
            && form.select_attr("input[name=stock_sync_enabled]", "disabled").is_empty(),
        "在庫連動 is offered"
    );
    let page = owner
        .submit("/stores/new", "/stores", &[("name", "支店"), ("seller_id", "shop-b"), ("environment", "simulator")])
        .await;
    let fresh = page.location().to_string();
    assert_eq!(
        next_step(&owner.get(&fresh).await),
        ("register".into(), vec!["Client ID とシークレットを入力する".into()])
    );

    // The connected store with its key: ④ 接続テスト is next, then everything is done.
    let path = format!("/stores/{}", s.store);
    let page = owner.get(&path).await;
    assert_eq!(next_step(&page), ("test".into(), vec!["接続テスト".into()]));
    assert_eq!(page.select_attr("li.step.done", "data-step"), vec!["register", "connect", "key"]);
    let tested = owner.submit(&path, &format!("{path}/test"), &[]).await;
    assert_eq!(tested.status, StatusCode::SEE_OTHER);
    let page = owner.get(&path).await;
    // What happens next: this store's automatic import is off, so 手動取込.
    assert!(
        page.select_text(".flash-success").join("").contains("これで準備は完了です。自動受注取込がオフ"),
        "what happens next"
    );
    assert_eq!(next_step(&page), (String::new(), vec![]));
    assert!(page.select_text("#ready").join("").contains("「手動取込」で取り込みます"));
    crate::import::set_auto(&s.app.db, s.store, true).await;
    assert!(owner.get(&path).await.select_text("#ready").join("").contains("1分ごとに自動で取り込まれ"));
    assert!(page.select_text("#authorize-status").join("").starts_with("公開鍵認証OK"), "in Japanese");
    assert!(!page.body.contains(">authorized"), "no raw status");
    assert_eq!(page.select_text("#connected"), vec!["連携済み"]);

    // Staff see the steps but not the owner's buttons.
    s.app.add_user(owner, "staff@example.jp", "staff").await;
    let staff = s.app.browser();
    staff.sign_in("staff@example.jp", PASSWORD).await;
    let page = staff.get(&fresh).await;
    assert_eq!(next_step(&page), ("register".into(), vec![]));
    assert!(page.body.contains("この手順はアカウントのオーナーが行います"));

    // Changing ストアアカウント of a connected store asks first, then clears the connection.
    let edit = format!("{path}/edit");
    let fields = [
        ("name", "本店"),
        ("seller_id", "shop-z"),
        ("environment", "simulator"),
        ("client_id", crate::sim::CLIENT_ID),
        ("restrict_fraud_hold_changes", "on"),
    ];
    let asked = owner.submit(&edit, &path, &fields).await;
    assert_eq!(asked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(asked.select_text("#confirm_disconnect-error").join("").contains("Yahoo!連携は解除されます"));
    assert_eq!(owner.get(&path).await.select_text("#connected"), vec!["連携済み"], "nothing changed yet");
    let mut confirmed = fields.to_vec();
    confirmed.push(("confirm_disconnect", "on"));
    let done = owner.submit(&edit, &path, &confirmed).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let page = owner.get(&path).await;
    assert_eq!(page.select_text("#connected"), vec!["未連携"]);
    assert_eq!(page.select_attr("#authorize-status", "data-status"), vec![""]);
    assert_eq!(next_step(&page).0, "connect");
}

async fn form_errors_are_tied_to_their_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let page = owner
        .submit(
            "/stores/new",
            "/stores",
            &[("name", ""), ("seller_id", "Bad Id"), ("environment", "simulator"), ("client_secret", "s3cret")],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.select_attr("form[novalidate]", "method").len(), 1, "the app's messages, not the browser's");
    assert_eq!(page.select_attr("#seller_id", "aria-invalid"), vec!["true"]);
    assert_eq!(page.select_attr("#seller_id", "aria-describedby"), vec!["seller_id-error"]);
    assert_eq!(page.select_text("#seller_id-error").len(), 1);
    assert_eq!(page.select_attr("#name", "aria-describedby"), vec!["name-error"]);
    assert_eq!(page.select_text(".form-error[role=alert]").len(), 1);
    // The typed secret is not sent back, and the page says so next to its field.
    assert!(!page.body.contains("s3cret"));
    assert!(page.select_text("#client_secret-cleared").join("").contains("消去しました"));
    assert_eq!(page.select_attr("#client_secret", "aria-describedby"), vec!["client_secret-cleared"]);
    // Nothing typed, nothing said to have been cleared.
    let page = owner.submit("/stores/new", "/stores", &[("name", ""), ("environment", "simulator")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.select_text("#client_secret-cleared").is_empty(), "{}", page.body);

    // Sign-up too: the app's messages, tied to their fields.
    let visitor = app.browser();
    let page = visitor.submit("/signup", "/signup", &[("email", "not an email"), ("password", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.select_attr("form[action='/signup'][novalidate]", "method").len(), 1);
    for field in ["account_name", "email", "password"] {
        assert_eq!(page.select_attr(&format!("#{field}"), "aria-invalid"), vec!["true"], "{field}");
        let described = page.select_attr(&format!("#{field}"), "aria-describedby").join("");
        assert_eq!(page.select_text(&format!("#{described}.field-error")).len(), 1, "{field}");
    }
}

async fn full_width_input_means_the_same_on_every_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = app.browser();
    let fields = [
        ("account_name", "　山田商店 "),
        ("display_name", "山田"),
        ("email", "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ"),
        ("password", PASSWORD),
        ("password_confirm", PASSWORD),
    ];
    let signed_up = b.submit("/signup", "/signup", &fields).await;
    assert_eq!(signed_up.status, StatusCode::SEE_OTHER, "{}", signed_up.body);
    assert_eq!(b.sign_in("ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ", PASSWORD).await.location(), "/");
    assert_eq!(b.get("/").await.select_text(".account"), vec!["山田商店"], "names are trimmed");
    assert_eq!(app.browser().sign_in("yamada@example.jp", PASSWORD).await.location(), "/");
    assert_eq!(app.browser().sign_in("ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ", PASSWORD).await.location(), "/");

    let added = b
        .submit(
            "/stores/new",
            "/stores",
            &[
                ("name", "本店"),
                ("seller_id", "ｄｅｍｏ－ｓｔｏｒｅ"),
                ("environment", "simulator"),
                ("client_id", "ｄｊ００ｃｌｉｅｎｔ"),
                ("client_secret", "ｓｅｃｒｅｔ"),
                ("auto_import_enabled", "on"),
                ("auto_import_interval_minutes", "１５"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let page = b.get(added.location()).await;
    assert!(page.select_text("dl.settings dd").contains(&"demo-store".to_string()), "{:?}", page.select_text("dd"));
    assert!(page.select_text("dl.settings dd").contains(&"dj00client".to_string()));
    assert!(page.select_text("#auto-import").join("").starts_with("オン（15分ごと）"));
}

/// Issue 26: an error page shows a short id that is also the request's `x-request-id` and on
/// every log line of the request, so support can match a merchant's screen to the log.
async fn an_error_page_shows_the_id_its_log_lines_carry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    let page = owner.get("/orders/not-a-number").await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let shown = page.select_text("#request-id").join("");
    assert!(shown.len() >= 8, "{}", page.body);
    assert_eq!(page.headers["x-request-id"].to_str().unwrap(), shown);
    let logs = crate::helpers::captured_logs();
    assert!(
        logs.lines().any(|l| l.contains(&format!("id={shown}")) && l.contains("bare error answer replaced")),
        "the request's log line carries its id: {:?}",
        logs.lines().rfind(|l| l.contains("bare error answer replaced"))
    );
    let ok = owner.get("/").await;
    assert!(ok.headers.contains_key("x-request-id"), "every answer has one");
}

crate::on_both_backends!(
    an_error_page_shows_the_id_its_log_lines_carry,
    full_width_input_means_the_same_on_every_form,
    the_store_page_is_a_checklist_with_one_next_step,
    form_errors_are_tied_to_their_fields,
    every_error_status_gets_the_japanese_page,
    sign_out_says_so_and_sign_in_returns_to_the_page_asked_for,
    lock_out_says_how_long_and_warns_before_the_last_attempt,
    an_owner_resets_another_users_password,
);
