//! Manual import (手動取込) and the record of runs (product.md §5): a person queues a run for
//! one store or all of them, optionally for a period; the scheduler of whichever process wins
//! the store's lease runs it; these pages show its progress (refreshing themselves while a run
//! is active, so no JavaScript is needed).

use askama::Template;
use axum::{
    Form,
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, ok},
    session::Merchant,
};
use crate::{
    app::AppState,
    db::{
        self,
        imports::{self, Run, RunId, Trigger},
        stores,
    },
    domain::{StoreId, jst},
    import::Window,
};

#[derive(Debug, Default, Deserialize)]
pub struct ImportForm {
    /// 取込期間 (optional): dates in JST, both ends included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// The period typed into the form: none, or (from 00:00, to 23:59:59) JST.
fn period(form: &ImportForm) -> Result<Option<Window>, &'static str> {
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    match (form.from.trim(), form.to.trim()) {
        ("", "") => Ok(None),
        (f, t) => {
            let (Some(from), Some(to)) = (parse(f), parse(t)) else {
                return Err("取込期間は開始日と終了日を両方、YYYY-MM-DDの形式で入力してください");
            };
            if from > to {
                return Err("取込期間の開始日は終了日より前にしてください");
            }
            let at = |d: NaiveDate, h, m, s| {
                jst::offset()
                    .from_local_datetime(&d.and_hms_opt(h, m, s).expect("valid time"))
                    .single()
                    .expect("JST has no gaps")
                    .with_timezone(&Utc)
            };
            Ok(Some((at(from, 0, 0, 0), at(to, 23, 59, 59))))
        }
    }
}

async fn queue(state: &AppState, me: &Merchant, store: StoreId, window: Option<Window>) -> AppResult<RunId> {
    let (from, to) = window.map_or((None, None), |(f, t)| (Some(f), Some(t)));
    let run = imports::create_run(
        &state.db,
        me.account_id(),
        store,
        Trigger::Manual,
        "queued",
        (from, to),
        &me.user.email,
        db::now(),
    )
    .await?;
    Ok(run)
}

/// 手動取込 of one store.
pub async fn import_store(
    State(state): State<AppState>,
    me: Merchant,
    Path(store_id): Path<StoreId>,
    Form(form): Form<ImportForm>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, me.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let window = match period(&form) {
        Ok(w) => w,
        Err(message) => {
            me.flash(FlashKind::Error, message).await?;
            return Ok(Redirect::to(&format!("/stores/{}", store.id)).into_response());
        }
    };
    if !store.has_refresh_token {
        me.flash(FlashKind::Error, "Yahoo!と連携してから取り込んでください").await?;
        return Ok(Redirect::to(&format!("/stores/{}", store.id)).into_response());
    }
    let run = queue(&state, &me, store.id, window).await?;
    Ok(Redirect::to(&format!("/imports/{run}")).into_response())
}

/// 手動取込 of every connected store of the account.
pub async fn import_all(
    State(state): State<AppState>,
    me: Merchant,
    Form(form): Form<ImportForm>,
) -> AppResult<Response> {
    let window = match period(&form) {
        Ok(w) => w,
        Err(message) => {
            me.flash(FlashKind::Error, message).await?;
            return Ok(Redirect::to("/imports").into_response());
        }
    };
    let mut queued = 0;
    for store in stores::list(&state.db, me.account_id()).await? {
        if store.has_refresh_token {
            queue(&state, &me, store.id, window).await?;
            queued += 1;
        }
    }
    if queued == 0 {
        me.flash(FlashKind::Error, "Yahoo!と連携済みの店舗がありません").await?;
    } else {
        me.flash(FlashKind::Success, &format!("{queued}店舗の取込を開始しました")).await?;
    }
    Ok(Redirect::to("/imports").into_response())
}

#[derive(Template)]
#[template(path = "imports/index.html")]
pub struct RunsPage {
    layout: Layout,
    runs: Vec<Run>,
    active: bool,
}

pub async fn index(State(state): State<AppState>, me: Merchant) -> AppResult<Response> {
    let runs = imports::list_runs(&state.db, me.account_id(), None, 100).await?;
    let active = runs.iter().any(Run::is_active);
    let layout = me.layout("取込履歴").await?;
    Ok(ok(&RunsPage { layout, runs, active }))
}

#[derive(Template)]
#[template(path = "imports/show.html")]
pub struct RunPage {
    layout: Layout,
    run: Run,
}

pub async fn show(State(state): State<AppState>, me: Merchant, Path(run_id): Path<RunId>) -> AppResult<Response> {
    let run = imports::get_run(&state.db, me.account_id(), run_id).await?.ok_or(AppError::NotFound)?;
    let layout = me.layout(&format!("取込 #{}", run.id)).await?;
    Ok(ok(&RunPage { layout, run }))
}
