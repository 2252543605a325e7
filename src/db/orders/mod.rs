//! Imported orders, their item lines and history (product.md §5, §6). Every function takes the
//! account; what pages read takes the reader's scope.
//!
//! - `columns`: each of Yahoo's columns and the order field it holds, written once.
//! - `write`: an import's batch ([`write_batch`]: one transaction that upserts the orders,
//!   replaces their item lines, appends their history and moves the store's cursor, fenced by
//!   the import lease), its sequence written once over a dialect per backend; 社内メモ.
//! - `read`: the reads, by account (jobs) and by the reader's scope (pages).
//!
//! Here: the stored row ([`OrderRow`]) and its way back to the domain's order.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::{
    AccountId, StoreId,
    order::{Address, OrderDetail, OrderItem},
    store::InternalStatus,
};

mod columns;
mod read;
mod write;

pub use crate::domain::order::{HistoryLine, Known};
pub use read::*;
pub use write::*;

/// The primary key of a stored order (never reused).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize, sqlx::Type,
)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct OrderPk(pub i64);

impl std::fmt::Display for OrderPk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A stored order row: Yahoo's fields plus ours.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OrderRow {
    pub id: OrderPk,
    pub account_id: AccountId,
    pub store_id: StoreId,
    pub order_id: String,
    pub version: i64,
    pub order_time: DateTime<Utc>,
    pub last_update_time: Option<DateTime<Utc>>,
    pub publication_time: Option<DateTime<Utc>>,
    pub order_status: i64,
    pub is_seen: Option<bool>,
    pub fraud_hold_status: i64,
    pub cancel_reason: Option<i64>,
    pub buyer_comments: String,
    pub pay_status: Option<i64>,
    pub pay_method: String,
    pub pay_method_name: String,
    pub pay_date: Option<NaiveDate>,
    pub bill_last_name: String,
    pub bill_first_name: String,
    pub bill_last_name_kana: String,
    pub bill_first_name_kana: String,
    pub bill_zip_code: String,
    pub bill_prefecture: String,
    pub bill_city: String,
    pub bill_address1: String,
    pub bill_address2: String,
    pub bill_phone: String,
    pub bill_mail: String,
    pub ship_status: Option<i64>,
    pub ship_method: String,
    pub ship_method_name: String,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: String,
    pub ship_company_code: String,
    pub ship_invoice_number1: String,
    pub ship_invoice_number2: String,
    pub ship_date: Option<NaiveDate>,
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
    pub pay_charge: i64,
    pub ship_charge: i64,
    pub gift_wrap_charge: i64,
    pub discount: i64,
    pub use_point: i64,
    pub total_price: i64,
    pub settle_amount: i64,
    internal_status: String,
    pub note: String,
    pub cancel_flagged: bool,
    pub checked_at: DateTime<Utc>,
    pub imported_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn small(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

impl OrderRow {
    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_hold(&self) -> crate::domain::order::FraudHoldStatus {
        crate::domain::order::FraudHoldStatus::from_code(Some(small(self.fraud_hold_status))).unwrap_or_default()
    }

    /// Yahoo's side of the row, as orderInfo would show it (with the item lines given).
    pub fn to_detail(&self, items: Vec<OrderItem>, seller_id: &str) -> OrderDetail {
        let bill = Address {
            last_name: self.bill_last_name.clone(),
            first_name: self.bill_first_name.clone(),
            last_name_kana: self.bill_last_name_kana.clone(),
            first_name_kana: self.bill_first_name_kana.clone(),
            zip_code: self.bill_zip_code.clone(),
            prefecture: self.bill_prefecture.clone(),
            city: self.bill_city.clone(),
            address1: self.bill_address1.clone(),
            address2: self.bill_address2.clone(),
            phone: self.bill_phone.clone(),
        };
        let ship = Address {
            last_name: self.ship_last_name.clone(),
            first_name: self.ship_first_name.clone(),
            last_name_kana: self.ship_last_name_kana.clone(),
            first_name_kana: self.ship_first_name_kana.clone(),
            zip_code: self.ship_zip_code.clone(),
            prefecture: self.ship_prefecture.clone(),
            city: self.ship_city.clone(),
            address1: self.ship_address1.clone(),
            address2: self.ship_address2.clone(),
            phone: self.ship_phone.clone(),
        };
        OrderDetail {
            order_id: self.order_id.clone(),
            version: self.version,
            order_time: self.order_time,
            last_update_time: self.last_update_time,
            publication_time: self.publication_time,
            order_status: small(self.order_status),
            is_seen: self.is_seen,
            fraud_hold_status: small(self.fraud_hold_status),
            cancel_reason: self.cancel_reason,
            buyer_comments: self.buyer_comments.clone(),
            pay_status: self.pay_status.map(small),
            pay_method: self.pay_method.clone(),
            pay_method_name: self.pay_method_name.clone(),
            pay_date: self.pay_date,
            bill,
            bill_mail: self.bill_mail.clone(),
            ship_status: self.ship_status.map(small),
            ship_method: self.ship_method.clone(),
            ship_method_name: self.ship_method_name.clone(),
            ship_request_date: self.ship_request_date,
            ship_request_time: self.ship_request_time.clone(),
            ship_company_code: self.ship_company_code.clone(),
            ship_invoice_number1: self.ship_invoice_number1.clone(),
            ship_invoice_number2: self.ship_invoice_number2.clone(),
            ship_date: self.ship_date,
            ship,
            pay_charge: self.pay_charge,
            ship_charge: self.ship_charge,
            gift_wrap_charge: self.gift_wrap_charge,
            discount: self.discount,
            use_point: self.use_point,
            total_price: self.total_price,
            settle_amount: self.settle_amount,
            items,
            seller_id: seller_id.to_owned(),
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
struct ItemRow {
    order_pk: OrderPk,
    line_id: i64,
    item_id: String,
    title: String,
    sub_code: String,
    options: String,
    unit_price: i64,
    quantity: i64,
    tax_ratio: Option<i64>,
    product_id: String,
    category_id: Option<i64>,
}

impl ItemRow {
    fn into_item(self) -> OrderItem {
        OrderItem {
            line_id: self.line_id,
            item_id: self.item_id,
            title: self.title,
            sub_code: self.sub_code,
            options: serde_json::from_str(&self.options).unwrap_or_default(),
            unit_price: self.unit_price,
            quantity: self.quantity,
            tax_ratio: self.tax_ratio,
            product_id: self.product_id,
            category_id: self.category_id,
        }
    }
}

/// `$a, $b, …` for `n` values starting at `$first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// Who wrote a history entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HistoryActor {
    User(String),
    Job,
    Support(String),
}

impl HistoryActor {
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            HistoryActor::User(name) => ("user", name),
            HistoryActor::Job => ("job", ""),
            HistoryActor::Support(name) => ("support", name),
        }
    }
}
