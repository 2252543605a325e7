//! Tags on orders (issue 30): per account, named and coloured. A tag marked 出荷止め keeps the
//! orders carrying it off every shipping path, as a held order is (`domain::shipping::may_leave`
//! names it); every read of an order's shipping facts takes it through [`stop_tag_of_o`].

/// The name of a 出荷止め tag on the order aliased `o` (the first by name), as an SQL
/// expression: the one definition the status change and the shipping reads share.
macro_rules! stop_tag_of_o {
    () => {
        "(select min(t.name) from order_tag ot join tag t on t.id = ot.tag_id
          where ot.order_pk = o.id and t.stops_shipping)"
    };
}
pub(crate) use stop_tag_of_o;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    Db, WriteError,
    orders::{HistoryActor, OrderPk},
    with_pool,
};
use crate::domain::{AccountId, StoreId, scope::OrderScope};

/// A tag of the account.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Tag {
    pub id: i64,
    pub name: String,
    pub color: String,
    pub stops_shipping: bool,
}

/// The colours a tag may have: the value stored, and its name on the page.
pub const COLORS: [(&str, &str); 6] =
    [("gray", "灰"), ("red", "赤"), ("orange", "橙"), ("green", "緑"), ("blue", "青"), ("purple", "紫")];

/// Tags an account may have.
pub const MAX_TAGS: i64 = 200;

/// The account's tags, by name.
pub async fn list(db: &Db, account: AccountId) -> sqlx::Result<Vec<Tag>> {
    with_pool!(db, |p| {
        sqlx::query_as("select id, name, color, stops_shipping from tag where account_id = $1 order by name, id")
            .bind(account)
            .fetch_all(p)
            .await
    })
}

/// A new tag; `Err` in Japanese when the name is taken or the account has [`MAX_TAGS`].
pub async fn create(
    db: &Db,
    account: AccountId,
    name: &str,
    color: &str,
    stops_shipping: bool,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<i64, &'static str>> {
    let count: i64 = with_pool!(db, |p| {
        sqlx::query_scalar("select count(*) from tag where account_id = $1").bind(account).fetch_one(p).await
    })?;
    if count >= MAX_TAGS {
        return Ok(Err("タグは1アカウント200個までです"));
    }
    let color = if COLORS.iter().any(|(c, _)| *c == color) { color } else { "gray" };
    let made = with_pool!(db, |p| {
        sqlx::query_scalar(
            "insert into tag (account_id, name, color, stops_shipping, created_at) values ($1, $2, $3, $4, $5)
             returning id",
        )
        .bind(account)
        .bind(name)
        .bind(color)
        .bind(stops_shipping)
        .bind(now)
        .fetch_one(p)
        .await
    });
    match made.map_err(WriteError::classify) {
        Ok(id) => Ok(Ok(id)),
        Err(WriteError::Duplicate) => Ok(Err("同じ名前のタグがあります")),
        Err(WriteError::Db(e)) => Err(e),
    }
}

/// Deletes a tag of the account (and takes it off every order). False when there was none.
pub async fn delete(db: &Db, account: AccountId, id: i64) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query("delete from tag where account_id = $1 and id = $2")
            .bind(account)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
    })
}

/// The tags on each of these orders of the account (by name).
pub async fn of_orders(db: &Db, account: AccountId, pks: &[OrderPk]) -> sqlx::Result<HashMap<OrderPk, Vec<Tag>>> {
    let mut out: HashMap<OrderPk, Vec<Tag>> = HashMap::new();
    if pks.is_empty() {
        return Ok(out);
    }
    let pg = db.is_postgres();
    let sql = format!(
        "select ot.order_pk, t.id, t.name, t.color, t.stops_shipping from order_tag ot join tag t on t.id = ot.tag_id
         where ot.account_id = $1 and {} order by t.name, t.id",
        super::in_ids(pg, "ot.order_pk", 2)
    );
    let list = super::ids_value(pg, pks.iter().map(|p| p.0));
    let rows: Vec<(OrderPk, i64, String, String, bool)> =
        with_pool!(db, |p| sqlx::query_as(&sql).bind(account).bind(&list).fetch_all(p).await)?;
    for (pk, id, name, color, stops_shipping) in rows {
        out.entry(pk).or_default().push(Tag { id, name, color, stops_shipping });
    }
    Ok(out)
}

/// Puts a tag on an order (`add`) or takes it off, with a history line. `Err` in Japanese when
/// the tag is not the account's; `Ok(false)` when there was nothing to do. The order must be in
/// the reader's scope (else `Err`).
pub async fn set_on_order(
    db: &Db,
    scope: &OrderScope,
    pk: OrderPk,
    tag_id: i64,
    add: bool,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<bool, &'static str>> {
    let order: Option<StoreId> = with_pool!(db, |p| {
        sqlx::query_scalar("select store_id from yahoo_order where account_id = $1 and id = $2")
            .bind(scope.account)
            .bind(pk)
            .fetch_optional(p)
            .await
    })?;
    if !order.is_some_and(|store| scope.allows(store)) {
        return Ok(Err("注文が見つかりません"));
    }
    let tag: Option<Tag> = with_pool!(db, |p| {
        sqlx::query_as("select id, name, color, stops_shipping from tag where account_id = $1 and id = $2")
            .bind(scope.account)
            .bind(tag_id)
            .fetch_optional(p)
            .await
    })?;
    let Some(tag) = tag else { return Ok(Err("そのタグはありません")) };
    let (actor_type, actor_name) = actor.parts();
    let history = if add {
        format!("タグ「{}」を付けました{}", tag.name, if tag.stops_shipping { "（出荷止め）" } else { "" })
    } else {
        format!("タグ「{}」を外しました", tag.name)
    };
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let changed = if add {
            sqlx::query(
                "insert into order_tag (order_pk, tag_id, account_id, added_by, added_at) values ($1, $2, $3, $4, $5)
                 on conflict (order_pk, tag_id) do nothing",
            )
            .bind(pk)
            .bind(tag.id)
            .bind(scope.account)
            .bind(actor_name)
            .bind(now)
            .execute(&mut *tx)
            .await?
        } else {
            sqlx::query("delete from order_tag where account_id = $1 and order_pk = $2 and tag_id = $3")
                .bind(scope.account)
                .bind(pk)
                .bind(tag.id)
                .execute(&mut *tx)
                .await?
        }
        .rows_affected()
            == 1;
        if changed {
            sqlx::query(
                "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
                 values ($1, $2, $3, $4, 'tag', $5, $6)",
            )
            .bind(scope.account)
            .bind(pk)
            .bind(actor_type)
            .bind(actor_name)
            .bind(&history)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(changed))
    })
}
