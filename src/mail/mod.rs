//! Mail delivery (issue 29, shipping-day.md §4.1–4.2): the [`Mailer`] builds each message with
//! lettre (UTF-8, MIME-encoded Japanese headers, the body encoded with its lines kept short)
//! and hands it to the transport the operator chose: `outbox` (the embedded default: each
//! message is kept as `<data>/outbox/<id>.eml` and on 送信メール, nothing leaves) or `smtp`.
//!
//! Sending is a job ([`MailSender`], on the one job engine): messages are queued in the
//! transaction of the event that causes them (`db::mail::MailTx`), claimed under a lease by one
//! sender across all `serve` processes, retried with backoff on a temporary failure and failed
//! for good on a refusal. Delivery is at least once: a sender killed between the server's
//! acceptance and the settle sends the message again, with the same Message-ID, so the
//! receiving side can tell it is the same message.

use std::{path::PathBuf, sync::Arc, time::Duration};

use chrono::Utc;
use futures_util::StreamExt;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};

use crate::{
    config::{Config, MailMode},
    db::{
        Db,
        mail::{self as store, MailRow, Sent},
    },
    domain::mail::{MAX_ATTEMPTS, backoff},
    jobs::{Job, ProcessId},
};

/// SMTP conversations one sender holds at once (lettre's pool keeps up to 10 connections).
const SENDS_AT_ONCE: usize = 8;

/// The longest one message's SMTP conversation may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

enum Transport {
    Outbox,
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Why a message was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendError {
    /// In Japanese, for 送信メール and /admin (never the password).
    pub message: String,
    /// Trying again will not help (a refused address, a 5xx answer).
    pub permanent: bool,
}

/// Builds and sends messages through the configured transport.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    outbox_dir: PathBuf,
    describe: String,
}

impl Mailer {
    pub fn from_config(config: &Config) -> anyhow::Result<Mailer> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("ORDERDESK_MAIL_FROM「{}」is not an address: {e}", config.mail_from))?;
        let outbox_dir = config.data_dir.join("outbox");
        match config.mail {
            MailMode::Outbox => Ok(Mailer {
                transport: Transport::Outbox,
                from,
                outbox_dir,
                describe: "保存のみ（送信しません。送信メールのページと .eml ファイルに残します）".into(),
            }),
            MailMode::Smtp => {
                let url = config
                    .smtp_url
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("ORDERDESK_MAIL=smtp needs ORDERDESK_SMTP_URL"))?;
                let parsed = url::Url::parse(url.expose())
                    .map_err(|e| anyhow::anyhow!("ORDERDESK_SMTP_URL is not a URL: {e}"))?;
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("ORDERDESK_SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(15)));
                if let Some(password) = &config.smtp_password {
                    let user = percent_decode(parsed.username());
                    builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
                }
                let describe = format!(
                    "SMTP {}://{}:{}",
                    parsed.scheme(),
                    parsed.host_str().unwrap_or(""),
                    parsed.port().map_or_else(|| "既定のポート".to_owned(), |p| p.to_string())
                );
                Ok(Mailer { transport: Transport::Smtp(builder.build()), from, outbox_dir, describe })
            }
        }
    }

    /// The transport as pages describe it (no user, no password).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    pub fn sends(&self) -> bool {
        matches!(self.transport, Transport::Smtp(_))
    }

    /// The message as it goes out.
    pub fn build(&self, row: &MailRow) -> Result<Message, SendError> {
        let to: Mailbox = row.recipient.parse().map_err(|_| SendError {
            message: format!("宛先「{}」はメールアドレスとして正しくありません", row.recipient),
            permanent: true,
        })?;
        // The service's address always (the domain the operator set up to send from), with the
        // store's name as its display name; the store's own address as Reply-To.
        let from = if row.from_name.trim().is_empty() {
            self.from.clone()
        } else {
            Mailbox::new(Some(row.from_name.trim().to_owned()), self.from.email.clone())
        };
        let mut builder = Message::builder().from(from).to(to);
        if !row.reply_to.trim().is_empty() {
            let reply: Mailbox = row.reply_to.trim().parse().map_err(|_| SendError {
                message: format!("返信先「{}」はメールアドレスとして正しくありません", row.reply_to),
                permanent: true,
            })?;
            builder = builder.reply_to(reply);
        }
        builder
            .subject(row.subject.clone())
            .message_id(Some(row.message_id.clone()))
            .date(std::time::SystemTime::from(row.created_at))
            .header(ContentType::TEXT_PLAIN)
            .body(row.body.clone())
            .map_err(|e| SendError {
                message: format!("メールを組み立てられません: {e}"), permanent: true
            })
    }

    /// Sends one message.
    pub async fn send(&self, row: &MailRow) -> Result<(), SendError> {
        let message = self.build(row)?;
        match &self.transport {
            Transport::Outbox => {
                let dir = self.outbox_dir.clone();
                let name = format!("{}.eml", row.id);
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    std::fs::create_dir_all(&dir)?;
                    let tmp = dir.join(format!(".{name}.tmp"));
                    std::fs::write(&tmp, bytes)?;
                    std::fs::rename(tmp, dir.join(name))
                })
                .await
                .map_err(|e| SendError { message: format!("保存できませんでした: {e}"), permanent: false })?
                .map_err(|e| SendError {
                    message: format!("outbox に保存できませんでした: {e}"), permanent: false
                })
            }
            // lettre's own timeout covers connecting; a server that stops answering mid-message
            // (seen: an SMTP sink that never answers DATA) is cut off here, well inside the
            // sender's lease, and tried again later.
            Transport::Smtp(smtp) => match tokio::time::timeout(SEND_TIMEOUT, smtp.send(message)).await {
                Err(_) => Err(SendError {
                    message: format!(
                        "SMTPサーバー（{}）が{}秒以内に応答しませんでした",
                        self.describe,
                        SEND_TIMEOUT.as_secs()
                    ),
                    permanent: false,
                }),
                Ok(sent) => sent.map(|_| ()).map_err(|e| {
                    let permanent = e.is_permanent();
                    let message = if permanent {
                        format!("SMTPサーバー（{}）が受け付けませんでした: {e}", self.describe)
                    } else if e.is_timeout() {
                        format!("SMTPサーバー（{}）が応答しません", self.describe)
                    } else {
                        format!("SMTPサーバー（{}）に送れませんでした: {e}", self.describe)
                    };
                    SendError { message, permanent }
                }),
            },
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={s}").as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// What a claimed send's outcome is stored as.
fn settle(row: &MailRow, result: &Result<(), SendError>) -> Sent {
    match result {
        Ok(()) => Sent::Done,
        Err(e) if e.permanent || row.attempts >= MAX_ATTEMPTS => Sent::Failed { error: e.message.clone() },
        Err(e) => Sent::Retry {
            error: e.message.clone(),
            retry_at: Utc::now() + chrono::Duration::from_std(backoff(row.attempts)).unwrap_or_default(),
        },
    }
}

/// A message a sender tried, and how it went.
pub type Attempted = (MailRow, Result<(), SendError>);

/// The mail job: every tick, claims what is due (a few at a time) and sends it.
pub struct MailSender {
    pub db: Db,
    pub mailer: Arc<Mailer>,
    /// Opens a secret body (a password-reset link) only to send it.
    pub secrets: crate::crypto::SecretBox,
    pub owner: ProcessId,
    /// How long a claim lasts: a sender that dies mid-send leaves its messages to be taken
    /// over after this.
    pub lease: Duration,
}

impl MailSender {
    /// Claims (all due, or just `only`) and sends; returns what was claimed and how each ended.
    pub async fn send_due(&self, only: Option<i64>) -> sqlx::Result<Vec<Attempted>> {
        let now = Utc::now();
        let until = now + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let rows = store::claim(&self.db, self.owner.as_str(), now, until, 20, only).await?;
        // Never send past the claim: one conversation gets at most half the lease, and what
        // could not start in time goes back to the queue untouched (another sender takes it,
        // its attempt not counted twice).
        let budget = SEND_TIMEOUT.min(self.lease / 2);
        let deadline = until - chrono::Duration::from_std(budget).unwrap_or_default();
        let send = |row: MailRow| async move {
            match tokio::time::timeout(budget, self.mailer.send(&row)).await {
                Ok(result) => result,
                Err(_) => Err(SendError {
                    message: format!(
                        "SMTPサーバー（{}）が{}秒以内に応答しませんでした",
                        self.mailer.describe,
                        budget.as_secs()
                    ),
                    permanent: false,
                }),
            }
        };
        let sends = rows.into_iter().map(|row| async move {
            if Utc::now() > deadline {
                store::unclaim(&self.db, self.owner.as_str(), &[row.id]).await?;
                return Ok(None);
            }
            let result = match &row.body_sealed {
                None => send(row.clone()).await,
                Some(sealed) => match self.secrets.open(store::SEALED_BODY, row.id, sealed) {
                    Ok(body) => send(MailRow { body, ..row.clone() }).await,
                    Err(_) => Err(SendError {
                        message: "本文を開けませんでした（秘密鍵が違います）".into(),
                        permanent: true,
                    }),
                },
            };
            // A failure is settled at once; the sent ones together, below.
            let sent = settle(&row, &result);
            if sent != Sent::Done {
                store::finish(&self.db, row.id, self.owner.as_str(), &sent, Utc::now()).await?;
            }
            sqlx::Result::Ok(Some((row, result)))
        });
        // Several conversations at once over lettre's connection pool: one SMTP conversation
        // is a few round trips (and lettre's separate writes of a message and its final dot
        // meet delayed ACKs), so one at a time leaves the server idle.
        let done: Vec<sqlx::Result<Option<Attempted>>> =
            futures_util::stream::iter(sends).buffer_unordered(SENDS_AT_ONCE).collect().await;
        let mut out = Vec::with_capacity(done.len());
        for d in done {
            out.extend(d?);
        }
        // One statement for the round's sent messages (a sender killed before it sends them
        // again: at least once, the same Message-IDs).
        let sent: Vec<i64> = out.iter().filter(|(_, r)| r.is_ok()).map(|(row, _)| row.id).collect();
        store::finish_sent(&self.db, self.owner.as_str(), &sent, Utc::now()).await?;
        Ok(out)
    }
}

/// Claims a tick goes through at most (20 messages each) before giving the next tick its turn.
const ROUNDS_PER_TICK: usize = 50;

impl Job for Arc<MailSender> {
    const NAME: &'static str = "mail";

    async fn tick(&mut self) -> Result<(), String> {
        for _ in 0..ROUNDS_PER_TICK {
            if self.send_due(None).await.map_err(|e| e.to_string())?.is_empty() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(body: &str) -> MailRow {
        MailRow {
            id: 7,
            account_id: crate::domain::AccountId(1),
            store_id: None,
            kind: "test".into(),
            recipient: "店長 <owner@example.jp>".into(),
            subject: "【本店】不正保留が解除された注文が1件あります（出荷できます）".into(),
            body: body.into(),
            message_id: "<abc@orderdesk.mail>".into(),
            state: "sending".into(),
            attempts: 1,
            next_attempt_at: Utc::now(),
            last_error: String::new(),
            created_at: Utc::now(),
            sent_at: None,
            body_sealed: None,
            from_name: String::new(),
            reply_to: String::new(),
        }
    }

    #[test]
    fn japanese_headers_are_encoded_and_lines_kept_short() {
        let mailer = Mailer::from_config(&Config::defaults()).unwrap();
        let long = "日本語の長い行です。".repeat(40);
        let text = String::from_utf8(mailer.build(&row(&long)).unwrap().formatted()).unwrap();
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.contains("Message-ID: <abc@orderdesk.mail>"));
        assert!(text.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(text.lines().all(|l| l.len() <= 998), "no line longer than RFC 5322 allows");
        assert!(text.is_ascii(), "the whole message is 7-bit: headers encoded, body transfer-encoded");
        // A bad address is a permanent failure with a Japanese message.
        let mut bad = row("x");
        bad.recipient = "not an address".into();
        let e = mailer.build(&bad).unwrap_err();
        assert!(e.permanent && e.message.contains("メールアドレス"));
    }

    #[test]
    fn failures_retry_with_backoff_then_fail_for_good() {
        let r = row("x");
        let transient = Err(SendError { message: "接続できません".into(), permanent: false });
        assert!(matches!(settle(&r, &transient), Sent::Retry { .. }));
        let refused = Err(SendError { message: "550".into(), permanent: true });
        assert!(matches!(settle(&r, &refused), Sent::Failed { .. }));
        let last = MailRow { attempts: MAX_ATTEMPTS, ..r.clone() };
        assert!(matches!(settle(&last, &transient), Sent::Failed { .. }));
        assert_eq!(settle(&r, &Ok(())), Sent::Done);
    }
}
