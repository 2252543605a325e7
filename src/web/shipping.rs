//! 出荷 (issue 33): the orders waiting for shipment, carrier label files out (from this page or
//! from the order list's selection), the files exported before, issued-data files in with a
//! preview, tracking numbers typed by hand, and a store's 出荷設定. The work itself is
//! `crate::shipping`'s; this module reads forms and renders pages.

use askama::Template;
use axum::{
    body::Body,
    extract::{Multipart, Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form, Query},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    carrier::{Carrier, Cool, LabelFormat, Problem},
    db::{
        audit,
        orders::{HistoryActor, OrderPk},
        shipping::{self as store, ExportView, NewTracking, Settings, ShipOrder, TrackingOutcome, Upload, UploadRow},
    },
    domain::{StoreId, jst, shipping::MappingRow},
    shipping::{self, Excluded, LabelOutcome, LabelRequest, TrackingPreview},
};

/// Orders listed on the 出荷 page at most (the order list's filters reach the rest).
const PAGE_LIMIT: i64 = 500;

/// Orders one label export takes at most when it is asked for a whole filtered list.
pub const FILTERED_LIMIT: usize = 10_000;

/// `/shipping/labels?all=1&…`: the order list's 「この条件の全件」, with its filter.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AllOf {
    #[serde(default)]
    all: String,
    #[serde(flatten)]
    list: super::order_list::ListQuery,
}

/// Every order of the order list's filter in the reader's scope, in the list's order; `Err`
/// with the message when the filter cannot be read or holds more than [`FILTERED_LIMIT`].
async fn filtered_orders(
    state: &AppState,
    scope: &crate::domain::scope::OrderScope,
    q: &super::order_list::ListQuery,
) -> AppResult<Result<Vec<OrderPk>, String>> {
    let stores = crate::db::stores::visible_links(&state.db, scope).await?;
    let (filter, errors) = q.filter(&stores);
    if let Some(e) = errors.into_iter().next() {
        return Ok(Err(format!("{e}。受注一覧で条件を直してください")));
    }
    let mut out: Vec<OrderPk> = Vec::new();
    let mut after = None;
    loop {
        let lines: Vec<crate::db::order_list::Line> =
            crate::db::order_list::page(&state.db, scope, &filter, after, 1000).await?;
        let Some(last) = lines.last() else { break };
        after = Some(last.cursor(filter.sort));
        let full = lines.len() == 1000;
        out.extend(lines.iter().map(|l| l.id));
        if out.len() > FILTERED_LIMIT {
            return Ok(Err(format!(
                "この条件の注文は{FILTERED_LIMIT}件を超えています。一度に出力できるのは{FILTERED_LIMIT}件までです。日付やストアで絞り込んでください"
            )));
        }
        if !full {
            break;
        }
    }
    Ok(Ok(out))
}

/// One order of the 出荷 page, with what the gate says of it.
pub struct WaitingLine {
    pub order: ShipOrder,
    pub recipient: String,
    pub blocked: Option<String>,
}

#[derive(Template)]
#[template(path = "shipping/index.html")]
pub struct ShippingPage {
    layout: Layout,
    lines: Vec<WaitingLine>,
    exports: Vec<ExportView>,
    formats: [LabelFormat; 3],
    carriers: [Carrier; 3],
    today: String,
    masked: bool,
}

pub async fn index(State(state): State<AppState>, me: Merchant) -> AppResult<Response> {
    let scope = me.scope().await?;
    let pks = store::awaiting(&state.db, &scope, PAGE_LIMIT).await?;
    let orders = store::orders(&state.db, &scope, &pks).await?;
    let settings = store::settings_of(&state.db, scope.account, orders.iter().map(|o| o.store_id).collect()).await?;
    let mut lines = Vec::with_capacity(orders.len());
    for o in orders {
        let prepay = &settings[&o.store_id].0.prepay_methods;
        let blocked = crate::domain::shipping::may_leave(&o.leave_facts(prepay), false).err().map(|e| e.to_string());
        let mut recipient = o.recipient_name();
        scope.mask_fields([&mut recipient]);
        lines.push(WaitingLine { order: o, recipient, blocked });
    }
    let exports = store::exports(&state.db, &scope, 20).await?;
    let layout = me.layout("出荷").await?;
    let today = jst::today(crate::db::now()).to_string();
    Ok(ok(&ShippingPage {
        layout,
        lines,
        exports,
        formats: LabelFormat::ALL,
        carriers: Carrier::ALL,
        today,
        masked: scope.mask_personal,
    }))
}

#[derive(Template)]
#[template(path = "shipping/labels.html")]
pub struct LabelsPage {
    layout: Layout,
    format: LabelFormat,
    problems: Vec<Problem>,
    excluded: Vec<Excluded>,
    already: Vec<Excluded>,
    /// After a refusal: the orders without problems, offered for export on their own.
    fine: Vec<OrderPk>,
    export_id: Option<i64>,
    rows: usize,
    message: Option<String>,
    /// The ship date asked for, to offer a re-export with it.
    ship_date: String,
}

/// A date typed in a form (`2026-12-07`, or with slashes).
fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    let s = s.trim();
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").or_else(|_| chrono::NaiveDate::parse_from_str(s, "%Y/%m/%d")).ok()
}

/// Writes a label file for the chosen orders (from the 出荷 page or the order list).
pub async fn labels(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Query(all_of): Query<AllOf>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let mut orders = input::ticked_orders(&pairs, FILTERED_LIMIT);
    let now = crate::db::now();
    let today = jst::today(now);
    let format = LabelFormat::parse(&field("format")).unwrap_or(LabelFormat::B2);
    let date_text = field("ship_date");
    let mut page = LabelsPage {
        layout: me.layout("送り状データ").await?,
        format,
        problems: Vec::new(),
        excluded: Vec::new(),
        already: Vec::new(),
        fine: Vec::new(),
        export_id: None,
        rows: 0,
        message: None,
        ship_date: if date_text.is_empty() { today.to_string() } else { date_text.clone() },
    };
    let ship_date = if date_text.is_empty() { Some(today) } else { parse_date(&date_text) };
    let Some(ship_date) = ship_date else {
        page.message = Some(format!("出荷予定日「{date_text}」は日付として読めません（例: 2026-12-07）"));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
    };
    let scope = me.scope().await?;
    if all_of.all == "1" {
        match filtered_orders(&state, &scope, &all_of.list).await? {
            Ok(all) => orders = all,
            Err(message) => {
                page.message = Some(message);
                return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
            }
        }
    }
    if orders.is_empty() {
        page.message = Some(
            if all_of.all == "1" {
                "この条件の注文はありません"
            } else {
                "注文を選んでください"
            }
            .into(),
        );
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
    }
    let req = LabelRequest {
        orders,
        format,
        ship_date,
        reexport: !field("reexport").is_empty(),
        unpaid_confirmed: !field("unpaid_confirmed").is_empty(),
    };
    match shipping::export_labels(&state.db, &scope, &req, &me.user.email, today, now).await? {
        Err(message) => {
            page.message = Some(message.to_owned());
            return Ok((StatusCode::FORBIDDEN, ok(&page)).into_response());
        }
        Ok(LabelOutcome::Refused { problems, excluded, fine }) => {
            page.problems = problems;
            page.excluded = excluded;
            page.fine = fine;
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
        }
        Ok(LabelOutcome::Empty { excluded, already }) => {
            page.excluded = excluded;
            page.already = already;
            page.message = Some("出力できる注文がありません。下の理由を確認してください".into());
        }
        Ok(LabelOutcome::Written { export_id, rows, excluded, already }) => {
            me.audit(
                audit::Action::LabelsExported,
                &format!(
                    "送り状データ（{}）を出力: {rows}件{}",
                    format.label(),
                    if req.reexport { "（再出力）" } else { "" }
                ),
                &ip,
            )
            .await?;
            page.export_id = Some(export_id);
            page.rows = rows;
            page.excluded = excluded;
            page.already = already;
        }
    }
    Ok(ok(&page))
}

/// Downloads an export's file again (it is kept as written).
pub async fn export_file(
    State(state): State<AppState>,
    me: Merchant,
    Path(export_id): Path<i64>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    if scope.mask_personal {
        return Err(AppError::Forbidden);
    }
    let Some((name, content_type, body)) = store::export_file(&state.db, &scope, export_id).await? else {
        return Err(AppError::NotFound);
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from(body),
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "shipping/tracking.html")]
pub struct TrackingPage {
    layout: Layout,
    upload: Upload,
    rows: Vec<UploadRow>,
    today: String,
    again: bool,
}

impl TrackingPage {
    fn count(&self, outcome: &str) -> usize {
        self.rows.iter().filter(|r| r.outcome == outcome).count()
    }

    fn format_label(&self) -> &'static str {
        LabelFormat::parse(&self.upload.format).map_or("不明", |f| f.label())
    }

    fn outcome_label(outcome: &str) -> &'static str {
        match outcome {
            "matched" => "登録できます",
            "unknown" => "見つかりません",
            "held" => "不正保留（登録しません）",
            "unpaid" => "入金前",
            "same" => "登録済み",
            "conflict" => "別の番号が登録済み",
            "invalid" => "番号の誤り",
            "applied" => "登録しました",
            "refused" => "登録できませんでした",
            _ => "不明",
        }
    }
}

/// Largest issued-data file read.
pub const TRACKING_FILE_LIMIT: usize = 10 * 1024 * 1024;

/// Reads an uploaded issued-data file and shows the preview. Nothing changes yet.
pub async fn tracking_upload(
    State(state): State<AppState>,
    me: Merchant,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let Some((file_name, bytes)) = super::input::uploaded_file(&mut multipart).await? else {
        me.flash(FlashKind::Error, "伝票番号のファイルを選んでください").await?;
        return Ok(Redirect::to("/shipping").into_response());
    };
    if bytes.len() > TRACKING_FILE_LIMIT {
        me.flash(FlashKind::Error, "ファイルが大きすぎます（10MBまで）。分けて取り込んでください").await?;
        return Ok(Redirect::to("/shipping").into_response());
    }
    let scope = me.scope().await?;
    match shipping::preview_tracking(&state.db, &scope, &file_name, &bytes, &me.user.email, crate::db::now()).await? {
        TrackingPreview::Saved(id) => Ok(Redirect::to(&format!("/shipping/tracking/{id}")).into_response()),
        TrackingPreview::Again(id) => {
            me.flash(
                FlashKind::Error,
                "このファイルは取込済みです。同じファイルをもう一度取り込んでも何も変わりません",
            )
            .await?;
            Ok(Redirect::to(&format!("/shipping/tracking/{id}")).into_response())
        }
        TrackingPreview::Unreadable(message) => {
            me.flash(FlashKind::Error, format!("{message}（何も変更していません）")).await?;
            Ok(Redirect::to("/shipping").into_response())
        }
    }
}

/// An upload's preview (or, once applied, its outcome per row).
pub async fn tracking_show(
    State(state): State<AppState>,
    me: Merchant,
    Path(upload_id): Path<i64>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let Some((upload, rows)) = store::upload(&state.db, scope.account, upload_id).await? else {
        return Err(AppError::NotFound);
    };
    // A row of a store outside the reader's scope is not theirs to see: an upload that has one
    // is not found for them.
    let pks: Vec<OrderPk> = rows.iter().filter_map(|r| r.order_pk).collect();
    let visible = store::orders(&state.db, &scope, &pks).await?.len();
    let mut distinct = pks.clone();
    distinct.sort_by_key(|p| p.0);
    distinct.dedup();
    if visible < distinct.len() {
        return Err(AppError::NotFound);
    }
    let layout = me.layout("伝票番号の取込").await?;
    let again = upload.state == "applied";
    let today = jst::today(crate::db::now()).to_string();
    Ok(ok(&TrackingPage { layout, upload, rows, today, again }))
}

/// Applies a previewed upload's rows.
pub async fn tracking_apply(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(upload_id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let scope = me.scope().await?;
    let back = format!("/shipping/tracking/{upload_id}");
    let now = crate::db::now();
    let text = field("ship_date");
    let Some(ship_date) = (if text.is_empty() { Some(jst::today(now)) } else { parse_date(&text) }) else {
        me.flash(FlashKind::Error, format!("出荷日「{text}」は日付として読めません（何も変更していません）")).await?;
        return Ok(Redirect::to(&back).into_response());
    };
    let actor = HistoryActor::User(me.user.email.clone());
    let confirm = !field("unpaid_confirmed").is_empty();
    let Some(applied) = shipping::apply_tracking(&state.db, &scope, upload_id, ship_date, confirm, &actor, now).await?
    else {
        return Err(AppError::NotFound);
    };
    me.audit(audit::Action::TrackingImported, &format!("伝票番号を取込: {}件を登録", applied.set), &ip).await?;
    let refused = if applied.refused > 0 {
        format!("{}件は登録できませんでした（理由は下の表）。", applied.refused)
    } else {
        String::new()
    };
    me.flash(
        FlashKind::Success,
        format!("{}件の伝票番号を登録し、出荷済みにしました。{refused}Yahoo!への反映を送信します", applied.set),
    )
    .await?;
    Ok(Redirect::to(&back).into_response())
}

/// One line of the hand-typed numbers and what became of it.
pub struct ManualResult {
    pub line: usize,
    pub order_id: String,
    pub pk: Option<OrderPk>,
    pub number: String,
    pub done: bool,
    pub message: String,
}

#[derive(Template)]
#[template(path = "shipping/manual.html")]
pub struct ManualPage {
    layout: Layout,
    results: Vec<ManualResult>,
    carrier: Carrier,
}

impl ManualPage {
    fn done_count(&self) -> usize {
        self.results.iter().filter(|r| r.done).count()
    }
}

/// Tracking numbers typed or pasted as `注文ID 伝票番号` lines, with the carrier chosen.
pub async fn manual(
    State(state): State<AppState>,
    me: Merchant,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let Some(carrier) = Carrier::parse(&field("carrier")) else {
        me.flash(FlashKind::Error, "配送会社を選んでください（何も変更していません）").await?;
        return Ok(Redirect::to("/shipping").into_response());
    };
    let now = crate::db::now();
    let text = field("ship_date");
    let Some(ship_date) = (if text.is_empty() { Some(jst::today(now)) } else { parse_date(&text) }) else {
        me.flash(FlashKind::Error, format!("出荷日「{text}」は日付として読めません（何も変更していません）")).await?;
        return Ok(Redirect::to("/shipping").into_response());
    };
    let unpaid_confirmed = !field("unpaid_confirmed").is_empty();
    let scope = me.scope().await?;
    let actor = HistoryActor::User(me.user.email.clone());
    let mut results = Vec::new();
    for (i, raw) in field("lines").lines().enumerate().take(2000) {
        let raw = input::normalize("lines", raw);
        let cells: Vec<&str> = raw.split([',', '\t', ' ']).map(str::trim).filter(|c| !c.is_empty()).collect();
        if cells.is_empty() {
            continue;
        }
        let mut r = ManualResult {
            line: i + 1,
            order_id: cells[0].to_owned(),
            pk: None,
            number: cells.get(1).map(|s| s.to_string()).unwrap_or_default(),
            done: false,
            message: String::new(),
        };
        if cells.len() != 2 {
            r.message = "「注文ID 伝票番号」の形で1行に1件書いてください".into();
            results.push(r);
            continue;
        }
        if let Err(e) = carrier.check_number(&r.number) {
            r.message = e;
            results.push(r);
            continue;
        }
        let Some(o) = store::order_by_yahoo_id(&state.db, &scope, &r.order_id).await? else {
            r.message = "注文が見つかりません".into();
            results.push(r);
            continue;
        };
        r.pk = Some(o.pk);
        let (settings, rows) = store::settings(&state.db, scope.account, o.store_id).await?;
        let fallback = settings.fallback();
        let row = crate::domain::shipping::choose(&rows, &fallback, &o.ship_method, &o.pay_method).clone();
        let shipments = store::ensure_shipments(&state.db, scope.account, &[(&o, &row)], now).await?;
        let Some(sh) = shipments.iter().find(|s| s.tracking_number.is_none()).or(shipments.first()) else {
            r.message = "出荷を作れませんでした".into();
            results.push(r);
            continue;
        };
        let t = NewTracking {
            shipment_id: sh.id,
            order_pk: o.pk,
            carrier,
            number: r.number.clone(),
            ship_date,
            unpaid_confirmed,
        };
        match store::set_tracking(&state.db, &scope, &t, &actor, now).await? {
            TrackingOutcome::Set(_) => {
                r.done = true;
                r.message = "登録して出荷済みにしました（Yahoo!への反映を送信待ち）".into();
            }
            TrackingOutcome::Same => r.message = "この伝票番号は登録済みです".into(),
            TrackingOutcome::Conflict(n) => r.message = format!("別の伝票番号（{n}）が登録されています"),
            TrackingOutcome::Refused(why) => r.message = why.to_string(),
        }
        results.push(r);
    }
    if results.is_empty() {
        me.flash(FlashKind::Error, "「注文ID 伝票番号」の行を入力してください").await?;
        return Ok(Redirect::to("/shipping").into_response());
    }
    let layout = me.layout("伝票番号の入力").await?;
    Ok(ok(&ManualPage { layout, results, carrier }))
}

#[derive(Template)]
#[template(path = "stores/shipping.html")]
pub struct SettingsPage {
    layout: Layout,
    store_id: StoreId,
    store_name: String,
    s: Settings,
    rows: Vec<MappingRow>,
    errors: Vec<String>,
    formats: [LabelFormat; 3],
    cools: [Cool; 3],
    services: &'static [(&'static str, &'static str)],
}

/// Empty mapping rows offered on the form below the saved ones.
const SPARE_ROWS: usize = 3;

impl SettingsPage {
    fn spare(&self) -> std::ops::Range<usize> {
        self.rows.len()..self.rows.len() + SPARE_ROWS
    }
}

pub async fn settings_form(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = owner.store(store_id).await?;
    let (s, rows) = store::settings(&state.db, owner.account_id(), store_id).await?;
    let layout = owner.layout("出荷設定").await?;
    Ok(ok(&SettingsPage {
        layout,
        store_id,
        store_name: store.name,
        s,
        rows,
        errors: Vec::new(),
        formats: LabelFormat::ALL,
        cools: Cool::ALL,
        services: crate::carrier::b2::service_types(),
    }))
}

pub async fn save_settings(
    State(state): State<AppState>,
    Owner(owner): Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let store = owner.store(store_id).await?;
    let field = |name: &str| input::field(&pairs, name);
    let s = Settings {
        sender_name: field("sender_name"),
        sender_kana: field("sender_kana"),
        sender_phone: field("sender_phone"),
        sender_zip: field("sender_zip"),
        sender_address: field("sender_address"),
        sender_building: field("sender_building"),
        b2_customer_code: field("b2_customer_code"),
        b2_class_code: field("b2_class_code"),
        b2_freight_no: field("b2_freight_no"),
        handling1: field("handling1"),
        handling2: field("handling2"),
        item_name: field("item_name"),
        ehiden_customer_code: field("ehiden_customer_code"),
        ehiden_cool_codes: field("ehiden_cool_codes"),
        ehiden_date_format: if field("ehiden_date_format") == "slashed" { "slashed".into() } else { "compact".into() },
        prepay_methods: field("prepay_methods")
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        default_format: LabelFormat::parse(&field("default_format")).unwrap_or(LabelFormat::B2).as_str().into(),
        default_service: field("default_service"),
        complete_after_days: 0,
    };
    let complete = field("complete_after_days");
    let mut errors = Vec::new();
    let s = match complete.parse::<i64>() {
        _ if complete.is_empty() => s,
        Ok(days @ 0..=60) => Settings { complete_after_days: days, ..s },
        _ => {
            errors.push("自動完了までの日数は0〜60の整数で入力してください（0は自動完了しない）".to_owned());
            s
        }
    };
    let services = crate::carrier::b2::service_types();
    let known_service = |code: &str| services.iter().any(|(c, _)| *c == code);
    if !known_service(&s.default_service) {
        errors.push(format!("送り状種類「{}」はB2クラウドの種類にありません", s.default_service));
    }
    let digits = |v: &str| v.bytes().all(|b| b.is_ascii_digit());
    if !(s.b2_customer_code.is_empty() || (10..=12).contains(&s.b2_customer_code.len()) && digits(&s.b2_customer_code))
    {
        errors.push("請求先顧客コードは10〜12桁の数字です".into());
    }
    if !(s.b2_freight_no.is_empty() || s.b2_freight_no.len() == 2 && digits(&s.b2_freight_no)) {
        errors.push("運賃管理番号は2桁の数字です（例: 01）".into());
    }
    if s.ehiden_cool_codes.split(',').count() != 3 {
        errors.push("e飛伝のクール便コードは「通常,冷蔵,冷凍」の3つをカンマで区切って入力してください".into());
    }
    let mut rows = Vec::new();
    for i in 0..64 {
        let ship_method = field(&format!("map_{i}_ship"));
        let pay_method = field(&format!("map_{i}_pay"));
        let format = field(&format!("map_{i}_format"));
        if format.is_empty() {
            continue;
        }
        if field(&format!("map_{i}_delete")) == "on" {
            continue;
        }
        let service = field(&format!("map_{i}_service"));
        let Some(format) = LabelFormat::parse(&format) else { continue };
        if format == LabelFormat::B2 && !known_service(&service) {
            errors.push(format!("{}行目: 送り状種類「{service}」はB2クラウドの種類にありません", i + 1));
        }
        if ship_method.is_empty() && pay_method.is_empty() {
            errors.push(format!("{}行目: 配送方法か支払方法のどちらかを入力してください（空の行はすべてに当てはまります。すべてに当てはめるときは下の「どれにも当てはまらないとき」を使ってください）", i + 1));
        }
        let cool = Cool::parse(&field(&format!("map_{i}_cool"))).unwrap_or(Cool::Normal);
        rows.push(MappingRow { ship_method, pay_method, format, service, cool });
    }
    if !errors.is_empty() {
        let layout = owner.layout("出荷設定").await?;
        let page = SettingsPage {
            layout,
            store_id,
            store_name: store.name,
            s,
            rows,
            errors,
            formats: LabelFormat::ALL,
            cools: Cool::ALL,
            services,
        };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
    }
    store::save_settings(&state.db, owner.account_id(), store_id, &s, &rows, crate::db::now()).await?;
    let note = owner.note(audit::Action::StoreUpdated, format!("{}: 出荷設定を保存", store.name), &ip);
    owner.record(&note.store(store_id)).await?;
    owner.flash(FlashKind::Success, "出荷設定を保存しました").await?;
    Ok(Redirect::to(&format!("/stores/{store_id}/shipping")).into_response())
}

/// 荷物を分ける: the order page's parcel table adds a parcel, removes an extra one, or sets a
/// parcel's 個口数 and 品名 (`db::shipping::edit_parcels`), then returns to the order.
pub async fn parcels(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let scope = me.scope().await?;
    // Another account's order, or a store this member may not work: not found, whatever is asked.
    if store::orders(&state.db, &scope, &[order_id]).await?.is_empty() {
        return Err(AppError::NotFound);
    }
    let back = format!("/orders/{order_id}#shipments");
    let parcel_no = field("parcel_no").parse::<i64>().unwrap_or(0);
    let edit = match field("action").as_str() {
        "add" => store::ParcelEdit::Add,
        "remove" => store::ParcelEdit::Remove(parcel_no),
        "save" => match field("packages").parse::<i64>() {
            Ok(packages) => store::ParcelEdit::Set { parcel_no, packages, item_name: field("item_name") },
            Err(_) => {
                me.flash(FlashKind::Error, "個口数は1〜99の数字で入力してください（変えていません）").await?;
                return Ok(Redirect::to(&back).into_response());
            }
        },
        _ => return Err(AppError::BadRequest("操作を選んでください")),
    };
    let actor = HistoryActor::User(me.user.email.clone());
    match store::edit_parcels(&state.db, &scope, order_id, &edit, &actor, crate::db::now()).await? {
        Ok(done) => me.flash(FlashKind::Success, &done).await?,
        Err("注文が見つかりません") => return Err(AppError::NotFound),
        Err(why) => me.flash(FlashKind::Error, &format!("{why}（変えていません）")).await?,
    }
    Ok(Redirect::to(&back).into_response())
}
