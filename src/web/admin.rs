//! The support view (product.md §9). Support staff only; merchants are refused.

use askama::Template;
use axum::{extract::State, response::Response};

use super::{
    error::AppResult,
    render::{Layout, ok},
    session::Support,
};
use crate::{
    app::AppState,
    db::support::{self, AccountSummary},
};

#[derive(Template)]
#[template(path = "admin/index.html")]
pub struct AdminPage {
    layout: Layout,
    accounts: Vec<AccountSummary>,
}

pub async fn index(State(state): State<AppState>, staff: Support) -> AppResult<Response> {
    let accounts = support::list_accounts(&state.db).await?;
    let layout = staff.layout("サポート管理画面").await?;
    Ok(ok(&AdminPage { layout, accounts }))
}
