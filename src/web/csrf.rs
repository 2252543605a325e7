//! CSRF protection for every state-changing request, applied as a layer so that no route can
//! forget it: the request must come from our own origin (Origin / Sec-Fetch-Site, which every
//! current browser sends) and carry the expected token in the `csrf_token` form field.
//!
//! The expected token is the session's for a signed-in person. A visitor who is not signed in
//! has no session row (an anonymous visit writes nothing to the database); their token lives in
//! a cookie of its own, signed with a key derived from the secrets key, and the form must carry
//! the same token (signed double submit). The cookie is set only when a page used the token.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{MAX_BODY_BYTES, error::AppError, session::stored_csrf_token};
use crate::{
    app::AppState,
    crypto::{self, SecretBox, constant_time_eq},
};

pub const FIELD: &str = "csrf_token";
const MAC_PURPOSE: &str = "anonymous csrf cookie";

/// The CSRF token of a visitor without a signed-in session, for the page's forms.
#[derive(Clone, Debug)]
pub struct AnonymousToken {
    token: String,
    used: Arc<AtomicBool>,
}

impl AnonymousToken {
    /// The token, for a form; the response will carry the cookie that goes with it.
    pub fn take(&self) -> String {
        self.used.store(true, Ordering::Relaxed);
        self.token.clone()
    }
}

/// The anonymous token's cookie name (`__Host-` whenever cookies are Secure).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-orderdesk-csrf" } else { "orderdesk-csrf" }
}

fn cookie_token(headers: &HeaderMap, name: &str, secrets: &SecretBox) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .find_map(|(_, v)| {
            let (token, mac) = v.split_once('.')?;
            secrets.verify_mac(MAC_PURPOSE, token, mac).then(|| token.to_string())
        })
}

pub async fn guard(State(state): State<AppState>, session: Session, mut req: Request, next: Next) -> Response {
    let secure = state.config.secure_cookies();
    let name = cookie_name(secure);
    let from_cookie = cookie_token(req.headers(), name, &state.secrets);
    let anonymous = AnonymousToken {
        token: from_cookie.clone().unwrap_or_else(crypto::random_token),
        used: Arc::new(AtomicBool::new(false)),
    };
    req.extensions_mut().insert(anonymous.clone());
    let had_cookie = from_cookie.is_some();

    let mut response = if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        next.run(req).await
    } else {
        check(&state, session, from_cookie, req, next).await
    };
    if !had_cookie && anonymous.used.load(Ordering::Relaxed) {
        let mac = state.secrets.mac(MAC_PURPOSE, &anonymous.token);
        let secure = if secure { "; Secure" } else { "" };
        let cookie = format!("{name}={}.{mac}; Path=/; HttpOnly; SameSite=Lax{secure}", anonymous.token);
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

async fn check(state: &AppState, session: Session, from_cookie: Option<String>, req: Request, next: Next) -> Response {
    let _ = state;
    if is_cross_origin(req.headers()) {
        tracing::warn!(method = %req.method(), path = %req.uri().path(), "cross-origin request refused");
        return AppError::Csrf.into_response();
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return AppError::PayloadTooLarge.into_response(),
    };
    let sent = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned());
    // A signed-in session's own token; without one, the signed cookie's.
    let expected = match stored_csrf_token(&session).await {
        Ok(Some(t)) => Some(t),
        Ok(None) => from_cookie,
        Err(e) => return e.into_response(),
    };
    match (sent, expected) {
        (Some(sent), Some(expected)) if constant_time_eq(&sent, &expected) => {
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        }
        _ => {
            tracing::warn!(method = %parts.method, path = %parts.uri.path(), "missing or wrong CSRF token");
            AppError::Csrf.into_response()
        }
    }
}

/// True when the browser tells us the request was started by another site.
fn is_cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_authority = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()).and_then(|u| {
        u.host_str().map(|h| match u.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        })
    });
    match (origin_authority, host) {
        (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_passes() {
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!is_cross_origin(&headers(&[("host", "a.jp"), ("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn other_sites_are_refused() {
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")])));
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(is_cross_origin(&headers(&[("host", "a.jp"), ("sec-fetch-site", "cross-site")])));
        assert!(is_cross_origin(&headers(&[("host", "a.jp"), ("sec-fetch-site", "same-site")])));
    }
}
