//! Orders as the simulator keeps them, and their XML: which fields orderList and orderInfo can
//! return, how orderInfo groups them, and which text goes in CDATA.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{domain::jst, xml::XmlWriter};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Person {
    pub last_name: String,
    pub first_name: String,
    pub last_name_kana: String,
    pub first_name_kana: String,
    pub zip_code: String,
    pub prefecture: String,
    pub city: String,
    pub address1: String,
    pub address2: String,
    pub phone: String,
    pub mail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ItemLine {
    pub line_id: u32,
    pub item_id: String,
    pub title: String,
    pub sub_code: String,
    pub options: Vec<(String, String)>,
    pub unit_price: i64,
    pub quantity: i64,
    pub tax_ratio: u8,
    pub product_id: String,
    pub category_id: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub seller_id: String,
    pub version: u32,
    pub order_time: DateTime<Utc>,
    pub last_update_time: DateTime<Utc>,
    pub order_status: u8,
    pub is_seen: bool,
    pub fraud_hold_status: u8,
    /// When orderList could first show it: the order time, or the release time after a hold.
    pub publication_time: DateTime<Utc>,
    pub cancel_reason: Option<u16>,
    pub cancel_reason_detail: String,
    pub buyer_comments: String,
    pub is_point_fix: bool,
    pub pay_status: u8,
    pub pay_method: String,
    pub pay_method_name: String,
    pub pay_date: Option<NaiveDate>,
    pub bill: Person,
    pub ship_status: u8,
    pub ship_method: String,
    pub ship_method_name: String,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: String,
    pub ship_company_code: String,
    pub ship_invoice_number1: String,
    pub ship_invoice_number2: String,
    pub ship_date: Option<NaiveDate>,
    pub ship: Person,
    pub pay_charge: i64,
    pub ship_charge: i64,
    pub gift_wrap_charge: i64,
    pub discount: i64,
    pub use_point: i64,
    pub items: Vec<ItemLine>,
}

impl Order {
    pub fn items_total(&self) -> i64 {
        self.items.iter().map(|i| i.unit_price * i.quantity).sum()
    }

    pub fn total_price(&self) -> i64 {
        self.items_total() + self.pay_charge + self.ship_charge + self.gift_wrap_charge - self.discount - self.use_point
    }

    pub fn is_held(&self) -> bool {
        matches!(self.fraud_hold_status, 1 | 3)
    }

    /// Records a change: Yahoo bumps `Version` and `LastUpdateTime` on every update.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.last_update_time = now;
    }
}

/// Where orderInfo puts a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Order,
    Pay,
    Ship,
    Detail,
    Item,
    Seller,
}

enum Value {
    Text(String),
    Cdata(String),
}

fn text(s: impl ToString) -> Option<Value> {
    Some(Value::Text(s.to_string()))
}

fn cdata(s: &str) -> Option<Value> {
    Some(Value::Cdata(s.to_owned()))
}

fn time(t: DateTime<Utc>) -> Option<Value> {
    text(jst::format_response(t))
}

fn date(d: Option<NaiveDate>) -> Option<Value> {
    text(d.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default())
}

fn person(p: &Person, prefix: &str, field: &str) -> Option<Option<Value>> {
    let rest = field.strip_prefix(prefix)?;
    Some(match rest {
        "LastName" => cdata(&p.last_name),
        "FirstName" => cdata(&p.first_name),
        "LastNameKana" => cdata(&p.last_name_kana),
        "FirstNameKana" => cdata(&p.first_name_kana),
        "ZipCode" => text(&p.zip_code),
        "Prefecture" => cdata(&p.prefecture),
        "City" => cdata(&p.city),
        "Address1" => cdata(&p.address1),
        "Address2" => cdata(&p.address2),
        "PhoneNumber" => text(&p.phone),
        "MailAddress" if prefix == "Bill" => text(&p.mail),
        _ => None,
    })
}

/// Every field name the simulator knows, with its group; orderList returns only `Order` ones.
pub const FIELDS: &[(&str, Group)] = &[
    ("OrderId", Group::Order),
    ("Version", Group::Order),
    ("OrderTime", Group::Order),
    ("LastUpdateTime", Group::Order),
    ("OrderStatus", Group::Order),
    ("IsSeen", Group::Order),
    ("FraudHoldStatus", Group::Order),
    ("PublicationTime", Group::Order),
    ("CancelReason", Group::Order),
    ("CancelReasonDetail", Group::Order),
    ("BuyerComments", Group::Order),
    ("IsPointFix", Group::Order),
    ("PayStatus", Group::Pay),
    ("PayMethod", Group::Pay),
    ("PayMethodName", Group::Pay),
    ("PayDate", Group::Pay),
    ("BillLastName", Group::Pay),
    ("BillFirstName", Group::Pay),
    ("BillLastNameKana", Group::Pay),
    ("BillFirstNameKana", Group::Pay),
    ("BillZipCode", Group::Pay),
    ("BillPrefecture", Group::Pay),
    ("BillCity", Group::Pay),
    ("BillAddress1", Group::Pay),
    ("BillAddress2", Group::Pay),
    ("BillPhoneNumber", Group::Pay),
    ("BillMailAddress", Group::Pay),
    ("ShipStatus", Group::Ship),
    ("ShipMethod", Group::Ship),
    ("ShipMethodName", Group::Ship),
    ("ShipRequestDate", Group::Ship),
    ("ShipRequestTime", Group::Ship),
    ("ShipCompanyCode", Group::Ship),
    ("ShipInvoiceNumber1", Group::Ship),
    ("ShipInvoiceNumber2", Group::Ship),
    ("ShipDate", Group::Ship),
    ("ShipLastName", Group::Ship),
    ("ShipFirstName", Group::Ship),
    ("ShipLastNameKana", Group::Ship),
    ("ShipFirstNameKana", Group::Ship),
    ("ShipZipCode", Group::Ship),
    ("ShipPrefecture", Group::Ship),
    ("ShipCity", Group::Ship),
    ("ShipAddress1", Group::Ship),
    ("ShipAddress2", Group::Ship),
    ("ShipPhoneNumber", Group::Ship),
    ("PayCharge", Group::Detail),
    ("ShipCharge", Group::Detail),
    ("GiftWrapCharge", Group::Detail),
    ("Discount", Group::Detail),
    ("UsePoint", Group::Detail),
    ("TotalPrice", Group::Detail),
    ("SettleAmount", Group::Detail),
    ("LineId", Group::Item),
    ("ItemId", Group::Item),
    ("Title", Group::Item),
    ("SubCode", Group::Item),
    ("ItemOption", Group::Item),
    ("UnitPrice", Group::Item),
    ("Quantity", Group::Item),
    ("ItemTaxRatio", Group::Item),
    ("ProductId", Group::Item),
    ("CategoryId", Group::Item),
    ("SellerId", Group::Seller),
];

pub fn group_of(field: &str) -> Option<Group> {
    FIELDS.iter().find(|(name, _)| *name == field).map(|(_, g)| *g)
}

/// orderList can also return these order-level values from the groups.
const LIST_EXTRA: &[&str] = &["PayStatus", "PayMethod", "ShipStatus", "TotalPrice", "BillLastName", "BillFirstName"];

pub fn listable(field: &str) -> bool {
    group_of(field) == Some(Group::Order) || LIST_EXTRA.contains(&field)
}

fn order_value(o: &Order, field: &str) -> Option<Value> {
    match field {
        "OrderId" => text(&o.order_id),
        "Version" => text(o.version),
        "OrderTime" => time(o.order_time),
        "LastUpdateTime" => time(o.last_update_time),
        "OrderStatus" => text(o.order_status),
        "IsSeen" => text(o.is_seen),
        "FraudHoldStatus" => text(o.fraud_hold_status),
        "PublicationTime" => time(o.publication_time),
        "CancelReason" => text(o.cancel_reason.map(|c| c.to_string()).unwrap_or_default()),
        "CancelReasonDetail" => cdata(&o.cancel_reason_detail),
        "BuyerComments" => cdata(&o.buyer_comments),
        "IsPointFix" => text(o.is_point_fix),
        "PayStatus" => text(o.pay_status),
        "PayMethod" => text(&o.pay_method),
        "PayMethodName" => cdata(&o.pay_method_name),
        "PayDate" => date(o.pay_date),
        "ShipStatus" => text(o.ship_status),
        "ShipMethod" => text(&o.ship_method),
        "ShipMethodName" => cdata(&o.ship_method_name),
        "ShipRequestDate" => date(o.ship_request_date),
        "ShipRequestTime" => text(&o.ship_request_time),
        "ShipCompanyCode" => text(&o.ship_company_code),
        "ShipInvoiceNumber1" => text(&o.ship_invoice_number1),
        "ShipInvoiceNumber2" => text(&o.ship_invoice_number2),
        "ShipDate" => date(o.ship_date),
        "PayCharge" => text(o.pay_charge),
        "ShipCharge" => text(o.ship_charge),
        "GiftWrapCharge" => text(o.gift_wrap_charge),
        "Discount" => text(o.discount),
        "UsePoint" => text(o.use_point),
        "TotalPrice" | "SettleAmount" => text(o.total_price()),
        "SellerId" => text(&o.seller_id),
        f => person(&o.bill, "Bill", f).or_else(|| person(&o.ship, "Ship", f)).flatten(),
    }
}

fn write_value(w: &mut XmlWriter, name: &str, value: Option<Value>) {
    match value {
        Some(Value::Text(t)) => w.leaf(name, &t),
        Some(Value::Cdata(t)) => w.cdata(name, &t),
        None => w.empty(name),
    };
}

/// One `<OrderInfo>` of an orderList page.
pub fn write_list_entry(w: &mut XmlWriter, index: usize, o: &Order, fields: &[&str]) {
    w.open("OrderInfo").leaf("Index", &index.to_string());
    for field in fields.iter().filter(|f| listable(f)) {
        write_value(w, field, order_value(o, field));
    }
    w.close("OrderInfo");
}

/// orderInfo's `<OrderInfo>`: order-level fields directly, the rest in their groups.
pub fn write_order_info(w: &mut XmlWriter, o: &Order, fields: &[&str]) {
    let wanted = |g: Group| fields.iter().filter(move |f| group_of(f) == Some(g));
    w.open("OrderInfo");
    for field in wanted(Group::Order) {
        write_value(w, field, order_value(o, field));
    }
    for (group, tag) in [(Group::Pay, "Pay"), (Group::Ship, "Ship"), (Group::Detail, "Detail")] {
        if wanted(group).next().is_some() {
            w.open(tag);
            for field in wanted(group) {
                write_value(w, field, order_value(o, field));
            }
            w.close(tag);
        }
    }
    if wanted(Group::Item).next().is_some() {
        for item in &o.items {
            w.open("Item");
            for field in wanted(Group::Item) {
                match *field {
                    "LineId" => &mut *w.leaf("LineId", &item.line_id.to_string()),
                    "ItemId" => w.leaf("ItemId", &item.item_id),
                    "Title" => w.cdata("Title", &item.title),
                    "SubCode" => w.leaf("SubCode", &item.sub_code),
                    "ItemOption" => {
                        for (i, (name, value)) in item.options.iter().enumerate() {
                            w.open("ItemOption").leaf("Index", &(i + 1).to_string());
                            w.cdata("Name", name).cdata("Value", value).close("ItemOption");
                        }
                        &mut *w
                    }
                    "UnitPrice" => w.leaf("UnitPrice", &item.unit_price.to_string()),
                    "Quantity" => w.leaf("Quantity", &item.quantity.to_string()),
                    "ItemTaxRatio" => w.leaf("ItemTaxRatio", &item.tax_ratio.to_string()),
                    "ProductId" => w.leaf("ProductId", &item.product_id),
                    "CategoryId" => w.leaf("CategoryId", &item.category_id.to_string()),
                    _ => &mut *w,
                };
            }
            w.close("Item");
        }
    }
    w.open("Seller").leaf("SellerId", &o.seller_id).close("Seller");
    w.open("Buyer").leaf("IsLogin", "true").close("Buyer");
    w.close("OrderInfo");
}

/// The sandbox fraud rule (seed 001): one item line, title starting with 注文保留, category
/// 4101 (to be released) or 2947 (to be confirmed as fraud) is held; anything else is not.
pub fn initial_fraud_hold(items: &[ItemLine]) -> u8 {
    match items {
        [only] if only.title.starts_with("注文保留") && matches!(only.category_id, 4101 | 2947) => 1,
        _ => 0,
    }
}

/// What the daily review does to a held order: 4101 → 2 (released), 2947 → 3 (fraud).
pub fn review_outcome(o: &Order) -> Option<u8> {
    if o.fraud_hold_status != 1 {
        return None;
    }
    match o.items.first().map(|i| i.category_id) {
        Some(2947) => Some(3),
        _ => Some(2),
    }
}
