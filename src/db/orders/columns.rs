//! The column map: each of Yahoo's columns of `yahoo_order` and the field of an order it holds,
//! written once. Both backends' upserts are built from it (SQLite binds it row by row,
//! PostgreSQL column by column as arrays), so an order field added here is written everywhere.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::order::OrderDetail;

/// One value of an order's column, typed as both backends store it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Value<'a> {
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

macro_rules! columns {
    ($($name:literal => |$d:ident| $value:expr),* $(,)?) => {
        [$(Column { name: $name, value: |$d: &OrderDetail| $value }),*]
    };
}

/// Yahoo's columns of `yahoo_order`, in the order both upserts bind them.
pub(super) static COLUMNS: [Column; 51] = columns![
    "order_id" => |d| Value::Text(&d.order_id),
    "version" => |d| Value::Int(d.version),
    "order_time" => |d| Value::Time(d.order_time),
    "last_update_time" => |d| Value::OptTime(d.last_update_time),
    "publication_time" => |d| Value::OptTime(d.publication_time),
    "order_status" => |d| Value::Int(i64::from(d.order_status)),
    "is_seen" => |d| Value::OptBool(d.is_seen),
    "fraud_hold_status" => |d| Value::Int(i64::from(d.fraud_hold_status)),
    "cancel_reason" => |d| Value::OptInt(d.cancel_reason),
    "buyer_comments" => |d| Value::Text(&d.buyer_comments),
    "pay_status" => |d| Value::OptInt(d.pay_status.map(i64::from)),
    "pay_method" => |d| Value::Text(&d.pay_method),
    "pay_method_name" => |d| Value::Text(&d.pay_method_name),
    "pay_date" => |d| Value::OptDate(d.pay_date),
    "bill_last_name" => |d| Value::Text(&d.bill.last_name),
    "bill_first_name" => |d| Value::Text(&d.bill.first_name),
    "bill_last_name_kana" => |d| Value::Text(&d.bill.last_name_kana),
    "bill_first_name_kana" => |d| Value::Text(&d.bill.first_name_kana),
    "bill_zip_code" => |d| Value::Text(&d.bill.zip_code),
    "bill_prefecture" => |d| Value::Text(&d.bill.prefecture),
    "bill_city" => |d| Value::Text(&d.bill.city),
    "bill_address1" => |d| Value::Text(&d.bill.address1),
    "bill_address2" => |d| Value::Text(&d.bill.address2),
    "bill_phone" => |d| Value::Text(&d.bill.phone),
    "bill_mail" => |d| Value::Text(&d.bill_mail),
    "ship_status" => |d| Value::OptInt(d.ship_status.map(i64::from)),
    "ship_method" => |d| Value::Text(&d.ship_method),
    "ship_method_name" => |d| Value::Text(&d.ship_method_name),
    "ship_request_date" => |d| Value::OptDate(d.ship_request_date),
    "ship_request_time" => |d| Value::Text(&d.ship_request_time),
    "ship_company_code" => |d| Value::Text(&d.ship_company_code),
    "ship_invoice_number1" => |d| Value::Text(&d.ship_invoice_number1),
    "ship_invoice_number2" => |d| Value::Text(&d.ship_invoice_number2),
    "ship_date" => |d| Value::OptDate(d.ship_date),
    "ship_last_name" => |d| Value::Text(&d.ship.last_name),
    "ship_first_name" => |d| Value::Text(&d.ship.first_name),
    "ship_last_name_kana" => |d| Value::Text(&d.ship.last_name_kana),
    "ship_first_name_kana" => |d| Value::Text(&d.ship.first_name_kana),
    "ship_zip_code" => |d| Value::Text(&d.ship.zip_code),
    "ship_prefecture" => |d| Value::Text(&d.ship.prefecture),
    "ship_city" => |d| Value::Text(&d.ship.city),
    "ship_address1" => |d| Value::Text(&d.ship.address1),
    "ship_address2" => |d| Value::Text(&d.ship.address2),
    "ship_phone" => |d| Value::Text(&d.ship.phone),
    "pay_charge" => |d| Value::Int(d.pay_charge),
    "ship_charge" => |d| Value::Int(d.ship_charge),
    "gift_wrap_charge" => |d| Value::Int(d.gift_wrap_charge),
    "discount" => |d| Value::Int(d.discount),
    "use_point" => |d| Value::Int(d.use_point),
    "total_price" => |d| Value::Int(d.total_price),
    "settle_amount" => |d| Value::Int(d.settle_amount),
];

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
