//! 在庫 (product.md §8): the account's stock, one quantity per item code shared by its stores.
//! List and search by code, edit one code, add a code, CSV download, CSV upload with a preview
//! (nothing changes until the merchant confirms; each bad line is named), a pull from a store
//! with getStock, and per store the pushes waiting or refused.

use askama::Template;
use axum::{
    body::Body,
    extract::{Multipart, Path, State},
    http::header,
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use serde::Deserialize;

use super::{
    csv::{Encoding, record},
    error::{AppError, AppResult},
    input::{Form, Query},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant},
};
use crate::{
    app::AppState,
    db::{
        audit,
        stock::{self, Change, StockRow},
        stores::{self, StoreLink},
    },
    domain::{
        StoreId, jst,
        stock::{CsvError, parse_code, parse_csv, parse_location, parse_location_csv, parse_quantity},
    },
};

const PAGE_SIZE: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct StockQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

/// Pushes of one store, for the page.
pub struct StorePushes {
    pub name: String,
    pub sync_on: bool,
    pub waiting: i64,
    pub failed: i64,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "stock/index.html")]
pub struct StockPage {
    layout: Layout,
    q: String,
    rows: Vec<StockRow>,
    next: Option<String>,
    stores: Vec<StoreLink>,
    pushes: Vec<StorePushes>,
    changes: Vec<Change>,
    sync_stores: usize,
    /// 棚番 by stock code (the picking list's order).
    locations: std::collections::HashMap<String, String>,
}

impl StockPage {
    fn cause(&self, c: &Change) -> &'static str {
        stock::Cause::label_for(&c.cause)
    }

    fn location(&self, code: &str) -> &str {
        self.locations.get(code).map_or("", String::as_str)
    }
}

pub async fn index(State(state): State<AppState>, me: Merchant, Query(q): Query<StockQuery>) -> AppResult<Response> {
    let account = me.account_id();
    let prefix = q.q.trim().to_owned();
    let mut rows = stock::list(&state.db, account, &prefix, &q.after, PAGE_SIZE + 1).await?;
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|r| {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &prefix)
                .append_pair("after", &r.code)
                .finish();
            format!("/stock?{query}")
        })
    } else {
        None
    };
    // Staff limited to some stores see those stores' pushes only (as everywhere else).
    let scope = me.scope().await?;
    let all_stores = stores::visible(&state.db, &scope).await?;
    let summary = stock::push_summary(&state.db, account).await?;
    let pushes = all_stores
        .iter()
        .map(|s| {
            let (waiting, failed, last_error) =
                summary.iter().find(|(id, ..)| *id == s.id).map_or((0, 0, None), |(_, w, f, e)| (*w, *f, e.clone()));
            StorePushes { name: s.name.clone(), sync_on: s.stock_sync_enabled, waiting, failed, last_error }
        })
        .collect::<Vec<_>>();
    let sync_stores = pushes.iter().filter(|p| p.sync_on).count();
    let changes = stock::recent_changes(&state.db, &scope, 20).await?;
    let layout = me.layout("在庫").await?;
    let stores = layout.nav.as_ref().map(|n| n.stores.clone()).unwrap_or_default();
    let locations = crate::db::documents::locations(&state.db, account).await?;
    Ok(ok(&StockPage { layout, q: prefix, rows, next, stores, pushes, changes, sync_stores, locations }))
}

#[derive(Debug, Default, Deserialize)]
pub struct SetForm {
    /// Not `code`: that name is the OAuth code's and is kept byte for byte by `input`.
    #[serde(default)]
    item_code: String,
    #[serde(default)]
    quantity: String,
    /// The quantity the page showed (empty for a new code).
    #[serde(default)]
    seen: String,
}

/// Sets one code's quantity (or adds a code). If an order changed it since the page was read,
/// the order's change stands and the edit is applied as the difference the person meant.
pub async fn set(State(state): State<AppState>, me: Merchant, Form(form): Form<SetForm>) -> AppResult<Response> {
    let code = match parse_code(&form.item_code) {
        Ok(c) => c,
        Err(e) => {
            me.flash(FlashKind::Error, format!("{e}（変更していません）")).await?;
            return Ok(Redirect::to("/stock").into_response());
        }
    };
    let typed = match parse_quantity(&form.quantity) {
        Ok(q) => q,
        Err(e) => {
            me.flash(FlashKind::Error, format!("{code}: {e}（変更していません）")).await?;
            return Ok(Redirect::to("/stock").into_response());
        }
    };
    let seen = form.seen.trim().parse::<i64>().ok();
    let stored =
        stock::set_manual(&state.db, me.account_id(), &code, seen, typed, &me.user.email, crate::db::now()).await?;
    if stored == typed {
        me.flash(FlashKind::Success, format!("{code} の在庫を {stored} にしました")).await?;
    } else {
        me.flash(
            FlashKind::Success,
            format!("{code}: 画面を開いた後に注文で在庫が変わったため、入力した差分を反映して {stored} にしました"),
        )
        .await?;
    }
    let back = format!("/stock?q={}", url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>());
    Ok(Redirect::to(&back).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct CsvQuery {
    #[serde(default)]
    encoding: String,
}

/// The account's stock as CSV (`商品コード,在庫数`), UTF-8 with BOM or Shift_JIS.
pub async fn download(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Query(q): Query<CsvQuery>,
) -> AppResult<Response> {
    let encoding = if q.encoding == "sjis" { Encoding::ShiftJis } else { Encoding::Utf8Bom };
    me.audit(crate::db::audit::Action::StockExported, "在庫CSV出力", &ip).await?;
    let mut text = String::new();
    record(&mut text, ["商品コード", "在庫数"]);
    for (code, quantity) in stock::all(&state.db, me.account_id()).await? {
        record(&mut text, [code.as_str(), quantity.to_string().as_str()]);
    }
    let mut bytes = if encoding == Encoding::Utf8Bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
    bytes.extend(encoding.encode(&text));
    let name = format!("stock-{}.csv", Utc::now().with_timezone(&jst::offset()).format("%Y%m%d-%H%M"));
    Ok((
        [
            (header::CONTENT_TYPE, encoding.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// One line of the upload's preview.
pub struct PreviewLine {
    pub line: usize,
    pub code: String,
    pub current: Option<i64>,
    pub quantity: i64,
}

#[derive(Template)]
#[template(path = "stock/upload.html")]
pub struct UploadPage {
    layout: Layout,
    upload_id: i64,
    file_name: String,
    encoding: &'static str,
    changes: Vec<PreviewLine>,
    unchanged: usize,
    errors: Vec<CsvError>,
}

/// Reads an uploaded CSV (UTF-8, with or without BOM, or Shift_JIS) and shows what would change
/// and each bad line. Nothing is applied until the merchant confirms.
pub async fn upload(State(state): State<AppState>, me: Merchant, mut multipart: Multipart) -> AppResult<Response> {
    let Some((file_name, bytes)) = super::input::uploaded_file(&mut multipart).await? else {
        me.flash(FlashKind::Error, "CSVファイルを選んでください").await?;
        return Ok(Redirect::to("/stock").into_response());
    };
    let (text, encoding) = match std::str::from_utf8(&bytes) {
        Ok(t) => (t.to_owned(), "UTF-8"),
        Err(_) => {
            let (t, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
            if had_errors {
                me.flash(FlashKind::Error, "CSVの文字コードが読めません。UTF-8かShift_JISで保存してください").await?;
                return Ok(Redirect::to("/stock").into_response());
            }
            (t.into_owned(), "Shift_JIS")
        }
    };
    let (good, errors) = parse_csv(&text);
    let account = me.account_id();
    let codes: Vec<String> = good.iter().map(|l| l.code.clone()).collect();
    let current = stock::quantities(&state.db, account, &codes).await?;
    let mut changes = Vec::new();
    let mut unchanged = 0;
    for l in &good {
        let now = current.get(&l.code).copied();
        if now == Some(l.quantity) {
            unchanged += 1;
        } else {
            changes.push(PreviewLine { line: l.line, code: l.code.clone(), current: now, quantity: l.quantity });
        }
    }
    let lines: Vec<(String, i64)> = good.into_iter().map(|l| (l.code, l.quantity)).collect();
    let upload_id = stock::save_upload(&state.db, account, &file_name, &lines, crate::db::now()).await?;
    let layout = me.layout("在庫CSVの確認").await?;
    Ok(ok(&UploadPage { layout, upload_id, file_name, encoding, changes, unchanged, errors }))
}

/// Applies a previewed upload (its good lines), once.
pub async fn apply(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(upload_id): Path<i64>,
) -> AppResult<Response> {
    let account = me.account_id();
    let Some((file_name, lines, _)) = stock::upload(&state.db, account, upload_id).await? else {
        return Err(AppError::NotFound);
    };
    match stock::apply_upload(&state.db, account, upload_id, &me.user.email, crate::db::now()).await? {
        Some(changed) => {
            me.audit(
                audit::Action::StockUploaded,
                &format!("在庫CSV「{file_name}」: {}行中{changed}件を変更", lines.len()),
                &ip,
            )
            .await?;
            me.flash(FlashKind::Success, format!("在庫CSVを反映しました（{changed}件を変更）")).await?;
        }
        None => me.flash(FlashKind::Error, "このCSVはすでに反映済みです").await?,
    }
    Ok(Redirect::to("/stock").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct PullForm {
    #[serde(default)]
    store: String,
}

/// Reads the quantities from one store (getStock) into the account's stock.
pub async fn pull(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Form(form): Form<PullForm>,
) -> AppResult<Response> {
    let account = me.account_id();
    let Some(store) = form.store.parse::<i64>().ok().map(StoreId) else {
        me.flash(FlashKind::Error, "取得元のストアを選んでください").await?;
        return Ok(Redirect::to("/stock").into_response());
    };
    // `Merchant::store`: a store this person may not work is 404, as on its own pages.
    let name = me.store(store).await?.name;
    match state.stock.pull(account, store, &me.user.email).await {
        Ok((asked, found)) => {
            let note = me.note(audit::Action::StockPulled, format!("{name}から在庫を取得: {asked}件中{found}件"), &ip);
            me.record(&note.store(store)).await?;
            me.flash(
                FlashKind::Success,
                format!("{name}から在庫を取得しました（{asked}件を問い合わせ、{found}件が見つかりました）"),
            )
            .await?;
        }
        Err(crate::stock::PullError::NotFound) => return Err(AppError::NotFound),
        Err(crate::stock::PullError::Yahoo(e)) => {
            tracing::warn!(store = store.0, error = %e, "stock pull failed");
            me.flash(
                FlashKind::Error,
                format!("{name}から在庫を取得できませんでした。ストアのページで連携と公開鍵を確認してください"),
            )
            .await?;
        }
        Err(crate::stock::PullError::Db(e)) => return Err(e.into()),
    }
    Ok(Redirect::to("/stock").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct LocationForm {
    #[serde(default)]
    item_code: String,
    #[serde(default)]
    location: String,
}

/// Sets one code's 棚番 (empty removes it).
pub async fn set_location(
    State(state): State<AppState>,
    me: Merchant,
    Form(form): Form<LocationForm>,
) -> AppResult<Response> {
    let parsed = parse_code(&form.item_code).and_then(|c| parse_location(&form.location).map(|l| (c, l)));
    let (code, location) = match parsed {
        Ok(v) => v,
        Err(e) => {
            me.flash(FlashKind::Error, format!("{e}（変更していません）")).await?;
            return Ok(Redirect::to("/stock#locations").into_response());
        }
    };
    crate::db::documents::set_locations(
        &state.db,
        me.account_id(),
        &[(code.clone(), location.clone())],
        crate::db::now(),
    )
    .await?;
    let said = if location.is_empty() {
        format!("{code} の棚番を消しました")
    } else {
        format!("{code} の棚番を「{location}」にしました")
    };
    me.flash(FlashKind::Success, said).await?;
    Ok(Redirect::to("/stock#locations").into_response())
}

/// A 棚番 CSV (`商品コード,棚番`): all its lines or, when any line is wrong, none.
pub async fn upload_locations(
    State(state): State<AppState>,
    me: Merchant,
    mut multipart: Multipart,
) -> AppResult<Response> {
    let Some((_, bytes)) = super::input::uploaded_file(&mut multipart).await? else {
        me.flash(FlashKind::Error, "CSVファイルを選んでください").await?;
        return Ok(Redirect::to("/stock#locations").into_response());
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t.to_owned(),
        Err(_) => {
            let (t, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
            if had_errors {
                me.flash(
                    FlashKind::Error,
                    "CSVの文字コードが読めません。UTF-8かShift_JISで保存してください（変更していません）",
                )
                .await?;
                return Ok(Redirect::to("/stock#locations").into_response());
            }
            t.into_owned()
        }
    };
    let (good, bad) = parse_location_csv(&text);
    if !bad.is_empty() {
        let first: Vec<String> = bad.iter().take(5).map(|e| format!("{}行目: {}", e.line, e.message)).collect();
        me.flash(
            FlashKind::Error,
            format!("棚番CSVに読めない行が{}行あります（何も変更していません）。{}", bad.len(), first.join(" / ")),
        )
        .await?;
        return Ok(Redirect::to("/stock#locations").into_response());
    }
    if good.is_empty() {
        me.flash(FlashKind::Error, "棚番CSVに行がありません（「商品コード,棚番」）").await?;
        return Ok(Redirect::to("/stock#locations").into_response());
    }
    crate::db::documents::set_locations(&state.db, me.account_id(), &good, crate::db::now()).await?;
    me.flash(FlashKind::Success, format!("{}件の棚番を取り込みました", good.len())).await?;
    Ok(Redirect::to("/stock#locations").into_response())
}
