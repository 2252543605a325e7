//! Building and running the service: state, listener, background tasks, graceful shutdown.
//! The listener is bound first so tests can ask for port 0 and learn the real address.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::{
    config::Config,
    crypto::{self, SecretBox},
    db::{self, Db, sessions::SessionBackend},
    import::{ImportSettings, Importer, scheduler::Scheduler},
    jobs::{self, ProcessId},
    push::{PushSettings, Pusher},
    simulator::{self, SimHandle, Simulator},
    stock::{StockSettings, StockSync},
    telemetry, web,
    yahoo::YahooClient,
};

/// Everything a request handler needs. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub secrets: SecretBox,
    /// Verified against when a sign-in email is unknown (same time as a wrong password).
    pub dummy_hash: Arc<str>,
    pub metrics: PrometheusHandle,
    /// Every call to Yahoo goes through this.
    pub yahoo: Arc<YahooClient>,
    /// Runs imports (the scheduler's and the pages').
    pub importer: Arc<Importer>,
    /// This process's one name in every lease its jobs take.
    pub process: ProcessId,
    /// 在庫連動: order events into stock, pushes to the stores, pulls.
    pub stock: Arc<StockSync>,
    /// Sends the outbox's pushes to Yahoo (beside the scheduler).
    pub pusher: Arc<Pusher>,
    /// Builds and sends mail through the configured transport (the 送信メール page's test mail).
    pub mailer: Arc<crate::mail::Mailer>,
    /// The mail job (beside the scheduler; the test mail sends its message through it at once).
    pub mail: Arc<crate::mail::MailSender>,
    /// `/healthz`'s failures, logged once per outage.
    pub health_log: Arc<std::sync::Mutex<crate::telemetry::OutageLog>>,
    /// `/healthz`'s last probe: when, and what was wrong (one probe at a time).
    pub health: Arc<tokio::sync::Mutex<Option<crate::web::health::Probe>>>,
    /// 受注一覧's filtered tab counts, reused for a few seconds.
    pub tab_counts: Arc<crate::web::order_list::CountCache>,
}

impl AppState {
    /// Connects to the database, applies migrations and loads the secrets key.
    pub async fn new(config: Config) -> anyhow::Result<AppState> {
        let db = Db::connect(config.database_url.as_ref().map(|u| u.expose()), &config.data_dir).await?;
        db.migrate().await?;
        // Servers sharing PostgreSQL must share the key: none may generate its own.
        anyhow::ensure!(
            config.secret_key.is_some() || matches!(db, Db::Sqlite(_)),
            "ORDERDESK_SECRET_KEY is required with PostgreSQL (32 bytes, base64, e.g. `openssl rand -base64 32`): \
             servers sharing the database must share the key, so none generates its own"
        );
        let secrets = SecretBox::load(config.secret_key.as_ref().map(|k| k.expose()), &config.data_dir)?;
        db::key_check::verify(&db, &secrets).await?;
        // Values sealed before their row was named are re-sealed (idempotent, safe to stop).
        db::reseal::run(&db, &secrets).await?;
        let dummy_hash = tokio::task::spawn_blocking(crypto::dummy_hash).await?;
        let yahoo = Arc::new(YahooClient::new(&config, db.clone(), secrets.clone())?);
        // One name for this process in every lease it takes.
        let process = ProcessId::new();
        let importer =
            Arc::new(Importer::new(db.clone(), yahoo.clone(), process.clone(), ImportSettings::from_config(&config)));
        let stock =
            Arc::new(StockSync::new(db.clone(), yahoo.clone(), process.clone(), StockSettings::from_config(&config)));
        let pusher =
            Arc::new(Pusher::new(db.clone(), yahoo.clone(), process.clone(), PushSettings::from_config(&config)));
        let mailer = Arc::new(crate::mail::Mailer::from_config(&config)?);
        let mail = Arc::new(crate::mail::MailSender {
            db: db.clone(),
            mailer: mailer.clone(),
            secrets: secrets.clone(),
            owner: process.clone(),
            lease: Duration::from_secs(config.mail_lease_secs.max(1)),
        });
        Ok(AppState {
            mailer,
            mail,
            process,
            yahoo,
            importer,
            stock,
            pusher,
            health_log: Arc::new(std::sync::Mutex::new(crate::telemetry::OutageLog::new("health check"))),
            health: Arc::default(),
            tab_counts: Arc::default(),
            db,
            config: Arc::new(config),
            secrets,
            dummy_hash: dummy_hash.into(),
            metrics: telemetry::metrics_handle(),
        })
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    simulator: Option<Simulator>,
}

impl Application {
    pub async fn build(mut config: Config) -> anyhow::Result<Application> {
        config.check_for_serve()?;
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        if config.public_url.is_none() {
            // Port 0 (tests) becomes the real port.
            config.listen = addr;
            config.public_url = Some(config.public_url());
        }
        // The embedded default brings its own Yahoo, so a newcomer can connect a store and
        // import orders with no account anywhere.
        let simulator = if config.wants_simulator() {
            let sim = Simulator::bind(config.simulator_listen, simulator::Settings::default())
                .await
                .with_context(|| format!("binding the simulator on {}", config.simulator_listen))?;
            let key_file = config.data_dir.join("simulator").join("demo-key.pem");
            simulator::seed_demo(sim.state(), vec![config.redirect_uri()], Some(&key_file)).await?;
            config.simulator_url = Some(sim.base_url().clone());
            Some(sim)
        } else {
            None
        };
        let state = AppState::new(config).await?;
        Ok(Application { listener, state, simulator })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The built-in simulator's URL, when this instance runs one.
    pub fn simulator_url(&self) -> Option<&url::Url> {
        self.simulator.as_ref().map(|s| s.base_url())
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Application { listener, state, simulator } = self;
        let sim: Option<SimHandle> = simulator.map(|sim| {
            tracing::info!(url = %sim.base_url(), "built-in Yahoo simulator");
            sim.spawn()
        });
        // Background work ends with this future, even when it is dropped rather than finished
        // (a test killing a server): its tasks are aborted with it.
        let _background = AbortOnDrop(spawn_housekeeping(&state));
        // The background jobs, each on the one job engine (`jobs`), on the scheduler's tick:
        // imports, the pushes to Yahoo, the stock sync.
        let jobs = state.config.scheduler.then(|| {
            let tick = Duration::from_millis(state.config.scheduler_tick_ms.max(10));
            let scheduler = Scheduler::new(state.importer.clone(), tick, state.config.import_workers);
            [
                jobs::spawn(scheduler, tick),
                jobs::spawn(state.pusher.clone(), tick),
                jobs::spawn(state.stock.clone(), tick),
                jobs::spawn(state.mail.clone(), Duration::from_millis(state.config.mail_tick_ms.max(10))),
                jobs::spawn(state.notifier(), Duration::from_millis(state.config.notify_tick_ms.max(10))),
                // Completions are due by the day: a pass a minute is plenty.
                jobs::spawn(
                    crate::shipping::complete::CompleteJob { db: state.db.clone() },
                    Duration::from_secs(60).max(tick),
                ),
            ]
        });
        let app = web::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tracing::info!(url = %state.config.public_url(), database = state.db.backend_name(), "serving");
        let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
        // Runs in flight end here; their leases expire and another process (or the next start)
        // redoes what they had not committed.
        drop(jobs);
        drop(_background);
        if let Some(sim) = sim {
            sim.stop().await;
        }
        state.db.close().await;
        result.context("serving HTTP")
    }
}

/// A task that is aborted when this handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AppState {
    /// The notifier job of this process (one runs at a time across processes, under its lease).
    pub fn notifier(&self) -> crate::notify::Notifier {
        crate::notify::Notifier::new(
            self.db.clone(),
            self.process.clone(),
            self.config.public_url().as_str().trim_end_matches('/').to_owned(),
            Duration::from_secs(self.config.mail_lease_secs.max(1)),
        )
    }
}

/// Periodic clean-up: expired sessions and old sign-in failures.
fn spawn_housekeeping(state: &AppState) -> tokio::task::JoinHandle<()> {
    let db = state.db.clone();
    let window = chrono::Duration::minutes(state.config.signin_window_minutes);
    tokio::spawn(async move {
        // Aborted with this task (its handle is dropped with the loop below).
        let _sessions =
            AbortOnDrop(tokio::spawn(SessionBackend::new(&db).delete_expired_continuously(Duration::from_secs(600))));
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = db::signin::prune(&db, db::now() - window * 2).await {
                tracing::warn!(error = %e, "pruning sign-in failures failed");
            }
        }
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
