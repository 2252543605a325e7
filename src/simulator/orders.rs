//! Orders as the simulator keeps them, and their XML: which fields orderList and orderInfo can
//! return, how orderInfo groups them, and which text goes in CDATA.

use std::{collections::HashMap, sync::LazyLock};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{domain::jst, xml::XmlWriter};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// ShipInvoiceNumberEmptyReason: why there is no tracking number (exclusive with the two
    /// numbers; what its values mean is not known, so any text is kept).
    #[serde(default)]
    pub ship_invoice_number_empty_reason: String,
    /// ShipUrl: the tracking page the store gives (at most 100 characters).
    #[serde(default)]
    pub ship_url: String,
    pub ship_date: Option<NaiveDate>,
    pub ship: Person,
    /// The gift fields of `<Ship>`: wrapping (NeedGiftWrap, GiftWrapType, GiftWrapMessage) and
    /// のし (NeedGiftWrapPaper, GiftWrapPaperType, GiftWrapName).
    #[serde(default)]
    pub gift: Gift,
    /// SocialGiftType: 0 an ordinary order; other values a social gift (assumed: 1).
    #[serde(default)]
    pub social_gift_type: u8,
    pub pay_charge: i64,
    pub ship_charge: i64,
    pub gift_wrap_charge: i64,
    pub discount: i64,
    pub use_point: i64,
    /// UseCouponData: the coupons used, as text (its layout at Yahoo is not known).
    #[serde(default)]
    pub use_coupon_data: String,
    /// TotalCouponDiscount: what the coupons took off.
    #[serde(default)]
    pub total_coupon_discount: i64,
    /// GiftCardDiscount: what a gift card paid.
    #[serde(default)]
    pub gift_card_discount: i64,
    pub items: Vec<ItemLine>,
}

/// An order's gift wrapping and のし, as orderInfo's `<Ship>` returns them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Gift {
    pub need_gift_wrap: bool,
    pub gift_wrap_type: String,
    pub gift_wrap_message: String,
    pub need_gift_wrap_paper: bool,
    pub gift_wrap_paper_type: String,
    pub gift_wrap_name: String,
}

impl Order {
    pub fn items_total(&self) -> i64 {
        self.items.iter().map(|i| i.unit_price * i.quantity).sum()
    }

    /// TotalPrice (and SettleAmount): items and charges less every discount and what points,
    /// coupons and a gift card paid (assumed; the contract names the parts, not the sum).
    pub fn total_price(&self) -> i64 {
        self.items_total() + self.pay_charge + self.ship_charge + self.gift_wrap_charge
            - self.discount
            - self.use_point
            - self.total_coupon_discount
            - self.gift_card_discount
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
    Buyer,
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
        _ => return None,
    })
}

/// Every orderInfo field name the simulator knows, by group: the names of Yahoo's orderInfo
/// field table as production clients ask for them. Fields the simulator keeps data for have
/// values; flags read `false`, amounts `0`; the rest come back empty. A name outside this table
/// is refused (orderInfo) rather than dropped.
#[rustfmt::skip]
pub const FIELDS: &[(Group, &[&str])] = &[
    (
        Group::Order,
        &[
            "OrderId", "Version", "ParentOrderId", "ChildOrderId", "DeviceType", "MobileCarrierName", "IsSeen",
            "IsSplit", "CancelReason", "CancelReasonDetail", "IsRoyalty", "IsRoyaltyFix", "IsSeller", "IsAffiliate",
            "IsRatingB2s", "NeedSnl", "OrderTime", "LastUpdateTime", "Suspect", "SuspectMessage", "OrderStatus",
            "StoreStatus", "RoyaltyFixTime", "SendConfirmTime", "SendPayTime", "PrintSlipTime", "PrintDeliveryTime",
            "PrintBillTime", "BuyerComments", "SellerComments", "Notes", "OperationUser", "Referer", "EntryPoint",
            "HistoryId", "UsageId", "UseCouponData", "TotalCouponDiscount", "ShippingCouponFlg",
            "ShippingCouponDiscount", "CampaignPoints", "IsMultiShip", "MultiShipId", "IsReadOnly",
            "IsFirstClassDrugIncludes", "IsFirstClassDrugAgreement", "IsWelcomeGiftIncludes", "YamatoCoopStatus",
            "FraudHoldStatus", "PublicationTime", "IsYahooAuctionOrder", "YahooAuctionMerchantId", "YahooAuctionId",
            "IsYahooAuctionDeferred", "YahooAuctionCategoryType", "YahooAuctionBidType", "UseGiftCardData",
            "SocialGiftType", "AffiliateType", "IsLineCommerceTabOrder", "XshoppingStoreType", "IsPointFix",
        ],
    ),
    (
        Group::Pay,
        &[
            "PayStatus", "SettleStatus", "PayType", "PayKind", "PayMethod", "PayMethodName", "SellerHandlingCharge",
            "PayActionTime", "PayDate", "PayNotes", "SettleId", "CardBrand", "CardNumber", "CardNumberLast4",
            "CardExpireYear", "CardExpireMonth", "CardPayType", "CardHolderName", "CardPayCount", "CardBirthDay",
            "UseYahooCard", "UseWallet", "NeedBillSlip", "NeedDetailedSlip", "NeedReceipt", "AgeConfirmField",
            "AgeConfirmValue", "AgeConfirmCheck", "BillAddressFrom", "BillFirstName", "BillFirstNameKana",
            "BillLastName", "BillLastNameKana", "BillZipCode", "BillPrefecture", "BillPrefectureKana", "BillCity",
            "BillCityKana", "BillAddress1", "BillAddress1Kana", "BillAddress2", "BillAddress2Kana", "BillPhoneNumber",
            "BillEmgPhoneNumber", "BillMailAddress", "BillSection1Field", "BillSection1Value", "BillSection2Field",
            "BillSection2Value", "PayNo", "PayNoIssueDate", "ConfirmNumber", "PaymentTerm", "IsApplePay",
        ],
    ),
    (
        Group::Ship,
        &[
            "ShipStatus", "ShipMethod", "ShipMethodName", "ShipRequestDate", "ShipRequestTime", "ShipNotes",
            "ShipCompanyCode", "ReceiveShopCode", "ShipInvoiceNumber1", "ShipInvoiceNumber2",
            "ShipInvoiceNumberEmptyReason", "ShipUrl", "ArriveType", "ShipDate", "ArrivalDate", "NeedGiftWrap",
            "GiftWrapCode", "GiftWrapType", "GiftWrapMessage", "NeedGiftWrapPaper", "GiftWrapPaperType",
            "GiftWrapName", "Option1Field", "Option1Type", "Option1Value", "Option2Field", "Option2Type",
            "Option2Value", "ShipFirstName", "ShipFirstNameKana", "ShipLastName", "ShipLastNameKana", "ShipZipCode",
            "ShipPrefecture", "ShipPrefectureKana", "ShipCity", "ShipCityKana", "ShipAddress1", "ShipAddress1Kana",
            "ShipAddress2", "ShipAddress2Kana", "ShipPhoneNumber", "ShipEmgPhoneNumber", "ShipSection1Field",
            "ShipSection1Value", "ShipSection2Field", "ShipSection2Value", "ReceiveSatelliteType",
            "ReceiveSatelliteSettleMethod", "ReceiveSatelliteMethod", "ReceiveSatelliteCompanyName",
            "ReceiveSatelliteShopCode", "ReceiveSatelliteShopName", "ReceiveSatelliteShipKind",
            "ReceiveSatelliteYahooCode", "ReceiveSatelliteCertificationNumber", "CollectionDate", "CashOnDeliveryTax",
            "NumberUnitsShipped", "ShipRequestTimeZoneCode", "ShipInstructType", "ShipInstructStatus",
            "ReceiveShopType", "ReceiveShopName", "ExcellentDelivery", "IsEazy", "EazyDeliveryCode",
            "EazyDeliveryName", "IsMallContactlessDelivery", "MallContactlessDeliveryStatus", "YamatoInputDate",
            "SagawaInputDate", "JapanPostInputDate", "FirstArrivalDateTime", "RemoteAreaShippingType",
        ],
    ),
    (
        Group::Detail,
        &[
            "PayCharge", "ShipCharge", "GiftWrapCharge", "Discount", "Adjustments", "SettleAmount", "UsePoint",
            "GiftCardDiscount", "TotalPrice", "SettlePayAmount", "IsGetPointFixAll", "TotalMallCouponDiscount",
            "IsGetStoreBonusFixAll",
        ],
    ),
    (
        Group::Item,
        &[
            "LineId", "ItemId", "Title", "SubCode", "SubCodeOption", "ItemOption", "Inscription", "IsUsed",
            "ImageId", "IsTaxable", "ItemTaxRatio", "Jan", "ProductId", "CategoryId", "AffiliateRatio", "UnitPrice",
            "Quantity", "PointAvailQuantity", "ReleaseDate", "PointFspCode", "PointRatioY", "PointRatioSeller",
            "UnitGetPoint", "IsGetPointFix", "GetPointFixDate", "CouponData", "CouponDiscount", "CouponUseNum",
            "OriginalPrice", "OriginalNum", "LeadTimeText", "LeadTimeStart", "LeadTimeEnd", "PriceType",
            "PickAndDeliveryCode", "PickAndDeliveryTransportRuleType", "YamatoUndeliverableReason",
            "StoreBonusRatioSeller", "UnitGetStoreBonus", "IsGetStoreBonusFix", "GetStoreBonusFixDate",
            "IsAffiliateItem",
        ],
    ),
    (Group::Seller, &["SellerId"]),
    (Group::Buyer, &["IsLogin", "FspLicenseCode", "FspLicenseName", "GuestAuthId"]),
];

pub fn group_of(field: &str) -> Option<Group> {
    // Looked up for every field of every orderInfo answer: a table built once.
    static BY_NAME: LazyLock<HashMap<&'static str, Group>> =
        LazyLock::new(|| FIELDS.iter().flat_map(|(group, names)| names.iter().map(move |n| (*n, *group))).collect());
    BY_NAME.get(field).copied()
}

/// orderList returns order-level values, taken flat from every group but the item lines.
pub fn listable(field: &str) -> bool {
    group_of(field).is_some_and(|g| g != Group::Item)
}

/// Flags the simulator has no data for read `false`, amounts `0`.
#[rustfmt::skip]
const FALSE_FLAGS: &[&str] = &[
    "IsSplit", "IsRoyalty", "IsRoyaltyFix", "IsSeller", "IsAffiliate", "IsRatingB2s", "NeedSnl", "IsMultiShip",
    "IsReadOnly", "IsFirstClassDrugIncludes", "IsFirstClassDrugAgreement", "IsWelcomeGiftIncludes",
    "IsYahooAuctionOrder", "IsYahooAuctionDeferred", "IsLineCommerceTabOrder", "UseYahooCard", "UseWallet",
    "NeedBillSlip", "NeedDetailedSlip", "NeedReceipt", "IsApplePay", "IsEazy", "IsMallContactlessDelivery",
    "IsGetPointFixAll", "IsGetStoreBonusFixAll", "IsUsed", "IsGetPointFix", "IsGetStoreBonusFix", "IsAffiliateItem",
];
#[rustfmt::skip]
const ZERO_AMOUNTS: &[&str] = &[
    "Suspect", "ShippingCouponDiscount", "CampaignPoints", "SellerHandlingCharge", "Adjustments",
    "TotalMallCouponDiscount", "CouponDiscount", "CouponUseNum", "UnitGetPoint", "UnitGetStoreBonus",
];

/// `DeviceType` (1 PC, 3 smartphone): plausible and stable per order.
fn device_type(o: &Order) -> u8 {
    if o.order_id.bytes().last().is_some_and(|b| b % 3 == 0) { 1 } else { 3 }
}

/// `PayType`: 1 for methods paid before shipping (bank transfer, convenience store), else 0.
fn pay_type(o: &Order) -> u8 {
    u8::from(o.pay_method.starts_with("payment_b") || o.pay_method.starts_with("payment_c"))
}

fn order_value(o: &Order, field: &str) -> Option<Value> {
    match field {
        "OrderId" => text(&o.order_id),
        "Version" => text(o.version),
        "DeviceType" => text(device_type(o)),
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
        "SocialGiftType" => text(o.social_gift_type),
        "UseCouponData" => cdata(&o.use_coupon_data),
        "TotalCouponDiscount" => text(o.total_coupon_discount),
        "PayStatus" => text(o.pay_status),
        "PayType" => text(pay_type(o)),
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
        "ShipInvoiceNumberEmptyReason" => text(&o.ship_invoice_number_empty_reason),
        "ShipUrl" => cdata(&o.ship_url),
        "ShipDate" => date(o.ship_date),
        "NeedGiftWrap" => text(o.gift.need_gift_wrap),
        "GiftWrapType" => cdata(&o.gift.gift_wrap_type),
        "GiftWrapMessage" => cdata(&o.gift.gift_wrap_message),
        "NeedGiftWrapPaper" => text(o.gift.need_gift_wrap_paper),
        "GiftWrapPaperType" => cdata(&o.gift.gift_wrap_paper_type),
        "GiftWrapName" => cdata(&o.gift.gift_wrap_name),
        "PayCharge" => text(o.pay_charge),
        "ShipCharge" => text(o.ship_charge),
        "GiftWrapCharge" => text(o.gift_wrap_charge),
        "Discount" => text(o.discount),
        "UsePoint" => text(o.use_point),
        "GiftCardDiscount" => text(o.gift_card_discount),
        "TotalPrice" | "SettleAmount" | "SettlePayAmount" => text(o.total_price()),
        "SellerId" => text(&o.seller_id),
        "IsLogin" => text(true),
        f if FALSE_FLAGS.contains(&f) => text(false),
        f if ZERO_AMOUNTS.contains(&f) => text(0),
        f => person(&o.bill, "Bill", f).or_else(|| person(&o.ship, "Ship", f)).flatten(),
    }
}

fn item_value(item: &ItemLine, field: &str) -> Option<Value> {
    match field {
        "LineId" => text(item.line_id),
        "ItemId" => text(&item.item_id),
        "Title" => cdata(&item.title),
        "SubCode" => text(&item.sub_code),
        "UnitPrice" | "OriginalPrice" => text(item.unit_price),
        "Quantity" | "PointAvailQuantity" | "OriginalNum" => text(item.quantity),
        "ItemTaxRatio" => text(item.tax_ratio),
        "ProductId" => text(&item.product_id),
        "CategoryId" => text(item.category_id),
        "IsTaxable" => text(true),
        f if FALSE_FLAGS.contains(&f) => text(false),
        f if ZERO_AMOUNTS.contains(&f) => text(0),
        _ => None,
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

/// orderInfo's `<OrderInfo>`: order-level fields directly, the rest in their groups; only the
/// fields asked for, and a group only when one of its fields was asked for. Every name must be
/// known ([`group_of`]); the caller refuses the others.
pub fn write_order_info(w: &mut XmlWriter, o: &Order, fields: &[&str]) {
    let grouped: Vec<(&str, Group)> = fields.iter().filter_map(|f| group_of(f).map(|g| (*f, g))).collect();
    let wanted = |g: Group| grouped.iter().filter(move |(_, fg)| *fg == g).map(|(f, _)| f);
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
                if *field == "ItemOption" {
                    for (i, (name, value)) in item.options.iter().enumerate() {
                        w.open("ItemOption").leaf("Index", &(i + 1).to_string());
                        w.cdata("Name", name).cdata("Value", value).close("ItemOption");
                    }
                } else {
                    write_value(w, field, item_value(item, field));
                }
            }
            w.close("Item");
        }
    }
    for (group, tag) in [(Group::Seller, "Seller"), (Group::Buyer, "Buyer")] {
        if wanted(group).next().is_some() {
            w.open(tag);
            for field in wanted(group) {
                write_value(w, field, order_value(o, field));
            }
            w.close(tag);
        }
    }
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
