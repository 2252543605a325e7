//! The secrets key check: a known text sealed under the secrets key and kept in the database,
//! so that a server started with another key refuses to start (with a message saying so)
//! instead of showing 「設定済み」 and failing later on every stored secret.

use anyhow::Context;

use super::{Db, now, with_pool};
use crate::crypto::{SecretBox, purpose::CLIENT_SECRET};

/// The column the check value is sealed for (its row is always 1).
pub(super) const PURPOSE: &str = "secrets key check";
const TEXT: &str = "orderdesk secrets key check v1";

pub const WRONG_KEY: &str = "the secrets key (ORDERDESK_SECRET_KEY, or <data dir>/secret.key when it is unset) \
     does not open the secrets stored in this database; start with the key the database was set up with";

/// Checks the key against the database, recording the check value on first start.
pub async fn verify(db: &Db, secrets: &SecretBox) -> anyhow::Result<()> {
    if let Some(sealed) = stored(db).await? {
        anyhow::ensure!(opens(secrets, &sealed), WRONG_KEY);
        return Ok(());
    }
    // A database from before the check: the key must still open what is stored there.
    let existing: Option<(i64, Vec<u8>)> = with_pool!(db, |p| {
        sqlx::query_as("select id, client_secret_enc from store where client_secret_enc is not null limit 1")
            .fetch_optional(p)
            .await
    })?;
    if let Some((store_id, sealed)) = existing {
        let opened = if SecretBox::is_v1(&sealed) {
            secrets.open_v1(CLIENT_SECRET, &sealed)
        } else {
            secrets.open(CLIENT_SECRET, store_id, &sealed)
        };
        anyhow::ensure!(opened.is_ok(), WRONG_KEY);
    }
    // Two servers starting together: the first insert wins and both check against it.
    with_pool!(db, |p| {
        sqlx::query(
            "insert into secrets_key_check (id, sealed, created_at) values (1, $1, $2) on conflict (id) do nothing",
        )
        .bind(secrets.seal(PURPOSE, 1, TEXT))
        .bind(now())
        .execute(p)
        .await
        .map(|_| ())
    })
    .context("recording the secrets key check")?;
    let sealed = stored(db).await?.context("the secrets key check was not recorded")?;
    anyhow::ensure!(opens(secrets, &sealed), WRONG_KEY);
    Ok(())
}

/// Whether the check value opens to the known text, in either format (a format-1 value is
/// re-sealed by `db::reseal` right after this check).
fn opens(secrets: &SecretBox, sealed: &[u8]) -> bool {
    let opened =
        if SecretBox::is_v1(sealed) { secrets.open_v1(PURPOSE, sealed) } else { secrets.open(PURPOSE, 1, sealed) };
    opened.ok().as_deref() == Some(TEXT)
}

async fn stored(db: &Db) -> sqlx::Result<Option<Vec<u8>>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select sealed from secrets_key_check where id = 1").fetch_optional(p).await
    })
}
