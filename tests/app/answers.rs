//! The client against every answer shape Yahoo really gives (issue 15), produced on demand by the
//! simulator's fault modes: what the merchant is told (the 接続テスト message and the store's
//! diagnosis), what is retried (the simulator's call counters), what the client hands back
//! (warnings, orderCount), and that our own pacing never meets the rate limit.

use std::time::{Duration, Instant};

use orderdesk::{
    crypto::SecretBox,
    domain::{AccountId, StoreId},
    yahoo::{Body, YahooClient, YahooError, api},
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, Browser, TestApp},
    on_both_backends,
    sim::{CLIENT_ID, CLIENT_SECRET, Sim, fixture},
};

const SELLER: &str = "shop-a";

struct Scene {
    /// Keeps the service (and its database) up for the test.
    _app: TestApp,
    sim: Sim,
    owner: Browser,
    store: StoreId,
    account: AccountId,
    /// A client of our own on the app's database and secrets, for calls no page makes yet.
    yahoo: YahooClient,
}

async fn scene(backend: Backend, min_interval_ms: u64) -> Scene {
    let sim = Sim::start().await;
    let sim_url = sim.base.clone();
    let app = TestApp::spawn_with(backend, move |c| {
        c.simulator_url = Some(sim_url);
        c.yahoo_min_interval_ms = min_interval_ms;
        c.yahoo_backoff_ms = 10;
    })
    .await;
    sim.control(
        "/_sim/apps",
        json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [app.config.redirect_uri()] }),
    )
    .await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let store = connect(&sim, &owner, "本店", SELLER).await;
    let account = orderdesk::with_pool!(&app.db, |p| {
        sqlx::query_scalar::<_, i64>("select account_id from store where id = $1").bind(store).fetch_one(p).await
    })
    .map(AccountId)
    .unwrap();
    let secrets = SecretBox::load(app.config.secret_key.as_ref().map(|k| k.expose()), &app.config.data_dir).unwrap();
    let yahoo = YahooClient::new(&app.config, app.db.clone(), secrets).unwrap();
    Scene { _app: app, sim, owner, store, account, yahoo }
}

/// Adds a store on the simulator with fixture key 1 and walks the consent flow.
async fn connect(sim: &Sim, owner: &Browser, name: &str, seller: &str) -> StoreId {
    let page = owner
        .submit(
            "/stores/new",
            "/stores",
            &[
                ("name", name),
                ("seller_id", seller),
                ("environment", "simulator"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("auto_import_interval_minutes", "15"),
                ("restrict_fraud_hold_changes", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let store: i64 = page.location().trim_start_matches("/stores/").parse().unwrap();
    let path = format!("/stores/{store}");
    let version = sim.key(seller, 1).await.to_string();
    let saved = owner
        .submit(
            &format!("{path}/public-key"),
            &format!("{path}/public-key"),
            &[("public_key", &fixture("public-1.pem")), ("public_key_version", &version)],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let start = owner.submit(&path, &format!("{path}/connect"), &[]).await;
    let consent = url::Url::parse(start.location()).unwrap();
    let mut form: Vec<(String, String)> = consent.query_pairs().into_owned().collect();
    form.push(("decision".into(), "allow".into()));
    form.push(("new_seller_id".into(), seller.into()));
    let back = sim.http.post(sim.url("/yconnect/v2/authorization")).form(&form).send().await.unwrap();
    let callback = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let done = owner.get(&format!("{}?{}", callback.path(), callback.query().unwrap())).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    StoreId(store)
}

impl Scene {
    /// 接続テスト (one orderList through the client), then the store page: (message, diagnosis).
    async fn connection_test(&self) -> (String, String) {
        let path = format!("/stores/{}", self.store.0);
        let r = self.owner.submit(&path, &format!("{path}/test"), &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = self.owner.get(&path).await;
        (page.select_text(".flash").join(" "), page.select_text(".diagnosis").join(" "))
    }

    async fn fault(&self, api: &str, kind: &str, times: Option<u64>) {
        self.sim.control("/_sim/faults", json!({ "api": api, "kind": kind, "times": times })).await;
    }

    async fn reset(&self) {
        for path in ["/_sim/faults", "/_sim/counters"] {
            let r = self.sim.http.delete(self.sim.url(path)).send().await.unwrap();
            assert!(r.status().is_success());
        }
    }

    async fn counter(&self, key: &str) -> u64 {
        self.sim.get_json("/_sim/counters").await[key].as_u64().unwrap_or(0)
    }

    async fn call(&self, api: &str, body: Body) -> Result<orderdesk::xml::Element, YahooError> {
        self.yahoo.call(self.account, self.store, api, body).await
    }
}

/// Each answer shape through 接続テスト: what the merchant reads, and how many calls it took.
async fn each_answer_is_told_and_retried_as_it_should(backend: Backend) {
    let s = scene(backend, 0).await;
    let ok = "接続テストに成功しました";
    // (fault kind, calls the client makes, what the flash says)
    let cases: [(&str, u64, &str); 7] = [
        // Temporary: retried, and the merchant never sees them.
        ("error503", 2, ok),
        ("malformed_xml", 2, ok),
        ("throttle", 2, ok),
        // Yahoo refusing in a 200: its own code and message, once, not "unreadable".
        (
            "status_ng",
            1,
            "接続テストに失敗しました: Yahoo!がエラーを返しました: The request was refused. (Simulated by the status_ng fault.)（sim-ng01）",
        ),
        // The error body in every recorded shape at once reads cleanly.
        (
            "error_detail",
            1,
            "接続テストに失敗しました: Yahoo!がエラーを返しました: Invalid Request. (Simulated by the error_detail fault.)（sim-e01）",
        ),
        // Missing scope: permanent, no refresh, the merchant is told where to fix it.
        ("insufficient_scope", 1, "スコープ"),
        ("warning", 1, ok),
    ];
    for (kind, calls, told) in cases {
        s.reset().await;
        s.fault("orderList", kind, Some(1)).await;
        let (message, diagnosis) = s.connection_test().await;
        assert!(message.contains(told), "{kind}: {message}");
        assert!(!message.contains("読み取れませんでした"), "{kind}: {message}");
        assert_eq!(s.counter("calls.orderList").await, calls, "{kind}: calls");
        assert_eq!(s.counter("token.refresh_token").await, 0, "{kind}: no refresh");
        if kind == "insufficient_scope" {
            assert!(
                message.contains("insufficient_scope") && message.contains("Yahoo!デベロッパーネットワーク"),
                "{message}"
            );
            for needle in
                ["insufficient_scope", "Yahoo!デベロッパーネットワーク", "アプリケーションの管理", "ストアAPI"]
            {
                assert!(diagnosis.contains(needle), "{needle}: {diagnosis}");
            }
        } else {
            assert!(!diagnosis.contains("insufficient_scope"), "{kind}: a later success clears it: {diagnosis}");
        }
    }
}

on_both_backends!(each_answer_is_told_and_retried_as_it_should);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_hands_back_warnings_refusals_and_scope_problems() {
    let s = scene(Backend::Sqlite, 0).await;
    // Seen (処理中): Yahoo takes no ship status for 新規受付.
    let order = json!({ "items": [{ "item_id": "mug", "title": "マグカップ" }], "is_seen": true });
    let id = s.sim.order(SELLER, order).await["order_id"].as_str().unwrap().to_owned();
    let ship = api::ship_change_xml(SELLER, &id, 3, "1001", "1234-5678", None, "");

    // A change answer with warnings: made, and each warning kept with its code and logged.
    s.fault("orderShipStatusChange", "warning", Some(1)).await;
    let root = s.call("orderShipStatusChange", Body::Xml(ship.clone())).await.unwrap();
    let warnings = api::parse_change(&root).unwrap();
    let codes: Vec<&str> = warnings.iter().map(|w| w.code.as_str()).collect();
    assert_eq!(codes, ["sim-w01", "sim-w02"]);
    assert!(warnings.iter().all(|w| w.message.contains("シミュレーターの警告")), "{warnings:?}");
    let logs = crate::helpers::captured_logs();
    assert!(logs.contains("Yahoo answered with a warning") && logs.contains("sim-w02"), "the warnings are logged");

    // Status NG in a 200: Yahoo's error with its code, not retried, nothing changed.
    s.reset().await;
    let cancel = api::status_change_xml(SELLER, &id, 4, Some(210), "test");
    s.fault("orderStatusChange", "status_ng", Some(1)).await;
    let e = s.call("orderStatusChange", Body::Xml(cancel.clone())).await.unwrap_err();
    assert!(matches!(&e, YahooError::Api { status: 200, code: Some(c), .. } if c == "sim-ng01"), "{e:?}");
    assert!(!e.is_temporary());
    assert_eq!(s.counter("calls.orderStatusChange").await, 1);
    // Without the fault the same change goes through (the order was untouched).
    assert!(api::parse_change(&s.call("orderStatusChange", Body::Xml(cancel)).await.unwrap()).unwrap().is_empty());

    // insufficient_scope on every call: one call, no refresh loop, recorded for the diagnosis.
    s.reset().await;
    s.fault("orderInfo", "insufficient_scope", None).await;
    let e = s.call("orderInfo", Body::Xml(api::order_info_xml(SELLER, &id))).await.unwrap_err();
    assert_eq!(e, YahooError::InsufficientScope);
    assert!(e.is_auth_problem());
    assert_eq!((s.counter("calls.orderInfo").await, s.counter("token.refresh_token").await), (1, 0));
    let page = s.owner.get(&format!("/stores/{}", s.store.0)).await;
    assert!(page.select_text(".diagnosis").join(" ").contains("insufficient_scope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_count_through_the_client() {
    let s = scene(Backend::Sqlite, 0).await;
    for status in [2, 2, 2, 1, 3] {
        s.sim.order(SELLER, json!({ "items": [{ "item_id": "mug", "title": "マグ" }], "order_status": status })).await;
    }
    let root = s.call("orderCount", Body::Query(api::order_count_query(SELLER))).await.unwrap();
    let count = api::parse_order_count(&root).unwrap();
    assert_eq!((count.new_order, count.new_reserve, count.holding), (3, 1, 1));
    assert_eq!(s.counter("authorize.authorized").await, 1, "signed like every store-API call");
    // One more: the OAuth callback's seller check asks orderCount with the new token.
    assert_eq!(s.counter("status.orderCount.200").await, 2);
}

/// Our client paces per app and API URL at `yahoo_min_interval_ms` (1 s): under the simulator's
/// real rate limit it is never refused, even with calls in parallel and two stores on one app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pacing_is_never_refused() {
    let s = scene(Backend::Sqlite, 1000).await;
    let second = connect(&s.sim, &s.owner, "支店", "shop-b").await;
    s.sim.control("/_sim/settings", json!({ "rate_per_sec": 1.0 })).await;
    s.reset().await;
    let list = |seller: &str| {
        let xml = format!(
            "<Req><Search><Result>1</Result><Condition><OrderId>{seller}-x</OrderId></Condition><Field>OrderId</Field></Search><SellerId>{seller}</SellerId></Req>"
        );
        Body::Xml(xml)
    };
    let started = Instant::now();
    let calls = (0..3).flat_map(|_| {
        [
            s.yahoo.call(s.account, s.store, "orderList", list(SELLER)),
            s.yahoo.call(s.account, second, "orderList", list("shop-b")),
        ]
    });
    for result in futures_util::future::join_all(calls).await {
        result.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(4500), "six calls on one app and URL take five intervals");
    assert_eq!(s.counter("throttled.orderList").await, 0);
    assert_eq!(s.counter("status.orderList.200").await, 6);
}
