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
    input::Form,
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
    let field =
        |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default();
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
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
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
