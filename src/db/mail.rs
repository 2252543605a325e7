//! Mail messages (issue 29): queued inside the transaction of the event that causes them
//! ([`MailTx`]), claimed by the mail job under a lease ([`claim`]), settled once sent or failed
//! ([`finish`]), and listed per account for 送信メール.

use chrono::{DateTime, Utc};

use super::{Db, with_pool};
use crate::domain::{AccountId, StoreId, UserId, mail::MailKind};

/// A message to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMail {
    pub account: AccountId,
    pub store: Option<StoreId>,
    pub kind: MailKind,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The user it is for (a notification; none for a buyer's or a test mail).
    pub user: Option<UserId>,
    /// The store's sender name and reply address (empty: the service's).
    pub from_name: String,
    pub reply_to: String,
}

impl NewMail {
    /// A message from the service itself (no store sender, no user).
    pub fn plain(
        account: AccountId,
        store: Option<StoreId>,
        kind: MailKind,
        to: &str,
        subject: String,
        body: String,
    ) -> NewMail {
        NewMail {
            account,
            store,
            kind,
            to: to.to_owned(),
            subject,
            body,
            user: None,
            from_name: String::new(),
            reply_to: String::new(),
        }
    }
}

/// A Message-ID made when the message is queued and kept through every retry.
pub fn new_message_id() -> String {
    let token: String = crate::crypto::random_token().chars().filter(char::is_ascii_alphanumeric).take(24).collect();
    format!("<{token}@orderdesk.mail>")
}

/// A stored message, as the mail job sends it and the pages show it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct MailRow {
    pub id: i64,
    pub account_id: AccountId,
    pub store_id: Option<StoreId>,
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub message_id: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The body of a secret message (a password-reset link), sealed; `body` is then empty and
    /// no page shows it. The mail job opens it only to send.
    pub body_sealed: Option<Vec<u8>>,
    pub from_name: String,
    pub reply_to: String,
}

/// The column a secret body is sealed for.
pub const SEALED_BODY: &str = "mail_message.body";

impl MailRow {
    /// The body is a secret, not shown on any page.
    pub fn is_secret(&self) -> bool {
        self.body_sealed.is_some()
    }

    pub fn kind_label(&self) -> &'static str {
        MailKind::label_of(&self.kind)
    }

    /// The state as 送信メール says it.
    pub fn state_label(&self) -> &'static str {
        match self.state.as_str() {
            "sent" => "送信済み",
            "failed" => "送信失敗",
            "sending" => "送信中",
            _ if self.attempts > 0 => "再送待ち",
            _ => "送信待ち",
        }
    }
}

const MAIL_COLUMNS: &str = "id, account_id, store_id, kind, recipient, subject, body, message_id, state, attempts, \
     next_attempt_at, last_error, created_at, sent_at, body_sealed, from_name, reply_to";

/// Queues mail inside a transaction the caller holds (and commits): the message exists if and
/// only if the event that caused it was written.
pub(crate) trait MailTx {
    async fn queue_mails(&mut self, mails: &[NewMail], now: DateTime<Utc>) -> sqlx::Result<()>;

    /// Queues one message and returns its id.
    async fn queue_one(&mut self, mail: &NewMail, now: DateTime<Utc>) -> sqlx::Result<i64>;

    /// Queues one message whose body is a secret: stored sealed, bound to its row.
    async fn queue_secret(
        &mut self,
        secrets: &crate::crypto::SecretBox,
        mail: &NewMail,
        now: DateTime<Utc>,
    ) -> sqlx::Result<i64>;
}

macro_rules! mail_tx {
    ($conn:ty, $postgres:expr) => {
        impl MailTx for $conn {
            async fn queue_mails(&mut self, mails: &[NewMail], now: DateTime<Utc>) -> sqlx::Result<()> {
                if mails.is_empty() {
                    return Ok(());
                }
                let rows = mails.iter().map(|m| {
                    serde_json::json!([
                        m.account.0,
                        m.store.map(|s| s.0),
                        m.kind.as_str(),
                        m.to,
                        m.subject,
                        m.body,
                        new_message_id(),
                        m.user.map(|u| u.0),
                        m.from_name,
                        m.reply_to
                    ])
                });
                let sql = format!(
                    "insert into mail_message (account_id, store_id, kind, recipient, subject, body, message_id,
                         user_id, from_name, reply_to, next_attempt_at, created_at)
                     select account_id, store_id, kind, recipient, subject, body, message_id, user_id, from_name,
                         reply_to, $1, $1 from {}",
                    super::json_rows(
                        $postgres,
                        2,
                        &[
                            ("account_id", "bigint"),
                            ("store_id", "bigint"),
                            ("kind", "text"),
                            ("recipient", "text"),
                            ("subject", "text"),
                            ("body", "text"),
                            ("message_id", "text"),
                            ("user_id", "bigint"),
                            ("from_name", "text"),
                            ("reply_to", "text"),
                        ]
                    )
                );
                sqlx::query(&sql).bind(now).bind(super::json_rows_value(rows)).execute(&mut *self).await?;
                Ok(())
            }

            async fn queue_one(&mut self, mail: &NewMail, now: DateTime<Utc>) -> sqlx::Result<i64> {
                sqlx::query_scalar(
                    "insert into mail_message (account_id, store_id, kind, recipient, subject, body, message_id,
                         user_id, from_name, reply_to, next_attempt_at, created_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) returning id",
                )
                .bind(mail.account)
                .bind(mail.store)
                .bind(mail.kind.as_str())
                .bind(&mail.to)
                .bind(&mail.subject)
                .bind(&mail.body)
                .bind(new_message_id())
                .bind(mail.user)
                .bind(&mail.from_name)
                .bind(&mail.reply_to)
                .bind(now)
                .fetch_one(&mut *self)
                .await
            }

            async fn queue_secret(
                &mut self,
                secrets: &crate::crypto::SecretBox,
                mail: &NewMail,
                now: DateTime<Utc>,
            ) -> sqlx::Result<i64> {
                let id: i64 = sqlx::query_scalar(
                    "insert into mail_message (account_id, store_id, kind, recipient, subject, body, message_id,
                         next_attempt_at, created_at)
                     values ($1, $2, $3, $4, $5, '', $6, $7, $7) returning id",
                )
                .bind(mail.account)
                .bind(mail.store)
                .bind(mail.kind.as_str())
                .bind(&mail.to)
                .bind(&mail.subject)
                .bind(new_message_id())
                .bind(now)
                .fetch_one(&mut *self)
                .await?;
                sqlx::query("update mail_message set body_sealed = $2 where id = $1")
                    .bind(id)
                    .bind(secrets.seal(SEALED_BODY, id, &mail.body))
                    .execute(&mut *self)
                    .await?;
                Ok(id)
            }
        }
    };
}

mail_tx!(sqlx::SqliteConnection, false);
mail_tx!(sqlx::PgConnection, true);

/// Queues mail in a transaction of its own (events that write nothing else).
pub async fn queue(db: &Db, mails: &[NewMail], now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        tx.queue_mails(mails, now).await?;
        tx.commit().await
    })
}

/// Claims up to `limit` messages due at `now` for `owner` until `until`, counting an attempt:
/// queued ones whose time has come, and ones whose sender's lease ran out (a process that died
/// mid-send: the message is sent again, with the same Message-ID).
pub async fn claim(
    db: &Db,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
    only: Option<i64>,
) -> sqlx::Result<Vec<MailRow>> {
    let lock = if matches!(db, Db::Postgres(_)) { "for update skip locked" } else { "" };
    let only_sql = if only.is_some() { "and id = $5" } else { "" };
    let sql = format!(
        "update mail_message set state = 'sending', lease_owner = $1, lease_until = $3, attempts = attempts + 1
         where id in (
             select id from mail_message
             where ((state = 'queued' and next_attempt_at <= $2) or (state = 'sending' and lease_until < $2)) {only_sql}
             order by next_attempt_at, id
             limit $4
             {lock})
         returning {MAIL_COLUMNS}"
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(owner).bind(now).bind(until).bind(limit);
        if let Some(id) = only {
            q = q.bind(id);
        }
        q.fetch_all(p).await
    })
}

/// Gives claimed messages back unsent (their attempt not counted), if still `owner`'s.
pub async fn unclaim(db: &Db, owner: &str, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let pg = db.is_postgres();
    let sql = format!(
        "update mail_message set state = 'queued', attempts = attempts - 1, lease_owner = null, lease_until = null
         where lease_owner = $1 and state = 'sending' and {}",
        super::in_ids(pg, "id", 2)
    );
    with_pool!(db, |p| {
        sqlx::query(&sql).bind(owner).bind(super::ids_value(pg, ids.iter().copied())).execute(p).await.map(|_| ())
    })
}

/// How a claimed send ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    Done,
    /// Worth trying again at `retry_at`.
    Retry {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// Refused for good (a 5xx answer, a bad address, too many attempts).
    Failed {
        error: String,
    },
}

/// Settles a claimed message, only if the claim is still `owner`'s. False when it was not.
pub async fn finish(db: &Db, id: i64, owner: &str, sent: &Sent, now: DateTime<Utc>) -> sqlx::Result<bool> {
    let (state, error, next) = match sent {
        Sent::Done => ("sent", "", now),
        Sent::Retry { error, retry_at } => ("queued", error.as_str(), *retry_at),
        Sent::Failed { error } => ("failed", error.as_str(), now),
    };
    with_pool!(db, |p| {
        sqlx::query(
            "update mail_message set state = $3, last_error = $4, next_attempt_at = $5,
                 sent_at = case when $3 = 'sent' then $6 else sent_at end, lease_owner = null, lease_until = null
             where id = $1 and lease_owner = $2 and state = 'sending'",
        )
        .bind(id)
        .bind(owner)
        .bind(state)
        .bind(error)
        .bind(next)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// Settles claimed messages that were sent, in one statement (only those still `owner`'s).
pub async fn finish_sent(db: &Db, owner: &str, ids: &[i64], now: DateTime<Utc>) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let pg = db.is_postgres();
    let sql = format!(
        "update mail_message set state = 'sent', last_error = '', sent_at = $2, lease_owner = null, lease_until = null
         where lease_owner = $1 and state = 'sending' and {}",
        super::in_ids(pg, "id", 3)
    );
    with_pool!(db, |p| {
        sqlx::query(&sql)
            .bind(owner)
            .bind(now)
            .bind(super::ids_value(pg, ids.iter().copied()))
            .execute(p)
            .await
            .map(|_| ())
    })
}

/// The account's newest messages.
pub async fn list(db: &Db, account: AccountId, limit: i64) -> sqlx::Result<Vec<MailRow>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select {MAIL_COLUMNS} from mail_message where account_id = $1 order by id desc limit $2"
        ))
        .bind(account)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// One of the account's messages.
pub async fn get(db: &Db, account: AccountId, id: i64) -> sqlx::Result<Option<MailRow>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("select {MAIL_COLUMNS} from mail_message where account_id = $1 and id = $2"))
            .bind(account)
            .bind(id)
            .fetch_optional(p)
            .await
    })
}

/// Across the service: messages waiting (queued or being sent), failed for good, and the
/// newest error of a message still being retried (/admin's view of a dead SMTP server).
pub async fn health(db: &Db) -> sqlx::Result<(i64, i64, Option<String>)> {
    with_pool!(db, |p| {
        let (waiting, failed): (i64, i64) = sqlx::query_as(
            "select coalesce(sum(case when state in ('queued', 'sending') then 1 else 0 end), 0),
                    coalesce(sum(case when state = 'failed' then 1 else 0 end), 0)
             from mail_message",
        )
        .fetch_one(p)
        .await?;
        let error: Option<String> = sqlx::query_scalar(
            "select last_error from mail_message where state = 'queued' and attempts > 0 and last_error <> ''
             order by id desc limit 1",
        )
        .fetch_optional(p)
        .await?;
        Ok((waiting, failed, error))
    })
}

/// Queues one message in a transaction of its own and returns its id (the test mail, which
/// is then sent at once).
pub async fn queue_one(db: &Db, mail: &NewMail, now: DateTime<Utc>) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let id = tx.queue_one(mail, now).await?;
        tx.commit().await?;
        Ok(id)
    })
}
