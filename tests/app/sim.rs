//! Test harness for the simulator: starts it in-process on a random port and drives it only
//! through HTTP, as Yahoo's clients and the documented control API would.

use base64::{Engine, engine::general_purpose::STANDARD};
use orderdesk::{
    simulator::{Settings, SimHandle, Simulator},
    yahoo::signature,
};
use reqwest::{StatusCode, header};
use rsa::{RsaPublicKey, pkcs8::DecodePublicKey};
use serde_json::{Value, json};
use url::Url;

pub const CLIENT_ID: &str = "test-client";
pub const CLIENT_SECRET: &str = "test-secret";
pub const CALLBACK: &str = "http://127.0.0.1:1/callback";

pub fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn public_key(n: u8) -> RsaPublicKey {
    RsaPublicKey::from_public_key_pem(&fixture(&format!("public-{n}.pem"))).unwrap()
}

/// How a store-API call is signed.
#[derive(Clone, Debug)]
pub enum Sig {
    /// No signature headers.
    None,
    /// Fixture key `key`, version header `version`, seller and timestamp as given.
    With { key: u8, version: Option<String>, seller: String, timestamp: String },
    /// Raw header values.
    Raw { signature: String, version: Option<String> },
}

impl Sig {
    /// A correct signature for `seller` at the simulator's `now`, with fixture key 1 as version 1.
    pub fn good(seller: &str, now: i64) -> Sig {
        Sig::With { key: 1, version: Some("1".into()), seller: seller.into(), timestamp: now.to_string() }
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn authorize_status(&self) -> &str {
        self.headers.get("x-sws-authorize-status").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn xml(&self) -> orderdesk::xml::Element {
        orderdesk::xml::Element::parse(self.body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn error_code(&self) -> Option<String> {
        self.xml().value_of("Code").map(str::to_owned)
    }
}

pub struct Sim {
    /// Keeps the simulator running for the test's lifetime.
    _handle: SimHandle,
    pub base: Url,
    pub http: reqwest::Client,
}

impl Sim {
    /// A simulator with rate limiting off (tests that need it turn it on).
    pub async fn start() -> Sim {
        let settings = Settings { rate_per_sec: 0.0, ..Settings::default() };
        let handle = Simulator::bind("127.0.0.1:0".parse().unwrap(), settings).await.unwrap().spawn();
        let base = handle.base_url.clone();
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let sim = Sim { _handle: handle, base, http };
        sim.control(
            "/_sim/apps",
            json!({ "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": [CALLBACK] }),
        )
        .await;
        sim
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path.trim_start_matches('/')).unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let r = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        let status = r.status();
        let value: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {value}");
        value
    }

    pub async fn control_status(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self.http.post(self.url(path)).json(&body).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, path: &str) -> Value {
        self.http.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// The simulator's clock, in unix seconds.
    pub async fn now(&self) -> i64 {
        let state = self.get_json("/_sim/state").await;
        chrono::DateTime::parse_from_rfc3339(state["now"].as_str().unwrap()).unwrap().timestamp()
    }

    pub async fn advance(&self, secs: i64) {
        self.control("/_sim/clock", json!({ "advance_secs": secs })).await;
    }

    /// Issues fixture key `n` for `seller` as the next version and returns the version.
    pub async fn key(&self, seller: &str, n: u8) -> u64 {
        let info = self
            .control(
                &format!("/_sim/sellers/{seller}/keys"),
                json!({ "private_pem": fixture(&format!("private-{n}.pem")) }),
            )
            .await;
        info["version"].as_u64().unwrap()
    }

    pub async fn order(&self, seller: &str, spec: Value) -> Value {
        self.control(&format!("/_sim/sellers/{seller}/orders"), spec).await
    }

    /// A plain order of one ordinary item.
    pub async fn plain_order(&self, seller: &str) -> String {
        let o = self.order(seller, json!({ "items": [{ "item_id": "mug", "title": "マグカップ" }] })).await;
        o["order_id"].as_str().unwrap().to_owned()
    }

    /// Walks the consent page like a browser: returns the redirect back to the app.
    pub async fn consent(&self, seller: &str, extra: &[(&str, &str)], decision: &str) -> Url {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
        ];
        params.extend_from_slice(extra);
        let page = self.http.get(self.url("/yconnect/v2/authorization")).query(&params).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("同意する"), "{html}");
        params.push(("decision", decision));
        params.push(("new_seller_id", seller));
        let r = self.http.post(self.url("/yconnect/v2/authorization")).form(&params).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
        Url::parse(r.headers()[header::LOCATION].to_str().unwrap()).unwrap()
    }

    pub async fn token_request(&self, form: &[(&str, &str)], basic: bool) -> (StatusCode, Value) {
        let mut req = self.http.post(self.url("/yconnect/v2/token"));
        let mut form = form.to_vec();
        if basic {
            req = req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
        } else {
            form.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
        }
        let r = req.form(&form).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    /// Authorizes `seller` through the consent flow and returns (access token, refresh token).
    pub async fn authorize(&self, seller: &str) -> (String, String) {
        let back = self.consent(seller, &[], "allow").await;
        let code = back.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
        let (status, tokens) = self
            .token_request(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CALLBACK)], true)
            .await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        (tokens["access_token"].as_str().unwrap().into(), tokens["refresh_token"].as_str().unwrap().into())
    }

    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)], true).await
    }

    /// Calls a store API with an XML body.
    pub async fn call(&self, api: &str, token: &str, xml: &str, sig: &Sig) -> Answer {
        let req = self
            .http
            .post(self.url(&format!("/ShoppingWebService/V1/{api}")))
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, "application/xml; charset=UTF-8")
            .body(xml.to_owned());
        self.send(sign(req, sig)).await
    }

    /// Calls a store API with a raw body labelled `content_type` (`None`: no Content-Type).
    pub async fn call_labelled(
        &self,
        api: &str,
        token: &str,
        body: &str,
        content_type: Option<&str>,
        sig: &Sig,
    ) -> Answer {
        let mut req =
            self.http.post(self.url(&format!("/ShoppingWebService/V1/{api}"))).bearer_auth(token).body(body.to_owned());
        if let Some(content_type) = content_type {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        self.send(sign(req, sig)).await
    }

    /// GETs a store API with these query parameters (orderCount).
    pub async fn call_get(&self, api: &str, token: &str, query: &[(&str, &str)], sig: &Sig) -> Answer {
        let req = self.http.get(self.url(&format!("/ShoppingWebService/V1/{api}"))).bearer_auth(token).query(query);
        self.send(sign(req, sig)).await
    }

    pub async fn call_form(&self, api: &str, token: &str, form: &[(&str, &str)], sig: &Sig) -> Answer {
        let req = self.http.post(self.url(&format!("/ShoppingWebService/V1/{api}"))).bearer_auth(token).form(form);
        self.send(sign(req, sig)).await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        Answer { status: r.status(), headers: r.headers().clone(), body: r.text().await.unwrap_or_default() }
    }
}

pub fn sign(req: reqwest::RequestBuilder, sig: &Sig) -> reqwest::RequestBuilder {
    match sig {
        Sig::None => req,
        Sig::With { key, version, seller, timestamp } => {
            let cipher = rsa::RsaPublicKey::encrypt(
                &public_key(*key),
                &mut rand::thread_rng(),
                rsa::Pkcs1v15Encrypt,
                format!("{seller}:{timestamp}").as_bytes(),
            )
            .unwrap();
            let req = req.header("X-sws-signature", STANDARD.encode(cipher));
            match version {
                Some(v) => req.header("X-sws-signature-version", v),
                None => req,
            }
        }
        Sig::Raw { signature, version } => {
            let req = req.header("X-sws-signature", signature);
            match version {
                Some(v) => req.header("X-sws-signature-version", v),
                None => req,
            }
        }
    }
}

/// The same signature the app's client builds, for tests that compare the two.
pub fn client_signature(seller: &str, now: i64) -> String {
    signature::build(&public_key(1), seller, now).unwrap()
}

pub fn order_info_xml(seller: &str, order_id: &str, fields: &str) -> String {
    format!(
        "<Req><Target><OrderId>{order_id}</OrderId><Field>{fields}</Field></Target><SellerId>{seller}</SellerId></Req>"
    )
}

pub fn order_list_xml(seller: &str, condition: &str, result: u32, start: u32) -> String {
    format!(
        "<Req><Search><Result>{result}</Result><Start>{start}</Start><Sort>+order_time</Sort><Condition>{condition}</Condition>\
         <Field>OrderId,Version,OrderTime,OrderStatus,FraudHoldStatus,PublicationTime</Field></Search><SellerId>{seller}</SellerId></Req>"
    )
}

/// A PublicationTime window around now (±2 days), in the condition format.
pub fn wide_window() -> String {
    let now = chrono::Utc::now();
    let f = orderdesk::domain::jst::format_condition;
    format!(
        "<PublicationTimeFrom>{}</PublicationTimeFrom><PublicationTimeTo>{}</PublicationTimeTo>",
        f(now - chrono::Duration::days(2)),
        f(now + chrono::Duration::days(2))
    )
}
