//! 納品書 and ピッキングリスト (issue 28): choosing orders (on the order list, or a label file's
//! orders on the 出荷 page) and pressing one of the two opens a print batch: what will be
//! printed, what is left out and why, and the PDF link. Each store's 納品書 settings live here
//! too. The work is `crate::documents`'s; this module reads forms and renders pages.

use askama::Template;
use axum::{
    body::Body,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    db::{
        audit,
        documents::{self as store, Batch, DocumentKind, DocumentSettings, LeftOut},
        orders::{self, HistoryActor, OrderPk},
    },
    documents::{self, MAX_ORDERS, pdf::Paper},
    domain::{StoreId, invoice, jst},
};

#[derive(Template)]
#[template(path = "documents/refused.html")]
pub struct RefusedPage {
    layout: Layout,
    kind: DocumentKind,
    message: String,
}

/// `POST /documents`: a print batch of the ticked orders (or of a label file's orders).
pub async fn create(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let kind = DocumentKind::parse(&field("document")).unwrap_or(DocumentKind::Slip);
    let scope = me.scope().await?;
    let ticked = pairs.iter().filter(|(k, _)| k == "order").count();
    let mut pks = input::ticked_orders(&pairs, MAX_ORDERS + 1);
    if let Ok(export_id) = field("export").parse::<i64>() {
        pks = store::export_orders(&state.db, &scope, export_id).await?;
    }
    let refused = |message: String| async {
        let layout = me.layout(kind.label()).await?;
        AppResult::Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&RefusedPage { layout, kind, message })).into_response())
    };
    if ticked > MAX_ORDERS {
        return refused(documents::too_many(ticked)).await;
    }
    let actor = HistoryActor::User(me.user.email.clone());
    let unpaid_confirmed = !field("unpaid_confirmed").is_empty();
    let now = crate::db::now();
    match documents::create_batch(&state.db, &scope, kind, &pks, unpaid_confirmed, &actor, now).await? {
        Err(message) => refused(message).await,
        Ok(id) => {
            me.audit(audit::Action::DocumentsPrinted, &format!("{}の印刷バッチ #{id}を作成", kind.label()), &ip)
                .await?;
            Ok(Redirect::to(&format!("/documents/{id}")).into_response())
        }
    }
}

/// One printed order on the batch page.
pub struct PrintedLine {
    pub pk: OrderPk,
    pub order_id: String,
    pub store_name: String,
}

#[derive(Template)]
#[template(path = "documents/batch.html")]
pub struct BatchPage {
    layout: Layout,
    batch: Batch,
    created_at: String,
    printed: Vec<PrintedLine>,
    excluded: Vec<LeftOut>,
}

/// `GET /documents/{batch_id}`: what the batch prints and what it left out, with the PDF link.
pub async fn show(State(state): State<AppState>, me: Merchant, Path(batch_id): Path<i64>) -> AppResult<Response> {
    let scope = me.scope().await?;
    let Some(batch) = documents::batch(&state.db, &scope, batch_id).await? else {
        return Err(AppError::NotFound);
    };
    let stores: std::collections::HashMap<StoreId, String> =
        crate::db::stores::links(&state.db, scope.account).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let rows = orders::read_rows(&state.db, &scope, &batch.orders).await?;
    let mut by_pk: std::collections::HashMap<OrderPk, orders::OrderRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let printed = batch
        .orders
        .iter()
        .filter_map(|pk| by_pk.remove(pk))
        .map(|r| PrintedLine {
            pk: r.id,
            order_id: r.order_id.clone(),
            store_name: stores.get(&r.store_id).cloned().unwrap_or_default(),
        })
        .collect();
    let layout = me.layout(&format!("{} 印刷バッチ #{}", batch.kind.label(), batch.id)).await?;
    let created_at = batch.created_at.with_timezone(&jst::offset()).format("%Y-%m-%d %H:%M").to_string();
    let excluded = batch.excluded.clone();
    Ok(ok(&BatchPage { layout, batch, created_at, printed, excluded }))
}

/// `GET /documents/{batch_id}/pdf`: the batch's PDF, made now (orders held since the batch was
/// made are left out: the gate is asked again).
pub async fn pdf(State(state): State<AppState>, me: Merchant, Path(batch_id): Path<i64>) -> AppResult<Response> {
    let scope = me.scope().await?;
    let Some(batch) = documents::batch(&state.db, &scope, batch_id).await? else {
        return Err(AppError::NotFound);
    };
    if batch.orders.is_empty() {
        return Err(AppError::NotFound);
    }
    let rendered = match documents::render(&state.db, &scope, &batch, crate::db::now()).await? {
        Ok(r) => r,
        Err(message) => {
            let layout = me.layout(batch.kind.label()).await?;
            return Ok((StatusCode::FORBIDDEN, ok(&RefusedPage { layout, kind: batch.kind, message })).into_response());
        }
    };
    let name = format!("{}-{}.pdf", if batch.kind == DocumentKind::Slip { "nohinsho" } else { "picking" }, batch.id);
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("inline; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from(rendered.pdf),
    )
        .into_response();
    if let Ok(v) = rendered.left_out_now.len().to_string().parse() {
        response.headers_mut().insert("x-left-out-now", v);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "documents/settings.html")]
pub struct SettingsPage {
    layout: Layout,
    store_id: StoreId,
    store_name: String,
    s: DocumentSettings,
    errors: Vec<String>,
    papers: [Paper; 3],
}

/// `GET /stores/{store_id}/documents`: the store's 納品書 settings (owners).
pub async fn settings_form(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = owner.store(store_id).await?;
    let s = store::settings(&state.db, owner.account_id(), store_id).await?;
    let layout = owner.layout("納品書設定").await?;
    Ok(ok(&SettingsPage { layout, store_id, store_name: store.name, s, errors: Vec::new(), papers: Paper::ALL }))
}

/// Longest text of each setting.
const MAX_FIELD: usize = 200;
const MAX_MESSAGE: usize = 1000;

/// `POST /stores/{store_id}/documents`.
pub async fn save_settings(
    State(state): State<AppState>,
    Owner(owner): Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let store = owner.store(store_id).await?;
    let field = |name: &str| input::field(&pairs, name);
    let corporate = field("registration_kind") != "individual";
    let mut s = DocumentSettings {
        seller_name: field("seller_name"),
        address: field("address"),
        phone: field("phone"),
        registration_number: field("registration_number"),
        registration_corporate: corporate,
        message: field("message"),
        print_comments: !field("print_comments").is_empty(),
        paper: Paper::parse(&field("paper")).unwrap_or(Paper::A4).as_str().into(),
    };
    let mut errors = Vec::new();
    match invoice::registration_number(&s.registration_number, corporate) {
        Ok(n) => s.registration_number = n,
        Err(e) => errors.push(e.to_string()),
    }
    for (label, v) in [("販売者名", &s.seller_name), ("住所", &s.address), ("電話番号", &s.phone)] {
        if v.chars().count() > MAX_FIELD {
            errors.push(format!("{label}は{MAX_FIELD}文字までです"));
        }
    }
    if s.message.chars().count() > MAX_MESSAGE {
        errors.push(format!("メッセージは{MAX_MESSAGE}文字までです"));
    }
    if !errors.is_empty() {
        let layout = owner.layout("納品書設定").await?;
        let page = SettingsPage { layout, store_id, store_name: store.name, s, errors, papers: Paper::ALL };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
    }
    store::save_settings(&state.db, owner.account_id(), store_id, &s, crate::db::now()).await?;
    owner
        .audit(audit::Action::DocumentSettingsChanged, &format!("ストア「{}」の納品書設定を保存", store.name), &ip)
        .await?;
    owner.flash(FlashKind::Success, "納品書設定を保存しました").await?;
    Ok(Redirect::to(&format!("/stores/{store_id}/documents")).into_response())
}
