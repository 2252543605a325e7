//! Typed configuration, parsed once from flags and environment variables (`--help` lists them).
//! The defaults make the embedded mode work with no variables at all: a SQLite file in `./data`.

use std::{net::SocketAddr, path::PathBuf, str::FromStr};

use clap::{Args, Parser, Subcommand, ValueEnum};
use url::Url;

#[derive(Debug, Parser)]
#[command(name = "orderdesk", version, about = "Order desk for Yahoo!ショッピング merchants")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// What to run (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web service (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage support staff.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Run only the Yahoo!ショッピング simulator, on --simulator-listen.
    Simulator {
        /// Callback URLs the demo app accepts (default: this service's own callback).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Start empty: no demo app, store or orders.
        #[arg(long)]
        no_demo: bool,
    },
    /// Measure performance and print the figures.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchTarget {
    /// orderInfo calls per second the simulator serves on loopback (rate limiting off).
    Simulator {
        /// How long to measure, in seconds.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Orders in the simulated store.
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
    },
    /// Import throughput on SQLite and PostgreSQL beside a bare orderInfo loop, and the share
    /// of the allowed call rate used with the rate limit on.
    Import {
        /// Orders imported per backend with the rate limit off.
        #[arg(long, default_value_t = 20_000)]
        orders: usize,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
        /// Orders imported with the rate limit on.
        #[arg(long, default_value_t = 300)]
        limited_orders: usize,
        /// Calls per second per API URL the simulator allows in the rate-limited run (Yahoo: 1).
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        /// Rules on the account (issue 30): each round is imported without rules and with this
        /// many, and the CPU per order of both is printed. 0: without rules only.
        #[arg(long, default_value_t = 100)]
        rules: usize,
    },
    /// p99 of the support overview and its 「要対応」 filter over 1,000 accounts and 5,000 stores.
    Admin {
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// The order desk under load: a million orders over twenty stores, the list (first page,
    /// filters, a deep page, search, a status tab), the detail page and CSV exports against a bare
    /// page of the same stack, on SQLite and PostgreSQL, with the server's peak RSS.
    Orders {
        /// Orders in the account.
        #[arg(long, default_value_t = 1_000_000)]
        orders: usize,
        /// Stores they are spread over.
        #[arg(long, default_value_t = 20)]
        stores: usize,
        /// Seconds measured per scenario (after a short warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Requests in flight at once (one connection each).
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
        /// Orders in the large CSV export (the small one has a tenth).
        #[arg(long, default_value_t = 100_000)]
        csv_orders: usize,
        /// Only PostgreSQL.
        #[arg(long)]
        skip_sqlite: bool,
        /// Wait for the 1-minute load average to fall below this before measuring…
        #[arg(long, default_value_t = 2.5)]
        max_load: f64,
        /// …but no longer than this many seconds.
        #[arg(long, default_value_t = 0)]
        wait_secs: u64,
        /// SQLite only: keep the seeded database in this folder and reuse it on the next run
        /// (seeding a million orders takes minutes; for measuring one change after another).
        #[arg(long)]
        keep: Option<std::path::PathBuf>,
        /// Run only the scenarios whose name contains this text (the bare page always runs).
        #[arg(long)]
        only: Option<String>,
    },
    /// What polling many stores costs: N stores with automatic import every minute, polled by
    /// one and by two `serve` child processes on one PostgreSQL (scheduler lag, CPU per
    /// store-hour, rows written per poll, Yahoo calls per store-day).
    Fleet {
        /// PostgreSQL server (a database is created and dropped there for each measurement).
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: String,
        /// Fleet sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        stores: Vec<usize>,
        /// Numbers of serve processes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        processes: Vec<usize>,
        /// Seconds before measuring (every store polled at least once).
        #[arg(long, default_value_t = 90)]
        warmup_secs: u64,
        /// Seconds measured.
        #[arg(long, default_value_t = 120)]
        measure_secs: u64,
        /// New orders per store and day, at random stores.
        #[arg(long, default_value_t = 20.0)]
        orders_per_store_day: f64,
    },
    /// The server `bench orders` starts as its child process (serve's router plus a bare page).
    #[command(hide = true)]
    OrdersServer,
    /// 在庫連動: codes changed at once across five stores, pushed with setStock (calls made,
    /// time with the rate limit off and on, an order's import to its quantity at Yahoo).
    Stock {
        /// Codes changed.
        #[arg(long, default_value_t = 100_000)]
        codes: usize,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The shipping day: a B2 label file for N orders, then the carrier's issued-data file of
    /// N rows previewed and applied (rows per second, RSS growth), on SQLite and PostgreSQL.
    Shipping {
        /// Orders in the store.
        #[arg(long, default_value_t = 10_000)]
        orders: usize,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// Mail: N notifications sent to a local SMTP server (mails/s), and an import timed alone and
    /// beside the sending.
    Mail {
        /// Notifications queued.
        #[arg(long, default_value_t = 10_000)]
        mails: usize,
        /// Orders imported, alone and beside the sending.
        #[arg(long, default_value_t = 3_000)]
        orders: usize,
        /// The SMTP server (lettre's URL form); unset: Debian's aiosmtpd started here.
        #[arg(long)]
        smtp: Option<String>,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
    },
    /// 納品書 and picking lists: N imported orders printed as one 納品書 PDF and one picking
    /// list through the print batch (pages per second, peak RSS), and a picking list of
    /// `--lines` lines.
    Documents {
        /// Orders in the batch.
        #[arg(long, default_value_t = 1_000)]
        orders: usize,
        /// Lines of the large picking list.
        #[arg(long, default_value_t = 10_000)]
        lines: usize,
        /// PostgreSQL server (a database is created and dropped there); unset: SQLite only.
        #[arg(long, env = "BENCH_POSTGRES_URL")]
        postgres: Option<String>,
    },
}

/// Whether `serve` starts the built-in simulator beside itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimulatorMode {
    /// Only in the embedded default (no DATABASE_URL).
    Auto,
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a support-staff login. The password is read from ORDERDESK_ADMIN_PASSWORD or,
    /// if that is unset, from the first line of standard input.
    Create {
        /// Email address used to sign in.
        #[arg(long)]
        email: String,
        /// Name shown in the audit log of the merchants they help.
        #[arg(long, default_value = "サポート")]
        name: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Settings shared by every subcommand.
#[derive(Clone, Debug, Args)]
pub struct Config {
    /// Folder for the embedded SQLite database and the generated secrets key.
    #[arg(long, env = "ORDERDESK_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL: `postgres://…` for PostgreSQL, `sqlite://…` for a SQLite file.
    /// Unset: a SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<Redacted>,

    /// Address to listen on.
    #[arg(long, env = "ORDERDESK_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,

    /// The URL people use to reach the service (used for links, the OAuth redirect URI and the
    /// Secure cookie flag). Unset: http://<listen address>.
    #[arg(long, env = "ORDERDESK_PUBLIC_URL", global = true)]
    pub public_url: Option<Url>,

    /// Key that encrypts secrets at rest: 32 bytes, base64. Unset: generated into
    /// `<data dir>/secret.key` on first run. Several servers sharing PostgreSQL must share it.
    #[arg(long, env = "ORDERDESK_SECRET_KEY", global = true)]
    pub secret_key: Option<Redacted>,

    /// Log format.
    #[arg(long, env = "ORDERDESK_LOG_FORMAT", value_enum, default_value = "pretty", global = true)]
    pub log_format: LogFormat,

    /// Reverse proxies of our own in front of the service. 0: the client address is the socket
    /// peer. N: it is the Nth X-Forwarded-For entry from the right (the one our outermost proxy
    /// added); entries further left are the client's own and never trusted.
    #[arg(long, env = "ORDERDESK_TRUSTED_PROXY_HOPS", default_value_t = 0, global = true)]
    pub trusted_proxy_hops: usize,

    /// Client addresses besides loopback that may read /metrics (comma-separated IPs).
    #[arg(long, env = "ORDERDESK_METRICS_ALLOW", value_delimiter = ',', global = true)]
    pub metrics_allow: Vec<std::net::IpAddr>,

    /// Failed sign-ins for one email address from one client address within the window before
    /// sign-in is refused for that pair.
    #[arg(long, env = "ORDERDESK_SIGNIN_MAX_FAILURES_PER_EMAIL", default_value_t = 5, global = true)]
    pub signin_max_failures_per_email: i64,

    /// Failed sign-ins for one email address, from addresses it has never signed in from, within
    /// the window before sign-in from new addresses is refused (known addresses are unaffected).
    #[arg(long, env = "ORDERDESK_SIGNIN_MAX_FAILURES_PER_EMAIL_NEW_ADDRESSES", default_value_t = 20, global = true)]
    pub signin_max_failures_per_email_new_addresses: i64,

    /// Sign-ups from one client address within the window before sign-up is refused.
    #[arg(long, env = "ORDERDESK_SIGNUP_MAX_PER_IP", default_value_t = 10, global = true)]
    pub signup_max_per_ip: i64,

    /// Failed sign-ins from one client address within the window before sign-in is refused.
    #[arg(long, env = "ORDERDESK_SIGNIN_MAX_FAILURES_PER_IP", default_value_t = 20, global = true)]
    pub signin_max_failures_per_ip: i64,

    /// Length of the sign-in throttling window, in minutes.
    #[arg(long, env = "ORDERDESK_SIGNIN_WINDOW_MINUTES", default_value_t = 15, global = true)]
    pub signin_window_minutes: i64,

    /// Requests taking longer than this are answered 408.
    #[arg(long, env = "ORDERDESK_REQUEST_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub request_timeout_secs: u64,

    /// Signed-in sessions end after this long without a request.
    #[arg(long, env = "ORDERDESK_SESSION_IDLE_HOURS", default_value_t = 12, global = true)]
    pub session_idle_hours: i64,

    /// Start the built-in Yahoo!ショッピング simulator beside the service.
    #[arg(long, env = "ORDERDESK_SIMULATOR", value_enum, default_value = "auto", global = true)]
    pub simulator: SimulatorMode,

    /// Address the built-in simulator (or the `simulator` subcommand) listens on.
    #[arg(long, env = "ORDERDESK_SIMULATOR_LISTEN", default_value = "127.0.0.1:8081", global = true)]
    pub simulator_listen: SocketAddr,

    /// Base URL of a simulator running elsewhere, used by stores set to ローカルシミュレーター.
    /// Unset: the built-in one.
    #[arg(long, env = "ORDERDESK_SIMULATOR_URL", global = true)]
    pub simulator_url: Option<Url>,

    /// Timeout of one call to Yahoo, in seconds.
    #[arg(long, env = "ORDERDESK_YAHOO_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub yahoo_timeout_secs: u64,

    /// Minimum time between two calls of one store to one Yahoo API URL (Yahoo allows 1 per second).
    #[arg(long, env = "ORDERDESK_YAHOO_MIN_INTERVAL_MS", default_value_t = 1000, global = true)]
    pub yahoo_min_interval_ms: u64,

    /// First pause before retrying a temporary Yahoo failure; doubles on each retry.
    #[arg(long, env = "ORDERDESK_YAHOO_BACKOFF_MS", default_value_t = 500, global = true)]
    pub yahoo_backoff_ms: u64,

    /// Outbound HTTP proxy for calls to Yahoo (a fixed egress address for Yahoo's IP allow-list).
    #[arg(long, env = "ORDERDESK_YAHOO_PROXY", global = true)]
    pub yahoo_proxy: Option<Redacted>,

    /// Run automatic imports and queued manual imports in this process (`serve`).
    #[arg(long, env = "ORDERDESK_SCHEDULER", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub scheduler: bool,

    /// How often the scheduler looks for due stores and queued imports, in milliseconds.
    #[arg(long, env = "ORDERDESK_SCHEDULER_TICK_MS", default_value_t = 1000, global = true)]
    pub scheduler_tick_ms: u64,

    /// Stores this process imports at the same time. A run mostly waits for Yahoo (a store's
    /// calls to one API go a second apart, so even a check that finds nothing takes a second or
    /// two), so one process runs many: `bench fleet` measured 4 at a time falling behind at a
    /// thousand stores polled every minute.
    #[arg(long, env = "ORDERDESK_IMPORT_WORKERS", default_value_t = 256, global = true)]
    pub import_workers: usize,

    /// orderInfo calls in flight per store import (they are paced per API URL all the same).
    #[arg(long, env = "ORDERDESK_IMPORT_CONCURRENCY", default_value_t = 16, global = true)]
    pub import_concurrency: usize,

    /// A store's import lease lasts this long without renewal; a dead process's stores are
    /// taken over after it.
    #[arg(long, env = "ORDERDESK_IMPORT_LEASE_SECS", default_value_t = 60, global = true)]
    pub import_lease_secs: u64,

    /// Yahoo's daily call quota per app; automatic work keeps a fifth of it for people.
    #[arg(long, env = "ORDERDESK_YAHOO_DAILY_QUOTA", default_value_t = 50_000, global = true)]
    pub yahoo_daily_quota: i64,

    /// How mail leaves: `outbox` keeps every message (in the database, shown on 送信メール, and
    /// as an `.eml` file under the data folder's `outbox/`) and sends nothing; `smtp` sends
    /// through ORDERDESK_SMTP_URL.
    #[arg(long, env = "ORDERDESK_MAIL", value_enum, default_value = "outbox", global = true)]
    pub mail: MailMode,

    /// The SMTP server, in lettre's URL form: `smtp://user@host:587?tls=required`,
    /// `smtps://host:465`, or plain `smtp://127.0.0.1:2525` for a local server.
    #[arg(long, env = "ORDERDESK_SMTP_URL", global = true)]
    pub smtp_url: Option<Redacted>,

    /// The SMTP password (used with the user of ORDERDESK_SMTP_URL).
    #[arg(long, env = "ORDERDESK_SMTP_PASSWORD", global = true)]
    pub smtp_password: Option<Redacted>,

    /// The From address of every mail (a store's name is its display name on buyer mails).
    #[arg(long, env = "ORDERDESK_MAIL_FROM", default_value = "orderdesk@localhost", global = true)]
    pub mail_from: String,

    /// How often the mail sender looks for mail to send, in milliseconds.
    #[arg(long, env = "ORDERDESK_MAIL_TICK_MS", default_value_t = 1000, global = true)]
    pub mail_tick_ms: u64,

    /// A sender's claim on the messages it is sending lasts this long; a dead process's
    /// messages are sent by another after it (at least once: the same Message-ID again).
    #[arg(long, env = "ORDERDESK_MAIL_LEASE_SECS", default_value_t = 60, global = true)]
    pub mail_lease_secs: u64,

    /// How often the notifier watches stores and folds notices into mail, in milliseconds.
    #[arg(long, env = "ORDERDESK_NOTIFY_TICK_MS", default_value_t = 15_000, global = true)]
    pub notify_tick_ms: u64,
}

/// How mail leaves the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MailMode {
    /// Kept, not sent (the embedded default).
    Outbox,
    /// Sent by SMTP.
    Smtp,
}

impl Config {
    /// The defaults, as if no flag or variable were given.
    pub fn defaults() -> Config {
        Cli::parse_from(["orderdesk"]).config
    }

    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            // Listening on every interface: the address people can type on this machine.
            let host =
                if self.listen.ip().is_unspecified() { "localhost".to_string() } else { self.listen.ip().to_string() };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            Url::parse(&format!("http://{host}:{}/", self.listen.port())).expect("a socket address makes a valid URL")
        })
    }

    /// Whether the client at `ip` (as [`crate::web::session::client_address`] found it) may
    /// read /metrics: loopback, or an address on the allow-list.
    pub fn metrics_allowed(&self, ip: &str) -> bool {
        ip.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || self.metrics_allow.contains(&ip))
    }

    /// Settings `serve` refuses to start with.
    pub fn check_for_serve(&self) -> anyhow::Result<()> {
        // Off loopback, people reach the service by some name we cannot guess; without it the
        // cookies would lack Secure and links and the OAuth callback would point nowhere.
        anyhow::ensure!(
            self.listen.ip().is_loopback() || self.public_url.is_some(),
            "ORDERDESK_PUBLIC_URL is required when listening on {} (not a loopback address): set it to the URL \
             people use, e.g. https://desk.example.jp/",
            self.listen
        );
        Ok(())
    }

    /// How long a Yahoo call made while a person waits (接続テスト, the OAuth callback) may take
    /// in all, retries included: well inside the request timeout, so the person gets a message
    /// instead of an empty 408.
    pub fn interactive_yahoo_deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis((self.request_timeout_secs * 1000 * 2 / 3).max(500))
    }

    /// The sign-in and sign-up throttling thresholds.
    pub fn signin_limits(&self) -> crate::db::signin::Limits {
        crate::db::signin::Limits {
            per_pair: self.signin_max_failures_per_email,
            per_ip: self.signin_max_failures_per_ip,
            per_email_unknown: self.signin_max_failures_per_email_new_addresses,
            signups_per_ip: self.signup_max_per_ip,
            window: chrono::Duration::minutes(self.signin_window_minutes),
        }
    }

    /// Whether `serve` should start the built-in simulator.
    pub fn wants_simulator(&self) -> bool {
        match self.simulator {
            SimulatorMode::On => true,
            SimulatorMode::Off => false,
            SimulatorMode::Auto => self.database_url.is_none() && self.simulator_url.is_none(),
        }
    }

    /// The OAuth callback to register with Yahoo.
    pub fn redirect_uri(&self) -> String {
        let base = self.public_url();
        base.join("stores/oauth/callback").map(String::from).unwrap_or_else(|_| format!("{base}stores/oauth/callback"))
    }

    /// Cookies are Secure everywhere except plain-http localhost, where browsers would drop them.
    pub fn secure_cookies(&self) -> bool {
        let url = self.public_url();
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        !(url.scheme() == "http" && local)
    }
}

/// A string that never shows up in `Debug` output or logs (database URLs carry passwords).
#[derive(Clone)]
pub struct Redacted(String);

impl Redacted {
    pub fn new(s: impl Into<String>) -> Redacted {
        Redacted(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_environment() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url().as_str(), "http://127.0.0.1:8080/");
        assert!(!c.secure_cookies());
    }

    #[test]
    fn cookies_are_secure_outside_plain_http_localhost() {
        let mut c = Config::defaults();
        c.public_url = Some(Url::parse("https://desk.example.jp/").unwrap());
        assert!(c.secure_cookies());
        c.public_url = Some(Url::parse("http://desk.example.jp/").unwrap());
        assert!(c.secure_cookies());
        c.public_url = None;
        c.listen = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(c.public_url().as_str(), "http://localhost:8080/");
        assert!(!c.secure_cookies());
    }

    #[test]
    fn public_url_is_required_off_loopback() {
        let mut c = Config::defaults();
        assert!(c.check_for_serve().is_ok());
        c.listen = "0.0.0.0:8080".parse().unwrap();
        assert!(c.check_for_serve().unwrap_err().to_string().contains("ORDERDESK_PUBLIC_URL is required"));
        c.public_url = Some(Url::parse("https://desk.example.jp/").unwrap());
        assert!(c.check_for_serve().is_ok());
    }

    #[test]
    fn metrics_answer_loopback_and_the_allow_list() {
        let mut c = Config::defaults();
        assert!(c.metrics_allowed("127.0.0.1") && c.metrics_allowed("::1"));
        assert!(!c.metrics_allowed("203.0.113.9") && !c.metrics_allowed("unknown"));
        c.metrics_allow = vec!["203.0.113.9".parse().unwrap()];
        assert!(c.metrics_allowed("203.0.113.9"));
    }

    #[test]
    fn redacted_never_prints() {
        let r = Redacted::new("postgres://u:hunter2@db/x");
        assert_eq!(format!("{r:?}"), "[redacted]");
    }
}
