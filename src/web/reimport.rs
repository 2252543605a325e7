//! 注文再取込 (product.md §5) and 照合 (reconciliation): pages that ask Yahoo while a person waits,
//! with a deadline shorter than the request timeout, and then apply or queue what was shown.

use std::time::Duration;

use super::input::{Form, Query};
use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    imports::period,
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant},
};
use crate::{
    app::AppState,
    db::{
        self,
        audit::Action,
        imports::{self, Trigger},
        orders::{self, OrderPk},
        stores::Store,
    },
    domain::{StoreId, scope::OrderScope},
    import::{
        Window,
        reconcile::{CompareError, Comparison, MAX_DAYS},
        reimport::{Preview, ReimportError},
        rules::FieldChange,
    },
};

/// How long a page waits for Yahoo (the request itself times out later).
fn deadline(state: &AppState) -> Duration {
    Duration::from_secs(state.config.request_timeout_secs.saturating_sub(5).clamp(3, 20))
}

const TOO_SLOW: &str = "Yahoo!の応答に時間がかかっています。しばらくしてからもう一度お試しください";

fn yahoo_message(e: &ReimportError) -> String {
    match e {
        ReimportError::Yahoo(e) => e.message_ja(),
        ReimportError::Db(_) => "データベースの処理に失敗しました。もう一度お試しください".into(),
        ReimportError::Changed => "確認している間にYahoo!で注文が更新されました。最新の内容を確認してください".into(),
    }
}

#[derive(Template)]
#[template(path = "orders/reimport.html")]
pub struct ReimportPage {
    layout: Layout,
    store: Store,
    order_id: String,
    preview: Option<Preview>,
    error: Option<String>,
    /// Where the form posts.
    action: String,
    /// The reader's scope: buyers' personal data is masked in the preview when it says so.
    scope: OrderScope,
}

impl ReimportPage {
    fn changes(&self) -> Vec<FieldChange> {
        self.preview.as_ref().map_or_else(Vec::new, |p| p.changes.iter().map(|c| c.masked(&self.scope)).collect())
    }

    /// The buyer's name from Yahoo's answer, as this reader may see it.
    fn buyer(&self) -> String {
        let Some(p) = &self.preview else { return String::new() };
        let (mut last, mut first) = (p.detail.bill.last_name.clone(), p.detail.bill.first_name.clone());
        self.scope.mask_fields([&mut last, &mut first]);
        format!("{last} {first}")
    }
}

/// Order IDs as Yahoo writes them: `<seller>-<number>`; anything else is refused before a call.
fn valid_order_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn preview_page(
    state: &AppState,
    me: &Merchant,
    store: Store,
    order_id: String,
    action: String,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let (preview, error) = if valid_order_id(&order_id) {
        match tokio::time::timeout(
            deadline(state),
            state.importer.preview(me.account_id(), store.id, &store.seller_id, &order_id),
        )
        .await
        {
            Ok(Ok(mut p)) => {
                if let Some((row, _)) = &mut p.stored {
                    row.mask(&scope);
                }
                (Some(p), None)
            }
            Ok(Err(e)) => (None, Some(yahoo_message(&e))),
            Err(_) => (None, Some(TOO_SLOW.to_owned())),
        }
    } else {
        (None, Some(order_id_problem(&order_id).to_owned()))
    };
    let layout = me.layout(&format!("注文再取込 {order_id}")).await?;
    Ok(ok(&ReimportPage { layout, store, order_id, preview, error, action, scope }))
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderIdQuery {
    #[serde(default)]
    order_id: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ApplyForm {
    #[serde(default)]
    order_id: String,
    #[serde(default)]
    version: String,
}

/// The preview of an imported order.
pub async fn order_preview(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let (row, _) = orders::read(&state.db, &scope, order_id).await?.ok_or(AppError::NotFound)?;
    let store = me.store(row.store_id).await?;
    let action = format!("/orders/{}/reimport", row.id);
    preview_page(&state, &me, store, row.order_id, action).await
}

/// The preview of an order ID typed on the store page.
pub async fn store_preview(
    State(state): State<AppState>,
    me: Merchant,
    Path(store_id): Path<StoreId>,
    Query(q): Query<OrderIdQuery>,
) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let action = format!("/stores/{}/reimport", store.id);
    preview_page(&state, &me, store, q.order_id.trim().to_owned(), action).await
}

/// Why a typed order ID cannot be asked for, in the merchant's words.
fn order_id_problem(order_id: &str) -> &'static str {
    if order_id.is_empty() {
        "注文IDを入力してください（例: mystore-10000001）"
    } else if order_id.split([',', '、', ' ', '　', '\n']).filter(|s| !s.trim().is_empty()).count() > 1 {
        "注文IDは1件ずつ入力してください（例: mystore-10000001）"
    } else {
        "注文IDは半角英数字とハイフンで入力してください（例: mystore-10000001）"
    }
}

async fn apply(state: &AppState, me: &Merchant, ip: &str, store: Store, form: &ApplyForm) -> AppResult<Response> {
    let order_id = form.order_id.trim();
    let Ok(version) = form.version.trim().parse::<i64>() else {
        return Err(AppError::BadRequest("version"));
    };
    if !valid_order_id(order_id) {
        return Err(AppError::BadRequest("order_id"));
    }
    let applied = tokio::time::timeout(
        deadline(state),
        state.importer.apply_reimport(me.account_id(), store.id, &store.seller_id, order_id, version, &me.user.email),
    )
    .await;
    let back = format!("/stores/{}/reimport?order_id={order_id}", store.id);
    match applied {
        Ok(Ok(_)) => {
            let note = me.note(Action::OrderReimported, format!("{} {order_id}", store.name), ip);
            me.record(&note.store(store.id)).await?;
            let (row, _) = orders::by_order_ids(&state.db, me.account_id(), store.id, &[order_id])
                .await?
                .remove(order_id)
                .ok_or(AppError::NotFound)?;
            me.flash(FlashKind::Success, "注文を再取込しました").await?;
            Ok(Redirect::to(&format!("/orders/{}", row.id)).into_response())
        }
        Ok(Err(e)) => {
            me.flash(FlashKind::Error, yahoo_message(&e)).await?;
            Ok(Redirect::to(&back).into_response())
        }
        Err(_) => {
            me.flash(FlashKind::Error, TOO_SLOW).await?;
            Ok(Redirect::to(&back).into_response())
        }
    }
}

pub async fn order_apply(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(order_id): Path<OrderPk>,
    Form(mut form): Form<ApplyForm>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let (row, _) = orders::read(&state.db, &scope, order_id).await?.ok_or(AppError::NotFound)?;
    let store = me.store(row.store_id).await?;
    form.order_id = row.order_id;
    apply(&state, &me, &ip, store, &form).await
}

pub async fn store_apply(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(form): Form<ApplyForm>,
) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    apply(&state, &me, &ip, store, &form).await
}

#[derive(Debug, Default, Deserialize)]
pub struct PeriodQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Template)]
#[template(path = "stores/reconcile.html")]
pub struct ReconcilePage {
    layout: Layout,
    store: Store,
    from: String,
    to: String,
    comparison: Option<Comparison>,
    error: Option<String>,
}

fn checked_period(from: &str, to: &str) -> Result<Window, String> {
    let form = super::imports::ImportForm { from: from.into(), to: to.into(), ..Default::default() };
    let window = period(&form)?.ok_or("照合する期間（開始日と終了日）を入力してください")?;
    if (window.1 - window.0).num_days() >= MAX_DAYS {
        return Err(format!("照合できる期間は{MAX_DAYS}日までです"));
    }
    Ok(window)
}

pub async fn reconcile_form(
    State(state): State<AppState>,
    me: Merchant,
    Path(store_id): Path<StoreId>,
    Query(q): Query<PeriodQuery>,
) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let today = crate::domain::jst::today(chrono::Utc::now());
    let (from, to) = if q.from.is_empty() && q.to.is_empty() {
        let week_ago = today - chrono::Duration::days(6);
        (week_ago.to_string(), today.to_string())
    } else {
        (q.from.clone(), q.to.clone())
    };
    let asked = !q.from.is_empty() || !q.to.is_empty();
    let (comparison, error) = if !asked {
        (None, None)
    } else {
        match checked_period(&from, &to) {
            Err(e) => (None, Some(e)),
            Ok(window) => match tokio::time::timeout(
                deadline(&state),
                state.importer.compare(me.account_id(), store.id, &store.seller_id, window),
            )
            .await
            {
                Ok(Ok(c)) => (Some(c), None),
                Ok(Err(CompareError::Yahoo(e))) => (None, Some(e.message_ja())),
                Ok(Err(CompareError::Db(e))) => return Err(e.into()),
                Err(_) => (None, Some(TOO_SLOW.to_owned())),
            },
        }
    };
    let layout = me.layout(&format!("注文の照合（{}）", store.name)).await?;
    Ok(ok(&ReconcilePage { layout, store, from, to, comparison, error }))
}

/// Queues the import of exactly the orders missing for the period.
pub async fn reconcile(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(q): Form<PeriodQuery>,
) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let window = match checked_period(&q.from, &q.to) {
        Ok(w) => w,
        Err(e) => {
            me.flash(FlashKind::Error, e).await?;
            return Ok(Redirect::to(&format!("/stores/{}/reconcile", store.id)).into_response());
        }
    };
    let note =
        me.note(Action::Reconciled, format!("{} {}〜{}", store.name, q.from.trim(), q.to.trim()), &ip).store(store.id);
    let runs = imports::queue_runs(
        &state.db,
        me.account_id(),
        &[store.id],
        Trigger::Reconcile,
        (Some(window.0), Some(window.1)),
        &me.user.email,
        db::now(),
        &note,
    )
    .await?;
    let run = runs.first().ok_or_else(|| anyhow::anyhow!("queueing a run returned none"))?;
    Ok(Redirect::to(&format!("/imports/{run}")).into_response())
}
