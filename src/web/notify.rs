//! 通知の設定 (issue 29): each user chooses which notifications they get, for which of their
//! stores, at once or in the daily digest. Owners start with everything at once; staff with
//! nothing. The page also lists the newest notices of the stores the user can see.

use askama::Template;
use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::AppResult,
    input::{self, Form},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant},
};
use crate::{
    app::AppState,
    db::{audit, notify as store, stores},
    domain::{
        StoreId,
        mail::MailKind,
        notify::{DAILY_SUMMARY, Mode, NOTICE_KINDS, Prefs, hint},
    },
};

/// One kind's row on the page.
pub struct KindRow {
    pub key: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub mode: Mode,
}

#[derive(Template)]
#[template(path = "account/notifications.html")]
pub struct NotificationsPage {
    layout: Layout,
    email: String,
    is_owner: bool,
    kinds: Vec<KindRow>,
    modes: [Mode; 3],
    summary: bool,
    all_stores: bool,
    stores: Vec<(StoreId, String, bool)>,
    recent: Vec<(String, Option<String>, String, chrono::DateTime<chrono::Utc>)>,
}

/// `GET /account/notifications`.
pub async fn form(State(state): State<AppState>, me: Merchant) -> AppResult<Response> {
    let scope = me.scope().await?;
    let prefs = store::prefs(&state.db, me.account_id(), me.user.id).await?;
    let is_owner = me.user.is_owner();
    let kinds = NOTICE_KINDS
        .iter()
        .map(|k| KindRow { key: k.as_str(), label: k.label(), hint: hint(*k), mode: prefs.mode(is_owner, k.as_str()) })
        .collect();
    let stores = stores::list(&state.db, me.account_id())
        .await?
        .into_iter()
        .filter(|s| scope.allows(s.id))
        .map(|s| (s.id, s.name.clone(), prefs.covers(s.id)))
        .collect();
    let recent = store::recent(&state.db, &scope, 20).await?;
    let layout = me.layout("通知の設定").await?;
    Ok(ok(&NotificationsPage {
        layout,
        email: me.user.email.clone(),
        is_owner,
        kinds,
        modes: Mode::ALL,
        summary: prefs.mode(is_owner, DAILY_SUMMARY) != Mode::Off,
        all_stores: prefs.stores.is_none(),
        stores,
        recent,
    })
    .into_response())
}

/// `POST /account/notifications`: the user's own choices (a store outside their scope is
/// ignored: they could not get its notices anyway).
pub async fn save(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let scope = me.scope().await?;
    let mut prefs = Prefs::default();
    for kind in NOTICE_KINDS {
        let mode = Mode::parse(&input::field(&pairs, kind.as_str())).unwrap_or(Mode::Off);
        prefs.modes.insert(kind.as_str().to_owned(), mode);
    }
    let summary = if input::field(&pairs, DAILY_SUMMARY).is_empty() { Mode::Off } else { Mode::Digest };
    prefs.modes.insert(DAILY_SUMMARY.to_owned(), summary);
    if input::field(&pairs, "stores") == "chosen" {
        let mut chosen: Vec<StoreId> = pairs
            .iter()
            .filter(|(k, _)| k == "store")
            .filter_map(|(_, v)| v.parse::<i64>().ok().map(StoreId))
            .filter(|s| scope.allows(*s))
            .collect();
        chosen.sort();
        chosen.dedup();
        prefs.stores = Some(chosen);
    }
    store::save_prefs(&state.db, me.account_id(), me.user.id, &prefs, crate::db::now()).await?;
    let on: Vec<&str> = NOTICE_KINDS
        .iter()
        .filter(|k| prefs.mode(me.user.is_owner(), k.as_str()) != Mode::Off)
        .map(|k| MailKind::label(*k))
        .collect();
    me.audit(audit::Action::NotificationSettingsChanged, &format!("受け取る通知: {}", on.join("・")), &ip).await?;
    me.flash(FlashKind::Success, "通知の設定を保存しました").await?;
    Ok(Redirect::to("/account/notifications").into_response())
}
