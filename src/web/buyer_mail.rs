//! A store's メール設定 and mail to buyers (issue 29): the sender name and Reply-To its mail
//! carries, the 発送連絡 switch (off by default, with the warning that Yahoo or the carrier may
//! already mail the buyer), the templates with their placeholder list (an unknown placeholder
//! is refused when saving), a preview with a real order, and a free message from an order's
//! page. Buyer mail carries personal data: a masked reader neither previews nor sends it.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form},
    render::{FlashKind, Layout, ok, render},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    carrier::Carrier,
    db::{
        audit,
        buyer_mail::{self as store, BuyerOrder, Shipped, StoreMail},
        orders::OrderPk,
    },
    domain::{
        StoreId,
        buyer_mail::{self, PLACEHOLDERS},
        mail::MailKind,
    },
};

/// A filled template as the preview shows it.
pub struct Preview {
    pub order_id: String,
    pub to: String,
    pub ship: (String, String),
    pub free: (String, String),
    pub held: bool,
}

#[derive(Template)]
#[template(path = "stores/mail.html")]
pub struct SettingsPage {
    layout: Layout,
    store_id: StoreId,
    store_name: String,
    s: StoreMail,
    errors: Vec<String>,
    placeholders: &'static [(&'static str, &'static str)],
    preview: Option<Preview>,
    preview_order: String,
    note: Option<String>,
}

/// The preview's example parcel: a Yamato number and today, so every placeholder shows.
fn example_shipped(order: OrderPk) -> Shipped {
    Shipped {
        order,
        carrier: Carrier::Yamato,
        number: "123456789012".into(),
        ship_date: crate::domain::jst::today(crate::db::now()),
    }
}

fn preview_of(account: crate::domain::AccountId, order: &BuyerOrder, s: &StoreMail) -> Preview {
    let ship = store::ship_notice(account, order, &example_shipped(order.order_pk), s);
    let values = buyer_mail::values(&order.facts);
    Preview {
        order_id: order.facts.order_id.clone(),
        to: order.email.clone(),
        ship: (ship.subject, ship.body),
        free: (buyer_mail::render(&s.free_subject, &values), buyer_mail::render(&s.free_body, &values)),
        held: order.held,
    }
}

/// The order a preview fills from: the one typed, else the store's newest; and what to say
/// when there is none.
async fn preview_for(
    state: &AppState,
    owner: &Owner,
    store_id: StoreId,
    typed: &str,
    s: &StoreMail,
) -> AppResult<(Option<Preview>, Option<String>)> {
    let account = owner.account_id();
    // A preview is a buyer's personal data: not for a reader who sees it masked (support
    // looking without a reason that needs it).
    if owner.scope().await?.mask_personal {
        return Ok((None, Some("個人情報を伏せて表示しているため、プレビューは表示しません。".to_owned())));
    }
    let pk = if typed.trim().is_empty() {
        store::newest_order(&state.db, account, store_id).await?
    } else {
        store::order_by_id(&state.db, account, store_id, typed).await?
    };
    let Some(pk) = pk else {
        let note = if typed.trim().is_empty() {
            "このストアにはまだ注文がないため、プレビューできません。".to_owned()
        } else {
            format!("注文ID「{}」はこのストアにありません。", typed.trim())
        };
        return Ok((None, Some(note)));
    };
    Ok((store::order(&state.db, account, pk).await?.map(|o| preview_of(account, &o, s)), None))
}

/// `GET /stores/{store_id}/mail`.
pub async fn settings_form(
    State(state): State<AppState>,
    owner: Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let st = owner.0.store(store_id).await?;
    let s = store::settings(&state.db, owner.account_id(), store_id).await?;
    let (preview, note) = preview_for(&state, &owner, store_id, "", &s).await?;
    let layout = owner.layout("メール設定").await?;
    Ok(ok(&SettingsPage {
        layout,
        store_id,
        store_name: st.name,
        s,
        errors: Vec::new(),
        placeholders: &PLACEHOLDERS,
        preview,
        preview_order: String::new(),
        note,
    }))
}

/// Longest sender name.
const MAX_FROM_NAME: usize = 100;

/// What is wrong with a store's mail settings, in Japanese; empty when they may be saved.
pub fn problems(s: &StoreMail) -> Vec<String> {
    let mut errors = Vec::new();
    if s.from_name.chars().count() > MAX_FROM_NAME {
        errors.push(format!("差出人名は{MAX_FROM_NAME}文字までです。"));
    }
    if s.from_name.chars().any(|c| c.is_control() || c == '<' || c == '>' || c == '"') {
        errors.push("差出人名に改行や < > \" は使えません。".into());
    }
    if !s.reply_to.is_empty() && s.reply_to.parse::<lettre::Address>().is_err() {
        errors.push(format!("返信先「{}」はメールアドレスとして正しくありません。", s.reply_to));
    }
    for (what, t) in [
        ("発送連絡の件名", &s.ship_subject),
        ("発送連絡の本文", &s.ship_body),
        ("お知らせメールの件名", &s.free_subject),
        ("お知らせメールの本文", &s.free_body),
    ] {
        if let Err(e) = buyer_mail::check(what, t) {
            errors.push(e);
        }
    }
    for (what, t) in [("発送連絡の件名", &s.ship_subject), ("お知らせメールの件名", &s.free_subject)] {
        if t.contains('\n') {
            errors.push(format!("{what}は1行にしてください。"));
        }
    }
    errors
}

/// `POST /stores/{store_id}/mail`: 「プレビュー」 fills the templates as typed (nothing saved);
/// 「保存」 checks and saves them.
pub async fn save_settings(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let st = owner.0.store(store_id).await?;
    let field = |name: &str| input::field(&pairs, name).replace("\r\n", "\n");
    let s = StoreMail {
        from_name: field("from_name").trim().to_owned(),
        reply_to: field("reply_to").trim().to_owned(),
        ship_notice_on: !field("ship_notice_on").is_empty(),
        ship_subject: field("ship_subject").trim().to_owned(),
        ship_body: field("ship_body"),
        free_subject: field("free_subject").trim().to_owned(),
        free_body: field("free_body"),
    };
    let errors = problems(&s);
    let previewing = field("action") == "preview";
    if previewing || !errors.is_empty() {
        let typed = field("preview_order");
        let (preview, note) =
            if errors.is_empty() { preview_for(&state, &owner, store_id, &typed, &s).await? } else { (None, None) };
        let layout = owner.layout("メール設定").await?;
        let page = SettingsPage {
            layout,
            store_id,
            store_name: st.name,
            s,
            errors,
            placeholders: &PLACEHOLDERS,
            preview,
            preview_order: typed,
            note,
        };
        let status = if page.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        return Ok(render(status, &page));
    }
    let before = store::settings(&state.db, owner.account_id(), store_id).await?;
    store::save(&state.db, owner.account_id(), store_id, &s, crate::db::now()).await?;
    let switch = match (before.ship_notice_on, s.ship_notice_on) {
        (false, true) => "、発送連絡を送る: オン",
        (true, false) => "、発送連絡を送る: オフ",
        _ => "",
    };
    owner
        .audit(audit::Action::MailSettingsChanged, &format!("ストア「{}」のメール設定を保存{switch}", st.name), &ip)
        .await?;
    let said = if s.ship_notice_on && !before.ship_notice_on {
        "メール設定を保存しました。発送連絡はこれから伝票番号を登録した注文に送ります（Yahoo!の出荷通知メールや配送会社のメールと重ならないか確かめてください）"
    } else {
        "メール設定を保存しました"
    };
    owner.flash(FlashKind::Success, said).await?;
    Ok(Redirect::to(&format!("/stores/{store_id}/mail")).into_response())
}

#[derive(Template)]
#[template(path = "orders/mail.html")]
pub struct ComposePage {
    layout: Layout,
    order_pk: OrderPk,
    order_id: String,
    to: String,
    subject: String,
    body: String,
    errors: Vec<String>,
}

/// The order a buyer mail is about, if this reader may write to its buyer (an order outside
/// their scope is 404; a masked reader is refused: the mail is the buyer's personal data).
async fn buyer_order_for(state: &AppState, me: &Merchant, pk: OrderPk) -> AppResult<BuyerOrder> {
    let scope = me.scope().await?;
    let order = store::order(&state.db, scope.account, pk).await?.ok_or(AppError::NotFound)?;
    if !scope.allows(order.store) {
        return Err(AppError::NotFound);
    }
    if scope.mask_personal {
        return Err(AppError::Forbidden);
    }
    Ok(order)
}

/// `GET /orders/{order_id}/mail`: the store's お知らせメール filled for this order, to edit and send.
pub async fn compose(State(state): State<AppState>, me: Merchant, Path(pk): Path<OrderPk>) -> AppResult<Response> {
    let order = buyer_order_for(&state, &me, pk).await?;
    let s = store::settings(&state.db, me.account_id(), order.store).await?;
    let values = buyer_mail::values(&order.facts);
    let layout = me.layout("お客様へのメール").await?;
    Ok(ok(&ComposePage {
        layout,
        order_pk: pk,
        order_id: order.facts.order_id.clone(),
        to: order.email.clone(),
        subject: buyer_mail::render(&s.free_subject, &values),
        body: buyer_mail::render(&s.free_body, &values),
        errors: Vec::new(),
    }))
}

/// `POST /orders/{order_id}/mail`: queues the message (placeholders still in it are filled),
/// writes it on the order's 履歴.
pub async fn send(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Path(pk): Path<OrderPk>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let order = buyer_order_for(&state, &me, pk).await?;
    let subject = input::field(&pairs, "subject").trim().to_owned();
    let body = input::field(&pairs, "body").replace("\r\n", "\n");
    let mut errors = Vec::new();
    for (what, t) in [("件名", &subject), ("本文", &body)] {
        if let Err(e) = buyer_mail::check(what, t) {
            errors.push(e);
        }
    }
    if subject.contains('\n') {
        errors.push("件名は1行にしてください。".into());
    }
    if !order.email.contains('@') {
        errors.push("この注文にはお客様のメールアドレスがありません。".into());
    }
    if !errors.is_empty() {
        let layout = me.layout("お客様へのメール").await?;
        let page = ComposePage {
            layout,
            order_pk: pk,
            order_id: order.facts.order_id.clone(),
            to: order.email.clone(),
            subject,
            body,
            errors,
        };
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let settings = store::settings(&state.db, me.account_id(), order.store).await?;
    let values = buyer_mail::values(&order.facts);
    let mail = store::buyer_mail(
        me.account_id(),
        MailKind::BuyerMessage,
        &order,
        &settings,
        buyer_mail::render(&subject, &values),
        buyer_mail::render(&body, &values),
    );
    let actor = crate::db::orders::HistoryActor::User(me.user.email.clone());
    let id = store::send_message(&state.db, me.account_id(), pk, &mail, &actor, crate::db::now()).await?;
    me.audit(
        audit::Action::BuyerMailSent,
        &format!("注文 {} のお客様にメール（送信メール #{id}）", order.facts.order_id),
        &ip,
    )
    .await?;
    me.flash(FlashKind::Success, "お客様へのメールを送信待ちにしました（送信メールで状況を確かめられます）").await?;
    Ok(Redirect::to(&format!("/orders/{pk}")).into_response())
}
