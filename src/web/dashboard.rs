//! The merchant's home page: their stores at a glance and what needs doing: held orders whose
//! review ended (alerts until someone acknowledges them), the number of held orders, and a chart
//! of orders per day per store. Everything about orders is limited to the person's
//! [`OrderScope`](crate::domain::scope::OrderScope).

use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    chart::{self, Chart},
    error::{AppError, AppResult},
    input::Form,
    render::{FlashKind, Layout, ok},
    session::{self, Merchant, Principal},
};
use crate::{
    app::AppState,
    db::{
        dashboard::{self, Acknowledge, Alert},
        imports, order_list,
        stores::{self, Store},
    },
    domain::{
        StoreId,
        diagnosis::{self, Finding},
    },
};

/// Alerts shown at once; acknowledging them brings up the next ones.
const ALERTS_SHOWN: i64 = 50;

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    stores: Vec<Store>,
    /// 定期的に必要な作業: (store, what needs doing), most urgent first.
    warnings: Vec<(Store, Finding)>,
    is_owner: bool,
    /// The account has stores, none of them this staff member's.
    has_hidden_stores: bool,
    /// 緊急停止 of the whole account, with its reason.
    stopped: Option<String>,
    /// Stores under a 緊急停止 of their own.
    stopped_stores: Vec<StoreId>,
    /// Held orders whose review ended, newest first.
    alerts: Vec<Alert>,
    /// Orders under fraud hold now.
    held: i64,
    chart: Chart,
    /// Rules that name a deleted tag: skipped until someone mends them.
    broken_rules: Vec<crate::domain::rules::Rule>,
}

impl DashboardPage {
    /// The newest alert shown: 「すべて確認済みにする」 acknowledges up to it, not ones that
    /// arrived after the page was drawn.
    fn newest_alert(&self) -> i64 {
        self.alerts.iter().map(|a| a.id).max().unwrap_or(0)
    }

    fn is_stopped(&self, store: &StoreId) -> bool {
        self.stopped.is_some() || self.stopped_stores.contains(store)
    }
}

pub async fn show(State(state): State<AppState>, session: Session, me: Option<Merchant>) -> AppResult<Response> {
    let Some(me) = me else {
        return Ok(match session::principal(&session).await? {
            Some(Principal::Support { .. }) => Redirect::to("/admin"),
            _ => Redirect::to("/signin"),
        }
        .into_response());
    };
    let scope = me.scope().await?;
    let stores: Vec<Store> = stores::visible(&state.db, &scope).await?;
    let has_hidden_stores = scope.stores.is_some();
    let now = chrono::Utc::now();
    let mut warnings: Vec<(Store, Finding)> = stores
        .iter()
        .flat_map(|s| diagnosis::diagnose(&s.facts(), now).into_iter().map(move |f| (s.clone(), f)))
        .collect();
    warnings.sort_by_key(|w| std::cmp::Reverse(w.1.severity));
    let stopped = imports::account_stop(&state.db, me.account_id()).await?;
    let stopped_stores = imports::stopped_stores(&state.db, me.account_id()).await?;
    let alerts = dashboard::open_alerts(&state.db, &scope, ALERTS_SHOWN).await?;
    // The fraud-hold queue's own count, so the number is the list it links to.
    let held = order_list::held_count(&state.db, &scope).await?;
    let days = chart::last_days(now);
    let (first, last) = (days[0], days[days.len() - 1]);
    let counts = dashboard::day_counts(&state.db, &scope, first, last).await?;
    let names: Vec<_> = stores.iter().map(|s| (s.id, s.name.clone())).collect();
    let chart = chart::build(&days, &names, &counts);
    let layout = me.layout("ダッシュボード").await?;
    let is_owner = me.user.is_owner();
    Ok(ok(&DashboardPage {
        layout,
        stores,
        warnings,
        is_owner,
        has_hidden_stores,
        stopped,
        stopped_stores,
        alerts,
        held,
        chart,
        broken_rules: crate::db::rules::broken(&state.db, me.account_id()).await?,
    }))
}

/// 「確認しました」 on one alert. Someone else may have acknowledged it first; the first
/// acknowledgement is the one kept.
pub async fn acknowledge(
    State(state): State<AppState>,
    me: Merchant,
    Path(alert_id): Path<i64>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    if !dashboard::alert_exists(&state.db, &scope, alert_id).await? {
        return Err(AppError::NotFound);
    }
    dashboard::acknowledge(&state.db, &scope, Acknowledge::One(alert_id), &me.user.email).await?;
    me.flash(FlashKind::Success, "お知らせを確認済みにしました").await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Debug, Default, Deserialize)]
pub struct AcknowledgeAllForm {
    #[serde(default)]
    up_to: String,
}

/// 「すべて確認済みにする」: every alert the person saw (up to the newest shown) in their scope.
pub async fn acknowledge_all(
    State(state): State<AppState>,
    me: Merchant,
    Form(form): Form<AcknowledgeAllForm>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let up_to = form.up_to.parse::<i64>().unwrap_or(0);
    let n = dashboard::acknowledge(&state.db, &scope, Acknowledge::UpTo(up_to), &me.user.email).await?;
    me.flash(FlashKind::Success, format!("お知らせ{n}件を確認済みにしました")).await?;
    Ok(Redirect::to("/").into_response())
}
