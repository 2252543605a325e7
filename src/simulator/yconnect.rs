//! YConnect v2 (yahoo-store-api.md §2): the consent page at the authorization URL, codes bound
//! to client, redirect URI and PKCE challenge, and the token endpoint with both grants.

use askama::Template;
use axum::{
    Form, Json,
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::{ACCESS_LIFETIME, Api, AuthCode, CODE_LIFETIME, REFRESH_LIFETIME, SimState};
use crate::crypto::{constant_time_eq, random_token};

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct AuthorizeParams {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub nonce: String,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
}

#[derive(Template)]
#[template(path = "simulator/consent.html")]
struct ConsentPage {
    params: AuthorizeParams,
    sellers: Vec<String>,
}

#[derive(Template)]
#[template(path = "simulator/message.html")]
struct MessagePage {
    title: &'static str,
    message: String,
}

fn message(status: StatusCode, title: &'static str, message: impl Into<String>) -> Response {
    let page = MessagePage { title, message: message.into() };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => status.into_response(),
    }
}

/// Sends the browser back to the app with these query parameters added.
fn back(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return message(StatusCode::BAD_REQUEST, "エラー", "redirect_uri が不正です");
    };
    url.query_pairs_mut().extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()));
    Redirect::to(url.as_str()).into_response()
}

/// Checks client and redirect URI; an unknown pair gets an error page, never a redirect.
fn check_client(sim: &SimState, p: &AuthorizeParams) -> Result<(), Box<Response>> {
    let world = sim.world();
    let Some(app) = world.apps.get(&p.client_id) else {
        return Err(Box::new(message(StatusCode::BAD_REQUEST, "エラー", "client_id が登録されていません")));
    };
    if !app.redirect_uris.iter().any(|u| u == &p.redirect_uri) {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "エラー",
            "redirect_uri が登録されたコールバックURLと一致しません",
        )));
    }
    Ok(())
}

/// Errors that go back to the app as `?error=…` once client and redirect URI are known good.
fn check_request(p: &AuthorizeParams) -> Result<(), &'static str> {
    if p.response_type != "code" {
        return Err("unsupported_response_type");
    }
    if !p.scope.split_whitespace().any(|s| s == "openid") {
        return Err("invalid_scope");
    }
    if !p.code_challenge.is_empty() && p.code_challenge_method != "S256" {
        return Err("invalid_request");
    }
    Ok(())
}

pub async fn consent(State(sim): State<SimState>, Query(params): Query<AuthorizeParams>) -> Response {
    if let Err(page) = check_client(&sim, &params) {
        return *page;
    }
    if let Err(error) = check_request(&params) {
        return back(&params.redirect_uri, &[("error", error), ("state", &params.state)]);
    }
    let sellers = sim.world().sellers.keys().cloned().collect();
    match (ConsentPage { params, sellers }).render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct Decision {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    seller_id: String,
    #[serde(default)]
    new_seller_id: String,
}

pub async fn decide(State(sim): State<SimState>, Form(form): Form<Decision>) -> Response {
    let p = &form.params;
    if let Err(page) = check_client(&sim, p) {
        return *page;
    }
    if let Err(error) = check_request(p) {
        return back(&p.redirect_uri, &[("error", error), ("state", &p.state)]);
    }
    if form.decision != "allow" {
        return back(&p.redirect_uri, &[("error", "access_denied"), ("state", &p.state)]);
    }
    let seller_id =
        if form.new_seller_id.trim().is_empty() { form.seller_id.trim() } else { form.new_seller_id.trim() };
    if crate::domain::store::check_seller_id(seller_id, None).is_err() {
        return message(StatusCode::BAD_REQUEST, "エラー", "ストアアカウントを選ぶか、正しい形式で入力してください");
    }
    let code = random_token();
    {
        let now = sim.now();
        let mut world = sim.world();
        world.seller_mut(seller_id);
        world.codes.retain(|_, c| c.expires_at > now);
        world.codes.insert(
            code.clone(),
            AuthCode {
                client_id: p.client_id.clone(),
                redirect_uri: p.redirect_uri.clone(),
                seller_id: seller_id.to_owned(),
                code_challenge: Some(p.code_challenge.clone()).filter(|c| !c.is_empty()),
                nonce: Some(p.nonce.clone()).filter(|n| !n.is_empty()),
                expires_at: now + CODE_LIFETIME,
            },
        );
        world.count("authorize.consented");
    }
    back(&p.redirect_uri, &[("code", &code), ("state", &p.state)])
}

#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
}

fn token_error(sim: &SimState, status: StatusCode, error: &'static str, description: &str) -> Response {
    sim.world().count(format!("token.error.{error}"));
    let code = match error {
        "invalid_grant" => "1301",
        "invalid_client" => "1101",
        "unsupported_grant_type" => "1201",
        _ => "1000",
    };
    (status, Json(json!({ "error": error, "error_description": description, "error_code": code }))).into_response()
}

/// `Authorization: Basic base64(id:secret)`, else the body fields.
fn client_credentials(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    if let Some(basic) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    (!form.client_id.is_empty()).then(|| (form.client_id.clone(), form.client_secret.clone()))
}

pub use crate::yahoo::client::pkce_challenge;

pub async fn token(State(sim): State<SimState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = super::store_api::apply_fault(&sim, Api::Token).await {
        return response;
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let Some(form) = form_type.then(|| serde_urlencoded::from_bytes::<TokenForm>(&body).ok()).flatten() else {
        return token_error(&sim, StatusCode::BAD_REQUEST, "invalid_request", "form-encoded body required");
    };
    let Some((client_id, secret)) = client_credentials(&headers, &form) else {
        return token_error(&sim, StatusCode::UNAUTHORIZED, "invalid_client", "client authentication required");
    };
    let known = sim.world().apps.get(&client_id).is_some_and(|app| constant_time_eq(&app.client_secret, &secret));
    if !known {
        return token_error(&sim, StatusCode::UNAUTHORIZED, "invalid_client", "invalid client");
    }
    let now = sim.now();
    match form.grant_type.as_str() {
        "authorization_code" => {
            // Single use: the code is gone whatever happens next.
            let code = sim.world().codes.remove(&form.code);
            let Some(code) = code.filter(|c| c.expires_at > now) else {
                return token_error(&sim, StatusCode::BAD_REQUEST, "invalid_grant", "invalid or expired code");
            };
            if code.client_id != client_id || code.redirect_uri != form.redirect_uri {
                return token_error(
                    &sim,
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code was issued to another client or redirect_uri",
                );
            }
            if let Some(challenge) = &code.code_challenge
                && (form.code_verifier.is_empty() || !constant_time_eq(&pkce_challenge(&form.code_verifier), challenge))
            {
                return token_error(&sim, StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier does not match");
            }
            let (refresh, access) = {
                let mut world = sim.world();
                let refresh = world.authorize(&client_id, &code.seller_id, now);
                let access = world.issue_access_token(&refresh, now);
                world.count("token.authorization_code");
                (refresh, access)
            };
            let id_token = id_token(&client_id, &code.seller_id, code.nonce.as_deref(), now);
            Json(json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": ACCESS_LIFETIME.num_seconds(),
                "refresh_token": refresh,
                "id_token": id_token,
            }))
            .into_response()
        }
        "refresh_token" => {
            let access = {
                let mut world = sim.world();
                let live = world.grants.get(&form.refresh_token).is_some_and(|g| {
                    !g.revoked && g.client_id == client_id && now < g.authorized_at + REFRESH_LIFETIME
                });
                live.then(|| {
                    world.count("token.refresh_token");
                    world.issue_access_token(&form.refresh_token, now)
                })
            };
            match access {
                Some(access) => Json(json!({
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": ACCESS_LIFETIME.num_seconds(),
                }))
                .into_response(),
                None => token_error(&sim, StatusCode::BAD_REQUEST, "invalid_grant", "refresh token expired or revoked"),
            }
        }
        "" => token_error(&sim, StatusCode::BAD_REQUEST, "invalid_request", "grant_type is required"),
        _ => token_error(&sim, StatusCode::BAD_REQUEST, "unsupported_grant_type", "unsupported grant_type"),
    }
}

/// An unsigned-looking JWT with the usual claims; the app does not rely on it.
fn id_token(client_id: &str, seller_id: &str, nonce: Option<&str>, now: chrono::DateTime<chrono::Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"HS256"}"#);
    let claims = json!({
        "iss": "https://auth.login.yahoo.co.jp/yconnect/v2",
        "sub": seller_id,
        "aud": [client_id],
        "nonce": nonce,
        "iat": now.timestamp(),
        "exp": now.timestamp() + 600,
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(random_token()))
}
