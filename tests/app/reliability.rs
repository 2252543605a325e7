//! Issue 27: what an outside reliability run found. Each test failed before its fix.

use std::{sync::Arc, time::Duration};

use serde_json::json;

use crate::{
    helpers::Backend,
    import::{Shop, shop},
    on_both_backends,
};

async fn cursor_of(s: &Shop) -> Option<chrono::DateTime<chrono::Utc>> {
    orderdesk::db::imports::state(&s.app.db, s.account, s.store).await.unwrap().cursor_at
}

async fn counter(s: &Shop, key: &str) -> u64 {
    s.sim.get_json("/_sim/counters").await[key].as_u64().unwrap_or(0)
}

/// (A refusal that is not retried: each of the first three orderInfo calls fails once.)
/// Orders that failed in the PublicationTime pass and were fetched in the LastUpdateTime pass
/// of the same run: every order is stored, so the run is complete (完了) and moves the cursor.
/// Orders still missing at the end are the run's failures, listed on its page with the reason,
/// and the next run fetches exactly those by ID.
async fn a_run_is_complete_when_every_order_it_found_is_stored(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    // No held orders: their re-checks would be orderInfo calls of their own.
    s.sim
        .control(
            &format!("/_sim/sellers/{}/orders/generate", crate::import::SELLER),
            json!({ "count": 20, "seed": 7, "fraud_share": 0.0, "spread_hours": 72 }),
        )
        .await;
    // Past the window's end (two seconds before Yahoo's now), so both passes list them.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    s.sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "error_detail", "times": 3 })).await;
    let page = s.manual_import().await;
    assert_eq!(page.select_text("#run-status").join(""), "完了", "{}", page.body);
    assert_eq!(s.ours().await.len(), 20);
    assert!(cursor_of(&s).await.is_some(), "the cursor moved");
    assert!(page.select_text("#run-failures").is_empty());

    // Every orderInfo fails in both passes: the run lists them and says so, and the cursor
    // moves with the list kept for the next run.
    for _ in 0..3 {
        s.sim.plain_order(crate::import::SELLER).await;
    }
    // Past the window's end (two seconds before Yahoo's now), so both passes list them.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let before = cursor_of(&s).await;
    s.sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "error_detail" })).await;
    let page = s.manual_import().await;
    assert_eq!(page.select_text("#run-status").join(""), "失敗", "{}", page.body);
    let message = page.select_text("#run-message").join("");
    assert!(message.contains("3件の注文を取得できませんでした") && message.contains("この注文だけ"), "{message}");
    let failed = page.select_text("#run-failures tbody td.id");
    assert_eq!(failed.len(), 3, "{}", page.body);
    let reasons = page.select_text("#run-failures tbody td:nth-child(2)");
    assert!(reasons.iter().all(|r| r.contains("sim-e01")), "each with Yahoo's reason: {reasons:?}");
    assert!(cursor_of(&s).await > before, "the cursor passed them, with the list");

    // The next run fetches exactly those (no other orderInfo) and is complete.
    let r = s.sim.http.delete(s.sim.url("/_sim/faults")).send().await.unwrap();
    assert!(r.status().is_success());
    let calls_before = counter(&s, "calls.orderInfo").await;
    let page = s.manual_import().await;
    assert_eq!(page.select_text("#run-status").join(""), "完了", "{}", page.body);
    assert_eq!(counter(&s, "calls.orderInfo").await - calls_before, 3, "exactly the failed orders were fetched");
    assert_eq!(s.ours().await.len(), 23);
    let again = s.manual_import().await;
    assert_eq!(again.select_text("#run-status").join(""), "完了");
    assert_eq!(counter(&s, "calls.orderInfo").await - calls_before, 3, "nothing is left to retry");
}

/// 「手動取込」 during an emergency stop imported at once without a word: it now asks first (a
/// box to tick, checked on the server), and the run says 手動（緊急停止中）.
async fn a_manual_import_during_a_stop_asks_first(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    let path = format!("/stores/{}", s.store);
    let stop = format!("{path}/emergency-stop");
    assert_eq!(s.owner.submit(&stop, &stop, &[("reason", "棚卸し")]).await.status, reqwest::StatusCode::SEE_OTHER);
    let page = s.owner.get(&path).await;
    assert!(page.select_text("#import-while-stopped").join("").contains("緊急停止中です"), "{}", page.body);

    let refused = s.owner.submit(&path, &format!("{path}/import"), &[]).await;
    assert_eq!(refused.location(), path);
    let page = s.owner.get(&path).await;
    assert!(page.select_text(".flash").join("").contains("緊急停止中です。手動で取り込む場合は"), "{}", page.body);
    let runs = orderdesk::db::imports::list_runs(&s.app.db, s.account, None, 10).await.unwrap();
    assert!(runs.is_empty(), "nothing was queued: {runs:?}");
    let all = s.owner.submit("/imports", "/imports", &[]).await;
    assert_eq!(all.location(), "/imports");
    assert!(orderdesk::db::imports::list_runs(&s.app.db, s.account, None, 10).await.unwrap().is_empty());

    let started = s.owner.submit(&path, &format!("{path}/import"), &[("while_stopped", "on")]).await;
    let run = started.location().to_owned();
    assert!(run.starts_with("/imports/"), "{}", started.body);
    let page = s.wait_run(&run).await;
    assert_eq!(page.select_text("#run-status").join(""), "完了", "a manual import runs through a stop: {}", page.body);
    assert!(page.body.contains("手動（緊急停止中）"), "{}", page.body);
    assert!(s.owner.get("/audit").await.body.contains("本店（緊急停止中）"));
}

/// A data folder on a tmpfs of its own, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(megabytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root (CI runs as root)");
        Tmpfs(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }

    /// Fills the disk, but for `left` bytes, with a file of its own.
    fn fill(&self, left: u64) {
        let stat = rustix::fs::statvfs(self.path()).unwrap();
        let free = stat.f_bavail * stat.f_frsize;
        let filler = vec![0u8; free.saturating_sub(left) as usize];
        // Written in one go; the last bytes may not fit, which is the point.
        let _ = std::fs::write(self.path().join("filler"), filler);
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

async fn health(s: &Shop) -> (u16, String) {
    let r = s.owner.client.get(format!("{}/healthz", s.app.base)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits up to 40 s for /healthz to answer `want`.
async fn waits_for_health(s: &Shop, want: u16) -> String {
    let start = std::time::Instant::now();
    let mut last = (0, String::new());
    while start.elapsed() < Duration::from_secs(40) {
        last = health(s).await;
        if last.0 == want {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/healthz did not answer {want} within 40 s: {last:?}");
}

/// SQLite on a full disk (issue 27): writes fail wherever the disk fills (a statement, a
/// commit, a checkpoint: each round leaves a different amount of room), /healthz says so,
/// and once there is room again the same process finishes the import, with nothing lost, and
/// people sign in. Before the fix a failed write could leave a pool connection holding the
/// write lock: every later write answered `database is locked` until a restart.
async fn sqlite_heals_after_a_full_disk() {
    let disk = Tmpfs::mount(24);
    let folder = disk.path().to_path_buf();
    let s = shop(Backend::Sqlite, move |c| {
        c.data_dir = folder;
        c.scheduler = false;
    })
    .await;
    let mut expected = 0;
    for (round, left) in [150_000u64, 600_000, 900_000, 40_000].into_iter().enumerate() {
        s.sim
            .control(
                &format!("/_sim/sellers/{}/orders/generate", crate::import::SELLER),
                json!({ "count": 1500, "seed": 100 + round, "fraud_share": 0.0, "spread_hours": 24 }),
            )
            .await;
        expected += 1500;
        // (The generator back-dates its orders: each round reads the whole lookback again.)
        orderdesk::with_pool!(&s.app.db, |p| sqlx::query("update store_import set cursor_at = null")
            .execute(p)
            .await
            .map(|_| ()))
        .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        disk.fill(left);
        let ending = s.run_once(orderdesk::db::imports::Trigger::Manual).await;
        let reason = waits_for_health(&s, 503).await;
        assert!(reason.contains("data folder nearly full") || reason.contains("write"), "{reason}");
        disk.free();
        waits_for_health(&s, 200).await;
        // The same process: the next run completes what the full disk cut off.
        if ending != orderdesk::import::Ending::Done {
            assert_eq!(
                s.run_once(orderdesk::db::imports::Trigger::Manual).await,
                orderdesk::import::Ending::Done,
                "round {round}"
            );
        }
        assert_eq!(s.ours().await.len(), expected, "round {round}: nothing lost");
        let someone = s.app.browser();
        assert_eq!(
            someone.sign_in("owner@example.jp", crate::helpers::PASSWORD).await.location(),
            "/",
            "round {round}"
        );
    }
    let integrity: String =
        orderdesk::with_pool!(&s.app.db, |p| { sqlx::query_scalar("pragma integrity_check").fetch_one(p).await })
            .unwrap();
    assert_eq!(integrity, "ok");
}

/// Makes the database files and their folder immutable (`chattr +i`: even root cannot write),
/// or writable again.
fn immutable(folder: &std::path::Path, on: bool) {
    let flag = if on { "+i" } else { "-i" };
    let mut paths: Vec<std::path::PathBuf> =
        ["orderdesk.db", "orderdesk.db-wal"].iter().map(|f| folder.join(f)).collect();
    paths.push(folder.to_path_buf());
    for path in paths.iter().filter(|p| p.exists()) {
        let status = std::process::Command::new("chattr").arg(flag).arg(path).status().expect("chattr runs");
        assert!(status.success(), "chattr {flag} {}", path.display());
    }
}

/// The data folder made read-only under a running SQLite server: /healthz 503 with the reason,
/// a page that must write answers the error page (nothing half-done), and once writable again
/// the same process writes: the import completes and people sign in.
async fn sqlite_heals_after_a_read_only_folder() {
    let s = shop(Backend::Sqlite, |c| c.scheduler = false).await;
    let folder = s.app.config.data_dir.clone();
    struct Writable(std::path::PathBuf);
    impl Drop for Writable {
        fn drop(&mut self) {
            immutable(&self.0, false);
        }
    }
    let _guard = Writable(folder.clone());
    s.sim.plain_order(crate::import::SELLER).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(health(&s).await.0, 200);
    immutable(&folder, true);
    let reason = waits_for_health(&s, 503).await;
    assert!(reason.contains("cannot take a write"), "{reason}");
    // A page of a signed-in person writes its session: the Japanese error page, not a blank.
    let page = s.owner.get(&format!("/stores/{}", s.store)).await;
    assert_eq!(page.status, reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    assert!(page.body.contains("エラーが発生しました"), "{}", page.body);
    let someone = s.app.browser();
    let refused = someone.sign_in("owner@example.jp", crate::helpers::PASSWORD).await;
    assert_eq!(refused.status, reqwest::StatusCode::INTERNAL_SERVER_ERROR, "{}", refused.body);
    assert!(refused.body.contains("エラーが発生しました"));
    // The pool opens every connection it may hold while the folder is read-only (SQLite would
    // open them read-only, for good).
    let orderdesk::db::Db::Sqlite(pool) = &s.app.db else { unreachable!() };
    let mut held = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(conn)) = tokio::time::timeout(Duration::from_secs(2), pool.acquire()).await {
            held.push(conn);
        }
    }
    drop(held);
    immutable(&folder, false);
    waits_for_health(&s, 200).await;
    // Every connection of the pool writes again.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(pool.acquire().await.expect("a connection"));
    }
    for conn in &mut held {
        sqlx::query("update store set name = name where id = $1")
            .bind(s.store)
            .execute(&mut **conn)
            .await
            .expect("every pooled connection writes once the folder is writable");
    }
    drop(held);
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    assert_eq!(s.ours().await.len(), 1);
    assert_eq!(someone.sign_in("owner@example.jp", crate::helpers::PASSWORD).await.location(), "/");
}

/// A TCP hop between the app and PostgreSQL that the test can cut: an outage of the database as
/// the app sees it (connections reset, new ones refused), without stopping the shared server.
struct DbLink {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    pipes: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl DbLink {
    async fn start() -> DbLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let pipes: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, pipes2) = (up.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped at once: the connection is reset
                }
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                pipes2.lock().unwrap().push(pipe.abort_handle());
            }
        });
        DbLink { port, up, pipes }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for pipe in self.pipes.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A run cut off by a database outage while its process lived on said 「処理していたサーバーが
/// 停止したため中断しました」 (the sweep's words for a dead process): it now says the database
/// could not be reached, written once the database is back.
async fn a_run_cut_off_by_a_database_outage_says_so() {
    let link = DbLink::start().await;
    let port = link.port;
    let s = shop(Backend::Postgres, move |c| {
        c.scheduler = false;
        let url = c.database_url.as_ref().unwrap().expose().to_owned();
        let mut url = url::Url::parse(&url).unwrap();
        url.set_port(Some(port)).unwrap();
        c.database_url = Some(orderdesk::config::Redacted::new(url.to_string()));
    })
    .await;
    s.sim
        .control(
            &format!("/_sim/sellers/{}/orders/generate", crate::import::SELLER),
            json!({ "count": 1500, "seed": 9, "fraud_share": 0.0, "spread_hours": 24 }),
        )
        .await;
    s.sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "delay", "share": 1.0, "delay_ms": 60 })).await;
    let importer = s.app.importer.clone();
    let (account, store) = (s.account, s.store);
    let task = tokio::spawn(async move {
        crate::import::run_with(&importer, account, store, orderdesk::db::imports::Trigger::Manual).await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    link.cut();
    let ending = tokio::time::timeout(Duration::from_secs(90), task).await.expect("the run ends").unwrap();
    assert_ne!(ending, orderdesk::import::Ending::Done);
    link.restore();
    let mut last = None;
    for _ in 0..150 {
        let run = orderdesk::db::imports::list_runs(&s.app.db, s.account, None, 5).await.ok().and_then(|mut r| r.pop());
        if let Some(run) = run.filter(|r| r.status != "running") {
            last = Some(run);
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = last.expect("the run's end was recorded once the database was back");
    assert_eq!(run.status, "failed");
    assert_eq!(run.message.as_deref(), Some(orderdesk::import::DB_UNREACHABLE));
}

/// A run whose process died showed 実行中 until the sweep (twice the lease): once its heartbeat
/// is older than the lease it shows 応答なし（中断）.
async fn a_run_whose_process_died_shows_unresponsive(backend: Backend) {
    let s = shop(backend, |c| {
        c.scheduler = false;
        c.import_lease_secs = 30;
    })
    .await;
    let t = orderdesk::db::now();
    let run = orderdesk::db::imports::create_run(
        &s.app.db,
        s.account,
        s.store,
        orderdesk::db::imports::Trigger::Manual,
        "running",
        (None, None),
        "dead-host:1:x",
        t - chrono::Duration::seconds(45),
    )
    .await
    .unwrap();
    let page = s.owner.get(&format!("/imports/{}", run.0)).await;
    assert_eq!(page.select_text("#run-status").join(""), "応答なし（中断）", "{}", page.body);
    assert!(page.select_text("#run-message").join("").contains("応答がありません"));
    assert!(s.owner.get("/imports").await.body.contains("応答なし（中断）"));
    // One beating within the lease is running.
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update import_run set heartbeat_at = $1 where id = $2")
            .bind(t)
            .bind(run)
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(s.owner.get(&format!("/imports/{}", run.0)).await.select_text("#run-status").join(""), "実行中");
}

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_cut_off_by_a_database_outage_says_so() {
        super::a_run_cut_off_by_a_database_outage_says_so().await;
    }
}

mod sqlite_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_heals_after_a_full_disk() {
        super::sqlite_heals_after_a_full_disk().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_heals_after_a_read_only_folder() {
        super::sqlite_heals_after_a_read_only_folder().await;
    }
}

on_both_backends!(
    a_run_is_complete_when_every_order_it_found_is_stored,
    a_manual_import_during_a_stop_asks_first,
    a_run_whose_process_died_shows_unresponsive
);
