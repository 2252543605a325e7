//! The small Japanese HTML view for people: clock, apps, each seller's keys (with a コピー
//! button that works only while the key is 有効), recent orders, and the review button.
//! It is a local test tool; its forms post to `/_sim/view/…` and come back here.

use askama::Template;
use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{Html, IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    control::{self, IssueKey, KeyChange, KeyInfo},
    generate::{Generate, Published},
    orders::Order,
    state::{App, HoldMode, SimState},
};
use crate::domain::jst;

struct SellerView {
    seller_id: String,
    keys: Vec<KeyInfo>,
    order_count: usize,
    recent: Vec<Order>,
}

#[derive(Template)]
#[template(path = "simulator/index.html")]
struct IndexPage {
    now: String,
    offset_secs: i64,
    strict: bool,
    rate_per_sec: f64,
    apps: Vec<App>,
    sellers: Vec<SellerView>,
    notice: Option<String>,
}

fn t(time: &chrono::DateTime<chrono::Utc>) -> String {
    jst::format_response(*time).replace('T', " ")
}

/// Yahoo's OrderStatus in words (the simulator's page shows what Store Creator Pro would).
fn status_label(status: &u8) -> &'static str {
    crate::domain::order::OrderStatus::from_code(*status).map_or("不明", crate::domain::order::OrderStatus::label)
}

fn hold_label(status: &u8) -> &'static str {
    match status {
        1 => "審査中",
        2 => "保留解除",
        3 => "不正確定",
        _ => "",
    }
}

#[derive(Deserialize)]
pub struct Notice {
    #[serde(default)]
    notice: Option<String>,
}

pub async fn index(State(sim): State<SimState>, axum::extract::Query(q): axum::extract::Query<Notice>) -> Response {
    let now = sim.now();
    let page = {
        let world = sim.world();
        IndexPage {
            now: t(&now),
            offset_secs: sim.clock().offset_ms() / 1000,
            strict: world.settings.hold_mode == HoldMode::Strict,
            rate_per_sec: world.settings.rate_per_sec,
            apps: world.apps.values().cloned().collect(),
            sellers: world
                .sellers
                .iter()
                .map(|(id, s)| SellerView {
                    seller_id: id.clone(),
                    keys: s.keys.iter().map(KeyInfo::from).collect(),
                    order_count: s.orders.len(),
                    recent: s.orders.values().rev().take(20).map(|o| (**o).clone()).collect(),
                })
                .collect(),
            notice: q.notice,
        }
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn back(notice: &str) -> Response {
    let mut url = url::Url::parse("http://x/").expect("static URL");
    url.query_pairs_mut().append_pair("notice", notice);
    Redirect::to(&format!("/?{}", url.query().unwrap_or_default())).into_response()
}

#[derive(Deserialize)]
pub struct SellerForm {
    seller_id: String,
    #[serde(default)]
    version: Option<u32>,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    count: Option<usize>,
}

pub async fn issue_key(State(sim): State<SimState>, Form(f): Form<SellerForm>) -> Response {
    match control::issue_key(&sim, f.seller_id.trim(), IssueKey::default()).await {
        Ok(info) => back(&format!("バージョン {} の鍵を発行しました", info.version)),
        Err(_) => back("鍵を発行できませんでした（有効にできる鍵は2つまでです）"),
    }
}

pub async fn toggle_key(State(sim): State<SimState>, Form(f): Form<SellerForm>) -> Response {
    let enabled = f.enabled.as_deref() == Some("1");
    let change = KeyChange { enabled: Some(enabled), expires_at: None };
    match control::change_key(&mut sim.world(), &f.seller_id, f.version.unwrap_or(0), &change) {
        Ok(_) => back(if enabled { "鍵を有効にしました" } else { "鍵を無効にしました" }),
        Err(_) => back("変更できませんでした（有効にできる鍵は2つまでです）"),
    }
}

pub async fn generate(State(sim): State<SimState>, Form(f): Form<SellerForm>) -> Response {
    let count = f.count.unwrap_or(10).min(10_000);
    let seed = sim.now().timestamp_millis() as u64;
    // Published now, so the next automatic import sees them though their order times are earlier.
    let spec = Generate { count, seed, fraud_share: 0.1, spread_hours: 24 };
    let (created, held) = control::generate_published(&sim, f.seller_id.trim(), &spec, Published::Now);
    back(&format!("{created} 件の注文を作成しました（うち不正保留 {held} 件）"))
}

pub async fn review(State(sim): State<SimState>) -> Response {
    let (released, confirmed) = control::run_review(&sim);
    back(&format!("審査しました: 保留解除 {released} 件、不正確定 {confirmed} 件"))
}

#[derive(Deserialize)]
pub struct ClockForm {
    #[serde(default)]
    advance_hours: Option<i64>,
    #[serde(default)]
    reset: Option<String>,
}

pub async fn clock(State(sim): State<SimState>, Form(f): Form<ClockForm>) -> Response {
    if f.reset.is_some() {
        sim.change_clock(Some(0), None).ok();
    }
    if let Some(hours) = f.advance_hours
        && hours.checked_mul(3600).is_none_or(|secs| sim.change_clock(None, Some(secs)).is_err())
    {
        return (StatusCode::BAD_REQUEST, "時計は現在から100年以内でしか動かせません").into_response();
    }
    back("時計を変更しました")
}

#[derive(Deserialize)]
pub struct ModeForm {
    mode: String,
}

pub async fn mode(State(sim): State<SimState>, Form(f): Form<ModeForm>) -> Response {
    sim.world().settings.hold_mode = if f.mode == "strict" { HoldMode::Strict } else { HoldMode::Display };
    back("不正保留注文の表示モードを変更しました")
}
