//! The XML of each API (yahoo-store-api.md §4–§5): request builders and typed answers. Parsing
//! is strict about what we rely on (a missing `OrderId` or an unreadable time is an error) and
//! tolerant about the rest (CDATA, empty elements, unknown elements, lists of one).

use chrono::{DateTime, NaiveDate, Utc};

use super::error::YahooError;
/// The order is the domain's ([`crate::domain::order`]); this module fills it from Yahoo's XML.
pub use crate::domain::order::{Address, OrderDetail, OrderItem};
use crate::{
    domain::jst,
    xml::{Element, Node, XmlNode, XmlWriter},
};

/// The order-level fields an import asks orderList for.
pub const LIST_FIELDS: &str = "OrderId,Version,OrderTime,LastUpdateTime,OrderStatus,IsSeen,FraudHoldStatus,PublicationTime,PayStatus,ShipStatus,TotalPrice";

/// Everything an import asks orderInfo for.
pub const INFO_FIELDS: &str = "OrderId,Version,OrderTime,LastUpdateTime,OrderStatus,IsSeen,FraudHoldStatus,PublicationTime,CancelReason,BuyerComments,\
PayStatus,PayMethod,PayMethodName,PayDate,BillLastName,BillFirstName,BillLastNameKana,BillFirstNameKana,BillZipCode,BillPrefecture,BillCity,BillAddress1,BillAddress2,BillPhoneNumber,BillMailAddress,\
ShipStatus,ShipMethod,ShipMethodName,ShipRequestDate,ShipRequestTime,ShipCompanyCode,ShipInvoiceNumber1,ShipInvoiceNumber2,ShipDate,ShipLastName,ShipFirstName,ShipLastNameKana,ShipFirstNameKana,ShipZipCode,ShipPrefecture,ShipCity,ShipAddress1,ShipAddress2,ShipPhoneNumber,\
PayCharge,ShipCharge,GiftWrapCharge,Discount,UsePoint,TotalCouponDiscount,GiftCardDiscount,SocialGiftType,NeedGiftWrap,TotalPrice,SettleAmount,\
LineId,ItemId,Title,SubCode,ItemOption,UnitPrice,Quantity,ItemTaxRatio,ProductId,CategoryId,SellerId";

fn malformed(what: &str) -> YahooError {
    YahooError::Malformed(what.to_owned())
}

/// `Status` must be `OK`; `NG` is Yahoo refusing the request (the client already turns it into
/// that error; parsers fed a root by other paths say the same).
fn ok_status(root: &Element, path: &[&str]) -> Result<(), YahooError> {
    match root.path(path).map(|s| s.text.trim()) {
        Some("OK") => Ok(()),
        Some("NG") => Err(super::error::from_success(reqwest::StatusCode::OK, root.clone())
            .err()
            .unwrap_or_else(|| malformed("Status is NG"))),
        _ => Err(malformed("Status is not OK")),
    }
}

fn required<'a, N: XmlNode>(el: &'a N, name: &str) -> Result<&'a str, YahooError> {
    el.value_of(name).ok_or_else(|| malformed(&format!("{name} is missing")))
}

fn number<T: std::str::FromStr>(el: &impl XmlNode, name: &str) -> Result<Option<T>, YahooError> {
    el.value_of(name).map(|v| v.parse::<T>().map_err(|_| malformed(&format!("{name} is not a number")))).transpose()
}

fn time<N: XmlNode>(el: &N, name: &str) -> Result<Option<DateTime<Utc>>, YahooError> {
    el.value_of(name)
        .map(|v| jst::parse_response(v).ok_or_else(|| malformed(&format!("{name} is not a time"))))
        .transpose()
}

fn date<N: XmlNode>(el: &N, name: &str) -> Option<NaiveDate> {
    el.value_of(name).and_then(jst::parse_date)
}

fn boolean<N: XmlNode>(el: &N, name: &str) -> Option<bool> {
    match el.value_of(name) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    }
}

fn text<N: XmlNode>(el: Option<&N>, name: &str) -> String {
    el.and_then(|e| e.text_of(name)).unwrap_or_default().to_owned()
}

/// Which time an orderList search is by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchBy {
    /// `PublicationTime`: when an order became visible (its order time, or its release from a
    /// fraud hold). The import searches by it so that released orders are not missed.
    Publication,
    /// `LastUpdateTime`: catches changes to orders published before the window.
    LastUpdate,
}

impl SearchBy {
    fn condition(self) -> &'static str {
        match self {
            SearchBy::Publication => "PublicationTime",
            SearchBy::LastUpdate => "LastUpdateTime",
        }
    }
}

/// One orderList search page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderListQuery {
    pub by: SearchBy,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// 1-based.
    pub start: u32,
    pub result: u32,
    /// Ask for held orders too (`FraudHoldDisplayType=1`).
    pub include_held: bool,
}

impl OrderListQuery {
    pub fn to_xml(&self, seller_id: &str) -> String {
        let mut w = XmlWriter::with_capacity(512);
        w.open("Req").open("Search");
        w.leaf("Result", &self.result.to_string()).leaf("Start", &self.start.to_string()).leaf("Sort", "+order_time");
        w.open("Condition");
        let name = self.by.condition();
        w.leaf(&format!("{name}From"), &jst::format_condition(self.from));
        w.leaf(&format!("{name}To"), &jst::format_condition(self.to));
        if self.include_held {
            w.leaf("FraudHoldDisplayType", "1");
        }
        w.close("Condition").leaf("Field", LIST_FIELDS).close("Search");
        w.leaf("SellerId", seller_id).close("Req");
        w.finish()
    }
}

/// An order as orderList shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderSummary {
    pub order_id: String,
    pub version: Option<i64>,
    pub order_time: Option<DateTime<Utc>>,
    pub last_update_time: Option<DateTime<Utc>>,
    pub publication_time: Option<DateTime<Utc>>,
    pub order_status: Option<u8>,
    pub fraud_hold_status: u8,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderListPage {
    pub total: u64,
    pub orders: Vec<OrderSummary>,
}

pub fn parse_order_list(root: &Element) -> Result<OrderListPage, YahooError> {
    ok_status(root, &["Status"])?;
    let search = root.child("Search").ok_or_else(|| malformed("Search is missing"))?;
    let total = number::<u64>(search, "TotalCount")?.ok_or_else(|| malformed("TotalCount is missing"))?;
    let orders = search
        .children_named("OrderInfo")
        .map(|o| {
            Ok(OrderSummary {
                order_id: required(o, "OrderId")?.to_owned(),
                version: number(o, "Version")?,
                order_time: time(o, "OrderTime")?,
                last_update_time: time(o, "LastUpdateTime")?,
                publication_time: time(o, "PublicationTime")?,
                order_status: number(o, "OrderStatus")?,
                fraud_hold_status: number(o, "FraudHoldStatus")?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, YahooError>>()?;
    Ok(OrderListPage { total, orders })
}

pub fn order_info_xml(seller_id: &str, order_id: &str) -> String {
    let mut w = XmlWriter::with_capacity(1024);
    w.open("Req").open("Target").leaf("OrderId", order_id).leaf("Field", INFO_FIELDS).close("Target");
    w.leaf("SellerId", seller_id).close("Req");
    w.finish()
}

/// The ten address fields under `Pay` (`Bill…`) or `Ship` (`Ship…`), in [`Address`] order.
const BILL_FIELDS: [&str; 10] = [
    "BillLastName",
    "BillFirstName",
    "BillLastNameKana",
    "BillFirstNameKana",
    "BillZipCode",
    "BillPrefecture",
    "BillCity",
    "BillAddress1",
    "BillAddress2",
    "BillPhoneNumber",
];
const SHIP_FIELDS: [&str; 10] = [
    "ShipLastName",
    "ShipFirstName",
    "ShipLastNameKana",
    "ShipFirstNameKana",
    "ShipZipCode",
    "ShipPrefecture",
    "ShipCity",
    "ShipAddress1",
    "ShipAddress2",
    "ShipPhoneNumber",
];

fn address<N: XmlNode>(group: Option<&N>, names: &[&str; 10]) -> Address {
    let f = |i: usize| text(group, names[i]);
    Address {
        last_name: f(0),
        first_name: f(1),
        last_name_kana: f(2),
        first_name_kana: f(3),
        zip_code: f(4),
        prefecture: f(5),
        city: f(6),
        address1: f(7),
        address2: f(8),
        phone: f(9),
    }
}

pub fn parse_order_info(root: &Element) -> Result<OrderDetail, YahooError> {
    ok_status(root, &["Result", "Status"])?;
    order_info_fields(root)
}

/// Every element name [`order_info_fields`] and [`order_info_answer`] ask for, sorted.
fn order_info_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = INFO_FIELDS.split(',').chain(BILL_FIELDS).chain(SHIP_FIELDS).collect();
        names.extend([
            "ResultSet",
            "Result",
            "Status",
            "Warning",
            "Error",
            "OrderInfo",
            "Pay",
            "Ship",
            "Detail",
            "Item",
            "Seller",
            "Name",
            "Value",
        ]);
        names.sort_unstable();
        names.dedup();
        names
    })
}

/// orderInfo's answer read straight from its bytes, without an owned element tree: `None`
/// unless it is a plain success (a `ResultSet` whose `Result` says `OK` and carries no
/// warning), so that errors, refusals and warnings take the general path
/// ([`super::client::YahooClient::call`] and [`parse_order_info`]) and read exactly as they
/// always did. A success reads the same either way (same reader rules, same field rules).
pub fn order_info_answer(bytes: &[u8]) -> Option<Result<OrderDetail, YahooError>> {
    let root = Node::parse(bytes, order_info_names()).ok()?;
    if root.name != "ResultSet" {
        return None;
    }
    let result = root.child("Result")?;
    if result.text_of("Status") != Some("OK") || result.child("Warning").is_some() {
        return None;
    }
    Some(order_info_fields(&root))
}

/// The order of an orderInfo answer whose status was checked.
fn order_info_fields<N: XmlNode>(root: &N) -> Result<OrderDetail, YahooError> {
    let o = root.path(&["Result", "OrderInfo"]).ok_or_else(|| malformed("OrderInfo is missing"))?;
    let pay = o.child("Pay");
    let ship = o.child("Ship");
    let detail = o.child("Detail");
    let items = o
        .children_named("Item")
        .map(|i| {
            Ok(OrderItem {
                line_id: number(i, "LineId")?.ok_or_else(|| malformed("LineId is missing"))?,
                item_id: text(Some(i), "ItemId"),
                title: text(Some(i), "Title"),
                sub_code: text(Some(i), "SubCode"),
                options: i
                    .children_named("ItemOption")
                    .map(|opt| (text(Some(opt), "Name"), text(Some(opt), "Value")))
                    .collect(),
                unit_price: number(i, "UnitPrice")?.unwrap_or(0),
                quantity: number(i, "Quantity")?.unwrap_or(0),
                tax_ratio: number(i, "ItemTaxRatio")?,
                product_id: text(Some(i), "ProductId"),
                category_id: number(i, "CategoryId")?,
            })
        })
        .collect::<Result<Vec<_>, YahooError>>()?;
    let opt_number = |g: Option<&N>, name: &str| g.map(|g| number::<u8>(g, name)).transpose().map(Option::flatten);
    let amount = |name: &str| -> Result<i64, YahooError> {
        Ok(detail.map(|d| number::<i64>(d, name)).transpose()?.flatten().unwrap_or(0))
    };
    Ok(OrderDetail {
        order_id: required(o, "OrderId")?.to_owned(),
        version: number(o, "Version")?.ok_or_else(|| malformed("Version is missing"))?,
        order_time: time(o, "OrderTime")?.ok_or_else(|| malformed("OrderTime is missing"))?,
        last_update_time: time(o, "LastUpdateTime")?,
        publication_time: time(o, "PublicationTime")?,
        order_status: number(o, "OrderStatus")?.ok_or_else(|| malformed("OrderStatus is missing"))?,
        is_seen: boolean(o, "IsSeen"),
        fraud_hold_status: number(o, "FraudHoldStatus")?.unwrap_or(0),
        cancel_reason: number(o, "CancelReason")?,
        buyer_comments: text(Some(o), "BuyerComments"),
        pay_status: opt_number(pay, "PayStatus")?,
        pay_method: text(pay, "PayMethod"),
        pay_method_name: text(pay, "PayMethodName"),
        pay_date: pay.and_then(|p| date(p, "PayDate")),
        bill: address(pay, &BILL_FIELDS),
        bill_mail: text(pay, "BillMailAddress"),
        ship_status: opt_number(ship, "ShipStatus")?,
        ship_method: text(ship, "ShipMethod"),
        ship_method_name: text(ship, "ShipMethodName"),
        ship_request_date: ship.and_then(|s| date(s, "ShipRequestDate")),
        ship_request_time: text(ship, "ShipRequestTime"),
        ship_company_code: text(ship, "ShipCompanyCode"),
        ship_invoice_number1: text(ship, "ShipInvoiceNumber1"),
        ship_invoice_number2: text(ship, "ShipInvoiceNumber2"),
        ship_date: ship.and_then(|s| date(s, "ShipDate")),
        ship: address(ship, &SHIP_FIELDS),
        pay_charge: amount("PayCharge")?,
        ship_charge: amount("ShipCharge")?,
        gift_wrap_charge: amount("GiftWrapCharge")?,
        discount: amount("Discount")?,
        use_point: amount("UsePoint")?,
        coupon_discount: number(o, "TotalCouponDiscount")?.unwrap_or(0),
        gift_card_discount: amount("GiftCardDiscount")?,
        social_gift_type: number(o, "SocialGiftType")?.unwrap_or(0),
        need_gift_wrap: ship.and_then(|s| boolean(s, "NeedGiftWrap")),
        total_price: amount("TotalPrice")?,
        settle_amount: amount("SettleAmount")?,
        items,
        seller_id: text(o.child("Seller"), "SellerId"),
    })
}

/// orderStatusChange. `cancel_reason` is required by Yahoo when the new status is 4.
pub fn status_change_xml(
    seller_id: &str,
    order_id: &str,
    status: u8,
    cancel_reason: Option<u16>,
    operator: &str,
) -> String {
    let mut w = XmlWriter::with_capacity(512);
    w.open("Req").open("Target").leaf("OrderId", order_id);
    w.leaf("IsPointFix", if status == 5 { "true" } else { "false" }).leaf("OperationUser", operator).close("Target");
    w.open("Order").leaf("OrderStatus", &status.to_string());
    if let Some(reason) = cancel_reason {
        w.leaf("CancelReason", &reason.to_string());
    }
    w.close("Order").leaf("SellerId", seller_id).close("Req");
    w.finish()
}

/// orderShipStatusChange.
pub fn ship_change_xml(
    seller_id: &str,
    order_id: &str,
    ship_status: u8,
    company: &str,
    invoice: &str,
    ship_date: Option<NaiveDate>,
    ship_url: &str,
) -> String {
    let mut w = XmlWriter::with_capacity(512);
    w.open("Req").open("Target").leaf("OrderId", order_id).close("Target");
    w.open("Order").open("Ship").leaf("ShipStatus", &ship_status.to_string());
    if !company.is_empty() {
        w.leaf("ShipCompanyCode", company);
    }
    // Never together with ShipInvoiceNumberEmptyReason (Yahoo refuses both at once).
    w.leaf("ShipInvoiceNumber1", invoice);
    if let Some(d) = ship_date {
        w.leaf("ShipDate", &jst::format_date(d));
    }
    if !ship_url.is_empty() {
        w.leaf("ShipUrl", ship_url);
    }
    w.close("Ship").close("Order").leaf("SellerId", seller_id).close("Req");
    w.finish()
}

/// orderPayStatusChange.
pub fn pay_change_xml(seller_id: &str, order_id: &str, pay_status: u8, pay_date: Option<NaiveDate>) -> String {
    let mut w = XmlWriter::with_capacity(512);
    w.open("Req").open("Target").leaf("OrderId", order_id).close("Target");
    w.open("Order").open("Pay").leaf("PayStatus", &pay_status.to_string());
    if let Some(d) = pay_date {
        w.leaf("PayDate", &jst::format_date(d));
    }
    w.close("Pay").close("Order").leaf("SellerId", seller_id).close("Req");
    w.finish()
}

/// A warning Yahoo attaches to a successful answer: `<Warning><Code/><Message/></Warning>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// Every `<Warning>` of an answer (after `Status`, under `Result` or at the root), in order.
pub fn warnings(root: &Element) -> Vec<Warning> {
    let parent = root.child("Result").unwrap_or(root);
    parent
        .children_named("Warning")
        .map(|w| Warning {
            code: text(Some(w), "Code"),
            // An element without children is a warning written as plain text.
            message: w.value_of("Message").map(str::to_owned).unwrap_or_else(|| w.text.trim().to_owned()),
        })
        .filter(|w| !w.code.is_empty() || !w.message.is_empty())
        .collect()
}

/// The answer of the change APIs: OK, with the warnings Yahoo attached (often none).
pub fn parse_change(root: &Element) -> Result<Vec<Warning>, YahooError> {
    ok_status(root, &["Result", "Status"])?;
    Ok(warnings(root))
}

/// orderCount's query: the seller ID as the camelCase `sellerId` parameter.
pub fn order_count_query(seller_id: &str) -> Vec<(String, String)> {
    vec![("sellerId".to_owned(), seller_id.to_owned())]
}

/// orderCount (注文ステータス別件数参照): 新規注文, 新規予約 and 保留, and every counter as sent
/// (Yahoo lists more than these three; their names are not confirmed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderCount {
    pub new_order: u64,
    pub new_reserve: u64,
    /// 0 when the answer has no `Holding`.
    pub holding: u64,
    pub all: Vec<(String, u64)>,
}

pub fn parse_order_count(root: &Element) -> Result<OrderCount, YahooError> {
    ok_status(root, &["Result", "Status"])?;
    let count = root.path(&["Result", "Count"]).ok_or_else(|| malformed("Count is missing"))?;
    let all = count
        .children
        .iter()
        .filter(|c| !c.text.trim().is_empty())
        .map(|c| {
            let n = c.text.trim().parse::<u64>().map_err(|_| malformed(&format!("{} is not a number", c.name)))?;
            Ok((c.name.clone(), n))
        })
        .collect::<Result<Vec<_>, YahooError>>()?;
    let get = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    Ok(OrderCount {
        new_order: get("NewOrder").ok_or_else(|| malformed("NewOrder is missing"))?,
        new_reserve: get("NewReserve").ok_or_else(|| malformed("NewReserve is missing"))?,
        holding: get("Holding").unwrap_or(0),
        all,
    })
}

/// One item of getStock / setStock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockLine {
    pub item_code: String,
    pub sub_code: String,
    pub found: bool,
    pub quantity: Option<i64>,
    pub error_code: Option<String>,
}

pub fn parse_stock(root: &Element) -> Result<Vec<StockLine>, YahooError> {
    if root.name != "ResultSet" {
        return Err(malformed("ResultSet is missing"));
    }
    root.children_named("Result")
        .map(|r| {
            Ok(StockLine {
                item_code: required(r, "ItemCode")?.to_owned(),
                sub_code: text(Some(r), "SubCode"),
                found: r.value_of("Status").is_none_or(|s| s == "1"),
                quantity: number(r, "Quantity")?,
                error_code: r.value_of("ErrorCode").map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shapes as the contract shows them: CDATA, empty elements, a list of one, unknown fields.
    const ORDER_INFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ResultSet totalResultsAvailable="1" totalResultsReturned="1" firstResultPosition="1">
  <Result><Status>OK</Status>
    <OrderInfo>
      <OrderId>mystore-10000001</OrderId><Version>3</Version>
      <OrderTime>2024-06-01T10:15:30+09:00</OrderTime><LastUpdateTime>2024-06-01T11:00:00+09:00</LastUpdateTime>
      <OrderStatus>2</OrderStatus><IsSeen>false</IsSeen><FraudHoldStatus/><PublicationTime>2024-06-01T10:15:30+09:00</PublicationTime>
      <BuyerComments><![CDATA[午前中 <希望> & 置き配]]></BuyerComments><SomethingNew>x</SomethingNew>
      <Pay><PayStatus>1</PayStatus><PayMethodName><![CDATA[クレジットカード決済]]></PayMethodName><PayDate>2024-06-01</PayDate>
        <BillLastName><![CDATA[山田]]></BillLastName><BillFirstName><![CDATA[太郎]]></BillFirstName><BillMailAddress>t@example.jp</BillMailAddress></Pay>
      <Ship><ShipStatus>1</ShipStatus><ShipInvoiceNumber1/><ShipCity><![CDATA[千代田区]]></ShipCity></Ship>
      <Detail><TotalPrice>3280</TotalPrice></Detail>
      <Item><LineId>1</LineId><ItemId>mug</ItemId><Title><![CDATA[マグ]]></Title><SubCode/>
        <ItemOption><Index>1</Index><Name><![CDATA[色]]></Name><Value><![CDATA[青]]></Value></ItemOption>
        <UnitPrice>1640</UnitPrice><Quantity>2</Quantity></Item>
      <Seller><SellerId>mystore</SellerId></Seller>
    </OrderInfo>
  </Result>
</ResultSet>"#;

    #[test]
    fn order_info_as_recorded() {
        let o = parse_order_info(&Element::parse(ORDER_INFO.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            (o.order_id.as_str(), o.version, o.order_status, o.fraud_hold_status),
            ("mystore-10000001", 3, 2, 0)
        );
        assert_eq!(o.buyer_comments, "午前中 <希望> & 置き配");
        assert_eq!(o.bill.last_name, "山田");
        assert_eq!(o.ship.city, "千代田区");
        assert_eq!(o.ship_invoice_number1, "");
        assert_eq!(o.items.len(), 1);
        assert_eq!(o.items[0].options, vec![("色".to_owned(), "青".to_owned())]);
        assert_eq!(o.total_price, 3280);
        assert_eq!(jst::format_response(o.order_time), "2024-06-01T10:15:30+09:00");
    }

    #[test]
    fn order_info_reads_the_same_without_a_tree() {
        let tree = parse_order_info(&Element::parse(ORDER_INFO.as_bytes()).unwrap()).unwrap();
        assert_eq!(order_info_answer(ORDER_INFO.as_bytes()), Some(Ok(tree)));
        // Entities, split text and a prefixed name read as the tree reads them.
        let odd = ORDER_INFO
            .replace("<Title><![CDATA[マグ]]></Title>", "<Title>マ<![CDATA[グ]]> &amp; 皿</Title>")
            .replace("<OrderId>mystore-10000001</OrderId>", "<y:OrderId> mystore-10000001 </y:OrderId>");
        let tree = parse_order_info(&Element::parse(odd.as_bytes()).unwrap()).unwrap();
        assert_eq!(tree.items[0].title, "マグ & 皿");
        assert_eq!(order_info_answer(odd.as_bytes()), Some(Ok(tree)));
        // Anything but a plain success is left to the general path.
        let warned = ORDER_INFO.replace("<Status>OK</Status>", "<Status>OK</Status><Warning><Code>w</Code></Warning>");
        assert_eq!(order_info_answer(warned.as_bytes()), None);
        assert_eq!(order_info_answer(ORDER_INFO.replace(">OK<", ">NG<").as_bytes()), None);
        assert_eq!(order_info_answer(b"<Error><Message>x</Message></Error>"), None);
        assert_eq!(order_info_answer(&ORDER_INFO.as_bytes()[..200]), None);
    }

    #[test]
    fn order_list_pages() {
        let zero = "<Result><Status>OK</Status><Search><TotalCount>0</TotalCount></Search></Result>";
        let page = parse_order_list(&Element::parse(zero.as_bytes()).unwrap()).unwrap();
        assert_eq!((page.total, page.orders.len()), (0, 0));
        let one = "<Result><Status>OK</Status><Search><TotalCount>1</TotalCount><OrderInfo><Index>1</Index><OrderId>a-1</OrderId><FraudHoldStatus>1</FraudHoldStatus><PublicationTime>2024-06-01T10:15:30+09:00</PublicationTime></OrderInfo></Search></Result>";
        let page = parse_order_list(&Element::parse(one.as_bytes()).unwrap()).unwrap();
        assert_eq!(page.orders[0].fraud_hold_status, 1);
        let bad = "<Result><Status>OK</Status><Search><TotalCount>1</TotalCount><OrderInfo><Index>1</Index></OrderInfo></Search></Result>";
        assert!(
            parse_order_list(&Element::parse(bad.as_bytes()).unwrap()).is_err(),
            "an order without OrderId is an error"
        );
        let q = OrderListQuery {
            by: SearchBy::Publication,
            from: Utc::now(),
            to: Utc::now(),
            start: 1,
            result: 100,
            include_held: true,
        };
        let xml = Element::parse(q.to_xml("s").as_bytes()).unwrap();
        assert_eq!(xml.path(&["Search", "Condition", "FraudHoldDisplayType"]).unwrap().text, "1");
    }

    #[test]
    fn change_answers_keep_every_warning() {
        let ok = Element::parse(b"<ResultSet><Result><Status>OK</Status></Result></ResultSet>").unwrap();
        assert_eq!(parse_change(&ok).unwrap(), vec![]);
        let warned = r#"<?xml version="1.0" encoding="UTF-8" ?>
<ResultSet totalResultsAvailable="1" totalResultsReturned="1" firstResultPosition="1"><Result><Status>OK</Status>
<Warning><Target>ShipInvoiceNumber1</Target><Code>od-w1</Code><Message><![CDATA[
  送り状番号を確認してください
]]></Message></Warning><Warning><Code>od-w2</Code><Message>二件目</Message></Warning></Result></ResultSet>"#;
        assert_eq!(
            parse_change(&Element::parse(warned.as_bytes()).unwrap()).unwrap(),
            vec![
                Warning { code: "od-w1".into(), message: "送り状番号を確認してください".into() },
                Warning { code: "od-w2".into(), message: "二件目".into() },
            ]
        );
        let plain =
            Element::parse(b"<ResultSet><Result><Status>OK</Status><Warning> w </Warning></Result></ResultSet>")
                .unwrap();
        assert_eq!(parse_change(&plain).unwrap(), vec![Warning { code: String::new(), message: "w".into() }]);
        // NG is Yahoo's refusal with its code, not a malformed answer.
        let ng = Element::parse(b"<ResultSet><Result><Status>NG</Status><Error><Code>od1</Code><Message>no</Message></Error></Result></ResultSet>").unwrap();
        assert_eq!(
            parse_change(&ng).unwrap_err(),
            YahooError::Api { status: 200, code: Some("od1".into()), message: "no".into() }
        );
    }

    #[test]
    fn order_count_as_recorded() {
        // A public client's recorded answer has no Holding; the sandbox's has it.
        let recorded = r#"<ResultSet totalResultsAvailable="1" totalResultsReturned="1" firstResultPosition="1">
  <Result>
    <Status>OK</Status>
    <Count>
      <NewOrder>27</NewOrder>
      <NewReserve>4</NewReserve>
    </Count>
  </Result>
</ResultSet>"#;
        let c = parse_order_count(&Element::parse(recorded.as_bytes()).unwrap()).unwrap();
        assert_eq!((c.new_order, c.new_reserve, c.holding), (27, 4, 0));
        let more = "<ResultSet><Result><Status>OK</Status><Count><NewOrder>1</NewOrder><NewReserve>0</NewReserve><Holding>2</Holding><WaitPayment>5</WaitPayment><Other/></Count></Result></ResultSet>";
        let c = parse_order_count(&Element::parse(more.as_bytes()).unwrap()).unwrap();
        assert_eq!(c.holding, 2);
        assert_eq!(c.all.last(), Some(&("WaitPayment".to_owned(), 5)));
        let bad = "<ResultSet><Result><Status>OK</Status><Count><NewOrder>x</NewOrder><NewReserve>0</NewReserve></Count></Result></ResultSet>";
        assert!(matches!(parse_order_count(&Element::parse(bad.as_bytes()).unwrap()), Err(YahooError::Malformed(_))));
        assert_eq!(order_count_query("s"), vec![("sellerId".to_owned(), "s".to_owned())]);
    }

    #[test]
    fn parsers_never_panic() {
        // Deterministic mutation fuzz over recorded shapes: every parser sees every mutant.
        let seeds = [
            ORDER_INFO.to_owned(),
            "<Result><Status>OK</Status><Search><TotalCount>2</TotalCount><OrderInfo><Index>1</Index><OrderId>a</OrderId><Version>1</Version></OrderInfo></Search></Result>".to_owned(),
            r#"<ResultSet ok="1"><Result><ItemCode>a</ItemCode><SubCode/><Status>1</Status><Quantity>5</Quantity></Result></ResultSet>"#.to_owned(),
            "<ResultSet><Result><Status>OK</Status><Warning>w</Warning></Result></ResultSet>".to_owned(),
            "<ResultSet><Result><Status>OK</Status><Warning><Code>c</Code><Message>m</Message></Warning></Result></ResultSet>".to_owned(),
            "<ResultSet><Result><Status>NG</Status><Error><Code>c</Code><Message>m</Message></Error></Result></ResultSet>".to_owned(),
            "<ResultSet><Result><Status>OK</Status><Count><NewOrder>27</NewOrder><NewReserve>4</NewReserve></Count></Result></ResultSet>".to_owned(),
        ];
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for seed in &seeds {
            for _ in 0..3000 {
                let mut bytes = seed.clone().into_bytes();
                for _ in 0..(next() % 4 + 1) {
                    let i = next() as usize % bytes.len();
                    match next() % 3 {
                        0 => bytes[i] = next() as u8,
                        1 => {
                            bytes.remove(i);
                        }
                        _ => bytes.insert(i, b"<>/&;]"[next() as usize % 6]),
                    }
                }
                // The tree-less orderInfo reader accepts only what the general path reads as
                // a success without warnings, and reads it the same.
                if let Some(fast) = order_info_answer(&bytes) {
                    let root = Element::parse(&bytes).expect("the tree reads what the fast reader read");
                    let root = super::super::error::from_success(reqwest::StatusCode::OK, root).expect("a success");
                    assert!(warnings(&root).is_empty());
                    assert_eq!(fast, parse_order_info(&root));
                }
                if let Ok(root) = Element::parse(&bytes) {
                    let _ = parse_order_info(&root);
                    let _ = parse_order_list(&root);
                    let _ = parse_stock(&root);
                    let _ = parse_change(&root);
                    let _ = parse_order_count(&root);
                }
            }
        }
    }
}
