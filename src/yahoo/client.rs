//! The one way to call Yahoo: per-store base URLs, the optional outbound proxy, timeouts,
//! Bearer tokens refreshed ahead of expiry (single-flight per store), `X-sws-signature` on every
//! store-API call with the timestamp corrected by the measured clock offset, pacing under the
//! per-URL rate limit, retries with backoff, and what each answer says recorded on the store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::header;
use rsa::{RsaPublicKey, pkcs8::DecodePublicKey};
use serde::Deserialize;
use url::Url;

use super::{error::YahooError, signature};
use crate::{
    config::Config,
    crypto::SecretBox,
    db::{Db, stores},
    domain::{AccountId, StoreId, authorize::AuthorizeStatus, store::Environment},
    xml::Element,
};

/// Purposes the sealed secrets are bound to (see `crypto::purpose`).
pub use crate::crypto::purpose::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN};

/// Access tokens are refreshed this long before Yahoo says they expire.
const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

/// Where a store's calls go.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub auth: Url,
    pub api: Url,
}

impl Endpoints {
    pub fn for_environment(environment: Environment, simulator_url: Option<&Url>) -> Result<Endpoints, YahooError> {
        let parse = |s: &str| Url::parse(s).expect("static URL");
        Ok(match environment {
            Environment::Production => Endpoints {
                auth: parse("https://auth.login.yahoo.co.jp/"),
                api: parse("https://circus.shopping.yahooapis.jp/"),
            },
            Environment::Sandbox => Endpoints {
                auth: parse("https://auth.login.yahoo.co.jp/"),
                api: parse("https://test.circus.shopping.yahooapis.jp/"),
            },
            Environment::Simulator => {
                let base = simulator_url.ok_or(YahooError::NotConfigured("ローカルシミュレーターのURL"))?;
                Endpoints { auth: base.clone(), api: base.clone() }
            }
        })
    }

    pub fn authorization(&self) -> Url {
        self.auth.join("yconnect/v2/authorization").expect("relative path")
    }

    pub fn token(&self) -> Url {
        self.auth.join("yconnect/v2/token").expect("relative path")
    }

    pub fn store_api(&self, api: &str) -> Url {
        self.api.join(&format!("ShoppingWebService/V1/{api}")).expect("relative path")
    }
}

/// A request body: XML for the order APIs, form fields for the stock APIs; `Query` is a GET
/// with these query parameters and no body (orderCount).
#[derive(Clone, Debug)]
pub enum Body {
    Xml(String),
    Form(Vec<(String, String)>),
    Query(Vec<(String, String)>),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// The `sub` claim of an ID token received straight from the token endpoint (over TLS, so its
/// signature need not be checked to read it; it is only shown, never trusted for access).
fn id_token_subject(token: &str) -> Option<String> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let payload = token.split('.').nth(1)?;
    let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims.get("sub")?.as_str().filter(|s| !s.is_empty() && s.len() <= 200).map(str::to_owned)
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The signature reused within one second (the value is valid for that second anyway, and RSA
/// work per call would dominate a fast import).
struct CachedSignature {
    timestamp: i64,
    version: i64,
    pem: String,
    value: String,
}

pub struct YahooClient {
    http: reqwest::Client,
    db: Db,
    secrets: SecretBox,
    simulator_url: Option<Url>,
    min_interval: Duration,
    retries: u32,
    backoff: Duration,
    refresh_locks: Mutex<HashMap<StoreId, Arc<tokio::sync::Mutex<()>>>>,
    /// One gate per (client ID, API URL): Yahoo's rate limit is per app and API URL, so stores
    /// that share an app share the gate. It holds when the last call through it was let go;
    /// callers queue for it in order (see [`YahooClient::pace`]).
    gates: Mutex<HashMap<(String, String), Gate>>,
    signatures: Mutex<HashMap<StoreId, CachedSignature>>,
    /// Credentials read in the last moment: an import makes thousands of calls a minute, and
    /// reading the store row for each would cost more than the call.
    credentials: Mutex<HashMap<StoreId, (Instant, stores::Credentials)>>,
    /// What was last written by `record_call` per store, so that unchanged outcomes are not
    /// written again on every call.
    recorded: Mutex<HashMap<StoreId, Recorded>>,
    /// Store API calls sent and not yet added to the stores' counts for the day (see
    /// [`YahooClient::flush_calls`]).
    unflushed_calls: Mutex<HashMap<(AccountId, StoreId), i64>>,
}

/// How long read credentials are reused (a key saved on the store page applies after this).
const CREDENTIALS_TTL: Duration = Duration::from_secs(2);
/// An unchanged call outcome is written again after this long (the page shows its time).
const RECORD_EVERY: Duration = Duration::from_secs(60);
/// The in-memory maps hold at most this many stores before expired entries are dropped.
const MAP_BOUND: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Recorded {
    authorize: Option<&'static str>,
    offset_ms: i64,
    auth_error: Option<&'static str>,
    at: Instant,
}

impl Recorded {
    fn same(&self, other: &Recorded) -> bool {
        self.authorize == other.authorize
            && self.auth_error == other.auth_error
            && (self.offset_ms - other.offset_ms).abs() < 2000
            && other.at.duration_since(self.at) < RECORD_EVERY
    }
}

impl YahooClient {
    /// Yahoo's clock minus ours as this process last measured it for the store (from the Date
    /// header of a call's answer), if it has called for the store since it started.
    pub fn measured_offset_ms(&self, store: StoreId) -> Option<i64> {
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).get(&store).map(|r| r.offset_ms)
    }

    pub fn new(config: &Config, db: Db, secrets: SecretBox) -> anyhow::Result<YahooClient> {
        let mut http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.yahoo_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            // Answers are small (a few kB an order) and imports make thousands of calls a
            // minute: inflating them costs more CPU than the bytes saved are worth.
            .no_gzip()
            .user_agent(concat!("orderdesk/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = &config.yahoo_proxy {
            http = http.proxy(reqwest::Proxy::all(proxy.expose())?);
        }
        Ok(YahooClient {
            http: http.build()?,
            db,
            secrets,
            simulator_url: config.simulator_url.clone(),
            min_interval: Duration::from_millis(config.yahoo_min_interval_ms),
            retries: 3,
            backoff: Duration::from_millis(config.yahoo_backoff_ms),
            refresh_locks: Mutex::default(),
            gates: Mutex::default(),
            signatures: Mutex::default(),
            credentials: Mutex::default(),
            recorded: Mutex::default(),
            unflushed_calls: Mutex::default(),
        })
    }

    /// Adds the store API calls sent since the last flush to each store's count for today
    /// (JST): the count the store page shows against Yahoo's daily quota and automatic work
    /// checks before it starts. Every call is counted here, whoever made it (import, pushes,
    /// stock, 接続テスト, 注文再取込, 照合, retries included); writing once per flush instead of
    /// once per call keeps an import's thousands of calls a minute off the database. The import
    /// flushes when it reports progress, pushes after each push, and the scheduler every tick.
    /// A count that cannot be written is kept for the next flush.
    pub async fn flush_calls(&self) {
        let taken = std::mem::take(&mut *self.unflushed_calls.lock().unwrap_or_else(|p| p.into_inner()));
        if taken.is_empty() {
            return;
        }
        let now = crate::db::now();
        let day = crate::domain::jst::today(now).to_string();
        for ((account, store), n) in taken {
            let written = async {
                crate::db::imports::ensure(&self.db, account, store, now).await?;
                crate::db::imports::add_calls(&self.db, account, store, &day, n).await
            };
            if let Err(e) = written.await {
                tracing::warn!(error = %e, store = store.0, "counting today's Yahoo calls failed");
                *self.unflushed_calls.lock().unwrap_or_else(|p| p.into_inner()).entry((account, store)).or_default() +=
                    n;
            }
        }
    }

    fn count_call(&self, account: AccountId, store: StoreId) {
        *self.unflushed_calls.lock().unwrap_or_else(|p| p.into_inner()).entry((account, store)).or_default() += 1;
    }

    pub fn endpoints(&self, environment: Environment) -> Result<Endpoints, YahooError> {
        Endpoints::for_environment(environment, self.simulator_url.as_ref())
    }

    /// The store's credentials, read again after [`CREDENTIALS_TTL`].
    async fn credentials(&self, account: AccountId, store: StoreId) -> Result<stores::Credentials, YahooError> {
        if let Some((at, creds)) = self.credentials.lock().unwrap_or_else(|p| p.into_inner()).get(&store)
            && at.elapsed() < CREDENTIALS_TTL
        {
            return Ok(creds.clone());
        }
        self.fresh_credentials(account, store).await
    }

    /// The store's credentials as stored now (before and after a token refresh).
    async fn fresh_credentials(&self, account: AccountId, store: StoreId) -> Result<stores::Credentials, YahooError> {
        let creds = stores::credentials(&self.db, account, store)
            .await
            .map_err(|e| YahooError::Temporary(format!("database: {e}")))?
            .ok_or(YahooError::NotConnected)?;
        let mut cache = self.credentials.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAP_BOUND {
            cache.retain(|_, (at, _)| at.elapsed() < CREDENTIALS_TTL);
        }
        cache.insert(store, (Instant::now(), creds.clone()));
        Ok(creds)
    }

    /// The store's credentials changed (a new authorization, a public key saved): its next
    /// call reads them again, signs with the new key at once, and records what Yahoo says even
    /// when that equals what was said before.
    pub fn credentials_changed(&self, store: StoreId) {
        self.signatures.lock().unwrap_or_else(|p| p.into_inner()).remove(&store);
        self.forget_credentials(store);
        self.recorded.lock().unwrap_or_else(|p| p.into_inner()).remove(&store);
    }

    fn forget_credentials(&self, store: StoreId) {
        self.credentials.lock().unwrap_or_else(|p| p.into_inner()).remove(&store);
    }

    /// Writes what a call told us on the store, unless it is what was last written; only while
    /// the store still has the connection the call was made on (`connection`, its sealed refresh
    /// token).
    async fn record(
        &self,
        account: AccountId,
        store: StoreId,
        connection: &[u8],
        authorize: Option<&'static str>,
        offset_ms: i64,
        auth_error: Option<&'static str>,
    ) {
        let now = Recorded { authorize, offset_ms, auth_error, at: Instant::now() };
        {
            let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
            if recorded.get(&store).is_some_and(|last| last.same(&now)) {
                return;
            }
            if recorded.len() >= MAP_BOUND {
                recorded.retain(|_, r| r.at.elapsed() < RECORD_EVERY);
            }
            recorded.insert(store, now);
        }
        if let Err(e) =
            stores::record_call(&self.db, account, store, connection, authorize, Some(offset_ms), auth_error).await
        {
            tracing::warn!(store = store.0, error = %e, "recording a Yahoo call's outcome failed");
            self.recorded.lock().unwrap_or_else(|p| p.into_inner()).remove(&store);
        }
    }

    /// Opens a sealed value of the store's row. One that does not open (moved from another
    /// row, or damaged) must be entered again: the client secret on the store form, the tokens
    /// by connecting again.
    fn open(&self, column: &'static str, creds: &stores::Credentials, sealed: &[u8]) -> Result<String, YahooError> {
        self.secrets.open(column, creds.store_id.0, sealed).map_err(|_| YahooError::SecretUnreadable(column))
    }

    fn client_auth(&self, creds: &stores::Credentials) -> Result<(String, String), YahooError> {
        if creds.client_id.is_empty() {
            return Err(YahooError::NotConfigured("Client ID"));
        }
        let sealed = creds.client_secret_enc.as_deref().ok_or(YahooError::NotConfigured("シークレット"))?;
        Ok((creds.client_id.clone(), self.open(CLIENT_SECRET, creds, sealed)?))
    }

    /// POSTs to the token endpoint with Basic client authentication.
    async fn token_request(
        &self,
        creds: &stores::Credentials,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, YahooError> {
        let endpoints = self.endpoints(creds.environment())?;
        let (client_id, secret) = self.client_auth(creds)?;
        let mut attempt = 0;
        loop {
            let result =
                self.http.post(endpoints.token()).basic_auth(&client_id, Some(&secret)).form(form).send().await;
            let error = match result {
                Ok(r) if r.status().is_success() => {
                    return r.json::<TokenAnswer>().await.map_err(|e| YahooError::Malformed(e.to_string()));
                }
                Ok(r) if r.status().is_server_error() => {
                    YahooError::Temporary(format!("token endpoint HTTP {}", r.status()))
                }
                Ok(r) => {
                    let status = r.status();
                    let e: TokenError =
                        r.json().await.unwrap_or(TokenError { error: String::new(), error_description: String::new() });
                    match e.error.as_str() {
                        "invalid_grant" => YahooError::InvalidGrant,
                        "invalid_client" => YahooError::InvalidClient,
                        _ => YahooError::Api {
                            status: status.as_u16(),
                            code: Some(e.error),
                            message: e.error_description,
                        },
                    }
                }
                Err(e) => YahooError::Temporary(transport(&e)),
            };
            if error.is_temporary() && attempt < self.retries {
                tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                attempt += 1;
                continue;
            }
            return Err(error);
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) and stores the sealed tokens
    /// and the authorization time.
    pub async fn exchange_code(
        &self,
        account: AccountId,
        store: StoreId,
        code: &str,
        redirect_uri: &str,
        code_verifier: &str,
        note: &crate::db::audit::Note,
    ) -> Result<(), YahooError> {
        let creds = self.fresh_credentials(account, store).await?;
        let answer = self
            .token_request(
                &creds,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", code_verifier),
                ],
            )
            .await?;
        let refresh = answer.refresh_token.clone().ok_or_else(|| YahooError::Malformed("no refresh_token".into()))?;
        // Before anything is stored: the seller who consented must be this store's seller,
        // or the store would run (and a reconnect would overwrite a good grant) on someone
        // else's authorization.
        self.check_seller(account, &creds, &answer).await?;
        let now = Utc::now();
        stores::save_authorization(
            &self.db,
            account,
            store,
            self.secrets.seal(REFRESH_TOKEN, store.0, &refresh),
            self.secrets.seal(ACCESS_TOKEN, store.0, &answer.access_token),
            now + chrono::Duration::seconds(answer.expires_in),
            now,
            Some(note),
        )
        .await
        .map_err(|e| YahooError::Temporary(format!("database: {e}")))?;
        self.credentials_changed(store);
        Ok(())
    }

    /// Asks Yahoo, with the new token, for the store's seller ID (orderCount, the cheapest
    /// call). px-04304 means the token is for another seller: [`YahooError::SellerMismatch`]
    /// names both IDs (the consenting one from the ID token's subject, when it has one). Any
    /// other answer is left to 接続テスト and the diagnosis.
    async fn check_seller(
        &self,
        account: AccountId,
        creds: &stores::Credentials,
        answer: &TokenAnswer,
    ) -> Result<(), YahooError> {
        let url = self.endpoints(creds.environment())?.store_api("orderCount");
        self.count_call(account, creds.store_id);
        let response = self
            .http
            .get(url)
            .bearer_auth(&answer.access_token)
            .query(&[("sellerId", creds.seller_id.as_str())])
            .send()
            .await;
        let Ok(response) = response else { return Ok(()) };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let www = response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.unwrap_or_default();
        match super::error::from_store_answer(status, www.as_deref(), &bytes) {
            YahooError::WrongSeller => Err(YahooError::SellerMismatch {
                expected: creds.seller_id.clone(),
                consented: answer.id_token.as_deref().and_then(id_token_subject),
            }),
            _ => Ok(()),
        }
    }

    fn usable_token(&self, creds: &stores::Credentials) -> Option<String> {
        let expires = creds.access_token_expires_at?;
        if expires - REFRESH_MARGIN <= Utc::now() {
            return None;
        }
        self.open(ACCESS_TOKEN, creds, creds.access_token_enc.as_deref()?).ok()
    }

    /// A valid access token. Refreshes ahead of expiry, or when `stale` (a token Yahoo just
    /// refused) is still the stored one; one refresh at a time per store, and callers that
    /// waited use the token the first one got.
    async fn access_token(
        &self,
        account: AccountId,
        store: StoreId,
        stale: Option<&str>,
    ) -> Result<String, YahooError> {
        if stale.is_none() {
            let creds = self.credentials(account, store).await?;
            if let Some(token) = self.usable_token(&creds) {
                return Ok(token);
            }
        }
        let lock = {
            let mut locks = self.refresh_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(store).or_default().clone()
        };
        let _guard = lock.lock().await;
        let _shared = self.shared_refresh_lock(store).await?;
        // Read as stored now: another caller (or process) may have refreshed meanwhile.
        let creds = self.fresh_credentials(account, store).await?;
        if let Some(token) = self.usable_token(&creds)
            && stale != Some(token.as_str())
        {
            return Ok(token);
        }
        let connection = creds.refresh_token_enc.as_deref().ok_or(YahooError::NotConnected)?;
        let refresh = self.open(REFRESH_TOKEN, &creds, connection)?;
        let answer =
            match self.token_request(&creds, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await {
                Ok(answer) => answer,
                Err(e) => {
                    if let Some(code) = e.auth_code() {
                        let _ = stores::record_call(&self.db, account, store, connection, None, None, Some(code)).await;
                    }
                    return Err(e);
                }
            };
        let saved = stores::save_access_token(
            &self.db,
            account,
            store,
            connection,
            self.secrets.seal(ACCESS_TOKEN, store.0, &answer.access_token),
            Utc::now() + chrono::Duration::seconds(answer.expires_in),
        )
        .await
        .map_err(|e| YahooError::Temporary(format!("database: {e}")))?;
        self.forget_credentials(store);
        if !saved {
            // Disconnected (or connected again) while the refresh was under way: the token
            // belongs to a connection the store no longer has.
            return Err(YahooError::NotConnected);
        }
        tracing::debug!(store = store.0, "access token refreshed");
        Ok(answer.access_token)
    }

    /// On PostgreSQL, the lock that makes a store's refresh single-flight across servers too:
    /// a transaction-level advisory lock, released when the returned transaction is dropped
    /// (nothing is written in it). A refresh that outlives the database's idle-in-transaction
    /// limit loses the lock early, which at worst allows a second refresh, as before.
    async fn shared_refresh_lock(
        &self,
        store: StoreId,
    ) -> Result<Option<sqlx::Transaction<'static, sqlx::Postgres>>, YahooError> {
        let Db::Postgres(pool) = &self.db else { return Ok(None) };
        let database = |e: sqlx::Error| YahooError::Temporary(format!("database: {e}"));
        let mut tx = pool.begin().await.map_err(database)?;
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('orderdesk token refresh', $1))")
            .bind(store.0)
            .execute(&mut *tx)
            .await
            .map_err(database)?;
        Ok(Some(tx))
    }

    /// Waits until this app may call this API URL again (Yahoo allows 1 request per second)
    /// and lets the call go. The interval counts from when the previous call was actually let
    /// go, not from a slot booked ahead: callers booking slots ahead all woke late under load
    /// and then went out together, which Yahoo counts as a burst.
    ///
    /// Callers of one process queue for the app's gate in order; the one at its head waits out
    /// the interval, then (on PostgreSQL) claims the call in the database, so that every server
    /// sharing it keeps to the one limit. If the database cannot be asked, the gate alone
    /// paces this process.
    async fn pace(&self, client_id: &str, url: &Url) {
        if self.min_interval.is_zero() {
            return;
        }
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            if gates.len() >= MAP_BOUND {
                gates.retain(|_, g| Arc::strong_count(g) > 1);
            }
            gates.entry((client_id.to_owned(), url.to_string())).or_default().clone()
        };
        let mut last = gate.lock().await;
        if let Some(at) = *last {
            tokio::time::sleep_until((at + self.min_interval).into()).await;
        }
        if let Err(e) = crate::db::pacing::claim(&self.db, client_id, url.as_str(), self.min_interval).await {
            tracing::warn!(error = %e, "shared pacing unavailable; pacing this process only");
        }
        *last = Some(Instant::now());
    }

    /// `X-sws-signature` and its version, or `None` when the store has no key set.
    async fn signature(
        &self,
        store: StoreId,
        creds: &stores::Credentials,
        offset_ms: i64,
    ) -> Result<Option<(String, i64)>, YahooError> {
        let (Some(pem), Some(version)) = (creds.public_key_pem.clone(), creds.public_key_version) else {
            return Ok(None);
        };
        let timestamp = (Utc::now().timestamp_millis() + offset_ms).div_euclid(1000);
        {
            let cache = self.signatures.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(&store)
                && c.timestamp == timestamp
                && c.version == version
                && c.pem == pem
            {
                return Ok(Some((c.value.clone(), version)));
            }
        }
        let seller = creds.seller_id.clone();
        let key_pem = pem.clone();
        let value = tokio::task::spawn_blocking(move || {
            let key =
                RsaPublicKey::from_public_key_pem(&key_pem).map_err(|_| YahooError::NotConfigured("正しい公開鍵"))?;
            signature::build(&key, &seller, timestamp).map_err(|e| YahooError::Malformed(e.to_string()))
        })
        .await
        .map_err(|e| YahooError::Temporary(e.to_string()))??;
        self.signatures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(store, CachedSignature { timestamp, version, pem, value: value.clone() });
        Ok(Some((value, version)))
    }

    /// One store-API call: token, signature, pacing, retries; records the public-key outcome,
    /// the clock offset and any authentication problem on the store. Returns the parsed root.
    pub async fn call(&self, account: AccountId, store: StoreId, api: &str, body: Body) -> Result<Element, YahooError> {
        match self.call_reading(account, store, api, body, None).await? {
            Answer::Tree(root) => Ok(root),
            Answer::Order(_) => unreachable!("no reader was given"),
        }
    }

    /// orderInfo through [`YahooClient::call`], its answer read straight into the order (see
    /// [`super::api::order_info_answer`]); any other answer is read as `call` reads it.
    pub async fn call_order_info(
        &self,
        account: AccountId,
        store: StoreId,
        body: Body,
    ) -> Result<super::api::OrderDetail, YahooError> {
        match self.call_reading(account, store, "orderInfo", body, Some(super::api::order_info_answer)).await? {
            Answer::Tree(root) => super::api::parse_order_info(&root),
            Answer::Order(order) => *order,
        }
    }

    async fn call_reading(
        &self,
        account: AccountId,
        store: StoreId,
        api: &str,
        body: Body,
        read: Option<OrderReader>,
    ) -> Result<Answer, YahooError> {
        let creds = self.credentials(account, store).await?;
        let connection = creds.refresh_token_enc.as_deref().ok_or(YahooError::NotConnected)?;
        let url = self.endpoints(creds.environment())?.store_api(api);
        let mut offset_ms = creds.clock_offset_ms.unwrap_or(0);
        let mut token = self.access_token(account, store, None).await?;
        let mut refreshed = false;
        let mut resigned = false;
        let mut attempt = 0;
        loop {
            self.pace(&creds.client_id, &url).await;
            let signature = self.signature(store, &creds, offset_ms).await?;
            let mut request = match &body {
                Body::Xml(xml) => self
                    .http
                    .post(url.clone())
                    .header(header::CONTENT_TYPE, "application/xml; charset=UTF-8")
                    .body(xml.clone()),
                Body::Form(fields) => self.http.post(url.clone()).form(fields),
                Body::Query(params) => self.http.get(url.clone()).query(params),
            }
            .bearer_auth(&token);
            if let Some((value, version)) = &signature {
                request =
                    request.header("X-sws-signature", value).header("X-sws-signature-version", version.to_string());
            }
            let used_offset = offset_ms;
            self.count_call(account, store);
            // Whether the answer was lost on the way (the connection broke, or the body came
            // garbled): Yahoo may have done the work all the same.
            let mut answer_lost = false;
            let outcome = match request.send().await {
                Err(e) => {
                    answer_lost = !e.is_connect();
                    Err(YahooError::Temporary(transport(&e)))
                }
                Ok(response) => {
                    let status = response.status();
                    // Header names are matched case-insensitively (`HeaderMap`), whatever case
                    // Yahoo or a proxy writes them in.
                    let authorize = response
                        .headers()
                        .get("x-sws-authorize-status")
                        .and_then(|v| v.to_str().ok())
                        .map(|v| AuthorizeStatus::parse(v).as_str());
                    if let Some(measured) = measured_offset(response.headers(), Utc::now()) {
                        offset_ms = measured;
                    }
                    let www = response
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let bytes = response.bytes().await;
                    let result = match bytes {
                        Err(e) => {
                            answer_lost = true;
                            Err(YahooError::Temporary(transport(&e)))
                        }
                        Ok(bytes) if status.is_success() => match read.and_then(|read| read(&bytes)) {
                            Some(order) => Ok(Answer::Order(Box::new(order))),
                            None => Element::parse(&bytes)
                                .map_err(|e| YahooError::Malformed(e.to_string()))
                                .and_then(|root| super::error::from_success(status, root))
                                .map(Answer::Tree),
                        },
                        Ok(bytes) => Err(super::error::from_store_answer(status, www.as_deref(), &bytes)),
                    };
                    answer_lost |= matches!(result, Err(YahooError::Malformed(_)));
                    // A wrong server clock fails the signature's time window; with the offset just
                    // measured, sign again at once rather than run a call in the 12-hour regime.
                    let clock_failed = matches!(authorize, Some("invalid-timestamp" | "expired-timestamp"));
                    if clock_failed && signature.is_some() && !resigned && (offset_ms - used_offset).abs() >= 1000 {
                        resigned = true;
                        tracing::info!(
                            store = store.0,
                            offset_ms,
                            "signature clock corrected from Yahoo's Date header"
                        );
                        continue;
                    }
                    let auth_error = result.as_ref().err().and_then(YahooError::auth_code);
                    let clears = result.is_ok();
                    if authorize.is_some() || auth_error.is_some() || clears {
                        self.record(account, store, connection, authorize, offset_ms, auth_error).await;
                    }
                    result
                }
            };
            match outcome {
                Ok(Answer::Tree(root)) => {
                    for w in super::api::warnings(&root) {
                        tracing::warn!(store = store.0, api, code = %w.code, message = %w.message, "Yahoo answered with a warning");
                    }
                    return Ok(Answer::Tree(root));
                }
                Ok(answer) => return Ok(answer),
                Err(YahooError::TokenExpired) if !refreshed => {
                    refreshed = true;
                    token = self.access_token(account, store, Some(&token)).await?;
                }
                // A change whose answer was lost may have been made: sending it again here
                // could make it twice. Yahoo's own error answers (5xx, the rate limit) are
                // retried; a lost answer is left to the outbox, which reads the order first.
                Err(e) if e.is_temporary() && attempt < self.retries && !(answer_lost && changes_an_order(api)) => {
                    tracing::info!(store = store.0, api, attempt, error = %e, "retrying a Yahoo call");
                    tokio::time::sleep(self.backoff * 2u32.pow(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The store APIs that change an order: not to be sent twice when an answer is lost.
pub fn changes_an_order(api: &str) -> bool {
    matches!(api, "orderStatusChange" | "orderShipStatusChange" | "orderPayStatusChange")
}

/// When the last call through one app's gate on one API URL was let go.
type Gate = Arc<tokio::sync::Mutex<Option<Instant>>>;

/// Reads a successful answer without an element tree, or `None` to read it as a tree.
type OrderReader = fn(&[u8]) -> Option<Result<super::api::OrderDetail, YahooError>>;

/// A successful answer: the parsed root, or an order read straight from the bytes.
enum Answer {
    Tree(Element),
    Order(Box<Result<super::api::OrderDetail, YahooError>>),
}

/// PKCE S256: `BASE64URL(SHA-256(verifier))`, without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Yahoo's clock minus ours, from the `Date` header (whole seconds, so the estimate errs
/// early by under a second: a corrected timestamp is never in Yahoo's future).
pub fn measured_offset(headers: &header::HeaderMap, received_at: DateTime<Utc>) -> Option<i64> {
    let date = headers.get(header::DATE)?.to_str().ok()?;
    let server = DateTime::parse_from_rfc2822(date).ok()?.with_timezone(&Utc);
    Some(server.timestamp_millis() - received_at.timestamp_millis())
}

/// A transport error without the URL (which can carry nothing secret here, but stays short).
fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yahoo_header_names_are_read_in_any_case() {
        // Yahoo writes `X-SWS-Authorize-Status` and `WWW-Authenticate`; the header map keeps
        // names in lower case, so any spelling on the wire is found by the names we ask for.
        let mut raw = axum::http::Response::builder();
        for (name, value) in [("X-SWS-Authorize-Status", "authorized"), ("WWW-Authenticate", "Bearer x")] {
            raw = raw.header(name, value);
        }
        let response = raw.body(()).unwrap();
        assert_eq!(response.headers().get("x-sws-authorize-status").unwrap(), "authorized");
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).unwrap(), "Bearer x");
    }
}
