//! Connecting a store (product.md §3, §4, §7) against the simulator: the real consent flow, the
//! public-key form, 接続テスト, diagnosis, clock offsets, invalid_grant and single-flight refresh.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{Backend, Browser, TestApp},
    on_both_backends,
    sim::{CLIENT_ID, CLIENT_SECRET, Sim, fixture},
};

const SELLER: &str = "shop-a";

struct Scene {
    app: TestApp,
    sim: Sim,
    owner: Browser,
    store: i64,
}

async fn scene(backend: Backend) -> Scene {
    scene_with(backend, |_| {}).await
}

async fn scene_with(backend: Backend, adjust: impl FnOnce(&mut orderdesk::config::Config)) -> Scene {
    let sim = Sim::start().await;
    let sim_url = sim.base.clone();
    let app = TestApp::spawn_with(backend, move |c| {
        c.simulator_url = Some(sim_url);
        c.yahoo_min_interval_ms = 0;
        c.yahoo_backoff_ms = 10;
        adjust(c);
    })
    .await;
    sim.control(
        "/_sim/apps",
        json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [app.config.redirect_uri()] }),
    )
    .await;
    let owner = app.owner("商店", "owner@example.jp").await;
    let page = owner
        .submit(
            "/stores/new",
            "/stores",
            &[
                ("name", "本店"),
                ("seller_id", SELLER),
                ("environment", "simulator"),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
                ("auto_import_interval_minutes", "15"),
                ("restrict_fraud_hold_changes", "on"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let store = page.location().trim_start_matches("/stores/").parse().unwrap();
    Scene { app, sim, owner, store }
}

impl Scene {
    fn path(&self, rest: &str) -> String {
        format!("/stores/{}{rest}", self.store)
    }

    /// 「Yahoo!と連携する」 → the simulator's consent page → 同意する → the callback.
    async fn connect(&self) {
        let start = self.owner.submit(&self.path(""), &self.path("/connect"), &[]).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let consent_url = url::Url::parse(start.location()).unwrap();
        assert!(consent_url.as_str().starts_with(self.sim.base.as_str()));
        let params: Vec<(String, String)> = consent_url.query_pairs().into_owned().collect();
        assert!(params.iter().any(|(k, v)| k == "code_challenge_method" && v == "S256"));
        let page = self.sim.http.get(consent_url.clone()).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let mut form = params.clone();
        form.push(("decision".into(), "allow".into()));
        form.push(("new_seller_id".into(), SELLER.into()));
        let back = self.sim.http.post(self.sim.url("/yconnect/v2/authorization")).form(&form).send().await.unwrap();
        let callback = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
        let done = self.owner.get(&format!("{}?{}", callback.path(), callback.query().unwrap())).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), self.path(""));
    }

    async fn set_key(&self, key: &str, version: &str) -> crate::helpers::Page {
        self.owner
            .submit(
                &self.path("/public-key"),
                &self.path("/public-key"),
                &[("public_key", key), ("public_key_version", version)],
            )
            .await
    }

    /// 接続テスト, then the store page.
    async fn test(&self) -> crate::helpers::Page {
        let r = self.owner.submit(&self.path(""), &self.path("/test"), &[]).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        self.owner.get(&self.path("")).await
    }
}

fn text(page: &crate::helpers::Page, selector: &str) -> String {
    page.select_text(selector).join(" ")
}

/// Yahoo's X-SWS-Authorize-Status as last seen (the page shows it in Japanese).
fn status_code(page: &crate::helpers::Page) -> String {
    page.select_attr("#authorize-status", "data-status").join("")
}

async fn connect_with_key_and_survive_12_hours(backend: Backend) {
    let s = scene(backend).await;
    assert_eq!(s.sim.key(SELLER, 1).await, 1);
    let saved = s.set_key(&fixture("public-1.pem"), "1").await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    s.connect().await;
    let page = s.test().await;
    assert!(page.body.contains("接続テストに成功しました"), "{}", page.body);
    assert_eq!(status_code(&page), "authorized");
    assert!(text(&page, "#authorize-status").starts_with("公開鍵認証OK"), "{}", text(&page, "#authorize-status"));
    assert!(
        text(&page, "#clock-authorization").starts_with("残り27日")
            || text(&page, "#clock-authorization").starts_with("残り28日")
    );

    // 13 simulated hours later: the access token expired at Yahoo, the session did not.
    s.sim.advance(13 * 3600).await;
    let page = s.test().await;
    assert!(page.body.contains("接続テストに成功しました"), "{}", page.body);
    assert!(page.select_text(".diagnosis").is_empty(), "{:?}", page.select_text(".diagnosis"));
    // Tokens are sealed at rest and never rendered.
    assert!(!page.body.contains(CLIENT_SECRET));
    let audit = s.owner.get("/audit").await;
    assert!(audit.body.contains("Yahoo!連携") && audit.body.contains("公開鍵の設定"));
    drop(s.app);
}

/// A Yahoo that does not answer in time ends 接続テスト with a message inside the request
/// timeout, never an empty 408.
async fn a_slow_yahoo_ends_with_a_message_not_a_408(backend: Backend) {
    let s = scene_with(backend, |c| c.request_timeout_secs = 3).await;
    s.sim.key(SELLER, 1).await;
    s.set_key(&fixture("public-1.pem"), "1").await;
    s.connect().await;
    s.sim.control("/_sim/faults", json!({ "api": "orderList", "kind": "delay", "delay_ms": 6000 })).await;
    let r = s.owner.submit(&s.path(""), &s.path("/test"), &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = s.owner.get(&s.path("")).await;
    assert!(page.body.contains("秒以内に応答がなかったため、接続テストを中断しました"), "{}", page.body);
}

/// Consent given on the consent page for another seller than the store's is refused at the
/// callback, naming both seller IDs, and nothing is stored.
async fn consent_for_another_seller_is_refused(backend: Backend) {
    let s = scene(backend).await;
    let start = s.owner.submit(&s.path(""), &s.path("/connect"), &[]).await;
    let consent_url = url::Url::parse(start.location()).unwrap();
    let mut form: Vec<(String, String)> = consent_url.query_pairs().into_owned().collect();
    form.push(("decision".into(), "allow".into()));
    form.push(("new_seller_id".into(), "shop-other".into()));
    let back = s.sim.http.post(s.sim.url("/yconnect/v2/authorization")).form(&form).send().await.unwrap();
    let callback = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let done = s.owner.get(&format!("{}?{}", callback.path(), callback.query().unwrap())).await;
    assert_eq!(done.location(), s.path(""));
    let page = s.owner.get(&s.path("")).await;
    let flash = page.select_text(".flash").join(" ");
    assert!(flash.contains("shop-other") && flash.contains(SELLER) && flash.contains("px-04304"), "{flash}");
    let test = s.test().await;
    assert!(test.body.contains("Yahoo!と連携していません"), "nothing was stored: {}", test.body);
}

async fn without_a_key_the_session_ends_at_12_hours(backend: Backend) {
    let s = scene(backend).await;
    s.connect().await;
    let page = s.test().await;
    assert!(page.body.contains("公開鍵認証が通っていません（公開鍵認証なし）"), "{}", page.body);
    assert!(
        text(&page, "#clock-authorization").contains("時間"),
        "the 12-hour clock: {}",
        text(&page, "#clock-authorization")
    );
    s.sim.advance(12 * 3600 + 60).await;
    let page = s.test().await;
    let diagnosis = text(&page, ".diagnosis");
    assert!(
        diagnosis.contains("px-04102") && diagnosis.contains("公開鍵と公開鍵バージョンが設定されていません"),
        "{diagnosis}"
    );
    assert!(!page.select_text("button.reauthorize").is_empty());
    // The dashboard says so too (定期的に必要な作業).
    let home = s.owner.get("/").await;
    assert!(text(&home, "#warnings").contains("px-04102"), "{}", text(&home, "#warnings"));
}

on_both_backends!(
    a_slow_yahoo_ends_with_a_message_not_a_408,
    consent_for_another_seller_is_refused,
    connect_with_key_and_survive_12_hours,
    without_a_key_the_session_ends_at_12_hours
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_problem_gets_its_own_diagnosis() {
    let cases: [(&str, &str); 4] = [
        ("not-found-key-version", "公開鍵バージョンが正しくありません"),
        ("invalid-key-status", "「無効」になっています"),
        ("expired-key-version", "有効期限（1年）が切れています"),
        ("invalid-authorize-value", "「コピー」ボタンでコピーした公開鍵"),
    ];
    for (status, advice) in cases {
        let s = scene(Backend::Sqlite).await;
        s.sim.key(SELLER, 1).await;
        let (key, version) = match status {
            "not-found-key-version" => ("public-1.pem", "9"),
            "invalid-authorize-value" => ("public-2.pem", "1"),
            _ => ("public-1.pem", "1"),
        };
        match status {
            "invalid-key-status" => {
                s.sim.control(&format!("/_sim/sellers/{SELLER}/keys/1"), json!({ "enabled": false })).await;
            }
            "expired-key-version" => {
                s.sim
                    .control(&format!("/_sim/sellers/{SELLER}/keys/1"), json!({ "expires_at": "2020-01-01T00:00:00Z" }))
                    .await;
            }
            _ => {}
        }
        assert_eq!(s.set_key(&fixture(key), version).await.status, StatusCode::SEE_OTHER);
        s.connect().await;
        let page = s.test().await;
        assert!(status_code(&page) == status, "{status}: {}", status_code(&page));
        let diagnosis = text(&page, ".diagnosis");
        assert!(diagnosis.contains(advice), "{status}: {diagnosis}");
        // After 12 hours the cause is named on the px-04102 diagnosis too.
        s.sim.advance(12 * 3600 + 60).await;
        let page = s.test().await;
        let diagnosis = text(&page, ".diagnosis");
        assert!(diagnosis.contains("px-04102") && diagnosis.contains(advice), "{status}: {diagnosis}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skewed_clock_is_measured_and_corrected() {
    for offset in [600i64, -60] {
        let s = scene(Backend::Sqlite).await;
        s.sim.key(SELLER, 1).await;
        s.set_key(&fixture("public-1.pem"), "1").await;
        s.connect().await;
        s.sim.control("/_sim/clock", json!({ "offset_secs": offset })).await;
        let page = s.test().await;
        assert!(page.body.contains("接続テストに成功しました"), "{offset}: {}", page.select_text(".flash").join(" "));
        assert_eq!(status_code(&page), "authorized", "{offset}");
        let measured = page.select_attr("#clock-offset", "data-offset-ms").join("");
        let secs = measured.parse::<i64>().unwrap() / 1000;
        let words = text(&page, "#clock-offset");
        assert!(words.contains(if offset > 0 { "進んで" } else { "遅れて" }) && !words.contains('+'), "{words}");
        assert!((secs - offset).abs() <= 1, "{offset}: {measured}");
        let counters = s.sim.get_json("/_sim/counters").await;
        assert!(counters["authorize.authorized"].as_u64().unwrap() >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_leads_to_the_reauthorize_prompt() {
    let s = scene(Backend::Sqlite).await;
    s.sim.key(SELLER, 1).await;
    s.set_key(&fixture("public-1.pem"), "1").await;
    s.connect().await;
    s.sim.control("/_sim/grants/revoke", json!({ "seller_id": SELLER })).await;
    let page = s.test().await;
    let diagnosis = text(&page, ".diagnosis");
    assert!(diagnosis.contains("再認証してください"), "{diagnosis}");
    assert!(!page.select_text("button.reauthorize").is_empty());
    // Authorizing again clears it.
    s.connect().await;
    let page = s.test().await;
    assert!(page.select_text(".diagnosis").is_empty(), "{:?}", page.select_text(".diagnosis"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_cause_one_refresh() {
    let s = scene(Backend::Sqlite).await;
    s.sim.key(SELLER, 1).await;
    s.set_key(&fixture("public-1.pem"), "1").await;
    s.connect().await;
    // Yahoo's clock passes the hour: every stored token is refused at once.
    s.sim.advance(3700).await;
    let token = s.owner.get(&s.path("")).await.csrf_token().unwrap();
    let path = s.path("/test");
    let fields = [("csrf_token", token.as_str())];
    let calls = (0..6).map(|_| s.owner.post_raw(&path, &fields, &[]));
    for page in futures_util::future::join_all(calls).await {
        assert_eq!(page.status, StatusCode::SEE_OTHER);
    }
    let counters = s.sim.get_json("/_sim/counters").await;
    assert_eq!(counters["token.refresh_token"], 1, "{counters}");
    assert!(counters["status.orderList.200"].as_u64().unwrap() >= 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_form_refuses_bad_input_and_stores_nothing() {
    let s = scene(Backend::Sqlite).await;
    let spki = fixture("public-1.pem");
    let body: String = spki.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n");
    let big = "A".repeat(1024 * 1024);
    let cases: Vec<(String, &str, &str, &str)> = vec![
        // (key, version, field, message fragment)
        (body.clone(), "1", "public_key", "先頭の「-----BEGIN PUBLIC KEY-----」"),
        (spki.replace("-----END PUBLIC KEY-----", ""), "1", "public_key", "先頭の「-----BEGIN PUBLIC KEY-----」"),
        (spki.replace("-----BEGIN PUBLIC KEY-----", ""), "1", "public_key", "先頭の「-----BEGIN PUBLIC KEY-----」"),
        (
            spki.replace("BEGIN PUBLIC KEY", "BEGIN PUBLIK KEY"),
            "1",
            "public_key",
            "先頭の「-----BEGIN PUBLIC KEY-----」",
        ),
        (spki.replace("MII", "MII—–"), "1", "public_key", "読み取れません"),
        (fixture("private-1-pkcs1.pem").replace('\n', "\r\n"), "1", "public_key", "秘密鍵"),
        (format!("\u{feff}{body}"), "1", "public_key", "先頭の「-----BEGIN PUBLIC KEY-----」"),
        (format!("公開鍵はこちら\n{spki}"), "1", "public_key", "前と"),
        (format!("{spki}\nよろしくお願いします"), "1", "public_key", "前と"),
        (format!("{spki}\n{}", fixture("public-2.pem")), "1", "public_key", "複数"),
        (fixture("private-1-pkcs1.pem"), "1", "public_key", "秘密鍵"),
        (fixture("private-1.pem"), "1", "public_key", "秘密鍵"),
        (fixture("certificate.pem"), "1", "public_key", "証明書"),
        (fixture("public-ec.pem"), "1", "public_key", "RSA の公開鍵ではありません"),
        (fixture("public-1024.pem"), "1", "public_key", "1024 ビット"),
        (
            "-----BEGIN PUBLIC KEY-----\n!!!!not base64!!!!\n-----END PUBLIC KEY-----".into(),
            "1",
            "public_key",
            "読み取れません",
        ),
        ("-----BEGIN PUBLIC KEY-----\nQUJDRA==\n-----END PUBLIC KEY-----".into(), "1", "public_key", "読み取れません"),
        ("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----".into(), "1", "public_key", "読み取れません"),
        (
            spki.lines().take(4).collect::<Vec<_>>().join("\n") + "\n-----END PUBLIC KEY-----",
            "1",
            "public_key",
            "読み取れません",
        ),
        (big, "1", "public_key", "長すぎます"),
        (
            "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 user@host".into(),
            "1",
            "public_key",
            "先頭の「-----BEGIN PUBLIC KEY-----」",
        ),
        (String::new(), "1", "public_key", "両方入力してください"),
        (spki.clone(), "", "public_key_version", "両方入力してください"),
        (spki.clone(), "0", "public_key_version", "1以上の整数"),
        (spki.clone(), "-1", "public_key_version", "1以上の整数"),
        (spki.clone(), "v2", "public_key_version", "1以上の整数"),
        (spki.clone(), "1.5", "public_key_version", "1以上の整数"),
    ];
    assert!(cases.len() >= 25);
    for (key, version, field, message) in &cases {
        let page = s.set_key(key, version).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{field} {message}");
        let error = page.select_text(&format!("p.field-error[data-field='{field}']")).join(" ");
        assert!(
            error.contains(message),
            "expected {message:?} for {field}, got {error:?} (key starts {:?})",
            key.chars().take(40).collect::<String>()
        );
        if message == &"秘密鍵" {
            assert!(!page.body.contains("PRIVATE KEY-----\n"), "a private key is never echoed back");
        } else if key.len() < 10_000 && !key.is_empty() {
            assert!(page.body.contains(key.lines().nth(1).unwrap_or(key).trim()), "the typed key is kept");
        }
        let store = s.owner.get(&s.path("")).await;
        assert!(text(&store, "dd").contains("未設定"), "nothing stored after {message}");
    }
    assert!(!crate::helpers::captured_logs().contains("BEGIN RSA PRIVATE KEY"));

    // The good inputs are stored and authorize against the simulator.
    s.sim.key(SELLER, 1).await;
    s.connect().await;
    let dashed =
        spki.replace("-----BEGIN", "—–BEGIN").replace("KEY-----", "KEY—–").replace("-----END", "－－－－－END");
    for (key, note) in
        [(fixture("public-1-pkcs1.pem"), "変換しました"), (dashed, "修復しました"), (spki.clone(), "保存しました")]
    {
        let saved = s.set_key(&key, "1").await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
        let page = s.owner.get(&s.path("")).await;
        assert!(page.body.contains(note), "{note}");
        let page = s.test().await;
        assert!(status_code(&page) == "authorized", "{note}: {}", status_code(&page));
    }
}
