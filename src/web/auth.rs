//! Sign-up, sign-in, sign-out and password change.
//!
//! An unknown email and a wrong password get the same answer and take the same time (the
//! password is checked against a dummy hash). Failed sign-ins are throttled per email and per
//! client address, counted in the database so several servers throttle together.

use super::input::{Form, Query};
use askama::Template;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::AppResult,
    render::{Flash, FlashKind, Layout, ok, render},
    session::{self, ClientIp, Merchant, Principal, Visitor},
};
use crate::{
    app::AppState,
    crypto,
    db::{
        WriteError, accounts,
        audit::{self, Action, Actor, Note},
        signin, support,
    },
    domain::{
        AccountId,
        user::{Email, check_name, check_new_password},
    },
};

pub const BAD_CREDENTIALS: &str = "メールアドレスまたはパスワードが正しくありません";
/// The password form after repeated wrong current passwords (counted like failed log-ins).
const PASSWORD_THROTTLED: &str = "パスワードの確認の失敗が続いたため、一時的にログインとパスワード変更を制限しています。しばらく待ってから再度お試しください。";
const SIGNUP_THROTTLED: &str =
    "このアドレスからの登録が続いたため、一時的に新規登録を制限しています。しばらく待ってから再度お試しください。";
/// The lock-out after repeated failures: how long it lasts, and what to do meanwhile.
pub fn throttled_message(window_minutes: i64) -> String {
    format!(
        "ログインの失敗が続いたため、一時的にログインを制限しています。{window_minutes}分ほど待ってから再度お試しください。\
         パスワードが分からない場合は、アカウントのオーナーにパスワードの再設定を依頼してください（オーナーご本人はサポートに再設定リンクの発行を依頼してください）。"
    )
}

/// Said with a failed sign-in when the next failure starts the lock-out.
pub fn last_attempt_warning(window_minutes: i64) -> String {
    format!("あと1回失敗すると、{window_minutes}分ほどログインできなくなります。")
}

/// Where to go after signing in: only a path on this site. `//host`, `/\host`, absolute URLs
/// and anything with control characters are refused (an open redirect would let a phishing
/// link borrow our sign-in page).
pub fn local_path(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2000
        && !next.starts_with("/signin")
        && !next.starts_with("/signout");
    ok.then_some(next)
}

/// Sends a person who needs to sign in to the sign-in page with the page they asked for, so they
/// come back to it. Only GET requests: a form posted to an expired session is not replayed.
pub async fn remember_wanted_page(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let wanted = (req.method() == axum::http::Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()))
        .flatten();
    let mut response = next.run(req).await;
    if let Some(wanted) = wanted
        && wanted != "/"
        && response.status() == StatusCode::SEE_OTHER
        && response.headers().get(axum::http::header::LOCATION).is_some_and(|l| l == "/signin")
        && local_path(&wanted).is_some()
    {
        let target =
            format!("/signin?{}", serde_urlencoded::to_string([("next", wanted.as_str())]).unwrap_or_default());
        if let Ok(v) = axum::http::HeaderValue::from_str(&target) {
            response.headers_mut().insert(axum::http::header::LOCATION, v);
        }
    }
    response
}
/// The one answer to every accepted sign-up, whether or not the email was registered already.
pub const SIGNED_UP: &str = "登録を受け付けました。登録したメールアドレスとパスワードでログインしてください。ログイン後、ストアを追加できます。ログインできない場合は、そのメールアドレスがすでに登録されているかもしれません: そのアドレスにご案内をメールで送りましたので、確かめてください。";
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
    let account_name = check_name(&form.account_name, "会社名・ストア名を入力してください")
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
    let (Some(account_name), Some(display_name), Some(email), true) =
        (account_name, display_name, email, errors.is_empty())
    else {
        return signup_again(&visitor, form, errors).await;
    };
    // From here on the answer is the same whether the email is new, a merchant's already, or a
    // support person's: the sign-in page, asking to log in with what was registered. Nothing
    // tells a stranger which emails exist (the same work is done either way: one password hash
    // and one transaction). Support logins are a separate namespace, so a support person's
    // email simply becomes a merchant account like any new one.
    let hash = crypto::hash_password_blocking(form.password.clone()).await?;
    let note = Note::new(AccountId(0), Actor::User(email.as_str()), Action::SignIn, "アカウント作成", Some(&ip));
    let created =
        accounts::create_account_with_owner(&state.db, &account_name, email.as_str(), &display_name, &hash, Some(note))
            .await;
    match created {
        Ok((account_id, user_id)) => tracing::info!(%account_id, %user_id, "account created"),
        Err(WriteError::Duplicate) => {
            // The account's owners learn of it in their audit log; the stranger learns nothing.
            if let Some(account_id) = accounts::account_of_email(&state.db, email.as_str()).await? {
                let detail = format!("{}（何も作成していません）", email.as_str());
                audit::record(
                    &state.db,
                    account_id,
                    Actor::Anonymous,
                    Action::SignUpWithExistingEmail,
                    &detail,
                    Some(&ip),
                )
                .await?;
            }
            // The address's owner is told by mail, with a way back in (a reset link).
            super::password_reset::mail_reset_link(
                &state,
                email.as_str(),
                &ip,
                crate::domain::mail::ResetWhy::SignUpAgain,
            )
            .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Redirect::to("/signin?signed_up=1").into_response())
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
    /// The page asked for before sign-in (a local path; anything else is ignored).
    #[serde(default)]
    pub next: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct SigninQuery {
    #[serde(default)]
    pub next: String,
    /// Set by the sign-out redirect: said on the page itself, since a flash would need a
    /// session and an anonymous visitor has none.
    #[serde(default)]
    pub signed_out: Option<String>,
    /// Set by the sign-up redirect.
    #[serde(default)]
    pub signed_up: Option<String>,
    /// Set after a password was set through a reset link.
    #[serde(default)]
    pub password_reset: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/signin.html")]
pub struct SigninPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    warning: Option<String>,
    next: String,
}

pub async fn signin_form(visitor: Visitor, Query(q): Query<SigninQuery>) -> AppResult<Response> {
    match session::principal(&visitor.session).await? {
        Some(Principal::Merchant { .. }) => return Ok(Redirect::to("/").into_response()),
        Some(Principal::Support { .. }) => return Ok(Redirect::to("/admin").into_response()),
        None => {}
    }
    let mut layout = visitor.layout("ログイン").await?;
    if q.signed_out.is_some() {
        layout.flashes.push(Flash { kind: FlashKind::Success, message: "ログアウトしました。".into() });
    }
    if q.signed_up.is_some() {
        layout.flashes.push(Flash { kind: FlashKind::Success, message: SIGNED_UP.into() });
    }
    if q.password_reset.is_some() {
        let message = "パスワードを再設定しました。新しいパスワードでログインしてください。";
        layout.flashes.push(Flash { kind: FlashKind::Success, message: message.into() });
    }
    let next = local_path(&q.next).unwrap_or_default().to_string();
    Ok(ok(&SigninPage { layout, email: String::new(), error: None, warning: None, next }))
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

    // Counted before the password is checked; an attempt that cannot be written is refused.
    let config = &state.config;
    let limits = config.signin_limits();
    let attempt = signin::begin(&state.db, &limits, &email, &ip).await?;
    if attempt.throttled {
        let message = throttled_message(config.signin_window_minutes);
        return signin_again(&visitor, &form, StatusCode::TOO_MANY_REQUESTS, message, None).await;
    }

    // Merchant users and support staff are separate namespaces (one email may be both): the
    // password says which login this is. A failure always costs two checks, the missing ones
    // against the dummy hash, so the time tells nothing about which emails exist where.
    let mut merchant = accounts::find_credentials(&state.db, &email).await?;
    let staff = support::find_credentials(&state.db, &email).await?;
    let dummy = || state.dummy_hash.to_string();
    // A user an owner added signs in for the first time: the password the owner chose says
    // which pending user this is (one address may wait in several accounts).
    let pending = if merchant.is_none() { accounts::pending_credentials(&state.db, &email).await? } else { Vec::new() };
    let merchant_hash = merchant.as_ref().or(pending.first()).map_or_else(dummy, |m| m.password_hash.clone());
    let mut merchant_ok = crypto::verify_password_blocking(form.password.clone(), merchant_hash).await?;
    // Signed in with the 初期パスワード an owner chose: asked to choose their own next.
    let mut first_with_initial_password = false;
    if merchant.is_none() && !pending.is_empty() {
        let mut chosen = merchant_ok.then(|| pending[0].clone());
        for other in pending.iter().skip(1) {
            if chosen.is_some() {
                break;
            }
            if crypto::verify_password_blocking(form.password.clone(), other.password_hash.clone()).await? {
                chosen = Some(other.clone());
            }
        }
        merchant = match chosen {
            Some(user) => accounts::activate(&state.db, &user, &email).await?,
            None => None,
        };
        merchant_ok = merchant.is_some();
        first_with_initial_password = merchant_ok;
    }
    let staff_ok = if merchant_ok && merchant.is_some() {
        false
    } else {
        let staff_hash = staff.as_ref().map_or_else(dummy, |s| s.password_hash.clone());
        crypto::verify_password_blocking(form.password.clone(), staff_hash).await?
    };

    match (merchant, staff) {
        (Some(m), _) if merchant_ok => {
            signin::succeeded(&state.db, attempt, &email, &ip).await?;
            let principal = Principal::Merchant { account_id: m.account_id, user_id: m.id, epoch: m.auth_epoch };
            session::sign_in(&visitor.session, principal).await?;
            audit::record(&state.db, m.account_id, Actor::User(&email), Action::SignIn, "", Some(&ip)).await?;
            if first_with_initial_password {
                session::flash(
                    &visitor.session,
                    FlashKind::Success,
                    "ようこそ。オーナーが決めた初期パスワードでログインしました。自分だけが知るパスワードに変更してください。",
                )
                .await?;
                return Ok(Redirect::to("/account/password?first=1").into_response());
            }
            let next = local_path(&form.next).filter(|n| !n.starts_with("/admin")).unwrap_or("/");
            Ok(Redirect::to(next).into_response())
        }
        (_, Some(s)) if staff_ok => {
            signin::succeeded(&state.db, attempt, &email, &ip).await?;
            session::sign_in(&visitor.session, Principal::Support { staff_id: s.id, epoch: s.auth_epoch }).await?;
            tracing::info!(staff_id = %s.id, "support staff signed in");
            let next = local_path(&form.next).filter(|n| n.starts_with("/admin")).unwrap_or("/admin");
            Ok(Redirect::to(next).into_response())
        }
        (merchant, _) => {
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
            // This failure counted; warn when the next one starts the lock-out.
            let warning = (attempt.pair_attempts + 1 == limits.per_pair)
                .then(|| last_attempt_warning(config.signin_window_minutes));
            signin_again(&visitor, &form, StatusCode::UNAUTHORIZED, BAD_CREDENTIALS.to_string(), warning).await
        }
    }
}

async fn signin_again(
    visitor: &Visitor,
    form: &SigninForm,
    status: StatusCode,
    error: String,
    warning: Option<String>,
) -> AppResult<Response> {
    let layout = visitor.layout("ログイン").await?;
    let next = local_path(&form.next).unwrap_or_default().to_string();
    let email = form.email.trim().to_string();
    Ok(render(status, &SigninPage { layout, email, error: Some(error), warning, next }))
}

pub async fn signout(State(state): State<AppState>, visitor: Visitor, ClientIp(ip): ClientIp) -> AppResult<Response> {
    if let Some(Principal::Merchant { account_id, user_id, .. }) = session::principal(&visitor.session).await?
        && let Some(user) = accounts::get_user(&state.db, account_id, user_id).await?
    {
        audit::record(&state.db, account_id, Actor::User(&user.email), Action::SignOut, "", Some(&ip)).await?;
    }
    session::sign_out(&visitor.session).await?;
    Ok(Redirect::to("/signin?signed_out=1").into_response())
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
        errors.insert("current_password", PASSWORD_THROTTLED);
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
    let note = me.note(Action::PasswordChanged, "", &ip);
    let epoch = accounts::set_password_hash(&state.db, me.account_id(), me.user.id, &new_hash, &note)
        .await?
        .ok_or(super::error::AppError::SignInRequired)?;
    // A new session ID, so a session stolen before the change is worthless after it.
    let principal = Principal::Merchant { account_id: me.account_id(), user_id: me.user.id, epoch };
    session::sign_in(&me.session, principal).await?;
    me.flash(FlashKind::Success, "パスワードを変更しました").await?;
    Ok(Redirect::to("/").into_response())
}
