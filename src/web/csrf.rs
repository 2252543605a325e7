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
    let public_origin = state.config.public_url.as_ref().map(|u| u.origin().ascii_serialization());
    if is_cross_origin(req.headers(), public_origin.as_deref()) {
        tracing::warn!(method = %req.method(), path = %super::loggable_path(req.uri()), "cross-origin request refused");
        return AppError::Csrf.into_response();
    }
    let (parts, body) = req.into_parts();
    // Bounded: a body over the limit is refused, never buffered whole.
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return AppError::PayloadTooLarge.into_response(),
    };
    let sent = match multipart_boundary(&parts.headers) {
        Some(boundary) => multipart_field(&bytes, &boundary, FIELD),
        None => url::form_urlencoded::parse(&bytes).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned()),
    };
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
            tracing::warn!(method = %parts.method, path = %super::loggable_path(&parts.uri), "missing or wrong CSRF token");
            AppError::Csrf.into_response()
        }
    }
}

/// The boundary of a `multipart/form-data` body (file uploads), if that is what this is.
fn multipart_boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary").then(|| v.trim_matches('"').to_string())
    })
}

/// The text value of the field `name` in a multipart body (RFC 7578), if it is there.
fn multipart_field(body: &[u8], boundary: &str, name: &str) -> Option<String> {
    let delimiter = format!("--{boundary}");
    let wanted = format!("name=\"{name}\"");
    let mut rest = body;
    while let Some(start) = find(rest, delimiter.as_bytes()) {
        rest = &rest[start + delimiter.len()..];
        let part_end = find(rest, delimiter.as_bytes()).unwrap_or(rest.len());
        let part = &rest[..part_end];
        let Some(head_end) = find(part, b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&part[..head_end]);
        let disposition = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"));
        if disposition.is_some_and(|d| d.split(';').any(|p| p.trim() == wanted)) {
            let value = &part[head_end + 4..];
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            return String::from_utf8(value.to_vec()).ok();
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// True when the browser tells us the request was started by another site: the `Origin` must
/// be the public URL's origin (behind a proxy that rewrites `Host`, that is the only match) or
/// name the `Host` the request came to (direct access by address).
fn is_cross_origin(headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
        return true;
    };
    if public_origin.is_some_and(|public| origin.origin().ascii_serialization() == public) {
        return false;
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_authority = origin.host_str().map(|h| match origin.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
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

    fn is_cross_origin_default(h: &HeaderMap) -> bool {
        is_cross_origin(h, None)
    }

    #[test]
    fn the_public_origin_wins_over_host() {
        let public = Some("https://desk.example.jp");
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "https://desk.example.jp")]);
        assert!(!is_cross_origin(&h, public), "a proxy rewrote Host");
        let h = headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9090")]);
        assert!(is_cross_origin(&h, public));
        let h = headers(&[("host", "desk.example.jp"), ("origin", "https://evil.example")]);
        assert!(is_cross_origin(&h, public));
    }

    #[test]
    fn multipart_token_is_found() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na,b\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\ntok123\r\n--XyZ--\r\n";
        assert_eq!(multipart_field(body, "XyZ", FIELD).as_deref(), Some("tok123"));
        assert_eq!(multipart_field(body, "XyZ", "other"), None);
        let h = headers(&[("content-type", "multipart/form-data; boundary=\"XyZ\"")]);
        assert_eq!(multipart_boundary(&h).as_deref(), Some("XyZ"));
    }

    #[test]
    fn same_origin_passes() {
        assert!(!is_cross_origin_default(&headers(&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")])));
        assert!(!is_cross_origin_default(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!is_cross_origin_default(&headers(&[("host", "a.jp"), ("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn other_sites_are_refused() {
        assert!(is_cross_origin_default(&headers(&[("host", "127.0.0.1:8080"), ("origin", "https://evil.example")])));
        assert!(is_cross_origin_default(&headers(&[("host", "127.0.0.1:8080"), ("origin", "null")])));
        assert!(is_cross_origin_default(&headers(&[("host", "a.jp"), ("sec-fetch-site", "cross-site")])));
        assert!(is_cross_origin_default(&headers(&[("host", "a.jp"), ("sec-fetch-site", "same-site")])));
    }
}
