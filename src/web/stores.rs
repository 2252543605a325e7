//! Stores of an account (product.md §2): list, create, show, edit, delete. Connecting to Yahoo,
//! 接続テスト and the public-key form are in `connect.rs`; the store page shows their clocks and
//! diagnosis (domain::diagnosis).

use super::input::Form;
use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, ok, render},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    db::{
        WriteError,
        audit::{Action, Changes},
        imports::{self, ImportState, Run},
        stores::{self, NewSecret, Store},
    },
    domain::{
        StoreId,
        authorize::AuthorizeStatus,
        checklist::{self, Step},
        diagnosis::{self, Action as Fix, Clocks, Finding},
        store::{Environment, FieldErrors, InternalStatus, StoreForm, StoreSettings},
    },
};

const DUPLICATE_SELLER: &str = "このストアアカウントは既に登録されています";
/// What turning the fraud-hold restriction off risks, asked before it is saved.
pub const CONFIRM_UNRESTRICT: &str = "「不正保留注文のステータス変更を制限する」をオフにすると、Yahoo!が不正利用を審査中の注文（不正保留）や不正利用と確定した注文を、キャンセル以外のステータス（保留・出荷待ちなど）に変更できるようになります（出荷済みにはなりません）。審査中の注文を出荷待ちにして発送すると、代金を受け取れない不正利用の被害にあうおそれがあります。それでもオフにする場合は、チェックを入れて、もう一度保存してください。";

const CONFIRM_DISCONNECT: &str = "ストアアカウントまたは接続先を変えると、今のYahoo!連携は解除されます。よろしければチェックを入れて、もう一度保存してください。";

#[derive(Template)]
#[template(path = "stores/index.html")]
pub struct StoresPage {
    layout: Layout,
    stores: Vec<Store>,
}

pub async fn index(State(state): State<AppState>, me: Merchant) -> AppResult<Response> {
    let stores = stores::visible(&state.db, &me.scope().await?).await?;
    let layout = me.layout("ストア").await?;
    Ok(ok(&StoresPage { layout, stores }))
}

#[derive(Template)]
#[template(path = "stores/show.html")]
pub struct StorePage {
    layout: Layout,
    store: Store,
    redirect_uri: String,
    findings: Vec<Finding>,
    clocks: Clocks,
    import: ImportState,
    runs: Vec<Run>,
    /// Calls today by every store of this Yahoo app, and the app's daily quota.
    calls_today: i64,
    quota: i64,
    steps: Vec<Step>,
    is_owner: bool,
    /// 連携 as it stands now: a connection whose session has ended is not 連携済み.
    connection_label: &'static str,
    /// The stored client secret does not open for this store (moved from another row, or
    /// damaged): the page asks for it again instead of saying 設定済み.
    secret_unreadable: bool,
    /// 在庫連動: values waiting to be pushed to this store, those Yahoo refused, and the last error.
    stock_waiting: i64,
    stock_failed: i64,
    stock_error: Option<String>,
    /// Order pushes (キャンセル, 出荷済み, 完了) Yahoo refused for this store.
    pushes_failed: i64,
}

impl StorePage {
    fn reauthorize(f: &Finding) -> bool {
        f.action == Some(Fix::Reauthorize)
    }

    /// A finding that names the key as the cause offers the key form too.
    fn set_key(f: &Finding) -> bool {
        f.action == Some(Fix::SetPublicKey) || (f.action == Some(Fix::Reauthorize) && f.advice.contains("公開鍵"))
    }

    fn all_done(&self) -> bool {
        self.steps.iter().all(Step::is_done)
    }

    /// 次回の自動取込, said truthfully: a time only while the next run will really happen.
    fn next_import(&self) -> String {
        use crate::domain::diagnosis::Connection;
        let store = &self.store;
        if self.import.emergency_stopped() {
            return "緊急停止中（再開するまで取り込みません）".into();
        }
        if !store.auto_import_enabled {
            return "—（自動受注取込はオフです）".into();
        }
        match store.connection() {
            Connection::NotConnected => return "Yahoo!と連携すると始まります".into(),
            Connection::Expired => return "止まっています（再連携すると再開します）".into(),
            Connection::Connected => {}
        }
        if !store.has_public_key || store.public_key_version.is_none() {
            return "公開鍵を設定すると始まります".into();
        }
        if self.import.blocked_reason.is_some() {
            return "止まっています（上の案内のとおり再連携か公開鍵の設定をすると再開します）".into();
        }
        self.import.next_run_at.map_or_else(|| "まもなく".into(), crate::web::render::jst)
    }

    fn authorize_status_label(&self) -> Option<&'static str> {
        self.store.last_authorize_status.as_deref().map(|s| AuthorizeStatus::parse(s).label())
    }
}

pub async fn show(State(state): State<AppState>, me: Merchant, Path(store_id): Path<StoreId>) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let layout = me.layout(&store.name).await?;
    let now = chrono::Utc::now();
    let facts = store.facts();
    let (findings, clocks) = (diagnosis::diagnose(&facts, now), diagnosis::clocks(&facts, now));
    let (stock_waiting, stock_failed, stock_error) = crate::db::stock::push_summary(&state.db, me.account_id())
        .await?
        .into_iter()
        .find(|(id, ..)| *id == store.id)
        .map_or((0, 0, None), |(_, w, f, e)| (w, f, e));
    let pushes_failed = crate::db::outbox::failed_per_store(&state.db, me.account_id())
        .await?
        .into_iter()
        .find(|(id, _)| *id == store.id)
        .map_or(0, |(_, n)| n);
    let secret_unreadable = match stores::sealed_client_secret(&state.db, me.account_id(), store.id).await? {
        Some(sealed) => state.secrets.open(crate::yahoo::client::CLIENT_SECRET, store.id.0, &sealed).is_err(),
        None => false,
    };
    let app_registered = !store.client_id.is_empty() && store.has_client_secret && !secret_unreadable;
    let steps = checklist::checklist(app_registered, &facts, now);
    let connection_label = diagnosis::connection(&facts, now).label();
    let is_owner = me.user.is_owner();
    let import = imports::state(&state.db, me.account_id(), store.id).await?;
    let mut runs = imports::list_runs(&state.db, me.account_id(), Some(store.id), 5).await?;
    imports::Run::flag_unresponsive(&mut runs, super::imports::lease(&state), now);
    let today = crate::domain::jst::today(now).to_string();
    let calls_today = imports::app_calls_today(&state.db, me.account_id(), store.id, &today).await?;
    Ok(ok(&StorePage {
        layout,
        store,
        redirect_uri: redirect_uri(&state),
        findings,
        clocks,
        import,
        runs,
        calls_today,
        quota: state.config.yahoo_daily_quota,
        steps,
        is_owner,
        connection_label,
        secret_unreadable,
        stock_waiting,
        stock_failed,
        stock_error,
        pushes_failed,
    }))
}

/// The OAuth redirect URI the merchant registers with Yahoo for this service.
pub fn redirect_uri(state: &AppState) -> String {
    state.config.redirect_uri()
}

/// The store form, for a new store (`store_id` None) or an existing one.
#[derive(Template)]
#[template(path = "stores/form.html")]
pub struct StoreFormPage {
    layout: Layout,
    redirect_uri: String,
    store_id: Option<StoreId>,
    form: StoreForm,
    has_client_secret: bool,
    errors: FieldErrors,
    environments: [Environment; 3],
    targets: Vec<InternalStatus>,
    /// A secret was typed and, the form having errors, is not sent back: the page says so.
    secret_cleared: bool,
    /// The local simulator's address, when this service runs one: the form says what to type
    /// to try it (the demo store's values).
    simulator: Option<String>,
}

impl StoreFormPage {
    fn new(
        layout: Layout,
        state: &AppState,
        store_id: Option<StoreId>,
        form: StoreForm,
        has_client_secret: bool,
        errors: FieldErrors,
    ) -> Self {
        StoreFormPage {
            layout,
            redirect_uri: redirect_uri(state),
            simulator: state.config.simulator_url.as_ref().map(ToString::to_string),
            store_id,
            form,
            has_client_secret,
            errors,
            environments: Environment::ALL,
            targets: InternalStatus::auto_change_targets().collect(),
            secret_cleared: false,
        }
    }

    fn is_checked(value: &Option<String>) -> bool {
        value.as_deref().is_some_and(|v| !v.is_empty())
    }
}

fn form_from(s: &StoreSettings) -> StoreForm {
    let on = |b: bool| b.then(|| "on".to_string());
    StoreForm {
        name: s.name.clone(),
        seller_id: s.seller_id.clone(),
        environment: s.environment.as_str().to_string(),
        client_id: s.client_id.clone(),
        client_secret: String::new(),
        auto_import_enabled: on(s.auto_import_enabled),
        auto_import_interval_minutes: s.auto_import_interval_minutes.to_string(),
        auto_status_change_enabled: on(s.auto_status_change_enabled),
        auto_status_change_target: s.auto_status_change_target.map(|t| t.as_str().to_string()).unwrap_or_default(),
        restrict_fraud_hold_changes: on(s.restrict_fraud_hold_changes),
        stock_sync_enabled: on(s.stock_sync_enabled),
        auto_import_inbox: on(s.auto_import_inbox),
        confirm_disconnect: None,
        confirm_unrestrict: None,
    }
}

pub async fn new_form(State(state): State<AppState>, owner: Owner) -> AppResult<Response> {
    // Defaults of product.md §2: the fraud-hold restriction is on, ステータス自動変更 and 在庫連動
    // are off; automatic import is on, every minute, so orders arrive without anyone pressing
    // anything once the store is connected.
    let form = StoreForm {
        environment: Environment::Simulator.as_str().to_string(),
        auto_import_enabled: Some("on".into()),
        auto_import_interval_minutes: crate::domain::store::DEFAULT_IMPORT_INTERVAL_MINUTES.to_string(),
        restrict_fraud_hold_changes: Some("on".into()),
        ..StoreForm::default()
    };
    let layout = owner.layout("ストアの追加").await?;
    Ok(ok(&StoreFormPage::new(layout, &state, None, form, false, FieldErrors::new())))
}

pub async fn create(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(form): Form<StoreForm>,
) -> AppResult<Response> {
    let settings = match form.validate() {
        Ok(s) => s,
        Err(errors) => return form_again(&state, &owner, None, form, false, errors).await,
    };
    let secret = form.new_client_secret().map(|plaintext| NewSecret { secrets: &state.secrets, plaintext });
    let detail = format!("{} ({}, {})", settings.name, settings.seller_id, settings.environment.label());
    let note = owner.note(Action::StoreCreated, detail, &ip);
    let store_id = match stores::create(&state.db, owner.account_id(), &settings, secret, Some(&note)).await {
        Ok(id) => id,
        Err(WriteError::Duplicate) => {
            let errors = FieldErrors::from([("seller_id", DUPLICATE_SELLER)]);
            return form_again(&state, &owner, None, form, false, errors).await;
        }
        Err(e) => return Err(e.into()),
    };
    owner.flash(FlashKind::Success, format!("ストア「{}」を追加しました", settings.name)).await?;
    Ok(Redirect::to(&format!("/stores/{store_id}")).into_response())
}

async fn form_again(
    state: &AppState,
    owner: &Owner,
    store_id: Option<StoreId>,
    mut form: StoreForm,
    has_client_secret: bool,
    errors: FieldErrors,
) -> AppResult<Response> {
    // A typed secret is never sent back to the browser, even on error.
    let secret_cleared = !form.client_secret.trim().is_empty();
    form.client_secret.clear();
    let layout = owner.layout(if store_id.is_some() { "ストア設定の編集" } else { "ストアの追加" }).await?;
    let mut page = StoreFormPage::new(layout, state, store_id, form, has_client_secret, errors);
    page.secret_cleared = secret_cleared;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

pub async fn edit_form(
    State(state): State<AppState>,
    owner: Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let layout = owner.layout("ストア設定の編集").await?;
    let page = StoreFormPage::new(
        layout,
        &state,
        Some(store.id),
        form_from(&store.settings()),
        store.has_client_secret,
        FieldErrors::new(),
    );
    Ok(ok(&page))
}

pub async fn update(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(form): Form<StoreForm>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let settings = match form.validate() {
        Ok(s) => s,
        Err(errors) => return form_again(&state, &owner, Some(store_id), form, store.has_client_secret, errors).await,
    };
    // The tokens were granted for this seller at this endpoint; changing either ends the
    // connection, which the owner confirms first.
    let before = store.settings();
    let moves = before.seller_id != settings.seller_id || before.environment != settings.environment;
    let disconnect = store.has_refresh_token && moves;
    if disconnect && !crate::domain::store::checked(form.confirm_disconnect.clone()) {
        let errors = FieldErrors::from([("confirm_disconnect", CONFIRM_DISCONNECT)]);
        return form_again(&state, &owner, Some(store_id), form, store.has_client_secret, errors).await;
    }
    // Turning the fraud-hold restriction off is asked twice, naming the risk (and audited below
    // with the other changes).
    if before.restrict_fraud_hold_changes
        && !settings.restrict_fraud_hold_changes
        && !crate::domain::store::checked(form.confirm_unrestrict.clone())
    {
        let errors = FieldErrors::from([("confirm_unrestrict", CONFIRM_UNRESTRICT)]);
        return form_again(&state, &owner, Some(store_id), form, store.has_client_secret, errors).await;
    }
    let new_secret = form.new_client_secret().map(|plaintext| NewSecret { secrets: &state.secrets, plaintext });
    let mut notes = Vec::new();
    if let Some(detail) = describe_changes(&before, &settings).detail(&settings.name) {
        notes.push(owner.note(Action::StoreUpdated, detail, &ip).store(store_id));
    }
    if new_secret.is_some() {
        notes.push(owner.note(Action::ClientSecretChanged, settings.name.clone(), &ip).store(store_id));
    }
    if disconnect {
        let detail = format!("{}: Yahoo!連携を解除", settings.name);
        notes.push(owner.note(Action::StoreUpdated, detail, &ip).store(store_id));
    }
    match stores::update(&state.db, owner.account_id(), store_id, &settings, new_secret, disconnect, &notes).await {
        Ok(true) => {}
        Ok(false) => return Err(AppError::NotFound),
        Err(WriteError::Duplicate) => {
            let errors = FieldErrors::from([("seller_id", DUPLICATE_SELLER)]);
            return form_again(&state, &owner, Some(store_id), form, store.has_client_secret, errors).await;
        }
        Err(e) => return Err(e.into()),
    }
    // A new secret or seller applies to the next call, in this process at once.
    state.yahoo.credentials_changed(store_id);
    if disconnect {
        owner
            .flash(
                FlashKind::Success,
                "ストア設定を保存し、Yahoo!連携を解除しました。「Yahoo!と連携する」からもう一度連携してください。",
            )
            .await?;
        return Ok(Redirect::to(&format!("/stores/{store_id}")).into_response());
    }
    owner.flash(FlashKind::Success, "ストア設定を保存しました").await?;
    Ok(Redirect::to(&format!("/stores/{store_id}")).into_response())
}

/// Which settings changed, in words, for the audit log (values only for non-secret fields).
fn describe_changes(before: &StoreSettings, after: &StoreSettings) -> Changes {
    let on_off = |b: bool| if b { "オン" } else { "オフ" };
    let mut out = Changes::default();
    let mut diff = |label: &str, a: String, b: String| out.field(label, a, b);
    diff("ストア名", before.name.clone(), after.name.clone());
    diff("ストアアカウント", before.seller_id.clone(), after.seller_id.clone());
    diff("接続先", before.environment.label().into(), after.environment.label().into());
    diff("Client ID", before.client_id.clone(), after.client_id.clone());
    diff("自動受注取込", on_off(before.auto_import_enabled).into(), on_off(after.auto_import_enabled).into());
    diff(
        "取込間隔(分)",
        before.auto_import_interval_minutes.to_string(),
        after.auto_import_interval_minutes.to_string(),
    );
    diff(
        "ステータス自動変更",
        on_off(before.auto_status_change_enabled).into(),
        on_off(after.auto_status_change_enabled).into(),
    );
    let target = |t: Option<InternalStatus>| t.map_or("なし", InternalStatus::label).to_string();
    diff("自動変更先", target(before.auto_status_change_target), target(after.auto_status_change_target));
    diff(
        "不正保留注文の変更制限",
        on_off(before.restrict_fraud_hold_changes).into(),
        on_off(after.restrict_fraud_hold_changes).into(),
    );
    diff("在庫連動", on_off(before.stock_sync_enabled).into(), on_off(after.stock_sync_enabled).into());
    diff("自動受注取込の受信箱", on_off(before.auto_import_inbox).into(), on_off(after.auto_import_inbox).into());
    out
}

pub async fn delete(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let note = owner.note(Action::StoreDeleted, format!("{} ({})", store.name, store.seller_id), &ip).store(store.id);
    if !stores::delete(&state.db, owner.account_id(), store_id, &note).await? {
        return Err(AppError::NotFound);
    }
    owner.flash(FlashKind::Success, format!("ストア「{}」を削除しました", store.name)).await?;
    Ok(Redirect::to("/stores").into_response())
}
