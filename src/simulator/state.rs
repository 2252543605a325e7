//! The simulator's world: its clock, settings, apps, sellers with their keys, orders and stock,
//! authorization codes and tokens, rate-limit and quota counters, faults and call counters.
//! Everything sits behind one mutex held for microseconds; RSA work happens outside it.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicI64, Ordering},
    },
};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};

use super::orders::Order;
use crate::crypto::random_token;

/// The simulator's own clock: real time plus an offset that tests move forward (token and
/// session expiry) or skew (signature timestamps). Every time-based rule reads it.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the clock by `secs` (backwards when negative). Refused, leaving the clock as it
    /// was, when the offset would leave ±[`MAX_CLOCK_OFFSET_SECS`]: further has no use, and the
    /// dates it makes would overflow (every later request would panic).
    pub fn advance_secs(&self, secs: i64) -> Result<(), ClockOutOfRange> {
        let by = secs.checked_mul(1000).ok_or(ClockOutOfRange)?;
        self.offset_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                now.checked_add(by).filter(|o| o.unsigned_abs() <= MAX_CLOCK_OFFSET_SECS as u64 * 1000)
            })
            .map(|_| ())
            .map_err(|_| ClockOutOfRange)
    }

    /// Sets the offset from real time to `secs`, within ±[`MAX_CLOCK_OFFSET_SECS`].
    pub fn set_offset_secs(&self, secs: i64) -> Result<(), ClockOutOfRange> {
        if secs.unsigned_abs() > MAX_CLOCK_OFFSET_SECS as u64 {
            return Err(ClockOutOfRange);
        }
        self.offset_ms.store(secs * 1000, Ordering::Relaxed);
        Ok(())
    }
}

/// How far the simulator's clock may be from real time: 100 years.
pub const MAX_CLOCK_OFFSET_SECS: i64 = 100 * 366 * 24 * 3600;

/// A clock change beyond [`MAX_CLOCK_OFFSET_SECS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockOutOfRange;

impl std::fmt::Display for ClockOutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the clock may move at most {MAX_CLOCK_OFFSET_SECS} seconds (100 years) from real time")
    }
}

/// How orderList treats held orders (yahoo-store-api.md §4.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldMode {
    /// `FraudHoldDisplayType=1` shows orders in status 1 and 3; without it they are hidden.
    #[default]
    Display,
    /// orderList never returns status 1 or 3.
    Strict,
}

/// Behaviour switches, changed through the control API.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub hold_mode: HoldMode,
    /// Requests per second per app and API URL; 0 turns rate limiting off.
    pub rate_per_sec: f64,
    /// How many calls may come at once before the rate applies (a token bucket of this size,
    /// refilled at `rate_per_sec`). 2 lets a client that paces at the rate through despite
    /// network jitter; a client that calls every 0.5 s is refused from its fourth call (1.5 s in).
    pub rate_burst: f64,
    /// Requests per app per (JST) day; 0 turns the quota off.
    pub daily_quota: u64,
    /// A signature timestamp more than this many seconds ahead of the clock is `invalid-timestamp`.
    pub future_tolerance_secs: i64,
    /// A signature timestamp this many seconds old or older is `expired-timestamp`.
    pub max_age_secs: i64,
    /// Largest orderList page (assumed 2,000).
    pub max_result: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            hold_mode: HoldMode::Display,
            rate_per_sec: 1.0,
            rate_burst: 2.0,
            daily_quota: 50_000,
            future_tolerance_secs: 0,
            max_age_secs: 540,
            max_result: 2000,
        }
    }
}

/// The Yahoo endpoints the simulator answers, for rate limits, faults and counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Api {
    #[serde(rename = "token")]
    Token,
    #[serde(rename = "orderList")]
    OrderList,
    #[serde(rename = "orderInfo")]
    OrderInfo,
    #[serde(rename = "orderCount")]
    OrderCount,
    #[serde(rename = "orderStatusChange")]
    OrderStatusChange,
    #[serde(rename = "orderShipStatusChange")]
    OrderShipStatusChange,
    #[serde(rename = "orderPayStatusChange")]
    OrderPayStatusChange,
    #[serde(rename = "getStock")]
    GetStock,
    #[serde(rename = "setStock")]
    SetStock,
}

impl Api {
    pub const STORE_APIS: [Api; 8] = [
        Api::OrderList,
        Api::OrderInfo,
        Api::OrderCount,
        Api::OrderStatusChange,
        Api::OrderShipStatusChange,
        Api::OrderPayStatusChange,
        Api::GetStock,
        Api::SetStock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Token => "token",
            Api::OrderList => "orderList",
            Api::OrderInfo => "orderInfo",
            Api::OrderCount => "orderCount",
            Api::OrderStatusChange => "orderStatusChange",
            Api::OrderShipStatusChange => "orderShipStatusChange",
            Api::OrderPayStatusChange => "orderPayStatusChange",
            Api::GetStock => "getStock",
            Api::SetStock => "setStock",
        }
    }

    pub fn from_path(name: &str) -> Option<Api> {
        Api::STORE_APIS.into_iter().find(|a| a.as_str() == name)
    }
}

/// A registered application (client).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// Source IPs allowed to call the order APIs; empty allows any.
    #[serde(default)]
    pub allowed_ips: Vec<IpAddr>,
    #[serde(default = "yes")]
    pub approved_for_orders: bool,
}

fn yes() -> bool {
    true
}

/// A public key issued in the store's admin tool (暗号鍵管理).
#[derive(Clone, Debug)]
pub struct Key {
    pub version: u32,
    pub public_pem: String,
    pub private: Arc<RsaPrivateKey>,
    pub enabled: bool,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One item's stock (getStock/setStock), keyed by `item` or `item:subcode`.
#[derive(Clone, Debug, Serialize)]
pub struct Stock {
    pub quantity: i64,
    pub allow_overdraft: bool,
    pub is_published: bool,
    pub update_time: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct Seller {
    pub keys: Vec<Key>,
    pub orders: BTreeMap<String, Arc<Order>>,
    pub stock: BTreeMap<String, Stock>,
    pub next_order_number: u64,
}

impl Seller {
    pub fn key(&self, version: u32) -> Option<&Key> {
        self.keys.iter().find(|k| k.version == version)
    }

    pub fn next_order_id(&mut self, seller_id: &str) -> String {
        self.next_order_number += 1;
        format!("{seller_id}-{}", 10_000_000 + self.next_order_number)
    }
}

/// An authorization code: 600 s, single use, bound to client and redirect URI.
#[derive(Clone, Debug)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub seller_id: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// One authorization (consent) of an app for a seller; the refresh token names it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub client_id: String,
    pub seller_id: String,
    pub authorized_at: DateTime<Utc>,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub struct AccessToken {
    pub refresh_token: String,
    pub expires_at: DateTime<Utc>,
}

/// What an injected fault does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// HTTP 500 with an XML error.
    Error500,
    /// HTTP 503 with an XML error.
    Error503,
    /// Wait `delay_ms`, then answer normally.
    Delay,
    /// Send the headers, then break the connection mid-body.
    Drop,
    /// HTTP 200 with a truncated, unparseable body.
    MalformedXml,
    /// The rate-limit answer: 403 `Your Request was Forbidden`.
    Throttle,
    /// The call goes through, and its answer carries two `<Warning>`s (code and message) after
    /// `Status` (APIs whose answer has a `Status`).
    Warning,
    /// HTTP 200 whose `Result/Status` is `NG`, with an `<Error>` (code, message, detail):
    /// Yahoo refusing the request. Nothing is changed.
    StatusNg,
    /// 401 with `WWW-Authenticate: Bearer … error="insufficient_scope"`: the app lacks the
    /// store API scope.
    InsufficientScope,
    /// HTTP 400 with an error body in the shapes recorded from Yahoo: `<?xml … encoding="utf-8" ?>`,
    /// `xmlns="urn:yahoo:api"`, a CDATA `<Message>` padded with newlines, and a `<Detail>`.
    ErrorDetail,
    /// The call is carried out (a change is made), then, after `delay_ms`, the connection
    /// breaks before the answer: the network failing after Yahoo did the work, or the caller
    /// dying while it waited for the answer.
    LostAnswer,
}

impl FaultKind {
    /// Kinds that answer in the store APIs' XML; the token endpoint does not take them.
    pub fn store_api_only(self) -> bool {
        matches!(
            self,
            FaultKind::Warning
                | FaultKind::StatusNg
                | FaultKind::InsufficientScope
                | FaultKind::ErrorDetail
                | FaultKind::LostAnswer
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Error500 => "error500",
            FaultKind::Error503 => "error503",
            FaultKind::Delay => "delay",
            FaultKind::Drop => "drop",
            FaultKind::MalformedXml => "malformed_xml",
            FaultKind::Throttle => "throttle",
            FaultKind::Warning => "warning",
            FaultKind::StatusNg => "status_ng",
            FaultKind::InsufficientScope => "insufficient_scope",
            FaultKind::ErrorDetail => "error_detail",
            FaultKind::LostAnswer => "lost_answer",
        }
    }
}

/// A fault rule for one API: applies to `share` of the calls (deterministically: every call
/// that takes the running total past the next whole number), at most `times` times.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    pub api: Api,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub share: f64,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(skip)]
    pub seen: u64,
    #[serde(skip)]
    pub fired: u64,
}

fn one() -> f64 {
    1.0
}

impl Fault {
    /// Whether this call is hit; advances the rule's counters.
    pub fn fires(&mut self) -> bool {
        if self.times.is_some_and(|t| self.fired >= t) {
            return false;
        }
        self.seen += 1;
        let before = ((self.seen - 1) as f64 * self.share).floor();
        let after = (self.seen as f64 * self.share).floor();
        let hit = after > before;
        if hit {
            self.fired += 1;
        }
        hit
    }
}

/// A token bucket: `tokens` left at `at_ms` (the simulator's clock).
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    pub tokens: f64,
    pub at_ms: i64,
}

impl Bucket {
    /// Takes one token for a call at `now_ms` if there is one. A clock moved backwards (tests
    /// skew it) restarts the refill from `now_ms` without adding tokens.
    pub fn take(&mut self, now_ms: i64, rate_per_sec: f64, burst: f64) -> bool {
        let burst = burst.max(1.0);
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate_per_sec).min(burst);
        self.at_ms = now_ms;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Default)]
pub struct World {
    pub settings: Settings,
    pub apps: BTreeMap<String, App>,
    pub sellers: BTreeMap<String, Seller>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<String, Grant>,
    pub access: HashMap<String, AccessToken>,
    /// Rate-limit buckets per (app, API).
    pub buckets: HashMap<(String, Api), Bucket>,
    pub quota_used: HashMap<(String, NaiveDate), u64>,
    pub faults: Vec<Fault>,
    pub counters: BTreeMap<String, u64>,
    /// Decrypted signatures by (seller, version, header value). A client may reuse one value
    /// within a second; caching the RSA work keeps the simulator fast. Time rules are
    /// re-checked on every call.
    pub decrypted: HashMap<(String, u32, String), Option<String>>,
}

impl World {
    pub fn count(&mut self, key: impl Into<String>) {
        *self.counters.entry(key.into()).or_default() += 1;
    }

    pub fn seller_mut(&mut self, seller_id: &str) -> &mut Seller {
        self.sellers.entry(seller_id.to_owned()).or_default()
    }

    /// Issues (or, for a live grant, renews) the authorization of an app for a seller and
    /// returns its refresh token. Authorizing again before 28 days keeps the same string.
    pub fn authorize(&mut self, client_id: &str, seller_id: &str, now: DateTime<Utc>) -> String {
        let live = self.grants.iter_mut().find(|(_, g)| {
            g.client_id == client_id
                && g.seller_id == seller_id
                && !g.revoked
                && now < g.authorized_at + REFRESH_LIFETIME
        });
        if let Some((token, grant)) = live {
            grant.authorized_at = now;
            return token.clone();
        }
        let token = random_token();
        self.grants.insert(
            token.clone(),
            Grant { client_id: client_id.into(), seller_id: seller_id.into(), authorized_at: now, revoked: false },
        );
        token
    }

    pub fn issue_access_token(&mut self, refresh_token: &str, now: DateTime<Utc>) -> String {
        if self.access.len() > 50_000 {
            self.access.retain(|_, t| t.expires_at > now);
        }
        let token = random_token();
        self.access.insert(
            token.clone(),
            AccessToken { refresh_token: refresh_token.to_owned(), expires_at: now + ACCESS_LIFETIME },
        );
        token
    }
}

pub const ACCESS_LIFETIME: Duration = Duration::hours(1);
pub const CODE_LIFETIME: Duration = Duration::seconds(600);
pub const REFRESH_LIFETIME: Duration = Duration::days(28);
/// Without public-key authentication the store APIs stop answering after this.
pub const SHORT_SESSION: Duration = Duration::hours(12);
pub const KEY_LIFETIME_DAYS: i64 = 365;

/// Shared, cheap to clone.
#[derive(Clone, Default)]
pub struct SimState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    clock: Clock,
    world: Mutex<World>,
}

impl SimState {
    pub fn new(settings: Settings) -> SimState {
        let state = SimState::default();
        state.world().settings = settings;
        state
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Locks the world. Never hold it across an `.await` or RSA work.
    /// Sets the clock's offset from real time (「実時間に戻す」 sets 0). Moving it back starts
    /// every per-second rate window afresh: calls counted in a future that is gone must not
    /// refuse calls made now. (A bucket that merely sees an earlier time, as with skew, gains
    /// nothing; see [`Bucket::take`].)
    /// Moves the clock: first to an offset from real time, then by an advance (either may be
    /// absent). A change beyond ±[`MAX_CLOCK_OFFSET_SECS`] is refused and leaves the clock as it
    /// was. Going back in time starts the per-second rate windows afresh: windows opened "in the
    /// future" would otherwise refuse every call until real time caught up with them.
    pub fn change_clock(&self, offset_secs: Option<i64>, advance_secs: Option<i64>) -> Result<(), ClockOutOfRange> {
        let clock = &self.inner.clock;
        let before = clock.offset_ms();
        let result = offset_secs
            .map_or(Ok(()), |offset| clock.set_offset_secs(offset))
            .and_then(|()| advance_secs.map_or(Ok(()), |advance| clock.advance_secs(advance)));
        if result.is_err() {
            clock.offset_ms.store(before, Ordering::Relaxed);
        } else if clock.offset_ms() < before {
            self.world().buckets.clear();
        }
        result
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_share_is_deterministic() {
        let mut f = Fault {
            api: Api::OrderInfo,
            kind: FaultKind::Error503,
            share: 0.25,
            times: None,
            delay_ms: 0,
            seen: 0,
            fired: 0,
        };
        let hits: Vec<bool> = (0..8).map(|_| f.fires()).collect();
        assert_eq!(hits.iter().filter(|h| **h).count(), 2);
        let mut once = Fault { share: 1.0, times: Some(1), ..f.clone() };
        once.fired = 0;
        assert!(once.fires());
        assert!(!once.fires());
    }

    #[test]
    fn the_bucket_lets_a_client_at_the_rate_through_and_refuses_one_at_twice_the_rate() {
        let full = Bucket { tokens: 2.0, at_ms: 0 };
        // Paced at 1 s with ±150 ms of jitter: never refused.
        let mut b = full;
        let mut t = 0;
        for i in 0..200 {
            t += if i % 2 == 0 { 850 } else { 1150 };
            assert!(b.take(t, 1.0, 2.0), "call {i} at {t} ms");
        }
        // Paced at 0.5 s: the third call is refused.
        let mut b = full;
        let outcomes: Vec<bool> = (0..4).map(|i| b.take(i * 500, 1.0, 2.0)).collect();
        assert_eq!(outcomes, vec![true, true, true, false]);
        // A clock moved back adds nothing and does not lock the bucket.
        let mut b = Bucket { tokens: 0.0, at_ms: 10_000 };
        assert!(!b.take(5_000, 1.0, 2.0));
        assert!(b.take(6_000, 1.0, 2.0));
    }

    #[test]
    fn reauthorizing_keeps_the_refresh_token_and_restarts_it() {
        let mut w = World::default();
        let t0 = Utc::now();
        let a = w.authorize("app", "shop", t0);
        let b = w.authorize("app", "shop", t0 + Duration::days(27));
        assert_eq!(a, b);
        assert_eq!(w.grants[&a].authorized_at, t0 + Duration::days(27));
        let c = w.authorize("app", "shop", t0 + Duration::days(27) + REFRESH_LIFETIME);
        assert_ne!(a, c, "an expired grant is replaced");
    }
}
