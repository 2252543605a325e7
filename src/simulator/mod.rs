//! A local, faithful stand-in for Yahoo!ショッピング: YConnect authorization and tokens, the
//! public-key check, the order, change and stock APIs, and the fraud-hold rules, as
//! `spec/yahoo-store-api.md` describes them, plus a control API and a small HTML view.
//!
//! It needs no database: its world lives in memory ([`state`]). It runs on its own port as the
//! `simulator` subcommand, beside `serve` in the embedded default, and in-process in tests.
//! Tour: [`yconnect`] (consent and tokens) → [`store_api`] (the gate and the APIs) →
//! [`orders`] (order XML) → [`generate`] (bulk orders) → [`control`] (JSON) → [`view`] (HTML);
//! [`http`] serves it all with Yahoo's header names.

pub mod control;
pub mod generate;
pub mod http;
pub mod orders;
pub mod state;
pub mod store_api;
pub mod view;
pub mod yconnect;

use std::{net::SocketAddr, path::Path};

use axum::{
    Router,
    extract::{Request, State},
    http::HeaderValue,
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use rsa::{RsaPrivateKey, pkcs8::DecodePrivateKey, pkcs8::EncodePrivateKey};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tower_http::compression::CompressionLayer;
use url::Url;

pub use state::{App, HoldMode, Settings, SimState};

/// The demo app every newcomer's simulator has (documented; it is a local test tool).
pub const DEMO_CLIENT_ID: &str = "demo-client";
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
pub const DEMO_SELLER_ID: &str = "demo-store";

pub fn router(sim: SimState) -> Router {
    Router::new()
        .route("/", get(view::index))
        .route("/yconnect/v2/authorization", get(yconnect::consent).post(yconnect::decide))
        .route("/yconnect/v2/token", post(yconnect::token))
        .route("/ShoppingWebService/V1/{api}", post(store_api::handle).get(store_api::handle))
        .route("/_sim/state", get(control::state))
        .route("/_sim/settings", post(control::settings))
        .route("/_sim/clock", post(control::clock))
        .route("/_sim/apps", post(control::add_app))
        .route("/_sim/sellers/{seller_id}/keys", post(control::add_key))
        .route("/_sim/sellers/{seller_id}/keys/{version}", post(control::update_key))
        .route("/_sim/sellers/{seller_id}/orders", get(control::snapshot).post(control::add_order))
        .route("/_sim/sellers/{seller_id}/orders/generate", post(control::generate))
        .route("/_sim/sellers/{seller_id}/stock", get(control::stock).post(control::set_stock))
        .route("/_sim/review", post(control::review))
        .route("/_sim/faults", post(control::add_fault).delete(control::clear_faults))
        .route("/_sim/counters", get(control::counters).delete(control::reset_counters))
        .route("/_sim/grants/revoke", post(control::revoke))
        .route("/_sim/view/keys/issue", post(view::issue_key))
        .route("/_sim/view/keys/toggle", post(view::toggle_key))
        .route("/_sim/view/generate", post(view::generate))
        .route("/_sim/view/review", post(view::review))
        .route("/_sim/view/clock", post(view::clock))
        .route("/_sim/view/mode", post(view::mode))
        .layer(CompressionLayer::new().gzip(true))
        .layer(middleware::from_fn(same_origin_only))
        .layer(middleware::from_fn_with_state(sim.clone(), date_header))
        .with_state(sim)
}

/// A browser reaches the simulator's own pages (the HTML view, the consent page), so a POST a
/// browser says came from another site is refused, as the service's CSRF layer does: another
/// page the person has open cannot press the simulator's buttons. API clients send no `Origin`.
async fn same_origin_only(request: Request, next: Next) -> Response {
    use axum::{
        http::{Method, StatusCode, header},
        response::IntoResponse,
    };
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|site| !matches!(site, "same-origin" | "none"));
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        let authority = origin.to_str().ok().and_then(|o| Url::parse(o).ok()).and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        });
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        !matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    });
    if cross_site || foreign_origin {
        return (StatusCode::FORBIDDEN, "別のサイトからの送信は受け付けません（シミュレーター）").into_response();
    }
    next.run(request).await
}

/// Every answer carries the simulator's clock in `Date`, as Yahoo's carries its own: this is
/// what the client measures its clock offset from.
async fn date_header(State(sim): State<SimState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let date = sim.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(value) = HeaderValue::from_str(&date) {
        response.headers_mut().insert(axum::http::header::DATE, value);
    }
    response
}

/// A bound simulator, not yet serving.
pub struct Simulator {
    listener: TcpListener,
    state: SimState,
    base_url: Url,
}

impl Simulator {
    /// Binds first, so port 0 works and the URL is known before serving.
    pub async fn bind(addr: SocketAddr, settings: Settings) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let host = if local.ip().is_unspecified() { "localhost".to_owned() } else { local.ip().to_string() };
        let base_url = Url::parse(&format!("http://{host}:{}/", local.port())).map_err(std::io::Error::other)?;
        Ok(Simulator { listener, state: SimState::new(settings), base_url })
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    pub fn state(&self) -> &SimState {
        &self.state
    }

    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        http::serve(self.listener, router(self.state), shutdown).await
    }

    /// Serves in the background until the handle is dropped or shut down.
    pub fn spawn(self) -> SimHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let base_url = self.base_url.clone();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = self
                .run_until(async move {
                    let _ = rx.await;
                })
                .await
            {
                tracing::error!(%error, "simulator stopped");
            }
        });
        SimHandle { base_url, state, shutdown: Some(tx), task: Some(task) }
    }
}

/// A running simulator.
pub struct SimHandle {
    pub base_url: Url,
    pub state: SimState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Sets the scene a newcomer needs: the demo app (with these redirect URIs), the demo store
/// with a 有効 key (kept in `key_file` so it survives restarts) and a few days of orders.
pub async fn seed_demo(sim: &SimState, redirect_uris: Vec<String>, key_file: Option<&Path>) -> anyhow::Result<()> {
    sim.world().apps.insert(
        DEMO_CLIENT_ID.into(),
        App {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            redirect_uris,
            allowed_ips: Vec::new(),
            approved_for_orders: true,
        },
    );
    let saved = key_file.and_then(|p| std::fs::read_to_string(p).ok());
    let private_pem = match saved.filter(|pem| RsaPrivateKey::from_pkcs8_pem(pem).is_ok()) {
        Some(pem) => pem,
        None => {
            let key = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut rand::thread_rng(), 2048)).await??;
            let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)?.to_string();
            if let Some(path) = key_file {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                std::fs::write(path, &pem)?;
            }
            pem
        }
    };
    control::issue_key(sim, DEMO_SELLER_ID, control::IssueKey { private_pem: Some(private_pem), ..Default::default() })
        .await
        .map_err(|_| anyhow::anyhow!("could not issue the demo key"))?;
    control::generate_into(
        sim,
        DEMO_SELLER_ID,
        &generate::Generate { count: 60, seed: 2024, fraud_share: 0.1, spread_hours: 72 },
    );
    Ok(())
}
