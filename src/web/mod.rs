//! The web front: one router built from the route table below, and the layers every request
//! passes through (tracing, timeout, security headers, sessions, CSRF, metrics).

use std::time::Duration;

use axum::{
    Router,
    handler::Handler,
    http::{HeaderName, HeaderValue, Method, header},
    middleware,
};
use tower_http::{
    catch_panic::CatchPanicLayer, limit::RequestBodyLimitLayer, set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer, trace::TraceLayer,
};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use crate::{app::AppState, db::sessions::SessionBackend};

pub mod admin;
pub mod assets;
pub mod audit;
pub mod auth;
pub mod buyer_mail;
pub mod chart;
pub mod connect;
pub mod csrf;
pub mod csv;
pub mod dashboard;
pub mod documents;
pub mod error;
pub mod health;
pub mod imports;
pub mod input;
pub mod mail;
pub mod notify;
pub mod order_list;
pub mod orders;
pub mod password_reset;
pub mod reimport;
pub mod render;
pub mod rules;
pub mod session;
pub mod shipping;
pub mod stock;
pub mod stores;
pub mod tags;
pub mod users;

/// Largest request body accepted (the public-key form must take a pasted 1 MB mistake and
/// answer it with a message, not a dropped connection).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// One registered route, as tests and documentation see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
}

/// The router plus the list of what it serves, so tests can walk every route (for example the
/// cross-tenant test, which picks up new routes by itself).
pub struct Routes {
    router: Router<AppState>,
    list: Vec<RouteInfo>,
}

impl Routes {
    fn new() -> Routes {
        Routes { router: Router::new(), list: Vec::new() }
    }

    fn get<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Routes {
        self.list.push(RouteInfo { method: Method::GET, path });
        self.router = self.router.route(path, axum::routing::get(handler));
        self
    }

    fn post<H: Handler<T, AppState>, T: 'static>(mut self, path: &'static str, handler: H) -> Routes {
        self.list.push(RouteInfo { method: Method::POST, path });
        self.router = self.router.route(path, axum::routing::post(handler));
        self
    }

    pub fn list(&self) -> &[RouteInfo] {
        &self.list
    }
}

/// Every page and action of the service. Path parameters named `{…_id}` refer to
/// account-scoped rows.
pub fn routes() -> Routes {
    Routes::new()
        .get("/", dashboard::show)
        .post("/alerts/acknowledge", dashboard::acknowledge_all)
        .post("/alerts/{alert_id}/acknowledge", dashboard::acknowledge)
        .get("/signup", auth::signup_form)
        .post("/signup", auth::signup)
        .get("/signin", auth::signin_form)
        .post("/signin", auth::signin)
        .post("/signout", auth::signout)
        .get("/account/password", auth::password_form)
        .post("/account/password", auth::change_password)
        .get("/account/notifications", notify::form)
        .post("/account/notifications", notify::save)
        .get("/users", users::index)
        .post("/users", users::create)
        .post("/users/{user_id}/delete", users::delete)
        .post("/users/{user_id}/password", users::reset_password)
        .post("/users/{user_id}/access", users::set_access)
        .get("/stores", stores::index)
        .get("/stores/new", stores::new_form)
        .post("/stores", stores::create)
        .get("/stores/oauth/callback", connect::callback)
        .get("/stores/{store_id}", stores::show)
        .post("/stores/{store_id}/connect", connect::connect)
        .post("/stores/{store_id}/test", connect::test)
        .get("/stores/{store_id}/public-key", connect::key_form)
        .post("/stores/{store_id}/public-key", connect::save_key)
        .get("/stores/{store_id}/edit", stores::edit_form)
        .post("/stores/{store_id}", stores::update)
        .post("/stores/{store_id}/delete", stores::delete)
        .post("/stores/{store_id}/import", imports::import_store)
        .get("/stores/{store_id}/emergency-stop", imports::stop_store_form)
        .post("/stores/{store_id}/emergency-stop", imports::stop_store)
        .post("/stores/{store_id}/resume", imports::resume_store)
        .get("/emergency-stop", imports::stop_account_form)
        .post("/emergency-stop", imports::stop_account)
        .post("/resume", imports::resume_account)
        .get("/orders", order_list::index)
        .get("/orders.csv", order_list::csv)
        .post("/orders/bulk", order_list::bulk)
        .post("/orders/take-in", orders::take_in)
        .get("/orders/{order_id}", orders::show)
        .post("/orders/{order_id}/status", orders::change)
        .post("/orders/{order_id}/note", orders::save_note)
        .post("/orders/{order_id}/retry-push", orders::retry_push)
        .post("/orders/{order_id}/parcels", shipping::parcels)
        .post("/orders/{order_id}/tags", tags::set_on_order)
        .post("/orders/tags", tags::bulk)
        .get("/tags", tags::index)
        .post("/tags", tags::create)
        .post("/tags/{tag_id}/delete", tags::delete)
        .post("/orders/rules", rules::run_on_orders)
        .get("/rules", rules::index)
        .get("/rules/new", rules::new)
        .post("/rules/new", rules::create)
        .post("/rules/islands", rules::set_islands)
        .get("/rules/{rule_id}", rules::edit)
        .post("/rules/{rule_id}", rules::update)
        .post("/rules/{rule_id}/move", rules::move_rule)
        .post("/rules/{rule_id}/delete", rules::delete)
        .get("/orders/{order_id}/reimport", reimport::order_preview)
        .post("/orders/{order_id}/reimport", reimport::order_apply)
        .get("/stores/{store_id}/reimport", reimport::store_preview)
        .post("/stores/{store_id}/reimport", reimport::store_apply)
        .get("/stores/{store_id}/reconcile", reimport::reconcile_form)
        .post("/stores/{store_id}/reconcile", reimport::reconcile)
        .get("/shipping", shipping::index)
        .post("/shipping/labels", shipping::labels)
        .get("/shipping/exports/{export_id}/file", shipping::export_file)
        .post("/shipping/tracking", shipping::tracking_upload)
        .post("/shipping/tracking/manual", shipping::manual)
        .get("/shipping/tracking/{upload_id}", shipping::tracking_show)
        .post("/shipping/tracking/{upload_id}/apply", shipping::tracking_apply)
        .get("/stores/{store_id}/shipping", shipping::settings_form)
        .post("/stores/{store_id}/shipping", shipping::save_settings)
        .post("/documents", documents::create)
        .get("/documents/{batch_id}", documents::show)
        .get("/documents/{batch_id}/pdf", documents::pdf)
        .get("/stores/{store_id}/documents", documents::settings_form)
        .post("/stores/{store_id}/documents", documents::save_settings)
        .get("/stores/{store_id}/mail", buyer_mail::settings_form)
        .post("/stores/{store_id}/mail", buyer_mail::save_settings)
        .get("/orders/{order_id}/mail", buyer_mail::compose)
        .post("/orders/{order_id}/mail", buyer_mail::send)
        .get("/mail", mail::index)
        .post("/mail/test", mail::test)
        .get("/mail/{mail_id}", mail::show)
        .get("/stock", stock::index)
        .get("/stock.csv", stock::download)
        .post("/stock/set", stock::set)
        .post("/stock/upload", stock::upload)
        .post("/stock/uploads/{upload_id}/apply", stock::apply)
        .post("/stock/pull", stock::pull)
        .post("/stock/locations", stock::set_location)
        .post("/stock/locations/upload", stock::upload_locations)
        .get("/imports", imports::index)
        .post("/imports", imports::import_all)
        .get("/imports/{run_id}", imports::show)
        .get("/audit", audit::index)
        .get("/audit.csv", audit::download)
        .get("/admin", admin::index)
        .post("/admin/password-reset", password_reset::issue)
        .post("/admin/stop", admin::stop)
        .post("/admin/resume", admin::resume)
        .post("/admin/access", admin::open_access)
        .post("/admin/access/end", admin::end_access)
        .get("/password-forgot", password_reset::forgot_form)
        .post("/password-forgot", password_reset::forgot)
        .get("/password-reset/{token}", password_reset::form)
        .post("/password-reset/{token}", password_reset::reset)
        .get("/healthz", health::healthz)
        .get("/metrics", health::metrics)
        .get("/static/{file}", assets::serve)
}

/// Path prefixes whose next segment is a secret (a password-reset link's token).
const SECRET_SEGMENTS: [&str; 1] = ["/password-reset/"];

/// A request's path as it may be logged: without the query (an OAuth callback's `code` and
/// `state`) and with a secret segment replaced by its route's name, so that no token reaches a
/// log line at any level. Every log line that names a request's path takes it from here.
pub fn loggable_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    for prefix in SECRET_SEGMENTS {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}{{token}}{tail}");
        }
    }
    path.to_owned()
}

/// A short id for one request: on its log lines (the request span), in the `x-request-id`
/// header and on its error page, so that support can match what a merchant saw to the log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

async fn request_id(mut req: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
    let id: String = crate::crypto::random_token().chars().filter(char::is_ascii_alphanumeric).take(10).collect();
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = crate::telemetry::with_request_id(id.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The whole application router with its layers.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application router with `extra` routes served through the same layers (the order desk
/// benchmark's bare page; no product route is added this way).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let config = &state.config;
    let cookie_name = if config.secure_cookies() { "__Host-orderdesk" } else { "orderdesk" };
    let sessions = SessionManagerLayer::new(SessionBackend::new(&state.db))
        .with_name(cookie_name)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies())
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::hours(config.session_idle_hours)));
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    let timeout = Duration::from_secs(config.request_timeout_secs);

    // The error-page layer sits just inside the session layer: it sees every error answer from
    // below it (router, extractors, CSRF, body limit, timeout, panics) and can still draw the
    // signed-in header.
    routes()
        .router
        .merge(extra)
        .fallback(error::not_found)
        .route_layer(middleware::from_fn(health::track_metrics))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::guard))
        .layer(middleware::from_fn(session::support_read_only))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(auth::remember_wanted_page))
        .layer(middleware::from_fn_with_state(state.clone(), error::error_pages))
        .layer(sessions)
        .layer(middleware::from_fn_with_state(state.clone(), error::last_resort))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::REFERRER_POLICY, "same-origin"))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.extensions().get::<RequestId>().map_or("", |r| r.0.as_str());
            tracing::info_span!("request", id = %id, method = %req.method(), path = %loggable_path(req.uri()))
        }))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reset_token_and_a_query_never_reach_a_log_line() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(super::loggable_path(&uri("/password-reset/s3cret-token")), "/password-reset/{token}");
        assert_eq!(super::loggable_path(&uri("/password-reset/s3cret/x?y=1")), "/password-reset/{token}/x");
        assert_eq!(super::loggable_path(&uri("/connect/callback?code=abc&state=def")), "/connect/callback");
        assert_eq!(super::loggable_path(&uri("/orders/12")), "/orders/12");
    }
}
