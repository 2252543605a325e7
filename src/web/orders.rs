//! Orders (product.md §6): the list across the account's stores and one order's page with all
//! of Yahoo's fields, its item lines and its history. The full order desk (filters, bulk
//! changes, CSV, status changes) builds on these pages.

use super::input::Query;
use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, ok},
    session::Merchant,
};
use crate::{
    app::AppState,
    db::{
        changes,
        orders::{self, HistoryEntry, ListFilter, ListedOrder, OrderPk, OrderRow},
        stores::{self, StoreLink},
    },
    domain::{
        StoreId,
        order::FRAUD_HOLD_REFUSAL,
        scope::OrderScope,
        status::{ChangeRequest, Refusal},
        store::InternalStatus,
    },
    yahoo::api::OrderItem,
};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    store: String,
    #[serde(default)]
    status: String,
    /// Keyset cursor: `<order time as RFC 3339>_<id>` of the last row shown.
    #[serde(default)]
    after: String,
}

/// A status tab with its count.
pub struct Tab {
    pub status: Option<InternalStatus>,
    pub label: &'static str,
    pub count: i64,
}

#[derive(Template)]
#[template(path = "orders/index.html")]
pub struct OrdersPage {
    layout: Layout,
    tabs: Vec<Tab>,
    stores: Vec<StoreLink>,
    store: Option<StoreId>,
    status: Option<InternalStatus>,
    orders: Vec<ListedOrder>,
    next: Option<String>,
}

impl OrdersPage {
    fn tab_href(&self, status: &Option<InternalStatus>) -> String {
        self.href(status.as_ref().copied(), None)
    }

    fn href(&self, status: Option<InternalStatus>, after: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = self.store {
            q.append_pair("store", &s.to_string());
        }
        if let Some(s) = status {
            q.append_pair("status", s.as_str());
        }
        if let Some(a) = after {
            q.append_pair("after", a);
        }
        let q = q.finish();
        if q.is_empty() { "/orders".into() } else { format!("/orders?{q}") }
    }

    fn next_href(&self) -> Option<String> {
        self.next.as_deref().map(|n| self.href(self.status, Some(n)))
    }

    fn is_store(&self, id: &StoreId) -> bool {
        self.store == Some(*id)
    }

    fn is_inbox(&self) -> bool {
        self.status == Some(InternalStatus::AutoImportInbox)
    }

    fn is_current(&self, status: &Option<InternalStatus>) -> bool {
        self.status == *status
    }
}

fn parse_after(s: &str) -> Option<(DateTime<Utc>, OrderPk)> {
    let (time, id) = s.rsplit_once('_')?;
    Some((DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc), OrderPk(id.parse().ok()?)))
}

pub async fn index(State(state): State<AppState>, me: Merchant, Query(q): Query<ListQuery>) -> AppResult<Response> {
    let account = me.account_id();
    let stores = stores::links(&state.db, account).await?;
    let store = q.store.parse::<i64>().ok().map(StoreId).filter(|id| stores.iter().any(|s| s.id == *id));
    let status = InternalStatus::parse(&q.status);
    let filter = ListFilter { store_id: store, status, after: parse_after(&q.after), limit: PAGE_SIZE + 1 };
    let mut orders = orders::list(&state.db, account, &filter).await?;
    let next = if orders.len() as i64 > PAGE_SIZE {
        orders.truncate(PAGE_SIZE as usize);
        orders.last().map(|o| format!("{}_{}", o.order_time.to_rfc3339(), o.id))
    } else {
        None
    };
    let counts = orders::count_by_status(&state.db, account, store).await?;
    let count = |s: InternalStatus| counts.iter().find(|(k, _)| k == s.as_str()).map_or(0, |(_, n)| *n);
    let mut tabs = vec![Tab { status: None, label: "すべて", count: counts.iter().map(|(_, n)| n).sum() }];
    tabs.extend(InternalStatus::ALL.into_iter().map(|s| Tab { status: Some(s), label: s.label(), count: count(s) }));
    let layout = me.layout("受注一覧").await?;
    Ok(ok(&OrdersPage { layout, tabs, stores, store, status, orders, next }))
}

#[derive(Template)]
#[template(path = "orders/show.html")]
pub struct OrderPage {
    layout: Layout,
    order: OrderRow,
    store_name: String,
    items: Vec<OrderItem>,
    history: Vec<HistoryEntry>,
}

impl OrderPage {
    fn hold_label(&self) -> &'static str {
        match self.order.fraud_hold_status {
            1 => "1: ルール保留審査中",
            2 => "2: ルール保留解除",
            3 => "3: ルール悪用確定",
            _ => "0: 不正リスク低",
        }
    }

    fn yahoo_status(&self) -> String {
        let code = u8::try_from(self.order.order_status).unwrap_or(0);
        crate::domain::order::OrderStatus::from_code(code)
            .map_or_else(|| code.to_string(), |s| format!("{code}: {}", s.label()))
    }

    fn options(item: &OrderItem) -> String {
        item.options.iter().map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>().join(" / ")
    }
}

/// Formats an optional date.
pub fn date(d: &Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

pub async fn show(State(state): State<AppState>, me: Merchant, Path(order_id): Path<OrderPk>) -> AppResult<Response> {
    let account = me.account_id();
    let (order, items) = orders::get(&state.db, account, order_id).await?.ok_or(AppError::NotFound)?;
    let store = stores::get(&state.db, account, order.store_id).await?.ok_or(AppError::NotFound)?;
    let history = orders::history(&state.db, account, order.id).await?;
    let layout = me.layout(&format!("注文 {}", order.order_id)).await?;
    Ok(ok(&OrderPage { layout, order, store_name: store.name, items, history }))
}

/// Takes orders out of the 「自動受注取込」 inbox into 新規受付, through the one status change
/// (`db::changes::change_status`): the fraud-hold rule applies as on every status change, so a
/// held order stays (it may only be cancelled) and says why.
pub async fn take_in(State(state): State<AppState>, me: Merchant, body: String) -> AppResult<Response> {
    let pks: Vec<OrderPk> = url::form_urlencoded::parse(body.as_bytes())
        .filter(|(k, _)| k == "order")
        .filter_map(|(_, v)| v.parse().ok().map(OrderPk))
        .take(1000)
        .collect();
    let scope = OrderScope::account(me.account_id());
    let rows = orders::rows(&state.db, scope.account, &pks).await?;
    let (mut taken, mut held) = (0, 0);
    let actor = orders::HistoryActor::User(me.user.email.clone());
    let req = ChangeRequest { target: InternalStatus::New, cancel_reason: None, ship: None };
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
