//! The shipping day's records (issue 33): a store's 出荷設定 and label mapping, shipments
//! (parcels) and their tracking numbers, label files exported, and issued-data files uploaded.
//!
//! Every read takes the reader's [`OrderScope`]; every tracking number is written by
//! [`set_tracking_in`], in the same transaction as the order's move to 出荷済み and the pushes
//! that tell Yahoo (`changes::ChangeTx`), so a tracking number is never stored without its status
//! change, nor queued twice.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db,
    changes::ChangeTx,
    orders::{HistoryActor, OrderPk},
    placeholders, scope_condition, with_pool,
};
use crate::{
    carrier::{Carrier, Cool, LabelFormat},
    domain::{
        AccountId, StoreId,
        order::{FraudHoldStatus, OrderStatus},
        scope::OrderScope,
        shipping::{self, LeaveFacts, MappingRow},
        status::{ChangeRequest, Plan, Refusal, ShipInput},
        store::InternalStatus,
    },
};

/// A store's 出荷設定 (the sender block, carrier codes, label defaults, prepay methods).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Settings {
    pub sender_name: String,
    pub sender_kana: String,
    pub sender_phone: String,
    pub sender_zip: String,
    pub sender_address: String,
    pub sender_building: String,
    pub b2_customer_code: String,
    pub b2_class_code: String,
    pub b2_freight_no: String,
    pub handling1: String,
    pub handling2: String,
    pub item_name: String,
    pub ehiden_customer_code: String,
    pub ehiden_cool_codes: String,
    pub ehiden_date_format: String,
    pub prepay_methods: String,
    pub default_format: String,
    pub default_service: String,
    /// 出荷後の自動完了: days after an order's first tracking number when a paid order is
    /// completed at Yahoo (IsPointFix); 0 is off.
    pub complete_after_days: i64,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            sender_name: String::new(),
            sender_kana: String::new(),
            sender_phone: String::new(),
            sender_zip: String::new(),
            sender_address: String::new(),
            sender_building: String::new(),
            b2_customer_code: String::new(),
            b2_class_code: String::new(),
            b2_freight_no: "01".into(),
            handling1: String::new(),
            handling2: String::new(),
            item_name: String::new(),
            ehiden_customer_code: String::new(),
            ehiden_cool_codes: "001,002,003".into(),
            ehiden_date_format: "compact".into(),
            prepay_methods: shipping::DEFAULT_PREPAY_METHODS.into(),
            default_format: LabelFormat::B2.as_str().into(),
            default_service: "0".into(),
            complete_after_days: 0,
        }
    }
}

impl Settings {
    /// The row used when no mapping row matches.
    pub fn fallback(&self) -> MappingRow {
        MappingRow {
            ship_method: String::new(),
            pay_method: String::new(),
            format: LabelFormat::parse(&self.default_format).unwrap_or(LabelFormat::B2),
            service: self.default_service.clone(),
            cool: Cool::Normal,
        }
    }
}

const SETTINGS_COLUMNS: &str = "sender_name, sender_kana, sender_phone, sender_zip, sender_address, sender_building,
    b2_customer_code, b2_class_code, b2_freight_no, handling1, handling2, item_name, ehiden_customer_code,
    ehiden_cool_codes, ehiden_date_format, prepay_methods, default_format, default_service, complete_after_days";

/// The settings of each of these stores (see [`settings`]).
pub async fn settings_of(
    db: &Db,
    account: AccountId,
    stores: Vec<StoreId>,
) -> sqlx::Result<std::collections::HashMap<StoreId, (Settings, Vec<MappingRow>)>> {
    let mut out = std::collections::HashMap::new();
    for store in stores {
        if let std::collections::hash_map::Entry::Vacant(e) = out.entry(store) {
            e.insert(settings(db, account, store).await?);
        }
    }
    Ok(out)
}

/// A store's settings and mapping rows: the defaults until the owner saves them.
pub async fn settings(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<(Settings, Vec<MappingRow>)> {
    let saved: Option<Settings> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select {SETTINGS_COLUMNS} from store_shipping where account_id = $1 and store_id = $2"
        ))
        .bind(account)
        .bind(store)
        .fetch_optional(p)
        .await
    })?;
    let Some(saved) = saved else { return Ok((Settings::default(), shipping::default_mapping())) };
    let rows: Vec<(String, String, String, String, String)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select ship_method, pay_method, format, service, cool from ship_mapping
             where account_id = $1 and store_id = $2 order by position",
        )
        .bind(account)
        .bind(store)
        .fetch_all(p)
        .await
    })?;
    let rows = rows
        .into_iter()
        .map(|(ship_method, pay_method, format, service, cool)| MappingRow {
            ship_method,
            pay_method,
            format: LabelFormat::parse(&format).unwrap_or(LabelFormat::B2),
            service,
            cool: Cool::parse(&cool).unwrap_or(Cool::Normal),
        })
        .collect();
    Ok((saved, rows))
}

/// Saves a store's settings and replaces its mapping rows, in one transaction.
pub async fn save_settings(
    db: &Db,
    account: AccountId,
    store: StoreId,
    s: &Settings,
    rows: &[MappingRow],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("delete from store_shipping where account_id = $1 and store_id = $2")
            .bind(account)
            .bind(store)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "insert into store_shipping (store_id, account_id, {SETTINGS_COLUMNS}, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ))
        .bind(store)
        .bind(account)
        .bind(&s.sender_name)
        .bind(&s.sender_kana)
        .bind(&s.sender_phone)
        .bind(&s.sender_zip)
        .bind(&s.sender_address)
        .bind(&s.sender_building)
        .bind(&s.b2_customer_code)
        .bind(&s.b2_class_code)
        .bind(&s.b2_freight_no)
        .bind(&s.handling1)
        .bind(&s.handling2)
        .bind(&s.item_name)
        .bind(&s.ehiden_customer_code)
        .bind(&s.ehiden_cool_codes)
        .bind(&s.ehiden_date_format)
        .bind(&s.prepay_methods)
        .bind(&s.default_format)
        .bind(&s.default_service)
        .bind(s.complete_after_days)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("delete from ship_mapping where account_id = $1 and store_id = $2")
            .bind(account)
            .bind(store)
            .execute(&mut *tx)
            .await?;
        for (i, r) in rows.iter().enumerate() {
            sqlx::query(
                "insert into ship_mapping (account_id, store_id, position, ship_method, pay_method, format, service, cool)
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(account)
            .bind(store)
            .bind(i as i64)
            .bind(&r.ship_method)
            .bind(&r.pay_method)
            .bind(r.format.as_str())
            .bind(&r.service)
            .bind(r.cool.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    })
}

/// An order as the shipping paths need it: the gate's facts and the label's data.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ShipOrder {
    pub pk: OrderPk,
    pub store_id: StoreId,
    pub store_name: String,
    pub order_id: String,
    pub internal_status: String,
    pub order_status: i64,
    pub fraud_hold_status: i64,
    pub pay_status: Option<i64>,
    pub pay_method: String,
    pub pay_method_name: String,
    pub ship_method: String,
    pub ship_method_name: String,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: String,
    pub ship_last_name: String,
    pub ship_first_name: String,
    pub ship_last_name_kana: String,
    pub ship_first_name_kana: String,
    pub ship_zip_code: String,
    pub ship_prefecture: String,
    pub ship_city: String,
    pub ship_address1: String,
    pub ship_address2: String,
    pub ship_phone: String,
    pub total_price: i64,
    pub first_title: Option<String>,
    /// A 出荷止め tag it carries (see `db::tags`).
    pub stop_tag: Option<String>,
    /// What a rule set for its label (`order_label`): the file format, the B2 service, and
    /// お届け希望日 left blank.
    pub label_format: Option<String>,
    pub label_service: Option<String>,
    pub clear_delivery_date: Option<bool>,
}

impl ShipOrder {
    pub fn leave_facts(&self, prepay_methods: &str) -> LeaveFacts {
        let small = |v: i64| u8::try_from(v).ok();
        LeaveFacts {
            internal_status: InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New),
            yahoo_status: small(self.order_status).and_then(OrderStatus::from_code),
            fraud_hold: FraudHoldStatus::from_code(small(self.fraud_hold_status).or(Some(u8::MAX)))
                .unwrap_or(FraudHoldStatus::UnderReview),
            unpaid: shipping::unpaid(
                prepay_methods,
                &self.pay_method,
                &self.pay_method_name,
                self.pay_status.and_then(small),
            ),
            stop_tag: self.stop_tag.clone(),
        }
    }

    pub fn recipient_name(&self) -> String {
        format!("{} {}", self.ship_last_name, self.ship_first_name).trim().to_owned()
    }
}

const SHIP_ORDER_SQL: &str = concat!(
    "select o.id as pk, o.store_id, s.name as store_name, o.order_id, o.internal_status,
        o.order_status, o.fraud_hold_status, o.pay_status, o.pay_method, o.pay_method_name, o.ship_method,
        o.ship_method_name, o.ship_request_date, o.ship_request_time, o.ship_last_name, o.ship_first_name,
        o.ship_last_name_kana, o.ship_first_name_kana, o.ship_zip_code, o.ship_prefecture, o.ship_city,
        o.ship_address1, o.ship_address2, o.ship_phone, o.total_price,
        (select i.title from order_item i where i.order_pk = o.id order by i.line_id limit 1) as first_title, ",
    crate::db::tags::stop_tag_of_o!(),
    " as stop_tag, ol.format as label_format, ol.service as label_service, ol.clear_delivery_date
     from yahoo_order o join store s on s.id = o.store_id and s.account_id = o.account_id
     left join order_label ol on ol.order_pk = o.id
     where o.account_id = $1"
);

/// The chosen orders in the reader's scope (others are left out, as if they did not exist), in
/// the order given.
pub async fn orders(db: &Db, scope: &OrderScope, pks: &[OrderPk]) -> sqlx::Result<Vec<ShipOrder>> {
    let ids: Vec<i64> = pks.iter().map(|p| p.0).collect();
    let mut out: Vec<ShipOrder> = scoped_in(db, scope, SHIP_ORDER_SQL, "o.store_id", "o.id", &ids).await?;
    let position: std::collections::HashMap<OrderPk, usize> = pks.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    out.sort_by_key(|o| position.get(&o.pk).copied().unwrap_or(usize::MAX));
    Ok(out)
}

/// The orders waiting for shipment (出荷待ち) in the scope, newest first, at most `limit`.
pub async fn awaiting(db: &Db, scope: &OrderScope, limit: i64) -> sqlx::Result<Vec<OrderPk>> {
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "select o.id from yahoo_order o where o.account_id = $1 and o.internal_status = 'awaiting_shipment'{}
         order by o.order_time desc, o.id desc limit ${}",
        scope_condition(scope, "o.store_id", 2),
        2 + scoped
    );
    let ids: Vec<i64> = with_pool!(db, |p| {
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(limit).fetch_all(p).await
    })?;
    Ok(ids.into_iter().map(OrderPk).collect())
}

/// A shipment (one parcel).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Shipment {
    pub id: i64,
    pub store_id: StoreId,
    pub order_pk: OrderPk,
    pub parcel_no: i64,
    pub format: String,
    pub service: String,
    pub cool: String,
    pub packages: i64,
    pub item_name: String,
    pub tracking_number: Option<String>,
    pub exported_at: Option<DateTime<Utc>>,
}

impl Shipment {
    /// お客様管理番号: the key a carrier's issued-data file gives back.
    pub fn management_no(&self) -> String {
        management_no(self.id)
    }

    pub fn format_label(&self) -> &'static str {
        LabelFormat::parse(&self.format).map_or("不明", |f| f.label())
    }

    /// The carrier's tracking page for its number.
    pub fn tracking_url(&self) -> Option<String> {
        let n = self.tracking_number.as_deref()?;
        LabelFormat::parse(&self.format).map(|f| f.carrier().tracking_url(n))
    }
}

/// An order's parcels, in the reader's scope.
pub async fn of_order(db: &Db, scope: &OrderScope, order: OrderPk) -> sqlx::Result<Vec<Shipment>> {
    let rows: Vec<Shipment> = with_pool!(db, |p| {
        sqlx::query_as(&format!(
            "select {SHIPMENT_COLUMNS} from shipment where account_id = $1 and order_pk = $2 order by parcel_no"
        ))
        .bind(scope.account)
        .bind(order)
        .fetch_all(p)
        .await
    })?;
    Ok(rows.into_iter().filter(|s| scope.allows(s.store_id)).collect())
}

/// お客様管理番号 of a shipment: `OD` and its number (half-width letters and digits, ≤ 20).
pub fn management_no(shipment_id: i64) -> String {
    format!("OD{shipment_id}")
}

/// The shipment a お客様管理番号 names, if it is one of ours.
pub fn shipment_of(management_no: &str) -> Option<i64> {
    management_no.trim().strip_prefix("OD").and_then(|n| n.parse().ok()).filter(|n: &i64| *n > 0)
}

/// A shipment's columns, and when it was last exported (from the exports that hold it).
const SHIPMENT_COLUMNS: &str = "id, store_id, order_pk, parcel_no, format, service, cool, packages, item_name,
    tracking_number,
    (select max(les.exported_at) from label_export_shipment les where les.shipment_id = shipment.id) as exported_at";

/// The first parcel of each order, made from the store's mapping where it does not exist yet;
/// then every shipment of these orders. `label` gives each order's mapping row.
pub async fn ensure_shipments(
    db: &Db,
    account: AccountId,
    orders: &[(&ShipOrder, &MappingRow)],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Shipment>> {
    let pg = db.is_postgres();
    let select = format!(
        "select {SHIPMENT_COLUMNS} from shipment where account_id = $1 and {} order by order_pk, parcel_no",
        super::in_ids(pg, "order_pk", 2)
    );
    let read = |pks: Vec<i64>| {
        let list = super::ids_value(pg, pks);
        let select = select.clone();
        async move {
            with_pool!(db, |p| sqlx::query_as::<_, Shipment>(&select).bind(account).bind(&list).fetch_all(p).await)
        }
    };
    let mut out = read(orders.iter().map(|(o, _)| o.pk.0).collect()).await?;
    let have: std::collections::HashSet<OrderPk> = out.iter().map(|s| s.order_pk).collect();
    let missing: Vec<&(&ShipOrder, &MappingRow)> = orders.iter().filter(|(o, _)| !have.contains(&o.pk)).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    // Multi-row statements in one transaction: a round trip per few dozen orders, not per order.
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        for part in missing.chunks(db.rows_per_statement(5).max(20)) {
            let rows: Vec<String> = (0..part.len())
                .map(|i| {
                    let b = 3 + i * 5;
                    format!("($1, ${}, ${}, 1, ${}, ${}, ${}, 1, '', $2, $2)", b, b + 1, b + 2, b + 3, b + 4)
                })
                .collect();
            let insert = format!(
                "insert into shipment (account_id, store_id, order_pk, parcel_no, format, service, cool, packages,
                     item_name, created_at, updated_at)
                 values {}
                 on conflict (order_pk, parcel_no) do nothing",
                rows.join(", ")
            );
            let mut q = sqlx::query(&insert).bind(account).bind(now);
            for (o, row) in part {
                q = q.bind(o.store_id).bind(o.pk).bind(row.format.as_str()).bind(&row.service).bind(row.cool.as_str());
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    })?;
    out.extend(read(missing.iter().map(|(o, _)| o.pk.0).collect()).await?);
    out.sort_by_key(|s| (s.order_pk, s.parcel_no));
    Ok(out)
}

/// Shipments by id in the reader's scope (for matching an issued-data file).
pub async fn shipments(db: &Db, scope: &OrderScope, ids: &[i64]) -> sqlx::Result<Vec<Shipment>> {
    let select = format!("select {SHIPMENT_COLUMNS} from shipment where account_id = $1");
    scoped_in(db, scope, &select, "store_id", "id", ids).await
}

/// Rows of `select` (which binds the account as `$1`) whose `id_column` is one of `ids`, in the
/// reader's stores (`store_column`), in one statement.
async fn scoped_in<T>(
    db: &Db,
    scope: &OrderScope,
    select: &str,
    store_column: &str,
    id_column: &str,
    ids: &[i64],
) -> sqlx::Result<Vec<T>>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "{select}{} and {}",
        scope_condition(scope, store_column, 2),
        super::in_ids(db.is_postgres(), id_column, 2 + scoped)
    );
    let list = super::ids_value(db.is_postgres(), ids.iter().copied());
    with_pool!(db, |p| {
        let mut q = sqlx::query_as::<_, T>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(&list).fetch_all(p).await
    })
}

/// A label file to record.
pub struct NewExport<'a> {
    pub format: LabelFormat,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub body: &'a [u8],
    pub shipments: &'a [i64],
    pub reexport: bool,
    pub by: &'a str,
    /// The 出荷予定日 the file was written with.
    pub ship_date: chrono::NaiveDate,
}

/// Records an export (who, when, which shipments, the file and its hash) and marks its
/// shipments exported, in one transaction. Returns the export's id.
pub async fn record_export(db: &Db, account: AccountId, e: &NewExport<'_>, now: DateTime<Utc>) -> sqlx::Result<i64> {
    use sha2::Digest;
    let hash = hex(&sha2::Sha256::digest(e.body));
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "insert into label_export (account_id, format, file_name, content_type, file_hash, body, rows, reexport,
                 created_by, created_at, ship_date)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning id",
        )
        .bind(account)
        .bind(e.format.as_str())
        .bind(e.file_name)
        .bind(e.content_type)
        .bind(&hash)
        .bind(e.body)
        .bind(e.shipments.len() as i64)
        .bind(e.reexport)
        .bind(e.by)
        .bind(now)
        .bind(e.ship_date)
        .fetch_one(&mut *tx)
        .await?;
        let pg = db.is_postgres();
        let list = super::ids_value(pg, e.shipments.iter().copied());
        sqlx::query(&format!(
            "insert into label_export_shipment (export_id, exported_at, shipment_id) select $1, $2, {}",
            super::ids_rows(pg, 3)
        ))
        .bind(id)
        .bind(now)
        .bind(&list)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    })
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An export as the 出荷 page lists it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ExportView {
    pub id: i64,
    pub format: String,
    pub file_name: String,
    pub rows: i64,
    pub reexport: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl ExportView {
    pub fn format_label(&self) -> &'static str {
        LabelFormat::parse(&self.format).map_or("不明", |f| f.label())
    }
}

/// The condition that keeps exports (and uploads) whose shipments are all in the scope's stores.
fn exports_in_scope(scope: &OrderScope, first: usize) -> String {
    match &scope.stores {
        None => String::new(),
        Some(stores) if stores.is_empty() => " and 1 = 0".into(),
        Some(stores) => format!(
            " and not exists (select 1 from label_export_shipment les join shipment sh on sh.id = les.shipment_id
                 where les.export_id = e.id and sh.store_id not in ({}))",
            placeholders(first, stores.len())
        ),
    }
}

/// The newest exports the reader may see.
pub async fn exports(db: &Db, scope: &OrderScope, limit: i64) -> sqlx::Result<Vec<ExportView>> {
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "select e.id, e.format, e.file_name, e.rows, e.reexport, e.created_by, e.created_at from label_export e
         where e.account_id = $1{} order by e.id desc limit ${}",
        exports_in_scope(scope, 2),
        2 + scoped
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as::<_, ExportView>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(limit).fetch_all(p).await
    })
}

/// One export's file (name, content type, bytes), if the reader may see it.
pub async fn export_file(db: &Db, scope: &OrderScope, id: i64) -> sqlx::Result<Option<(String, String, Vec<u8>)>> {
    let sql = format!(
        "select e.file_name, e.content_type, e.body from label_export e where e.account_id = $1 and e.id = $2{}",
        exports_in_scope(scope, 3)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as::<_, (String, String, Vec<u8>)>(&sql).bind(scope.account).bind(id);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.fetch_optional(p).await
    })
}

/// What setting a tracking number did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackingOutcome {
    /// Stored, and the order moved to 出荷済み (with its pushes queued) where it was not yet.
    Set(Option<Plan>),
    /// The shipment has this number already: nothing to do.
    Same,
    /// The shipment has another number: left as it is.
    Conflict(String),
    /// The order may not leave (or the status change was refused): nothing written.
    Refused(Refusal),
}

/// A tracking number to set on a shipment.
#[derive(Clone, Debug)]
pub struct NewTracking {
    pub shipment_id: i64,
    pub order_pk: OrderPk,
    pub carrier: Carrier,
    pub number: String,
    pub ship_date: NaiveDate,
    pub unpaid_confirmed: bool,
}

/// Sets tracking numbers inside the caller's transaction: each shipment's number (only where it
/// has none) and its order's move to 出荷済み with the pushes, both or neither, a few statements
/// for a few hundred numbers. An order's first number goes to Yahoo; a later parcel's (in this
/// call or after) is kept on its shipment. Outcomes are in the order of `numbers`.
pub(crate) async fn set_tracking_in<C>(
    conn: &mut C,
    scope: &OrderScope,
    numbers: &[NewTracking],
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<TrackingOutcome>>
where
    C: ChangeTx + TrackingTx + super::buyer_mail::BuyerMailTx + super::mail::MailTx + super::orders::BatchDialect,
{
    let by = match actor {
        HistoryActor::Job => "orderdesk",
        HistoryActor::User(n) | HistoryActor::Support(n) => n.as_str(),
    };
    let mut out: Vec<Option<TrackingOutcome>> = numbers.iter().map(|_| None).collect();
    // A second parcel of an order is set after the first, on what the first wrote.
    for wave in super::changes::waves(numbers.iter().map(|t| t.order_pk)) {
        let ids: Vec<i64> = wave.iter().map(|&i| numbers[i].shipment_id).collect();
        let current = conn.shipment_numbers(scope.account, &ids).await?;
        let mut asked: Vec<(usize, ChangeRequest)> = Vec::new();
        for &i in &wave {
            let t = &numbers[i];
            let found =
                current.get(&t.shipment_id).filter(|(store, order, _)| *order == t.order_pk && scope.allows(*store));
            out[i] = match found {
                None => Some(TrackingOutcome::Refused(Refusal::NotFound)),
                Some((_, _, Some(n))) if *n == t.number => Some(TrackingOutcome::Same),
                Some((_, _, Some(n))) => Some(TrackingOutcome::Conflict(n.clone())),
                Some((_, _, None)) => {
                    let ship = ShipInput {
                        company_code: t.carrier.company_code().to_owned(),
                        invoice_number: t.number.clone(),
                        ship_date: t.ship_date,
                        ship_url: t.carrier.tracking_url(&t.number),
                    };
                    let req = ChangeRequest {
                        target: InternalStatus::Shipped,
                        cancel_reason: None,
                        ship: Some(ship),
                        unpaid_confirmed: t.unpaid_confirmed,
                    };
                    asked.push((i, req));
                    None
                }
            };
        }
        let changes: Vec<(OrderPk, &ChangeRequest)> =
            asked.iter().map(|(i, req)| (numbers[*i].order_pk, req)).collect();
        let plans = conn.change_orders(scope, &changes, actor, now).await?;
        let mut stored: Vec<&NewTracking> = Vec::new();
        for ((i, _), plan) in asked.iter().zip(plans) {
            out[*i] = Some(match plan {
                Ok(plan) => TrackingOutcome::Set(Some(plan)),
                // A second parcel of an order already 出荷済み: its number is kept on the shipment.
                Err(Refusal::Unchanged(InternalStatus::Shipped)) => TrackingOutcome::Set(None),
                Err(refusal) => TrackingOutcome::Refused(refusal),
            });
            if matches!(out[*i], Some(TrackingOutcome::Set(_))) {
                stored.push(&numbers[*i]);
            }
        }
        conn.store_numbers(scope.account, &stored, by, now).await?;
        // The buyer's 発送連絡, where the store sends one, with the number that shipped it.
        let shipped: Vec<super::buyer_mail::Shipped> = stored
            .iter()
            .map(|t| super::buyer_mail::Shipped {
                order: t.order_pk,
                carrier: t.carrier,
                number: t.number.clone(),
                ship_date: t.ship_date,
            })
            .collect();
        super::buyer_mail::queue_ship_notices(conn, scope.account, &shipped, actor, now).await?;
    }
    Ok(out.into_iter().map(|o| o.unwrap_or(TrackingOutcome::Refused(Refusal::NotFound))).collect())
}

/// The shipment reads and writes of [`set_tracking_in`], once for both backends' connections.
pub(crate) trait TrackingTx {
    /// The account's shipments among `ids`: store, order and number.
    async fn shipment_numbers(
        &mut self,
        account: AccountId,
        ids: &[i64],
    ) -> sqlx::Result<std::collections::HashMap<i64, (StoreId, OrderPk, Option<String>)>>;
    /// Each shipment's number (where it has none), and its label format from the carrier.
    async fn store_numbers(
        &mut self,
        account: AccountId,
        numbers: &[&NewTracking],
        by: &str,
        now: DateTime<Utc>,
    ) -> sqlx::Result<()>;
}

/// The label format of a carrier's parcels (a number typed for another carrier than the
/// mapping chose re-labels the parcel, so its tracking link goes to the right carrier).
pub fn format_of(carrier: Carrier) -> LabelFormat {
    match carrier {
        Carrier::Yamato => LabelFormat::B2,
        Carrier::Sagawa => LabelFormat::Ehiden,
        Carrier::JapanPost => LabelFormat::ClickPost,
    }
}

macro_rules! tracking_tx {
    ($conn:ty) => {
        impl TrackingTx for $conn {
            async fn shipment_numbers(
                &mut self,
                account: AccountId,
                ids: &[i64],
            ) -> sqlx::Result<std::collections::HashMap<i64, (StoreId, OrderPk, Option<String>)>> {
                let mut out = std::collections::HashMap::with_capacity(ids.len());
                for part in ids.chunks(super::changes::rows_per_statement(Self::PARAMS_PER_STATEMENT, 1, 1)) {
                    let sql = format!(
                        "select id, store_id, order_pk, tracking_number from shipment where account_id = $1 and id in ({})",
                        placeholders(2, part.len())
                    );
                    let mut q = sqlx::query_as::<_, (i64, StoreId, OrderPk, Option<String>)>(&sql).bind(account);
                    for id in part {
                        q = q.bind(*id);
                    }
                    out.extend(q.fetch_all(&mut *self).await?.into_iter().map(|(id, s, o, n)| (id, (s, o, n))));
                }
                Ok(out)
            }

            async fn store_numbers(
                &mut self,
                account: AccountId,
                numbers: &[&NewTracking],
                by: &str,
                now: DateTime<Utc>,
            ) -> sqlx::Result<()> {
                for part in numbers.chunks(super::changes::rows_per_statement(Self::PARAMS_PER_STATEMENT, 3, 3)) {
                    let values: Vec<String> =
                        (0..part.len()).map(|i| format!("(${}, ${}, ${})", 4 + 3 * i, 5 + 3 * i, 6 + 3 * i)).collect();
                    let sql = format!(
                        "with v (id, number, format) as (values {})
                         update shipment set tracking_number = v.number, tracking_set_at = $2, tracking_set_by = $3,
                             format = v.format, updated_at = $2
                         from v where shipment.account_id = $1 and shipment.id = v.id and shipment.tracking_number is null",
                        values.join(", ")
                    );
                    let mut q = sqlx::query(&sql).bind(account).bind(now).bind(by);
                    for t in part {
                        q = q.bind(t.shipment_id).bind(&t.number).bind(format_of(t.carrier).as_str());
                    }
                    q.execute(&mut *self).await?;
                }
                Ok(())
            }
        }
    };
}

tracking_tx!(sqlx::SqliteConnection);
tracking_tx!(sqlx::PgConnection);

/// Sets one tracking number by hand, in a transaction of its own.
pub async fn set_tracking(
    db: &Db,
    scope: &OrderScope,
    t: &NewTracking,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<TrackingOutcome> {
    let (db, scope, t, actor) = (db.clone(), scope.clone(), t.clone(), actor.clone());
    tokio::spawn(crate::telemetry::keeping_request_id(async move {
        with_pool!(&db, |p| {
            let mut tx = p.begin().await?;
            let outcome = set_tracking_in(&mut *tx, &scope, std::slice::from_ref(&t), &actor, now).await?;
            tx.commit().await?;
            Ok(outcome.into_iter().next().unwrap_or(TrackingOutcome::Refused(Refusal::NotFound)))
        })
    }))
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the tracking task ended: {e}")))?
}

/// An uploaded issued-data file's row as the preview matched it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    pub line_no: i64,
    pub management_no: String,
    pub tracking_number: String,
    pub shipment_id: Option<i64>,
    pub order_pk: Option<OrderPk>,
    /// `matched`, `unknown`, `held`, `unpaid`, `same`, `conflict`, `invalid`, then after
    /// applying `applied` or `refused`.
    pub outcome: String,
    pub message: String,
    pub applied: bool,
}

/// An upload as recorded.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Upload {
    pub id: i64,
    pub file_name: String,
    pub format: String,
    pub state: String,
    pub rows: i64,
    pub applied_rows: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// An issued-data file to record, as the preview matched it.
pub struct NewUpload<'a> {
    /// SHA-256 of the file's bytes: the same file is recorded once per account.
    pub hash: &'a str,
    pub file_name: &'a str,
    pub format: LabelFormat,
    pub rows: &'a [UploadRow],
    pub by: &'a str,
}

/// Records a previewed upload with its rows; an account's same file (by hash) is recorded once:
/// `Err(id)` names the earlier upload.
pub async fn save_upload(
    db: &Db,
    account: AccountId,
    u: &NewUpload<'_>,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<i64, i64>> {
    let NewUpload { hash, file_name, format, rows, by } = *u;
    let earlier: Option<i64> = with_pool!(db, |p| {
        sqlx::query_scalar("select id from tracking_upload where account_id = $1 and file_hash = $2")
            .bind(account)
            .bind(hash)
            .fetch_optional(p)
            .await
    })?;
    if let Some(id) = earlier {
        return Ok(Err(id));
    }
    let saved = with_pool!(db, |p| {
        async {
            let mut tx = p.begin().await?;
            let id: i64 = sqlx::query_scalar(
                "insert into tracking_upload (account_id, file_hash, file_name, format, state, rows, created_by, created_at)
                 values ($1, $2, $3, $4, 'previewed', $5, $6, $7) returning id",
            )
            .bind(account)
            .bind(hash)
            .bind(file_name)
            .bind(format.as_str())
            .bind(rows.len() as i64)
            .bind(by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            // Multi-row statements: a round trip per 500 rows.
            for part in rows.chunks(500) {
                let values: Vec<String> = (0..part.len())
                    .map(|i| {
                        let b = 2 + i * 7;
                        format!("($1, ${}, ${}, ${}, ${}, ${}, ${}, ${})", b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6)
                    })
                    .collect();
                let insert = format!(
                    "insert into tracking_upload_row (upload_id, line_no, management_no, tracking_number, shipment_id,
                         order_pk, outcome, message)
                     values {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(&insert).bind(id);
                for r in part {
                    q = q
                        .bind(r.line_no)
                        .bind(&r.management_no)
                        .bind(&r.tracking_number)
                        .bind(r.shipment_id)
                        .bind(r.order_pk)
                        .bind(&r.outcome)
                        .bind(&r.message);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(id)
        }
        .await
    });
    match saved {
        Ok(id) => Ok(Ok(id)),
        // Two uploads of one file at once: the other one was recorded first.
        Err(e) if super::is_unique_violation(&e) => {
            let id: i64 = with_pool!(db, |p| {
                sqlx::query_scalar("select id from tracking_upload where account_id = $1 and file_hash = $2")
                    .bind(account)
                    .bind(hash)
                    .fetch_one(p)
                    .await
            })?;
            Ok(Err(id))
        }
        Err(e) => Err(e),
    }
}

/// An upload and its rows, if it is the account's.
pub async fn upload(db: &Db, account: AccountId, id: i64) -> sqlx::Result<Option<(Upload, Vec<UploadRow>)>> {
    let head: Option<Upload> = with_pool!(db, |p| {
        sqlx::query_as(
            "select id, file_name, format, state, rows, applied_rows, created_by, created_at from tracking_upload
             where account_id = $1 and id = $2",
        )
        .bind(account)
        .bind(id)
        .fetch_optional(p)
        .await
    })?;
    let Some(head) = head else { return Ok(None) };
    let rows: Vec<UploadRow> = with_pool!(db, |p| {
        sqlx::query_as(
            "select line_no, management_no, tracking_number, shipment_id, order_pk, outcome, message, applied
             from tracking_upload_row where upload_id = $1 order by line_no",
        )
        .bind(id)
        .fetch_all(p)
        .await
    })?;
    Ok(Some((head, rows)))
}

/// How applying an upload went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub set: usize,
    pub refused: usize,
    /// Rows applied before (an earlier, interrupted apply).
    pub earlier: usize,
}

/// How an upload's rows are applied.
#[derive(Clone, Copy, Debug)]
pub struct ApplyHow {
    /// The file's carrier (Yahoo's ShipCompanyCode, the tracking URL).
    pub carrier: Carrier,
    pub ship_date: NaiveDate,
    /// The merchant's 「入金前の注文も出荷済みにする」 for the rows the preview found unpaid.
    pub confirm_unpaid: bool,
}

/// Rows applied per transaction: each row is applied once or not at all, and an apply cut off
/// (a killed process) goes on where it stopped when it is run again.
const APPLY_CHUNK: i64 = 200;

/// Applies an upload's matched rows (and its unpaid rows the merchant confirmed), in
/// transactions of [`APPLY_CHUNK`] rows. Each row's tracking number, status change, pushes and
/// `applied` mark commit together. Rows are re-checked as they are applied (an order held
/// since the preview is refused then). `None`: not the account's upload.
pub async fn apply_upload(
    db: &Db,
    scope: &OrderScope,
    id: i64,
    how: &ApplyHow,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Applied>> {
    let ApplyHow { carrier, ship_date, confirm_unpaid } = *how;
    let Some((head, rows)) = upload(db, scope.account, id).await? else { return Ok(None) };
    let mut applied = Applied { earlier: rows.iter().filter(|r| r.applied).count(), ..Applied::default() };
    if head.state == "applied" {
        return Ok(Some(applied));
    }
    let wanted = |r: &&UploadRow| !r.applied && (r.outcome == "matched" || (confirm_unpaid && r.outcome == "unpaid"));
    let todo: Vec<UploadRow> = rows.iter().filter(wanted).cloned().collect();
    for chunk in todo.chunks(APPLY_CHUNK as usize) {
        let (db2, scope2, actor2, chunk2) = (db.clone(), scope.clone(), actor.clone(), chunk.to_vec());
        let (set, refused) = tokio::spawn(crate::telemetry::keeping_request_id(async move {
            with_pool!(&db2, |p| {
                let mut tx = p.begin().await?;
                let (mut set, mut refused) = (0, 0);
                // Claimed in this transaction: a row another process applied meanwhile is skipped.
                let mut claimed: std::collections::HashSet<i64> = std::collections::HashSet::new();
                for part in chunk2.chunks(db2.rows_per_statement(1)) {
                    let sql = format!(
                        "update tracking_upload_row set applied = true
                         where upload_id = $1 and not applied and line_no in ({}) returning line_no",
                        placeholders(2, part.len())
                    );
                    let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(id);
                    for r in part {
                        q = q.bind(r.line_no);
                    }
                    claimed.extend(q.fetch_all(&mut *tx).await?);
                }
                let rows: Vec<(&UploadRow, NewTracking)> = chunk2
                    .iter()
                    .filter(|r| claimed.contains(&r.line_no))
                    .filter_map(|r| {
                        let t = NewTracking {
                            shipment_id: r.shipment_id?,
                            order_pk: r.order_pk?,
                            carrier,
                            number: r.tracking_number.clone(),
                            ship_date,
                            unpaid_confirmed: r.outcome == "unpaid",
                        };
                        Some((r, t))
                    })
                    .collect();
                let numbers: Vec<NewTracking> = rows.iter().map(|(_, t)| t.clone()).collect();
                let outcomes = set_tracking_in(&mut *tx, &scope2, &numbers, &actor2, now).await?;
                // Each row's outcome, written a statement per kind of outcome.
                let mut by_outcome: Vec<((&str, String), Vec<i64>)> = Vec::new();
                for ((r, _), outcome) in rows.iter().zip(outcomes) {
                    let key = match outcome {
                        TrackingOutcome::Set(_) => {
                            set += 1;
                            ("applied", String::new())
                        }
                        TrackingOutcome::Same => ("same", "この伝票番号は登録済みです".to_owned()),
                        TrackingOutcome::Conflict(n) => {
                            refused += 1;
                            ("conflict", format!("別の伝票番号（{n}）が登録されています"))
                        }
                        TrackingOutcome::Refused(why) => {
                            refused += 1;
                            ("refused", why.to_string())
                        }
                    };
                    match by_outcome.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, lines)) => lines.push(r.line_no),
                        None => by_outcome.push((key, vec![r.line_no])),
                    }
                }
                for ((state, message), lines) in &by_outcome {
                    for part in lines.chunks(db2.rows_per_statement(1)) {
                        let sql = format!(
                            "update tracking_upload_row set outcome = $2, message = $3
                             where upload_id = $1 and line_no in ({})",
                            placeholders(4, part.len())
                        );
                        let mut q = sqlx::query(&sql).bind(id).bind(*state).bind(message);
                        for line in part {
                            q = q.bind(*line);
                        }
                        q.execute(&mut *tx).await?;
                    }
                }
                sqlx::query(
                    "update tracking_upload set applied_rows = (select count(*) from tracking_upload_row
                         where upload_id = $1 and applied) where id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((set, refused))
            })
        }))
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("the apply task ended: {e}")))??;
        applied.set += set;
        applied.refused += refused;
    }
    with_pool!(db, |p| {
        sqlx::query("update tracking_upload set state = 'applied', applied_at = $2 where id = $1")
            .bind(id)
            .bind(now)
            .execute(p)
            .await
            .map(drop)
    })?;
    Ok(Some(applied))
}

/// Shipments of a label format that were exported and have no number yet (クリックポスト's
/// issued file is matched against these by recipient).
pub async fn open_shipments(db: &Db, scope: &OrderScope, format: LabelFormat) -> sqlx::Result<Vec<Shipment>> {
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "select {SHIPMENT_COLUMNS} from shipment where account_id = $1 and format = ${} and tracking_number is null
             and exists (select 1 from label_export_shipment les where les.shipment_id = shipment.id){}
             order by id",
        2 + scoped,
        scope_condition(scope, "store_id", 2)
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as::<_, Shipment>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(format.as_str()).fetch_all(p).await
    })
}

/// An order by its Yahoo order ID, in the reader's scope.
pub async fn order_by_yahoo_id(db: &Db, scope: &OrderScope, order_id: &str) -> sqlx::Result<Option<ShipOrder>> {
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "{SHIP_ORDER_SQL}{} and o.order_id = ${} order by o.id limit 1",
        scope_condition(scope, "o.store_id", 2),
        2 + scoped
    );
    with_pool!(db, |p| {
        let mut q = sqlx::query_as::<_, ShipOrder>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(order_id).fetch_optional(p).await
    })
}

/// The pay methods a store ships only once paid (its 出荷設定, else the default list).
pub async fn prepay_methods(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<String> {
    let saved: Option<String> = with_pool!(db, |p| {
        sqlx::query_scalar("select prepay_methods from store_shipping where account_id = $1 and store_id = $2")
            .bind(account)
            .bind(store)
            .fetch_optional(p)
            .await
    })?;
    Ok(saved.unwrap_or_else(|| shipping::DEFAULT_PREPAY_METHODS.to_owned()))
}

/// Stores that complete their orders at Yahoo some days after shipping: (account, store, days).
pub async fn completing_stores(db: &Db) -> sqlx::Result<Vec<(AccountId, StoreId, i64)>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select ss.account_id, ss.store_id, ss.complete_after_days from store_shipping ss
             join store s on s.id = ss.store_id and s.account_id = ss.account_id
             where ss.complete_after_days > 0 order by ss.store_id",
        )
        .fetch_all(p)
        .await
    })
}

/// A store's orders due to be completed: 出荷済み here, paid, not held, every push to Yahoo
/// done (Yahoo has the ship status), not yet 完了 at Yahoo, and numbered at or before `shipped_by`.
/// At most `limit`, oldest first.
pub async fn due_to_complete(
    db: &Db,
    account: AccountId,
    store: StoreId,
    shipped_by: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<OrderPk>> {
    with_pool!(db, |p| {
        sqlx::query_scalar(
            "select o.id from yahoo_order o
             where o.account_id = $1 and o.store_id = $2 and o.internal_status = 'shipped'
               and o.pay_status = 1 and o.fraud_hold_status not in (1, 3) and o.order_status <> 5
               and exists (select 1 from shipment sh where sh.order_pk = o.id and sh.tracking_set_at <= $3)
               and not exists (select 1 from order_push op where op.order_pk = o.id and op.state <> 'done')
             order by o.id limit $4",
        )
        .bind(account)
        .bind(store)
        .bind(shipped_by)
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

/// A change to an order's parcels (荷物を分ける).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParcelEdit {
    /// One more parcel, labelled as the first.
    Add,
    /// An extra parcel not yet exported or numbered.
    Remove(i64),
    /// A parcel's 個口数 and 品名 (empty: the store's, else the first item's title).
    Set { parcel_no: i64, packages: i64, item_name: String },
}

/// Parcels an order may be split into.
pub const MAX_PARCELS: usize = 10;

/// Changes an order's parcels (its first made from the store's mapping where it has none), with
/// a history line; `Err` says in Japanese why nothing changed. An order of another account or
/// of a store the reader may not work is not found.
pub async fn edit_parcels(
    db: &Db,
    scope: &OrderScope,
    pk: OrderPk,
    edit: &ParcelEdit,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<String, &'static str>> {
    let Some(o) = orders(db, scope, &[pk]).await?.into_iter().next() else {
        return Ok(Err("注文が見つかりません"));
    };
    if matches!(
        InternalStatus::parse(&o.internal_status),
        Some(InternalStatus::Shipped | InternalStatus::Completed | InternalStatus::Cancelled)
    ) {
        return Ok(Err("出荷済み・完了・キャンセルの注文の荷物は変えられません"));
    }
    let (settings, rows) = settings(db, scope.account, o.store_id).await?;
    let row = shipping::choose(&rows, &settings.fallback(), &o.ship_method, &o.pay_method).clone();
    let parcels = ensure_shipments(db, scope.account, &[(&o, &row)], now).await?;
    let Some(first) = parcels.first() else { return Ok(Err("注文が見つかりません")) };
    let find = |no: i64| parcels.iter().find(|p| p.parcel_no == no);
    // What to write: the statement's shipment, and the history line.
    let (target, history) = match edit {
        ParcelEdit::Add => {
            if parcels.len() >= MAX_PARCELS {
                return Ok(Err("荷物は1件の注文につき10個までです"));
            }
            (
                first.id,
                format!("荷物を{}個に分けました（送り状も{}枚になります）", parcels.len() + 1, parcels.len() + 1),
            )
        }
        ParcelEdit::Remove(no) => {
            let Some(p) = find(*no) else { return Ok(Err("その荷物はありません")) };
            if p.parcel_no == 1 {
                return Ok(Err("1個目の荷物は削除できません"));
            }
            if p.tracking_number.is_some() || p.exported_at.is_some() {
                return Ok(Err("送り状データを出力した荷物、伝票番号のある荷物は削除できません"));
            }
            (p.id, format!("荷物{no}を削除しました（荷物は{}個）", parcels.len() - 1))
        }
        ParcelEdit::Set { parcel_no, packages, item_name } => {
            let Some(p) = find(*parcel_no) else { return Ok(Err("その荷物はありません")) };
            if p.tracking_number.is_some() {
                return Ok(Err("伝票番号のある荷物は変えられません"));
            }
            if !(1..=99).contains(packages) {
                return Ok(Err("個口数は1〜99で入力してください"));
            }
            if item_name.chars().count() > 50 {
                return Ok(Err("品名は50文字以内で入力してください"));
            }
            let shown = if item_name.is_empty() { "（既定）".to_owned() } else { format!("「{item_name}」") };
            (p.id, format!("荷物{parcel_no}を個口数{packages}、品名{shown}にしました"))
        }
    };
    let next = parcels.iter().map(|p| p.parcel_no).max().unwrap_or(1) + 1;
    let (actor_type, actor_name) = actor.parts();
    let changed = with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let written =
            match edit {
                ParcelEdit::Add => sqlx::query(
                    "insert into shipment (account_id, store_id, order_pk, parcel_no, format, service, cool, packages,
                         item_name, created_at, updated_at)
                     select account_id, store_id, order_pk, $3, format, service, cool, 1, item_name, $4, $4
                     from shipment where account_id = $1 and id = $2
                     on conflict (order_pk, parcel_no) do nothing",
                )
                .bind(scope.account)
                .bind(target)
                .bind(next)
                .bind(now)
                .execute(&mut *tx)
                .await?,
                ParcelEdit::Remove(_) => {
                    sqlx::query(
                        "delete from shipment where account_id = $1 and id = $2 and tracking_number is null
                       and not exists (select 1 from label_export_shipment les where les.shipment_id = shipment.id)",
                    )
                    .bind(scope.account)
                    .bind(target)
                    .execute(&mut *tx)
                    .await?
                }
                ParcelEdit::Set { packages, item_name, .. } => {
                    sqlx::query(
                        "update shipment set packages = $3, item_name = $4, updated_at = $5
                     where account_id = $1 and id = $2 and tracking_number is null",
                    )
                    .bind(scope.account)
                    .bind(target)
                    .bind(*packages)
                    .bind(item_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                }
            };
        let changed = written.rows_affected();
        if changed == 1 {
            sqlx::query(
                "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at)
                 values ($1, $2, $3, $4, 'shipping', $5, $6)",
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
        Ok::<_, sqlx::Error>(changed)
    })?;
    Ok(if changed == 1 {
        Ok(history)
    } else {
        Err("同時に変更されました。ページを読み込み直してください")
    })
}
