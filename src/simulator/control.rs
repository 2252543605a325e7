//! The control API (`/_sim/…`, JSON) that tests, benchmarks and people use to set the scene:
//! apps, sellers' keys, orders, the daily review, the clock, faults, settings, counters and
//! snapshots. Documented in `docs/simulator.md`.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, Utc};
use rsa::{
    RsaPrivateKey, RsaPublicKey,
    pkcs1::DecodeRsaPrivateKey,
    pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    generate::{self, Generate, NewOrder, Published},
    orders::{Order, review_outcome},
    state::{Api, App, Fault, KEY_LIFETIME_DAYS, Key, Settings, SimState, World},
};

pub struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(message: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, message.into())
}

type ControlResult = Result<Json<Value>, ControlError>;

#[derive(Serialize)]
pub struct KeyInfo {
    pub version: u32,
    pub enabled: bool,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub public_pem: String,
}

impl From<&Key> for KeyInfo {
    fn from(k: &Key) -> KeyInfo {
        KeyInfo {
            version: k.version,
            enabled: k.enabled,
            issued_at: k.issued_at,
            expires_at: k.expires_at,
            public_pem: k.public_pem.clone(),
        }
    }
}

/// `GET /_sim/state`: clock, settings, apps, sellers with keys and order counts.
pub async fn state(State(sim): State<SimState>) -> Json<Value> {
    let now = sim.now();
    let world = sim.world();
    let sellers: Vec<Value> = world
        .sellers
        .iter()
        .map(|(id, s)| {
            json!({
                "seller_id": id,
                "keys": s.keys.iter().map(KeyInfo::from).collect::<Vec<_>>(),
                "orders": s.orders.len(),
                "stock_items": s.stock.len(),
            })
        })
        .collect();
    Json(json!({
        "now": now,
        "offset_ms": sim.clock().offset_ms(),
        "settings": world.settings,
        "apps": world.apps.values().collect::<Vec<_>>(),
        "sellers": sellers,
    }))
}

/// `POST /_sim/settings`: merge the given fields into the settings.
pub async fn settings(State(sim): State<SimState>, Json(patch): Json<Value>) -> ControlResult {
    let mut world = sim.world();
    let mut current = serde_json::to_value(&world.settings).map_err(|e| bad(e.to_string()))?;
    let (Some(current_map), Some(patch_map)) = (current.as_object_mut(), patch.as_object()) else {
        return Err(bad("a JSON object is required"));
    };
    for (k, v) in patch_map {
        if !current_map.contains_key(k) {
            return Err(bad(format!("unknown setting {k}")));
        }
        current_map.insert(k.clone(), v.clone());
    }
    world.settings = serde_json::from_value::<Settings>(current).map_err(|e| bad(e.to_string()))?;
    Ok(Json(serde_json::to_value(&world.settings).unwrap_or_default()))
}

#[derive(Deserialize)]
pub struct ClockChange {
    #[serde(default)]
    pub advance_secs: Option<i64>,
    #[serde(default)]
    pub offset_secs: Option<i64>,
}

/// `POST /_sim/clock`: move the clock forward, or set its offset from real time (skew).
/// A change beyond 100 years from real time is refused with 400 and changes nothing.
pub async fn clock(State(sim): State<SimState>, Json(change): Json<ClockChange>) -> ControlResult {
    if let Err(e) = sim.change_clock(change.offset_secs, change.advance_secs) {
        return Err(bad(e.to_string()));
    }
    Ok(Json(json!({ "now": sim.now(), "offset_ms": sim.clock().offset_ms() })))
}

/// `POST /_sim/apps`: register or replace an app.
pub async fn add_app(State(sim): State<SimState>, Json(app): Json<App>) -> ControlResult {
    if app.client_id.is_empty() || app.client_secret.is_empty() {
        return Err(bad("client_id and client_secret are required"));
    }
    sim.world().apps.insert(app.client_id.clone(), app.clone());
    Ok(Json(json!(app)))
}

#[derive(Default, Deserialize)]
pub struct IssueKey {
    /// A private key to use instead of generating one (PKCS#1 or PKCS#8 PEM); tests use
    /// fixed keys because generating 2048-bit keys is slow in debug builds.
    #[serde(default)]
    pub private_pem: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

const TWO_KEY_LIMIT: &str = "有効にできる鍵は2つまでです";

/// Issues a key for a seller the way ストアクリエイターPro does: next version, one year, 有効.
pub async fn issue_key(sim: &SimState, seller_id: &str, spec: IssueKey) -> Result<KeyInfo, ControlError> {
    let private = match spec.private_pem {
        Some(pem) => RsaPrivateKey::from_pkcs8_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(&pem))
            .map_err(|_| bad("private_pem is not an RSA private key"))?,
        None => tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048))
            .await
            .map_err(|e| bad(e.to_string()))?
            .map_err(|e| bad(e.to_string()))?,
    };
    let public_pem = RsaPublicKey::from(&private).to_public_key_pem(LineEnding::LF).map_err(|e| bad(e.to_string()))?;
    let now = sim.now();
    let mut world = sim.world();
    let seller = world.seller_mut(seller_id);
    let version = spec.version.unwrap_or_else(|| seller.keys.iter().map(|k| k.version).max().unwrap_or(0) + 1);
    if version == 0 || seller.key(version).is_some() {
        return Err(ControlError(StatusCode::CONFLICT, format!("version {version} already exists")));
    }
    let enabled = spec.enabled.unwrap_or(true);
    if enabled && seller.keys.iter().filter(|k| k.enabled).count() >= 2 {
        return Err(ControlError(StatusCode::CONFLICT, TWO_KEY_LIMIT.into()));
    }
    let key = Key {
        version,
        public_pem,
        private: Arc::new(private),
        enabled,
        issued_at: now,
        expires_at: spec.expires_at.unwrap_or(now + Duration::days(KEY_LIFETIME_DAYS)),
    };
    let info = KeyInfo::from(&key);
    seller.keys.push(key);
    Ok(info)
}

pub async fn add_key(
    State(sim): State<SimState>,
    Path(seller_id): Path<String>,
    body: Option<Json<IssueKey>>,
) -> ControlResult {
    let spec = body.map(|Json(b)| b).unwrap_or_default();
    let info = issue_key(&sim, &seller_id, spec).await?;
    Ok(Json(json!(info)))
}

#[derive(Deserialize)]
pub struct KeyChange {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Switches a key 有効/無効 (refusing a third 有効 key) or sets its expiry.
pub fn change_key(
    world: &mut World,
    seller_id: &str,
    version: u32,
    change: &KeyChange,
) -> Result<KeyInfo, ControlError> {
    let seller =
        world.sellers.get_mut(seller_id).ok_or_else(|| ControlError(StatusCode::NOT_FOUND, "no such seller".into()))?;
    let others_enabled = seller.keys.iter().filter(|k| k.enabled && k.version != version).count();
    let key = seller
        .keys
        .iter_mut()
        .find(|k| k.version == version)
        .ok_or_else(|| ControlError(StatusCode::NOT_FOUND, "no such key".into()))?;
    if change.enabled == Some(true) && !key.enabled && others_enabled >= 2 {
        return Err(ControlError(StatusCode::CONFLICT, TWO_KEY_LIMIT.into()));
    }
    if let Some(enabled) = change.enabled {
        key.enabled = enabled;
    }
    if let Some(expires_at) = change.expires_at {
        key.expires_at = expires_at;
    }
    Ok(KeyInfo::from(&*key))
}

pub async fn update_key(
    State(sim): State<SimState>,
    Path((seller_id, version)): Path<(String, u32)>,
    Json(change): Json<KeyChange>,
) -> ControlResult {
    let info = change_key(&mut sim.world(), &seller_id, version, &change)?;
    Ok(Json(json!(info)))
}

/// `POST /_sim/sellers/{seller}/orders`: one order with chosen items and any of the fields of
/// [`NewOrder`]; 400 for a value Yahoo would never hold.
pub async fn add_order(
    State(sim): State<SimState>,
    Path(seller_id): Path<String>,
    Json(spec): Json<NewOrder>,
) -> ControlResult {
    let now = sim.now();
    let mut world = sim.world();
    let seller = world.seller_mut(&seller_id);
    let seed = seller.next_order_number + 1;
    // Checked before an ID is handed out, so a refused order leaves no gap.
    let order = generate::single(&seller_id, String::new(), &spec, now, seed).map_err(bad)?;
    let id = seller.next_order_id(&seller_id);
    let order = Order { order_id: id.clone(), ..order };
    seller.orders.insert(id, Arc::new(order.clone()));
    Ok(Json(json!(order)))
}

/// Adds generated orders to a seller as a scene that was already there: each published at its
/// order time (the demo's first orders, benchmarks). Returns (created, held).
pub fn generate_into(sim: &SimState, seller_id: &str, spec: &Generate) -> (usize, usize) {
    generate_published(sim, seller_id, spec, Published::OrderTime)
}

/// Adds generated orders to a seller, published as `published` says. Returns (created, held).
pub fn generate_published(sim: &SimState, seller_id: &str, spec: &Generate, published: Published) -> (usize, usize) {
    let now = sim.now();
    let mut world = sim.world();
    let seller = world.seller_mut(seller_id);
    let orders = generate::bulk(seller_id, spec, now, || seller.next_order_id(seller_id));
    let held = orders.iter().filter(|o| o.fraud_hold_status == 1).count();
    let created = orders.len();
    for mut order in orders {
        if published == Published::Now {
            order.publication_time = now - chrono::Duration::nanoseconds(now.timestamp_subsec_nanos().into());
        }
        seller.orders.insert(order.order_id.clone(), Arc::new(order));
    }
    (created, held)
}

/// `orders/generate`'s body: [`Generate`] and when the orders are published (default now).
#[derive(Deserialize)]
pub struct GenerateRequest {
    #[serde(flatten)]
    pub spec: Generate,
    #[serde(default)]
    pub published: Published,
}

pub async fn generate(
    State(sim): State<SimState>,
    Path(seller_id): Path<String>,
    Json(request): Json<GenerateRequest>,
) -> ControlResult {
    if request.spec.count > 1_000_000 {
        return Err(bad("count must be at most 1,000,000"));
    }
    let (created, held) = generate_published(&sim, &seller_id, &request.spec, request.published);
    Ok(Json(json!({ "created": created, "held": held })))
}

/// `GET /_sim/sellers/{seller}/orders`: every order as it is now.
pub async fn snapshot(State(sim): State<SimState>, Path(seller_id): Path<String>) -> Json<Vec<Order>> {
    let world = sim.world();
    Json(world.sellers.get(&seller_id).map(|s| s.orders.values().map(|o| (**o).clone()).collect()).unwrap_or_default())
}

/// The daily fraud review, on demand: every order in status 1 becomes 2 or 3 by its category,
/// with PublicationTime set to the review time. Returns (released, confirmed).
pub fn run_review(sim: &SimState) -> (usize, usize) {
    let now = sim.now();
    let (mut released, mut confirmed) = (0, 0);
    let mut world = sim.world();
    for seller in world.sellers.values_mut() {
        for order in seller.orders.values_mut() {
            if let Some(outcome) = review_outcome(order) {
                let o = Arc::make_mut(order);
                o.fraud_hold_status = outcome;
                o.publication_time = now;
                o.touch(now);
                if outcome == 2 { released += 1 } else { confirmed += 1 }
            }
        }
    }
    world.count("review.runs");
    (released, confirmed)
}

pub async fn review(State(sim): State<SimState>) -> Json<Value> {
    let (released, confirmed) = run_review(&sim);
    Json(json!({ "released": released, "confirmed": confirmed }))
}

pub async fn add_fault(State(sim): State<SimState>, Json(fault): Json<Fault>) -> ControlResult {
    if !(0.0..=1.0).contains(&fault.share) {
        return Err(bad("share must be between 0 and 1"));
    }
    if fault.api == Api::Token && fault.kind.store_api_only() {
        return Err(bad(format!(
            "{} answers in the store APIs' XML; the token endpoint does not take it",
            fault.kind.as_str()
        )));
    }
    sim.world().faults.push(fault.clone());
    Ok(Json(json!(fault)))
}

pub async fn clear_faults(State(sim): State<SimState>) -> StatusCode {
    sim.world().faults.clear();
    StatusCode::NO_CONTENT
}

pub async fn counters(State(sim): State<SimState>) -> Json<Value> {
    Json(json!(sim.world().counters))
}

pub async fn reset_counters(State(sim): State<SimState>) -> StatusCode {
    sim.world().counters.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
pub struct Revoke {
    pub seller_id: String,
    #[serde(default)]
    pub client_id: Option<String>,
}

/// Revokes the authorizations of a seller (for one app or all): refreshes then get `invalid_grant`.
pub async fn revoke(State(sim): State<SimState>, Json(r): Json<Revoke>) -> Json<Value> {
    let mut world = sim.world();
    let mut n = 0;
    for grant in world.grants.values_mut() {
        if grant.seller_id == r.seller_id
            && r.client_id.as_ref().is_none_or(|c| *c == grant.client_id)
            && !grant.revoked
        {
            grant.revoked = true;
            n += 1;
        }
    }
    Json(json!({ "revoked": n }))
}

/// A seller's stock: `{ "code": quantity, … }`.
pub async fn stock(State(sim): State<SimState>, Path(seller_id): Path<String>) -> Json<Value> {
    let mut world = sim.world();
    let stock: serde_json::Map<String, Value> =
        world.seller_mut(&seller_id).stock.iter().map(|(code, s)| (code.clone(), json!(s.quantity))).collect();
    Json(Value::Object(stock))
}

#[derive(Deserialize)]
pub struct SetStock {
    pub item_code: String,
    pub quantity: i64,
}

pub async fn set_stock(
    State(sim): State<SimState>,
    Path(seller_id): Path<String>,
    Json(s): Json<SetStock>,
) -> StatusCode {
    let now = sim.now();
    let mut world = sim.world();
    world.seller_mut(&seller_id).stock.insert(
        s.item_code,
        super::state::Stock { quantity: s.quantity, allow_overdraft: false, is_published: true, update_time: now },
    );
    StatusCode::NO_CONTENT
}
