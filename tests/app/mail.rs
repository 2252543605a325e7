//! Mail (issue 29): the embedded outbox, a real SMTP server (Debian's python3-aiosmtpd, its
//! Maildir handler) receiving what the service sends, and the notifications of a held order
//! released or confirmed at Yahoo. Messages are read back as a mail client would: headers
//! unfolded and their encoded words decoded, the body transfer-decoded.

use std::{path::PathBuf, process::Stdio, time::Duration};

use base64::Engine;
use orderdesk::{
    db::mail::{MailRow, NewMail},
    domain::mail::MailKind,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::Backend,
    import::{SELLER, ServeProcess, Shop, make_due, shop, wait_for},
};

/// A local SMTP server: aiosmtpd with its Maildir handler, killed when dropped.
pub(crate) struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    pub(crate) async fn start() -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("maildir");
        // Debian's python3 has the module (python3-aiosmtpd); a python3 earlier on PATH may not.
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| {
                std::process::Command::new(p)
                    .args(["-c", "import aiosmtpd"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect("python3 with aiosmtpd (Debian python3-aiosmtpd; .ci/run installs it)");
        let mut child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return SmtpSink { port, dir, child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not start on port {port}");
    }

    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, parsed.
    pub(crate) fn received(&self) -> Vec<Received> {
        let new = self.dir.path().join("maildir").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map_or_else(|_| Vec::new(), |d| d.filter_map(Result::ok).map(|e| e.path()).collect());
        files.sort();
        files.iter().map(|f| Received::parse(&std::fs::read(f).unwrap())).collect()
    }

    /// Waits (up to 20 s) for `n` messages.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {:#?}", self.received());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as a mail client shows it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub(crate) fn parse(raw: &[u8]) -> Received {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push_str(line);
                }
            } else if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        for h in &mut headers {
            h.1 = decode_words(&h.1);
        }
        let encoding = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let body = match encoding.as_str() {
            "base64" => {
                let joined: String = body.split_whitespace().collect();
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(joined).unwrap()).unwrap()
            }
            "quoted-printable" => quoted_printable(body),
            _ => body.to_owned(),
        };
        Received { headers, body }
    }

    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.as_str())
    }
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=` and `=?utf-8?q?…?=`) decoded; the whitespace
/// between two encoded words dropped, as clients do.
fn decode_words(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        if !(last_was_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let word = &rest[start + 2..];
        let parts: Vec<&str> = word.splitn(3, '?').collect();
        let Some(end) = parts.get(2).and_then(|p| p.find("?=")) else {
            out.push_str(&rest[start..]);
            return out;
        };
        let payload = &parts[2][..end];
        let bytes = if parts[1].eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD.decode(payload).unwrap()
        } else {
            quoted_printable(&payload.replace('_', " ")).into_bytes()
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &parts[2][end + 2..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

fn quoted_printable(s: &str) -> String {
    let raw = s.replace("=\n", "");
    let b = raw.as_bytes();
    let mut bytes = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'=' && i + 2 < b.len())
            .then(|| std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        if let Some(v) = hex {
            bytes.push(v);
            i += 3;
            continue;
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn mails(s: &Shop) -> Vec<MailRow> {
    orderdesk::db::mail::list(&s.app.db, s.account, 100).await.unwrap()
}

/// Waits (up to 20 s) until the account's mail satisfies `done`.
async fn wait_for_mail(s: &Shop, done: impl Fn(&[MailRow]) -> bool) -> Vec<MailRow> {
    for _ in 0..200 {
        let m = mails(s).await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the mail did not come: {:#?}", mails(s).await);
}

/// Two held orders (the sandbox's test items), then Yahoo's review releases one and confirms
/// the other: the import that sees it queues one notification of each kind to the owner.
async fn held_orders_released_and_confirmed(s: &Shop) -> (String, String) {
    let days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let held = |category: u32| json!({ "order_time": days_ago, "items": [{ "item_id": "flower", "title": "注文保留_テスト", "category_id": category }] });
    let release = s.sim.order(SELLER, held(4101)).await["order_id"].as_str().unwrap().to_owned();
    let confirm = s.sim.order(SELLER, held(2947)).await["order_id"].as_str().unwrap().to_owned();
    crate::import::set_auto(&s.app.db, s.store, true).await;
    make_due(&s.app.db, s.store).await;
    wait_for(s, |o| o.len() == 2).await;
    s.sim.control("/_sim/review", json!({})).await;
    make_due(&s.app.db, s.store).await;
    wait_for(s, |o| {
        o.iter().any(|(r, _)| r.order_id == confirm && r.fraud_hold_status == 3)
            && o.iter().any(|(r, _)| r.order_id == release && r.fraud_hold_status == 2)
    })
    .await;
    (release, confirm)
}

async fn the_outbox_keeps_the_notifications_of_a_released_and_a_confirmed_hold(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    let (release, confirm) = held_orders_released_and_confirmed(&s).await;
    let sent = wait_for_mail(&s, |m| m.len() == 2 && m.iter().all(|m| m.state == "sent")).await;
    let released = sent.iter().find(|m| m.kind == "hold_released").expect("a release notice");
    let confirmed = sent.iter().find(|m| m.kind == "hold_confirmed").expect("a confirmation notice");
    assert_eq!(released.recipient, "owner@example.jp");
    assert!(released.subject.contains("不正保留が解除された注文が1件") && released.body.contains(&release));
    assert!(!released.body.contains(&confirm));
    assert!(confirmed.subject.contains("キャンセルしてください") && confirmed.body.contains(&confirm));
    // The link is to the order's page on this service.
    let pk = s.ours().await.into_iter().find(|(o, _)| o.order_id == release).unwrap().0.id;
    assert!(released.body.contains(&format!("{}/orders/{pk}", s.app.base)), "{}", released.body);

    // The 送信メール page lists them; a message reads whole; the .eml file is the message.
    let page = s.owner.get("/mail").await;
    let table = page.select_text("#mail-table").join("\n");
    assert!(
        table.contains("不正保留の解除") && table.contains("不正利用の確定") && table.contains("送信済み"),
        "{table}"
    );
    assert!(page.select_text("#mail-transport").join("").contains("保存のみ"));
    let one = s.owner.get(&format!("/mail/{}", released.id)).await;
    assert!(one.select_text("#mail-body").join("").contains(&release));
    let eml = std::fs::read(s.app.config.data_dir.join("outbox").join(format!("{}.eml", released.id))).unwrap();
    let parsed = Received::parse(&eml);
    assert_eq!(parsed.header("Subject"), released.subject);
    assert_eq!(parsed.header("Message-ID"), released.message_id);
    assert!(parsed.body.contains(&release), "{}", parsed.body);

    // Imported again with nothing new: no second notice.
    make_due(&s.app.db, s.store).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(mails(&s).await.len(), 2);
}

async fn a_real_smtp_server_receives_japanese_mail_intact(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let s = shop(backend, move |c| {
        c.mail = orderdesk::config::MailMode::Smtp;
        c.smtp_url = Some(orderdesk::config::Redacted::new(url));
        c.mail_from = "オーダーデスク <desk@example.jp>".into();
    })
    .await;
    // The test mail: sent at once, and the page says so.
    let done = s.owner.submit("/mail", "/mail/test", &[("to", "owner@example.jp")]).await;
    assert_eq!(done.status, reqwest::StatusCode::SEE_OTHER);
    let page = s.owner.get("/mail").await;
    assert!(page.body.contains("テストメールを owner@example.jp に送りました"), "{}", page.body);
    let got = sink.wait_for(1).await;
    let test = &got[0];
    assert_eq!(test.header("Subject"), "オーダーデスク テストメール");
    assert!(test.header("From").contains("オーダーデスク") && test.header("From").contains("<desk@example.jp>"));
    assert!(test.header("Content-Type").to_ascii_lowercase().contains("charset=utf-8"));
    assert!(test.body.contains("〒・①・髙・﨑"), "the body arrives intact: {}", test.body);
    let stored = mails(&s).await;
    assert_eq!(test.header("Message-ID"), stored[0].message_id, "the Message-ID is the one stored");

    // The notifications reach the server with their links.
    let (release, _) = held_orders_released_and_confirmed(&s).await;
    let got = sink.wait_for(3).await;
    let notice = got.iter().find(|m| m.header("Subject").contains("不正保留が解除")).expect("the release notice");
    assert!(
        notice.body.contains(&release) && notice.body.contains(&format!("{}/orders/", s.app.base)),
        "{}",
        notice.body
    );
    assert_eq!(notice.header("To"), "owner@example.jp");
}

async fn the_test_mail_says_what_is_wrong_with_the_smtp_server(backend: Backend) {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = shop(backend, move |c| {
        c.mail = orderdesk::config::MailMode::Smtp;
        c.smtp_url = Some(orderdesk::config::Redacted::new(format!("smtp://127.0.0.1:{port}")));
        c.scheduler = false;
    })
    .await;
    s.owner.submit("/mail", "/mail/test", &[("to", "owner@example.jp")]).await;
    let page = s.owner.get("/mail").await;
    let said = page.select_text(".flash-error, [role=alert]").join("");
    assert!(
        said.contains("テストメールを送れませんでした") && said.contains(&format!("127.0.0.1:{port}")),
        "{}",
        page.body
    );
    let stored = mails(&s).await;
    assert_eq!(stored[0].state, "queued", "kept to be tried again");
    assert!(page.select_text("#mail-table").join("").contains("再送待ち"));
    // Support sees the dead server in /admin.
    orderdesk::cli::admin::create(
        &s.app.config,
        "support@orderdesk.example",
        "佐藤",
        Some(crate::helpers::PASSWORD.into()),
    )
    .await
    .unwrap();
    let support = s.app.browser();
    support.sign_in("support@orderdesk.example", crate::helpers::PASSWORD).await;
    let health = support.get("/admin").await.select_text("#mail-health").join("");
    assert!(health.contains("送信待ち 1件") && health.contains(&format!("127.0.0.1:{port}")), "{health}");
    // A bad address is refused before anything is queued.
    s.owner.submit("/mail", "/mail/test", &[("to", "not an address")]).await;
    assert!(s.owner.get("/mail").await.body.contains("メールアドレスとして正しくありません"));
    assert_eq!(mails(&s).await.len(), 1);
}

/// A shop whose own process sends no mail (no scheduler): `serve` processes do.
async fn quiet_smtp(backend: Backend, sink: &SmtpSink) -> Shop {
    let url = sink.url();
    shop(backend, move |c| {
        c.scheduler = false;
        c.mail = orderdesk::config::MailMode::Smtp;
        c.smtp_url = Some(orderdesk::config::Redacted::new(url));
    })
    .await
}

/// `n` notifications queued at once (as an import's batch would).
async fn queue_many(s: &Shop, n: usize) {
    let mails: Vec<NewMail> = (0..n)
        .map(|i| {
            NewMail::plain(
                s.account,
                Some(s.store),
                MailKind::HoldReleased,
                &format!("owner{i}@example.jp"),
                format!("【本店】不正保留が解除された注文があります（{i}）"),
                format!("注文 {i} の不正保留が解除されました。"),
            )
        })
        .collect();
    orderdesk::db::mail::queue(&s.app.db, &mails, orderdesk::db::now()).await.unwrap();
}

async fn states(s: &Shop) -> std::collections::HashMap<String, usize> {
    let rows: Vec<String> = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar("select state from mail_message where account_id = $1").bind(s.account).fetch_all(p).await
    })
    .unwrap();
    let mut out = std::collections::HashMap::new();
    for r in rows {
        *out.entry(r).or_default() += 1;
    }
    out
}

async fn stored_ids(s: &Shop) -> std::collections::HashSet<String> {
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, String>("select message_id from mail_message where account_id = $1")
            .bind(s.account)
            .fetch_all(p)
            .await
    })
    .unwrap()
    .into_iter()
    .collect()
}

async fn wait_all_sent(s: &Shop, n: usize) {
    for _ in 0..600 {
        if states(s).await.get("sent").copied().unwrap_or(0) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not all sent: {:?}", states(s).await);
}

/// A sender SIGKILLed mid-send: another process takes over once its claims run out, and every
/// message reaches the server (at least once; a message in flight when the process died may
/// arrive twice, with the same Message-ID).
async fn a_killed_sender_loses_no_mail(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = quiet_smtp(backend, &sink).await;
    let n = 400;
    queue_many(&s, n).await;
    let mut first = ServeProcess::start_sending_mail(&s.app, &sink.url(), 2);
    // Up to 60 s: a process starting under a loaded machine takes a while to send its first.
    for _ in 0..6000 {
        if sink.received().len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill();
    let at_kill = sink.received().len();
    assert!(at_kill > 0 && at_kill < n, "killed mid-send ({at_kill} of {n} received)");
    let _second = ServeProcess::start_sending_mail(&s.app, &sink.url(), 2);
    wait_all_sent(&s, n).await;
    let received: Vec<String> = sink.received().iter().map(|m| m.header("Message-ID").to_owned()).collect();
    let unique: std::collections::HashSet<String> = received.iter().cloned().collect();
    assert_eq!(unique, stored_ids(&s).await, "every message arrived");
    let twice = received.len() - unique.len();
    assert!(twice <= 20, "only what was in flight at the kill came twice ({twice})");
    eprintln!("a_killed_sender_loses_no_mail: killed after {at_kill} of {n}; {twice} arrived twice");
}

/// Two `serve` processes sending from one database: each message goes out once.
async fn two_senders_send_each_message_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = quiet_smtp(backend, &sink).await;
    let n = 300;
    queue_many(&s, n).await;
    let _a = ServeProcess::start_sending_mail(&s.app, &sink.url(), 30);
    let _b = ServeProcess::start_sending_mail(&s.app, &sink.url(), 30);
    wait_all_sent(&s, n).await;
    let got = sink.wait_for(n).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = sink.received();
    assert_eq!(got_after.len(), n, "nothing arrived twice (got {} then {})", got.len(), got_after.len());
    let unique: std::collections::HashSet<&str> = got_after.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(unique.len(), n);
}

/// The reset link in a received mail, as a path.
/// A shop whose mail goes by SMTP to `sink`.
async fn smtp_shop(backend: Backend, sink: &SmtpSink) -> Shop {
    let url = sink.url();
    shop(backend, move |c| {
        c.mail = orderdesk::config::MailMode::Smtp;
        c.smtp_url = Some(orderdesk::config::Redacted::new(url));
    })
    .await
}

fn reset_path(m: &Received) -> String {
    let link =
        m.body.split_whitespace().find(|w| w.contains("/password-reset/")).expect("a link in the mail").to_owned();
    url::Url::parse(&link).unwrap().path().to_owned()
}

/// パスワードを忘れた: the same answer for every address; an owner's address gets a one-time
/// link by mail (sealed at rest, never on 送信メール), which sets a new password; asks are capped.
async fn a_forgotten_password_is_reset_by_mail(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let visitor = s.app.browser();
    let signin = visitor.get("/signin").await;
    assert_eq!(signin.select_attr("#forgot-link", "href"), vec!["/password-forgot".to_string()]);
    let ask = |email: &'static str| {
        let v = s.app.browser();
        async move {
            v.submit("/password-forgot", "/password-forgot", &[("email", email)])
                .await
                .select_text("#forgot-done")
                .join("")
        }
    };
    let for_owner = ask("owner@example.jp").await;
    let for_nobody = ask("nobody@example.jp").await;
    assert!(!for_owner.is_empty());
    assert_eq!(for_owner, for_nobody, "the same answer whatever the address");
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "only the owner's address got a mail");
    let mail = &got[0];
    assert_eq!(mail.header("To"), "owner@example.jp");
    assert_eq!(mail.header("Subject"), "オーダーデスク パスワードの再設定");
    let path = reset_path(mail);
    assert!(mail.body.contains(&format!("{}{path}", s.app.base)));
    let token = path.trim_start_matches("/password-reset/").to_owned();

    // The token is nowhere in the database or on 送信メール.
    let stored = mails(&s).await;
    let reset = stored.iter().find(|m| m.kind == "password_reset").unwrap();
    assert!(reset.body.is_empty() && reset.body_sealed.is_some());
    let bodies: Vec<String> = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar("select body from mail_message").fetch_all(p).await
    })
    .unwrap();
    assert!(bodies.iter().all(|b| !b.contains(&token)));
    let list = s.owner.get("/mail").await;
    assert!(list.select_text("#mail-table").join("").contains("パスワード再設定") && !list.body.contains(&token));
    let one = s.owner.get(&format!("/mail/{}", reset.id)).await;
    assert!(!one.select_text("#mail-body-hidden").is_empty() && !one.body.contains(&token), "{}", one.body);
    // The audit log says who asked.
    assert!(s.owner.get("/audit").await.body.contains("パスワードを忘れた"));

    // The link works once.
    let owner = s.app.browser();
    let set = owner
        .submit(&path, &path, &[("new_password", "new-password-123"), ("new_password_confirm", "new-password-123")])
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    assert_eq!(owner.sign_in("owner@example.jp", "new-password-123").await.status, StatusCode::SEE_OTHER);

    // Three links an hour per owner; the fourth ask gets the same answer and no mail.
    for _ in 0..3 {
        assert_eq!(ask("owner@example.jp").await, for_nobody);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 3, "1 + 2 more, then capped");
}

/// With an SMTP server, support's reset link goes to the owner's mailbox and is not shown to
/// the support person.
async fn supports_reset_link_goes_to_the_owner_by_mail(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let support = crate::reset_link::support_staff(&s.app).await;
    let (account, user) = crate::reset_link::ids_of(&s.app.db, "owner@example.jp").await;
    let page = support.submit("/admin", "/admin/password-reset", &[("account_id", &account), ("user_id", &user)]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.select_text("#reset-link").is_empty() && !page.body.contains("/password-reset/"), "{}", page.body);
    assert!(page.select_text("#reset-mailed").join("").contains("owner@example.jp"));
    let got = sink.wait_for(1).await;
    assert!(got[0].body.contains("サポート担当者が"), "{}", got[0].body);
    let path = reset_path(&got[0]);
    assert_eq!(s.app.browser().get(&path).await.status, StatusCode::OK);
}

/// Signing up with an address that has an account already: the same answer as for a new one,
/// and the address is mailed a note with a way back in (a reset link for an owner; for a staff
/// member, to ask their owner).
async fn signing_up_again_mails_the_address_a_way_back_in(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    s.app.add_user(&s.owner, "staff@example.jp", "staff").await;
    // The staff member has signed in once (an invitation not yet taken is nobody's address).
    s.app.browser().sign_in("staff@example.jp", crate::helpers::PASSWORD).await;
    let sign_up = |email: &'static str| {
        let v = s.app.browser();
        async move {
            v.submit(
                "/signup",
                "/signup",
                &[
                    ("account_name", "新しい店"),
                    ("display_name", "次郎"),
                    ("email", email),
                    ("password", crate::helpers::PASSWORD),
                    ("password_confirm", crate::helpers::PASSWORD),
                ],
            )
            .await
            .location()
            .to_owned()
        }
    };
    let again = sign_up("owner@example.jp").await;
    let fresh = sign_up("fresh@example.jp").await;
    assert_eq!(again, fresh, "the same answer whatever the address");
    assert_eq!(sign_up("staff@example.jp").await, fresh);
    let got = sink.wait_for(2).await;
    let to_owner = got.iter().find(|m| m.header("To") == "owner@example.jp").expect("the owner's note");
    assert_eq!(to_owner.header("Subject"), "オーダーデスク このメールアドレスはすでに登録されています");
    assert!(to_owner.body.contains(&format!("{}/signin", s.app.base)), "{}", to_owner.body);
    let path = reset_path(to_owner);
    assert_eq!(s.app.browser().get(&path).await.status, StatusCode::OK, "the link works");
    let to_staff = got.iter().find(|m| m.header("To") == "staff@example.jp").expect("the staff's note");
    assert!(to_staff.body.contains("オーナーに再設定を依頼") && !to_staff.body.contains("/password-reset/"));
    assert!(!got.iter().any(|m| m.header("To") == "fresh@example.jp"), "a new address gets no note");
}

/// A staff member invited by mail sets their own password through the link and signs in with
/// it; nobody knew a password for them before. Without SMTP the form offers the 初期パスワード
/// only, and the first sign-in with it leads to changing it.
async fn a_staff_member_is_invited_by_mail_and_sets_their_own_password(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let form = s.owner.get("/users").await;
    assert!(!form.select_text("#how").is_empty(), "the invitation is offered: {}", form.body);
    let added = s
        .owner
        .submit(
            "/users",
            "/users",
            &[("email", "invited@example.jp"), ("display_name", "花子"), ("role", "staff"), ("how", "invite")],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let users = s.owner.get("/users").await;
    assert!(users.body.contains("招待メールを送りました") && users.body.contains("初回ログイン待ち"), "{}", users.body);
    let got = sink.wait_for(1).await;
    let mail = got.iter().find(|m| m.header("To") == "invited@example.jp").expect("the invitation");
    assert_eq!(mail.header("Subject"), "オーダーデスク 商店 への招待");
    assert!(mail.body.contains("店長 さん") || mail.body.contains("さんが、オーダーデスクの「商店」"), "{}", mail.body);
    // The link's body is sealed: 送信メール lists the mail, never the link.
    assert!(!s.owner.get("/mail").await.body.contains("/password-reset/"));
    let path = reset_path(mail);
    let invited = s.app.browser();
    let page = invited.get(&path).await;
    assert!(page.select_text("#invited").join("").contains("invited@example.jp"), "{}", page.body);
    let chosen = "hanako-own-password-2026";
    let set = invited.submit(&path, &path, &[("new_password", chosen), ("new_password_confirm", chosen)]).await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.body);
    // Signed in with the password they chose; active at once.
    let signed = invited.sign_in("invited@example.jp", chosen).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(invited.get("/orders").await.status, StatusCode::OK);
    assert!(!s.owner.get("/users").await.body.contains("初回ログイン待ち"));
    // The link is spent.
    assert_eq!(s.app.browser().get(&path).await.status, StatusCode::GONE);

    // Without SMTP: the 初期パスワード, and its first sign-in asks for a new one.
    let plain = shop(backend, |_| {}).await;
    let form = plain.owner.get("/users").await;
    assert!(form.select_text("#how").is_empty() && !form.select_text("#invite-hint").is_empty());
    plain.app.add_user(&plain.owner, "first@example.jp", "staff").await;
    let first = plain.app.browser();
    let signed = first.sign_in("first@example.jp", crate::helpers::PASSWORD).await;
    assert_eq!(signed.location(), "/account/password?first=1");
    let page = first.get("/account/password?first=1").await;
    assert!(page.body.contains("自分だけが知るパスワードに変更してください"), "{}", page.body);
}

crate::on_both_backends!(
    a_staff_member_is_invited_by_mail_and_sets_their_own_password,
    signing_up_again_mails_the_address_a_way_back_in,
    a_forgotten_password_is_reset_by_mail,
    supports_reset_link_goes_to_the_owner_by_mail,
    a_killed_sender_loses_no_mail,
    two_senders_send_each_message_once,
    the_outbox_keeps_the_notifications_of_a_released_and_a_confirmed_hold,
    a_real_smtp_server_receives_japanese_mail_intact,
    the_test_mail_says_what_is_wrong_with_the_smtp_server,
);
