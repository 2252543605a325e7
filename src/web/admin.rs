//! The support view (product.md §9). Support staff only; merchants are refused.
//!
//! The overview pages through accounts by ID (keyset) and aggregates only the page's stores,
//! each through an index, so it stays fast with thousands of accounts. 「要対応」 applies
//! `domain::health::attention` to each store and keeps the accounts with at least one.
//! From here support staff stop and resume automatic import, and open a read-only look at one
//! account's data (a stated reason, one hour, audited in the merchant's log).

use askama::Template;
use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    input::{Form, Query},
    render::{FlashKind, Layout, ok},
    session::{self, ClientIp, Support},
};
use crate::{
    app::AppState,
    db::{
        self,
        audit::{Action, Actor, Note},
        imports,
        password_reset::{self, OwnerChoice},
        support::{self, OverviewAccount, OverviewStore, SchedulerLag},
    },
    domain::{
        AccountId, StoreId,
        diagnosis::{self, human},
        health::{self, Attention},
        user::RESET_LINK_VALID_MINUTES,
    },
};

/// Accounts per page.
pub const PAGE_SIZE: usize = 50;
/// Accounts read at a time while the 「要対応」 filter looks for a page's worth.
const SCAN_BATCH: i64 = 200;
/// How long a support access lasts.
pub const ACCESS_MINUTES: i64 = 60;

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    q: String,
    /// 「要対応」 only.
    #[serde(default)]
    attention: Option<String>,
    /// The last account ID of the previous page.
    after: Option<i64>,
}

/// One store's row of the overview.
pub struct StoreRow {
    pub store: OverviewStore,
    pub attention: Vec<Attention>,
    pub authorization_left: String,
    pub key_left: String,
    pub short_regime: bool,
    pub clock_offset: String,
    pub error_rate: Option<i64>,
    /// How late its automatic import is (due and not stopped).
    pub lag: Option<String>,
}

impl StoreRow {
    pub fn attention_labels(&self) -> String {
        self.attention.iter().map(|a| a.label()).collect::<Vec<_>>().join("・")
    }
}

pub struct AccountRow {
    pub account: OverviewAccount,
    pub stores: Vec<StoreRow>,
}

/// The mail job across the service: a dead SMTP server shows here as waiting messages with
/// the newest error.
pub struct MailHealth {
    pub transport: String,
    pub waiting: i64,
    pub failed: i64,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/index.html")]
pub struct AdminPage {
    mail: MailHealth,
    layout: Layout,
    accounts: Vec<AccountRow>,
    q: String,
    attention_only: bool,
    next_after: Option<i64>,
    lag: SchedulerLag,
    lag_text: String,
    /// Owners a password reset link can be issued for.
    owners: Vec<OwnerChoice>,
    valid_minutes: i64,
    access_minutes: i64,
}

impl AdminPage {
    /// The link to the next page, keeping the search and the filter.
    pub fn next_link(&self, after: i64) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.is_empty() {
            url.append_pair("q", &self.q);
        }
        if self.attention_only {
            url.append_pair("attention", "1");
        }
        url.append_pair("after", &after.to_string());
        format!("/admin?{}", url.finish())
    }
}

fn store_row(store: OverviewStore, account_stopped: bool, now: DateTime<Utc>) -> StoreRow {
    let facts = store.facts();
    let clocks = diagnosis::clocks(&facts, now);
    let attention = health::attention(&store.health(account_stopped), now);
    let running = store.auto_import_enabled && store.connected && store.stopped_at.is_none() && !account_stopped;
    let lag = store.next_run_at.filter(|at| running && *at < now).map(|at| human(now - at));
    StoreRow {
        attention,
        authorization_left: clocks.authorization,
        key_left: clocks.public_key,
        short_regime: diagnosis::short_regime(&facts),
        clock_offset: clocks.clock_offset,
        error_rate: health::error_rate(store.runs_24h, store.failed_runs_24h),
        lag,
        store,
    }
}

/// One page of the overview: accounts after `after` matching `q`, with their stores; with
/// `attention_only`, only accounts with a store (or an account stop) needing attention, and
/// only those stores. Returns the page and the cursor of the next one.
pub async fn overview(
    db: &db::Db,
    q: &str,
    attention_only: bool,
    mut after: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<(Vec<AccountRow>, Option<i64>)> {
    let since = now - Duration::hours(24);
    let mut rows = Vec::new();
    loop {
        let batch_size = if attention_only { SCAN_BATCH } else { PAGE_SIZE as i64 + 1 };
        let mut accounts = support::overview_accounts(db, after, q, batch_size).await?;
        let exhausted = (accounts.len() as i64) < batch_size;
        if !attention_only && accounts.len() > PAGE_SIZE {
            accounts.truncate(PAGE_SIZE);
        }
        let (Some(first), Some(last)) = (accounts.first().map(|a| a.id), accounts.last().map(|a| a.id)) else {
            return Ok((rows, None));
        };
        let mut stores = support::overview_stores(db, first, last, since).await?.into_iter().peekable();
        for account in accounts {
            let account_stopped = account.stopped_at.is_some();
            // Stores come in account order; skip those of accounts the search left out.
            while stores.peek().is_some_and(|s| s.account_id < account.id) {
                stores.next();
            }
            let mut store_rows = Vec::new();
            while let Some(s) = stores.next_if(|s| s.account_id == account.id) {
                store_rows.push(store_row(s, account_stopped, now));
            }
            after = account.id.0;
            if attention_only {
                store_rows.retain(|r| !r.attention.is_empty());
                if store_rows.is_empty() && !account_stopped {
                    continue;
                }
            }
            rows.push(AccountRow { account, stores: store_rows });
            if attention_only && rows.len() == PAGE_SIZE {
                // Whether anything follows is known only by looking; offer the link.
                return Ok((rows, Some(after)));
            }
        }
        if !attention_only {
            return Ok((rows, (!exhausted).then_some(after)));
        }
        if exhausted {
            return Ok((rows, None));
        }
    }
}

pub async fn index(
    State(state): State<AppState>,
    staff: Support,
    Query(query): Query<OverviewQuery>,
) -> AppResult<Response> {
    let now = db::now();
    let q: String = query.q.trim().chars().take(100).collect();
    let attention_only = query.attention.as_deref().is_some_and(|v| !v.is_empty() && v != "0");
    let (accounts, next_after) = overview(&state.db, &q, attention_only, query.after.unwrap_or(0), now).await?;
    let lag = support::scheduler_lag(&state.db, now).await?;
    let lag_text = match lag.oldest_due_at {
        Some(at) if at < now => human(now - at),
        _ => "遅れなし".to_string(),
    };
    // Reset links are offered for the owners of the accounts on this page only.
    let owners = match (accounts.first(), accounts.last()) {
        (Some(first), Some(last)) => {
            let shown: std::collections::HashSet<AccountId> = accounts.iter().map(|a| a.account.id).collect();
            let mut owners = password_reset::owners(&state.db, first.account.id, last.account.id).await?;
            owners.retain(|o| shown.contains(&o.account_id));
            owners
        }
        _ => Vec::new(),
    };
    let (mail_waiting, mail_failed, mail_error) = crate::db::mail::health(&state.db).await?;
    let mail = MailHealth {
        transport: state.mailer.describe().to_owned(),
        waiting: mail_waiting,
        failed: mail_failed,
        error: mail_error,
    };
    let layout = staff.layout("サポート管理画面").await?;
    Ok(ok(&AdminPage {
        layout,
        mail,
        accounts,
        q,
        attention_only,
        next_after,
        lag,
        lag_text,
        owners,
        valid_minutes: RESET_LINK_VALID_MINUTES,
        access_minutes: ACCESS_MINUTES,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct StopForm {
    #[serde(default)]
    account_id: String,
    /// Empty: the whole account.
    #[serde(default)]
    store_id: String,
    #[serde(default)]
    reason: String,
}

fn parse_ids(form: &StopForm) -> AppResult<(AccountId, Option<StoreId>)> {
    let account = form.account_id.trim().parse::<i64>().map_err(|_| AppError::BadRequest("account_id"))?;
    let store = match form.store_id.trim() {
        "" => None,
        s => Some(StoreId(s.parse::<i64>().map_err(|_| AppError::BadRequest("store_id"))?)),
    };
    Ok((AccountId(account), store))
}

/// 緊急停止 from the support view, with a reason the merchant sees on their pages, audited in
/// the merchant's log with the support person as actor.
pub async fn stop(
    State(state): State<AppState>,
    staff: Support,
    ClientIp(ip): ClientIp,
    Form(form): Form<StopForm>,
) -> AppResult<Response> {
    let (account_id, store_id) = parse_ids(&form)?;
    let reason: String = form.reason.trim().chars().take(200).collect();
    if reason.is_empty() {
        staff_flash(&staff, FlashKind::Error, "停止の理由を入力してください。理由はお客様の画面に表示されます。")
            .await?;
        return Ok(Redirect::to("/admin").into_response());
    }
    let shown = format!("{reason}（サポート: {}）", staff.staff.display_name);
    set_stop(&state, &staff, &ip, account_id, store_id, Some(&shown)).await?;
    staff_flash(&staff, FlashKind::Success, "緊急停止しました。自動受注取込と在庫連動は止まっています。").await?;
    Ok(Redirect::to("/admin").into_response())
}

pub async fn resume(
    State(state): State<AppState>,
    staff: Support,
    ClientIp(ip): ClientIp,
    Form(form): Form<StopForm>,
) -> AppResult<Response> {
    let (account_id, store_id) = parse_ids(&form)?;
    set_stop(&state, &staff, &ip, account_id, store_id, None).await?;
    staff_flash(&staff, FlashKind::Success, "再開しました。停止中の注文を続きから取り込みます。").await?;
    Ok(Redirect::to("/admin").into_response())
}

async fn set_stop(
    state: &AppState,
    staff: &Support,
    ip: &str,
    account_id: AccountId,
    store_id: Option<StoreId>,
    reason: Option<&str>,
) -> AppResult<()> {
    let action = if reason.is_some() { Action::EmergencyStop } else { Action::EmergencyResume };
    let actor = Actor::Support(&staff.staff.display_name);
    match store_id {
        Some(store_id) => {
            let store = db::stores::get(&state.db, account_id, store_id).await?.ok_or(AppError::NotFound)?;
            let detail = match reason {
                Some(r) => format!("{}: {r}", store.name),
                None => store.name.clone(),
            };
            let note = Note::new(account_id, actor, action, detail, Some(ip)).store(store.id);
            imports::set_store_stop(&state.db, account_id, store.id, reason, db::now(), &note).await?;
        }
        None => {
            db::accounts::get_account(&state.db, account_id).await?.ok_or(AppError::NotFound)?;
            let detail = match reason {
                Some(r) => format!("すべてのストア: {r}"),
                None => "すべてのストア".to_string(),
            };
            let note = Note::new(account_id, actor, action, detail, Some(ip));
            imports::set_account_stop(&state.db, account_id, reason, db::now(), &note).await?;
        }
    }
    Ok(())
}

async fn staff_flash(staff: &Support, kind: FlashKind, message: &str) -> AppResult<()> {
    session::flash(&staff.session, kind, message).await
}

/// The fewest visible characters a support access reason may have.
pub const MIN_REASON_CHARS: usize = 4;

#[derive(Debug, Default, Deserialize)]
pub struct AccessForm {
    #[serde(default)]
    account_id: String,
    #[serde(default)]
    reason: String,
    /// Checked when the reason needs buyers' personal data (otherwise it is masked).
    #[serde(default)]
    needs_personal: Option<String>,
}

/// Opens a read-only look at one account's data: a written reason is required; it lasts
/// [`ACCESS_MINUTES`] and is recorded in the merchant's audit log with the reason.
pub async fn open_access(
    State(state): State<AppState>,
    staff: Support,
    ClientIp(ip): ClientIp,
    Form(form): Form<AccessForm>,
) -> AppResult<Response> {
    let account_id = AccountId(form.account_id.trim().parse::<i64>().map_err(|_| AppError::BadRequest("account_id"))?);
    // The merchant reads the reason in their audit log: it needs visible words, not a blank
    // or a zero-width space.
    let (reason, visible) = super::input::visible_text(&form.reason);
    let reason: String = reason.chars().take(500).collect();
    if visible < MIN_REASON_CHARS {
        staff_flash(
            &staff,
            FlashKind::Error,
            &format!("閲覧の理由を{MIN_REASON_CHARS}文字以上で具体的に入力してください（例: 問い合わせ #123 の注文確認）。理由はお客様の監査ログに表示されます。"),
        )
        .await?;
        return Ok(Redirect::to("/admin").into_response());
    }
    let needs_personal = form.needs_personal.as_deref().is_some_and(|v| !v.is_empty());
    let now = db::now();
    let expires_at = now + Duration::minutes(ACCESS_MINUTES);
    let detail = format!(
        "理由: {reason}（{}分間・読み取り専用・購入者の個人情報{}）",
        ACCESS_MINUTES,
        if needs_personal { "を表示" } else { "は非表示" }
    );
    let note =
        Note::new(account_id, Actor::Support(&staff.staff.display_name), Action::SupportAccess, detail, Some(&ip));
    let Some(id) =
        support::open_access(&state.db, account_id, &staff.staff, &reason, needs_personal, now, expires_at, &note)
            .await?
    else {
        return Err(AppError::NotFound);
    };
    session::begin_support_access(&staff.session, id).await?;
    Ok(Redirect::to("/").into_response())
}

pub async fn end_access(staff: Support) -> AppResult<Response> {
    session::end_support_access(&staff.session).await?;
    staff_flash(&staff, FlashKind::Success, "サポート閲覧を終了しました").await?;
    Ok(Redirect::to("/admin").into_response())
}
