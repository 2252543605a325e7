//! 送信メール (issue 29): the account's mail, what each message is and where it stands
//! (送信待ち, 再送待ち with the error, 送信済み, 送信失敗), one message read whole, and
//! 「テストメール」, which sends through the configured transport at once and says what
//! happened. Owners only: messages name orders and people.

use askama::Template;
use axum::{
    extract::{Path, State},
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form},
    render::{FlashKind, Layout, ok},
    session::Owner,
};
use crate::{
    app::AppState,
    db::mail::{self as store, MailRow, NewMail},
    domain::mail::{MailKind, test_mail},
};

/// Messages the page lists.
const PAGE_SIZE: i64 = 100;

#[derive(Template)]
#[template(path = "mail/index.html")]
pub struct MailPage {
    layout: Layout,
    transport: String,
    sends: bool,
    mails: Vec<MailRow>,
    me: String,
}

/// `GET /mail`.
pub async fn index(State(state): State<AppState>, Owner(owner): Owner) -> AppResult<Response> {
    let mails = store::list(&state.db, owner.account_id(), PAGE_SIZE).await?;
    let layout = owner.layout("送信メール").await?;
    Ok(ok(&MailPage {
        layout,
        transport: state.mailer.describe().to_owned(),
        sends: state.mailer.sends(),
        mails,
        me: owner.user.email.clone(),
    })
    .into_response())
}

#[derive(Template)]
#[template(path = "mail/show.html")]
pub struct MessagePage {
    layout: Layout,
    mail: MailRow,
}

/// `GET /mail/{mail_id}`.
pub async fn show(State(state): State<AppState>, Owner(owner): Owner, Path(mail_id): Path<i64>) -> AppResult<Response> {
    let Some(mail) = store::get(&state.db, owner.account_id(), mail_id).await? else {
        return Err(AppError::NotFound);
    };
    let layout = owner.layout("送信メール").await?;
    Ok(ok(&MessagePage { layout, mail }).into_response())
}

/// `POST /mail/test`: a test mail to the address typed (the owner's own by default), sent at
/// once through the transport; the page says what happened.
pub async fn test(
    State(state): State<AppState>,
    Owner(owner): Owner,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let to = input::field(&pairs, "to");
    let to = if to.is_empty() { owner.user.email.clone() } else { to };
    if to.parse::<lettre::message::Mailbox>().is_err() {
        owner
            .flash(FlashKind::Error, format!("宛先「{to}」はメールアドレスとして正しくありません（送っていません）"))
            .await?;
        return Ok(Redirect::to("/mail").into_response());
    }
    let (subject, body) = test_mail(&owner.account.name, state.mailer.describe());
    let mail = NewMail::plain(owner.account_id(), None, MailKind::Test, &to, subject, body);
    let now = crate::db::now();
    let id = store::queue_one(&state.db, &mail, now).await?;
    let sent = state.mail.send_due(Some(id)).await?;
    let said = match sent.first().map(|(_, r)| r) {
        Some(Ok(())) if state.mailer.sends() => {
            (FlashKind::Success, format!("テストメールを {to} に送りました。届いたか確かめてください。"))
        }
        Some(Ok(())) => (
            FlashKind::Success,
            format!(
                "テストメールを保存しました（送信はしていません: {}）。下の一覧から読めます",
                state.mailer.describe()
            ),
        ),
        Some(Err(e)) => (FlashKind::Error, format!("テストメールを送れませんでした。{}", e.message)),
        None => (FlashKind::Success, "テストメールを送信待ちにしました（ほかの処理が送ります）".to_owned()),
    };
    owner.flash(said.0, said.1).await?;
    Ok(Redirect::to("/mail").into_response())
}
