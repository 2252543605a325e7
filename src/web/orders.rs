//! One order's page (product.md §6): all of Yahoo's fields grouped as Yahoo groups them, the
//! item lines, 社内メモ, the history, the pushes to Yahoo, the status change and re-import.
//! Status changes go through `db::changes::change_status` like every other path, so the
//! fraud-hold rule holds here too. The list lives in `order_list`.

use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::Utc;
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    input::{Form, Query},
    order_list::{SHIP_COMPANIES, scope_of},
    render::{FlashKind, Layout, ok},
    session::Merchant,
};
use crate::{
    app::AppState,
    db::{
        changes,
        orders::{self, HistoryActor, HistoryEntry, OrderPk, OrderRow},
        outbox, stores,
    },
    domain::{
        jst,
        order::{FRAUD_HOLD_REFUSAL, OrderStatus},
        scope::OrderScope,
        status::{self, CANCEL_REASONS, ChangeRequest, Refusal, ShipInput},
        store::InternalStatus,
    },
    yahoo::api::OrderItem,
};

#[derive(Template)]
#[template(path = "orders/show.html")]
pub struct OrderPage {
    layout: Layout,
    order: OrderRow,
    store_name: String,
    items: Vec<OrderItem>,
    history: Vec<HistoryEntry>,
    /// What was (or is to be) told to Yahoo about this order, in order.
    pushes: Vec<outbox::PushView>,
    /// Its parcels: label format, export and tracking number.
    shipments: Vec<crate::db::shipping::Shipment>,
    /// Whether its parcels may still change (not 出荷済み, 完了 or キャンセル).
    parcels_open: bool,
    /// Its tags, and the account's tags it could get.
    tags: Vec<crate::db::tags::Tag>,
    other_tags: Vec<crate::db::tags::Tag>,
    /// The statuses this order may move to (the transition table), キャンセル included.
    targets: Vec<InternalStatus>,
    /// With the store's restriction on, a held order offers only キャンセル.
    held_and_restricted: bool,
    /// A held or confirmed-fraud order of a store whose restriction is off: the page says so.
    held_unrestricted: bool,
    cancel_reasons: &'static [(u16, &'static str)],
    companies: &'static [(&'static str, &'static str)],
    today: String,
    masked: bool,
    way: ListWay,
}

impl OrderPage {
    fn hold_label(&self) -> String {
        crate::domain::order::FraudHoldStatus::label_of(u8::try_from(self.order.fraud_hold_status).unwrap_or(0))
    }

    /// What the page says of the order's fraud hold, as (CSS class, words): a confirmed fraud
    /// whose cancellation Yahoo has is said to be done, not still to do.
    fn hold_notice(&self) -> Option<(&'static str, &'static str)> {
        let yahoo_cancelled = self.order.order_status == i64::from(OrderStatus::Cancelled.code());
        let cancelled_here = self.order.internal_status() == InternalStatus::Cancelled;
        match self.order.fraud_hold_status {
            1 if self.held_unrestricted => Some((
                "diagnosis diagnosis-warning",
                "不正利用の審査中です（ルール保留審査中）。審査が終わるまで出荷しないでください。",
            )),
            1 => Some((
                "diagnosis diagnosis-warning",
                "不正利用の審査中です（ルール保留審査中）。審査が終わるまで出荷しないでください。キャンセル以外のステータス変更はできません。",
            )),
            3 if yahoo_cancelled => Some((
                "flash flash-success",
                "不正利用が確定し（ルール悪用確定）、キャンセルはYahoo!に反映されています。対応は完了です。",
            )),
            3 if cancelled_here => Some((
                "diagnosis diagnosis-warning",
                "不正利用が確定しました（ルール悪用確定）。キャンセルをYahoo!に送信しています（下の「Yahoo!への送信」で結果を確認できます）。",
            )),
            3 => Some((
                "diagnosis diagnosis-danger",
                "不正利用が確定しました（ルール悪用確定）。この注文はキャンセルしてください。",
            )),
            2 => Some(("flash flash-success", "不正保留は解除されました（ルール保留解除）。通常どおり処理できます。")),
            _ => None,
        }
    }

    fn yahoo_status(&self) -> String {
        let code = u8::try_from(self.order.order_status).unwrap_or(0);
        OrderStatus::from_code(code).map_or_else(|| format!("不明（{code}）"), |s| s.label().to_owned())
    }

    fn pay_status(&self) -> &'static str {
        match self.order.pay_status {
            Some(1) => "入金済",
            Some(0) => "未入金",
            _ => "",
        }
    }

    fn ship_status(&self) -> String {
        const LABELS: [&str; 5] = ["出荷不可", "出荷可", "出荷処理中", "出荷済み", "着荷済み"];
        match self.order.ship_status {
            Some(s) => usize::try_from(s)
                .ok()
                .and_then(|i| LABELS.get(i))
                .map_or_else(|| format!("不明（{s}）"), |l| (*l).to_owned()),
            None => String::new(),
        }
    }

    fn ship_company(&self) -> String {
        let code = self.order.ship_company_code.as_str();
        SHIP_COMPANIES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| code.to_owned(), |(_, l)| format!("{l}（{code}）"))
    }

    fn cancel_reason(&self) -> String {
        match self.order.cancel_reason {
            Some(c) => CANCEL_REASONS
                .iter()
                .find(|(k, _)| i64::from(*k) == c)
                .map_or_else(|| c.to_string(), |(_, l)| format!("{l}（{c}）")),
            None => String::new(),
        }
    }

    fn subtotal(&self) -> i64 {
        self.items.iter().map(|i| i.unit_price * i.quantity).sum()
    }

    fn options(item: &OrderItem) -> String {
        item.options.iter().map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>().join(" / ")
    }

    fn offers(&self, s: InternalStatus) -> bool {
        self.targets.contains(&s)
    }
}

/// Formats an optional date.
pub fn date(d: &Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// The order if this person may see it: their account's, in a store their scope allows.
async fn scoped_order(state: &AppState, scope: &OrderScope, pk: OrderPk) -> AppResult<(OrderRow, Vec<OrderItem>)> {
    orders::read(&state.db, scope, pk).await?.ok_or(AppError::NotFound)
}

/// The order page's query: the list it was opened from (its query string), if any.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    list: Option<String>,
}

/// Where the order page leads: back to the list it came from, and to the orders beside it there.
pub struct ListWay {
    pub back: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Query(shown): Query<ShowQuery>,
) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    let (order, items) = scoped_order(&state, &scope, order_id).await?;
    // The header holds the stores this person may see (the list's filter reads them).
    let layout = me.layout(&format!("注文 {}", order.order_id)).await?;
    let list: crate::web::order_list::ListQuery =
        shown.list.as_deref().and_then(crate::web::input::nested_query).unwrap_or_default();
    // Opened from a list: the orders beside it there (two keyset reads); from elsewhere, none.
    let (previous, next) = match shown.list {
        Some(_) => {
            let stores = layout.nav.as_ref().map_or(&[][..], |n| n.stores.as_slice());
            crate::web::order_list::neighbours(&state, &scope, &list, stores, &order).await?
        }
        None => (None, None),
    };
    let suffix = list.order_link_suffix();
    let way = ListWay {
        back: format!("/orders?{}", list.with_page()),
        previous: previous.map(|pk| format!("/orders/{pk}{suffix}")),
        next: next.map(|pk| format!("/orders/{pk}{suffix}")),
    };
    let store = stores::get(&state.db, scope.account, order.store_id).await?.ok_or(AppError::NotFound)?;
    let history = orders::history(&state.db, &scope, order.id).await?;
    let pushes = outbox::for_order(&state.db, scope.account, order.id).await?;
    let shipments = crate::db::shipping::of_order(&state.db, &scope, order.id).await?;
    let held_and_restricted = store.restrict_fraud_hold_changes && order.fraud_hold().is_held();
    let held_unrestricted = !store.restrict_fraud_hold_changes && matches!(order.fraud_hold_status, 1 | 3);
    let targets = status::offered(order.internal_status(), order.fraud_hold(), store.restrict_fraud_hold_changes);
    let tags =
        crate::db::tags::of_orders(&state.db, scope.account, &[order.id]).await?.remove(&order.id).unwrap_or_default();
    let other_tags = crate::db::tags::list(&state.db, scope.account)
        .await?
        .into_iter()
        .filter(|t| !tags.iter().any(|o| o.id == t.id))
        .collect();
    let parcels_open = !matches!(
        order.internal_status(),
        InternalStatus::Shipped | InternalStatus::Completed | InternalStatus::Cancelled
    );
    Ok(ok(&OrderPage {
        layout,
        order,
        store_name: store.name,
        items,
        history,
        pushes,
        parcels_open,
        tags,
        other_tags,
        shipments,
        targets,
        held_and_restricted,
        held_unrestricted,
        cancel_reasons: &CANCEL_REASONS,
        companies: &SHIP_COMPANIES,
        today: jst::today(Utc::now()).format("%Y-%m-%d").to_string(),
        masked: scope.mask_personal,
        way,
    }))
}

/// The detail page's status form.
#[derive(Debug, Default, Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    cancel_reason: String,
    #[serde(default)]
    ship_company: String,
    #[serde(default)]
    ship_invoice: String,
    #[serde(default)]
    ship_date: String,
    /// 「入金前でも出荷する」.
    #[serde(default)]
    unpaid_confirmed: Option<String>,
}

/// Changes one order's status from its page, through the one status-change path. Whatever the
/// form offered, the server decides: a held order is refused every target but キャンセル.
pub async fn change(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Form(form): Form<StatusForm>,
) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    scoped_order(&state, &scope, order_id).await?;
    let back = format!("/orders/{order_id}");
    let Some(target) = InternalStatus::parse(&form.target) else {
        me.flash(FlashKind::Error, "変更後のステータスを選んでください").await?;
        return Ok(Redirect::to(&back).into_response());
    };
    let ship_date = chrono::NaiveDate::parse_from_str(&form.ship_date, "%Y-%m-%d").ok();
    if target == InternalStatus::Shipped && ship_date.is_none() && !form.ship_date.is_empty() {
        me.flash(FlashKind::Error, format!("出荷日「{}」は日付として読めません（例: 2026-11-30）", form.ship_date))
            .await?;
        return Ok(Redirect::to(&back).into_response());
    }
    let ship = ship_date.filter(|_| target == InternalStatus::Shipped).map(|d| ShipInput {
        company_code: form.ship_company.clone(),
        invoice_number: form.ship_invoice.clone(),
        ship_date: d,
        ship_url: crate::domain::shipping::ship_url(&form.ship_company, &form.ship_invoice),
    });
    let req = ChangeRequest {
        target,
        cancel_reason: form.cancel_reason.parse().ok(),
        ship,
        unpaid_confirmed: form.unpaid_confirmed.is_some(),
    };
    let actor = HistoryActor::User(me.user.email.clone());
    match changes::change_status(&state.db, &scope, order_id, &req, &actor, crate::db::now()).await? {
        Ok(plan) => {
            let pushed = if plan.pushes.is_empty() { "" } else { "Yahoo!への反映を送信します。" };
            me.flash(FlashKind::Success, format!("ステータスを「{}」に変更しました。{pushed}", plan.to.label()))
                .await?;
        }
        Err(status::Refusal::NotFound) => return Err(AppError::NotFound),
        Err(refusal) => me.flash(FlashKind::Error, refusal.to_string()).await?,
    }
    Ok(Redirect::to(&back).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    push: String,
}

/// 再送信: a push Yahoo refused goes back into the queue (with the rest of its change).
pub async fn retry_push(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Form(form): Form<RetryForm>,
) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    scoped_order(&state, &scope, order_id).await?;
    let back = format!("/orders/{order_id}#pushes");
    let push = outbox::for_order(&state.db, scope.account, order_id)
        .await?
        .into_iter()
        .find(|p| p.id.to_string() == form.push && p.state == outbox::PushState::Failed);
    match push {
        Some(p) if outbox::retry(&state.db, scope.account, p.id, crate::db::now()).await? => {
            me.flash(FlashKind::Success, format!("{}をもう一度送信します", p.what)).await?;
        }
        _ => me.flash(FlashKind::Error, "再送信できる送信がありません（すでに送信中か完了しています）").await?,
    }
    Ok(Redirect::to(&back).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct NoteForm {
    #[serde(default)]
    note: String,
}

/// 社内メモ: saved as typed (trimmed), at most 2,000 characters, with a history line.
pub async fn save_note(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Form(form): Form<NoteForm>,
) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    let back = format!("/orders/{order_id}");
    let (order, _) = scoped_order(&state, &scope, order_id).await?;
    if form.note.chars().count() > 2000 {
        me.flash(FlashKind::Error, "社内メモは2,000文字以内で入力してください（保存していません）").await?;
        return Ok(Redirect::to(&back).into_response());
    }
    if form.note == order.note {
        me.flash(FlashKind::Success, "社内メモは変わっていません").await?;
        return Ok(Redirect::to(&back).into_response());
    }
    let actor = HistoryActor::User(me.user.email.clone());
    orders::set_note(&state.db, scope.account, order.id, &form.note, &actor, crate::db::now()).await?;
    me.flash(FlashKind::Success, "社内メモを保存しました").await?;
    Ok(Redirect::to(&back).into_response())
}

/// Takes orders out of the 「自動受注取込」 inbox into 新規受付, through the one status change
/// (`db::changes::change_status`): the fraud-hold rule applies as on every status change, so a
/// held order stays (it may only be cancelled) and says why.
pub async fn take_in(State(state): State<AppState>, me: Merchant, body: String) -> AppResult<Response> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let pks = super::input::ticked_orders(&pairs, 1000);
    let scope = scope_of(&state, &me).await?;
    let rows = orders::read_rows(&state.db, &scope, &pks).await?;
    let (mut taken, mut held) = (0, 0);
    let actor = orders::HistoryActor::User(me.user.email.clone());
    let req = ChangeRequest::to(InternalStatus::New);
    for row in rows.iter().filter(|r| r.internal_status() == InternalStatus::AutoImportInbox) {
        match changes::change_status(&state.db, &scope, row.id, &req, &actor, crate::db::now()).await? {
            Ok(_) => taken += 1,
            Err(Refusal::FraudHold) => held += 1,
            // Taken in or changed by someone else meanwhile.
            Err(_) => {}
        }
    }
    if taken > 0 {
        me.flash(FlashKind::Success, format!("{taken}件を新規受付に取り込みました")).await?;
    }
    if held > 0 {
        me.flash(FlashKind::Error, format!("{held}件は{FRAUD_HOLD_REFUSAL}（審査が終わるまで受信箱に残ります）"))
            .await?;
    }
    if taken == 0 && held == 0 {
        me.flash(FlashKind::Error, "取り込む注文を選んでください").await?;
    }
    Ok(Redirect::to("/orders?status=auto_import_inbox").into_response())
}
