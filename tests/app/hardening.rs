//! Issue 14: ids, sessions, sign-in throttling, secrets, CSRF behind a proxy and the other
//! hardening points, each tried the way an attacker would.

use crate::helpers::{Backend, PASSWORD, TestApp};

/// A removed user's open session must not become the next user created, and a deleted store's
/// id must not go to another account's store (SQLite reused both before AUTOINCREMENT).
async fn ids_are_never_reused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.owner("A", "a@example.jp").await;
    let staff_id = app.add_user(&owner, "staff@example.jp", "staff").await;
    let staff = app.browser();
    assert_eq!(staff.sign_in("staff@example.jp", PASSWORD).await.location(), "/");
    owner.submit("/users", &format!("/users/{staff_id}/delete"), &[]).await;
    let new_owner = app.add_user(&owner, "second-owner@example.jp", "owner").await;
    assert_ne!(new_owner, staff_id, "a removed user's id is never handed out again");
    let page = staff.get("/users").await;
    assert_eq!(page.location(), "/signin", "the removed user's session is over ({})", page.status);

    let deleted = app.add_store(&owner, "本店", "honten", "secret-1").await;
    let gone = owner.submit(&format!("/stores/{deleted}/edit"), &format!("/stores/{deleted}/delete"), &[]).await;
    assert_eq!(gone.location(), "/stores");
    let other = app.owner("B", "b@example.jp").await;
    let theirs = app.add_store(&other, "B店", "b-store", "secret-2").await;
    assert_ne!(theirs, deleted, "a deleted store's id went to another account");
}

crate::on_both_backends!(ids_are_never_reused,);

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
