//! `orderdesk bench mail` (issue 29): N notifications queued at once and sent to a local SMTP
//! server by the mail job (mails per second), and an import of `orders` orders timed alone and
//! then with that sending running beside it in the same process and database (mail must not
//! slow the import by more than 5 %). The SMTP server is `--smtp`, or Debian's aiosmtpd
//! started here with its discarding handler.

use std::{sync::Arc, time::Instant};

use super::bench::{ImportedShop, tempfile_dir};
use crate::{
    config::{Config, MailMode, Redacted},
    db::mail::{self as store, NewMail},
    domain::mail::MailKind,
    jobs::ProcessId,
    mail::{MailSender, Mailer},
    simulator::generate::Generate,
};

/// aiosmtpd storing what it receives into a Maildir (its `Sink` handler never answers DATA in
/// the Debian version), killed when dropped.
struct Sink(std::process::Child, std::path::PathBuf);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

async fn local_sink() -> anyhow::Result<(Sink, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let maildir = std::env::temp_dir().join(format!("orderdesk-bench-maildir-{}", std::process::id()));
    let child = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting aiosmtpd (Debian python3-aiosmtpd), or pass --smtp: {e}"))?;
    let sink = Sink(child, maildir);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok((sink, format!("smtp://127.0.0.1:{port}")));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("aiosmtpd did not start")
}

pub async fn mail(mails: usize, orders: usize, smtp: Option<String>, postgres: Option<String>) -> anyhow::Result<()> {
    let (_sink, url) = match smtp {
        Some(url) => (None, url),
        None => {
            let (sink, url) = local_sink().await?;
            (Some(sink), url)
        }
    };
    let dir = tempfile_dir()?;
    let secrets = crate::crypto::SecretBox::from_key(&rand::random::<[u8; 32]>());
    let mut config = Config::defaults();
    config.mail = MailMode::Smtp;
    config.smtp_url = Some(Redacted::new(url.clone()));
    config.mail_from = "orderdesk@example.jp".into();
    let mailer = Arc::new(Mailer::from_config(&config)?);
    println!(
        "mail benchmark: {mails} notifications to {url}; an import of {orders} orders alone and beside the sending"
    );
    let mut backends: Vec<Option<&str>> = vec![None];
    if let Some(url) = postgres.as_deref() {
        backends.push(Some(url));
    }
    for backend in backends {
        let generate = |seed| Generate { count: orders, seed, fraud_share: 0.02, spread_hours: 48 };
        // The import alone.
        let alone = ImportedShop::start(backend, &dir.join("alone"), &secrets, "bench-mail-a", &generate(29)).await?;
        let label = alone.label;
        let alone_secs = alone.import_secs;
        alone.finish().await;

        // The sending alone, then beside an import.
        let mut shop =
            ImportedShop::prepare(backend, &dir.join("beside"), &secrets, "bench-mail-b", &generate(29)).await?;
        let queue = |n: usize| -> Vec<NewMail> {
            (0..n)
                .map(|i| {
                    NewMail::plain(
                        shop.account,
                        Some(shop.store),
                        MailKind::HoldReleased,
                        &format!("owner{}@example.jp", i % 50),
                        format!("【ベンチ店】不正保留が解除された注文が1件あります（出荷できます）#{i}"),
                        format!(
                            "Yahoo!が次の注文の不正保留を解除しました。\n・bench-{i}\n  http://127.0.0.1:8080/orders/{i}\n"
                        ),
                    )
                })
                .collect()
        };
        store::queue(&shop.db, &queue(mails), crate::db::now()).await?;
        let sender = Arc::new(MailSender {
            db: shop.db.clone(),
            mailer: mailer.clone(),
            secrets: secrets.clone(),
            owner: ProcessId::new(),
            lease: std::time::Duration::from_secs(60),
        });
        let started = Instant::now();
        let mut sent = 0usize;
        let mut failed = 0usize;
        loop {
            let round = sender.send_due(None).await?;
            if round.is_empty() {
                break;
            }
            sent += round.iter().filter(|(_, r)| r.is_ok()).count();
            failed += round.iter().filter(|(_, r)| r.is_err()).count();
        }
        let send_secs = started.elapsed().as_secs_f64();
        println!(
            "  {label:<10} sending: {sent} sent, {failed} failed in {send_secs:.1} s = {:.0} mails/s",
            sent as f64 / send_secs
        );
        // The notifier: as many notices raised as events raise them (batches of 500, each fanned
        // out to the account's owner in its transaction), then folded into mail (one per kind and
        // store: a storm is one mail).
        let notices: Vec<crate::db::notify::NewNotice> = (0..mails)
            .map(|i| crate::db::notify::NewNotice {
                account: shop.account,
                store: Some(shop.store),
                kind: crate::domain::notify::NOTICE_KINDS[i % crate::domain::notify::NOTICE_KINDS.len()],
                key: format!("bench-{i}"),
                line: format!("bench-{i}"),
                link: format!("http://127.0.0.1:8080/orders/{i}"),
            })
            .collect();
        let started = Instant::now();
        for chunk in notices.chunks(500) {
            crate::db::notify::raise(&shop.db, chunk, crate::db::now()).await?;
        }
        let raise_secs = started.elapsed().as_secs_f64();
        let notifier = crate::notify::Notifier::new(
            shop.db.clone(),
            ProcessId::new(),
            "http://127.0.0.1:8080".into(),
            std::time::Duration::from_secs(60),
        );
        let started = Instant::now();
        let folded = notifier.fold(crate::db::now()).await?;
        let fold_secs = started.elapsed().as_secs_f64();
        println!(
            "  {label:<10} notifier: {mails} notices raised in {raise_secs:.2} s ({:.0} notices/s), folded into {folded} mails in {fold_secs:.2} s",
            mails as f64 / raise_secs
        );
        // Again, with an import running beside it.
        store::queue(&shop.db, &queue(mails), crate::db::now()).await?;
        let background = {
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                while let Ok(round) = sender.send_due(None).await {
                    if round.is_empty() {
                        break;
                    }
                    n += round.len();
                }
                n
            })
        };
        shop.import().await?;
        let beside_secs = shop.import_secs;
        let during = background.await?;
        println!(
            "  {label:<10} import of {orders} orders: alone {alone_secs:.2} s ({:.0} orders/s), beside the sending {beside_secs:.2} s ({:.0} orders/s, {:+.1} %); {during} mails went out meanwhile or after",
            orders as f64 / alone_secs,
            orders as f64 / beside_secs,
            (beside_secs / alone_secs - 1.0) * 100.0
        );
        shop.finish().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
