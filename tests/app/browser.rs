//! The browser suite: every page in real Chromium (headless, driven through chromedriver's
//! WebDriver API), signed out, as owner, as staff and as support, at 360 px and at 1280 px.
//! Each page must fit its viewport (no horizontal page scrolling), an error status must come
//! with the app's frame, and axe-core (vendored under `tests/browser/axe-core/`) must report no
//! serious or critical violation. A screenshot of each page at each width is written to
//! `target/screenshots/` (CI keeps that folder).
//!
//! Runs on SQLite only: pages look the same on both databases. Skips, saying so, when Chromium or
//! chromedriver is not installed; `.ci/run` installs both, so CI always runs it.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::Engine;
use orderdesk::web::routes;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD};

const WIDTHS: [u32; 2] = [360, 1280];

fn find_exe(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// A chromedriver process on a free local port.
struct Driver {
    child: Child,
    base: String,
    chrome: PathBuf,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Option<Driver> {
        let chrome = find_exe(&["chromium", "chromium-browser", "google-chrome"])?;
        let driver = find_exe(&["chromedriver"])?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let d = Driver { child, base: format!("http://127.0.0.1:{port}"), chrome, http };
        for _ in 0..100 {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return Some(d);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not become ready");
    }

    /// A fresh browser with its own profile (no cookies from another role).
    async fn session(&self) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--lang=ja-JP",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chrome, "args": args },
        }}});
        let r: Value =
            self.http.post(format!("{}/session", self.base)).json(&caps).send().await.unwrap().json().await.unwrap();
        let id = r["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no browser session: {r}")).to_string();
        let s = Session { http: self.http.clone(), url: format!("{}/session/{id}", self.base), _profile: profile };
        s.cmd("POST", "/timeouts", json!({ "script": 60_000, "pageLoad": 30_000 })).await;
        s
    }
}

struct Session {
    http: reqwest::Client,
    url: String,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let r: Value = req.send().await.unwrap().json().await.unwrap();
        if r["value"].get("error").is_some() {
            panic!("WebDriver {method} {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.cmd("POST", "/goog/cdp/execute", json!({ "cmd": cmd, "params": params })).await
    }

    /// A phone-like (or desktop) viewport of `width` CSS pixels that honours the viewport meta.
    async fn viewport(&self, width: u32) {
        let mobile = width < 800;
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": if mobile { 780 } else { 900 }, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
    }

    async fn open(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    async fn exec(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": [] })).await
    }

    async fn exec_async(&self, script: &str) -> Value {
        self.cmd("POST", "/execute/async", json!({ "script": script, "args": [] })).await
    }

    async fn path(&self) -> String {
        self.exec("return location.pathname + location.search;").await.as_str().unwrap_or("").to_string()
    }

    async fn screenshot(&self, file: &PathBuf) {
        let shot = self.cdp("Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().unwrap()).unwrap();
        std::fs::write(file, png).unwrap();
    }

    /// Signs in through the real form, as a person would.
    async fn sign_in(&self, base: &str, email: &str) {
        self.open(&format!("{base}/signin")).await;
        let script = format!(
            "document.querySelector('[name=email]').value = {email:?}; \
             document.querySelector('[name=password]').value = {PASSWORD:?}; \
             document.querySelector('main form').submit();"
        );
        self.exec(&script).await;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !self.path().await.starts_with("/signin") && self.exec("return document.readyState;").await == "complete"
            {
                return;
            }
        }
        let page = self.exec("return document.body ? document.body.innerText : '';").await;
        panic!("{email} could not sign in in Chromium at {}: {page}", self.path().await);
    }

    async fn quit(self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}

/// What one page showed.
const INSPECT: &str = r#"
const nav = performance.getEntriesByType('navigation')[0];
const doc = document.documentElement;
return {
  status: nav ? nav.responseStatus : 0,
  frame: !!document.querySelector('header.site-header .brand') && !!document.querySelector('main h1'),
  scrollWidth: doc.scrollWidth,
  clientWidth: doc.clientWidth,
  wide: [...document.querySelectorAll('body *')]
    .filter(e => e.getBoundingClientRect().right > doc.clientWidth + 1 && !e.closest('.table-scroll'))
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.className ? '.' + String(e.className).split(' ').join('.') : '')),
};
"#;

const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(r.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)))
  .catch(e => done([`axe failed: ${e}`]));
"#;

fn slug(path: &str) -> String {
    let s: String = path.trim_matches('/').chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if s.is_empty() { "home".to_string() } else { s }
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_fits_has_its_frame_and_passes_axe_in_chromium() {
    let Some(driver) = Driver::start().await else {
        eprintln!(
            "SKIPPED every_page_fits_has_its_frame_and_passes_axe_in_chromium: chromium and chromedriver are not \
             installed (apt-get install -y chromium chromium-driver fonts-noto-cjk; .ci/run does this)"
        );
        return;
    };
    let axe = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/axe-core/axe.min.js"))
        .expect("vendored axe-core");

    // One account with everything a page can show: a connected store, imported orders, a run,
    // a staff user; and a support login.
    let s = crate::import::shop(Backend::Sqlite, |_| {}).await;
    s.generate(3, 7).await;
    s.manual_import().await;
    s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    orderdesk::cli::admin::create(&s.app.config, "support@orderdesk.example", "佐藤", Some(PASSWORD.to_string()))
        .await
        .unwrap();
    let first_link = |page: crate::helpers::Page, prefix: &str| {
        page.select_attr("main a", "href")
            .into_iter()
            .filter_map(|h| h.strip_prefix(prefix).map(str::to_string))
            .find(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
            .unwrap_or_else(|| panic!("no {prefix}… link"))
    };
    let order_id = first_link(s.owner.get("/orders").await, "/orders/");
    let run_id = first_link(s.owner.get("/imports").await, "/imports/");
    let store_id = s.store.to_string();

    let mut pages: Vec<String> = routes()
        .list()
        .iter()
        .filter(|r| r.method == reqwest::Method::GET)
        .filter(|r| !["/healthz", "/metrics", "/static/{file}"].contains(&r.path))
        .map(|r| r.path.replace("{store_id}", &store_id).replace("{order_id}", &order_id).replace("{run_id}", &run_id))
        .collect();
    pages.extend(["/no/such/page", "/stores/abc", "/signout"].map(String::from));

    let shots = screenshots_dir();
    let mut failures = Vec::new();
    let roles = [
        ("signed-out", None),
        ("owner", Some("owner@example.jp")),
        ("staff", Some("staff@example.jp")),
        ("support", Some("support@orderdesk.example")),
    ];
    for (role, email) in roles {
        let browser = driver.session().await;
        if let Some(email) = email {
            browser.sign_in(&s.app.base, email).await;
        }
        for width in WIDTHS {
            browser.viewport(width).await;
            let mut seen = BTreeSet::new();
            for path in &pages {
                browser.open(&format!("{}{path}", s.app.base)).await;
                let landed = browser.path().await;
                let what = format!(
                    "{role} {width}px {path}{}",
                    if &landed != path { format!(" → {landed}") } else { String::new() }
                );
                let v = browser.exec(INSPECT).await;
                let status = v["status"].as_u64().unwrap_or(0);
                if !v["frame"].as_bool().unwrap_or(false) {
                    failures.push(format!("{what}: status {status} without the app's frame"));
                }
                // A redirect to a page already checked at this width (signed out, every page
                // leads to the ログイン page, each with its own `next`).
                let page_path = landed.split('?').next().unwrap_or_default().to_string();
                if !seen.insert(page_path.clone()) {
                    continue;
                }
                let (scroll, client) = (v["scrollWidth"].as_u64().unwrap_or(0), v["clientWidth"].as_u64().unwrap_or(0));
                if scroll > client {
                    failures
                        .push(format!("{what}: page scrolls sideways ({scroll} > {client} px; wide: {})", v["wide"]));
                }
                browser.exec(&format!("{axe}\nreturn true;")).await;
                for violation in browser.exec_async(AXE_RUN).await.as_array().cloned().unwrap_or_default() {
                    failures.push(format!("{what}: {}", violation.as_str().unwrap_or("?")));
                }
                browser.screenshot(&shots.join(format!("{role}-{width}-{}.png", slug(&page_path)))).await;
            }
        }
        browser.quit().await;
    }
    assert!(failures.is_empty(), "{} problems in Chromium:\n{}", failures.len(), failures.join("\n"));
}

impl Session {
    /// Waits until `script` (an expression) is truthy on the current page.
    async fn wait_for(&self, what: &str, script: &str) {
        for _ in 0..300 {
            if self.exec(&format!("return !!({script});")).await == true {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = self.exec("return document.body ? document.body.innerText : '';").await;
        panic!("waited in vain for {what} at {}: {body}", self.path().await);
    }

    /// Sets form fields by name (`[name, value]` pairs) and submits the form that holds `submit`.
    async fn fill_and_submit(&self, fields: &[(&str, &str)], submit: &str) {
        let mut script = String::new();
        for (name, value) in fields {
            script.push_str(&format!(
                "(() => {{ const e = document.querySelector('main [name={name}]'); \
                  if (!e) throw new Error('no field {name}'); \
                  if (e.type === 'checkbox') e.checked = {value:?} === 'on'; else e.value = {value:?}; }})();"
            ));
        }
        script.push_str(&format!("document.querySelector({submit:?}).click();"));
        self.exec(&script).await;
        self.wait_for("the next page", "document.readyState === 'complete'").await;
    }

    async fn text(&self) -> String {
        self.exec("return document.body.innerText;").await.as_str().unwrap_or_default().to_owned()
    }
}

/// The journey of issue 10 in real Chromium, as a new merchant would make it: sign up, add a
/// store on the simulator, connect through its consent page, paste the key copied from the
/// simulator's key page, import, see the held order's badge, try to ship it from the list and
/// from its page and be refused, cancel it, and see the cancel in its history. Screenshots of
/// each step go to `target/screenshots/journey-*.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_merchant_cannot_ship_a_held_order_in_chromium() {
    let Some(driver) = Driver::start().await else {
        eprintln!(
            "SKIPPED a_new_merchant_cannot_ship_a_held_order_in_chromium: chromium and chromedriver are not installed"
        );
        return;
    };
    let sim = crate::sim::Sim::start().await;
    let sim_url = sim.base.clone();
    let app = crate::helpers::TestApp::spawn_with(Backend::Sqlite, move |c| {
        c.simulator_url = Some(sim_url);
        c.yahoo_min_interval_ms = 0;
        c.scheduler_tick_ms = 100;
    })
    .await;
    sim.control(
        "/_sim/apps",
        json!({ "client_id": crate::sim::CLIENT_ID, "client_secret": crate::sim::CLIENT_SECRET,
                "redirect_uris": [app.config.redirect_uri()] }),
    )
    .await;
    let seller = "journey-store";
    let days_ago = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let held = sim
        .order(seller, json!({ "order_time": days_ago, "items": [{ "item_id": "flower", "title": "注文保留_テスト", "category_id": 4101 }] }))
        .await["order_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.plain_order(seller).await;
    let version = sim.key(seller, 1).await.to_string();

    let shots = screenshots_dir();
    let b = driver.session().await;
    b.viewport(1280).await;
    let base = app.base.clone();
    let shot = |name: &str| shots.join(format!("journey-{name}.png"));

    // Sign up.
    b.open(&format!("{base}/signup")).await;
    b.fill_and_submit(
        &[
            ("account_name", "花屋さくら"),
            ("display_name", "山田花子"),
            ("email", "hanako@example.jp"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
        "main form button[type=submit]",
    )
    .await;
    assert!(!b.path().await.starts_with("/signup"), "signed up: {}", b.text().await);
    b.sign_in(&base, "hanako@example.jp").await;

    // Add a store on the simulator.
    b.open(&format!("{base}/stores/new")).await;
    b.fill_and_submit(
        &[
            ("name", "さくら本店"),
            ("seller_id", seller),
            ("environment", "simulator"),
            ("client_id", crate::sim::CLIENT_ID),
            ("client_secret", crate::sim::CLIENT_SECRET),
        ],
        "main form button[type=submit]",
    )
    .await;
    let store_path = b.path().await;
    assert!(store_path.starts_with("/stores/"), "the store page: {store_path} {}", b.text().await);
    b.screenshot(&shot("1-store-added")).await;

    // Connect through the simulator's consent page.
    b.exec("document.querySelector(\"form[action$='/connect'] button\").click();").await;
    b.wait_for("the consent page", "document.querySelector(\"button[value=allow]\")").await;
    b.screenshot(&shot("2-consent")).await;
    b.exec(&format!(
        "document.querySelector('[name=new_seller_id]').value = {seller:?}; document.querySelector('button[value=allow]').click();"
    ))
    .await;
    b.wait_for(
        "back on the store page",
        &format!("location.pathname === {store_path:?} && document.readyState === 'complete'"),
    )
    .await;

    // Copy the public key from the simulator's page and paste it into the key form.
    b.open(sim.base.as_ref()).await;
    let key = b
        .exec(&format!("return document.getElementById('key-{seller}-{version}').value;"))
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(key.contains("BEGIN PUBLIC KEY"));
    b.open(&format!("{base}{store_path}/public-key")).await;
    b.fill_and_submit(&[("public_key", &key), ("public_key_version", &version)], "main form button[type=submit]").await;
    b.wait_for("the store page", &format!("location.pathname === {store_path:?}")).await;
    b.screenshot(&shot("3-connected")).await;

    // Import (the store page's 手動取込) and wait for the run to end.
    b.exec("document.querySelector(\"form[action$='/import'] button\").click();").await;
    b.wait_for("the run page", "location.pathname.startsWith('/imports/')").await;
    for _ in 0..300 {
        b.open(&format!("{base}{}", b.path().await)).await;
        let status = b.exec("const e = document.getElementById('run-status'); return e ? e.innerText : '';").await;
        if status != "待機中" && status != "実行中" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.screenshot(&shot("4-import-run")).await;

    // The list shows the held order with its badge.
    b.open(&format!("{base}/orders")).await;
    b.screenshot(&shot("5-orders")).await;
    let row =
        format!("[...document.querySelectorAll('table.orders tbody tr')].find(r => r.innerText.includes({held:?}))");
    b.wait_for("the held order in the list", &format!("{row} && {row}.innerText.includes('審査中')")).await;

    // Try to ship it from the list: the second step asks for the tracking number, then refuses.
    b.exec(&format!("{row}.querySelector('input[name=order]').checked = true; document.getElementById('target').value = 'shipped'; document.querySelector('button[form=bulk].primary').click();")).await;
    b.wait_for("the ship step", "document.getElementById('ship-step')").await;
    b.fill_and_submit(&[("ship_company", "1001")], "#ship-step button[type=submit]").await;
    b.wait_for("the bulk result", "document.getElementById('bulk-results')").await;
    b.screenshot(&shot("6-bulk-refused")).await;
    let refused = b.exec("return document.querySelector('#bulk-results tr.result-refused').innerText;").await;
    assert!(
        refused.as_str().unwrap().contains("不正利用審査中の注文は「キャンセル」へのステータス変更のみ行えます"),
        "{refused}"
    );

    // Its page offers only キャンセル; a forged 出荷済み is refused by the server.
    let link = b.exec(&format!("return [...document.querySelectorAll('#bulk-results a')].find(a => a.innerText === {held:?}).getAttribute('href');")).await;
    let order_path = link.as_str().unwrap().to_owned();
    b.open(&format!("{base}{order_path}")).await;
    let offered =
        b.exec("return [...document.querySelectorAll('#target option')].map(o => o.value).filter(v => v);").await;
    assert_eq!(offered, json!(["cancelled"]));
    b.exec("const s = document.getElementById('target'); const o = document.createElement('option'); o.value = 'shipped'; s.appendChild(o); s.value = 'shipped'; s.form.submit();").await;
    b.wait_for(
        "the refusal",
        "document.body.innerText.includes('不正利用審査中の注文は「キャンセル」へのステータス変更のみ行えます')",
    )
    .await;
    b.screenshot(&shot("7-detail-refused")).await;
    assert!(b.text().await.contains("新規受付"));

    // Cancel it with a reason; the change and the push to Yahoo show in its history.
    b.fill_and_submit(&[("target", "cancelled"), ("cancel_reason", "170")], "#status-change button[type=submit]").await;
    b.wait_for("the cancel", "document.getElementById('internal-status').innerText === 'キャンセル'").await;
    for _ in 0..100 {
        let history = b.exec("return document.querySelector('ol.history').innerText;").await;
        if history.as_str().unwrap_or("").contains("Yahoo!に送信しました") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        b.open(&format!("{base}{order_path}")).await;
    }
    b.screenshot(&shot("8-cancelled")).await;
    let history = b.exec("return document.querySelector('ol.history').innerText;").await;
    assert!(history.as_str().unwrap().contains("「キャンセル」に変更しました"), "{history}");
    assert!(history.as_str().unwrap().contains("Yahoo!に送信しました"), "the push is in the history: {history}");
    let pushes = b.exec("return document.getElementById('pushes').innerText;").await;
    assert!(pushes.as_str().unwrap().contains("完了"), "{pushes}");
    b.quit().await;
}
