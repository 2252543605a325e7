//! タグ (issue 30): owners make and delete the account's tags (a tag may be marked 出荷止め);
//! anyone who works an order puts tags on it and takes them off on the order page.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    db::{
        audit,
        orders::{HistoryActor, OrderPk},
        tags::{self, COLORS, Tag},
    },
};

#[derive(Template)]
#[template(path = "tags/index.html")]
pub struct TagsPage {
    layout: Layout,
    tags: Vec<Tag>,
    colors: &'static [(&'static str, &'static str)],
    name: String,
    error: Option<String>,
}

pub async fn index(State(state): State<AppState>, owner: Owner) -> AppResult<Response> {
    let tags = tags::list(&state.db, owner.account_id()).await?;
    Ok(ok(&TagsPage { layout: owner.layout("タグ").await?, tags, colors: &COLORS, name: String::new(), error: None }))
}

pub async fn create(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let name = field("name");
    let stops = !field("stops_shipping").is_empty();
    let refuse = |why: &str| why.to_owned();
    let error = if name.is_empty() {
        Some(refuse("タグの名前を入力してください"))
    } else if name.chars().count() > 30 {
        Some(refuse("タグの名前は30文字以内で入力してください"))
    } else {
        match tags::create(&state.db, owner.account_id(), &name, &field("color"), stops, crate::db::now()).await? {
            Ok(_) => None,
            Err(why) => Some(why.to_owned()),
        }
    };
    if let Some(error) = error {
        let tags = tags::list(&state.db, owner.account_id()).await?;
        let page = TagsPage { layout: owner.layout("タグ").await?, tags, colors: &COLORS, name, error: Some(error) };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response());
    }
    let what = if stops { "（出荷止め）" } else { "" };
    owner.audit(audit::Action::TagsChanged, &format!("タグ「{name}」{what}を作成"), &ip).await?;
    owner.flash(FlashKind::Success, format!("タグ「{name}」を作りました")).await?;
    Ok(Redirect::to("/tags").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(tag_id): Path<i64>,
) -> AppResult<Response> {
    let tag = tags::list(&state.db, owner.account_id()).await?.into_iter().find(|t| t.id == tag_id);
    let Some(tag) = tag else { return Err(AppError::NotFound) };
    if !tags::delete(&state.db, owner.account_id(), tag_id).await? {
        return Err(AppError::NotFound);
    }
    owner.audit(audit::Action::TagsChanged, &format!("タグ「{}」を削除", tag.name), &ip).await?;
    owner
        .flash(FlashKind::Success, format!("タグ「{}」を削除しました（付いていた注文からも外れます）", tag.name))
        .await?;
    Ok(Redirect::to("/tags").into_response())
}

/// The order page's tags: `action` is `add` or `remove`, `tag` the tag's ID.
pub async fn set_on_order(
    State(state): State<AppState>,
    me: Merchant,
    Path(order_id): Path<OrderPk>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let scope = me.scope().await?;
    let add = field("action") != "remove";
    let tag_id = field("tag").parse::<i64>().unwrap_or(0);
    let actor = HistoryActor::User(me.user.email.clone());
    match tags::set_on_order(&state.db, &scope, order_id, tag_id, add, &actor, crate::db::now()).await? {
        Err("注文が見つかりません") => return Err(AppError::NotFound),
        Err(why) => me.flash(FlashKind::Error, format!("{why}（変えていません）")).await?,
        Ok(_) => {}
    }
    Ok(Redirect::to(&format!("/orders/{order_id}#tags")).into_response())
}

/// One order of a bulk tag change, and what happened to it.
pub struct BulkLine {
    pub order_id: String,
    pub pk: OrderPk,
    pub result: String,
}

#[derive(Template)]
#[template(path = "tags/bulk.html")]
pub struct BulkPage {
    layout: Layout,
    tag: Tag,
    add: bool,
    lines: Vec<BulkLine>,
}

/// The order list's 「選択した注文のタグ」: the chosen tag put on (or taken off) each selected
/// order in the reader's scope, each with its own result.
pub async fn bulk(
    State(state): State<AppState>,
    me: Merchant,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let field = |name: &str| input::field(&pairs, name);
    let pks = input::ticked_orders(&pairs, 1000);
    let scope = me.scope().await?;
    let tag_id = field("tag").parse::<i64>().unwrap_or(0);
    let Some(tag) = tags::list(&state.db, scope.account).await?.into_iter().find(|t| t.id == tag_id) else {
        me.flash(FlashKind::Error, "タグを選んでください（変えていません）").await?;
        return Ok(Redirect::to("/orders").into_response());
    };
    if pks.is_empty() {
        me.flash(FlashKind::Error, "注文を選んでください（変えていません）").await?;
        return Ok(Redirect::to("/orders").into_response());
    }
    let add = field("tag_action") != "remove";
    let actor = HistoryActor::User(me.user.email.clone());
    let found: Vec<crate::db::order_list::Line> = crate::db::order_list::by_ids(&state.db, &scope, &pks).await?;
    let now = crate::db::now();
    let mut lines = Vec::with_capacity(found.len());
    for o in &found {
        let result = match tags::set_on_order(&state.db, &scope, o.id, tag.id, add, &actor, now).await? {
            Ok(true) if add => "付けました".to_owned(),
            Ok(true) => "外しました".to_owned(),
            Ok(false) if add => "付いていました（変更なし）".to_owned(),
            Ok(false) => "付いていませんでした（変更なし）".to_owned(),
            Err(why) => why.to_owned(),
        };
        lines.push(BulkLine { order_id: o.order_id.clone(), pk: o.id, result });
    }
    let layout = me.layout("タグの一括変更").await?;
    Ok(ok(&BulkPage { layout, tag, add, lines }))
}
