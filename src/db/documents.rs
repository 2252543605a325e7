//! 納品書 and picking lists (issue 28): each store's slip settings, the account's 棚番 per stock
//! code, and print batches (what was chosen, what is printed, what was left out and why). A
//! batch is written with one 履歴 line per printed order in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db,
    orders::{HistoryActor, OrderPk},
    with_pool,
};
use crate::domain::{AccountId, StoreId};

/// A store's 納品書 settings.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DocumentSettings {
    pub seller_name: String,
    pub address: String,
    pub phone: String,
    pub registration_number: String,
    pub registration_corporate: bool,
    pub message: String,
    pub print_comments: bool,
    pub paper: String,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        DocumentSettings {
            seller_name: String::new(),
            address: String::new(),
            phone: String::new(),
            registration_number: String::new(),
            registration_corporate: true,
            message: String::new(),
            print_comments: true,
            paper: "a4".into(),
        }
    }
}

const SETTINGS_COLUMNS: &str =
    "seller_name, address, phone, registration_number, registration_corporate, message, print_comments, paper";

/// The store's settings (the defaults when it has none yet).
pub async fn settings(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<DocumentSettings> {
    let found: Option<DocumentSettings> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select {SETTINGS_COLUMNS} from store_document where account_id = $1 and store_id = $2"
        ))
        .bind(account)
        .bind(store)
        .fetch_optional(p)
        .await
    })?;
    Ok(found.unwrap_or_default())
}

/// Saves the store's settings (the caller checked the store is the account's).
pub async fn save_settings(
    db: &Db,
    account: AccountId,
    store: StoreId,
    s: &DocumentSettings,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(&format!(
            "insert into store_document (store_id, account_id, {SETTINGS_COLUMNS}, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             on conflict (store_id) do update set seller_name = excluded.seller_name, address = excluded.address,
                 phone = excluded.phone, registration_number = excluded.registration_number,
                 registration_corporate = excluded.registration_corporate, message = excluded.message,
                 print_comments = excluded.print_comments, paper = excluded.paper, updated_at = excluded.updated_at"
        ))
        .bind(store)
        .bind(account)
        .bind(&s.seller_name)
        .bind(&s.address)
        .bind(&s.phone)
        .bind(&s.registration_number)
        .bind(s.registration_corporate)
        .bind(&s.message)
        .bind(s.print_comments)
        .bind(&s.paper)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// The account's 棚番, by stock code.
pub async fn locations(db: &Db, account: AccountId) -> sqlx::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> = with_pool!(db, |p| {
        sqlx::query_as("select code, location from item_location where account_id = $1")
            .bind(account)
            .fetch_all(p)
            .await
    })?;
    Ok(rows.into_iter().collect())
}

/// Sets 棚番 for these codes in one transaction (an empty location removes the code's).
pub async fn set_locations(
    db: &Db,
    account: AccountId,
    rows: &[(String, String)],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let pg = db.is_postgres();
    let set: Vec<serde_json::Value> =
        rows.iter().filter(|(_, l)| !l.is_empty()).map(|(c, l)| serde_json::json!([c, l])).collect();
    let cleared: Vec<serde_json::Value> =
        rows.iter().filter(|(_, l)| l.is_empty()).map(|(c, _)| serde_json::json!([c])).collect();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        if !cleared.is_empty() {
            sqlx::query(&format!(
                "delete from item_location where account_id = $1 and code in (select code from {})",
                super::json_rows(pg, 2, &[("code", "text")])
            ))
            .bind(account)
            .bind(super::json_rows_value(cleared))
            .execute(&mut *tx)
            .await?;
        }
        if !set.is_empty() {
            sqlx::query(&format!(
                "insert into item_location (account_id, code, location, updated_at)
                 select $1, code, location, $2 from {} where true
                 on conflict (account_id, code) do update set location = excluded.location, updated_at = excluded.updated_at",
                super::json_rows(pg, 3, &[("code", "text"), ("location", "text")])
            ))
            .bind(account)
            .bind(now)
            .bind(super::json_rows_value(set))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// The kinds of print batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DocumentKind {
    Slip,
    Picking,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Slip => "slip",
            DocumentKind::Picking => "picking",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentKind> {
        [DocumentKind::Slip, DocumentKind::Picking].into_iter().find(|k| k.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            DocumentKind::Slip => "納品書",
            DocumentKind::Picking => "ピッキングリスト",
        }
    }
}

/// An order left out of a batch, as stored and listed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeftOut {
    pub order_id: String,
    pub store_name: String,
    pub reason: String,
    pub held: bool,
}

/// A print batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: i64,
    pub kind: DocumentKind,
    pub orders: Vec<OrderPk>,
    pub excluded: Vec<LeftOut>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: i64,
    kind: String,
    orders: String,
    excluded: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

/// Records a batch and, for each order it prints, a 履歴 line naming the document and the
/// batch, in one transaction. Returns the batch's id.
pub async fn create_batch(
    db: &Db,
    account: AccountId,
    kind: DocumentKind,
    orders: &[OrderPk],
    excluded: &[LeftOut],
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    let pg = db.is_postgres();
    let order_json = serde_json::to_string(orders).unwrap_or_else(|_| "[]".into());
    let excluded_json = serde_json::to_string(excluded).unwrap_or_else(|_| "[]".into());
    let (actor_type, actor_name) = actor.parts();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into print_batch (account_id, kind, orders, excluded, created_by, created_at)
             values ($1, $2, $3, $4, $5, $6) returning id",
        )
        .bind(account)
        .bind(kind.as_str())
        .bind(&order_json)
        .bind(&excluded_json)
        .bind(actor_name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        if !orders.is_empty() {
            sqlx::query(&format!(
                "insert into order_history (account_id, actor_type, actor, kind, message, created_at, order_pk)
                 select $1, $3, $4, 'print', $5, $6, {}",
                super::ids_rows(pg, 2)
            ))
            .bind(account)
            .bind(super::ids_value(pg, orders.iter().map(|o| o.0)))
            .bind(actor_type)
            .bind(actor_name)
            .bind(format!("{}を印刷しました（印刷バッチ #{id}）", kind.label()))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    })
}

/// The account's batch.
pub async fn batch(db: &Db, account: AccountId, id: i64) -> sqlx::Result<Option<Batch>> {
    let row: Option<BatchRow> = with_pool!(db, |p| {
        sqlx::query_as(
            "select id, kind, orders, excluded, created_by, created_at from print_batch where account_id = $1 and id = $2",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(p)
        .await
    })?;
    Ok(row.and_then(|r| {
        Some(Batch {
            id: r.id,
            kind: DocumentKind::parse(&r.kind)?,
            orders: serde_json::from_str(&r.orders).ok()?,
            excluded: serde_json::from_str(&r.excluded).ok()?,
            created_by: r.created_by,
            created_at: r.created_at,
        })
    }))
}

/// Per order: the 出荷予定日 of its latest label file, and its parcels (the packages of its
/// shipments; orders with none are missing).
pub async fn shipping_facts(
    db: &Db,
    account: AccountId,
    pks: &[OrderPk],
) -> sqlx::Result<(HashMap<OrderPk, NaiveDate>, HashMap<OrderPk, i64>)> {
    let pg = db.is_postgres();
    let ids = super::ids_value(pg, pks.iter().map(|p| p.0));
    let dates: Vec<(OrderPk, Option<NaiveDate>)> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select sh.order_pk, e.ship_date from shipment sh
             join label_export_shipment les on les.shipment_id = sh.id
             join label_export e on e.id = les.export_id
             where sh.account_id = $1 and {} and e.ship_date is not null
             order by e.id",
            super::in_ids(pg, "sh.order_pk", 2)
        ))
        .bind(account)
        .bind(&ids)
        .fetch_all(p)
        .await
    })?;
    let packages: Vec<(OrderPk, i64)> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select order_pk, packages from shipment where account_id = $1 and {}",
            super::in_ids(pg, "order_pk", 2)
        ))
        .bind(account)
        .bind(&ids)
        .fetch_all(p)
        .await
    })?;
    // The latest export wins (rows come oldest first).
    let planned = dates.into_iter().filter_map(|(pk, d)| Some((pk, d?))).collect();
    let mut parcels: HashMap<OrderPk, i64> = HashMap::new();
    for (pk, n) in packages {
        *parcels.entry(pk).or_default() += n.max(1);
    }
    Ok((planned, parcels))
}

/// The orders of a label file (a shipping batch), for printing its 納品書 or picking list.
/// The caller's gate keeps only the reader's stores.
pub async fn export_orders(
    db: &Db,
    scope: &crate::domain::scope::OrderScope,
    export_id: i64,
) -> sqlx::Result<Vec<OrderPk>> {
    let pks: Vec<OrderPk> = with_pool!(db, |p| {
        sqlx::query_scalar(
            "select sh.order_pk from label_export_shipment les
             join shipment sh on sh.id = les.shipment_id
             join label_export e on e.id = les.export_id
             where e.account_id = $1 and e.id = $2
             order by sh.id",
        )
        .bind(scope.account)
        .bind(export_id)
        .fetch_all(p)
        .await
    })?;
    let mut seen = std::collections::HashSet::new();
    Ok(pks.into_iter().filter(|pk| seen.insert(*pk)).collect())
}
