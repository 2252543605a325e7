//! One-time password reset links (issue 16): support staff issue one for a merchant owner who
//! cannot sign in; the owner opens it, sets a new password (which ends their other sessions) and
//! signs in. The link is shown once to the support person, stored only as a hash, works once and
//! for [`RESET_LINK_VALID_MINUTES`]; issuing and using it are written to the merchant's audit
//! log, which the owner sees.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    input::Form,
    render::{Layout, ok, render},
    session::{self, ClientIp, Support, Visitor},
};
use crate::domain::mail::ResetWhy;
use crate::{
    app::AppState,
    crypto,
    db::{
        self, accounts,
        audit::{Action, Actor, Note},
        password_reset::{self, Link},
        signin,
    },
    domain::{
        AccountId, UserId,
        user::{RESET_LINK_VALID_MINUTES, check_new_password},
    },
};

/// An invitation whose address signed up (or was taken up elsewhere) meanwhile.
pub const ADDRESS_TAKEN: &str = "このメールアドレスは、招待のあとで別のアカウントに登録されたため、この招待は使えません。招待したオーナーに、別のメールアドレスでの招待を依頼してください。";
pub const LINK_USED: &str = "このパスワード再設定リンクは既に使われています。もう一度必要な場合は、サポートに新しいリンクの発行を依頼してください。";
pub const LINK_EXPIRED: &str =
    "このパスワード再設定リンクは有効期限が切れています。サポートに新しいリンクの発行を依頼してください。";
pub const LINK_UNKNOWN: &str = "このパスワード再設定リンクは無効です。リンクを最後までコピーしたか確認するか、サポートに新しいリンクの発行を依頼してください。";

#[derive(Debug, Default, Deserialize)]
pub struct IssueForm {
    #[serde(default)]
    pub account_id: String,
    #[serde(default)]
    pub user_id: String,
}

#[derive(Template)]
#[template(path = "admin/reset_link.html")]
pub struct IssuedPage {
    layout: Layout,
    email: String,
    /// The link, shown once, only where no SMTP transport is configured; otherwise it went to
    /// the owner's mailbox and the support person never sees it.
    url: Option<String>,
    valid_minutes: i64,
}

/// Support staff issue a link for an owner; the page shows it once.
pub async fn issue(
    State(state): State<AppState>,
    staff: Support,
    ClientIp(ip): ClientIp,
    Form(form): Form<IssueForm>,
) -> AppResult<Response> {
    let (Ok(account_id), Ok(user_id)) = (form.account_id.trim().parse::<i64>(), form.user_id.trim().parse::<i64>())
    else {
        return Err(AppError::BadRequest("reset link form without account or user"));
    };
    let (account_id, user_id) = (AccountId(account_id), UserId(user_id));
    let user = accounts::get_user(&state.db, account_id, user_id).await?.filter(|u| u.is_owner());
    let Some(user) = user else { return Err(AppError::NotFound) };
    let token = crypto::random_token();
    let now = db::now();
    let expires_at = now + chrono::Duration::minutes(RESET_LINK_VALID_MINUTES);
    let detail = format!("{}（有効期限 {}）", user.email, super::render::jst(expires_at));
    let note = Note::new(
        account_id,
        Actor::Support(&staff.staff.display_name),
        Action::PasswordResetLinkIssued,
        detail,
        Some(&ip),
    );
    let hash = password_reset::token_hash(&token);
    let issued_by = staff.staff.email.clone();
    let url = state.config.public_url().join(&format!("password-reset/{token}")).map_err(anyhow::Error::from)?;
    // With an SMTP server the link goes to the owner's mailbox, not to the support person's
    // screen (seeing it would let them use it).
    let mail = state.mailer.sends().then(|| reset_mail(account_id, &user.email, url.as_str(), ResetWhy::Support));
    let queued = mail.as_ref().map(|m| (&state.secrets, m));
    if !password_reset::issue(&state.db, account_id, user_id, &hash, &issued_by, now, expires_at, &note, queued).await?
    {
        return Err(AppError::NotFound);
    }
    tracing::info!(staff_id = %staff.staff.id, %account_id, %user_id, mailed = mail.is_some(), "password reset link issued");
    let layout = staff.layout("パスワード再設定リンク").await?;
    // Shown once, never stored or put in a flash (which lives in the session row).
    let shown = mail.is_none().then(|| url.to_string());
    let mut response =
        ok(&IssuedPage { layout, email: user.email, url: shown, valid_minutes: RESET_LINK_VALID_MINUTES });
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub new_password_confirm: String,
}

type FieldErrors = std::collections::BTreeMap<&'static str, &'static str>;

#[derive(Template)]
#[template(path = "auth/password_reset.html")]
pub struct ResetPage {
    layout: Layout,
    /// The form's own address (the link); empty when the link cannot be used.
    action: String,
    email: String,
    /// An invitation (the user has not signed in yet): they set their first password.
    invited: bool,
    /// Why the link cannot be used.
    refusal: Option<&'static str>,
    errors: FieldErrors,
}

/// The link's row if it can still be used, or the message saying why not.
async fn usable(state: &AppState, token: &str) -> AppResult<Result<Link, &'static str>> {
    if token.len() > 100 {
        return Ok(Err(LINK_UNKNOWN));
    }
    Ok(match password_reset::find(&state.db, &password_reset::token_hash(token)).await? {
        None => Err(LINK_UNKNOWN),
        Some(link) if link.used_at.is_some() => Err(LINK_USED),
        Some(link) if link.expires_at <= db::now() => Err(LINK_EXPIRED),
        Some(link) => Ok(link),
    })
}

async fn refused(visitor: &Visitor, why: &'static str) -> AppResult<Response> {
    let layout = visitor.layout("パスワードの再設定").await?;
    let page = ResetPage {
        layout,
        action: String::new(),
        email: String::new(),
        invited: false,
        refusal: Some(why),
        errors: FieldErrors::new(),
    };
    Ok(render(StatusCode::GONE, &page))
}

pub async fn form(State(state): State<AppState>, visitor: Visitor, Path(token): Path<String>) -> AppResult<Response> {
    let link = match usable(&state, &token).await? {
        Ok(link) => link,
        Err(why) => return refused(&visitor, why).await,
    };
    let user = accounts::get_user(&state.db, link.account_id, link.user_id).await?;
    let invited = user.as_ref().is_some_and(|u| u.pending);
    let email = user.map(|u| u.email).unwrap_or_default();
    let layout = visitor.layout(if invited { "パスワードの設定" } else { "パスワードの再設定" }).await?;
    let action = format!("/password-reset/{token}");
    Ok(ok(&ResetPage { layout, action, email, invited, refusal: None, errors: FieldErrors::new() }))
}

pub async fn reset(
    State(state): State<AppState>,
    visitor: Visitor,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> AppResult<Response> {
    let link = match usable(&state, &token).await? {
        Ok(link) => link,
        Err(why) => return refused(&visitor, why).await,
    };
    let Some(user) = accounts::get_user(&state.db, link.account_id, link.user_id).await? else {
        return refused(&visitor, LINK_UNKNOWN).await;
    };
    let mut errors = FieldErrors::new();
    if let Err(e) = check_new_password(&form.new_password) {
        errors.insert("new_password", e);
    } else if form.new_password != form.new_password_confirm {
        errors.insert("new_password_confirm", "確認用のパスワードが一致しません");
    }
    if !errors.is_empty() {
        let layout = visitor.layout("パスワードの再設定").await?;
        let action = format!("/password-reset/{token}");
        let page = ResetPage { layout, action, email: user.email, invited: user.pending, refusal: None, errors };
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let hash = crypto::hash_password_blocking(form.new_password).await?;
    let note = Note::new(link.account_id, Actor::User(&user.email), Action::PasswordResetLinkUsed, "", Some(&ip));
    match password_reset::consume(&state.db, &link, &hash, db::now(), &note).await? {
        Ok(_) => {}
        // Used by another request between the check and now.
        Err(password_reset::NotConsumed::Used) => return refused(&visitor, LINK_USED).await,
        Err(password_reset::NotConsumed::AddressTaken) => return refused(&visitor, ADDRESS_TAKEN).await,
    }
    // Support vouched for this person: a lock-out on their email ends too.
    signin::clear_for_email(&state.db, &user.email).await?;
    // Whoever was signed in in this browser is not anymore; the owner signs in afresh.
    session::sign_out(&visitor.session).await?;
    Ok(Redirect::to("/signin?password_reset=1").into_response())
}

/// The mail carrying a reset link to `to`.
fn reset_mail(account: AccountId, to: &str, link: &str, why: ResetWhy) -> crate::db::mail::NewMail {
    let (subject, body) = crate::domain::mail::password_reset(link, RESET_LINK_VALID_MINUTES, why);
    crate::db::mail::NewMail::plain(account, None, crate::domain::mail::MailKind::PasswordReset, to, subject, body)
}

/// Mails `email` a one-time reset link when it is an owner's (at most
/// [`FORGOT_PER_USER_PER_HOUR`] an hour), audited in their account's log; when someone signed up
/// again with a staff member's address, that address is told so without a link (an owner
/// resets staff passwords). Any other address: nothing, and the caller answers the same.
pub async fn mail_reset_link(state: &AppState, email: &str, ip: &str, why: ResetWhy) -> AppResult<()> {
    let Some(user) = accounts::find_credentials(&state.db, email).await? else { return Ok(()) };
    let now = db::now();
    if password_reset::recent(&state.db, user.id, now - chrono::Duration::hours(1)).await? >= FORGOT_PER_USER_PER_HOUR {
        return Ok(());
    }
    let token = crypto::random_token();
    let expires_at = now + chrono::Duration::minutes(RESET_LINK_VALID_MINUTES);
    let url = state.config.public_url().join(&format!("password-reset/{token}")).map_err(anyhow::Error::from)?;
    let mail = reset_mail(user.account_id, email, url.as_str(), why);
    let how = match why {
        ResetWhy::SignUpAgain => "登録済みのアドレスでの新規登録",
        _ => "パスワードを忘れた",
    };
    let note = Note::new(
        user.account_id,
        Actor::User(email),
        Action::PasswordResetLinkIssued,
        format!("{email}（{how}: メールで送信、有効期限 {}）", super::render::jst(expires_at)),
        Some(ip),
    );
    // Not an owner (or an invitation not yet taken): nothing is written.
    let issued = password_reset::issue(
        &state.db,
        user.account_id,
        user.id,
        &password_reset::token_hash(&token),
        email,
        now,
        expires_at,
        &note,
        Some((&state.secrets, &mail)),
    )
    .await?;
    if !issued && why == ResetWhy::SignUpAgain && email.contains('@') {
        let signin = state.config.public_url().join("signin").map_err(anyhow::Error::from)?;
        let (subject, body) = crate::domain::mail::staff_signed_up_again(signin.as_str());
        let mail = crate::db::mail::NewMail::plain(
            user.account_id,
            None,
            crate::domain::mail::MailKind::AccountNotice,
            email,
            subject,
            body,
        );
        crate::db::mail::queue_one(&state.db, &mail, now).await?;
    }
    Ok(())
}

/// The one answer to パスワードを忘れた, whatever the address (no account oracle).
pub const FORGOT_ANSWER: &str = "入力したメールアドレスがオーナーのアカウントにあれば、パスワード再設定のリンクをメールで送りました（60分間有効）。届かない場合は迷惑メールのフォルダを確かめ、しばらくしてからもう一度お試しください。スタッフの方は、アカウントのオーナーに再設定を依頼してください。";

/// Links one owner may be sent in an hour by パスワードを忘れた.
const FORGOT_PER_USER_PER_HOUR: i64 = 3;

#[derive(Template)]
#[template(path = "auth/forgot.html")]
pub struct ForgotPage {
    layout: Layout,
    email: String,
    done: bool,
}

/// `GET /password-forgot`.
pub async fn forgot_form(visitor: Visitor) -> AppResult<Response> {
    let layout = visitor.layout("パスワードを忘れた").await?;
    Ok(ok(&ForgotPage { layout, email: String::new(), done: false }))
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    pub email: String,
}

/// `POST /password-forgot`: a one-time link by mail to an owner's address, audited; the same
/// answer for every address; throttled per client address and per owner.
pub async fn forgot(
    State(state): State<AppState>,
    visitor: Visitor,
    ClientIp(ip): ClientIp,
    Form(form): Form<ForgotForm>,
) -> AppResult<Response> {
    let email = form.email.trim().to_lowercase();
    let layout = visitor.layout("パスワードを忘れた").await?;
    let answer = || ok(&ForgotPage { layout: layout.clone(), email: email.clone(), done: true });
    // Counted like sign-ups: too many asks from one address get the same answer and no mail.
    let limits = state.config.signin_limits();
    if email.is_empty() || signin::reset_throttled(&state.db, &limits, &ip).await? {
        return Ok(answer());
    }
    mail_reset_link(&state, &email, &ip, ResetWhy::Forgot).await?;
    Ok(answer())
}
