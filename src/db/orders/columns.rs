//! The column map: each of Yahoo's columns of `yahoo_order` and the field of an order it holds,
//! written once (`yahoo_columns!`). Both backends' upserts are built from it (SQLite binds it
//! row by row, PostgreSQL column by column as arrays), and so are the stored row and its way
//! back to the domain's order: an order field added here is written and read everywhere.

use chrono::{DateTime, NaiveDate, Utc};

use super::OrderPk;
use crate::domain::{AccountId, StoreId, order::OrderDetail};

/// One value of an order's column, typed as both backends store it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Text(&'a str),
    Int(i64),
    OptInt(Option<i64>),
    Time(DateTime<Utc>),
    OptTime(Option<DateTime<Utc>>),
    OptDate(Option<NaiveDate>),
    OptBool(Option<bool>),
}

impl Value<'_> {
    /// The PostgreSQL array element type of the column.
    fn pg_type(self) -> &'static str {
        match self {
            Value::Text(_) => "text",
            Value::Int(_) | Value::OptInt(_) => "bigint",
            Value::Time(_) | Value::OptTime(_) => "timestamptz",
            Value::OptDate(_) => "date",
            Value::OptBool(_) => "boolean",
        }
    }
}

/// A column and how to read its value from an order.
pub(super) struct Column {
    pub name: &'static str,
    pub value: for<'a> fn(&'a OrderDetail) -> Value<'a>,
}

/// How one kind of column is stored: the row's Rust type, and the conversions between the
/// domain's field and the written [`Value`] or the read row field.
pub trait Stored {
    type Field;
    type Row;
    fn write(field: &Self::Field) -> Value<'_>;
    fn read(row: &Self::Row) -> Self::Field;
}

macro_rules! stored {
    ($kind:ident, $field:ty, $row:ty, |$w:ident| $write:expr, |$r:ident| $read:expr) => {
        pub struct $kind;
        impl Stored for $kind {
            type Field = $field;
            type Row = $row;
            fn write($w: &$field) -> Value<'_> {
                $write
            }
            fn read($r: &$row) -> $field {
                $read
            }
        }
    };
}

stored!(Text, String, String, |v| Value::Text(v), |r| r.clone());
stored!(Int, i64, i64, |v| Value::Int(*v), |r| *r);
stored!(OptInt, Option<i64>, Option<i64>, |v| Value::OptInt(*v), |r| *r);
stored!(Code, u8, i64, |v| Value::Int(i64::from(*v)), |r| small(*r));
stored!(OptCode, Option<u8>, Option<i64>, |v| Value::OptInt(v.map(i64::from)), |r| r.map(small));
stored!(Time, DateTime<Utc>, DateTime<Utc>, |v| Value::Time(*v), |r| *r);
stored!(OptTime, Option<DateTime<Utc>>, Option<DateTime<Utc>>, |v| Value::OptTime(*v), |r| *r);
stored!(OptDate, Option<NaiveDate>, Option<NaiveDate>, |v| Value::OptDate(*v), |r| *r);
stored!(OptBool, Option<bool>, Option<bool>, |v| Value::OptBool(*v), |r| *r);

/// A code Yahoo sends as a small number, stored as a bigint.
fn small(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// The one list of Yahoo's columns: `column: Kind = field.path`. It makes the write map
/// ([`COLUMNS`]), the stored row's fields (`OrderRow`, with ours around them) and the way back
/// from a row to the domain's order (`OrderRow::fill`). An order field is added here, in the
/// domain type, in one migration per backend and on the page that shows it.
macro_rules! yahoo_columns {
    ($($column:ident: $kind:ident = $($path:ident).+),* $(,)?) => {
        /// Yahoo's columns of `yahoo_order`, in the order both upserts bind them.
        pub(super) static COLUMNS: &[Column] =
            &[$(Column { name: stringify!($column), value: |d| <$kind as Stored>::write(&d.$($path).+) }),*];

        /// A stored order row: Yahoo's fields (the column map's) plus ours.
        #[derive(Clone, Debug, sqlx::FromRow)]
        pub struct OrderRow {
            pub id: OrderPk,
            pub account_id: AccountId,
            pub store_id: StoreId,
            $(pub $column: <$kind as Stored>::Row,)*
            pub(super) internal_status: String,
            pub note: String,
            pub cancel_flagged: bool,
            pub checked_at: DateTime<Utc>,
            pub imported_at: DateTime<Utc>,
            pub updated_at: DateTime<Utc>,
        }

        impl OrderRow {
            /// Sets Yahoo's fields of `d` from the row.
            pub(super) fn fill(&self, d: &mut OrderDetail) {
                $(d.$($path).+ = <$kind as Stored>::read(&self.$column);)*
            }
        }
    };
}

yahoo_columns! {
    order_id: Text = order_id,
    version: Int = version,
    order_time: Time = order_time,
    last_update_time: OptTime = last_update_time,
    publication_time: OptTime = publication_time,
    order_status: Code = order_status,
    is_seen: OptBool = is_seen,
    fraud_hold_status: Code = fraud_hold_status,
    cancel_reason: OptInt = cancel_reason,
    buyer_comments: Text = buyer_comments,
    pay_status: OptCode = pay_status,
    pay_method: Text = pay_method,
    pay_method_name: Text = pay_method_name,
    pay_date: OptDate = pay_date,
    bill_last_name: Text = bill.last_name,
    bill_first_name: Text = bill.first_name,
    bill_last_name_kana: Text = bill.last_name_kana,
    bill_first_name_kana: Text = bill.first_name_kana,
    bill_zip_code: Text = bill.zip_code,
    bill_prefecture: Text = bill.prefecture,
    bill_city: Text = bill.city,
    bill_address1: Text = bill.address1,
    bill_address2: Text = bill.address2,
    bill_phone: Text = bill.phone,
    bill_mail: Text = bill_mail,
    ship_status: OptCode = ship_status,
    ship_method: Text = ship_method,
    ship_method_name: Text = ship_method_name,
    ship_request_date: OptDate = ship_request_date,
    ship_request_time: Text = ship_request_time,
    ship_company_code: Text = ship_company_code,
    ship_invoice_number1: Text = ship_invoice_number1,
    ship_invoice_number2: Text = ship_invoice_number2,
    ship_date: OptDate = ship_date,
    ship_last_name: Text = ship.last_name,
    ship_first_name: Text = ship.first_name,
    ship_last_name_kana: Text = ship.last_name_kana,
    ship_first_name_kana: Text = ship.first_name_kana,
    ship_zip_code: Text = ship.zip_code,
    ship_prefecture: Text = ship.prefecture,
    ship_city: Text = ship.city,
    ship_address1: Text = ship.address1,
    ship_address2: Text = ship.address2,
    ship_phone: Text = ship.phone,
    pay_charge: Int = pay_charge,
    ship_charge: Int = ship_charge,
    gift_wrap_charge: Int = gift_wrap_charge,
    discount: Int = discount,
    use_point: Int = use_point,
    coupon_discount: Int = coupon_discount,
    gift_card_discount: Int = gift_card_discount,
    social_gift_type: Code = social_gift_type,
    need_gift_wrap: OptBool = need_gift_wrap,
    total_price: Int = total_price,
    settle_amount: Int = settle_amount,
}

/// The column names, comma-separated.
pub(super) fn names() -> String {
    COLUMNS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// `c = excluded.c` for every column but the key: what an upsert of a known order replaces.
pub(super) fn replaced() -> String {
    COLUMNS.iter().skip(1).map(|c| format!("{0} = excluded.{0}", c.name)).collect::<Vec<_>>().join(", ")
}

/// The PostgreSQL array types of the columns (from the value each column reads).
pub(super) fn pg_types() -> Vec<&'static str> {
    let d = OrderDetail::default();
    COLUMNS.iter().map(|c| (c.value)(&d).pg_type()).collect()
}

/// One column of a batch's orders as a PostgreSQL array parameter.
pub(super) enum Array<'a> {
    Text(Vec<&'a str>),
    Int(Vec<Option<i64>>),
    Time(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
    Bool(Vec<Option<bool>>),
}

impl<'a> Array<'a> {
    /// Every column of these orders, in [`COLUMNS`] order.
    pub(super) fn columns(details: &[&'a OrderDetail]) -> Vec<Array<'a>> {
        COLUMNS
            .iter()
            .map(|c| {
                let values = details.iter().map(|d| (c.value)(d));
                match (c.value)(&OrderDetail::default()) {
                    Value::Text(_) => {
                        Array::Text(values.map(|v| if let Value::Text(s) = v { s } else { unreachable!() }).collect())
                    }
                    Value::Int(_) | Value::OptInt(_) => Array::Int(
                        values
                            .map(|v| match v {
                                Value::Int(i) => Some(i),
                                Value::OptInt(i) => i,
                                _ => unreachable!(),
                            })
                            .collect(),
                    ),
                    Value::Time(_) | Value::OptTime(_) => Array::Time(
                        values
                            .map(|v| match v {
                                Value::Time(t) => Some(t),
                                Value::OptTime(t) => t,
                                _ => unreachable!(),
                            })
                            .collect(),
                    ),
                    Value::OptDate(_) => Array::Date(
                        values.map(|v| if let Value::OptDate(d) = v { d } else { unreachable!() }).collect(),
                    ),
                    Value::OptBool(_) => Array::Bool(
                        values.map(|v| if let Value::OptBool(b) = v { b } else { unreachable!() }).collect(),
                    ),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_once_with_a_stable_type() {
        let names: std::collections::HashSet<&str> = COLUMNS.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), COLUMNS.len());
        assert_eq!(COLUMNS[0].name, "order_id", "the key comes first (the upsert replaces the others)");
        // A column's type does not depend on the order's values.
        let mut d = OrderDetail { cancel_reason: Some(1), is_seen: Some(true), ..Default::default() };
        d.pay_status = Some(2);
        let filled: Vec<&str> = COLUMNS.iter().map(|c| (c.value)(&d).pg_type()).collect();
        assert_eq!(filled, pg_types());
    }
}
