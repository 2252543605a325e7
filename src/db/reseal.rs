//! Re-sealing at start of the secrets stored in format 1, whose associated data named only the
//! column, into format 2, which names the row as well (`crypto::SecretBox`). Each value is
//! replaced on its own by a compare-and-swap on the old bytes, so a server stopped half-way, or
//! two servers starting together, leave every value either old (done on the next start) or new;
//! values already in format 2 are left alone, so running it again changes nothing.

use anyhow::Context;

use super::{Db, key_check, with_pool};
use crate::{
    crypto::SecretBox,
    crypto::purpose::{ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN},
};

/// The sealed columns of `store`, each with the purpose its values were sealed for.
const STORE_COLUMNS: [(&str, &str); 3] =
    [("client_secret_enc", CLIENT_SECRET), ("refresh_token_enc", REFRESH_TOKEN), ("access_token_enc", ACCESS_TOKEN)];

type SealedRow = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Option<Vec<u8>>);

/// Re-seals every format-1 value; returns how many were rewritten.
pub async fn run(db: &Db, secrets: &SecretBox) -> anyhow::Result<u64> {
    let mut rewritten = 0;
    let check: Option<Vec<u8>> = with_pool!(db, |p| {
        sqlx::query_scalar("select sealed from secrets_key_check where id = 1").fetch_optional(p).await
    })?;
    if let Some(old) = check.filter(|v| SecretBox::is_v1(v)) {
        // The key check has just opened it, so it opens.
        let text = secrets.open_v1(key_check::PURPOSE, &old).context("re-sealing the secrets key check")?;
        let new = secrets.seal(key_check::PURPOSE, 1, &text);
        rewritten +=
            swap(db, "update secrets_key_check set sealed = $2 where id = $1 and sealed = $3", 1, Some(&new), &old)
                .await?;
    }

    let rows: Vec<SealedRow> = with_pool!(db, |p| {
        sqlx::query_as(
            "select id, client_secret_enc, refresh_token_enc, access_token_enc from store
             where client_secret_enc is not null or refresh_token_enc is not null or access_token_enc is not null",
        )
        .fetch_all(p)
        .await
    })?;
    for (store_id, client_secret, refresh, access) in rows {
        for ((column, purpose), value) in STORE_COLUMNS.into_iter().zip([client_secret, refresh, access]) {
            let Some(old) = value.filter(|v| SecretBox::is_v1(v)) else { continue };
            let sql = format!("update store set {column} = $2 where id = $1 and {column} = $3");
            let new = match secrets.open_v1(purpose, &old) {
                Ok(text) => Some(secrets.seal(purpose, store_id, &text)),
                Err(_) => {
                    // Damaged (the key itself was checked): it could never be used, so it is
                    // removed and the store page asks for it again.
                    tracing::warn!(
                        store = store_id,
                        column,
                        "a stored secret does not open; removed so it is entered again"
                    );
                    None
                }
            };
            rewritten += swap(db, &sql, store_id, new.as_deref(), &old).await?;
        }
    }
    if rewritten > 0 {
        tracing::info!(rewritten, "re-sealed secrets with their row in the associated data");
    }
    Ok(rewritten)
}

/// Runs `sql` (`$1` row, `$2` new value, `$3` old value); 1 if the old value was still there.
async fn swap(db: &Db, sql: &str, id: i64, new: Option<&[u8]>, old: &[u8]) -> sqlx::Result<u64> {
    with_pool!(db, |p| { sqlx::query(sql).bind(id).bind(new).bind(old).execute(p).await.map(|r| r.rows_affected()) })
}
