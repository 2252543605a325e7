//! Which stores a user may work and whether buyers' personal data is masked for them
//! (product.md §1): read fresh on every request as an [`OrderScope`], changed by owners.

use super::{
    Db,
    audit::{self, Note},
    now, placeholders, with_pool,
};
use crate::domain::{AccountId, StoreId, UserId, scope::OrderScope, user::Role};

/// The order scope of a user of the account, in one query (the user's row and their stores);
/// `None` if there is no such user in this account. Owners work every store; their own mask
/// switch still applies.
pub async fn scope(db: &Db, account_id: AccountId, user_id: UserId) -> sqlx::Result<Option<OrderScope>> {
    let rows: Vec<(String, bool, bool, Option<StoreId>)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select u.role, u.all_stores, u.mask_personal, us.store_id
             from app_user u left join user_store us on us.user_id = u.id and us.account_id = u.account_id
             where u.account_id = $1 and u.id = $2
             order by us.store_id",
        )
        .bind(account_id)
        .bind(user_id)
        .fetch_all(p)
        .await
    })?;
    let Some((role, all_stores, mask_personal, _)) = rows.first().cloned() else {
        return Ok(None);
    };
    let limited = Role::parse(&role) != Some(Role::Owner) && !all_stores;
    let stores = limited.then(|| rows.iter().filter_map(|r| r.3).collect());
    Ok(Some(OrderScope { account: account_id, stores, mask_personal }))
}

/// The order scope of `user`, whose row was read in this request: owners and users working every
/// store need nothing more (no query); a user limited to some stores has them read.
pub async fn scope_of_user(db: &Db, user: &crate::db::accounts::User) -> sqlx::Result<Option<OrderScope>> {
    if user.is_owner() || user.all_stores {
        return Ok(Some(OrderScope { account: user.account_id, stores: None, mask_personal: user.mask_personal }));
    }
    scope(db, user.account_id, user.id).await
}

/// What the users page shows and edits for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub user_id: UserId,
    pub all_stores: bool,
    pub stores: Vec<StoreId>,
    pub mask_personal: bool,
}

impl Access {
    pub fn has(&self, store: &StoreId) -> bool {
        self.stores.contains(store)
    }
}

/// Every user's access in the account, by user id.
pub async fn list(db: &Db, account_id: AccountId) -> sqlx::Result<Vec<Access>> {
    let rows: Vec<(UserId, bool, bool, Option<StoreId>)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select u.id, u.all_stores, u.mask_personal, us.store_id
             from app_user u left join user_store us on us.user_id = u.id and us.account_id = u.account_id
             where u.account_id = $1
             order by u.id, us.store_id",
        )
        .bind(account_id)
        .fetch_all(p)
        .await
    })?;
    let mut out: Vec<Access> = Vec::new();
    for (user_id, all_stores, mask_personal, store) in rows {
        if out.last().is_none_or(|a| a.user_id != user_id) {
            out.push(Access { user_id, all_stores, stores: Vec::new(), mask_personal });
        }
        if let (Some(a), Some(s)) = (out.last_mut(), store) {
            a.stores.push(s);
        }
    }
    Ok(out)
}

/// Sets a user's stores and mask switch in one transaction. Only stores of this account are
/// kept (others' ids are ignored). False if there is no such user in this account. Sessions
/// are untouched: the next request reads the new scope. `note`, if any, is written in the same
/// transaction.
pub async fn set(
    db: &Db,
    account_id: AccountId,
    user_id: UserId,
    all_stores: bool,
    stores: &[StoreId],
    mask_personal: bool,
    note: Option<&Note>,
) -> sqlx::Result<bool> {
    let insert = format!(
        "insert into user_store (user_id, store_id, account_id)
         select $2, id, account_id from store where account_id = $1 and id in ({})",
        placeholders(3, stores.len())
    );
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let found = sqlx::query(
            "update app_user set all_stores = $3, mask_personal = $4, updated_at = $5
             where account_id = $1 and id = $2",
        )
        .bind(account_id)
        .bind(user_id)
        .bind(all_stores)
        .bind(mask_personal)
        .bind(now())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !found {
            return Ok(false);
        }
        sqlx::query("delete from user_store where account_id = $1 and user_id = $2")
            .bind(account_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if !all_stores && !stores.is_empty() {
            let mut q = sqlx::query(&insert).bind(account_id).bind(user_id);
            for s in stores {
                q = q.bind(*s);
            }
            q.execute(&mut *tx).await?;
        }
        if let Some(note) = note {
            audit::record_in(&mut *tx, note).await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}
