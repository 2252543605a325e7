//! Test harness: `TestApp` starts the service on port 0 with a fresh database; `Browser` acts
//! like a person with a browser (cookies, opening a page before submitting its form).

use std::{
    io::Write,
    sync::{Arc, Mutex, OnceLock},
};

use orderdesk::{
    app::Application,
    config::{Config, Redacted},
    db::Db,
};
use reqwest::{StatusCode, cookie::CookieStore, header};
use scraper::{Html, Selector};

pub const PASSWORD: &str = "correct horse battery";

/// Which database a test runs on. PostgreSQL comes from `TEST_POSTGRES_URL`
/// (default: the local server at 127.0.0.1:5432, user postgres); each test gets its own database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Declares `sqlite::name` and `postgres::name` tests for each `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::helpers::Backend::Postgres).await })*
        }
    };
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Everything the service logs during the test run, to check that secrets never appear.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| Arc::new(Mutex::new(Vec::new())))
}

#[derive(Clone)]
struct BufferWriter;

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let filter = tracing_subscriber_filter();
        let _ =
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| BufferWriter).with_ansi(false).try_init();
    });
}

fn tracing_subscriber_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new("debug,hyper=info,hyper_util=info,h2=info,rustls=info,reqwest=info,sqlx=info")
}

pub struct TestApp {
    pub base: String,
    pub config: Config,
    pub db: Db,
    pub importer: std::sync::Arc<orderdesk::import::Importer>,
    pub stock: std::sync::Arc<orderdesk::stock::StockSync>,
    /// The app's outbox drainer, and its Yahoo client (tests build more drainers with it).
    pub pusher: std::sync::Arc<orderdesk::push::Pusher>,
    pub yahoo: std::sync::Arc<orderdesk::yahoo::YahooClient>,
    /// The app's mail sender (tests without background jobs send with it).
    pub mail: std::sync::Arc<orderdesk::mail::MailSender>,
    pub pg_database: Option<String>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
        init_logs();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.data_dir = data_dir.path().to_path_buf();
        // Tests start their own simulator (see `sim::Sim`) and point the app at it.
        config.simulator = orderdesk::config::SimulatorMode::Off;
        config.simulator_listen = "127.0.0.1:0".parse().unwrap();
        let pg_database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let (url, name) = create_postgres_database().await;
                config.database_url = Some(Redacted::new(url));
                // PostgreSQL requires a configured secrets key.
                config.secret_key = Some(Redacted::new(test_secret_key()));
                Some(name)
            }
        };
        adjust(&mut config);
        let app = Application::build(config).await.expect("application starts");
        let addr = app.local_addr();
        let config = (*app.state().config).clone();
        let db = app.state().db.clone();
        let importer = app.state().importer.clone();
        let stock = app.state().stock.clone();
        let pusher = app.state().pusher.clone();
        let yahoo = app.state().yahoo.clone();
        let mail = app.state().mail.clone();
        let task = tokio::spawn(app.run_until(std::future::pending()));
        TestApp {
            base: format!("http://{addr}"),
            config,
            db,
            importer,
            stock,
            pusher,
            yahoo,
            mail,
            pg_database,
            task,
            _data_dir: data_dir,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Signs up a new account in a new browser, signs in as its owner (sign-up answers with the
    /// sign-in page) and returns that browser.
    pub async fn owner(&self, account: &str, email: &str) -> Browser {
        let b = self.browser();
        let page = b
            .submit(
                "/signup",
                "/signup",
                &[
                    ("account_name", account),
                    ("display_name", "店長"),
                    ("email", email),
                    ("password", PASSWORD),
                    ("password_confirm", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "sign-up failed: {}", page.body);
        assert_eq!(page.location(), "/signin?signed_up=1", "sign-up answers with the sign-in page");
        let signed_in = b.sign_in(email, PASSWORD).await;
        assert_eq!(signed_in.location(), "/", "signing in after sign-up failed: {}", signed_in.body);
        b
    }

    /// Adds a store through the form and returns its ID.
    pub async fn add_store(&self, owner: &Browser, name: &str, seller_id: &str, secret: &str) -> i64 {
        let page = owner
            .submit(
                "/stores/new",
                "/stores",
                &[
                    ("name", name),
                    ("seller_id", seller_id),
                    ("environment", "simulator"),
                    ("client_id", "dj00client"),
                    ("client_secret", secret),
                    ("auto_import_interval_minutes", "15"),
                    ("restrict_fraud_hold_changes", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "adding a store failed: {}", page.body);
        page.location().trim_start_matches("/stores/").parse().expect("redirect to the new store")
    }

    /// Adds a user through the owner's form and returns their ID.
    pub async fn add_user(&self, owner: &Browser, email: &str, role: &str) -> i64 {
        let page = owner
            .submit(
                "/users",
                "/users",
                &[
                    ("email", email),
                    ("display_name", "スタッフ"),
                    ("role", role),
                    ("how", "password"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "adding a user failed: {}\n{}", page.body, page.server_log());
        let list = owner.get("/users").await;
        list.select_attr("form[action$='/delete'][data-confirm*='スタッフ']", "action")
            .into_iter()
            .filter_map(|a| a.strip_prefix("/users/").and_then(|r| r.strip_suffix("/delete")).map(str::to_string))
            .filter_map(|id| id.parse().ok())
            .max()
            .expect("the new user is listed")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(name) = self.pg_database.take() {
            // Dropped from a plain thread: Drop cannot await, and the app's pool still holds
            // connections (FORCE ends them).
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async {
                    if let Ok(pool) = sqlx::PgPool::connect(&postgres_admin_url()).await {
                        let _ = sqlx::query(&format!("drop database if exists \"{name}\" with (force)"))
                            .execute(&pool)
                            .await;
                        pool.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// A fresh secrets key, as `ORDERDESK_SECRET_KEY` takes it.
pub fn test_secret_key() -> String {
    use base64::Engine;
    let raw: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(raw)
}

async fn create_postgres_database() -> (String, String) {
    let admin_url = postgres_admin_url();
    let pool = sqlx::PgPool::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for the postgres suite: {e}"));
    let name = format!("orderdesk_test_{}", orderdesk::crypto::random_token().to_lowercase().replace(['-', '_'], ""));
    let name = &name[..40.min(name.len())];
    sqlx::query(&format!("create database \"{name}\"")).execute(&pool).await.expect("create test database");
    pool.close().await;
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(name);
    (url.to_string(), name.to_string())
}

/// One person's browser: a cookie jar, no automatic redirects (tests look at them).
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub jar: Arc<reqwest::cookie::Jar>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Text of every element matching `selector`.
    /// The service's log lines of the request that drew this page (by its `x-request-id`): what
    /// an assertion on an error page prints, so that a 500 on CI says why.
    pub fn server_log(&self) -> String {
        let Some(id) = self.headers.get("x-request-id").and_then(|v| v.to_str().ok()) else { return String::new() };
        let needle = format!("id={id}");
        captured_logs().lines().filter(|l| l.contains(&needle)).collect::<Vec<_>>().join("\n")
    }

    pub fn select_text(&self, selector: &str) -> Vec<String> {
        let sel = Selector::parse(selector).unwrap();
        self.html().select(&sel).map(|e| e.text().collect::<String>().trim().to_string()).collect()
    }

    pub fn select_attr(&self, selector: &str, attr: &str) -> Vec<String> {
        let sel = Selector::parse(selector).unwrap();
        self.html().select(&sel).filter_map(|e| e.value().attr(attr).map(str::to_string)).collect()
    }

    pub fn csrf_token(&self) -> Option<String> {
        self.select_attr("input[name=csrf_token]", "value").into_iter().next()
    }

    /// The message shown next to a form field.
    pub fn field_error(&self, field: &str) -> Option<String> {
        let sel = Selector::parse(&format!("[name={field}] ~ .field-error, [name={field}] + .field-error")).unwrap();
        self.html().select(&sel).next().map(|e| e.text().collect::<String>().trim().to_string())
    }
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { base: base.to_string(), client, jar }
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base)).send().await.expect("GET");
        Page::from(r).await
    }

    /// Posts a form as-is (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], extra_headers: &[(&str, &str)]) -> Page {
        let mut req = self.client.post(format!("{}{path}", self.base)).form(fields);
        for (k, v) in extra_headers {
            req = req.header(*k, *v);
        }
        Page::from(req.send().await.expect("POST")).await
    }

    /// Opens `from`, takes its CSRF token, and submits `fields` to `action`, as a person would.
    pub async fn submit(&self, from: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let page = self.get(from).await;
        let token = page.csrf_token().unwrap_or_else(|| panic!("no form on {from} ({}): {}", page.status, page.body));
        let mut all = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all, &[]).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.submit("/signin", "/signin", &[("email", email), ("password", password)]).await
    }

    pub async fn sign_out(&self) -> Page {
        self.submit("/", "/signout", &[]).await
    }

    /// The session cookie's value, if any.
    pub fn session_cookie(&self) -> Option<String> {
        let url = self.base.parse().unwrap();
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|c| c.strip_prefix("orderdesk=").map(str::to_string))
    }
}

impl Page {
    async fn from(r: reqwest::Response) -> Page {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        Page { status, headers, body }
    }
}
