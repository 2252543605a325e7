//! The simulator against the contract (spec/yahoo-store-api.md), through real HTTP only.

use reqwest::{StatusCode, header};
use serde_json::json;

use crate::sim::{CALLBACK, CLIENT_ID, Sig, Sim, order_info_xml, order_list_xml, wide_window};

const SELLER: &str = "shop-a";
const FIELDS: &str = "OrderId,Version,OrderStatus,FraudHoldStatus,PublicationTime,BuyerComments,BillLastName,ShipCity,TotalPrice,LineId,Title,ItemOption,SellerId";

/// A simulator with an authorized seller that has fixture key 1 as version 1.
async fn ready() -> (Sim, String, String) {
    let sim = Sim::start().await;
    let (access, refresh) = sim.authorize(SELLER).await;
    assert_eq!(sim.key(SELLER, 1).await, 1);
    (sim, access, refresh)
}

async fn status_with(sim: &Sim, token: &str, sig: Sig) -> String {
    let order = sim.plain_order(SELLER).await;
    let a = sim.call("orderInfo", token, &order_info_xml(SELLER, &order, "OrderId"), &sig).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.authorize_status().to_owned()
}

fn with(key: u8, version: Option<&str>, seller: &str, timestamp: impl ToString) -> Sig {
    Sig::With { key, version: version.map(str::to_owned), seller: seller.into(), timestamp: timestamp.to_string() }
}

#[tokio::test]
async fn every_authorize_status_in_the_contract() {
    let (sim, token, _) = ready().await;
    let now = sim.now().await;
    // Key 2 as version 2, switched to 無効; key 2 as version 3, expired.
    sim.key(SELLER, 2).await;
    sim.control(&format!("/_sim/sellers/{SELLER}/keys/2"), json!({ "enabled": false })).await;
    sim.control(&format!("/_sim/sellers/{SELLER}/keys"), json!({ "private_pem": crate::sim::fixture("private-2.pem"), "version": 3, "expires_at": "2020-01-01T00:00:00Z" })).await;

    let cases: Vec<(Sig, &str)> = vec![
        (Sig::good(SELLER, now), "authorized"),
        (Sig::None, "none"),
        (with(1, None, SELLER, now), "invalid-key-version"),
        (with(1, Some("v2"), SELLER, now), "invalid-key-version"),
        (with(1, Some("0"), SELLER, now), "invalid-key-version"),
        (with(1, Some("9"), SELLER, now), "not-found-key-version"),
        (with(2, Some("2"), SELLER, now), "invalid-key-status"),
        (with(2, Some("3"), SELLER, now), "expired-key-version"),
        (Sig::Raw { signature: "not base64!".into(), version: Some("1".into()) }, "invalid-authorize-value"),
        (with(2, Some("1"), SELLER, now), "invalid-authorize-value"),
        (with(1, Some("1"), "someone-else", now), "invalid-sellerid"),
        (with(1, Some("1"), SELLER, "12:00"), "invalid-timestamp"),
        (with(1, Some("1"), SELLER, now + 60), "invalid-timestamp"),
        (with(1, Some("1"), SELLER, now - 600), "expired-timestamp"),
    ];
    for (sig, expected) in cases {
        assert_eq!(status_with(&sim, &token, sig.clone()).await, expected, "{sig:?}");
    }
    // Decrypts, but is not `seller:timestamp`.
    let cipher = rsa::RsaPublicKey::encrypt(
        &crate::sim::public_key(1),
        &mut rand::thread_rng(),
        rsa::Pkcs1v15Encrypt,
        b"garbage",
    )
    .unwrap();
    let raw = Sig::Raw {
        signature: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cipher),
        version: Some("1".into()),
    };
    assert_eq!(status_with(&sim, &token, raw).await, "unauthorized");

    let counters = sim.get_json("/_sim/counters").await;
    assert!(counters["authorize.authorized"].as_u64().unwrap() >= 1);
    assert!(counters["authorize.expired-timestamp"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn clock_windows_and_skew() {
    let (sim, token, _) = ready().await;
    let now = sim.now().await;
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now)).await, "authorized");
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now + 5)).await, "invalid-timestamp");
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now - 530)).await, "authorized");
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now - 541)).await, "expired-timestamp");

    // The manual's example: our machine reads 12:01 while the real time is 12:00 → fails.
    sim.control("/_sim/clock", json!({ "offset_secs": -60 })).await;
    let real = chrono::Utc::now().timestamp();
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, real)).await, "invalid-timestamp");
    // …and a clock 10 minutes behind fails the other window.
    sim.control("/_sim/clock", json!({ "offset_secs": 600 })).await;
    let a =
        sim.call("orderInfo", &token, &order_info_xml(SELLER, "x", "OrderId"), &with(1, Some("1"), SELLER, real)).await;
    assert_eq!(a.authorize_status(), "expired-timestamp");
    // The Date header carries the simulator's clock, so a client can measure the offset.
    let date = chrono::DateTime::parse_from_rfc2822(a.headers[header::DATE].to_str().unwrap()).unwrap().timestamp();
    assert!((date - real - 600).abs() <= 2, "Date {date} vs real {real}");

    // Both windows are configurable.
    sim.control("/_sim/clock", json!({ "offset_secs": 0 })).await;
    sim.control("/_sim/settings", json!({ "future_tolerance_secs": 120, "max_age_secs": 60 })).await;
    let now = sim.now().await;
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now + 100)).await, "authorized");
    assert_eq!(status_with(&sim, &token, with(1, Some("1"), SELLER, now - 61)).await, "expired-timestamp");
}

#[tokio::test]
async fn a_signature_made_by_openssl_is_accepted() {
    let (sim, token, _) = ready().await;
    let now = sim.now().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("public.pem");
    std::fs::write(&key, crate::sim::fixture("public-1.pem")).unwrap();
    let mut child = std::process::Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-pubin", "-inkey"])
        .arg(&key)
        .args(["-pkeyopt", "rsa_padding_mode:pkcs1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{SELLER}:{now}").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let signature = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, out.stdout);
    let sig = Sig::Raw { signature, version: Some("1".into()) };
    assert_eq!(status_with(&sim, &token, sig).await, "authorized");
    // And our client's signature too.
    let ours = Sig::Raw { signature: crate::sim::client_signature(SELLER, now), version: Some("1".into()) };
    assert_eq!(status_with(&sim, &token, ours).await, "authorized");
}

#[tokio::test]
async fn session_cap_is_12_hours_without_a_key_and_28_days_with_one() {
    let (sim, _, refresh) = ready().await;
    let order = sim.plain_order(SELLER).await;
    let info = order_info_xml(SELLER, &order, "OrderId");
    sim.advance(12 * 3600 - 120).await;
    let (_, t) = sim.refresh(&refresh).await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    assert!(t.get("refresh_token").is_none(), "a refresh grant issues no new refresh token");
    assert_eq!(t["expires_in"], 3600);
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK);

    sim.advance(120).await;
    let unsigned = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unsigned.error_code().as_deref(), Some("px-04102"));
    assert!(unsigned.body.contains("This API session is shorter than another API."));
    let signed = sim.call("orderInfo", &token, &info, &Sig::good(SELLER, sim.now().await)).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    assert_eq!(signed.authorize_status(), "authorized");

    // Just before 28 days the signed session still answers; at 28 days it does not.
    sim.advance(28 * 86400 - 12 * 3600 - 120).await;
    let (status, t) = sim.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let token = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::good(SELLER, sim.now().await)).await.status, StatusCode::OK);
    sim.advance(120).await;
    let capped = sim.call("orderInfo", &token, &info, &Sig::good(SELLER, sim.now().await)).await;
    assert_eq!(capped.error_code().as_deref(), Some("px-04102"));
    let (status, e) = sim.refresh(&refresh).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn token_errors_and_expiry() {
    let (sim, token, refresh) = ready().await;
    let info = order_info_xml(SELLER, "x", "OrderId");
    let r = sim.http.post(sim.url("/ShoppingWebService/V1/orderInfo")).body(info.clone()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Authentication parameters in your request incompleted."));

    sim.advance(3600).await;
    let expired = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    let www = expired.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(www.contains(r#"error="invalid_token""#) && www.contains("expired token"), "{www}");
    assert!(expired.body.contains("Please provide valid credentials."));

    // Re-authorizing before 28 days keeps the same refresh token.
    let (_, again) = sim.authorize(SELLER).await;
    assert_eq!(again, refresh);
    // Revocation (the merchant removed the app): invalid_grant.
    sim.control("/_sim/grants/revoke", json!({ "seller_id": SELLER })).await;
    let (status, e) = sim.refresh(&refresh).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn consent_codes_pkce_and_client_authentication() {
    let sim = Sim::start().await;
    // Refusal goes back with access_denied and the state.
    let back = sim.consent(SELLER, &[], "deny").await;
    assert!(back.as_str().starts_with(CALLBACK));
    let q: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    assert!(q.contains(&("error".into(), "access_denied".into())) && q.contains(&("state".into(), "st4te".into())));

    // An unregistered redirect URI gets an error page, never a redirect.
    let r = sim
        .http
        .get(sim.url("/yconnect/v2/authorization"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://evil.example/cb"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // PKCE: the verifier must match; a code is single-use.
    let verifier = "a-very-long-verifier-string-with-enough-entropy-0123456789";
    let challenge = orderdesk::simulator::yconnect::pkce_challenge(verifier);
    let back = sim.consent(SELLER, &[("code_challenge", &challenge), ("code_challenge_method", "S256")], "allow").await;
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let exchange = |v: &'static str, code: String| {
        let sim = &sim;
        async move {
            sim.token_request(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", v),
                ],
                false,
            )
            .await
        }
    };
    let (status, e) = exchange("wrong-verifier", code.clone()).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    // The failed attempt used the code up.
    let (status, _) = exchange(verifier, code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let back = sim.consent(SELLER, &[("code_challenge", &challenge), ("code_challenge_method", "S256")], "allow").await;
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let (status, t) = exchange(verifier, code.clone()).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    assert!(t["refresh_token"].is_string() && t["id_token"].is_string());
    let (status, _) = exchange(verifier, code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a code works once");

    // Codes expire after 600 s.
    let back = sim.consent(SELLER, &[], "allow").await;
    let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    sim.advance(601).await;
    let (status, e) = sim
        .token_request(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)], true)
        .await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));

    // A wrong secret is invalid_client; an unknown grant type is refused.
    let r = sim
        .http
        .post(sim.url("/yconnect/v2/token"))
        .basic_auth(CLIENT_ID, Some("nope"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    let (status, e) = sim.token_request(&[("grant_type", "password")], true).await;
    assert_eq!((status, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn every_transition_of_the_status_table() {
    let (sim, token, _) = ready().await;
    for from in 1..=5u8 {
        for to in 1..=5u8 {
            let order = sim
                .order(SELLER, json!({ "items": [{ "item_id": "a", "title": "品物" }], "order_status": from }))
                .await;
            let id = order["order_id"].as_str().unwrap();
            let xml = format!(
                "<Req><Target><OrderId>{id}</OrderId><IsPointFix>true</IsPointFix><OperationUser>test</OperationUser></Target>\
                 <Order><OrderStatus>{to}</OrderStatus><CancelReason>210</CancelReason></Order><SellerId>{SELLER}</SellerId></Req>"
            );
            let a = sim.call("orderStatusChange", &token, &xml, &Sig::None).await;
            // The table, and 新規予約 → 予約中, 新規注文 → 処理中 (the same status accepts an
            // order not yet seen).
            let allowed = matches!((from, to), (1, 1 | 4 | 5) | (2, 2..=5) | (3, 2 | 4 | 5) | (5, 2 | 4));
            if allowed {
                assert_eq!(a.status, StatusCode::OK, "{from} → {to}: {}", a.body);
                assert_eq!(a.xml().path(&["Result", "Status"]).unwrap().text, "OK");
                let after =
                    sim.call("orderInfo", &token, &order_info_xml(SELLER, id, "OrderStatus,Version"), &Sig::None).await;
                let info = after.xml();
                let o = info.path(&["Result", "OrderInfo"]).unwrap();
                assert_eq!(o.text_of("OrderStatus"), Some(to.to_string().as_str()));
                assert_eq!(o.text_of("Version"), Some("2"), "each change bumps Version");
            } else {
                assert_eq!(a.status, StatusCode::BAD_REQUEST, "{from} → {to}");
                assert!(a.body.contains("Cannot Be Operated : "), "{from} → {to}: {}", a.body);
            }
        }
    }
    // Completing needs IsPointFix=true.
    let id = sim.plain_order(SELLER).await;
    let xml = format!(
        "<Req><Target><OrderId>{id}</OrderId><IsPointFix>false</IsPointFix></Target><Order><OrderStatus>5</OrderStatus></Order><SellerId>{SELLER}</SellerId></Req>"
    );
    assert_eq!(sim.call("orderStatusChange", &token, &xml, &Sig::None).await.status, StatusCode::BAD_REQUEST);
}

fn fraud_item(category: u32) -> serde_json::Value {
    json!({ "items": [{ "item_id": "fraud", "title": "注文保留テスト商品", "category_id": category }] })
}

#[tokio::test]
async fn held_orders_may_only_be_cancelled() {
    let (sim, token, _) = ready().await;
    let held = sim.order(SELLER, fraud_item(4101)).await;
    assert_eq!(held["fraud_hold_status"], 1);
    let id = held["order_id"].as_str().unwrap();
    let status = |to: u8| {
        format!(
            "<Req><Target><OrderId>{id}</OrderId><IsPointFix>true</IsPointFix></Target><Order><OrderStatus>{to}</OrderStatus><CancelReason>170</CancelReason></Order><SellerId>{SELLER}</SellerId></Req>"
        )
    };
    for to in [3, 5] {
        let a = sim.call("orderStatusChange", &token, &status(to), &Sig::None).await;
        assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("od20401")), "{to}");
    }
    let ship = format!(
        "<Req><Target><OrderId>{id}</OrderId></Target><Order><Ship><ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipDate>20240602</ShipDate></Ship></Order><SellerId>{SELLER}</SellerId></Req>"
    );
    assert_eq!(
        sim.call("orderShipStatusChange", &token, &ship, &Sig::None).await.error_code().as_deref(),
        Some("od20401")
    );
    let pay = format!(
        "<Req><Target><OrderId>{id}</OrderId></Target><Order><Pay><PayStatus>1</PayStatus><PayDate>20240602</PayDate></Pay></Order><SellerId>{SELLER}</SellerId></Req>"
    );
    assert_eq!(
        sim.call("orderPayStatusChange", &token, &pay, &Sig::None).await.error_code().as_deref(),
        Some("od20401")
    );
    assert_eq!(sim.call("orderStatusChange", &token, &status(4), &Sig::None).await.status, StatusCode::OK);

    // Free orders (accepted: no longer 新規受付) take ship and pay changes.
    let free =
        sim.order(SELLER, json!({ "items": item(), "is_seen": true })).await["order_id"].as_str().unwrap().to_owned();
    let ship = ship.replace(id, &free);
    assert_eq!(sim.call("orderShipStatusChange", &token, &ship, &Sig::None).await.status, StatusCode::OK);
    let snap = sim.get_json(&format!("/_sim/sellers/{SELLER}/orders")).await;
    let o = snap.as_array().unwrap().iter().find(|o| o["order_id"] == free.as_str()).unwrap();
    assert_eq!((o["ship_status"].as_u64(), o["ship_company_code"].as_str()), (Some(3), Some("1001")));
}

#[tokio::test]
async fn held_orders_per_mode_and_publication_time_on_release() {
    let (sim, token, _) = ready().await;
    let plain = sim.plain_order(SELLER).await;
    let release = sim.order(SELLER, fraud_item(4101)).await["order_id"].as_str().unwrap().to_owned();
    let fraud = sim.order(SELLER, fraud_item(2947)).await["order_id"].as_str().unwrap().to_owned();
    let list = |flag: bool| {
        let cond = wide_window() + if flag { "<FraudHoldDisplayType>1</FraudHoldDisplayType>" } else { "" };
        order_list_xml(SELLER, &cond, 100, 1)
    };
    let ids = |a: crate::sim::Answer| -> Vec<String> {
        let root = a.xml();
        root.path(&["Search"])
            .unwrap()
            .children_named("OrderInfo")
            .map(|o| o.text_of("OrderId").unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(sim.call("orderList", &token, &list(false), &Sig::None).await), vec![plain.clone()]);
    assert_eq!(
        ids(sim.call("orderList", &token, &list(true), &Sig::None).await),
        vec![plain.clone(), release.clone(), fraud.clone()]
    );
    sim.control("/_sim/settings", json!({ "hold_mode": "strict" })).await;
    assert_eq!(ids(sim.call("orderList", &token, &list(true), &Sig::None).await), vec![plain.clone()]);
    // orderInfo returns held orders in both modes.
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &fraud, FIELDS), &Sig::None).await;
    assert_eq!(a.xml().path(&["Result", "OrderInfo", "FraudHoldStatus"]).unwrap().text, "1");

    // The daily review: 4101 → 2 with PublicationTime = review time, 2947 → 3.
    sim.advance(600).await;
    let review = sim.control("/_sim/review", json!({})).await;
    assert_eq!((review["released"].as_u64(), review["confirmed"].as_u64()), (Some(1), Some(1)));
    let review_time = sim.now().await;
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &release, FIELDS), &Sig::None).await;
    let root = a.xml();
    let o = root.path(&["Result", "OrderInfo"]).unwrap();
    assert_eq!(o.text_of("FraudHoldStatus"), Some("2"));
    let published = orderdesk::domain::jst::parse_response(o.text_of("PublicationTime").unwrap()).unwrap().timestamp();
    assert!((published - review_time).abs() <= 2);
    // In strict mode it now appears, found by a PublicationTime window that starts after its order time.
    let after =
        orderdesk::domain::jst::format_condition(chrono::DateTime::from_timestamp(review_time - 60, 0).unwrap());
    let cond =
        format!("<PublicationTimeFrom>{after}</PublicationTimeFrom><FraudHoldDisplayType>1</FraudHoldDisplayType>");
    assert_eq!(
        ids(sim.call("orderList", &token, &order_list_xml(SELLER, &cond, 10, 1), &Sig::None).await),
        vec![release]
    );
}

#[tokio::test]
async fn paging_edges() {
    let (sim, token, _) = ready().await;
    let page = |result: u32, start: u32| order_list_xml(SELLER, &wide_window(), result, start);
    let count = |a: &crate::sim::Answer| -> (String, usize) {
        let root = a.xml();
        let search = root.child("Search").unwrap();
        (search.text_of("TotalCount").unwrap().to_owned(), search.children_named("OrderInfo").count())
    };
    let zero = sim.call("orderList", &token, &page(10, 1), &Sig::None).await;
    assert_eq!(count(&zero), ("0".into(), 0));
    sim.plain_order(SELLER).await;
    let one = sim.call("orderList", &token, &page(10, 1), &Sig::None).await;
    assert_eq!(count(&one), ("1".into(), 1));
    assert_eq!(one.xml().path(&["Search", "OrderInfo", "Index"]).unwrap().text, "1");
    sim.control(
        &format!("/_sim/sellers/{SELLER}/orders/generate"),
        json!({ "count": 19, "seed": 3, "fraud_share": 0.0, "spread_hours": 1 }),
    )
    .await;
    let first = sim.call("orderList", &token, &page(10, 1), &Sig::None).await;
    let second = sim.call("orderList", &token, &page(10, 11), &Sig::None).await;
    let past = sim.call("orderList", &token, &page(10, 21), &Sig::None).await;
    assert_eq!(count(&first), ("20".into(), 10));
    assert_eq!(count(&second), ("20".into(), 10));
    assert_eq!(count(&past), ("20".into(), 0));
    assert_eq!(second.xml().path(&["Search", "OrderInfo", "Index"]).unwrap().text, "11");
    // Sorted by order time; the two pages do not overlap.
    let ids = |a: &crate::sim::Answer| -> Vec<String> {
        a.xml()
            .child("Search")
            .unwrap()
            .children_named("OrderInfo")
            .map(|o| o.text_of("OrderId").unwrap().to_owned())
            .collect()
    };
    let mut all = ids(&first);
    all.extend(ids(&second));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 20);
    // Bad requests: no Field, no range, form body.
    let bad =
        format!("<Req><Search><Condition>{}</Condition></Search><SellerId>{SELLER}</SellerId></Req>", wide_window());
    assert_eq!(sim.call("orderList", &token, &bad, &Sig::None).await.status, StatusCode::BAD_REQUEST);
    let bad = format!("<Req><Search><Field>OrderId</Field></Search><SellerId>{SELLER}</SellerId></Req>");
    assert_eq!(sim.call("orderList", &token, &bad, &Sig::None).await.status, StatusCode::BAD_REQUEST);
    let missing = "<Req><Search><Field>OrderId</Field></Search></Req>";
    let a = sim.call("orderList", &token, missing, &Sig::None).await;
    assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("px-04001")));
    assert!(a.body.contains("seller_id is not specified"));
    let form = sim.call_form("orderList", &token, &[("seller_id", SELLER)], &Sig::None).await;
    assert_eq!(form.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rate_limit_quota_ip_and_approval() {
    let (sim, token, _) = ready().await;
    let info = order_info_xml(SELLER, &sim.plain_order(SELLER).await, "OrderId");
    sim.control("/_sim/settings", json!({ "rate_per_sec": 1.0 })).await;
    // A burst of two passes (jitter tolerance), the third call at once is refused, as Yahoo does.
    for _ in 0..2 {
        assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK);
    }
    let throttled = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!(throttled.status, StatusCode::FORBIDDEN);
    let root = throttled.xml();
    assert_eq!(
        (root.name.as_str(), root.value_of("Message"), root.value_of("Code")),
        ("Error", Some("Your Request was Forbidden"), None)
    );
    assert_eq!(root.children.len(), 1, "{}", throttled.body);
    // Per URL: another API is not affected.
    let list = order_list_xml(SELLER, &wide_window(), 10, 1);
    assert_eq!(sim.call("orderList", &token, &list, &Sig::None).await.status, StatusCode::OK);
    // The simulator's clock moves the window on.
    sim.advance(1).await;
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK);
    let counters = sim.get_json("/_sim/counters").await;
    assert_eq!(counters["throttled.orderInfo"], 1);

    sim.control("/_sim/settings", json!({ "rate_per_sec": 0.0, "daily_quota": 3 })).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(sim.call("orderInfo", &token, &info, &Sig::None).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses.last(), Some(&403), "the quota counts every call of the day: {statuses:?}");
    sim.control("/_sim/settings", json!({ "daily_quota": 0 })).await;

    sim.control("/_sim/apps", json!({ "client_id": CLIENT_ID, "client_secret": "test-secret", "redirect_uris": [CALLBACK], "allowed_ips": ["192.0.2.10"] })).await;
    let a = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("px-04306")));
    sim.control("/_sim/apps", json!({ "client_id": CLIENT_ID, "client_secret": "test-secret", "redirect_uris": [CALLBACK], "allowed_ips": ["127.0.0.1"], "approved_for_orders": false })).await;
    let a = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("px-04303")));
}

#[tokio::test]
async fn each_fault_kind() {
    let (sim, token, _) = ready().await;
    let info = order_info_xml(SELLER, &sim.plain_order(SELLER).await, "OrderId");
    for (kind, status) in [("error500", 500), ("error503", 503), ("throttle", 403)] {
        sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": kind, "times": 1 })).await;
        assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status.as_u16(), status, "{kind}");
        assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK, "{kind} fired once");
    }
    sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "malformed_xml", "times": 1 })).await;
    let a = sim.call("orderInfo", &token, &info, &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(orderdesk::xml::Element::parse(a.body.as_bytes()).is_err());

    sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "drop", "times": 1 })).await;
    let r =
        sim.http.post(sim.url("/ShoppingWebService/V1/orderInfo")).bearer_auth(&token).body(info.clone()).send().await;
    let broken = match r {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(broken, "the connection breaks mid-answer");

    sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "delay", "delay_ms": 300, "times": 1 })).await;
    let started = std::time::Instant::now();
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));

    // A share: half of the calls to the token endpoint fail.
    sim.control("/_sim/faults", json!({ "api": "token", "kind": "error503", "share": 0.5 })).await;
    let mut failures = 0;
    for _ in 0..4 {
        let (status, _) = sim.token_request(&[("grant_type", "refresh_token"), ("refresh_token", "x")], true).await;
        failures += usize::from(status == StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(failures, 2);
    let r = sim.http.delete(sim.url("/_sim/faults")).send().await.unwrap();
    assert!(r.status().is_success());
    let counters = sim.get_json("/_sim/counters").await;
    assert_eq!(counters["faults.orderInfo.error503"], 1);
}

#[tokio::test]
async fn realistic_xml_gzip_and_stock() {
    let (sim, token, _) = ready().await;
    let order = sim
        .order(SELLER, json!({ "items": [{ "item_id": "mug", "title": "マグ <青> & 白" }], "buyer_comments": "午前中希望 ]]> 念のため" }))
        .await;
    let id = order["order_id"].as_str().unwrap();
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, id, FIELDS), &Sig::None).await;
    assert!(a.body.contains("<![CDATA["), "free text in CDATA: {}", a.body);
    let root = a.xml();
    let o = root.path(&["Result", "OrderInfo"]).unwrap();
    assert_eq!(root.attr("totalResultsAvailable"), Some("1"));
    assert_eq!(o.text_of("BuyerComments"), Some("午前中希望 ]]> 念のため"));
    assert_eq!(o.children_named("Item").count(), 1, "a list of one");
    assert_eq!(o.path(&["Item", "Title"]).unwrap().text, "マグ <青> & 白");
    assert!(o.path(&["Pay", "BillLastName"]).is_some() && o.path(&["Ship", "ShipCity"]).is_some());
    assert!(o.path(&["Detail", "TotalPrice"]).is_some());
    assert_eq!(o.path(&["Seller", "SellerId"]).unwrap().text, SELLER);
    // Unknown order.
    let missing = sim.call("orderInfo", &token, &order_info_xml(SELLER, "nope", "OrderId"), &Sig::None).await;
    assert_eq!(missing.error_code().as_deref(), Some("od10001"));

    // gzip when asked.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let r = raw
        .post(sim.url("/ShoppingWebService/V1/orderInfo"))
        .bearer_auth(&token)
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(order_info_xml(SELLER, id, FIELDS))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get(header::CONTENT_ENCODING).map(|v| v.to_str().unwrap()), Some("gzip"));

    // Stock: set, add, subtract, INI refused, unknown codes, malformed codes.
    let set = sim
        .call_form(
            "setStock",
            &token,
            &[("seller_id", SELLER), ("item_code", "mug,mug:blue,cup"), ("quantity", "10,+5,INI")],
            &Sig::None,
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let set_root = set.xml();
    assert_eq!((set_root.attr("ok"), set_root.attr("ng")), (Some("2"), Some("1")), "setStock counts as a real answer");
    let results: Vec<_> = set_root.children_named("Result").cloned().collect();
    assert_eq!(results[0].text_of("Quantity"), Some("10"));
    assert_eq!(results[1].text_of("Quantity"), Some("5"));
    assert_eq!(results[2].text_of("ErrorCode"), Some("st-02104"));
    sim.call_form("setStock", &token, &[("seller_id", SELLER), ("item_code", "mug"), ("quantity", "-3")], &Sig::None)
        .await;
    let get = sim
        .call_form("getStock", &token, &[("seller_id", SELLER), ("item_code", "mug,mug:blue,unknown")], &Sig::None)
        .await;
    let root = get.xml();
    assert_eq!((root.attr("ok"), root.attr("ng")), (Some("2"), Some("1")));
    let results: Vec<_> = root.children_named("Result").collect();
    assert_eq!((results[0].text_of("Quantity"), results[0].text_of("Status")), (Some("7"), Some("1")));
    assert_eq!((results[1].text_of("ItemCode"), results[1].text_of("SubCode")), (Some("mug"), Some("blue")));
    assert_eq!(results[2].text_of("Status"), Some("0"));
    let bad = sim.call_form("getStock", &token, &[("seller_id", SELLER), ("item_code", "bad code!")], &Sig::None).await;
    assert_eq!(bad.error_code().as_deref(), Some("st-02101"));
}

#[tokio::test]
async fn keys_limit_and_the_html_view() {
    let sim = Sim::start().await;
    assert_eq!(sim.key(SELLER, 1).await, 1);
    assert_eq!(sim.key(SELLER, 2).await, 2);
    let (status, e) = sim
        .control_status(
            &format!("/_sim/sellers/{SELLER}/keys"),
            json!({ "private_pem": crate::sim::fixture("private-1.pem") }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    sim.control(&format!("/_sim/sellers/{SELLER}/keys/1"), json!({ "enabled": false })).await;
    sim.control(
        &format!("/_sim/sellers/{SELLER}/keys"),
        json!({ "private_pem": crate::sim::fixture("private-1.pem") }),
    )
    .await;
    let (status, _) = sim.control_status(&format!("/_sim/sellers/{SELLER}/keys/1"), json!({ "enabled": true })).await;
    assert_eq!(status, StatusCode::CONFLICT, "a third 有効 key is refused");

    sim.control(&format!("/_sim/sellers/{SELLER}/orders/generate"), json!({ "count": 5, "seed": 1 })).await;
    let html = sim.http.get(sim.url("/")).send().await.unwrap().text().await.unwrap();
    let doc = scraper::Html::parse_document(&html);
    let copy = scraper::Selector::parse("button.copy").unwrap();
    let buttons: Vec<_> = doc.select(&copy).collect();
    assert_eq!(buttons.len(), 3);
    assert!(buttons[0].value().attr("disabled").is_some(), "無効 key: コピー is disabled");
    assert!(buttons[1].value().attr("disabled").is_none());
    assert!(html.contains("不正審査を実行する") && html.contains("シミュレーターの現在時刻"));
    // The review button works from the page.
    let r = sim.http.post(sim.url("/_sim/view/review")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn xml_apis_read_raw_xml_whatever_the_content_type() {
    let (sim, token, _) = ready().await;
    let order = sim.plain_order(SELLER).await;
    let xml = order_info_xml(SELLER, &order, "OrderId");
    // A public client sends raw XML labelled as a form on every call, and Yahoo answers it.
    for label in
        [Some("application/x-www-form-urlencoded"), Some("text/xml;charset=UTF-8"), Some("application/json"), None]
    {
        let a = sim.call_labelled("orderInfo", &token, &xml, label, &Sig::None).await;
        assert_eq!(a.status, StatusCode::OK, "{label:?}: {}", a.body);
        assert_eq!(a.xml().path(&["Result", "OrderInfo", "OrderId"]).unwrap().text, order);
    }
    // Only a body that is not XML is refused.
    for body in [format!("seller_id={SELLER}&order_id={order}"), String::new(), "<Req>".into()] {
        let a =
            sim.call_labelled("orderInfo", &token, &body, Some("application/x-www-form-urlencoded"), &Sig::None).await;
        assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("od00001")), "{body:?}");
    }
}

fn item() -> serde_json::Value {
    json!([{ "item_id": "mug", "title": "マグカップ" }])
}

fn counts(a: &crate::sim::Answer) -> Vec<(String, String)> {
    let root = a.xml();
    assert_eq!(root.path(&["Result", "Status"]).map(|s| s.text.as_str()), Some("OK"), "{}", a.body);
    root.path(&["Result", "Count"]).unwrap().children.iter().map(|c| (c.name.clone(), c.text.clone())).collect()
}

fn count_of(a: &crate::sim::Answer, name: &str) -> u64 {
    counts(a).into_iter().find(|(n, _)| n == name).map(|(_, v)| v.parse().unwrap()).unwrap()
}

#[tokio::test]
async fn order_count_counts_new_orders_reservations_and_holds() {
    let (sim, token, _) = ready().await;
    let mut ids = Vec::new();
    for status in [2, 2, 1, 3, 4, 5] {
        let o = sim.order(SELLER, json!({ "items": item(), "order_status": status })).await;
        ids.push(o["order_id"].as_str().unwrap().to_owned());
    }
    // An order under fraud review is not counted (orderList does not show it either).
    sim.order(SELLER, fraud_item(4101)).await;
    let now = sim.now().await;
    let a = sim.call_get("orderCount", &token, &[("sellerId", SELLER)], &Sig::good(SELLER, now)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.authorize_status(), "authorized", "the same gate as the other order APIs");
    assert_eq!(a.xml().attr("totalResultsAvailable"), Some("1"));
    let names: Vec<String> = counts(&a).into_iter().map(|(n, _)| n).collect();
    let expected: Vec<&str> = orderdesk::simulator::store_api::ORDER_COUNTERS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected);
    assert_eq!((count_of(&a, "NewOrder"), count_of(&a, "NewReserve"), count_of(&a, "Holding")), (2, 1, 1));

    // Seen orders are no longer new: 2 → 3 moves one from 新規注文 to 保留.
    let hold = format!(
        "<Req><Target><OrderId>{}</OrderId><IsPointFix>false</IsPointFix></Target><Order><OrderStatus>3</OrderStatus></Order><SellerId>{SELLER}</SellerId></Req>",
        ids[0]
    );
    assert_eq!(sim.call("orderStatusChange", &token, &hold, &Sig::None).await.status, StatusCode::OK);
    let a = sim.call_get("orderCount", &token, &[("sellerId", SELLER)], &Sig::None).await;
    assert_eq!((count_of(&a, "NewOrder"), count_of(&a, "NewReserve"), count_of(&a, "Holding")), (1, 1, 2));

    // The gate: token, the camelCase sellerId, the seller of the token, GET only.
    let r =
        sim.http.get(sim.url("/ShoppingWebService/V1/orderCount")).query(&[("sellerId", SELLER)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for query in [vec![], vec![("seller_id", SELLER)]] {
        let a = sim.call_get("orderCount", &token, &query, &Sig::None).await;
        assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("px-04001")), "{query:?}");
    }
    let a = sim.call_get("orderCount", &token, &[("sellerId", "someone-else")], &Sig::None).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = sim.call_labelled("orderCount", &token, "", None, &Sig::None).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    // Faults and the rate limit apply to it like to any store API.
    sim.control("/_sim/faults", json!({ "api": "orderCount", "kind": "error503", "times": 1 })).await;
    assert_eq!(sim.call_get("orderCount", &token, &[("sellerId", SELLER)], &Sig::None).await.status.as_u16(), 503);
    sim.control("/_sim/settings", json!({ "rate_per_sec": 1.0 })).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(sim.call_get("orderCount", &token, &[("sellerId", SELLER)], &Sig::None).await.status.as_u16());
        }
        v
    };
    assert_eq!(statuses, vec![200, 200, 403]);
    let counters = sim.get_json("/_sim/counters").await;
    assert_eq!(counters["throttled.orderCount"], 1);
    assert!(counters["calls.orderCount"].as_u64().unwrap() >= 8);
}

#[tokio::test]
async fn order_info_returns_only_the_fields_asked_for() {
    let (sim, token, _) = ready().await;
    let card = sim.order(SELLER, json!({ "items": item(), "pay_method": "payment_a1" })).await;
    let bank = sim.order(SELLER, json!({ "items": item(), "pay_method": "payment_b1" })).await;
    let info = |id: &serde_json::Value, fields: &str| {
        let xml = order_info_xml(SELLER, id.as_str().unwrap(), fields);
        let sim = &sim;
        let token = token.clone();
        async move { sim.call("orderInfo", &token, &xml, &Sig::None).await }
    };
    let a = info(&card["order_id"], "OrderId,OrderStatus").await;
    let root = a.xml();
    let names: Vec<&str> =
        root.path(&["Result", "OrderInfo"]).unwrap().children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["OrderId", "OrderStatus"], "no Seller, no Buyer unless asked: {}", a.body);

    // A name Yahoo does not have is named in the error, never silently left out.
    let a = info(&card["order_id"], "OrderId,NoSuchField,Title").await;
    assert_eq!((a.status, a.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("od00001")));
    assert!(a.xml().value_of("Message").unwrap().contains("NoSuchField"), "{}", a.body);

    // Fields production clients ask for, each in its group.
    let asked = "OrderId,SocialGiftType,DeviceType,StoreStatus,IsSplit,PayType,PayMethod,CardPayType,ShipStatus,NeedGiftWrap,TotalPrice,SettlePayAmount,LineId,IsUsed,Jan,SellerId,IsLogin,GuestAuthId";
    for (order, pay_type) in [(&card, "0"), (&bank, "1")] {
        let a = info(&order["order_id"], asked).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let root = a.xml();
        let o = root.path(&["Result", "OrderInfo"]).unwrap();
        assert_eq!(o.text_of("SocialGiftType"), Some("0"));
        assert!(matches!(o.text_of("DeviceType"), Some("1" | "3")));
        assert_eq!((o.text_of("StoreStatus"), o.text_of("IsSplit")), (Some(""), Some("false")));
        assert_eq!(o.path(&["Pay", "PayType"]).unwrap().text, pay_type);
        assert_eq!(o.path(&["Pay", "CardPayType"]).unwrap().text, "");
        assert_eq!(o.path(&["Ship", "NeedGiftWrap"]).unwrap().text, "false");
        assert_eq!(
            o.path(&["Detail", "SettlePayAmount"]).unwrap().text,
            o.path(&["Detail", "TotalPrice"]).unwrap().text
        );
        assert_eq!(o.path(&["Item", "IsUsed"]).unwrap().text, "false");
        assert_eq!(o.path(&["Seller", "SellerId"]).unwrap().text, SELLER);
        assert_eq!(o.path(&["Buyer", "IsLogin"]).unwrap().text, "true");
        assert_eq!(o.path(&["Buyer", "GuestAuthId"]).unwrap().text, "");
    }
    // Every name of the table at once (a production client's default Field).
    let all: Vec<&str> =
        orderdesk::simulator::orders::FIELDS.iter().flat_map(|(_, names)| names.iter().copied()).collect();
    assert!(all.len() > 250);
    assert_eq!(info(&card["order_id"], &all.join(",")).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_illegal_transition_from_cancelled_reads_as_the_sandbox_says() {
    let (sim, token, _) = ready().await;
    let id =
        sim.order(SELLER, json!({ "items": item(), "order_status": 1 })).await["order_id"].as_str().unwrap().to_owned();
    let change = |to: u8| {
        format!(
            "<Req><SellerId>{SELLER}</SellerId><Target><OrderId>{id}</OrderId><IsPointFix>false</IsPointFix></Target><Order><OrderStatus>{to}</OrderStatus><CancelReason>220</CancelReason></Order></Req>"
        )
    };
    let cancel = sim
        .call_labelled("orderStatusChange", &token, &change(4), Some("application/x-www-form-urlencoded"), &Sig::None)
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    let again = sim
        .call_labelled("orderStatusChange", &token, &change(1), Some("application/x-www-form-urlencoded"), &Sig::None)
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let root = again.xml();
    assert_eq!(root.value_of("Message"), Some("Cannot Be Operated : CancelOrder OrderStatus"));
    assert_eq!(root.value_of("Code"), Some("od20013"));
}

#[tokio::test]
async fn stock_codes_as_yahoo_numbers_them() {
    let (sim, token, _) = ready().await;
    let set = |codes: &str, quantities: &str| {
        let form = [("seller_id", SELLER), ("item_code", codes), ("quantity", quantities)];
        let sim = &sim;
        let token = token.clone();
        let form: Vec<(String, String)> = form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            sim.call_form("setStock", &token, &form, &Sig::None).await
        }
    };
    // A quantity that is not a number is st-02104, per item; the others are set.
    let a = set("a,b,c,d,e,f", "5,INI,abc,1.5,,+x").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let root = a.xml();
    assert_eq!((root.attr("ok"), root.attr("ng")), (Some("1"), Some("5")));
    let errors: Vec<Option<&str>> = root.children_named("Result").map(|r| r.value_of("ErrorCode")).collect();
    assert_eq!(
        errors,
        vec![None, Some("st-02104"), Some("st-02104"), Some("st-02104"), Some("st-02104"), Some("st-02104")]
    );
    // Request-level codes.
    for (codes, quantities, code) in
        [("bad code!", "1", "st-02101"), ("a,a", "1,2", "st-02103"), ("a,b", "1", "st-02105")]
    {
        let a = set(codes, quantities).await;
        assert_eq!(
            (a.status, a.error_code().as_deref()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{codes} {quantities}"
        );
    }
    let many: Vec<String> = (0..1001).map(|i| format!("i{i}")).collect();
    let ones = vec!["1"; 1001].join(",");
    assert_eq!(set(&many.join(","), &ones).await.error_code().as_deref(), Some("st-02102"));
}

#[tokio::test]
async fn fault_modes_for_the_answers_yahoo_really_gives() {
    let (sim, token, _) = ready().await;
    let id =
        sim.order(SELLER, json!({ "items": item(), "is_seen": true })).await["order_id"].as_str().unwrap().to_owned();
    let ship = format!(
        "<Req><Target><OrderId>{id}</OrderId></Target><Order><Ship><ShipStatus>3</ShipStatus><ShipInvoiceNumber1>1234</ShipInvoiceNumber1></Ship></Order><SellerId>{SELLER}</SellerId></Req>"
    );
    let before = snapshot_ship(&sim, &id).await;

    // status_ng: a 200 that refuses; nothing changes.
    sim.control("/_sim/faults", json!({ "api": "orderShipStatusChange", "kind": "status_ng", "times": 1 })).await;
    let a = sim.call("orderShipStatusChange", &token, &ship, &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK);
    let root = a.xml();
    assert_eq!(root.path(&["Result", "Status"]).unwrap().text, "NG");
    let error = root.path(&["Result", "Error"]).unwrap();
    assert!(
        error.value_of("Code").is_some() && error.value_of("Message").is_some() && error.value_of("Detail").is_some()
    );
    assert_eq!(snapshot_ship(&sim, &id).await, before);

    // warning: the change is made and the answer carries two warnings with code and message.
    sim.control("/_sim/faults", json!({ "api": "orderShipStatusChange", "kind": "warning", "times": 1 })).await;
    let a = sim.call("orderShipStatusChange", &token, &ship, &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK);
    let root = a.xml();
    let result = root.child("Result").unwrap();
    assert_eq!(result.children[0].name, "Status", "warnings follow Status");
    let warnings: Vec<_> = result.children_named("Warning").collect();
    assert_eq!(warnings.len(), 2);
    assert!(warnings.iter().all(|w| w.value_of("Code").is_some() && w.value_of("Message").is_some()));
    assert_eq!(snapshot_ship(&sim, &id).await, 3);

    // insufficient_scope: 401 with the header; error_detail: the recorded error shapes.
    sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "insufficient_scope", "times": 1 })).await;
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &id, "OrderId"), &Sig::None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.headers[header::WWW_AUTHENTICATE].to_str().unwrap().contains(r#"error="insufficient_scope""#));
    sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "error_detail", "times": 1 })).await;
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &id, "OrderId"), &Sig::None).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body.starts_with(r#"<?xml version="1.0" encoding="utf-8" ?>"#), "{}", a.body);
    assert!(a.body.contains(r#"<Error xmlns="urn:yahoo:api">"#) && a.body.contains("<![CDATA[\n"));
    let root = a.xml();
    assert_eq!((root.value_of("Message"), root.value_of("Code")), (Some("Invalid Request."), Some("sim-e01")));
    assert!(root.value_of("Detail").is_some());

    // The token endpoint does not take the XML kinds.
    let (status, e) = sim.control_status("/_sim/faults", json!({ "api": "token", "kind": "status_ng" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    let counters = sim.get_json("/_sim/counters").await;
    for key in [
        "faults.orderShipStatusChange.status_ng",
        "faults.orderShipStatusChange.warning",
        "faults.orderInfo.insufficient_scope",
        "faults.orderInfo.error_detail",
    ] {
        assert_eq!(counters[key], 1, "{key}");
    }
}

async fn snapshot_ship(sim: &Sim, order_id: &str) -> u64 {
    let snap = sim.get_json(&format!("/_sim/sellers/{SELLER}/orders")).await;
    let order = snap.as_array().unwrap().iter().find(|o| o["order_id"] == order_id).unwrap();
    order["ship_status"].as_u64().unwrap()
}

/// 「12時間進める」 then 「実時間に戻す」 (issue 16): the per-second windows start afresh, so calls
/// made now are not refused for calls made in the future that is gone. (The page's button and
/// `/_sim/clock` share `SimState::set_clock_offset`.)
#[tokio::test]
async fn going_back_to_real_time_resets_the_rate_windows() {
    let (sim, token, _) = ready().await;
    let info = order_info_xml(SELLER, &sim.plain_order(SELLER).await, "OrderId");
    sim.control("/_sim/settings", json!({ "rate_per_sec": 1.0 })).await;
    sim.advance(60).await;
    for _ in 0..2 {
        assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK);
    }
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::FORBIDDEN);
    sim.control("/_sim/clock", json!({ "offset_secs": 0 })).await;
    assert_eq!(sim.call("orderInfo", &token, &info, &Sig::None).await.status, StatusCode::OK, "a fresh window");
}

/// Every field of orderInfo the shipping day reads, asked for at once.
const SHIPPING_FIELDS: &str = "OrderId,OrderStatus,IsSeen,FraudHoldStatus,SocialGiftType,UseCouponData,TotalCouponDiscount,\
PayStatus,PayMethod,PayMethodName,BillLastName,BillFirstName,BillLastNameKana,BillFirstNameKana,BillZipCode,BillPrefecture,\
BillCity,BillAddress1,BillAddress2,BillPhoneNumber,BillMailAddress,ShipStatus,ShipMethod,ShipMethodName,ShipRequestDate,\
ShipRequestTime,ShipCompanyCode,ShipInvoiceNumber1,ShipInvoiceNumber2,ShipInvoiceNumberEmptyReason,ShipUrl,ShipDate,\
NeedGiftWrap,GiftWrapType,GiftWrapMessage,NeedGiftWrapPaper,GiftWrapPaperType,GiftWrapName,ShipLastName,ShipFirstName,\
ShipLastNameKana,ShipFirstNameKana,ShipZipCode,ShipPrefecture,ShipCity,ShipAddress1,ShipAddress2,ShipPhoneNumber,\
PayCharge,ShipCharge,GiftWrapCharge,Discount,UsePoint,GiftCardDiscount,TotalPrice,SettleAmount,\
LineId,ItemId,Title,SubCode,ItemOption,UnitPrice,Quantity,ItemTaxRatio";

/// The order API's example in docs/simulator.md: every field it takes.
fn every_field() -> serde_json::Value {
    json!({
        "items": [
            {
                "item_id": "tshirt-basic", "title": "オーガニックコットン Tシャツ", "category_id": 37052,
                "unit_price": 2980, "quantity": 2, "sub_code": "tshirt-basic-navy-m",
                "options": [{ "name": "カラー", "value": "ネイビー" }, { "name": "サイズ", "value": "M" }],
                "tax_ratio": 10
            },
            { "item_id": "tea-sencha", "title": "静岡 深蒸し煎茶 100g", "unit_price": 1080, "tax_ratio": 8 }
        ],
        "order_time": "2026-12-01T01:00:00Z",
        "publication_time": "2026-12-01T01:05:00Z",
        "order_status": 2,
        "is_seen": true,
        "fraud_hold_status": 2,
        "pay_method": "payment_d1",
        "pay_status": 0,
        "pay_charge": 330,
        "buyer_comments": "不在時は宅配ボックスへ",
        "bill": {
            "last_name": "𠮷田", "first_name": "花子", "last_name_kana": "ヨシダ", "first_name_kana": "ハナコ",
            "zip_code": "900-0006", "prefecture": "沖縄県", "city": "那覇市", "address1": "おもろまち1-1-1",
            "address2": "𠮷ハイツ301", "phone": "098-000-1234", "mail": "hanako@example.jp"
        },
        "ship": {
            "last_name": "山田", "first_name": "太郎", "last_name_kana": "ヤマダ", "first_name_kana": "タロウ",
            "zip_code": "060-0001", "prefecture": "北海道", "city": "札幌市中央区", "address1": "北一条西2-1",
            "address2": "", "phone": "011-000-5678"
        },
        "ship_status": 1,
        "ship_method": "postage3",
        "ship_method_name": "クール便",
        "ship_charge": 1100,
        "ship_request_date": "2026-12-05",
        "ship_request_time": "14:00-16:00",
        "discount": 100,
        "use_point": 200,
        "use_coupon_data": "ストアクーポン 300円OFF",
        "total_coupon_discount": 300,
        "gift_card_discount": 500,
        "gift_wrap_charge": 330,
        "need_gift_wrap": true,
        "gift_wrap_type": "ラッピング（リボン）",
        "gift_wrap_message": "お誕生日おめでとう <祝> & ]]>",
        "need_gift_wrap_paper": true,
        "gift_wrap_paper_type": "のし（御祝）",
        "gift_wrap_name": "𠮷田",
        "social_gift_type": 1
    })
}

#[tokio::test]
async fn an_order_with_every_field_comes_back_from_order_info_in_its_place() {
    let (sim, token, _) = ready().await;
    let order = sim.order(SELLER, every_field()).await;
    let id = order["order_id"].as_str().unwrap();
    let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, id, SHIPPING_FIELDS), &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    for text in
        ["𠮷田", "𠮷ハイツ301", "お誕生日おめでとう <祝> & ]]", "ストアクーポン 300円OFF", "クール便", "のし（御祝）"]
    {
        assert!(a.body.contains(&format!("<![CDATA[{text}")), "{text} in CDATA: {}", a.body);
    }
    let root = a.xml();
    let o = root.path(&["Result", "OrderInfo"]).unwrap();
    let at = |group: &[&str], name: &str| -> String {
        let mut path = group.to_vec();
        path.push(name);
        o.path(&path).unwrap_or_else(|| panic!("{path:?} missing: {}", a.body)).text.clone()
    };
    let order_level = [
        ("OrderStatus", "2"),
        ("IsSeen", "true"),
        ("FraudHoldStatus", "2"),
        ("SocialGiftType", "1"),
        ("UseCouponData", "ストアクーポン 300円OFF"),
        ("TotalCouponDiscount", "300"),
    ];
    for (name, value) in order_level {
        assert_eq!(at(&[], name), value, "{name}");
    }
    let pay = [
        ("PayStatus", "0"),
        ("PayMethod", "payment_d1"),
        ("PayMethodName", "商品代引"),
        ("BillLastName", "𠮷田"),
        ("BillFirstName", "花子"),
        ("BillLastNameKana", "ヨシダ"),
        ("BillFirstNameKana", "ハナコ"),
        ("BillZipCode", "900-0006"),
        ("BillPrefecture", "沖縄県"),
        ("BillCity", "那覇市"),
        ("BillAddress1", "おもろまち1-1-1"),
        ("BillAddress2", "𠮷ハイツ301"),
        ("BillPhoneNumber", "098-000-1234"),
        ("BillMailAddress", "hanako@example.jp"),
    ];
    for (name, value) in pay {
        assert_eq!(at(&["Pay"], name), value, "Pay/{name}");
    }
    let ship = [
        ("ShipStatus", "1"),
        ("ShipMethod", "postage3"),
        ("ShipMethodName", "クール便"),
        ("ShipRequestDate", "2026-12-05"),
        ("ShipRequestTime", "14:00-16:00"),
        ("NeedGiftWrap", "true"),
        ("GiftWrapType", "ラッピング（リボン）"),
        ("GiftWrapMessage", "お誕生日おめでとう <祝> & ]]>"),
        ("NeedGiftWrapPaper", "true"),
        ("GiftWrapPaperType", "のし（御祝）"),
        ("GiftWrapName", "𠮷田"),
        ("ShipLastName", "山田"),
        ("ShipFirstName", "太郎"),
        ("ShipLastNameKana", "ヤマダ"),
        ("ShipFirstNameKana", "タロウ"),
        ("ShipZipCode", "060-0001"),
        ("ShipPrefecture", "北海道"),
        ("ShipCity", "札幌市中央区"),
        ("ShipAddress1", "北一条西2-1"),
        ("ShipAddress2", ""),
        ("ShipPhoneNumber", "011-000-5678"),
        ("ShipUrl", ""),
        ("ShipInvoiceNumberEmptyReason", ""),
    ];
    for (name, value) in ship {
        assert_eq!(at(&["Ship"], name), value, "Ship/{name}");
    }
    // Items 2 × 2980 + 1080, charges 330 + 1100 + 330, less 100 + 200 + 300 + 500.
    let detail = [
        ("PayCharge", "330"),
        ("ShipCharge", "1100"),
        ("GiftWrapCharge", "330"),
        ("Discount", "100"),
        ("UsePoint", "200"),
        ("GiftCardDiscount", "500"),
        ("TotalPrice", "7700"),
        ("SettleAmount", "7700"),
    ];
    for (name, value) in detail {
        assert_eq!(at(&["Detail"], name), value, "Detail/{name}");
    }
    let items: Vec<_> = o.children_named("Item").collect();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (items[0].text_of("SubCode"), items[0].text_of("ItemTaxRatio"), items[0].text_of("Quantity")),
        (Some("tshirt-basic-navy-m"), Some("10"), Some("2"))
    );
    let options: Vec<(String, String, String)> = items[0]
        .children_named("ItemOption")
        .map(|op| {
            let v = |n: &str| op.text_of(n).unwrap().to_owned();
            (v("Index"), v("Name"), v("Value"))
        })
        .collect();
    assert_eq!(options, [("1".into(), "カラー".into(), "ネイビー".into()), ("2".into(), "サイズ".into(), "M".into())]);
    assert_eq!((items[1].text_of("ItemTaxRatio"), items[1].text_of("SubCode")), (Some("8"), Some("")));
    // The control API answers with the order it made, and orderList shows it (reviewed, 2).
    assert_eq!(order["publication_time"], "2026-12-01T01:05:00Z");
    let since = "<OrderTimeFrom>20261201000000</OrderTimeFrom><OrderTimeTo>20261201235959</OrderTimeTo>";
    let list = sim.call("orderList", &token, &order_list_xml(SELLER, since, 10, 1), &Sig::None).await;
    assert_eq!(list.xml().path(&["Search", "OrderInfo", "OrderId"]).unwrap().text, id);

    // Values Yahoo never holds are refused, and an unknown field is not silently dropped.
    let refused = [
        ("tax_ratio", json!({ "items": [{ "item_id": "a", "title": "品", "tax_ratio": 5 }] })),
        ("fraud_hold_status", json!({ "items": item(), "fraud_hold_status": 4 })),
        ("pay_status", json!({ "items": item(), "pay_status": 2 })),
        ("TotalPrice", json!({ "items": item(), "use_point": 1_000_000 })),
        ("must not be negative", json!({ "items": item(), "discount": -1 })),
        ("pay_method_name", json!({ "items": item(), "pay_method": "payment_z9" })),
    ];
    for (what, body) in refused {
        let (status, e) = sim.control_status(&format!("/_sim/sellers/{SELLER}/orders"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {e}");
        assert!(e["error"].as_str().unwrap().contains(what), "{what}: {e}");
    }
    let (status, _) = sim
        .control_status(&format!("/_sim/sellers/{SELLER}/orders"), json!({ "items": item(), "use_points": 5 }))
        .await;
    assert!(status.is_client_error(), "a misspelt field is refused: {status}");
    // Only part of a person: the rest is generated; the recipient follows the buyer when they
    // are the same person.
    let partial =
        sim.order(SELLER, json!({ "items": item(), "ship": { "prefecture": "沖縄県", "city": "石垣市" } })).await;
    assert_eq!(
        (partial["ship"]["prefecture"].as_str(), partial["ship"]["city"].as_str()),
        (Some("沖縄県"), Some("石垣市"))
    );
    assert!(!partial["ship"]["last_name"].as_str().unwrap().is_empty());
}

fn ship_xml(id: &str, ship: &str) -> String {
    format!(
        "<Req><Target><OrderId>{id}</OrderId></Target><Order><Ship>{ship}</Ship></Order><SellerId>{SELLER}</SellerId></Req>"
    )
}

fn status_xml(id: &str, to: u8, point_fix: bool) -> String {
    format!(
        "<Req><Target><OrderId>{id}</OrderId><IsPointFix>{point_fix}</IsPointFix><OperationUser>test</OperationUser></Target>\
         <Order><OrderStatus>{to}</OrderStatus><CancelReason>210</CancelReason></Order><SellerId>{SELLER}</SellerId></Req>"
    )
}

#[tokio::test]
async fn ship_status_change_checks_what_yahoo_checks() {
    let (sim, token, _) = ready().await;
    let make = |spec: serde_json::Value| {
        let sim = &sim;
        async move { sim.order(SELLER, spec).await["order_id"].as_str().unwrap().to_owned() }
    };
    let refusal = |a: crate::sim::Answer| -> (StatusCode, String, String) {
        let root = a.xml();
        (
            a.status,
            root.value_of("Code").unwrap_or_default().into(),
            root.value_of("Message").unwrap_or_default().into(),
        )
    };
    let shipped = "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>1234-5678-9012</ShipInvoiceNumber1><ShipDate>20261202</ShipDate>";

    // Held (any status the review has not lifted): refused as every change but a cancel is.
    let held = make(json!({ "items": item(), "is_seen": true, "fraud_hold_status": 1 })).await;
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&held, shipped), &Sig::None).await;
    assert_eq!(refusal(a).1, "od20401");

    // 新規受付, 予約中 and キャンセル: refused with Yahoo's form of message.
    for (spec, operated) in [
        (json!({ "items": item() }), "NewOrder"),
        (json!({ "items": item(), "order_status": 1 }), "ReserveOrder"),
        (json!({ "items": item(), "order_status": 1, "is_seen": true }), "ReserveOrder"),
        (json!({ "items": item(), "order_status": 4, "is_seen": true }), "CancelOrder"),
    ] {
        let id = make(spec).await;
        let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, shipped), &Sig::None).await;
        let expected =
            (StatusCode::BAD_REQUEST, "od20015".to_owned(), format!("Cannot Be Operated : {operated} ShipStatus"));
        assert_eq!(refusal(a), expected);
    }
    // 新規注文 → 処理中 (OrderStatus 2 again) accepts the order; then it ships. A second 2 is an
    // illegal transition.
    let new = make(json!({ "items": item() })).await;
    let accept = sim.call("orderStatusChange", &token, &status_xml(&new, 2, false), &Sig::None).await;
    assert_eq!(accept.status, StatusCode::OK, "{}", accept.body);
    let info = sim.call("orderInfo", &token, &order_info_xml(SELLER, &new, "IsSeen,OrderStatus"), &Sig::None).await;
    assert_eq!(info.xml().path(&["Result", "OrderInfo", "IsSeen"]).unwrap().text, "true");
    let again = sim.call("orderStatusChange", &token, &status_xml(&new, 2, false), &Sig::None).await;
    assert_eq!(refusal(again).1, "od20013");
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&new, shipped), &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);

    // The checks of <Ship>, on an accepted order; a refusal changes nothing.
    let id = make(json!({ "items": item(), "is_seen": true })).await;
    let url_100 =
        format!("https://example.jp/追跡?no={}", "9".repeat(100 - "https://example.jp/追跡?no=".chars().count()));
    assert_eq!(url_100.chars().count(), 100);
    let cases = [
        // ヤマト運輸: half-width digits and "-", at most 14 bytes.
        (
            "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>1234 5678</ShipInvoiceNumber1>",
            "od20017",
        ),
        (
            "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>１２３４５６７８</ShipInvoiceNumber1>",
            "od20017",
        ),
        (
            "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>1234-5678-90123</ShipInvoiceNumber1>",
            "od20017",
        ),
        (
            "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>ABC123</ShipInvoiceNumber1>",
            "od20017",
        ),
        // Numbers and ShipInvoiceNumberEmptyReason are exclusive.
        (
            "<ShipStatus>3</ShipStatus><ShipInvoiceNumber1>1234</ShipInvoiceNumber1><ShipInvoiceNumberEmptyReason>1</ShipInvoiceNumberEmptyReason>",
            "od20016",
        ),
        (
            "<ShipStatus>3</ShipStatus><ShipInvoiceNumber2>1234</ShipInvoiceNumber2><ShipInvoiceNumberEmptyReason>1</ShipInvoiceNumberEmptyReason>",
            "od20016",
        ),
        // ShipUrl: at most 100 characters.
        (&format!("<ShipStatus>3</ShipStatus><ShipUrl>{url_100}9</ShipUrl>"), "od20018"),
        // ShipDate: a real YYYYMMDD.
        ("<ShipStatus>3</ShipStatus><ShipDate>2026-12-02</ShipDate>", "od00001"),
        ("<ShipStatus>3</ShipStatus><ShipDate>20260230</ShipDate>", "od00001"),
        ("<ShipStatus>3</ShipStatus><ShipDate>2026120a</ShipDate>", "od00001"),
        ("<ShipStatus>5</ShipStatus>", "od00001"),
    ];
    for (ship, code) in &cases {
        let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, ship), &Sig::None).await;
        let (status, got, message) = refusal(a);
        assert_eq!((status, got.as_str()), (StatusCode::BAD_REQUEST, *code), "{ship}: {message}");
        assert!(!message.is_empty());
    }
    let fields = "Version,ShipStatus,ShipCompanyCode,ShipInvoiceNumber1,ShipInvoiceNumberEmptyReason,ShipUrl,ShipDate";
    let ship_of = |id: String| {
        let sim = &sim;
        let token = token.clone();
        async move {
            let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &id, fields), &Sig::None).await;
            let root = a.xml();
            let o = root.path(&["Result", "OrderInfo"]).unwrap();
            let v = |path: &[&str]| o.path(path).unwrap().text.clone();
            [
                v(&["Version"]),
                v(&["Ship", "ShipStatus"]),
                v(&["Ship", "ShipCompanyCode"]),
                v(&["Ship", "ShipInvoiceNumber1"]),
                v(&["Ship", "ShipInvoiceNumberEmptyReason"]),
                v(&["Ship", "ShipUrl"]),
                v(&["Ship", "ShipDate"]),
            ]
        }
    };
    assert_eq!(ship_of(id.clone()).await[0], "1", "no refusal changed the order");

    // The valid push: stored, and returned by orderInfo (ShipUrl included).
    let valid = format!(
        "<ShipStatus>3</ShipStatus><ShipCompanyCode>1001</ShipCompanyCode><ShipInvoiceNumber1>1234-5678-9012</ShipInvoiceNumber1>\
         <ShipUrl>{url_100}</ShipUrl><ShipDate>20261202</ShipDate>"
    );
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, &valid), &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        ship_of(id.clone()).await,
        ["2", "3", "1001", "1234-5678-9012", "", url_100.as_str(), "2026-12-02"].map(String::from)
    );
    // A reason while a number is stored is refused; clearing the number with it is not.
    let reason = "<ShipStatus>3</ShipStatus><ShipInvoiceNumberEmptyReason>1</ShipInvoiceNumberEmptyReason>";
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, reason), &Sig::None).await;
    assert_eq!(refusal(a).1, "od20016");
    let cleared = format!("{reason}<ShipInvoiceNumber1></ShipInvoiceNumber1>");
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, &cleared), &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(ship_of(id.clone()).await[3..5], ["".to_owned(), "1".to_owned()]);
    // And a number while a reason is stored is refused.
    let number = "<ShipStatus>3</ShipStatus><ShipCompanyCode>1002</ShipCompanyCode><ShipInvoiceNumber1>5177-6696-1342</ShipInvoiceNumber1>";
    let a = sim.call("orderShipStatusChange", &token, &ship_xml(&id, number), &Sig::None).await;
    assert_eq!(refusal(a).1, "od20016");

    // 完了 needs IsPointFix=true.
    let a = sim.call("orderStatusChange", &token, &status_xml(&id, 5, false), &Sig::None).await;
    assert_eq!(refusal(a).1, "od20014");
    let a = sim.call("orderStatusChange", &token, &status_xml(&id, 5, true), &Sig::None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// `orders/generate` with a fixed seed: every kind of the shipping day's mix is there, each in
/// its place in orderInfo; orders made now are published now, a scene keeps its times.
#[tokio::test]
async fn the_generator_mix_has_each_kind_for_a_fixed_seed() {
    let (sim, token, _) = ready().await;
    let before = sim.now().await;
    let made = sim
        .control(
            &format!("/_sim/sellers/{SELLER}/orders/generate"),
            json!({ "count": 300, "seed": 11, "fraud_share": 0.05, "spread_hours": 72 }),
        )
        .await;
    assert_eq!(made["created"], 300);
    let snap = sim.get_json(&format!("/_sim/sellers/{SELLER}/orders")).await;
    let orders = snap.as_array().unwrap();
    let any = |what: &str, f: &dyn Fn(&serde_json::Value) -> bool| {
        let found = orders.iter().find(|o| f(o)).unwrap_or_else(|| panic!("no order with {what}"));
        found["order_id"].as_str().unwrap().to_owned()
    };
    let s = |o: &serde_json::Value, k: &str| o[k].as_str().unwrap_or_default().to_owned();
    let n = |o: &serde_json::Value, k: &str| o[k].as_i64().unwrap_or_default();
    for method in ["postage1", "postage2", "postage3"] {
        any(method, &|o| s(o, "ship_method") == method);
    }
    let cool = any("クール便", &|o| s(o, "ship_method_name") == "クール便");
    any("代金引換", &|o| s(o, "pay_method") == "payment_d1" && n(o, "pay_status") == 0 && n(o, "ship_status") == 1);
    any("unpaid 銀行振込", &|o| {
        s(o, "pay_method") == "payment_b1" && n(o, "pay_status") == 0 && n(o, "ship_status") == 0
    });
    any("paid 銀行振込", &|o| s(o, "pay_method") == "payment_b1" && n(o, "pay_status") == 1);
    let dated = any("a delivery date", &|o| !o["ship_request_date"].is_null());
    let slot = any("a time slot", &|o| !s(o, "ship_request_time").is_empty());
    any("options and a sub-code", &|o| {
        o["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| !i["options"].as_array().unwrap().is_empty() && !s(i, "sub_code").is_empty())
    });
    any("an 8 % line", &|o| o["items"].as_array().unwrap().iter().any(|i| i["tax_ratio"] == 8));
    any("points", &|o| n(o, "use_point") > 0);
    let coupon = any("a coupon", &|o| n(o, "total_coupon_discount") > 0 && !s(o, "use_coupon_data").is_empty());
    any("a gift card", &|o| n(o, "gift_card_discount") > 0);
    let gift = any("a wrapped gift", &|o| o["gift"]["need_gift_wrap"] == true && n(o, "gift_wrap_charge") > 0);
    any("a social gift", &|o| n(o, "social_gift_type") != 0);
    any("沖縄県", &|o| o["ship"]["prefecture"] == "沖縄県");
    any("北海道", &|o| o["ship"]["prefecture"] == "北海道");
    let outside = any("𠮷", &|o| o["ship"]["last_name"].as_str().unwrap().contains('𠮷'));
    any("a held order", &|o| n(o, "fraud_hold_status") == 1);

    // Each in its place in orderInfo.
    let info = |id: String| {
        let sim = &sim;
        let token = token.clone();
        async move {
            let a = sim.call("orderInfo", &token, &order_info_xml(SELLER, &id, SHIPPING_FIELDS), &Sig::None).await;
            assert_eq!(a.status, StatusCode::OK, "{}", a.body);
            a.xml()
        }
    };
    let o = info(cool).await;
    assert_eq!(o.path(&["Result", "OrderInfo", "Ship", "ShipMethodName"]).unwrap().text, "クール便");
    let o = info(dated).await;
    assert!(!o.path(&["Result", "OrderInfo", "Ship", "ShipRequestDate"]).unwrap().text.is_empty());
    let o = info(slot).await;
    assert!(!o.path(&["Result", "OrderInfo", "Ship", "ShipRequestTime"]).unwrap().text.is_empty());
    let o = info(coupon).await;
    assert_ne!(o.path(&["Result", "OrderInfo", "TotalCouponDiscount"]).unwrap().text, "0");
    let o = info(gift).await;
    assert_eq!(o.path(&["Result", "OrderInfo", "Ship", "NeedGiftWrap"]).unwrap().text, "true");
    let o = info(outside).await;
    assert_eq!(o.path(&["Result", "OrderInfo", "Ship", "ShipLastName"]).unwrap().text, "𠮷田");

    // Made now: published now, though ordered up to 72 hours ago.
    let time = |o: &serde_json::Value, k: &str| {
        chrono::DateTime::parse_from_rfc3339(o[k].as_str().unwrap()).unwrap().timestamp()
    };
    assert!(orders.iter().all(|o| time(o, "publication_time") >= before - 1));
    assert!(orders.iter().any(|o| time(o, "order_time") < before - 3600));
    // A scene published at its order times, when asked.
    sim.control("/_sim/sellers/scene/orders/generate", json!({ "count": 5, "seed": 1, "published": "order_time" }))
        .await;
    let scene = sim.get_json("/_sim/sellers/scene/orders").await;
    assert!(scene.as_array().unwrap().iter().all(|o| o["publication_time"] == o["order_time"]));
}
