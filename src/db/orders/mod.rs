//! Imported orders, their item lines and history (product.md §5, §6). Every function takes the
//! account; what pages read takes the reader's scope.
//!
//! - `columns`: each of Yahoo's columns and the order field it holds, written once.
//! - `write`: an import's batch ([`write_batch`]: one transaction that upserts the orders,
//!   replaces their item lines, appends their history and moves the store's cursor, fenced by
//!   the import lease), its sequence written once over a dialect per backend; 社内メモ.
//! - `read`: the reads, by account (jobs) and by the reader's scope (pages).
//!
//! Here: the stored row ([`OrderRow`], made by the column map) and its way back to the domain's
//! order.

use crate::domain::{
    order::{OrderDetail, OrderItem},
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

pub use columns::OrderRow;

impl OrderRow {
    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_hold(&self) -> crate::domain::order::FraudHoldStatus {
        crate::domain::order::FraudHoldStatus::from_code(Some(u8::try_from(self.fraud_hold_status).unwrap_or(u8::MAX)))
            .unwrap_or_default()
    }

    /// Yahoo's side of the row, as orderInfo would show it (with the item lines given).
    pub fn to_detail(&self, items: Vec<OrderItem>, seller_id: &str) -> OrderDetail {
        let mut d = OrderDetail { items, seller_id: seller_id.to_owned(), ..OrderDetail::default() };
        self.fill(&mut d);
        d
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
