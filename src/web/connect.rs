//! Connecting a store to Yahoo (product.md §3, §4, §7): 「Yahoo!と連携する」 with `state` bound
//! to the session and PKCE, the callback, 「接続テスト」, and the public-key form.

use super::input::Form;
use askama::Template;
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    error::{AppError, AppResult},
    render::{FlashKind, Layout, ok, render},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    crypto::{constant_time_eq, random_token},
    db::{audit::Action, stores},
    domain::{
        StoreId, jst,
        public_key::{self, KeyErrors, KeyForm},
    },
    yahoo::{Body, api},
};

const OAUTH_KEY: &str = "oauth_pending";

/// What the session remembers between 「Yahoo!と連携する」 and the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    store_id: StoreId,
}

pub async fn connect(
    State(state): State<AppState>,
    owner: Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    if store.client_id.is_empty() || !store.has_client_secret {
        owner.flash(FlashKind::Error, "Client ID とシークレットをストア設定に入力してから連携してください").await?;
        return Ok(Redirect::to(&format!("/stores/{store_id}")).into_response());
    }
    let endpoints = match state.yahoo.endpoints(store.environment()) {
        Ok(e) => e,
        Err(e) => {
            owner.flash(FlashKind::Error, e.message_ja()).await?;
            return Ok(Redirect::to(&format!("/stores/{store_id}")).into_response());
        }
    };
    let pending = Pending { state: random_token(), verifier: random_token() + &random_token(), store_id };
    let challenge = crate::yahoo::client::pkce_challenge(&pending.verifier);
    let mut url = endpoints.authorization();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &store.client_id)
        .append_pair("redirect_uri", &state.config.redirect_uri())
        .append_pair("scope", "openid")
        .append_pair("state", &pending.state)
        .append_pair("nonce", &random_token())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    owner.session.insert(OAUTH_KEY, &pending).await.map_err(|e| AppError::Internal(e.into()))?;
    Ok(Redirect::to(url.as_str()).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: String,
}

pub async fn callback(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Query(q): Query<Callback>,
) -> AppResult<Response> {
    let pending: Option<Pending> = owner.session.remove(OAUTH_KEY).await.map_err(|e| AppError::Internal(e.into()))?;
    let Some(pending) = pending.filter(|p| !q.state.is_empty() && constant_time_eq(&p.state, &q.state)) else {
        owner
            .flash(
                FlashKind::Error,
                "連携の手続きを確認できませんでした。ストアのページからもう一度「Yahoo!と連携する」を押してください",
            )
            .await?;
        return Ok(Redirect::to("/stores").into_response());
    };
    let back = Redirect::to(&format!("/stores/{}", pending.store_id)).into_response();
    let store = stores::get(&state.db, owner.account_id(), pending.store_id).await?.ok_or(AppError::NotFound)?;
    if !q.error.is_empty() || q.code.is_empty() {
        owner.flash(FlashKind::Error, "Yahoo!の同意画面で連携が許可されませんでした").await?;
        return Ok(back);
    }
    let redirect_uri = state.config.redirect_uri();
    let note = owner.note(Action::StoreConnected, format!("{} ({})", store.name, store.seller_id), &ip).store(store.id);
    let exchange =
        state.yahoo.exchange_code(owner.account_id(), store.id, &q.code, &redirect_uri, &pending.verifier, &note);
    let Some(exchanged) = within_deadline(&state, exchange).await else {
        owner.flash(FlashKind::Error, too_slow(&state, "Yahoo!との連携")).await?;
        return Ok(back);
    };
    match exchanged {
        Ok(()) => {
            owner.flash(FlashKind::Success, "Yahoo!と連携しました").await?;
        }
        Err(e) => {
            tracing::warn!(store = store.id.0, error = %e, "code exchange failed");
            owner.flash(FlashKind::Error, format!("Yahoo!と連携できませんでした: {}", e.message_ja())).await?;
        }
    }
    Ok(back)
}

/// Runs a Yahoo call a person is waiting for, within the interactive deadline; None when it
/// ran out (the call is abandoned; what it wrote before is complete, as after any cancellation).
async fn within_deadline<T>(state: &AppState, call: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::time::timeout(state.config.interactive_yahoo_deadline(), call).await.ok()
}

fn too_slow(state: &AppState, what: &str) -> String {
    let secs = state.config.interactive_yahoo_deadline().as_secs().max(1);
    format!(
        "Yahoo!から{secs}秒以内に応答がなかったため、{what}を中断しました。しばらく待ってからもう一度お試しください。"
    )
}

/// The cheapest signed call: an orderList for an order ID that cannot exist.
pub async fn test(State(state): State<AppState>, me: Merchant, Path(store_id): Path<StoreId>) -> AppResult<Response> {
    let store = me.store(store_id).await?;
    let xml = format!(
        "<Req><Search><Result>1</Result><Condition><OrderId>{}-connection-test</OrderId></Condition><Field>OrderId</Field></Search><SellerId>{}</SellerId></Req>",
        store.seller_id, store.seller_id
    );
    let call = state.yahoo.call(me.account_id(), store_id, "orderList", Body::Xml(xml));
    let Some(result) = within_deadline(&state, call).await else {
        me.flash(FlashKind::Error, too_slow(&state, "接続テスト")).await?;
        return Ok(Redirect::to(&format!("/stores/{store_id}")).into_response());
    };
    let result = result.and_then(|root| api::parse_order_list(&root));
    let after = me.store(store_id).await?;
    let status = after.last_authorize_status.as_deref().map(crate::domain::authorize::AuthorizeStatus::parse);
    match (result, status) {
        (Ok(_), Some(s)) if s.is_authorized() => {
            let next = if after.auto_import_enabled {
                format!(
                    "これで準備は完了です。新しい注文は{}分ごとに自動で取り込まれ、「受注」に表示されます。",
                    after.auto_import_interval_minutes
                )
            } else {
                "これで準備は完了です。自動受注取込がオフのため、注文は「手動取込」で取り込んでください。".to_string()
            };
            me.flash(FlashKind::Success, format!("接続テストに成功しました。公開鍵認証も通っています。{next}")).await?
        }
        (Ok(_), s) => {
            let advice = s.and_then(|s| s.advice()).unwrap_or("公開鍵を設定してください。");
            let name = s.map(|s| s.label()).unwrap_or("公開鍵認証なし");
            me.flash(FlashKind::Error, format!("接続はできましたが、公開鍵認証が通っていません（{name}）。このままでは認証から12時間でAPIが使えなくなります。{advice}")).await?
        }
        (Err(e), _) => me.flash(FlashKind::Error, format!("接続テストに失敗しました: {}", e.message_ja())).await?,
    }
    Ok(Redirect::to(&format!("/stores/{store_id}")).into_response())
}

#[derive(Template)]
#[template(path = "stores/public_key.html")]
pub struct PublicKeyPage {
    layout: Layout,
    store: stores::Store,
    form: KeyForm,
    errors: KeyErrors,
    /// The local simulator's address, for a store connected to it: where its key is shown.
    simulator: Option<String>,
}

/// The local simulator's address when `store` is connected to it.
fn simulator_for(state: &AppState, store: &stores::Store) -> Option<String> {
    (store.environment() == crate::domain::store::Environment::Simulator)
        .then(|| state.config.simulator_url.as_ref().map(ToString::to_string))
        .flatten()
}

pub async fn key_form(
    State(state): State<AppState>,
    owner: Owner,
    Path(store_id): Path<StoreId>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    let today = jst::today(chrono::Utc::now());
    let form = KeyForm {
        public_key: String::new(),
        public_key_version: store.public_key_version.map(|v| v.to_string()).unwrap_or_default(),
        public_key_expires_on: today
            .checked_add_months(chrono::Months::new(12))
            .map(|d| d.to_string())
            .unwrap_or_default(),
    };
    let layout = owner.layout("公開鍵の設定").await?;
    let simulator = simulator_for(&state, &store);
    Ok(ok(&PublicKeyPage { layout, store, form, errors: KeyErrors::default(), simulator }))
}

pub async fn save_key(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(store_id): Path<StoreId>,
    Form(mut form): Form<KeyForm>,
) -> AppResult<Response> {
    let store = stores::get(&state.db, owner.account_id(), store_id).await?.ok_or(AppError::NotFound)?;
    match public_key::check(&form, jst::today(chrono::Utc::now())) {
        Ok(key) => {
            let detail = format!(
                "{} ({}) バージョン {} / 有効期限 {}",
                store.name, store.seller_id, key.version, key.expires_on
            );
            let note = owner.note(Action::PublicKeyChanged, detail, &ip).store(store.id);
            let (pem, version, expires) = (&key.spki_pem, key.version, key.expires_on);
            stores::set_public_key(&state.db, owner.account_id(), store_id, pem, version, expires, Some(&note)).await?;
            state.yahoo.credentials_changed(store_id);
            let mut message = format!("公開鍵（バージョン {}）を保存しました", key.version);
            if key.repaired_dashes {
                message.push_str("。区切り線のダッシュ記号が別の文字になっていたため修復しました");
            }
            if key.converted_pkcs1 {
                message.push_str("。「RSA PUBLIC KEY」形式を標準の形式に変換しました");
            }
            // The key's form is checked here; whether Yahoo has this key under this version only
            // Yahoo can say.
            message
                .push_str("。「接続テスト」で、Yahoo!にこの公開鍵とバージョンが登録されていることを確かめてください。");
            owner.flash(FlashKind::Success, message).await?;
            Ok(Redirect::to(&format!("/stores/{store_id}")).into_response())
        }
        Err(errors) => {
            if errors.private_key_seen || form.public_key.len() > 64 * 1024 {
                // Never echo a private key (or a megabyte of text) back into the page.
                form.public_key.clear();
            }
            let layout = owner.layout("公開鍵の設定").await?;
            let simulator = simulator_for(&state, &store);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &PublicKeyPage { layout, store, form, errors, simulator }))
        }
    }
}
