//! Sign-up, sign-in, sign-out, session rotation, throttling, password change, user management.

use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp};

const BAD_CREDENTIALS: &str = "メールアドレスまたはパスワードが正しくありません";

/// The whole first visit: sign up, sign in again, add two stores and a staff user, read the
/// audit log, sign out.
async fn newcomer_story(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("山田商店", "taro@example.jp").await;
    let home = owner.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("ストアを追加"), "a new account starts with adding a store");
    let after_signup = app.browser().get("/signin?signed_up=1").await;
    assert!(after_signup.body.contains("登録を受け付けました"), "what sign-up answers");
    assert_eq!(home.select_text(".account"), vec!["山田商店"]);

    assert_eq!(owner.sign_out().await.location(), "/signin?signed_out=1");
    assert_eq!(owner.get("/").await.location(), "/signin", "signed out");
    let signed_in = owner.sign_in("Taro@Example.jp", PASSWORD).await;
    assert_eq!((signed_in.status, signed_in.location()), (StatusCode::SEE_OTHER, "/"));

    let first = app.add_store(&owner, "本店", "yamada-honten", "secret-1").await;
    let second = app.add_store(&owner, "アウトレット", "yamada-outlet", "secret-2").await;
    assert_ne!(first, second);
    let header_stores = owner.get("/").await.select_text(".store-nav a");
    assert_eq!(header_stores, vec!["アウトレット", "本店"]);

    app.add_user(&owner, "hanako@example.jp", "staff").await;
    let staff = app.browser();
    // The first sign-in with the owner's 初期パスワード asks for a password of their own.
    assert_eq!(staff.sign_in("hanako@example.jp", PASSWORD).await.location(), "/account/password?first=1");
    assert_eq!(staff.get("/users").await.status, StatusCode::FORBIDDEN, "staff do not manage users");
    assert_eq!(staff.get("/stores").await.status, StatusCode::OK, "staff see stores");

    let audit = owner.get("/audit").await;
    assert_eq!(audit.status, StatusCode::OK);
    let actions = audit.select_text("table.audit td:nth-child(3)");
    for expected in ["ログイン", "ログアウト", "ストア追加", "ユーザー追加"] {
        assert!(actions.iter().any(|a| a == expected), "audit log lacks {expected}: {actions:?}");
    }
    assert_eq!(owner.sign_out().await.location(), "/signin?signed_out=1");
}

async fn unknown_email_and_wrong_password_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("A", "a@example.jp").await;
    let unknown = app.browser().sign_in("nobody@example.jp", PASSWORD).await;
    let wrong = app.browser().sign_in("a@example.jp", "wrong password!").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.select_text(".form-error"), vec![BAD_CREDENTIALS]);
    assert_eq!(unknown.select_text(".form-error"), wrong.select_text(".form-error"));
}

async fn session_id_rotates_at_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("A", "a@example.jp").await.sign_out().await;
    let b = app.browser();
    b.get("/signin").await;
    assert_eq!(b.session_cookie(), None, "an anonymous visit has no session");
    // A session ID planted before sign-in (say, by an attacker) does not carry the sign-in.
    let before = "planted-session-id-0000000000000";
    b.jar.add_cookie_str(&format!("orderdesk={before}; Path=/"), &app.base.parse().unwrap());
    assert_eq!(b.sign_in("a@example.jp", PASSWORD).await.location(), "/");
    let after = b.session_cookie().expect("signed-in session");
    assert_ne!(before, after, "session ID must change at sign-in");

    let planted = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let r = planted.get(format!("{}/", app.base)).header("cookie", format!("orderdesk={before}")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/signin");
    let r = planted.get(format!("{}/", app.base)).header("cookie", format!("orderdesk={after}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn repeated_failures_are_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signin_max_failures_per_email = 3;
        c.signin_max_failures_per_ip = 6;
    })
    .await;
    app.owner("A", "a@example.jp").await;
    app.owner("B", "b@example.jp").await;
    let attacker = app.browser();
    for _ in 0..3 {
        assert_eq!(attacker.sign_in("a@example.jp", "guess guess guess").await.status, StatusCode::UNAUTHORIZED);
    }
    // Per account: even the right password is refused now.
    let page = app.browser().sign_in("a@example.jp", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("一時的にログインを制限しています"));
    // Another account is not affected by A's failures...
    assert_eq!(app.browser().sign_in("b@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER);
    // ...until the address has failed too often across emails.
    for i in 0..3 {
        attacker.sign_in(&format!("spray{i}@example.jp"), "guess guess guess").await;
    }
    assert_eq!(app.browser().sign_in("b@example.jp", PASSWORD).await.status, StatusCode::TOO_MANY_REQUESTS);
    // The failures are in A's audit log (written off the request path; wait for it).
    let a_entries = wait_for_audit(&app, "a@example.jp", "ログイン失敗").await;
    assert!(a_entries >= 3, "failed sign-ins recorded: {a_entries}");
}

async fn wait_for_audit(app: &TestApp, email: &str, action: &str) -> usize {
    use orderdesk::db::{accounts, audit};
    let creds = accounts::find_credentials(&app.db, email).await.unwrap().unwrap();
    for _ in 0..100 {
        let entries = audit::page(&app.db, creds.account_id, None, 100).await.unwrap();
        let n = entries.iter().filter(|e| e.action_label() == action).count();
        if n >= 3 {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    0
}

async fn signup_validates_and_keeps_input(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("A", "a@example.jp").await;
    let b = app.browser();
    let page = b
        .submit(
            "/signup",
            "/signup",
            &[
                ("account_name", "新しい店"),
                ("display_name", ""),
                ("email", "A@example.jp"),
                ("password", "short"),
                ("password_confirm", "short"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(page.field_error("display_name").as_deref(), Some("お名前を入力してください"));
    assert_eq!(page.field_error("password").as_deref(), Some("パスワードは10文字以上で入力してください"));
    assert_eq!(page.select_attr("input[name=account_name]", "value"), vec!["新しい店"]);
    let page = b
        .submit(
            "/signup",
            "/signup",
            &[
                ("account_name", "新しい店"),
                ("display_name", "次郎"),
                ("email", "A@example.jp"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    // The same answer as for a new email (hardening::signup_does_not_tell_which_emails_exist).
    assert_eq!(page.location(), "/signin?signed_up=1");
    assert_eq!(b.get("/").await.location(), "/signin", "nothing was created");
    assert_eq!(b.sign_in("a@example.jp", PASSWORD).await.status, StatusCode::SEE_OTHER, "the owner is untouched");
}

async fn password_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let bad = owner
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", "nope"),
                ("new_password", "another long one"),
                ("new_password_confirm", "another long one"),
            ],
        )
        .await;
    assert_eq!(bad.field_error("current_password").as_deref(), Some("現在のパスワードが正しくありません"));
    let good = owner
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "another long one"),
                ("new_password_confirm", "another long one"),
            ],
        )
        .await;
    assert_eq!(good.location(), "/");
    assert_eq!(app.browser().sign_in("a@example.jp", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.browser().sign_in("a@example.jp", "another long one").await.location(), "/");
}

async fn owners_remove_users_whose_sessions_end(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    staff.sign_in("staff@example.jp", PASSWORD).await;
    assert_eq!(staff.get("/").await.status, StatusCode::OK);
    let removed = owner.submit("/users", &format!("/users/{staff_id}/delete"), &[]).await;
    assert_eq!(removed.location(), "/users");
    assert_eq!(staff.get("/").await.location(), "/signin", "a removed user's session ends");
    // Owners cannot remove themselves (so an account always keeps an owner).
    let me = owner.get("/users").await;
    assert!(me.body.contains("（あなた）"));
}

crate::on_both_backends!(
    newcomer_story,
    unknown_email_and_wrong_password_look_the_same,
    session_id_rotates_at_sign_in,
    repeated_failures_are_throttled,
    signup_validates_and_keeps_input,
    password_change,
    owners_remove_users_whose_sessions_end,
);
