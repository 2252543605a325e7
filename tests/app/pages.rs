//! What a merchant sees around the edges: error pages inside the app's frame, the way back
//! after sign-in and sign-out, the store checklist, input normalisation.

use reqwest::{StatusCode, header};

use crate::helpers::{Backend, Page, TestApp};

/// An error page drawn by the app: Japanese, inside the frame, with a way back.
fn assert_error_page(page: &Page, status: StatusCode, signed_in: bool, what: &str) {
    assert_eq!(page.status, status, "{what}: {}", page.body);
    let content_type = page.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(content_type.starts_with("text/html"), "{what}: {content_type}");
    assert_eq!(page.select_text("header.site-header .brand"), vec!["オーダーデスク"], "{what}: app frame");
    assert_eq!(page.select_text("main h1").len(), 1, "{what}: a heading");
    assert!(!page.select_text(".error-message[role=alert]").is_empty(), "{what}: a message");
    assert!(!page.select_attr(".way-back a", "href").is_empty(), "{what}: a way back");
    assert_eq!(!page.select_text("nav.main-nav").is_empty(), signed_in, "{what}: navigation kept when signed in");
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
    staff.sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    assert_error_page(&staff.get("/users").await, StatusCode::FORBIDDEN, true, "staff on /users");

    // Machines' endpoints stay plain.
    let health = visitor.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (StatusCode::OK, "ok\n"));
}

crate::on_both_backends!(every_error_status_gets_the_japanese_page);
