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
    db::{
        password_reset::{self, OwnerChoice},
        support::{self, AccountSummary},
    },
    domain::user::RESET_LINK_VALID_MINUTES,
};

#[derive(Template)]
#[template(path = "admin/index.html")]
pub struct AdminPage {
    layout: Layout,
    accounts: Vec<AccountSummary>,
    /// Owners a password reset link can be issued for.
    owners: Vec<OwnerChoice>,
    valid_minutes: i64,
}

pub async fn index(State(state): State<AppState>, staff: Support) -> AppResult<Response> {
    let accounts = support::list_accounts(&state.db).await?;
    let owners = password_reset::owners(&state.db).await?;
    let layout = staff.layout("サポート管理画面").await?;
    Ok(ok(&AdminPage { layout, accounts, owners, valid_minutes: RESET_LINK_VALID_MINUTES }))
}
