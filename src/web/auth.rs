//! Sign-up, sign-in, sign-out and password change.
//!
//! An unknown email and a wrong password get the same answer and take the same time (the
//! password is checked against a dummy hash). Failed sign-ins are throttled per email and per
//! client address, counted in the database so several servers throttle together.

use askama::Template;
use axum::{
    Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::AppResult,
    render::{FlashKind, Layout, ok, render},
    session::{self, ClientIp, Merchant, Principal, Visitor},
};
use crate::{
    app::AppState,
    crypto,
    db::{
        WriteError, accounts,
        audit::{self, Action, Actor},
        signin, support,
    },
    domain::user::{Email, check_name, check_new_password},
};

pub const BAD_CREDENTIALS: &str = "メールアドレスまたはパスワードが正しくありません";
pub const THROTTLED: &str =
    "サインインの失敗が続いたため、一時的にサインインを制限しています。しばらく待ってから再度お試しください。";
const SIGNUP_THROTTLED: &str =
    "このアドレスからの登録が続いたため、一時的に新規登録を制限しています。しばらく待ってから再度お試しください。";
const EMAIL_TAKEN: &str = "このメールアドレスは既に登録されています";
const CONFIRM_MISMATCH: &str = "確認用のパスワードが一致しません";

/// Longest email kept as a throttling key (RFC 5321's path limit, with room).
const MAX_EMAIL_CHARS: usize = 320;

type FieldErrors = std::collections::BTreeMap<&'static str, &'static str>;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    pub account_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_confirm: String,
}

#[derive(Template)]
#[template(path = "auth/signup.html")]
pub struct SignupPage {
    layout: Layout,
    form: SignupForm,
    errors: FieldErrors,
}

pub async fn signup_form(visitor: Visitor) -> AppResult<Response> {
    if session::principal(&visitor.session).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    let layout = visitor.layout("新規登録").await?;
    Ok(ok(&SignupPage { layout, form: SignupForm::default(), errors: FieldErrors::new() }))
}

pub async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    ClientIp(ip): ClientIp,
    Form(form): Form<SignupForm>,
) -> AppResult<Response> {
    if signin::signup_throttled(&state.db, &state.config.signin_limits(), &ip).await? {
        tracing::warn!("sign-up throttled");
        let mut form = form;
        form.password.clear();
        form.password_confirm.clear();
        let layout = visitor.layout("新規登録").await?;
        let mut errors = FieldErrors::new();
        errors.insert("email", SIGNUP_THROTTLED);
        return Ok(render(StatusCode::TOO_MANY_REQUESTS, &SignupPage { layout, form, errors }));
    }
    let mut errors = FieldErrors::new();
    let account_name = check_name(&form.account_name, "会社名・ショップ名を入力してください")
        .map_err(|e| errors.insert("account_name", e))
        .ok();
    let display_name =
        check_name(&form.display_name, "お名前を入力してください").map_err(|e| errors.insert("display_name", e)).ok();
    let email = Email::parse(&form.email).map_err(|e| errors.insert("email", e)).ok();
    if let Err(e) = check_new_password(&form.password) {
        errors.insert("password", e);
    } else if form.password != form.password_confirm {
        errors.insert("password_confirm", CONFIRM_MISMATCH);
    }
    if let Some(email) = &email
        && errors.is_empty()
        && accounts::email_in_use(&state.db, email.as_str()).await?
    {
        errors.insert("email", EMAIL_TAKEN);
    }
    let (Some(account_name), Some(display_name), Some(email), true) =
        (account_name, display_name, email, errors.is_empty())
    else {
        return signup_again(&visitor, form, errors).await;
    };
    let hash = crypto::hash_password_blocking(form.password.clone()).await?;
    let (account_id, user_id) =
        match accounts::create_account_with_owner(&state.db, &account_name, email.as_str(), &display_name, &hash).await
        {
            Ok(ids) => ids,
            Err(WriteError::Duplicate) => {
                errors.insert("email", EMAIL_TAKEN);
                return signup_again(&visitor, form, errors).await;
            }
            Err(e) => return Err(e.into()),
        };
    tracing::info!(%account_id, %user_id, "account created");
    session::sign_in(&visitor.session, Principal::Merchant { account_id, user_id, epoch: 0 }).await?;
    audit::record(&state.db, account_id, Actor::User(email.as_str()), Action::SignIn, "アカウント作成", Some(&ip))
        .await?;
    session::flash(&visitor.session, FlashKind::Success, "アカウントを作成しました。次に店舗を追加してください。")
        .await?;
    Ok(Redirect::to("/").into_response())
}

async fn signup_again(visitor: &Visitor, mut form: SignupForm, errors: FieldErrors) -> AppResult<Response> {
    form.password.clear();
    form.password_confirm.clear();
    let layout = visitor.layout("新規登録").await?;
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &SignupPage { layout, form, errors }))
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SigninForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

#[derive(Template)]
#[template(path = "auth/signin.html")]
pub struct SigninPage {
    layout: Layout,
    email: String,
    error: Option<&'static str>,
}

pub async fn signin_form(visitor: Visitor) -> AppResult<Response> {
    match session::principal(&visitor.session).await? {
        Some(Principal::Merchant { .. }) => return Ok(Redirect::to("/").into_response()),
        Some(Principal::Support { .. }) => return Ok(Redirect::to("/admin").into_response()),
        None => {}
    }
    let layout = visitor.layout("サインイン").await?;
    Ok(ok(&SigninPage { layout, email: String::new(), error: None }))
}

pub async fn signin(
    State(state): State<AppState>,
    visitor: Visitor,
    ClientIp(ip): ClientIp,
    Form(form): Form<SigninForm>,
) -> AppResult<Response> {
    // The throttling key is bounded: whatever was typed, at most an email's length is stored.
    let email: String = Email::parse(&form.email)
        .map(|e| e.as_str().to_string())
        .unwrap_or_else(|_| form.email.trim().to_lowercase())
        .chars()
        .take(MAX_EMAIL_CHARS)
        .collect();
    let typed_email: String = form.email.trim().chars().take(MAX_EMAIL_CHARS).collect();

    // Counted before the password is checked; an attempt that cannot be written is refused.
    let attempt = signin::begin(&state.db, &state.config.signin_limits(), &email, &ip).await?;
    if attempt.throttled {
        return signin_again(&visitor, typed_email, StatusCode::TOO_MANY_REQUESTS, THROTTLED).await;
    }

    // Merchant users first, then support staff; the dummy hash keeps unknown emails as slow.
    let merchant = accounts::find_credentials(&state.db, &email).await?;
    let staff = match merchant {
        Some(_) => None,
        None => support::find_credentials(&state.db, &email).await?,
    };
    let hash = merchant
        .as_ref()
        .map(|m| m.password_hash.clone())
        .or_else(|| staff.as_ref().map(|s| s.password_hash.clone()))
        .unwrap_or_else(|| state.dummy_hash.to_string());
    let verified = crypto::verify_password_blocking(form.password.clone(), hash).await?;

    match (verified, merchant, staff) {
        (true, Some(m), _) => {
            signin::succeeded(&state.db, attempt, &email, &ip).await?;
            let principal = Principal::Merchant { account_id: m.account_id, user_id: m.id, epoch: m.auth_epoch };
            session::sign_in(&visitor.session, principal).await?;
            audit::record(&state.db, m.account_id, Actor::User(&email), Action::SignIn, "", Some(&ip)).await?;
            Ok(Redirect::to("/").into_response())
        }
        (true, None, Some(s)) => {
            signin::succeeded(&state.db, attempt, &email, &ip).await?;
            session::sign_in(&visitor.session, Principal::Support { staff_id: s.id, epoch: s.auth_epoch }).await?;
            tracing::info!(staff_id = %s.id, "support staff signed in");
            Ok(Redirect::to("/admin").into_response())
        }
        (_, merchant, _) => {
            // The attempt stays recorded as a failure.
            if let Some(m) = merchant {
                // Written off the request path so a known email answers exactly as fast as an
                // unknown one.
                let db = state.db.clone();
                let (email, ip) = (email.clone(), ip.clone());
                tokio::spawn(async move {
                    if let Err(e) =
                        audit::record(&db, m.account_id, Actor::Anonymous, Action::SignInFailed, &email, Some(&ip))
                            .await
                    {
                        tracing::error!(error = %e, "could not write the failed sign-in to the audit log");
                    }
                });
            }
            signin_again(&visitor, typed_email, StatusCode::UNAUTHORIZED, BAD_CREDENTIALS).await
        }
    }
}

async fn signin_again(
    visitor: &Visitor,
    email: String,
    status: StatusCode,
    error: &'static str,
) -> AppResult<Response> {
    let layout = visitor.layout("サインイン").await?;
    Ok(render(status, &SigninPage { layout, email, error: Some(error) }))
}

pub async fn signout(State(state): State<AppState>, visitor: Visitor, ClientIp(ip): ClientIp) -> AppResult<Response> {
    if let Some(Principal::Merchant { account_id, user_id, .. }) = session::principal(&visitor.session).await?
        && let Some(user) = accounts::get_user(&state.db, account_id, user_id).await?
    {
        audit::record(&state.db, account_id, Actor::User(&user.email), Action::SignOut, "", Some(&ip)).await?;
    }
    session::sign_out(&visitor.session).await?;
    Ok(Redirect::to("/signin").into_response())
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub new_password_confirm: String,
}

#[derive(Template)]
#[template(path = "account/password.html")]
pub struct PasswordPage {
    layout: Layout,
    errors: FieldErrors,
}

pub async fn password_form(me: Merchant) -> AppResult<Response> {
    let layout = me.layout("パスワード変更").await?;
    Ok(ok(&PasswordPage { layout, errors: FieldErrors::new() }))
}

pub async fn change_password(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Form(form): Form<PasswordForm>,
) -> AppResult<Response> {
    // Wrong current passwords are throttled and recorded like failed sign-ins (a stolen session
    // must not become a password-guessing oracle).
    let attempt = signin::begin(&state.db, &state.config.signin_limits(), &me.user.email, &ip).await?;
    let mut errors = FieldErrors::new();
    if attempt.throttled {
        errors.insert("current_password", THROTTLED);
        let layout = me.layout("パスワード変更").await?;
        return Ok(render(StatusCode::TOO_MANY_REQUESTS, &PasswordPage { layout, errors }));
    }
    let hash = accounts::get_password_hash(&state.db, me.account_id(), me.user.id).await?.unwrap_or_default();
    if crypto::verify_password_blocking(form.current_password.clone(), hash).await.unwrap_or(false) {
        signin::succeeded(&state.db, attempt, &me.user.email, &ip).await?;
    } else {
        errors.insert("current_password", "現在のパスワードが正しくありません");
        audit::record(
            &state.db,
            me.account_id(),
            Actor::User(&me.user.email),
            Action::SignInFailed,
            "パスワード変更: 現在のパスワードが正しくありません",
            Some(&ip),
        )
        .await?;
    }
    if let Err(e) = check_new_password(&form.new_password) {
        errors.insert("new_password", e);
    } else if form.new_password != form.new_password_confirm {
        errors.insert("new_password_confirm", CONFIRM_MISMATCH);
    }
    if !errors.is_empty() {
        let layout = me.layout("パスワード変更").await?;
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &PasswordPage { layout, errors }));
    }
    let new_hash = crypto::hash_password_blocking(form.new_password).await?;
    // The epoch moves on with the password: every other session of this user ends.
    let epoch = accounts::set_password_hash(&state.db, me.account_id(), me.user.id, &new_hash)
        .await?
        .ok_or(super::error::AppError::SignInRequired)?;
    me.audit(Action::PasswordChanged, "", &ip).await?;
    // A new session ID, so a session stolen before the change is worthless after it.
    let principal = Principal::Merchant { account_id: me.account_id(), user_id: me.user.id, epoch };
    session::sign_in(&me.session, principal).await?;
    me.flash(FlashKind::Success, "パスワードを変更しました").await?;
    Ok(Redirect::to("/").into_response())
}
