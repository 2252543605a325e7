//! The secrets key check: a known text sealed under the secrets key and kept in the database,
//! so that a server started with another key refuses to start (with a message saying so)
//! instead of showing 「設定済み」 and failing later on every stored secret.

use anyhow::Context;

use super::{Db, now, with_pool};
use crate::{crypto::SecretBox, yahoo::client::CLIENT_SECRET};

const PURPOSE: &str = "secrets key check";
const TEXT: &str = "orderdesk secrets key check v1";

pub const WRONG_KEY: &str = "the secrets key (ORDERDESK_SECRET_KEY, or <data dir>/secret.key when it is unset) \
     does not open the secrets stored in this database; start with the key the database was set up with";

/// Checks the key against the database, recording the check value on first start.
pub async fn verify(db: &Db, secrets: &SecretBox) -> anyhow::Result<()> {
    if let Some(sealed) = stored(db).await? {
        anyhow::ensure!(secrets.open(PURPOSE, &sealed).ok().as_deref() == Some(TEXT), WRONG_KEY);
        return Ok(());
    }
    // A database from before the check: the key must still open what is stored there.
    let existing: Option<Vec<u8>> = with_pool!(db, |p| {
        sqlx::query_scalar("select client_secret_enc from store where client_secret_enc is not null limit 1")
            .fetch_optional(p)
            .await
    })?;
    if let Some(sealed) = existing {
        anyhow::ensure!(secrets.open(CLIENT_SECRET, &sealed).is_ok(), WRONG_KEY);
    }
    // Two servers starting together: the first insert wins and both check against it.
    with_pool!(db, |p| {
        sqlx::query(
            "insert into secrets_key_check (id, sealed, created_at) values (1, $1, $2) on conflict (id) do nothing",
        )
        .bind(secrets.seal(PURPOSE, TEXT))
        .bind(now())
        .execute(p)
        .await
        .map(|_| ())
    })
    .context("recording the secrets key check")?;
    let sealed = stored(db).await?.context("the secrets key check was not recorded")?;
    anyhow::ensure!(secrets.open(PURPOSE, &sealed).ok().as_deref() == Some(TEXT), WRONG_KEY);
    Ok(())
}

async fn stored(db: &Db) -> sqlx::Result<Option<Vec<u8>>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select sealed from secrets_key_check where id = 1").fetch_optional(p).await
    })
}
