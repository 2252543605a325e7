//! The audit log page for owners: newest first, paged by entry ID.

use super::input::Query;
use askama::Template;
use axum::{extract::State, response::Response};
use serde::Deserialize;

use super::{
    error::AppResult,
    render::{Layout, ok},
    session::Owner,
};
use crate::{
    app::AppState,
    db::audit::{self, Entry},
};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

#[derive(Template)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    layout: Layout,
    entries: Vec<Entry>,
    next_before: Option<i64>,
}

pub async fn index(State(state): State<AppState>, owner: Owner, Query(q): Query<AuditQuery>) -> AppResult<Response> {
    let mut entries = audit::page(&state.db, owner.account_id(), q.before, PAGE_SIZE + 1).await?;
    let next_before = if entries.len() as i64 > PAGE_SIZE {
        entries.truncate(PAGE_SIZE as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    let layout = owner.layout("監査ログ").await?;
    Ok(ok(&AuditPage { layout, entries, next_before }))
}
