//! The merchant's home page: their stores at a glance and what needs doing.

use askama::Template;
use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use tower_sessions::Session;

use super::{
    error::AppResult,
    render::{Layout, ok},
    session::{self, Merchant, Principal},
};
use crate::{
    app::AppState,
    db::{
        imports,
        stores::{self, Store},
    },
    domain::diagnosis::{self, Finding},
};

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    stores: Vec<Store>,
    /// 定期的に必要な作業: (store, what needs doing), most urgent first.
    warnings: Vec<(Store, Finding)>,
    is_owner: bool,
    /// 緊急停止 of the whole account, with its reason.
    stopped: Option<String>,
}

pub async fn show(State(state): State<AppState>, session: Session, me: Option<Merchant>) -> AppResult<Response> {
    let Some(me) = me else {
        return Ok(match session::principal(&session).await? {
            Some(Principal::Support { .. }) => Redirect::to("/admin"),
            _ => Redirect::to("/signin"),
        }
        .into_response());
    };
    let stores = stores::list(&state.db, me.account_id()).await?;
    let now = chrono::Utc::now();
    let mut warnings: Vec<(Store, Finding)> = stores
        .iter()
        .flat_map(|s| diagnosis::diagnose(&s.facts(), now).into_iter().map(move |f| (s.clone(), f)))
        .collect();
    warnings.sort_by_key(|w| std::cmp::Reverse(w.1.severity));
    let stopped = imports::account_stop(&state.db, me.account_id()).await?;
    let layout = me.layout("ダッシュボード").await?;
    Ok(ok(&DashboardPage { layout, stores, warnings, is_owner: me.user.is_owner(), stopped }))
}
