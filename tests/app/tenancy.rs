//! One account can never read or change another's data through any route. The walk covers the
//! router's own route table, so a route added later is walked without touching this file (a new
//! kind of `{…_id}` parameter makes the test fail until it learns how to make one).

use orderdesk::web::routes;
use reqwest::{Method, StatusCode};

use crate::helpers::{Backend, TestApp};

async fn another_accounts_ids_are_404_on_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.owner("A商店", "owner-a@example.jp").await;
    let a_store = app.add_store(&a, "Aの本店", "a-honten", "a-secret").await;
    let a_user = app.add_user(&a, "staff-a@example.jp", "staff").await;
    let (a_order, a_run) = seed_order_and_run(&app, a_store).await;
    let a_account = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select account_id from store where id = $1").bind(a_store).fetch_one(p).await
    })
    .unwrap();
    let a_upload = orderdesk::db::stock::save_upload(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        "a.csv",
        &[("a-item".to_owned(), 5)],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let a_alert = crate::dashboard::seed_alert(&app, a_store).await;
    let a_export = orderdesk::db::shipping::record_export(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        &orderdesk::db::shipping::NewExport {
            format: orderdesk::carrier::LabelFormat::B2,
            file_name: "a.csv",
            content_type: "text/csv",
            body: b"a",
            shipments: &[],
            reexport: false,
            by: "owner-a@example.jp",
            ship_date: chrono::Utc::now().date_naive(),
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // A's issued-data upload has the same number as A's stock upload: `{upload_id}` names both.
    let a_tracking = orderdesk::db::shipping::save_upload(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        &orderdesk::db::shipping::NewUpload {
            hash: "a-hash",
            file_name: "a.csv",
            format: orderdesk::carrier::LabelFormat::B2,
            rows: &[],
            by: "owner-a@example.jp",
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(a_tracking, a_upload);
    let a_tag = orderdesk::db::tags::create(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        "Aのタグ",
        "red",
        true,
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    let a_rule = orderdesk::db::rules::save(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        None,
        &orderdesk::db::rules::RuleInput {
            name: "Aのルール".into(),
            enabled: true,
            stores: vec![],
            spec: orderdesk::domain::rules::RuleSpec {
                conditions: vec![],
                actions: vec![orderdesk::domain::rules::Action::AddTag(a_tag)],
                match_all: true,
            },
            stop_after: false,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap()
    .unwrap();
    let a_batch = orderdesk::db::documents::create_batch(
        &app.db,
        orderdesk::domain::AccountId(a_account),
        orderdesk::db::documents::DocumentKind::Picking,
        &[orderdesk::db::orders::OrderPk(a_order)],
        &[],
        &orderdesk::db::orders::HistoryActor::User("owner-a@example.jp".into()),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let a_mail = orderdesk::db::mail::queue_one(
        &app.db,
        &orderdesk::db::mail::NewMail::plain(
            orderdesk::domain::AccountId(a_account),
            None,
            orderdesk::domain::mail::MailKind::Test,
            "owner-a@example.jp",
            "Aのメール".into(),
            "Aの本文".into(),
        ),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let b = app.owner("B商店", "owner-b@example.jp").await;
    app.add_store(&b, "Bの本店", "b-honten", "b-secret").await;

    let mut walked = 0;
    for route in routes().list() {
        let mut path = route.path.to_string();
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').unwrap() + start;
            let value = match &path[start + 1..end] {
                "store_id" => a_store.to_string(),
                "user_id" => a_user.to_string(),
                "order_id" => a_order.to_string(),
                "run_id" => a_run.to_string(),
                "upload_id" => a_upload.to_string(),
                "alert_id" => a_alert.to_string(),
                "export_id" => a_export.to_string(),
                "tag_id" => a_tag.to_string(),
                "rule_id" => a_rule.to_string(),
                "batch_id" => a_batch.to_string(),
                "mail_id" => a_mail.to_string(),
                "file" => break,  // static files are not account data
                "token" => break, // a reset link's token is its own capability, not an account's ID
                other => panic!("the tenancy walk does not know how to make a `{other}` of account A; teach it"),
            };
            path.replace_range(start..=end, &value);
        }
        if path.contains('{') {
            continue;
        }
        if route.path.contains("_id}") {
            let page = if route.method == Method::POST { b.submit("/", &path, &[]).await } else { b.get(&path).await };
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{} {} with account A's IDs", route.method, route.path);
            walked += 1;
        } else if route.method == Method::GET {
            // Pages scoped by the session: nothing of A's shows up for B.
            let page = b.get(&path).await;
            for a_thing in ["Aの本店", "a-honten", "A商店", "owner-a@example.jp", "staff-a@example.jp"] {
                assert!(!page.body.contains(a_thing), "B sees {a_thing} on {path}");
            }
        }
    }
    let id_routes = routes().list().iter().filter(|r| r.path.contains("_id}")).count();
    assert!(id_routes >= 5, "the route table lost its account-scoped routes");
    assert_eq!(walked, id_routes, "every account-scoped route was walked");

    // A's data is intact.
    assert_eq!(a.get(&format!("/stores/{a_store}")).await.status, StatusCode::OK);
    assert!(a.get("/users").await.body.contains("staff-a@example.jp"));
    let upload =
        orderdesk::db::stock::upload(&app.db, orderdesk::domain::AccountId(a_account), a_upload).await.unwrap();
    assert!(!upload.unwrap().2, "B could not apply A's stock upload");
    let a_audit = a.get("/audit").await;
    assert!(!a_audit.body.contains("owner-b@example.jp"), "B's actions are not in A's log");
}

/// An imported order and an import run of the store, written as an import would write them.
async fn seed_order_and_run(app: &TestApp, store: i64) -> (i64, i64) {
    use orderdesk::{
        db::{imports, orders},
        domain::{StoreId, store::InternalStatus},
        yahoo::api::OrderDetail,
    };
    let store = StoreId(store);
    let account = crate::import::account_of(&app.db, store).await;
    let now = orderdesk::db::now();
    imports::ensure(&app.db, account, store, now).await.unwrap();
    let write = orders::OrderWrite {
        detail: OrderDetail { order_id: "a-honten-1".into(), version: 1, order_time: now, ..OrderDetail::default() },
        new_status: InternalStatus::New,
        flag_cancel: false,
        history: vec![],
        moves_on: None,
        notify: None,
    };
    let batch = orders::Batch {
        writes: vec![write],
        unchanged: vec![],
        cursor_to: None,
        retry: None,
        lease_owner: None,
        notify_base: None,
        actor: orders::HistoryActor::Job,
        now,
    };
    orders::write_batch(&app.db, account, store, batch).await.unwrap();
    let order = orders::all_of_store(&app.db, account, store).await.unwrap()[0].0.id.0;
    let run = imports::create_run(&app.db, account, store, imports::Trigger::Manual, "done", (None, None), "test", now)
        .await
        .unwrap();
    (order, run.0)
}

crate::on_both_backends!(another_accounts_ids_are_404_on_every_route);
