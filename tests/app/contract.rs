//! The database contract: the same typed functions behave the same on SQLite and PostgreSQL.

use chrono::{Duration, NaiveDate};
use orderdesk::{
    db::{self, WriteError, accounts, audit, signin, stores, support, with_pool},
    domain::{
        StoreId,
        store::{Environment, InternalStatus, StoreSettings},
        user::Role,
    },
};

use crate::helpers::{Backend, TestApp};

fn settings(seller_id: &str) -> StoreSettings {
    StoreSettings {
        name: "本店".into(),
        seller_id: seller_id.into(),
        environment: Environment::Simulator,
        client_id: "dj00".into(),
        auto_import_enabled: true,
        auto_import_interval_minutes: 20,
        auto_status_change_enabled: true,
        auto_status_change_target: Some(InternalStatus::AwaitingShipment),
        restrict_fraud_hold_changes: true,
        stock_sync_enabled: false,
        auto_import_inbox: false,
    }
}

async fn accounts_users_and_uniqueness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let (a, owner) = accounts::create_account_with_owner(db, "A", "a@example.jp", "太郎", "hash", None).await.unwrap();
    let dup = accounts::create_account_with_owner(db, "A2", "a@example.jp", "次郎", "hash", None).await;
    assert!(matches!(dup, Err(WriteError::Duplicate)));
    // The failed sign-up left no orphan account behind.
    let (b, _) = accounts::create_account_with_owner(db, "B", "b@example.jp", "花子", "hash", None).await.unwrap();
    assert_eq!(support::list_accounts(db).await.unwrap().len(), 2);

    let note = |account| audit::Note::new(account, audit::Actor::System, audit::Action::UserAdded, "", None);
    let staff = accounts::add_user(db, a, "s@example.jp", "スタッフ", Role::Staff, "h2", &note(a), None).await.unwrap();
    // The same address again in the same account is a duplicate (the owner sees it listed)…
    assert!(matches!(
        accounts::add_user(db, a, "s@example.jp", "x", Role::Staff, "h", &note(a), None).await,
        Err(WriteError::Duplicate)
    ));
    // …and an address registered elsewhere is added like any other, pending (it answers the same).
    accounts::add_user(db, a, "b@example.jp", "x", Role::Staff, "h", &note(a), None).await.unwrap();
    let pending_b = accounts::list_users(db, a).await.unwrap().pop().unwrap();
    assert!(pending_b.pending && pending_b.email == "b@example.jp");
    assert!(accounts::delete_user(db, a, pending_b.id, &note(a)).await.unwrap());
    let users = accounts::list_users(db, a).await.unwrap();
    assert_eq!(
        users.iter().map(|u| (u.id, u.role())).collect::<Vec<_>>(),
        vec![(owner, Role::Owner), (staff, Role::Staff)]
    );
    assert!(accounts::get_user(db, b, staff).await.unwrap().is_none(), "scoped by account");
    assert!(!accounts::delete_user(db, b, staff, &note(b)).await.unwrap(), "another account cannot delete");
    assert!(accounts::set_password_hash(db, b, staff, "x", &note(b)).await.unwrap().is_none());
    assert_eq!(
        accounts::set_password_hash(db, a, staff, "h3", &note(a)).await.unwrap(),
        Some(1),
        "the auth epoch moves on"
    );
    assert_eq!(accounts::get_password_hash(db, a, staff).await.unwrap().as_deref(), Some("h3"));
    assert!(accounts::delete_user(db, a, staff, &note(a)).await.unwrap());
    assert!(accounts::email_in_use(db, "a@example.jp").await.unwrap());
    assert!(!accounts::email_in_use(db, "s@example.jp").await.unwrap());
    // Support logins are a namespace of their own: a merchant may sign up with the same email.
    support::create(db, "sup@example.jp", "サポート", "h").await.unwrap();
    assert!(!accounts::email_in_use(db, "sup@example.jp").await.unwrap());
    // Only what changed is audited: the refused writes above left no entries.
    let entries = audit::page(db, b, None, 100).await.unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(audit::page(db, a, None, 100).await.unwrap().len(), 5);
}

async fn stores_round_trip_and_are_scoped(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let (a, _) = accounts::create_account_with_owner(db, "A", "a@example.jp", "太郎", "hash", None).await.unwrap();
    let (b, _) = accounts::create_account_with_owner(db, "B", "b@example.jp", "花子", "hash", None).await.unwrap();
    let secrets = orderdesk::crypto::SecretBox::from_key(&[7; 32]);
    let secret = stores::NewSecret { secrets: &secrets, plaintext: "s3cr3t" };
    let id = stores::create(db, a, &settings("honten"), Some(secret), None).await.unwrap();
    // The same seller ID in another account is allowed; twice in one account is not.
    stores::create(db, b, &settings("honten"), None, None).await.unwrap();
    assert!(matches!(stores::create(db, a, &settings("honten"), None, None).await, Err(WriteError::Duplicate)));

    let s = stores::get(db, a, id).await.unwrap().unwrap();
    assert_eq!(s.settings(), settings("honten"));
    assert!(s.has_client_secret && !s.has_refresh_token && !s.has_public_key);
    assert!(stores::get(db, b, id).await.unwrap().is_none());
    assert!(!stores::update(db, b, id, &settings("stolen"), None, false, &[]).await.unwrap());
    let note = audit::Note::new(b, audit::Actor::System, audit::Action::StoreDeleted, "", None);
    assert!(!stores::delete(db, b, id, &note).await.unwrap());
    assert!(stores::sealed_client_secret(db, b, id).await.unwrap().is_none());

    let mut changed = settings("honten-2");
    changed.environment = Environment::Sandbox;
    changed.auto_status_change_target = None;
    assert!(stores::update(db, a, id, &changed, None, false, &[]).await.unwrap());
    let sealed = stores::sealed_client_secret(db, a, id).await.unwrap().unwrap();
    assert_eq!(secrets.open(orderdesk::yahoo::client::CLIENT_SECRET, id.0, &sealed).unwrap(), "s3cr3t");
    assert_eq!(stores::get(db, a, id).await.unwrap().unwrap().settings(), changed);
    assert_eq!(stores::list(db, a).await.unwrap().len(), 1);
    let note = audit::Note::new(a, audit::Actor::System, audit::Action::StoreDeleted, "", None);
    assert!(stores::delete(db, a, id, &note).await.unwrap());
    assert!(stores::get(db, a, StoreId(id.0)).await.unwrap().is_none());
    assert!(audit::page(db, b, None, 100).await.unwrap().is_empty(), "no entry for B's refused changes");
}

async fn dates_and_times_round_trip(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let (a, _) = accounts::create_account_with_owner(db, "A", "a@example.jp", "太郎", "hash", None).await.unwrap();
    let id = stores::create(db, a, &settings("honten"), None, None).await.unwrap();
    let at = db::now();
    let expires = NaiveDate::from_ymd_opt(2027, 11, 24).unwrap();
    with_pool!(db, |p| {
        sqlx::query(
            "update store set authorized_at = $1, public_key_expires_on = $2, public_key_version = $3 where id = $4",
        )
        .bind(at)
        .bind(expires)
        .bind(2_i64)
        .bind(id)
        .execute(p)
        .await
        .map(|_| ())
        .unwrap()
    });
    let s = stores::get(db, a, id).await.unwrap().unwrap();
    assert_eq!(s.authorized_at, Some(at));
    assert_eq!(s.public_key_expires_on, Some(expires));
    assert_eq!(s.public_key_version, Some(2));
}

async fn audit_log_is_append_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let (a, _) = accounts::create_account_with_owner(db, "A", "a@example.jp", "太郎", "hash", None).await.unwrap();
    let (b, _) = accounts::create_account_with_owner(db, "B", "b@example.jp", "花子", "hash", None).await.unwrap();
    for i in 0..5 {
        audit::record(
            db,
            a,
            audit::Actor::User("a@example.jp"),
            audit::Action::StoreCreated,
            &format!("store {i}"),
            Some("127.0.0.1"),
        )
        .await
        .unwrap();
    }
    audit::record(db, b, audit::Actor::System, audit::Action::SignIn, "", None).await.unwrap();
    let first = audit::page(db, a, None, 3).await.unwrap();
    assert_eq!(first.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), ["store 4", "store 3", "store 2"]);
    let rest = audit::page(db, a, Some(first[2].id), 10).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(audit::page(db, b, None, 10).await.unwrap().len(), 1);
    let edit = with_pool!(db, |p| sqlx::query("update audit_log set detail = 'forged'").execute(p).await.map(|_| ()));
    assert!(edit.is_err(), "the database refuses to edit the audit log");
    let delete = with_pool!(db, |p| sqlx::query("delete from audit_log").execute(p).await.map(|_| ()));
    assert!(delete.is_err(), "the database refuses to delete from the audit log");
    assert_eq!(audit::page(db, a, None, 10).await.unwrap().len(), 5);
}

async fn sign_in_failures_count_by_window(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = &app.db;
    let limits = signin::Limits {
        per_pair: 3,
        per_ip: 4,
        per_email_unknown: 100,
        signups_per_ip: 1,
        window: Duration::minutes(15),
    };
    // Each attempt counts itself: the fourth for one pair is over a limit of three.
    for _ in 0..3 {
        assert!(!signin::begin(db, &limits, "a@example.jp", "10.0.0.1").await.unwrap().throttled);
    }
    assert!(signin::begin(db, &limits, "a@example.jp", "10.0.0.1").await.unwrap().throttled);
    // Another address is a different pair; the first address is now over its own limit.
    let ok = signin::begin(db, &limits, "a@example.jp", "10.0.0.2").await.unwrap();
    assert!(!ok.throttled);
    assert!(signin::begin(db, &limits, "b@example.jp", "10.0.0.1").await.unwrap().throttled, "per address");
    // Success forgives the pair.
    signin::succeeded(db, ok, "a@example.jp", "10.0.0.2").await.unwrap();
    assert!(!signin::begin(db, &limits, "a@example.jp", "10.0.0.2").await.unwrap().throttled);
    assert!(!signin::signup_throttled(db, &limits, "10.0.0.3").await.unwrap());
    assert!(signin::signup_throttled(db, &limits, "10.0.0.3").await.unwrap());
    assert_eq!(signin::prune(db, db::now() + Duration::seconds(1)).await.unwrap(), 8);
}

crate::on_both_backends!(
    accounts_users_and_uniqueness,
    stores_round_trip_and_are_scoped,
    dates_and_times_round_trip,
    audit_log_is_append_only,
    sign_in_failures_count_by_window,
);
