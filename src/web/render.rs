//! The one path from a page struct to a response: status, content type, cache headers, and a
//! logged 500 if a template fails to render. Also the [`Layout`] every page's header needs.

use askama::Template;
use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use crate::db::stores::StoreLink;

/// Renders a page. Pages show private data, so nothing is cached.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => {
            (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], html)
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "エラーが発生しました").into_response()
        }
    }
}

/// Renders with 200.
pub fn ok<T: Template>(page: &T) -> Response {
    render(StatusCode::OK, page)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashKind {
    Success,
    Error,
}

/// A one-time message shown on the next page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn css_class(&self) -> &'static str {
        match self.kind {
            FlashKind::Success => "flash flash-success",
            FlashKind::Error => "flash flash-error",
        }
    }

    /// Errors interrupt (read out at once); confirmations wait politely.
    pub fn role(&self) -> &'static str {
        match self.kind {
            FlashKind::Success => "status",
            FlashKind::Error => "alert",
        }
    }
}

/// The merchant header: account, stores and the signed-in user.
#[derive(Clone, Debug)]
pub struct Nav {
    pub account_name: String,
    pub user_name: String,
    pub user_email: String,
    pub role_label: &'static str,
    pub is_owner: bool,
    pub stores: Vec<StoreLink>,
}

impl Nav {
    /// Whether a store the reader sees is under 緊急停止 (every page's banner says so).
    pub fn any_stopped(&self) -> bool {
        self.stores.iter().any(|s| s.stopped)
    }

    /// Whether a store the reader sees has its fraud-hold restriction off.
    pub fn any_unrestricted(&self) -> bool {
        self.stores.iter().any(|s| s.unrestricted)
    }
}

/// What `base.html` needs on every page.
#[derive(Clone, Debug)]
pub struct Layout {
    pub title: String,
    pub csrf: String,
    pub flashes: Vec<Flash>,
    pub nav: Option<Nav>,
    /// Set when support staff are signed in.
    pub support_name: Option<String>,
    /// The requested path, to mark the current page in the navigation.
    pub path: String,
}

impl Layout {
    /// A layout with no session: error pages.
    pub fn bare(title: &str) -> Layout {
        Layout {
            title: title.to_string(),
            csrf: String::new(),
            flashes: Vec::new(),
            nav: None,
            support_name: None,
            path: String::new(),
        }
    }

    /// Whether a navigation link to `section` is the current page (or a page inside it).
    pub fn is_current(&self, section: &str) -> bool {
        match section {
            "/" => self.path == "/",
            _ => self.path == section || self.path.strip_prefix(section).is_some_and(|rest| rest.starts_with('/')),
        }
    }

    /// Pages that change many orders' statuses at once (the list's bulk bar and its result,
    /// rules): they say when a store's fraud-hold restriction is off.
    pub fn changes_statuses(&self) -> bool {
        matches!(self.path.as_str(), "/orders" | "/orders/bulk" | "/orders/rules" | "/orders/take-in")
            || self.is_current("/rules")
    }

    /// Support staff signed in: on a merchant's pages every control that would change something
    /// is hidden (the server refuses them anyway: `session::support_read_only`); /admin's own
    /// forms stay.
    pub fn read_only(&self) -> bool {
        self.support_name.is_some()
    }

    pub fn signed_in(&self) -> bool {
        self.nav.is_some() || self.support_name.is_some()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub message: &'static str,
    /// Shown small, so a merchant can quote it to support.
    pub status: u16,
    /// The request's id (`web::RequestId`), which its log lines carry too.
    pub request_id: Option<String>,
}

/// Japan Standard Time (no daylight saving), which is how merchants read times.
pub fn jst(t: impl UtcTime) -> String {
    use chrono::{Datelike, Timelike};
    // Written out rather than through `format`, which reads its pattern again on every call:
    // a list page shows a hundred times.
    let t = t.utc().naive_utc() + chrono::Duration::hours(9);
    format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year(), t.month(), t.day(), t.hour(), t.minute())
}

/// An amount in yen as merchants read it: "24,040円" (the CSV export keeps plain numbers).
pub fn yen(amount: impl Amount) -> String {
    let n = amount.value();
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 4);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out.push('円');
    out
}

/// Lets templates pass an amount however many references deep askama hands it over.
pub trait Amount {
    fn value(&self) -> i64;
}

impl Amount for i64 {
    fn value(&self) -> i64 {
        *self
    }
}

impl<T: Amount + ?Sized> Amount for &T {
    fn value(&self) -> i64 {
        (**self).value()
    }
}

/// Lets templates pass a time however many references deep askama hands it over.
pub trait UtcTime {
    fn utc(&self) -> chrono::DateTime<chrono::Utc>;
}

impl UtcTime for chrono::DateTime<chrono::Utc> {
    fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        *self
    }
}

impl<T: UtcTime + ?Sized> UtcTime for &T {
    fn utc(&self) -> chrono::DateTime<chrono::Utc> {
        (**self).utc()
    }
}

#[cfg(test)]
mod tests {
    use super::yen;

    #[test]
    #[expect(clippy::needless_borrows_for_generic_args, reason = "templates hand amounts over by reference")]
    fn yen_groups_thousands() {
        assert_eq!(yen(0), "0円");
        assert_eq!(yen(800), "800円");
        assert_eq!(yen(24040), "24,040円");
        assert_eq!(yen(1_234_567), "1,234,567円");
        assert_eq!(yen(-1500), "-1,500円");
        assert_eq!(yen(&&100_000), "100,000円");
    }
}
