//! Stores of an account and their settings. Every function takes the account.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db, WriteError,
    audit::{self, Note},
    now, with_pool,
};
use crate::{
    crypto::SecretBox,
    crypto::purpose::CLIENT_SECRET,
    domain::{
        AccountId, StoreId,
        scope::OrderScope,
        store::{Environment, InternalStatus, StoreSettings},
    },
};

/// A store as the pages see it. Secrets are not part of it: only whether they are set.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Store {
    pub id: StoreId,
    pub account_id: AccountId,
    pub name: String,
    pub seller_id: String,
    environment: String,
    pub client_id: String,
    pub has_client_secret: bool,
    pub has_refresh_token: bool,
    pub public_key_version: Option<i64>,
    pub has_public_key: bool,
    pub public_key_expires_on: Option<NaiveDate>,
    pub authorized_at: Option<DateTime<Utc>>,
    pub last_authorize_status: Option<String>,
    pub last_authorize_status_at: Option<DateTime<Utc>>,
    pub clock_offset_ms: Option<i64>,
    pub last_auth_error: Option<String>,
    pub last_auth_error_at: Option<DateTime<Utc>>,
    pub auto_import_enabled: bool,
    pub auto_import_interval_minutes: i64,
    pub auto_import_inbox: bool,
    pub auto_status_change_enabled: bool,
    auto_status_change_target: Option<String>,
    pub restrict_fraud_hold_changes: bool,
    pub stock_sync_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    pub fn environment(&self) -> Environment {
        Environment::parse(&self.environment).unwrap_or(Environment::Production)
    }

    /// What diagnosis and the clocks need (domain::diagnosis).
    pub fn facts(&self) -> crate::domain::diagnosis::Facts {
        crate::domain::diagnosis::Facts {
            connected: self.has_refresh_token,
            authorized_at: self.authorized_at,
            has_public_key: self.has_public_key,
            public_key_version: self.public_key_version,
            public_key_expires_on: self.public_key_expires_on,
            last_authorize_status: self.last_authorize_status.clone(),
            last_auth_error: self.last_auth_error.clone(),
            clock_offset_ms: self.clock_offset_ms,
        }
    }

    /// Its connection with Yahoo as every page says it ([`crate::domain::diagnosis::connection`]).
    pub fn connection(&self) -> crate::domain::diagnosis::Connection {
        crate::domain::diagnosis::connection(&self.facts(), chrono::Utc::now())
    }

    /// Its public key as lists say it.
    pub fn key_label(&self) -> &'static str {
        crate::domain::diagnosis::key_label(&self.facts(), chrono::Utc::now())
    }

    pub fn auto_status_change_target(&self) -> Option<InternalStatus> {
        self.auto_status_change_target.as_deref().and_then(InternalStatus::parse)
    }

    pub fn settings(&self) -> StoreSettings {
        StoreSettings {
            name: self.name.clone(),
            seller_id: self.seller_id.clone(),
            environment: self.environment(),
            client_id: self.client_id.clone(),
            auto_import_enabled: self.auto_import_enabled,
            auto_import_interval_minutes: self.auto_import_interval_minutes,
            auto_import_inbox: self.auto_import_inbox,
            auto_status_change_enabled: self.auto_status_change_enabled,
            auto_status_change_target: self.auto_status_change_target(),
            restrict_fraud_hold_changes: self.restrict_fraud_hold_changes,
            stock_sync_enabled: self.stock_sync_enabled,
        }
    }
}

const STORE_COLUMNS: &str = "id, account_id, name, seller_id, environment, client_id,
    client_secret_enc is not null as has_client_secret,
    refresh_token_enc is not null as has_refresh_token,
    public_key_version, public_key_pem is not null as has_public_key, public_key_expires_on,
    authorized_at, last_authorize_status, last_authorize_status_at, clock_offset_ms,
    last_auth_error, last_auth_error_at,
    auto_import_enabled, auto_import_interval_minutes, auto_import_inbox, auto_status_change_enabled,
    auto_status_change_target, restrict_fraud_hold_changes, stock_sync_enabled,
    created_at, updated_at";

/// Name and ID of each store, for the header and menus.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StoreLink {
    pub id: StoreId,
    pub name: String,
    /// Under 緊急停止, the store's own or its account's (every page says so).
    pub stopped: bool,
    /// Its 不正保留注文のステータス変更を制限する is off (pages that change statuses say so).
    pub unrestricted: bool,
}

/// The links' columns: the store, whether an emergency stop holds it, and whether its fraud-hold
/// restriction is off.
const LINK_SQL: &str = "select s.id, s.name, (i.stopped_at is not null or a.stopped_at is not null) as stopped,
            not s.restrict_fraud_hold_changes as unrestricted
     from store s join account a on a.id = s.account_id
     left join store_import i on i.store_id = s.id and i.account_id = s.account_id
     where s.account_id = $1";

pub async fn list(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<Store>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("select {STORE_COLUMNS} from store where account_id = $1 order by name, id"))
            .bind(account_id)
            .fetch_all(p)
            .await
    })
}

/// The stores this reader may see (a staff member limited to some stores sees those).
pub async fn visible(db: &Db, scope: &OrderScope) -> sqlx::Result<Vec<Store>> {
    let limited = super::scope_condition(scope, "id", 2);
    let sql = format!("select {STORE_COLUMNS} from store where account_id = $1{limited} order by name, id");
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}

/// [`links`] of the stores this reader may see.
pub async fn visible_links(db: &Db, scope: &OrderScope) -> sqlx::Result<Vec<StoreLink>> {
    let limited = super::scope_condition(scope, "s.id", 2);
    let sql = format!("{LINK_SQL}{limited} order by s.name, s.id");
    with_pool!(db, |p| {
        let mut q = sqlx::query_as(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_all(p).await
    })
}

pub async fn links(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<StoreLink>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("{LINK_SQL} order by s.name, s.id")).bind(account_id).fetch_all(p).await
    })
}

pub async fn get(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<Option<Store>> {
    with_pool!(db, |p| {
        sqlx::query_as(&format!("select {STORE_COLUMNS} from store where account_id = $1 and id = $2"))
            .bind(account_id)
            .bind(store_id)
            .fetch_optional(p)
            .await
    })
}

/// Binds the eleven settings columns in the order both writes list them.
macro_rules! bind_settings {
    ($query:expr, $s:expr) => {
        $query
            .bind(&$s.name)
            .bind(&$s.seller_id)
            .bind($s.environment.as_str())
            .bind(&$s.client_id)
            .bind($s.auto_import_enabled)
            .bind($s.auto_import_interval_minutes)
            .bind($s.auto_status_change_enabled)
            .bind($s.auto_status_change_target.map(InternalStatus::as_str))
            .bind($s.restrict_fraud_hold_changes)
            .bind($s.stock_sync_enabled)
            .bind($s.auto_import_inbox)
    };
}

/// A client secret typed on the store form, sealed for its store's row once the row is known.
#[derive(Clone, Copy)]
pub struct NewSecret<'a> {
    pub secrets: &'a SecretBox,
    pub plaintext: &'a str,
}

impl NewSecret<'_> {
    fn seal(&self, store_id: StoreId) -> Vec<u8> {
        self.secrets.seal(CLIENT_SECRET, store_id.0, self.plaintext)
    }
}

/// Creates a store with its audit entry, in one transaction. The secret is sealed for the new
/// row's ID, so it is written just after the row.
pub async fn create(
    db: &Db,
    account_id: AccountId,
    s: &StoreSettings,
    client_secret: Option<NewSecret<'_>>,
    note: Option<&Note>,
) -> Result<StoreId, WriteError> {
    let t = now();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let q = sqlx::query_scalar(
            "insert into store (account_id, name, seller_id, environment, client_id,
                 auto_import_enabled, auto_import_interval_minutes, auto_status_change_enabled,
                 auto_status_change_target, restrict_fraud_hold_changes, stock_sync_enabled, auto_import_inbox,
                 created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) returning id",
        )
        .bind(account_id);
        let id: StoreId = bind_settings!(q, s).bind(t).fetch_one(&mut *tx).await.map_err(WriteError::classify)?;
        if let Some(secret) = client_secret {
            sqlx::query("update store set client_secret_enc = $3 where account_id = $1 and id = $2")
                .bind(account_id)
                .bind(id)
                .bind(secret.seal(id))
                .execute(&mut *tx)
                .await?;
        }
        if let Some(note) = note {
            // The store's ID is known only now.
            audit::record_in(&mut *tx, &note.clone().store(id)).await?;
        }
        tx.commit().await?;
        Ok(id)
    })
}

/// Updates a store's settings; a `None` secret keeps the stored one; `disconnect` also forgets
/// its connection to Yahoo (see [`clear_connection`]). The change and its audit entries
/// commit together. False if no such store.
pub async fn update(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    s: &StoreSettings,
    new_client_secret: Option<NewSecret<'_>>,
    disconnect: bool,
    notes: &[Note],
) -> Result<bool, WriteError> {
    let t = now();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let q = sqlx::query(
            "update store set name = $3, seller_id = $4, environment = $5, client_id = $6,
                 auto_import_enabled = $7, auto_import_interval_minutes = $8,
                 auto_status_change_enabled = $9, auto_status_change_target = $10,
                 restrict_fraud_hold_changes = $11, stock_sync_enabled = $12, auto_import_inbox = $13,
                 client_secret_enc = coalesce($14, client_secret_enc), updated_at = $15
             where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(store_id);
        let updated = bind_settings!(q, s)
            .bind(new_client_secret.map(|n| n.seal(store_id)))
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(WriteError::classify)?
            .rows_affected()
            == 1;
        if !updated {
            return Ok(false);
        }
        if disconnect {
            sqlx::query(CLEAR_CONNECTION).bind(account_id).bind(store_id).bind(t).execute(&mut *tx).await?;
        }
        for note in notes {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

pub async fn delete(db: &Db, account_id: AccountId, store_id: StoreId, note: &Note) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let deleted = sqlx::query("delete from store where account_id = $1 and id = $2")
            .bind(account_id)
            .bind(store_id)
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

/// The sealed client secret, for the Yahoo client only; never for a page.
pub async fn sealed_client_secret(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<Option<Vec<u8>>> {
    with_pool!(db, |p| {
        sqlx::query_scalar::<_, Option<Vec<u8>>>(
            "select client_secret_enc from store where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(store_id)
        .fetch_optional(p)
        .await
        .map(Option::flatten)
    })
}

/// What the Yahoo client needs to call Yahoo for a store. Secrets stay sealed until the client
/// opens them; this struct is never given to a page.
#[derive(Clone, sqlx::FromRow)]
pub struct Credentials {
    /// The row the sealed values belong to (their associated data names it).
    pub store_id: StoreId,
    pub seller_id: String,
    environment: String,
    pub client_id: String,
    pub client_secret_enc: Option<Vec<u8>>,
    pub refresh_token_enc: Option<Vec<u8>>,
    pub access_token_enc: Option<Vec<u8>>,
    pub access_token_expires_at: Option<DateTime<Utc>>,
    pub public_key_pem: Option<String>,
    pub public_key_version: Option<i64>,
    pub clock_offset_ms: Option<i64>,
}

impl Credentials {
    pub fn environment(&self) -> Environment {
        Environment::parse(&self.environment).unwrap_or(Environment::Production)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("seller_id", &self.seller_id).finish_non_exhaustive()
    }
}

pub async fn credentials(db: &Db, account_id: AccountId, store_id: StoreId) -> sqlx::Result<Option<Credentials>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id as store_id, seller_id, environment, client_id, client_secret_enc, refresh_token_enc, access_token_enc,
                 access_token_expires_at, public_key_pem, public_key_version, clock_offset_ms
             from store where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(store_id)
        .fetch_optional(p)
        .await
    })
}

/// Stores a new authorization: sealed tokens and the time the merchant consented, with its
/// audit entry in the same transaction.
#[expect(clippy::too_many_arguments, reason = "one transaction's inputs, each named")]
pub async fn save_authorization(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    refresh_token_enc: Vec<u8>,
    access_token_enc: Vec<u8>,
    access_expires_at: DateTime<Utc>,
    authorized_at: DateTime<Utc>,
    note: Option<&Note>,
) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let saved = sqlx::query(
            "update store set refresh_token_enc = $3, access_token_enc = $4, access_token_expires_at = $5,
                 authorized_at = $6, last_auth_error = null, last_auth_error_at = null, updated_at = $6
             where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(refresh_token_enc)
        .bind(access_token_enc)
        .bind(access_expires_at)
        .bind(authorized_at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if let (true, Some(note)) = (saved, note) {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(saved)
    })
}

/// Forgets a store's connection to Yahoo (tokens, consent time, last results): its seller or
/// endpoint changed, so what was authorized no longer applies.
const CLEAR_CONNECTION: &str =
    "update store set refresh_token_enc = null, access_token_enc = null, access_token_expires_at = null,
         authorized_at = null, last_authorize_status = null, last_authorize_status_at = null,
         last_auth_error = null, last_auth_error_at = null, clock_offset_ms = null, updated_at = $3
     where account_id = $1 and id = $2";

/// Stores a refreshed access token, on the connection that got it: `refresh_token_enc` is the
/// sealed refresh token the refresh used. A store disconnected (or connected again) meanwhile
/// keeps what it has; `Ok(false)` says the token was not stored.
pub async fn save_access_token(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    refresh_token_enc: &[u8],
    access_token_enc: Vec<u8>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query(
            "update store set access_token_enc = $3, access_token_expires_at = $4
             where account_id = $1 and id = $2 and refresh_token_enc = $5",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(access_token_enc)
        .bind(expires_at)
        .bind(refresh_token_enc)
        .execute(p)
        .await
        .map(|r| r.rows_affected() == 1)
    })
}

/// What one call to Yahoo told us: the public-key outcome, the measured clock offset, and the
/// authentication problem if any (`None` clears it: the call got through). Written only on the
/// connection the call was made on (`refresh_token_enc`, the sealed refresh token it used): an
/// answer that arrives after the store was disconnected or connected again says nothing about
/// the connection it has now.
pub async fn record_call(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    refresh_token_enc: &[u8],
    authorize_status: Option<&str>,
    clock_offset_ms: Option<i64>,
    auth_error: Option<&str>,
) -> sqlx::Result<()> {
    let t = now();
    with_pool!(db, |p| {
        sqlx::query(
            "update store set
                 last_authorize_status = coalesce($3, last_authorize_status),
                 last_authorize_status_at = case when $3 is null then last_authorize_status_at else $6 end,
                 clock_offset_ms = coalesce($4, clock_offset_ms),
                 last_auth_error = $5,
                 last_auth_error_at = case when $5 is null then null else $6 end
             where account_id = $1 and id = $2 and refresh_token_enc = $7",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(authorize_status)
        .bind(clock_offset_ms)
        .bind(auth_error)
        .bind(t)
        .bind(refresh_token_enc)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// Saves a checked public key (SPKI PEM), its version and expiry.
pub async fn set_public_key(
    db: &Db,
    account_id: AccountId,
    store_id: StoreId,
    spki_pem: &str,
    version: i64,
    expires_on: NaiveDate,
    note: Option<&Note>,
) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let saved = sqlx::query(
            // What Yahoo said about the previous key is no longer true of this one (the page
            // showed 「公開鍵が送信されていません」 right after a key was saved).
            "update store set public_key_pem = $3, public_key_version = $4, public_key_expires_on = $5, updated_at = $6,
                 last_authorize_status = case when coalesce(public_key_pem, '') = $3 and coalesce(public_key_version, -1) = $4
                     then last_authorize_status end,
                 last_authorize_status_at = case when coalesce(public_key_pem, '') = $3 and coalesce(public_key_version, -1) = $4
                     then last_authorize_status_at end
             where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(store_id)
        .bind(spki_pem)
        .bind(version)
        .bind(expires_on)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if let (true, Some(note)) = (saved, note) {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(saved)
    })
}
