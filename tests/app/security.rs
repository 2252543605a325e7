//! CSRF, cookies, headers, the support view's fence, and secrets kept out of pages and logs.

use orderdesk::web::routes;
use reqwest::{StatusCode, header};

use crate::helpers::{Backend, PASSWORD, TestApp, captured_logs};

async fn cross_site_posts_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let fields = [("name", "本店"), ("seller_id", "honten"), ("environment", "simulator")];

    // No token at all (a plain cross-site form post).
    let page = owner.post_raw("/stores", &fields, &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("別のサイトから送信されました"));

    // The right token but from another origin.
    let token = owner.get("/").await.csrf_token().unwrap();
    let mut with_token = vec![("csrf_token", token.as_str())];
    with_token.extend_from_slice(&fields);
    let page = owner.post_raw("/stores", &with_token, &[("origin", "https://evil.example")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = owner.post_raw("/stores", &with_token, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    // A wrong token.
    let mut wrong = vec![("csrf_token", "forged")];
    wrong.extend_from_slice(&fields);
    assert_eq!(owner.post_raw("/stores", &wrong, &[]).await.status, StatusCode::FORBIDDEN);

    assert!(owner.get("/stores").await.body.contains("まだストアが登録されていません"), "nothing was created");

    // Same origin with the token works.
    let ok = owner
        .post_raw("/stores", &with_token, &[("origin", app.base.as_str()), ("sec-fetch-site", "same-origin")])
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    // Sign-out is state-changing too.
    assert_eq!(owner.post_raw("/signout", &[], &[]).await.status, StatusCode::FORBIDDEN);
}

async fn every_post_route_requires_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    for route in routes().list().iter().filter(|r| r.method == reqwest::Method::POST) {
        let path = route.path.replace("{store_id}", "1").replace("{user_id}", "1");
        let page = owner.post_raw(&path, &[], &[]).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "POST {} without a token", route.path);
    }
}

async fn cookies_and_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = app.browser();
    let page = b.get("/signin").await;
    // Not signed in: only the signed CSRF cookie, no session.
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("orderdesk-csrf="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http localhost cannot use Secure: {cookie}");
    let signed_up = b
        .submit(
            "/signup",
            "/signup",
            &[
                ("account_name", "A"),
                ("display_name", "A"),
                ("email", "a@example.jp"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed_up.location(), "/signin?signed_up=1");
    let signed_in = b.sign_in("a@example.jp", PASSWORD).await;
    let session = signed_in
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("orderdesk="))
        .expect("a session once signed in")
        .to_string();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"));
    let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline")
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(page.headers[header::REFERRER_POLICY], "same-origin");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(!page.body.contains("<script>"), "no inline script");

    let public =
        TestApp::spawn_with(backend, |c| c.public_url = Some("https://desk.example.jp/".parse().unwrap())).await;
    let page = public.browser().get("/signin").await;
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with("__Host-orderdesk-csrf=") && cookie.contains("Secure"), "{cookie}");
}

async fn merchants_are_refused_at_admin_and_support_gets_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "a@example.jp").await;
    assert_eq!(owner.get("/admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.browser().get("/admin").await.location(), "/signin?next=%2Fadmin");

    orderdesk::cli::admin::create(&app.config, "support@orderdesk.example", "佐藤", Some(PASSWORD.to_string()))
        .await
        .unwrap();
    let support = app.browser();
    let page = support.sign_in("support@orderdesk.example", PASSWORD).await;
    assert_eq!(page.location(), "/admin");
    let admin = support.get("/admin").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("山田商店"));
    assert_eq!(support.get("/stores").await.status, StatusCode::FORBIDDEN, "support is not a merchant user");
    assert_eq!(support.get("/").await.location(), "/admin");
}

async fn secrets_never_reach_pages_or_logs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let secret = format!("client-secret-{}", orderdesk::crypto::random_token());
    let id = app.add_store(&owner, "本店", "honten", &secret).await;
    let mut seen = Vec::new();
    for route in routes().list().iter().filter(|r| r.method == reqwest::Method::GET) {
        let path = route.path.replace("{store_id}", &id.to_string()).replace("{file}", "app.js");
        let page = owner.get(&path).await;
        assert!(!page.body.contains(&secret), "secret rendered on {path}");
        assert!(!page.body.contains(PASSWORD), "password rendered on {path}");
        seen.push(path);
    }
    assert!(seen.iter().any(|p| p.ends_with("/edit")));
    // Also the stored value is not the plain text.
    let account = orderdesk::db::accounts::find_credentials(&app.db, "a@example.jp").await.unwrap().unwrap().account_id;
    let sealed = orderdesk::db::stores::sealed_client_secret(&app.db, account, orderdesk::domain::StoreId(id))
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret), "encrypted at rest");
    let logs = captured_logs();
    assert!(!logs.is_empty(), "logs are captured");
    assert!(!logs.contains(&secret), "secret in logs");
    assert!(!logs.contains(PASSWORD), "password in logs");
}

async fn health_and_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = app.browser();
    let health = b.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (StatusCode::OK, "ok\n"));
    b.get("/signin").await;
    let metrics = b.get("/metrics").await;
    assert!(metrics.body.contains("http_requests_total"), "{}", metrics.body);
    assert!(metrics.body.contains("path=\"/signin\""));
}

crate::on_both_backends!(
    cross_site_posts_are_refused,
    every_post_route_requires_the_token,
    cookies_and_security_headers,
    merchants_are_refused_at_admin_and_support_gets_in,
    secrets_never_reach_pages_or_logs,
    health_and_metrics,
);
