//! One-time password reset links (issued by support staff for a merchant owner). The link's
//! token is never stored: only its SHA-256, so a copy of the database opens no account. A link
//! is used at most once (a compare-and-swap on `used_at`), and issuing a new one for the same
//! owner retires the ones not used yet.

use chrono::{DateTime, Utc};

use super::{
    Db,
    accounts::SET_PASSWORD,
    audit::{self, Note},
    with_pool,
};
use crate::domain::{AccountId, UserId};

/// The stored form of a link's token.
pub fn token_hash(token: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Link {
    pub id: i64,
    pub account_id: AccountId,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Records a link for `user_id`, who must be an owner of `account_id`, with its audit entry in
/// the merchant's log, in one transaction. False (nothing written) if there is no such owner.
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn issue(
    db: &Db,
    account_id: AccountId,
    user_id: UserId,
    token_hash: &str,
    issued_by: &str,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    note: &Note,
    mail: Option<(&crate::crypto::SecretBox, &crate::db::mail::NewMail)>,
) -> sqlx::Result<bool> {
    use crate::db::mail::MailTx;
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let owner: Option<i64> = sqlx::query_scalar(
            "select id from app_user where account_id = $1 and id = $2 and role = 'owner' and invited_email is null",
        )
        .bind(account_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if owner.is_none() {
            return Ok(false);
        }
        // Only the newest link works.
        sqlx::query(
            "update password_reset_link set expires_at = $3
             where account_id = $1 and user_id = $2 and used_at is null",
        )
        .bind(account_id)
        .bind(user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into password_reset_link (account_id, user_id, token_hash, issued_by, created_at, expires_at)
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(account_id)
        .bind(user_id)
        .bind(token_hash)
        .bind(issued_by)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        audit::record_in(&mut *tx, note).await?;
        // The link by mail, with the link itself: both or neither.
        if let Some((secrets, mail)) = mail {
            tx.queue_secret(secrets, mail, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// The link whose token hashes to `token_hash`. The token itself is the capability, so this is
/// the one lookup that does not start from an account.
pub async fn find(db: &Db, token_hash: &str) -> sqlx::Result<Option<Link>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id, account_id, user_id, expires_at, used_at from password_reset_link where token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(p)
        .await
    })
}

/// Why a link was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotConsumed {
    /// Used meanwhile, or its user is gone.
    Used,
    /// An invitation whose address has become someone else's meanwhile.
    AddressTaken,
}

/// Uses the link: marks it used, sets the user's new password (moving the auth epoch on, which
/// ends their sessions) and writes the audit entry, in one transaction. An invited user not
/// signed in yet takes their address with it (they are active from then on). Nothing changes
/// when it refuses.
pub async fn consume(
    db: &Db,
    link: &Link,
    password_hash: &str,
    now: DateTime<Utc>,
    note: &Note,
) -> sqlx::Result<Result<i64, NotConsumed>> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let taken = sqlx::query("update password_reset_link set used_at = $2 where id = $1 and used_at is null")
            .bind(link.id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if !taken {
            return Ok(Err(NotConsumed::Used));
        }
        let epoch: Option<i64> = sqlx::query_scalar(SET_PASSWORD)
            .bind(link.account_id)
            .bind(link.user_id)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(epoch) = epoch else { return Ok(Err(NotConsumed::Used)) };
        let activated = sqlx::query(
            "update app_user set email = invited_email, invited_email = null
             where account_id = $1 and id = $2 and invited_email is not null",
        )
        .bind(link.account_id)
        .bind(link.user_id)
        .execute(&mut *tx)
        .await;
        match activated {
            Err(e) if super::is_unique_violation(&e) => return Ok(Err(NotConsumed::AddressTaken)),
            other => other?,
        };
        audit::record_in(&mut *tx, note).await?;
        tx.commit().await?;
        Ok(Ok(epoch))
    })
}

/// Owners of every account, for the support view's reset form.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OwnerChoice {
    pub account_id: AccountId,
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
}

/// Owners of the accounts with IDs from `first` to `last` (one page of the support view).
pub async fn owners(db: &Db, first: AccountId, last: AccountId) -> sqlx::Result<Vec<OwnerChoice>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select account_id, id as user_id, email, display_name from app_user
             where account_id >= $1 and account_id <= $2 and role = 'owner' and invited_email is null
             order by account_id, id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(p)
        .await
    })
}

/// Links issued for `user` since `since` (パスワードを忘れた sends at most a few an hour).
pub async fn recent(db: &Db, user: UserId, since: DateTime<Utc>) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select count(*) from password_reset_link where user_id = $1 and created_at > $2")
            .bind(user)
            .bind(since)
            .fetch_one(p)
            .await
    })
}
