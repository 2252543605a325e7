//! Issue 14: ids, sessions, sign-in throttling, secrets, CSRF behind a proxy and the other
//! hardening points, each tried the way an attacker would.

use reqwest::StatusCode;

use crate::helpers::{Backend, Browser, PASSWORD, Page, TestApp};

const THROTTLED: &str = "一時的にログイン";

/// Signs in as if through our reverse proxy, which sent `forwarded` as X-Forwarded-For.
async fn sign_in_via(b: &Browser, forwarded: &str, email: &str, password: &str) -> Page {
    let token = b.get("/signin").await.csrf_token().expect("sign-in form");
    b.post_raw(
        "/signin",
        &[("csrf_token", &token), ("email", email), ("password", password)],
        &[("x-forwarded-for", forwarded)],
    )
    .await
}

/// Which of the two passwords signs in now (from another address, past the throttle).
async fn here_password(app: &TestApp) -> &'static str {
    let b = app.browser();
    if sign_in_via(&b, "192.0.2.1", "a@example.jp", PASSWORD).await.location() == "/" { PASSWORD } else { "other" }
}

async fn change_password(b: &Browser, current: &str, new: &str) -> Page {
    b.submit(
        "/account/password",
        "/account/password",
        &[("current_password", current), ("new_password", new), ("new_password_confirm", new)],
    )
    .await
}

/// A removed user's open session must not become the next user created, and a deleted store's
/// id must not go to another account's store (SQLite reused both before AUTOINCREMENT).
async fn ids_are_never_reused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    assert_eq!(
        staff.sign_in("staff@example.jp", PASSWORD).await.location(),
        "/account/password?first=1",
        "the first sign-in asks for their own password"
    );
    owner.submit("/users", &format!("/users/{staff_id}/delete"), &[]).await;
    let new_owner = app.add_user(&owner, "second-owner@example.jp", "owner").await;
    assert_ne!(new_owner, staff_id, "a removed user's id is never handed out again");
    let page = staff.get("/users").await;
    assert!(page.location().starts_with("/signin"), "the removed user's session is over ({})", page.status);

    let deleted = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let gone = owner.submit(&format!("/stores/{deleted}/edit"), &format!("/stores/{deleted}/delete"), &[]).await;
    assert_eq!(gone.location(), "/stores");
    let other = app.owner("B", "b@example.jp").await;
    let theirs = app.add_store(&other, "B店", "b-store", "secret-2").await;
    assert_ne!(theirs, deleted, "a deleted store's id went to another account");
}

/// Changing the password ends the user's other sessions at once; the one that changed it stays.
async fn password_change_ends_other_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let here = app.owner("A", "a@example.jp").await;
    let elsewhere = app.browser();
    assert_eq!(elsewhere.sign_in("a@example.jp", PASSWORD).await.location(), "/");
    assert_eq!(elsewhere.get("/").await.status, StatusCode::OK);
    assert_eq!(change_password(&here, PASSWORD, "a brand new password").await.location(), "/");
    assert_eq!(elsewhere.get("/").await.location(), "/signin", "the other session ended");
    assert_eq!(here.get("/").await.status, StatusCode::OK, "the session that changed it goes on");
}

/// Wrong current passwords on the password form count like failed sign-ins: after the limit
/// even the right one is refused, and the failures are in the audit log.
async fn password_form_is_throttled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.signin_max_failures_per_email = 3;
        c.trusted_proxy_hops = 1;
    })
    .await;
    let owner = app.owner("A", "a@example.jp").await;
    for _ in 0..3 {
        let page = change_password(&owner, "wrong guess!", "a brand new password").await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let page = change_password(&owner, PASSWORD, "a brand new password").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains(THROTTLED));
    assert_eq!(here_password(&app).await, PASSWORD, "the password did not change");
    let audit = owner.get("/audit").await;
    let failed = audit.select_text("table.audit td:nth-child(3)").iter().filter(|a| *a == "ログイン失敗").count();
    assert_eq!(failed, 3, "{}", audit.body);
}

/// Behind one proxy of ours only the entry it added counts: a client choosing its own
/// X-Forwarded-For gains nothing, and a huge header is neither stored nor an error.
async fn forwarded_for_trusts_only_our_proxys_hop(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxy_hops = 1;
        c.signin_max_failures_per_ip = 3;
        c.signin_max_failures_per_email = 100;
    })
    .await;
    app.owner("A", "a@example.jp").await;
    let attacker = app.browser();
    for i in 0..3 {
        let page =
            sign_in_via(&attacker, &format!("10.9.9.{i}, 203.0.113.9"), &format!("x{i}@example.jp"), "guess guess")
                .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    }
    let page = sign_in_via(&attacker, "10.9.9.99, 203.0.113.9", "a@example.jp", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "a spoofed left entry does not escape the limit");
    let huge = format!("{}, 198.51.100.7", "1".repeat(6000));
    let page = sign_in_via(&attacker, &huge, "nobody@example.jp", "guess guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "a huge header is an ordinary attempt: {}", page.body);
    let garbage = "x".repeat(6000);
    let page = sign_in_via(&attacker, &garbage, "nobody@example.jp", "guess guess").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    let page = sign_in_via(&app.browser(), "198.51.100.7", "a@example.jp", PASSWORD).await;
    assert_eq!(page.location(), "/", "another client is not affected");
    let owner = app.browser();
    sign_in_via(&owner, "198.51.100.8", "a@example.jp", PASSWORD).await;
    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("198.51.100.8"), "the parsed address is what is recorded");
    assert!(!audit.body.contains("111111"), "never the raw header");
}

/// 40 wrong passwords at once for one email: only the limit's worth are even checked.
async fn parallel_attempts_cannot_beat_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("A", "a@example.jp").await;
    let mut ready = Vec::new();
    for _ in 0..40 {
        let b = app.browser();
        let token = b.get("/signin").await.csrf_token().unwrap();
        ready.push((b, token));
    }
    let attempts = ready.iter().map(|(b, token)| async move {
        b.post_raw("/signin", &[("csrf_token", token), ("email", "a@example.jp"), ("password", "wrong guess")], &[])
            .await
    });
    let pages = futures_util::future::join_all(attempts).await;
    let checked = pages.iter().filter(|p| p.status == StatusCode::UNAUTHORIZED).count();
    let refused = pages.iter().filter(|p| p.status == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 40);
    assert!(checked <= 5, "{checked} wrong passwords were checked, the limit is 5");
}

/// Failing on someone's email locks the failing address out, not the owner at an address they
/// have signed in from; and once failures come from many addresses, only new addresses stop.
async fn third_party_cannot_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.trusted_proxy_hops = 1;
        c.signin_max_failures_per_email_new_addresses = 6;
    })
    .await;
    app.owner("A", "a@example.jp").await;
    assert_eq!(sign_in_via(&app.browser(), "198.51.100.1", "a@example.jp", PASSWORD).await.location(), "/");
    let attacker = app.browser();
    for i in 0..10 {
        sign_in_via(&attacker, "203.0.113.9", "a@example.jp", &format!("guess {i} guess")).await;
    }
    let page = sign_in_via(&attacker, "203.0.113.9", "a@example.jp", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "the attacker's address is locked");
    assert_eq!(sign_in_via(&app.browser(), "198.51.100.1", "a@example.jp", PASSWORD).await.location(), "/");
    // The failures (11 from unknown addresses) are over the email's limit for new addresses...
    let page = sign_in_via(&app.browser(), "198.51.100.2", "a@example.jp", PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    // ...but the owner's known address still works.
    assert_eq!(sign_in_via(&app.browser(), "198.51.100.1", "a@example.jp", PASSWORD).await.location(), "/");
}

/// Sign-ups are limited per address.
async fn signup_is_throttled_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.signup_max_per_ip = 2).await;
    app.owner("A", "a@example.jp").await;
    app.owner("B", "b@example.jp").await;
    let b = app.browser();
    let page = b
        .submit(
            "/signup",
            "/signup",
            &[
                ("account_name", "C"),
                ("display_name", "C"),
                ("email", "c@example.jp"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.body.contains("一時的に新規登録を制限しています"));
    assert_eq!(b.sign_in("c@example.jp", PASSWORD).await.status, StatusCode::UNAUTHORIZED, "nothing was created");
}

/// Rows in the session table.
async fn session_rows(app: &TestApp) -> i64 {
    match &app.db {
        orderdesk::db::Db::Sqlite(p) => {
            sqlx::query_scalar("select count(*) from tower_sessions").fetch_one(p).await.unwrap()
        }
        orderdesk::db::Db::Postgres(p) => {
            sqlx::query_scalar("select count(*) from tower_sessions.session").fetch_one(p).await.unwrap()
        }
    }
}

/// Anonymous visits (the sign-in and sign-up pages, failed attempts) write no session row and
/// set no session cookie; their forms work with the signed CSRF cookie.
async fn anonymous_visits_write_no_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("A", "a@example.jp").await.sign_out().await;
    assert_eq!(session_rows(&app).await, 0, "signing out removed the session");
    let b = app.browser();
    for _ in 0..3 {
        let page = b.get("/signin").await;
        assert!(page.headers.get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("orderdesk=")));
        b.get("/signup").await;
    }
    assert_eq!(b.sign_in("a@example.jp", "wrong password").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(session_rows(&app).await, 0, "anonymous visits stored sessions");
    // A forged anonymous cookie is not accepted: the token must match a cookie we signed.
    let forged = app.browser();
    forged.jar.add_cookie_str("orderdesk-csrf=forged.forged; Path=/", &app.base.parse().unwrap());
    let page = forged
        .post_raw("/signin", &[("csrf_token", "forged"), ("email", "a@example.jp"), ("password", PASSWORD)], &[])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(b.sign_in("a@example.jp", PASSWORD).await.location(), "/");
    assert_eq!(session_rows(&app).await, 1);
}

/// The expired-session clean-up goes on after the database failed under it.
async fn session_cleanup_survives_database_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.db.clone();
    let task = tokio::spawn(
        orderdesk::db::sessions::SessionBackend::new(&db)
            .delete_expired_continuously(std::time::Duration::from_millis(50)),
    );
    let (drop_table, insert_expired) = match backend {
        Backend::Sqlite => {
            ("drop table tower_sessions", "insert into tower_sessions (id, data, expiry_date) values ('old', x'00', 0)")
        }
        Backend::Postgres => (
            "drop table tower_sessions.session",
            "insert into tower_sessions.session (id, data, expiry_date) values ('old', '\\x00', now() - interval '1 day')",
        ),
    };
    orderdesk::db::with_pool!(&db, |p| sqlx::query(drop_table).execute(p).await.map(|_| ())).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "a failed round ended the clean-up");
    db.migrate().await.unwrap();
    orderdesk::db::with_pool!(&db, |p| sqlx::query(insert_expired).execute(p).await.map(|_| ())).unwrap();
    for _ in 0..100 {
        if session_rows(&app).await == 0 {
            task.abort();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the expired session was never deleted");
}

/// Behind a proxy that rewrites `Host` (nginx's default) the browser's `Origin` is the public
/// URL's: accepted; any other origin is still refused. Multipart forms (uploads) carry the token
/// like any other form, and their body is bounded.
async fn csrf_uses_the_public_origin_and_reads_multipart(backend: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::spawn_with(backend, |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_url = Some(format!("http://localhost:{port}/").parse().unwrap());
    })
    .await;
    let owner = app.owner("A", "a@example.jp").await;
    let token = owner.get("/").await.csrf_token().unwrap();
    let fields = [
        ("csrf_token", token.as_str()),
        ("name", "本店"),
        ("seller_id", "honten"),
        ("environment", "simulator"),
        ("client_id", "c"),
        ("client_secret", "s"),
        ("auto_import_interval_minutes", "15"),
    ];
    // The proxy forwarded with Host: 127.0.0.1:<port>; the browser was on the public origin.
    let public = format!("http://localhost:{port}");
    let page = owner.post_raw("/stores", &fields, &[("origin", &public)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let page = owner.post_raw("/stores", &fields, &[("origin", "https://evil.example")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);

    let multipart = |token: &str, filler: usize| {
        let boundary = "orderdeskBoundary7MA4YWxk";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"stock.csv\"\r\nContent-Type: text/csv\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--{boundary}--\r\n",
            "x".repeat(filler)
        );
        owner
            .client
            .post(format!("{}/signout", app.base))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
    };
    let forged = multipart("forged", 10).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Refused at the limit: a 413, or (when the server answers before the client has finished
    // sending) the connection closed under the upload. Either way nothing is buffered past 2 MiB.
    // Its connection is not kept for the next request: the server drops it after the refusal,
    // and a request sent on it meanwhile would fail with a broken pipe.
    match multipart(&token, 3 * 1024 * 1024).header("connection", "close").send().await {
        Ok(huge) => assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE),
        Err(e) => assert!(e.is_request() || e.is_body(), "refused mid-upload: {e}"),
    }
    let ok = multipart(&token, 10).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER, "the multipart token is read");
    assert_eq!(owner.get("/").await.location(), "/signin", "signed out");
}

/// Saving a settings form opened before an emergency stop does not undo the stop: the form
/// writes only its own fields.
async fn old_settings_form_cannot_undo_a_stop(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let old_form = owner.get(&format!("/stores/{id}/edit")).await;
    let token = old_form.csrf_token().unwrap();
    let stop = owner
        .submit(
            &format!("/stores/{id}/emergency-stop"),
            &format!("/stores/{id}/emergency-stop"),
            &[("reason", "誤出荷")],
        )
        .await;
    assert_eq!(stop.status, StatusCode::SEE_OTHER);
    let saved = owner
        .post_raw(
            &format!("/stores/{id}"),
            &[
                ("csrf_token", token.as_str()),
                ("name", "本店 改"),
                ("seller_id", "honten"),
                ("environment", "simulator"),
                ("client_id", "dj00client"),
                ("auto_import_enabled", "on"),
                ("auto_import_interval_minutes", "15"),
                ("restrict_fraud_hold_changes", "on"),
            ],
            &[],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let page = owner.get(&format!("/stores/{id}")).await;
    assert!(page.body.contains("本店 改"), "the form's own fields were saved");
    assert!(page.body.contains("緊急停止中です"), "the stop stays");
}

/// The key form: a private key pasted without its marker lines is recognised and never echoed;
/// an expiry in the past or beyond Yahoo's one year is refused; nothing is stored.
async fn key_form_catches_bare_private_keys_and_bad_expiry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let id = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let path = format!("/stores/{id}/public-key");
    let private = crate::sim::fixture("private-1.pem");
    let bare: String = private.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n");
    let page = owner.submit(&path, &path, &[("public_key", &bare), ("public_key_version", "1")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("これは秘密鍵です"), "{}", page.body);
    let some_line = bare.lines().nth(3).unwrap();
    assert!(!page.body.contains(some_line), "the private key was echoed back");

    let public = crate::sim::fixture("public-1.pem");
    for (expiry, message) in [("2020-01-01", "有効期限が今日以前です"), ("2999-01-01", "発行から1年です")]
    {
        let page = owner
            .submit(
                &path,
                &path,
                &[("public_key", &public), ("public_key_version", "1"), ("public_key_expires_on", expiry)],
            )
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{expiry}");
        assert!(page.body.contains(message), "{expiry}: {}", page.body);
    }
    let sealed = orderdesk::db::stores::credentials(
        &app.db,
        account_of(&app, "a@example.jp").await,
        orderdesk::domain::StoreId(id),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(sealed.public_key_pem.is_none(), "nothing was stored");
}

async fn account_of(app: &TestApp, email: &str) -> orderdesk::domain::AccountId {
    orderdesk::db::accounts::find_credentials(&app.db, email).await.unwrap().unwrap().account_id
}

crate::on_both_backends!(
    ids_are_never_reused,
    key_form_catches_bare_private_keys_and_bad_expiry,
    old_settings_form_cannot_undo_a_stop,
    csrf_uses_the_public_origin_and_reads_multipart,
    anonymous_visits_write_no_session,
    session_cleanup_survives_database_errors,
    password_change_ends_other_sessions,
    password_form_is_throttled,
    forwarded_for_trusts_only_our_proxys_hop,
    parallel_attempts_cannot_beat_the_limit,
    third_party_cannot_lock_the_owner_out,
    signup_is_throttled_per_address,
    wrong_secrets_key_refuses_to_start,
);

/// The SQLite rebuild of 0004 keeps rows, ids and the links between them.
#[tokio::test]
async fn sqlite_rebuild_keeps_rows_and_links() {
    use sqlx::{Row, sqlite::SqliteConnectOptions};
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteConnectOptions::new().filename(dir.path().join("old.db")).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options.foreign_keys(true)).await.unwrap();
    let all = sqlx::migrate!("migrations/sqlite");
    let old = sqlx::migrate::Migrator {
        migrations: all.migrations.iter().filter(|m| m.version < 4).cloned().collect::<Vec<_>>().into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    old.run(&pool).await.unwrap();
    for sql in [
        "insert into account (id, name, created_at, updated_at) values (7, 'A', 't', 't')",
        "insert into app_user (id, account_id, email, display_name, password_hash, role, created_at, updated_at)
         values (3, 7, 'a@example.jp', 'A', 'h', 'owner', 't', 't')",
        "insert into store (id, account_id, name, seller_id, environment, created_at, updated_at, auto_import_inbox)
         values (5, 7, 'S', 's', 'simulator', 't', 't', 1)",
        "insert into store_import (store_id, account_id, next_run_at, updated_at) values (5, 7, 't', 't')",
        "insert into audit_log (account_id, actor, action, created_at) values (7, 'x', 'y', 't')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;
    let db = orderdesk::db::Db::connect(Some(&format!("sqlite://{}", dir.path().join("old.db").display())), dir.path())
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let orderdesk::db::Db::Sqlite(pool) = &db else { unreachable!() };
    let row = sqlx::query(
        "select s.id, s.auto_import_inbox, u.email from store s join app_user u on u.account_id = s.account_id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        (row.get::<i64, _>(0), row.get::<bool, _>(1), row.get::<String, _>(2)),
        (5, true, "a@example.jp".into())
    );
    // Foreign keys still hold after the rebuild: a store's import row goes with it, and a store
    // cannot name an account that does not exist.
    sqlx::query("delete from store where id = 5").execute(pool).await.unwrap();
    let n: i64 = sqlx::query_scalar("select count(*) from store_import").fetch_one(pool).await.unwrap();
    assert_eq!(n, 0);
    let orphan = "insert into store (account_id, name, seller_id, environment, created_at, updated_at)
                  values (99, 'S', 's', 'simulator', 't', 't')";
    assert!(sqlx::query(orphan).execute(pool).await.is_err());
    let sql: String =
        sqlx::query_scalar("select sql from sqlite_master where name = 'store'").fetch_one(pool).await.unwrap();
    assert!(sql.contains("autoincrement"), "{sql}");
}

/// Starts the real binary's `serve` against `app`'s database with `key`, and says how it went:
/// `Ok(())` once it serves, `Err(output)` if it exited.
fn serve_with_key_config(config: &orderdesk::config::Config, key: Option<&str>) -> Result<(), String> {
    use std::{
        io::{BufRead, BufReader, Read},
        process::{Command, Stdio},
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orderdesk"));
    cmd.env_clear()
        .arg("serve")
        .env("ORDERDESK_LISTEN", "127.0.0.1:0")
        .env("ORDERDESK_SIMULATOR", "off")
        .env("ORDERDESK_SCHEDULER", "false")
        .env("ORDERDESK_DATA_DIR", &config.data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = &config.database_url {
        cmd.env("DATABASE_URL", url.expose());
    }
    if let Some(key) = key {
        cmd.env("ORDERDESK_SECRET_KEY", key);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    // Log lines, then "orderdesk is running at …" once it serves; the end when it exits.
    let mut first_line = String::new();
    let mut lines = BufReader::new(stdout);
    let mut line = String::new();
    while lines.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("is running") {
        first_line.push_str(&line);
        line.clear();
    }
    if line.contains("is running") {
        child.kill().unwrap();
        child.wait().unwrap();
        return Ok(());
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Err(format!("{status}: {first_line}{stderr}"))
}

/// A second server started with another secrets key refuses to start, with a message that says
/// why; with the right key it starts.
async fn wrong_secrets_key_refuses_to_start(backend: Backend) {
    let key = crate::helpers::test_secret_key();
    let app =
        TestApp::spawn_with(backend, |c| c.secret_key = Some(orderdesk::config::Redacted::new(key.clone()))).await;
    let owner = app.owner("A", "a@example.jp").await;
    app.add_store(&owner, "本店", "honten", "secret-1").await;
    let other = crate::helpers::test_secret_key();
    let refused = tokio::task::spawn_blocking({
        let app_config = (app.config.data_dir.clone(), app.config.database_url.clone());
        let probe = Probe(app_config);
        move || probe.serve(Some(&other))
    })
    .await
    .unwrap();
    let output = refused.expect_err("started with the wrong key");
    assert!(output.contains("does not open the secrets stored in this database"), "{output}");
    assert!(!output.contains(&key), "the key is never printed");
    let started = {
        let probe = Probe((app.config.data_dir.clone(), app.config.database_url.clone()));
        tokio::task::spawn_blocking(move || probe.serve(Some(&key))).await.unwrap()
    };
    assert_eq!(started, Ok(()), "the right key starts");
}

/// On PostgreSQL a server without a configured key refuses to start (it would otherwise
/// generate a key of its own beside other servers' keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_requires_the_secrets_key() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let probe = Probe((app.config.data_dir.clone(), app.config.database_url.clone()));
    let output = tokio::task::spawn_blocking(move || probe.serve(None)).await.unwrap().expect_err("started");
    assert!(output.contains("ORDERDESK_SECRET_KEY is required with PostgreSQL"), "{output}");
}

/// What `serve_with_key` needs of a running test app, movable to a blocking thread.
pub(crate) struct Probe(pub(crate) (std::path::PathBuf, Option<orderdesk::config::Redacted>));

impl Probe {
    pub(crate) fn serve(&self, key: Option<&str>) -> Result<(), String> {
        let mut config = orderdesk::config::Config::defaults();
        config.data_dir = self.0.0.clone();
        config.database_url = self.0.1.clone();
        serve_with_key_config(&config, key)
    }
}

/// /metrics answers loopback (and the allow-list) only, judged by the real client behind our
/// proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_public() {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.trusted_proxy_hops = 1).await;
    let b = app.browser();
    assert_eq!(b.get("/metrics").await.status, StatusCode::OK, "loopback");
    let outside = b.client.get(format!("{}/metrics", app.base)).header("x-forwarded-for", "203.0.113.9").send().await;
    assert_eq!(outside.unwrap().status(), StatusCode::NOT_FOUND);
    let allowed = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.trusted_proxy_hops = 1;
        c.metrics_allow = vec!["203.0.113.9".parse().unwrap()];
    })
    .await;
    let r = allowed.browser().client.get(format!("{}/metrics", allowed.base)).header("x-forwarded-for", "203.0.113.9");
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
}

/// `serve` on a non-loopback address without a public URL refuses to start (the Dockerfile's
/// 0.0.0.0 therefore needs ORDERDESK_PUBLIC_URL).
#[test]
fn serve_off_loopback_requires_a_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderdesk"))
        .env_clear()
        .arg("serve")
        .env("ORDERDESK_LISTEN", "0.0.0.0:0")
        .env("ORDERDESK_SIMULATOR", "off")
        .env("ORDERDESK_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ORDERDESK_PUBLIC_URL is required"), "{stderr}");
}

/// The simulator's own forms refuse posts from other sites, and an absurd clock change is a
/// 400 that leaves the clock (and every later page) working.
#[tokio::test]
async fn simulator_refuses_other_sites_and_absurd_clocks() {
    let sim = crate::sim::Sim::start().await;
    let review = |headers: &[(&'static str, &'static str)]| {
        let mut r = sim.http.post(sim.url("/_sim/view/review"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send()
    };
    assert_eq!(review(&[("origin", "https://evil.example")]).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(review(&[("sec-fetch-site", "cross-site")]).await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(review(&[("sec-fetch-site", "same-origin")]).await.unwrap().status(), StatusCode::SEE_OTHER);

    let before = sim.now().await;
    for body in [
        serde_json::json!({ "advance_secs": i64::MAX }),
        serde_json::json!({ "advance_secs": i64::MIN }),
        serde_json::json!({ "offset_secs": 10_000_000_000_i64 }),
    ] {
        let (status, _) = sim.control_status("/_sim/clock", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let r = sim.http.post(sim.url("/_sim/view/clock")).form(&[("advance_hours", i64::MAX.to_string())]).send().await;
    assert_eq!(r.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!((sim.now().await - before).abs() < 60, "the clock did not move");
    assert_eq!(sim.http.get(sim.url("/")).send().await.unwrap().status(), StatusCode::OK);
    sim.advance(3600).await;
    assert!(sim.now().await - before >= 3600, "sane changes still work");
}

/// Two servers on one PostgreSQL pace one app's calls to one API URL together: the calls they
/// claim at the same moment go one interval apart, never together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_holds_across_servers_on_postgres() {
    use orderdesk::db::{Db, pacing};
    let app = TestApp::spawn(Backend::Postgres).await;
    let url = app.config.database_url.as_ref().unwrap().expose().to_string();
    let other = Db::connect(Some(&url), &app.config.data_dir).await.unwrap();
    let interval = std::time::Duration::from_millis(200);
    let api = "https://circus.shopping.yahooapis.jp/ShoppingWebService/V1/orderInfo";
    let calls = (0..10).map(|i| {
        let db = if i % 2 == 0 { app.db.clone() } else { other.clone() };
        async move { pacing::claim_at(&db, "dj00shared", api, interval).await.unwrap().unwrap() }
    });
    // The claimed calls on the database's clock: however the ten claims interleave, one
    // interval apart (the waits alone also depend on when each claim reached the database).
    let mut slots = futures_util::future::join_all(calls).await;
    slots.sort();
    for pair in slots.windows(2) {
        let gap = (pair[1] - pair[0]).to_std().unwrap_or_default();
        assert!(gap >= interval, "two calls shared a slot: {slots:?}");
    }
    // Another app, or another URL, has turns of its own.
    let free = pacing::claim(&other, "dj00other", api, interval).await.unwrap().unwrap();
    assert!(free < std::time::Duration::from_millis(50));
    other.close().await;
}
