//! The shipping day's rules (issue 33, shipping-day.md §1, §6): which orders may leave as a
//! parcel, and which label an order gets.
//!
//! [`may_leave`] is the one gate every shipping path asks (label export from the list or the
//! 出荷 page, a tracking number by upload, by hand or in bulk, rules later): the fraud-hold rule
//! first, then the order's state, then payment before shipping. A refused order is listed with
//! the reason; nothing about it is written. Pure: the caller reads the facts. A tag marked
//! 出荷止め stops an order as the fraud-hold rule does, with the tag named (issue 30).

use super::{
    order::{FRAUD_HOLD_REFUSAL, FraudHoldStatus, OrderStatus},
    store::InternalStatus,
};

/// What the gate needs to know of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveFacts {
    pub internal_status: InternalStatus,
    pub yahoo_status: Option<OrderStatus>,
    pub fraud_hold: FraudHoldStatus,
    /// The pay method's name when it is settled before shipping and Yahoo says 未入金
    /// (see [`unpaid`]).
    pub unpaid: Option<String>,
    /// The name of a 出荷止め tag the order carries (the first by name), if any.
    pub stop_tag: Option<String>,
}

/// Why an order may not leave.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Exclusion {
    /// FraudHoldStatus 1 or 3: never a label, a tracking number or a ship push, whatever the
    /// store's restriction switch says (a label printed is a parcel shipped).
    #[error("{FRAUD_HOLD_REFUSAL}（審査中・不正確定の注文は出荷できません）")]
    FraudHold,
    /// A tag marked 出荷止め: kept off every shipping path until someone removes it.
    #[error("出荷止めのタグ「{0}」が付いています。出荷するときはタグを外してください")]
    StopTag(String),
    #[error("「{}」の注文は出荷できません", .0.label())]
    Status(InternalStatus),
    #[error("Yahoo!で「{}」の注文は出荷できません", .0.label())]
    YahooStatus(OrderStatus),
    /// A method settled before shipping, not paid yet: only with the merchant's confirmation.
    #[error("入金前の注文です（{0}・未入金）。入金を確認してから出荷してください")]
    Unpaid(String),
}

impl Exclusion {
    /// Whether the merchant may override it (only payment: the fraud-hold rule is never
    /// overridden).
    pub fn confirmable(&self) -> bool {
        matches!(self, Exclusion::Unpaid(_))
    }
}

/// The internal statuses an order may leave from. 出荷済み is among them for a second parcel or
/// a re-export (the duplicate guard asks first); 保留 is the merchant's own stop.
fn leaves_from(status: InternalStatus) -> bool {
    use InternalStatus::*;
    matches!(status, New | AwaitingPayment | AwaitingShipment | Shipped)
}

/// ShipUrl for a number of Yahoo's ShipCompanyCode: the carrier's tracking page, or empty
/// when the company has none we know.
pub fn ship_url(company_code: &str, number: &str) -> String {
    crate::carrier::Carrier::of_company_code(company_code).map_or_else(String::new, |c| c.tracking_url(number))
}

/// The pay methods a store starts with as settled before shipping: 銀行振込 and コンビニ払い
/// (Yahoo's codes as the simulator and the contract use them). The merchant edits the list on
/// the store's 出荷設定; Yahoo's other prepay codes are not confirmed.
pub const DEFAULT_PREPAY_METHODS: &str = "payment_b1,payment_c1";

/// Whether a pay method is settled before shipping, per the store's list.
pub fn is_prepay(prepay_methods: &str, pay_method: &str) -> bool {
    !pay_method.is_empty() && prepay_methods.split(',').any(|m| m.trim() == pay_method)
}

/// The pay method's name (its code when Yahoo gave none) when the order must be paid before
/// it ships and is not: a method on the store's list, PayStatus 0.
pub fn unpaid(prepay_methods: &str, pay_method: &str, pay_method_name: &str, pay_status: Option<u8>) -> Option<String> {
    (pay_status == Some(0) && is_prepay(prepay_methods, pay_method))
        .then(|| if pay_method_name.is_empty() { pay_method } else { pay_method_name }.to_owned())
}

/// The part of the gate that also guards a status change to 出荷済み (`status::plan_change`,
/// whose transition table judges the status itself): the fraud-hold rule, then payment.
pub fn check_hold_and_payment(facts: &LeaveFacts, unpaid_confirmed: bool) -> Result<(), Exclusion> {
    if facts.fraud_hold.is_held() {
        return Err(Exclusion::FraudHold);
    }
    if let Some(tag) = &facts.stop_tag {
        return Err(Exclusion::StopTag(tag.clone()));
    }
    match &facts.unpaid {
        Some(method) if !unpaid_confirmed => Err(Exclusion::Unpaid(method.clone())),
        _ => Ok(()),
    }
}

/// The one gate: may this order become a parcel? `unpaid_confirmed` is the merchant's
/// 「入金前でも出荷する」 for this order.
pub fn may_leave(facts: &LeaveFacts, unpaid_confirmed: bool) -> Result<(), Exclusion> {
    if facts.fraud_hold.is_held() {
        return Err(Exclusion::FraudHold);
    }
    if let Some(tag) = &facts.stop_tag {
        return Err(Exclusion::StopTag(tag.clone()));
    }
    if !leaves_from(facts.internal_status) {
        return Err(Exclusion::Status(facts.internal_status));
    }
    if let Some(y @ (OrderStatus::Cancelled | OrderStatus::Reserved)) = facts.yahoo_status {
        return Err(Exclusion::YahooStatus(y));
    }
    check_hold_and_payment(facts, unpaid_confirmed)
}

/// The label file kinds (shipping-day.md §1).
pub use crate::carrier::LabelFormat;

/// One row of a store's mapping from Yahoo's ShipMethod and PayMethod to a label: the first
/// matching row wins; an empty pattern matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingRow {
    pub ship_method: String,
    pub pay_method: String,
    pub format: LabelFormat,
    /// B2's 送り状種類 (0 発払い, 2 コレクト, …); unused by the other formats.
    pub service: String,
    pub cool: crate::carrier::Cool,
}

impl MappingRow {
    fn matches(&self, ship_method: &str, pay_method: &str) -> bool {
        (self.ship_method.is_empty() || self.ship_method == ship_method)
            && (self.pay_method.is_empty() || self.pay_method == pay_method)
    }
}

/// Yahoo's PayMethod of 代金引換.
pub const CASH_ON_DELIVERY: &str = "payment_d1";

/// The rows a store starts with: 代金引換 goes as B2 コレクト.
pub fn default_mapping() -> Vec<MappingRow> {
    vec![MappingRow {
        ship_method: String::new(),
        pay_method: CASH_ON_DELIVERY.into(),
        format: LabelFormat::B2,
        service: "2".into(),
        cool: crate::carrier::Cool::Normal,
    }]
}

/// The label an order gets: the first matching row, else the fallback.
pub fn choose<'a>(
    rows: &'a [MappingRow],
    fallback: &'a MappingRow,
    ship_method: &str,
    pay_method: &str,
) -> &'a MappingRow {
    rows.iter().find(|r| r.matches(ship_method, pay_method)).unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: InternalStatus, hold: FraudHoldStatus) -> LeaveFacts {
        LeaveFacts {
            internal_status: status,
            yahoo_status: Some(OrderStatus::Processing),
            fraud_hold: hold,
            unpaid: None,
            stop_tag: None,
        }
    }

    #[test]
    fn a_stop_tag_keeps_an_order_in_whatever_is_confirmed() {
        let mut f = facts(InternalStatus::AwaitingShipment, FraudHoldStatus::None);
        f.stop_tag = Some("住所確認中".into());
        let refused = may_leave(&f, true).unwrap_err();
        assert_eq!(refused, Exclusion::StopTag("住所確認中".into()));
        assert!(refused.to_string().contains("住所確認中") && !refused.confirmable());
        assert_eq!(check_hold_and_payment(&f, true), Err(Exclusion::StopTag("住所確認中".into())));
        // The fraud-hold rule is named first.
        f.fraud_hold = FraudHoldStatus::UnderReview;
        assert_eq!(may_leave(&f, true), Err(Exclusion::FraudHold));
    }

    const PREPAY: &str = "payment_b1,payment_c1";

    #[test]
    fn a_held_order_never_leaves_even_when_confirmed() {
        for hold in [FraudHoldStatus::UnderReview, FraudHoldStatus::FraudConfirmed] {
            let f = facts(InternalStatus::AwaitingShipment, hold);
            assert_eq!(may_leave(&f, true), Err(Exclusion::FraudHold));
            assert_eq!(check_hold_and_payment(&f, true), Err(Exclusion::FraudHold));
            assert!(!Exclusion::FraudHold.confirmable());
        }
        let released = facts(InternalStatus::AwaitingShipment, FraudHoldStatus::Released);
        assert_eq!(may_leave(&released, false), Ok(()));
    }

    #[test]
    fn unpaid_prepay_waits_for_the_merchant() {
        let mut f = facts(InternalStatus::AwaitingShipment, FraudHoldStatus::None);
        f.unpaid = unpaid(PREPAY, "payment_b1", "銀行振込", Some(0));
        let refused = may_leave(&f, false).unwrap_err();
        assert_eq!(refused, Exclusion::Unpaid("銀行振込".into()));
        assert!(refused.to_string().contains("未入金"));
        assert!(refused.confirmable());
        assert_eq!(may_leave(&f, true), Ok(()));
        // Paid, or a method paid after delivery: nothing to wait for.
        assert_eq!(unpaid(PREPAY, "payment_b1", "銀行振込", Some(1)), None);
        assert_eq!(unpaid(PREPAY, CASH_ON_DELIVERY, "商品代引", Some(0)), None);
        assert_eq!(unpaid(PREPAY, "payment_c1", "", Some(0)), Some("payment_c1".into()));
    }

    #[test]
    fn only_open_orders_leave() {
        for s in [
            InternalStatus::Cancelled,
            InternalStatus::Completed,
            InternalStatus::OnHold,
            InternalStatus::AutoImportInbox,
        ] {
            assert_eq!(may_leave(&facts(s, FraudHoldStatus::None), true), Err(Exclusion::Status(s)));
        }
        let mut f = facts(InternalStatus::AwaitingShipment, FraudHoldStatus::None);
        f.yahoo_status = Some(OrderStatus::Cancelled);
        assert_eq!(may_leave(&f, true), Err(Exclusion::YahooStatus(OrderStatus::Cancelled)));
    }

    #[test]
    fn the_first_matching_row_wins() {
        let fallback = MappingRow {
            ship_method: String::new(),
            pay_method: String::new(),
            format: LabelFormat::B2,
            service: "0".into(),
            cool: crate::carrier::Cool::Normal,
        };
        let mut rows = default_mapping();
        rows.push(MappingRow { ship_method: "postage2".into(), format: LabelFormat::ClickPost, ..fallback.clone() });
        assert_eq!(choose(&rows, &fallback, "postage1", CASH_ON_DELIVERY).service, "2");
        assert_eq!(choose(&rows, &fallback, "postage2", "payment_a1").format, LabelFormat::ClickPost);
        assert_eq!(choose(&rows, &fallback, "postage1", "payment_a1"), &fallback);
    }
}
