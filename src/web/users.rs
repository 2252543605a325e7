//! Users of an account: owners add and remove owners and staff.

use super::input::Form;
use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, render},
    session::{ClientIp, Owner},
};
use crate::{
    app::AppState,
    crypto,
    db::{
        WriteError,
        access::{self, Access},
        accounts::{self, User},
        audit::{Action, Changes},
        stores::{self, StoreLink},
    },
    domain::{
        StoreId, UserId,
        user::{Email, Role, check_name, check_new_password},
    },
};

type FieldErrors = std::collections::BTreeMap<&'static str, &'static str>;

const ADDS_LIMITED: &str =
    "ユーザーの追加は1時間に20人までです。しばらくしてからもう一度お試しください（追加していません）";

#[derive(Clone, Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub password: String,
    /// `invite` (a mail with a link to set their own password) or `password` (the owner's
    /// 初期パスワード); only offered while mail is sent by SMTP.
    #[serde(default)]
    pub how: String,
}

/// How long an invitation's link works.
pub const INVITE_VALID_HOURS: i64 = 72;

#[derive(Template)]
#[template(path = "users/index.html")]
pub struct UsersPage {
    layout: Layout,
    users: Vec<User>,
    me: UserId,
    form: NewUserForm,
    errors: FieldErrors,
    /// The account's stores, to choose from.
    stores: Vec<StoreLink>,
    access: Vec<Access>,
    /// Mail is sent by SMTP: a new user can be invited by mail.
    mail_configured: bool,
}

impl UsersPage {
    fn access_of(&self, user: &UserId) -> Access {
        self.access.iter().find(|a| a.user_id == *user).cloned().unwrap_or(Access {
            user_id: *user,
            all_stores: true,
            stores: Vec::new(),
            mask_personal: false,
        })
    }

    /// 担当ストア in words: 「すべてのストア」, the chosen names, or 「なし」.
    fn stores_label(&self, user: &User) -> String {
        let access = self.access_of(&user.id);
        let limited = !(user.is_owner() || access.all_stores);
        stores_words(limited.then_some(&access.stores[..]), &self.stores, "、")
    }
}

/// 担当ストア in words: 「すべてのストア」 (`None`), the chosen stores' names joined with `sep`,
/// or 「なし」.
fn stores_words(chosen: Option<&[StoreId]>, stores: &[StoreLink], sep: &str) -> String {
    let Some(chosen) = chosen else {
        return "すべてのストア".into();
    };
    let names: Vec<&str> = stores.iter().filter(|s| chosen.contains(&s.id)).map(|s| s.name.as_str()).collect();
    if names.is_empty() { "なし".into() } else { names.join(sep) }
}

pub async fn index(State(state): State<AppState>, owner: Owner) -> AppResult<Response> {
    page(&state, &owner, NewUserForm { role: "staff".into(), ..Default::default() }, FieldErrors::new(), StatusCode::OK)
        .await
}

async fn page(
    state: &AppState,
    owner: &Owner,
    form: NewUserForm,
    errors: FieldErrors,
    status: StatusCode,
) -> AppResult<Response> {
    let users = accounts::list_users(&state.db, owner.account_id()).await?;
    let stores = stores::links(&state.db, owner.account_id()).await?;
    let access = access::list(&state.db, owner.account_id()).await?;
    let layout = owner.layout("ユーザー管理").await?;
    let mail_configured = mail_configured(state);
    Ok(render(status, &UsersPage { layout, users, me: owner.user.id, form, errors, stores, access, mail_configured }))
}

/// Whether mail reaches people (SMTP): only then are invitations offered.
fn mail_configured(state: &AppState) -> bool {
    state.config.mail == crate::config::MailMode::Smtp
}

pub async fn create(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(mut form): Form<NewUserForm>,
) -> AppResult<Response> {
    let mut errors = FieldErrors::new();
    let email = Email::parse(&form.email).map_err(|e| errors.insert("email", e)).ok();
    let name =
        check_name(&form.display_name, "お名前を入力してください").map_err(|e| errors.insert("display_name", e)).ok();
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.insert("role", "権限を選んでください");
    }
    let invite = form.how != "password" && mail_configured(&state);
    if !invite && let Err(e) = check_new_password(&form.password) {
        errors.insert("password", e);
    }
    let (Some(email), Some(name), Some(role), true) = (email, name, role, errors.is_empty()) else {
        form.password.clear();
        return page(&state, &owner, form, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    // Throttled: whatever it answers, the form is not a way to try many addresses.
    let hour_ago = crate::db::now() - chrono::Duration::hours(1);
    if accounts::added_since(&state.db, owner.account_id(), hour_ago).await? >= accounts::ADDS_PER_HOUR {
        let mut errors = FieldErrors::new();
        errors.insert("email", ADDS_LIMITED);
        form.password.clear();
        return page(&state, &owner, form, errors, StatusCode::TOO_MANY_REQUESTS).await;
    }
    // Invited: no password anyone knows until they set theirs through the link.
    let password = if invite { crypto::random_token() } else { std::mem::take(&mut form.password) };
    let hash = crypto::hash_password_blocking(password).await?;
    let how = if invite { "、招待メール" } else { "、初期パスワード" };
    let note = owner.note(Action::UserAdded, format!("{} ({}{how})", email.as_str(), role.label()), &ip);
    let token = crypto::random_token();
    let token_hash = crate::db::password_reset::token_hash(&token);
    let invitation = if invite {
        let url = state.config.public_url().join(&format!("password-reset/{token}")).map_err(anyhow::Error::from)?;
        let (subject, body) = crate::domain::mail::invitation(
            &owner.account.name,
            &owner.user.display_name,
            url.as_str(),
            INVITE_VALID_HOURS,
        );
        Some(crate::db::mail::NewMail::plain(
            owner.account_id(),
            None,
            crate::domain::mail::MailKind::Invitation,
            email.as_str(),
            subject,
            body,
        ))
    } else {
        None
    };
    let invited = invitation.as_ref().map(|mail| accounts::Invite {
        token_hash: &token_hash,
        issued_by: &owner.user.email,
        expires_at: crate::db::now() + chrono::Duration::hours(INVITE_VALID_HOURS),
        secrets: &state.secrets,
        mail,
    });
    match accounts::add_user(&state.db, owner.account_id(), email.as_str(), &name, role, &hash, &note, invited).await {
        Ok(_) => {}
        Err(WriteError::Duplicate) => {
            // Only this account's own users are told apart: the owner sees them listed anyway.
            errors.insert("email", "このメールアドレスのユーザーはこのアカウントに追加済みです");
            form.password.clear();
            return page(&state, &owner, form, errors, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        Err(e) => return Err(e.into()),
    }
    let message = if invite {
        format!(
            "{name} さんを追加し、{} に招待メールを送りました。本人がリンクからパスワードを決めると使えるようになります（リンクは{INVITE_VALID_HOURS}時間有効。それまでは「初回ログイン待ち」と表示されます）",
            email.as_str()
        )
    } else {
        format!(
            "{name} さんを追加しました。{} と初期パスワードで初めてログインすると使えるようになります（それまでは「初回ログイン待ち」と表示されます）",
            email.as_str()
        )
    };
    owner.flash(FlashKind::Success, message).await?;
    Ok(Redirect::to("/users").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<UserId>,
) -> AppResult<Response> {
    let user = accounts::get_user(&state.db, owner.account_id(), user_id).await?.ok_or(AppError::NotFound)?;
    // Owners cannot remove themselves, which also keeps at least one owner in every account.
    if user.id == owner.user.id {
        owner.flash(FlashKind::Error, "自分自身は削除できません").await?;
        return Ok(Redirect::to("/users").into_response());
    }
    let note = owner.note(Action::UserRemoved, user.email.clone(), &ip);
    if !accounts::delete_user(&state.db, owner.account_id(), user_id, &note).await? {
        return Err(AppError::NotFound);
    }
    owner.flash(FlashKind::Success, format!("{} さんを削除しました", user.display_name)).await?;
    Ok(Redirect::to("/users").into_response())
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    pub new_password: String,
}

/// An owner sets a new password for another user who cannot sign in (forgotten password,
/// locked out); the owner passes it on, and the user changes it after signing in.
pub async fn reset_password(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<UserId>,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let user = accounts::get_user(&state.db, owner.account_id(), user_id).await?.ok_or(AppError::NotFound)?;
    if user.id == owner.user.id {
        owner.flash(FlashKind::Error, "自分のパスワードは「パスワード変更」から変更してください").await?;
        return Ok(Redirect::to("/users").into_response());
    }
    if let Err(e) = check_new_password(&form.new_password) {
        owner
            .flash(FlashKind::Error, format!("{} さんのパスワードを再設定できませんでした：{e}", user.display_name))
            .await?;
        return Ok(Redirect::to("/users").into_response());
    }
    let hash = crypto::hash_password_blocking(form.new_password).await?;
    // The new epoch ends the user's open sessions.
    let note = owner.note(Action::PasswordReset, user.email.clone(), &ip);
    if accounts::set_password_hash(&state.db, owner.account_id(), user.id, &hash, &note).await?.is_none() {
        return Err(AppError::NotFound);
    }
    // The reset also lifts a lock-out: the owner vouches for this person. Not for a pending
    // user: their address may be someone else's account, whose lock-out is not the owner's to
    // lift (it would let anyone reset the failures of any address they added).
    if !user.pending {
        crate::db::signin::clear_for_email(&state.db, &user.email).await?;
    }
    owner
        .flash(
            FlashKind::Success,
            format!(
                "{} さんのパスワードを再設定しました。新しいパスワードを本人に伝え、ログイン後に変更してもらってください。",
                user.display_name
            ),
        )
        .await?;
    Ok(Redirect::to("/users").into_response())
}

/// An owner chooses which stores a user may work (all, or a chosen set, possibly none) and
/// whether buyers' personal data is masked for them. Owners always work every store, so for
/// them only the mask switch counts. The user's sessions stay: their next request reads the
/// new scope.
///
/// Fields: `stores` = `all` or `some`, `store` = a store id (repeated), `mask_personal` = `on`.
pub async fn set_access(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(user_id): Path<UserId>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let account = owner.account_id();
    let user = accounts::get_user(&state.db, account, user_id).await?.ok_or(AppError::NotFound)?;
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let all_stores = user.is_owner() || field("stores") != Some("some");
    let mask_personal = field("mask_personal") == Some("on");
    let account_stores = stores::links(&state.db, account).await?;
    let chosen: Vec<&StoreLink> = account_stores
        .iter()
        .filter(|s| fields.iter().any(|(k, v)| k == "store" && v.parse::<i64>().ok() == Some(s.id.0)))
        .collect();
    let ids: Vec<StoreId> = if all_stores { Vec::new() } else { chosen.iter().map(|s| s.id).collect() };
    // Before → after of what changed, as for store settings (store names joined with 「・」,
    // since the changes themselves are joined with 「、」). Nothing changed, no entry.
    let before = access::scope(&state.db, account, user.id).await?.ok_or(AppError::NotFound)?;
    let after_stores = (!all_stores).then_some(&ids[..]);
    let mask_words = |masked: bool| if masked { "伏せる" } else { "表示する" };
    let mut changes = Changes::default();
    changes.field(
        "担当ストア",
        stores_words(before.stores.as_deref(), &account_stores, "・"),
        stores_words(after_stores, &account_stores, "・"),
    );
    changes.field("お客様の個人情報", mask_words(before.mask_personal), mask_words(mask_personal));
    let note = changes.detail(&user.email).map(|detail| owner.note(Action::UserAccessChanged, detail, &ip));
    if !access::set(&state.db, account, user.id, all_stores, &ids, mask_personal, note.as_ref()).await? {
        return Err(AppError::NotFound);
    }
    owner
        .flash(FlashKind::Success, format!("{} さんの担当ストアと個人情報の表示を変更しました", user.display_name))
        .await?;
    Ok(Redirect::to("/users").into_response())
}
