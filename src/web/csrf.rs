//! CSRF protection for every state-changing request, applied as a layer so that no route can
//! forget it: the request must come from our own origin (Origin / Sec-Fetch-Site, which every
//! current browser sends) and carry the session's token in the `csrf_token` form field.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{MAX_BODY_BYTES, error::AppError, session::stored_csrf_token};
use crate::crypto::constant_time_eq;

pub const FIELD: &str = "csrf_token";

pub async fn guard(session: Session, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
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
    let expected = match stored_csrf_token(&session).await {
        Ok(t) => t,
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
