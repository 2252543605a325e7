//! Accounts and their users.

use chrono::{DateTime, Utc};

use super::{
    Db, WriteError,
    audit::{self, Note},
    now, with_pool,
};
use crate::domain::{AccountId, UserId, user::Role};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub account_id: AccountId,
    pub email: String,
    pub display_name: String,
    role: String,
    pub created_at: DateTime<Utc>,
    /// Bumped when the user's password or role changes; sessions carry the value they began with.
    pub auth_epoch: i64,
    /// Works every store of the account (owners always do; see `db::access`).
    pub all_stores: bool,
    /// Buyers' personal data is masked for this user.
    pub mask_personal: bool,
    /// Added by an owner and not signed in yet (`email` is the address the owner typed).
    pub pending: bool,
}

impl User {
    /// The stand-in user of a support person looking at the account (read-only: see
    /// `web::session::support_read_only`). Its ID matches no user row.
    pub fn support_viewer(account_id: AccountId, name: &str, now: DateTime<Utc>) -> User {
        User {
            id: UserId(0),
            account_id,
            email: format!("サポート: {name}"),
            display_name: format!("サポート: {name}"),
            role: "owner".to_string(),
            created_at: now,
            auth_epoch: 0,
            all_stores: true,
            mask_personal: true,
            pending: false,
        }
    }

    pub fn role(&self) -> Role {
        // The column has a check constraint; anything else would be a schema bug.
        Role::parse(&self.role).unwrap_or(Role::Staff)
    }

    pub fn is_owner(&self) -> bool {
        self.role() == Role::Owner
    }
}

/// What sign-in needs: the user and their password hash.
#[derive(Clone, sqlx::FromRow)]
pub struct UserCredentials {
    pub id: UserId,
    pub account_id: AccountId,
    pub password_hash: String,
    pub auth_epoch: i64,
}

/// A pending user's row holds a placeholder in `email` (see [`add_user`]); pages show the
/// address the owner typed.
const USER_COLUMNS: &str = "id, account_id, coalesce(invited_email, email) as email, display_name, role, created_at,
    auth_epoch, all_stores, mask_personal, invited_email is not null as pending";

/// What a pending user's `email` holds until their first sign-in: never an address (no `@`),
/// unique, so no sign-in can match it and the column's uniqueness holds.
fn placeholder_email() -> String {
    format!("pending:{}", crate::crypto::random_token())
}

/// Users an owner may add in an hour (a limit on probing, and on mistakes).
pub const ADDS_PER_HOUR: i64 = 20;

/// Sign-up: a new account and its owner, in one transaction with `note` (written for the new
/// account).
pub async fn create_account_with_owner(
    db: &Db,
    account_name: &str,
    email: &str,
    display_name: &str,
    password_hash: &str,
    note: Option<Note>,
) -> Result<(AccountId, UserId), WriteError> {
    let t = now();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let (account_id,): (AccountId,) =
            sqlx::query_as("insert into account (name, created_at, updated_at) values ($1, $2, $2) returning id")
                .bind(account_name)
                .bind(t)
                .fetch_one(&mut *tx)
                .await?;
        let (user_id,): (UserId,) = sqlx::query_as(
            "insert into app_user (account_id, email, display_name, password_hash, role, created_at, updated_at)
             values ($1, $2, $3, $4, 'owner', $5, $5) returning id",
        )
        .bind(account_id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(t)
        .fetch_one(&mut *tx)
        .await
        .map_err(WriteError::classify)?;
        if let Some(note) = note {
            audit::record_in(&mut *tx, &note.for_account(account_id)).await?;
        }
        tx.commit().await?;
        Ok((account_id, user_id))
    })
}

pub async fn get_account(db: &Db, account_id: AccountId) -> sqlx::Result<Option<Account>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, name, created_at from account where id = $1")
            .bind(account_id)
            .fetch_optional(p)
            .await
    })
}

/// Looks a user up by email for sign-in. Emails are unique across accounts, so this is the one
/// user query that does not start from an account.
pub async fn find_credentials(db: &Db, email: &str) -> sqlx::Result<Option<UserCredentials>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, account_id, password_hash, auth_epoch from app_user where email = $1")
            .bind(email)
            .fetch_optional(p)
            .await
    })
}

pub async fn get_user(db: &Db, account_id: AccountId, user_id: UserId) -> sqlx::Result<Option<User>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("select {USER_COLUMNS} from app_user where account_id = $1 and id = $2"))
            .bind(account_id)
            .bind(user_id)
            .fetch_optional(p)
            .await
    })
}

pub async fn get_password_hash(db: &Db, account_id: AccountId, user_id: UserId) -> sqlx::Result<Option<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select password_hash from app_user where account_id = $1 and id = $2")
            .bind(account_id)
            .bind(user_id)
            .fetch_optional(p)
            .await
    })
}

pub async fn list_users(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<User>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("select {USER_COLUMNS} from app_user where account_id = $1 order by id"))
            .bind(account_id)
            .fetch_all(p)
            .await
    })
}

/// An invitation sent with a new user: the link's stored hash (see
/// `password_reset::token_hash`), who sent it, until when it works, and the mail carrying it
/// (its body sealed). Written in the user's transaction: both or neither.
pub struct Invite<'a> {
    pub token_hash: &'a str,
    pub issued_by: &'a str,
    pub expires_at: DateTime<Utc>,
    pub secrets: &'a crate::crypto::SecretBox,
    pub mail: &'a super::mail::NewMail,
}

/// An owner adds a user: pending until their first sign-in with this address and this
/// password ([`activate`]), or until they set their own password through the invitation's
/// link (`password_reset::consume`). The answer is the same whether or not the address is registered
/// in another account, so the form tells nobody which addresses exist (issue 31); the address
/// already in this account (active or pending) is a duplicate, which the owner can see anyway.
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn add_user(
    db: &Db,
    account_id: AccountId,
    email: &str,
    display_name: &str,
    role: Role,
    password_hash: &str,
    note: &Note,
    invite: Option<Invite<'_>>,
) -> Result<UserId, WriteError> {
    use super::mail::MailTx;
    let t = now();
    with_pool!(db, |p| {
        let mut tx = super::BeginWrite::begin_write(p).await?;
        let (here,): (i64,) = sqlx::query_as(
            "select count(*) from app_user where account_id = $1 and (email = $2 or invited_email = $2)",
        )
        .bind(account_id)
        .bind(email)
        .fetch_one(&mut *tx)
        .await?;
        if here > 0 {
            return Err(WriteError::Duplicate);
        }
        let id = sqlx::query_scalar(
            "insert into app_user (account_id, email, invited_email, display_name, password_hash, role, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $7) returning id",
        )
        .bind(account_id)
        .bind(placeholder_email())
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(t)
        .fetch_one(&mut *tx)
        .await
        .map_err(WriteError::classify)?;
        audit::record_in(&mut *tx, note).await?;
        if let Some(invite) = invite {
            sqlx::query(
                "insert into password_reset_link (account_id, user_id, token_hash, issued_by, created_at, expires_at)
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(account_id)
            .bind(id)
            .bind(invite.token_hash)
            .bind(invite.issued_by)
            .bind(t)
            .bind(invite.expires_at)
            .execute(&mut *tx)
            .await?;
            tx.queue_secret(invite.secrets, invite.mail, t).await?;
        }
        tx.commit().await?;
        Ok(id)
    })
}

/// Users added to this account since `since` (for [`ADDS_PER_HOUR`]), counted from the audit
/// log: a user added and deleted again still counts.
pub async fn added_since(db: &Db, account_id: AccountId, since: DateTime<Utc>) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select count(*) from audit_log where account_id = $1 and action = $2 and created_at >= $3")
            .bind(account_id)
            .bind(audit::Action::UserAdded.code())
            .bind(since)
            .fetch_one(p)
            .await
    })
}

/// Pending users waiting for this address (in any account), the newest three: an address added
/// by several accounts is rare, and each costs a password check at its sign-in.
pub async fn pending_credentials(db: &Db, email: &str) -> sqlx::Result<Vec<UserCredentials>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id, account_id, password_hash, auth_epoch from app_user where invited_email = $1 order by id desc limit 3",
        )
        .bind(email)
        .fetch_all(p)
        .await
    })
}

/// A pending user's first sign-in: the address becomes theirs. `None` when it is someone's
/// already (registered meanwhile, or before: the pending row then never signs in).
pub async fn activate(db: &Db, user: &UserCredentials, email: &str) -> sqlx::Result<Option<UserCredentials>> {
    let done = with_pool!(db, |p| {
        sqlx::query(
            "update app_user set email = invited_email, invited_email = null, updated_at = $3
             where id = $1 and invited_email = $2",
        )
        .bind(user.id)
        .bind(email)
        .bind(now())
        .execute(p)
        .await
        .map(|r| r.rows_affected())
    });
    match done {
        Ok(1) => Ok(Some(user.clone())),
        Ok(_) => Ok(None),
        Err(e) if super::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a user of the account; false if there is no such user in this account.
pub async fn delete_user(db: &Db, account_id: AccountId, user_id: UserId, note: &Note) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let deleted = sqlx::query("delete from app_user where account_id = $1 and id = $2")
            .bind(account_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if deleted {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(deleted)
    })
}

/// A new password hash, and the auth epoch moved on (which ends the user's other sessions).
pub(super) const SET_PASSWORD: &str =
    "update app_user set password_hash = $3, auth_epoch = auth_epoch + 1, updated_at = $4
     where account_id = $1 and id = $2 returning auth_epoch";

/// Sets a new password and bumps the user's auth epoch, which ends their other sessions.
/// Returns the new epoch, or None if there is no such user in this account.
pub async fn set_password_hash(
    db: &Db,
    account_id: AccountId,
    user_id: UserId,
    hash: &str,
    note: &Note,
) -> sqlx::Result<Option<i64>> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let epoch: Option<i64> = sqlx::query_scalar(SET_PASSWORD)
            .bind(account_id)
            .bind(user_id)
            .bind(hash)
            .bind(now())
            .fetch_optional(&mut *tx)
            .await?;
        if epoch.is_some() {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(epoch)
    })
}

/// Whether a merchant user of any account uses this email. Support staff logins are a separate
/// namespace (an email may be both), so that nothing a merchant can do tells which emails
/// belong to support staff.
pub async fn email_in_use(db: &Db, email: &str) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query_scalar::<_, i64>("select count(*) from app_user where email = $1")
            .bind(email)
            .fetch_one(p)
            .await
            .map(|n| n > 0)
    })
}

/// The account of the merchant user with this email, if any (to tell its owners, in their audit
/// log, that someone tried to sign up with it).
pub async fn account_of_email(db: &Db, email: &str) -> sqlx::Result<Option<AccountId>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select account_id from app_user where email = $1").bind(email).fetch_optional(p).await
    })
}
