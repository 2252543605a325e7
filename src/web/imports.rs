//! Manual import (手動取込) and the record of runs (product.md §5): a person queues a run for
//! one store or all of them, optionally for a period; the scheduler of whichever process wins
//! the store's lease runs it; these pages show its progress (refreshing themselves while a run
//! is active, so no JavaScript is needed).

use super::input::Form;
use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    db::{
        self,
        audit::{Action, Note},
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
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// One store (its ID) on the 取込 page; empty: every store the person may import.
    #[serde(default)]
    pub store: String,
    /// 「緊急停止中でも手動で取り込む」, checked: a stopped store is imported by hand anyway.
    #[serde(default)]
    pub while_stopped: String,
}

/// What a 手動取込 of a stopped store asks before it starts (a manual import is how a merchant
/// works during an emergency stop, but the stop must not be passed over unknowingly).
pub const STOPPED_CONFIRM: &str = "緊急停止中です。手動で取り込む場合は「緊急停止中でも手動で取り込む」にチェックしてから押してください（取り込んでいません）";

/// The period typed into the form: none, or (from 00:00, to 23:59:59) JST.
pub fn period(form: &ImportForm) -> Result<Option<Window>, &'static str> {
    let parse = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    match (form.from.trim(), form.to.trim()) {
        ("", "") => Ok(None),
        (f, t) => {
            let (Some(from), Some(to)) = (parse(f), parse(t)) else {
                return Err("期間は開始日と終了日を両方、YYYY-MM-DDの形式で入力してください");
            };
            if from > to {
                return Err("期間の開始日は終了日より前にしてください");
            }
            if from > jst::today(Utc::now()) {
                return Err("期間の開始日に未来の日付は指定できません");
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

/// Queues a 手動取込 of `stores` for `window`, with its audit entry, in one transaction per
/// kind: stores under 緊急停止 as 手動（緊急停止中）. `None` when a store is stopped and the
/// person did not confirm importing it anyway (nothing is queued).
async fn queue(
    state: &AppState,
    me: &Merchant,
    stores: &[StoreId],
    window: Option<Window>,
    form: &ImportForm,
    note: &Note,
) -> AppResult<Option<Vec<RunId>>> {
    let (from, to) = window.map_or((None, None), |(f, t)| (Some(f), Some(t)));
    let (account, user) = (me.account_id(), &me.user.email);
    let (mut stopped, mut running) = (Vec::new(), Vec::new());
    for store in stores {
        let state = imports::state(&state.db, account, *store).await?;
        if state.emergency_stopped() { stopped.push(*store) } else { running.push(*store) }
    }
    if !stopped.is_empty() && form.while_stopped.is_empty() {
        return Ok(None);
    }
    let mut runs = Vec::new();
    for (stores, trigger) in [(running, Trigger::Manual), (stopped, Trigger::ManualWhileStopped)] {
        if !stores.is_empty() {
            let note = if trigger == Trigger::ManualWhileStopped {
                note.with_suffix("（緊急停止中）")
            } else {
                note.clone()
            };
            runs.extend(
                imports::queue_runs(&state.db, account, &stores, trigger, (from, to), user, db::now(), &note).await?,
            );
        }
    }
    Ok(Some(runs))
}

/// 手動取込 of one store.
pub async fn import_store(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(form): Form<ImportForm>,
) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let back = format!("/stores/{}", store.id);
    import_one(&state, &me, &ip, store, &form, &back).await
}

/// Queues a 手動取込 of one store and opens its run; a bad period or a store not connected goes
/// `back` with the reason.
async fn import_one(
    state: &AppState,
    me: &Merchant,
    ip: &str,
    store: stores::Store,
    form: &ImportForm,
    back: &str,
) -> AppResult<Response> {
    let window = match period(form) {
        Ok(w) => w,
        Err(message) => {
            me.flash(FlashKind::Error, message).await?;
            return Ok(Redirect::to(back).into_response());
        }
    };
    if !store.has_refresh_token {
        me.flash(FlashKind::Error, "Yahoo!と連携してから取り込んでください").await?;
        return Ok(Redirect::to(back).into_response());
    }
    let note = me.note(Action::ManualImport, store.name.clone(), ip).store(store.id);
    let Some(runs) = queue(state, me, &[store.id], window, form, &note).await? else {
        me.flash(FlashKind::Error, STOPPED_CONFIRM).await?;
        return Ok(Redirect::to(back).into_response());
    };
    let run = runs.first().ok_or_else(|| anyhow::anyhow!("queueing a run returned none"))?;
    Ok(Redirect::to(&format!("/imports/{run}")).into_response())
}

/// The stores of the account this person may see (a staff member limited to some stores sees
/// those), in the account's order.
async fn visible_stores(state: &AppState, me: &Merchant) -> AppResult<Vec<stores::Store>> {
    Ok(stores::visible(&state.db, &me.scope().await?).await?)
}

/// 手動取込 from the 取込 page: of the store chosen there, or of every connected store this
/// person may see.
pub async fn import_all(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Form(form): Form<ImportForm>,
) -> AppResult<Response> {
    if !form.store.trim().is_empty() {
        let Ok(store_id) = form.store.trim().parse::<i64>() else { return Err(AppError::NotFound) };
        let store = me.store(StoreId(store_id)).await?;
        return import_one(&state, &me, &ip, store, &form, &format!("/imports?store={store_id}")).await;
    }
    let window = match period(&form) {
        Ok(w) => w,
        Err(message) => {
            me.flash(FlashKind::Error, message).await?;
            return Ok(Redirect::to("/imports").into_response());
        }
    };
    let connected: Vec<StoreId> =
        visible_stores(&state, &me).await?.into_iter().filter(|s| s.has_refresh_token).map(|s| s.id).collect();
    let queued = connected.len();
    if queued == 0 {
        me.flash(FlashKind::Error, "Yahoo!と連携済みのストアがありません").await?;
    } else {
        let note = me.note(Action::ManualImport, format!("すべてのストア（{queued}ストア）"), &ip);
        if queue(&state, &me, &connected, window, &form, &note).await?.is_some() {
            me.flash(FlashKind::Success, format!("{queued}ストアの取込を開始しました")).await?;
        } else {
            me.flash(FlashKind::Error, STOPPED_CONFIRM).await?;
        }
    }
    Ok(Redirect::to("/imports").into_response())
}

#[derive(Template)]
#[template(path = "imports/index.html")]
pub struct RunsPage {
    layout: Layout,
    runs: Vec<Run>,
    active: bool,
    /// The stores to choose from (the form and the filter).
    stores: Vec<(StoreId, String)>,
    /// The store whose runs are listed; `None`: every store this person may see.
    store: Option<(StoreId, String)>,
    /// A store this person may import is under 緊急停止 (the form asks before importing it).
    any_stopped: bool,
    /// Per store (of the ones listed): automatic checks that found nothing since its last
    /// recorded run, which leave no run of their own, and when the last was.
    idle: Vec<IdleChecks>,
}

pub struct IdleChecks {
    name: String,
    polls: i64,
    last: String,
}

impl RunsPage {
    fn is_chosen(&self, id: &StoreId) -> bool {
        self.store.as_ref().is_some_and(|(s, _)| s == id)
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    #[serde(default)]
    store: String,
}

/// The record of runs: of one store (`?store=`), or of every store this person may see.
pub async fn index(
    State(state): State<AppState>,
    me: Merchant,
    super::input::Query(query): super::input::Query<RunsQuery>,
) -> AppResult<Response> {
    let visible = visible_stores(&state, &me).await?;
    let store = match query.store.trim() {
        "" => None,
        id => {
            let Ok(id) = id.parse::<i64>() else { return Err(AppError::NotFound) };
            let store = me.store(StoreId(id)).await?;
            Some((store.id, store.name))
        }
    };
    let scope = me.scope().await?;
    let mut runs = imports::visible_runs(&state.db, &scope, store.as_ref().map(|(id, _)| *id), 100).await?;
    Run::flag_unresponsive(&mut runs, lease(&state), crate::db::now());
    let active = runs.iter().any(Run::is_active);
    let title = store.as_ref().map_or_else(|| "取込履歴".to_owned(), |(_, name)| format!("取込履歴（{name}）"));
    let layout = me.layout(&title).await?;
    let stores: Vec<(StoreId, String)> =
        visible.into_iter().filter(|s| s.has_refresh_token).map(|s| (s.id, s.name)).collect();
    let mut any_stopped = false;
    let mut idle = Vec::new();
    for (id, name) in &stores {
        let import = imports::state(&state.db, me.account_id(), *id).await?;
        any_stopped |= import.emergency_stopped();
        if let (true, Some(at)) = (store.as_ref().is_none_or(|(s, _)| s == id), import.idle_at)
            && import.idle_polls > 0
        {
            idle.push(IdleChecks { name: name.clone(), polls: import.idle_polls, last: super::render::jst(at) });
        }
    }
    Ok(ok(&RunsPage { layout, runs, active, stores, store, any_stopped, idle }))
}

#[derive(Template)]
#[template(path = "imports/show.html")]
pub struct RunPage {
    layout: Layout,
    run: Run,
}

pub async fn show(State(state): State<AppState>, me: Merchant, Path(run_id): Path<RunId>) -> AppResult<Response> {
    let scope = me.scope().await?;
    let mut run = imports::get_run(&state.db, &scope, run_id).await?.ok_or(AppError::NotFound)?;
    Run::flag_unresponsive(std::slice::from_mut(&mut run), lease(&state), crate::db::now());
    let layout = me.layout(&format!("取込 #{}", run.id)).await?;
    Ok(ok(&RunPage { layout, run }))
}

/// How long a run's process may be silent before its run is shown as 応答なし.
pub fn lease(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.config.import_lease_secs.max(1))
}

/// What 緊急停止 does, as the confirmation says it (product.md §5).
pub const STOP_EXPLANATION: &str = "自動受注取込と在庫連動を停止します。停止中の注文は再開後に取り込まれます。";

#[derive(Template)]
#[template(path = "imports/stop.html")]
pub struct StopPage {
    layout: Layout,
    /// `None`: the whole account.
    store: Option<(StoreId, String)>,
    action: String,
    explanation: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct StopForm {
    #[serde(default)]
    reason: String,
}

fn stop_reason(form: &StopForm, who: &str) -> String {
    let reason: String = form.reason.trim().chars().take(200).collect();
    if reason.is_empty() { format!("{who}が停止") } else { format!("{reason}（{who}）") }
}

/// The confirmation page of 緊急停止 for one store.
pub async fn stop_store_form(
    State(state): State<AppState>,
    owner: Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let layout = owner.layout("緊急停止").await?;
    let action = format!("/stores/{}/emergency-stop", store.id);
    Ok(ok(&StopPage { layout, store: Some((store.id, store.name)), action, explanation: STOP_EXPLANATION }))
}

pub async fn stop_store(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(form): Form<StopForm>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let reason = stop_reason(&form, &owner.user.display_name);
    let note = owner.note(Action::EmergencyStop, format!("{}: {reason}", store.name), &ip).store(store.id);
    imports::set_store_stop(&state.db, owner.account_id(), store.id, Some(&reason), db::now(), &note).await?;
    owner.flash(FlashKind::Success, "緊急停止しました。自動受注取込と在庫連動は止まっています。").await?;
    Ok(Redirect::to(&format!("/stores/{}", store.id)).into_response())
}

pub async fn resume_store(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let note = owner.note(Action::EmergencyResume, store.name.clone(), &ip).store(store.id);
    imports::set_store_stop(&state.db, owner.account_id(), store.id, None, db::now(), &note).await?;
    owner.flash(FlashKind::Success, "再開しました。停止中の注文を続きから取り込みます。").await?;
    Ok(Redirect::to(&format!("/stores/{}", store.id)).into_response())
}

/// The confirmation page of 緊急停止 for the whole account.
pub async fn stop_account_form(owner: Owner) -> AppResult<Response> {
    let layout = owner.layout("緊急停止（すべてのストア）").await?;
    Ok(ok(&StopPage { layout, store: None, action: "/emergency-stop".into(), explanation: STOP_EXPLANATION }))
}

pub async fn stop_account(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(form): Form<StopForm>,
) -> AppResult<Response> {
    let reason = stop_reason(&form, &owner.user.display_name);
    let note = owner.note(Action::EmergencyStop, format!("すべてのストア: {reason}"), &ip);
    imports::set_account_stop(&state.db, owner.account_id(), Some(&reason), db::now(), &note).await?;
    owner.flash(FlashKind::Success, "すべてのストアを緊急停止しました").await?;
    Ok(Redirect::to("/").into_response())
}

pub async fn resume_account(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
) -> AppResult<Response> {
    let note = owner.note(Action::EmergencyResume, "すべてのストア", &ip);
    imports::set_account_stop(&state.db, owner.account_id(), None, db::now(), &note).await?;
    owner.flash(FlashKind::Success, "再開しました。停止中の注文を続きから取り込みます。").await?;
    Ok(Redirect::to("/").into_response())
}
