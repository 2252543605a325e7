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
    db::stores::{self, Store},
};

#[derive(Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    layout: Layout,
    stores: Vec<Store>,
    is_owner: bool,
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
    let layout = me.layout("ダッシュボード").await?;
    Ok(ok(&DashboardPage { layout, stores, is_owner: me.user.is_owner() }))
}
