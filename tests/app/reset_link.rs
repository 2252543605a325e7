//! Issue 16: support staff issue a one-time password reset link for a merchant owner, through
//! the real router: single use, expiring, kept only as a hash, audited in the merchant's log.

use orderdesk::db::Db;
use reqwest::StatusCode;

use crate::helpers::{Backend, Browser, PASSWORD, TestApp};

const SUPPORT_PASSWORD: &str = "support-password-123";

pub(crate) async fn support_staff(app: &TestApp) -> Browser {
    let hash = orderdesk::crypto::hash_password_blocking(SUPPORT_PASSWORD.into()).await.unwrap();
    orderdesk::db::support::create(&app.db, "sato@support.example", "佐藤", &hash).await.unwrap();
    let b = app.browser();
    assert_eq!(b.sign_in("sato@support.example", SUPPORT_PASSWORD).await.location(), "/admin");
    b
}

/// (account, user) of the user with this address, signed in yet or still pending.
pub(crate) async fn ids_of(db: &Db, email: &str) -> (String, String) {
    let (account, user): (i64, i64) = orderdesk::with_pool!(db, |p| {
        sqlx::query_as("select account_id, id from app_user where coalesce(invited_email, email) = $1")
            .bind(email)
            .fetch_one(p)
            .await
    })
    .unwrap();
    (account.to_string(), user.to_string())
}

/// Issues a link from /admin and returns its path (`/password-reset/…`).
pub async fn issue(app: &TestApp, support: &Browser, email: &str) -> String {
    let (account, user) = ids_of(&app.db, email).await;
    let admin = support.get("/admin").await;
    assert!(admin.body.contains(email), "the owner is offered on /admin");
    let page = support.submit("/admin", "/admin/password-reset", &[("account_id", &account), ("user_id", &user)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let link = page.select_text("#reset-link").pop().expect("the link is shown");
    let path = url::Url::parse(&link).unwrap().path().to_string();
    assert!(path.starts_with("/password-reset/"), "{link}");
    path
}

async fn stored_hashes(db: &Db) -> Vec<String> {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_scalar("select token_hash from password_reset_link").fetch_all(p).await
    })
    .unwrap()
}

async fn reset_link_lets_an_owner_back_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "owner@example.jp").await;
    let other_session = app.browser();
    assert_eq!(other_session.sign_in("owner@example.jp", PASSWORD).await.location(), "/");
    app.add_user(&owner, "staff@example.jp", "staff").await;
    let support = support_staff(&app).await;

    // Merchants cannot reach it, and support can issue it for owners only.
    let (account, staff_user) = ids_of(&app.db, "staff@example.jp").await;
    let refused =
        owner.submit("/", "/admin/password-reset", &[("account_id", &account), ("user_id", &staff_user)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(owner.get("/admin").await.status, StatusCode::FORBIDDEN);
    let not_owner =
        support.submit("/admin", "/admin/password-reset", &[("account_id", &account), ("user_id", &staff_user)]).await;
    assert_eq!(not_owner.status, StatusCode::NOT_FOUND, "staff users get no link");
    assert!(!app.browser().get("/admin").await.status.is_success(), "nor anyone signed out");

    let path = issue(&app, &support, "owner@example.jp").await;
    let token = path.trim_start_matches("/password-reset/");
    let hashes = stored_hashes(&app.db).await;
    assert_eq!(hashes.len(), 1);
    assert!(!hashes[0].contains(token) && hashes[0] == orderdesk::db::password_reset::token_hash(token), "only a hash");

    // The owner opens it (signed out, in any browser) and sets a new password.
    let b = app.browser();
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("owner@example.jp"));
    let mismatch =
        b.submit(&path, &path, &[("new_password", "new-password-1"), ("new_password_confirm", "new-password-2")]).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(mismatch.field_error("new_password_confirm").as_deref(), Some("確認用のパスワードが一致しません"));
    let short = b.submit(&path, &path, &[("new_password", "short"), ("new_password_confirm", "short")]).await;
    assert_eq!(short.field_error("new_password").as_deref(), Some("パスワードは10文字以上で入力してください"));
    let done =
        b.submit(&path, &path, &[("new_password", "new-password-1"), ("new_password_confirm", "new-password-1")]).await;
    assert_eq!(done.location(), "/signin?password_reset=1");
    assert!(b.get(done.location()).await.body.contains("パスワードを再設定しました"));

    // Their other sessions ended; the new password signs in, the old one does not.
    assert_eq!(other_session.get("/").await.location(), "/signin");
    assert_eq!(owner.get("/").await.location(), "/signin");
    assert_eq!(app.browser().sign_in("owner@example.jp", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.sign_in("owner@example.jp", "new-password-1").await.location(), "/");

    // Single use.
    let again = app.browser().get(&path).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.select_text("#reset-refused"), vec![orderdesk::web::password_reset::LINK_USED]);
    let replay = app
        .browser()
        .submit("/signin", &path, &[("new_password", "attacker-pass-1"), ("new_password_confirm", "attacker-pass-1")])
        .await;
    assert_eq!(replay.status, StatusCode::GONE);
    let fresh = app.browser();
    assert_eq!(fresh.sign_in("owner@example.jp", "new-password-1").await.location(), "/", "the password stands");
    let unknown = app.browser().get("/password-reset/not-a-real-token").await;
    assert_eq!(unknown.status, StatusCode::GONE);
    assert_eq!(unknown.select_text("#reset-refused"), vec![orderdesk::web::password_reset::LINK_UNKNOWN]);

    // The merchant sees both in their audit log, with the support person as the issuer.
    let audit = b.get("/audit").await;
    let rows = audit.select_text("table.audit tr");
    let issued = rows.iter().find(|r| r.contains("パスワード再設定リンクの発行")).expect("issue is audited");
    assert!(issued.contains("サポート: 佐藤") && issued.contains("owner@example.jp"), "{issued}");
    assert!(rows.iter().any(|r| r.contains("再設定リンクによるパスワード再設定")), "{rows:?}");
    assert!(!audit.body.contains(token), "the token is never in the log");
}

async fn reset_link_expires_and_only_the_newest_works(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("山田商店", "owner@example.jp").await;
    let support = support_staff(&app).await;

    let first = issue(&app, &support, "owner@example.jp").await;
    let second = issue(&app, &support, "owner@example.jp").await;
    let replaced = app.browser().get(&first).await;
    assert_eq!(replaced.status, StatusCode::GONE, "a newer link retires the older one");
    assert_eq!(replaced.select_text("#reset-refused"), vec![orderdesk::web::password_reset::LINK_EXPIRED]);
    assert_eq!(app.browser().get(&second).await.status, StatusCode::OK);

    // An hour later.
    let hour_ago = orderdesk::db::now() - chrono::Duration::minutes(61);
    orderdesk::with_pool!(&app.db, |p| {
        sqlx::query("update password_reset_link set expires_at = $1").bind(hour_ago).execute(p).await.map(|_| ())
    })
    .unwrap();
    let b = app.browser();
    let expired = b.get(&second).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert_eq!(expired.select_text("#reset-refused"), vec![orderdesk::web::password_reset::LINK_EXPIRED]);
    let post = b
        .submit("/signin", &second, &[("new_password", "new-password-1"), ("new_password_confirm", "new-password-1")])
        .await;
    assert_eq!(post.status, StatusCode::GONE);
    assert_eq!(b.sign_in("owner@example.jp", PASSWORD).await.location(), "/", "the password did not change");
}

crate::on_both_backends!(reset_link_lets_an_owner_back_in, reset_link_expires_and_only_the_newest_works);
