//! Issue 14, continued: audit entries commit with the change they record; sealed secrets name
//! their row; sign-up does not tell which emails exist (merchants' or support staff's).

use orderdesk::{crypto::SecretBox, db::Db, domain::AccountId};
use reqwest::StatusCode;

use crate::helpers::{Backend, PASSWORD, TestApp};

/// Runs a statement (or several) as the test's own hand on the database.
async fn exec(db: &Db, sql: &str) {
    orderdesk::with_pool!(db, |p| sqlx::raw_sql(sql).execute(p).await.map(|_| ())).unwrap();
}

/// Makes the database refuse inserts into `table` whose `column` is `value` (a failure injected
/// into one statement of a transaction).
async fn refuse(db: &Db, name: &str, op: &str, table: &str, row: &str, column: &str, value: &str) {
    let sql = match db {
        Db::Sqlite(_) => format!(
            "create trigger {name} before {op} on {table} when {row}.{column} = '{value}'
             begin select raise(abort, 'injected failure'); end"
        ),
        Db::Postgres(_) => format!(
            "create function {name}() returns trigger language plpgsql as $f$
             begin if {row}.{column} = '{value}' then raise exception 'injected failure'; end if; return {row}; end $f$;
             create trigger {name} before {op} on {table} for each row execute function {name}()"
        ),
    };
    exec(db, &sql).await;
}

async fn audit_rows(db: &Db, account: AccountId, action: &str) -> i64 {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_scalar("select count(*) from audit_log where account_id = $1 and action = $2")
            .bind(account)
            .bind(action)
            .fetch_one(p)
            .await
    })
    .unwrap()
}

async fn account_of(app: &TestApp, email: &str) -> AccountId {
    orderdesk::db::accounts::find_credentials(&app.db, email).await.unwrap().unwrap().account_id
}

/// A change and its audit entry commit together: when the entry cannot be written the change
/// is rolled back, when the change fails there is no entry, and a normal change has exactly its
/// one entry.
async fn audit_entries_commit_with_their_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let account = account_of(&app, "a@example.jp").await;

    // Normal changes: exactly one entry each.
    app.add_user(&owner, "staff@example.jp", "staff").await;
    let store = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let stop =
        owner.submit(&format!("/stores/{store}/emergency-stop"), &format!("/stores/{store}/emergency-stop"), &[]).await;
    assert_eq!(stop.status, StatusCode::SEE_OTHER);
    for action in ["user_added", "store_created", "emergency_stop"] {
        assert_eq!(audit_rows(&app.db, account, action).await, 1, "{action}");
    }

    // The audit entry cannot be written: the user is not added either.
    refuse(&app.db, "no_user_added_entry", "insert", "audit_log", "new", "action", "user_added").await;
    let page = owner
        .submit(
            "/users",
            "/users",
            &[("email", "second@example.jp"), ("display_name", "二郎"), ("role", "staff"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!owner.get("/users").await.body.contains("second@example.jp"), "the change was rolled back");
    assert_eq!(app.browser().sign_in("second@example.jp", PASSWORD).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(audit_rows(&app.db, account, "user_added").await, 1);

    // Same for a store setting and the emergency resume.
    refuse(&app.db, "no_store_entry", "insert", "audit_log", "new", "action", "store_updated").await;
    let edit = owner
        .submit(
            &format!("/stores/{store}/edit"),
            &format!("/stores/{store}"),
            &[
                ("name", "新しい名前"),
                ("seller_id", "honten"),
                ("environment", "simulator"),
                ("client_id", "dj00client"),
                ("auto_import_interval_minutes", "15"),
                ("restrict_fraud_hold_changes", "on"),
            ],
        )
        .await;
    assert_eq!(edit.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(owner.get(&format!("/stores/{store}")).await.body.contains("本店"), "the name did not change");
    refuse(&app.db, "no_resume_entry", "insert", "audit_log", "new", "action", "emergency_resume").await;
    let resume = owner.submit(&format!("/stores/{store}"), &format!("/stores/{store}/resume"), &[]).await;
    assert_eq!(resume.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(owner.get(&format!("/stores/{store}")).await.body.contains("緊急停止中"), "still stopped");

    // A manual import is queued with its entry, or not at all.
    orderdesk::with_pool!(&app.db, |p| {
        sqlx::query("update store set refresh_token_enc = $2 where id = $1")
            .bind(store)
            .bind(vec![2_u8; 64])
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
    refuse(&app.db, "no_import_entry", "insert", "audit_log", "new", "action", "manual_import").await;
    // (The store is still under the emergency stop whose resume was refused above.)
    let import =
        owner.submit(&format!("/stores/{store}"), &format!("/stores/{store}/import"), &[("while_stopped", "on")]).await;
    assert_eq!(import.status, StatusCode::INTERNAL_SERVER_ERROR);
    let runs: i64 =
        orderdesk::with_pool!(&app.db, |p| sqlx::query_scalar("select count(*) from import_run").fetch_one(p).await)
            .unwrap();
    assert_eq!(runs, 0, "no run was queued without its entry");

    // The change itself fails: no entry is left behind.
    refuse(&app.db, "keep_the_store", "delete", "store", "old", "name", "本店").await;
    let delete = owner.submit(&format!("/stores/{store}/edit"), &format!("/stores/{store}/delete"), &[]).await;
    assert_eq!(delete.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(owner.get(&format!("/stores/{store}")).await.status, StatusCode::OK, "the store is still there");
    assert_eq!(audit_rows(&app.db, account, "store_deleted").await, 0, "no entry for a change that did not happen");

    // Sign-up: the account, its owner and its entry together.
    refuse(&app.db, "no_signup_entry", "insert", "audit_log", "new", "detail", "アカウント作成").await;
    let b = app.browser();
    let signup = b
        .submit(
            "/signup",
            "/signup",
            &[
                ("account_name", "B"),
                ("display_name", "B"),
                ("email", "b@example.jp"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signup.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(orderdesk::db::accounts::find_credentials(&app.db, "b@example.jp").await.unwrap().is_none());
    let accounts: i64 =
        orderdesk::with_pool!(&app.db, |p| sqlx::query_scalar("select count(*) from account").fetch_one(p).await)
            .unwrap();
    assert_eq!(accounts, 1, "no account without its owner and entry");
}

async fn sealed_client_secret(db: &Db, store: i64) -> Vec<u8> {
    orderdesk::with_pool!(db, |p| {
        sqlx::query_scalar("select client_secret_enc from store where id = $1").bind(store).fetch_one(p).await
    })
    .unwrap()
}

/// A sealed client secret copied into another store's row does not open there: the page asks
/// for the secret again (instead of 設定済み, or a crash), and the checklist's first step is
/// open again.
async fn secret_moved_to_another_row_does_not_open(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let a = app.add_store(&owner, "A店", "a-store", "secret-of-a").await;
    let b = app.add_store(&owner, "B店", "b-store", "secret-of-b").await;
    let stranger = app.owner("X", "x@example.jp").await;
    let x = app.add_store(&stranger, "X店", "x-store", "secret-of-x").await;

    let a_sealed = sealed_client_secret(&app.db, a).await;
    assert_eq!(a_sealed[0], 2, "new values are sealed in format 2");
    for (target, browser) in [(b, &owner), (x, &stranger)] {
        orderdesk::with_pool!(&app.db, |p| {
            sqlx::query("update store set client_secret_enc = $2 where id = $1")
                .bind(target)
                .bind(&a_sealed)
                .execute(p)
                .await
                .map(|_| ())
        })
        .unwrap();
        let page = browser.get(&format!("/stores/{target}")).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(
            page.select_text("#secret-unreadable"),
            vec![orderdesk::yahoo::error::SECRET_UNREADABLE],
            "the page asks for the secret again"
        );
        assert!(
            !page.select_attr("a.button.primary", "href").is_empty()
                && page.select_attr("a.button.primary", "href")[0].ends_with("/edit"),
            "the next step is entering the secret again"
        );
    }
    let page = owner.get(&format!("/stores/{a}")).await;
    assert!(page.select_text("#secret-unreadable").is_empty(), "A's own secret still opens");

    // Entering it again fixes it.
    let saved = owner
        .submit(
            &format!("/stores/{b}/edit"),
            &format!("/stores/{b}"),
            &[
                ("name", "B店"),
                ("seller_id", "b-store"),
                ("environment", "simulator"),
                ("client_id", "dj00client"),
                ("client_secret", "secret-of-b"),
                ("auto_import_interval_minutes", "15"),
                ("restrict_fraud_hold_changes", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(owner.get(&format!("/stores/{b}")).await.select_text("#secret-unreadable").is_empty());
}

/// Values sealed before the row was named (format 1) are re-sealed when a server starts: none
/// is left, each opens for its own row, and starting again changes nothing.
async fn format_1_secrets_are_resealed_at_start(backend: Backend) {
    let key = crate::helpers::test_secret_key();
    let app =
        TestApp::spawn_with(backend, |c| c.secret_key = Some(orderdesk::config::Redacted::new(key.clone()))).await;
    let owner = app.owner("A", "a@example.jp").await;
    let store = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let secrets = SecretBox::load(Some(&key), &app.config.data_dir).unwrap();
    // As a database from before format 2 holds them.
    let (client, refresh, access, check) = (
        secrets.seal_v1("store.client_secret", "secret-1"),
        secrets.seal_v1("store.refresh_token", "refresh-1"),
        secrets.seal_v1("store.access_token", "access-1"),
        secrets.seal_v1("secrets key check", "orderdesk secrets key check v1"),
    );
    orderdesk::with_pool!(&app.db, |p| async {
        sqlx::query(
            "update store set client_secret_enc = $2, refresh_token_enc = $3, access_token_enc = $4 where id = $1",
        )
        .bind(store)
        .bind(&client)
        .bind(&refresh)
        .bind(&access)
        .execute(p)
        .await?;
        sqlx::query("update secrets_key_check set sealed = $1 where id = 1").bind(&check).execute(p).await.map(|_| ())
    }
    .await)
    .unwrap();

    let read = || async {
        orderdesk::with_pool!(&app.db, |p| async {
            let row: (Vec<u8>, Vec<u8>, Vec<u8>) = sqlx::query_as(
                "select client_secret_enc, refresh_token_enc, access_token_enc from store where id = $1",
            )
            .bind(store)
            .fetch_one(p)
            .await?;
            let check: Vec<u8> =
                sqlx::query_scalar("select sealed from secrets_key_check where id = 1").fetch_one(p).await?;
            Ok::<_, sqlx::Error>((row, check))
        }
        .await)
        .unwrap()
    };
    let probe = || crate::hardening::Probe((app.config.data_dir.clone(), app.config.database_url.clone()));
    let started = {
        let (probe, key) = (probe(), key.clone());
        tokio::task::spawn_blocking(move || probe.serve(Some(&key))).await.unwrap()
    };
    assert_eq!(started, Ok(()), "a database with format-1 values starts");
    let ((client, refresh, access), check) = read().await;
    for (column, value, text) in [
        ("store.client_secret", &client, "secret-1"),
        ("store.refresh_token", &refresh, "refresh-1"),
        ("store.access_token", &access, "access-1"),
    ] {
        assert!(!SecretBox::is_v1(value), "{column} is still format 1");
        assert_eq!(secrets.open(column, store, value).unwrap(), text, "{column} opens for its row");
        assert!(secrets.open(column, store + 1, value).is_err(), "{column} opens for no other row");
    }
    assert_eq!(secrets.open("secrets key check", 1, &check).unwrap(), "orderdesk secrets key check v1");
    assert!(owner.get(&format!("/stores/{store}")).await.select_text("#secret-unreadable").is_empty());

    // Idempotent: a second start rewrites nothing.
    let again = {
        let (probe, key) = (probe(), key.clone());
        tokio::task::spawn_blocking(move || probe.serve(Some(&key))).await.unwrap()
    };
    assert_eq!(again, Ok(()));
    assert_eq!(read().await, ((client, refresh, access), check), "nothing changed the second time");
    assert_eq!(orderdesk::db::reseal::run(&app.db, &secrets).await.unwrap(), 0);
}

/// Signing up with a support person's email or an existing merchant's email answers exactly as
/// a new email does; a support email becomes an ordinary merchant account (the two are separate
/// namespaces, told apart at sign-in by the password), and the existing merchant's owners see
/// the attempt in their audit log.
async fn signup_does_not_tell_which_emails_exist(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.owner("既存商店", "merchant@example.jp").await;
    let support_password = "support-password-123";
    let hash = orderdesk::crypto::hash_password_blocking(support_password.into()).await.unwrap();
    orderdesk::db::support::create(&app.db, "support@example.jp", "佐藤", &hash).await.unwrap();

    let sign_up = |email: &'static str| {
        let b = app.browser();
        async move {
            let fields = [
                ("account_name", "新しい店"),
                ("display_name", "新人"),
                ("email", email),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
            ];
            let page = b.submit("/signup", "/signup", &fields).await;
            let cookies: Vec<String> = page
                .headers
                .get_all("set-cookie")
                .iter()
                .map(|c| c.to_str().unwrap().split('=').next().unwrap().to_string())
                .collect();
            (page.status, page.location().to_string(), cookies, page.body)
        }
    };
    let fresh = sign_up("fresh@example.jp").await;
    assert_eq!((fresh.0, fresh.1.as_str()), (StatusCode::SEE_OTHER, "/signin?signed_up=1"));
    assert_eq!(sign_up("merchant@example.jp").await, fresh, "an existing merchant email answers the same");
    assert_eq!(sign_up("Support@Example.jp").await, fresh, "a support email answers the same");
    let signin_page = app.browser().get(&fresh.1).await;
    assert!(signin_page.body.contains("登録を受け付けました"));

    // The support email is now also a merchant account; each password opens its own login.
    let stranger = app.browser();
    assert_eq!(stranger.sign_in("support@example.jp", PASSWORD).await.location(), "/");
    assert_eq!(stranger.get("/").await.select_text(".account"), vec!["新しい店"]);
    assert_eq!(stranger.get("/admin").await.status, StatusCode::FORBIDDEN);
    let staff = app.browser();
    assert_eq!(staff.sign_in("support@example.jp", support_password).await.location(), "/admin");
    assert_eq!(staff.get("/admin").await.status, StatusCode::OK);
    let wrong = app.browser().sign_in("support@example.jp", "neither-password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);

    // The existing merchant is untouched, and its owners see the attempt.
    let owner = app.browser();
    assert_eq!(owner.sign_in("merchant@example.jp", PASSWORD).await.location(), "/");
    assert_eq!(owner.get("/").await.select_text(".account"), vec!["既存商店"]);
    let audit = owner.get("/audit").await;
    assert!(audit.body.contains("登録済みのメールアドレスでの新規登録"), "{}", audit.body);
}

crate::on_both_backends!(
    audit_entries_commit_with_their_change,
    secret_moved_to_another_row_does_not_open,
    format_1_secrets_are_resealed_at_start,
    signup_does_not_tell_which_emails_exist,
);
