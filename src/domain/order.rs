//! The order, one type (what Yahoo's orderInfo says, as `yahoo::api` reads it, `db::orders`
//! stores it and pages render it), Yahoo's order states and the fraud-hold rule
//! (yahoo-store-api.md §4.3–4.4, product.md §6).
//!
//! The rule lives here, once: every path that changes an order's status (list bulk action,
//! detail page, automatic change on import, anything added later) calls
//! [`check_fraud_hold`] before it changes anything.

use chrono::{DateTime, NaiveDate, Utc};

use super::store::InternalStatus;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Address {
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
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderItem {
    pub line_id: i64,
    pub item_id: String,
    pub title: String,
    pub sub_code: String,
    pub options: Vec<(String, String)>,
    pub unit_price: i64,
    pub quantity: i64,
    pub tax_ratio: Option<i64>,
    pub product_id: String,
    pub category_id: Option<i64>,
}

/// An order as Yahoo's orderInfo shows it: every field the import asks for
/// (`yahoo::api::INFO_FIELDS`). `yahoo::api` fills it, `db::orders` stores it, pages render it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderDetail {
    pub order_id: String,
    pub version: i64,
    pub order_time: DateTime<Utc>,
    pub last_update_time: Option<DateTime<Utc>>,
    pub publication_time: Option<DateTime<Utc>>,
    pub order_status: u8,
    pub is_seen: Option<bool>,
    pub fraud_hold_status: u8,
    pub cancel_reason: Option<i64>,
    pub buyer_comments: String,
    pub pay_status: Option<u8>,
    pub pay_method: String,
    pub pay_method_name: String,
    pub pay_date: Option<NaiveDate>,
    pub bill: Address,
    pub bill_mail: String,
    pub ship_status: Option<u8>,
    pub ship_method: String,
    pub ship_method_name: String,
    pub ship_request_date: Option<NaiveDate>,
    pub ship_request_time: String,
    pub ship_company_code: String,
    pub ship_invoice_number1: String,
    pub ship_invoice_number2: String,
    pub ship_date: Option<NaiveDate>,
    pub ship: Address,
    pub pay_charge: i64,
    pub ship_charge: i64,
    pub gift_wrap_charge: i64,
    pub discount: i64,
    pub use_point: i64,
    /// TotalCouponDiscount: what the store's coupons took off.
    pub coupon_discount: i64,
    /// GiftCardDiscount: what a gift card paid.
    pub gift_card_discount: i64,
    /// SocialGiftType: 0 an ordinary order, otherwise a gift (1 social gift, 2 gift).
    pub social_gift_type: u8,
    /// NeedGiftWrap: the buyer asked for gift wrapping (Yahoo's gift flag on `<Ship>`).
    pub need_gift_wrap: Option<bool>,
    pub total_price: i64,
    pub settle_amount: i64,
    pub items: Vec<OrderItem>,
    pub seller_id: String,
}

impl OrderDetail {
    /// A gift: a social gift, a gift order, or wrapping asked for. Its 納品書 carries no prices.
    pub fn is_gift(&self) -> bool {
        self.social_gift_type != 0 || self.need_gift_wrap == Some(true)
    }
}

/// One history line to append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryLine {
    pub kind: &'static str,
    pub message: String,
}

/// What an import needs to know of an order it already has, to decide whether to fetch it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Known {
    pub order_id: String,
    pub version: i64,
    pub last_update_time: Option<DateTime<Utc>>,
    pub fraud_hold_status: i64,
}

/// Yahoo's `OrderStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    /// 1 予約中
    Reserved,
    /// 2 処理中
    Processing,
    /// 3 保留
    OnHold,
    /// 4 キャンセル
    Cancelled,
    /// 5 完了
    Completed,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Reserved,
        OrderStatus::Processing,
        OrderStatus::OnHold,
        OrderStatus::Cancelled,
        OrderStatus::Completed,
    ];

    pub fn code(self) -> u8 {
        match self {
            OrderStatus::Reserved => 1,
            OrderStatus::Processing => 2,
            OrderStatus::OnHold => 3,
            OrderStatus::Cancelled => 4,
            OrderStatus::Completed => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            OrderStatus::Reserved => "予約中",
            OrderStatus::Processing => "処理中",
            OrderStatus::OnHold => "保留",
            OrderStatus::Cancelled => "キャンセル",
            OrderStatus::Completed => "完了",
        }
    }

    /// Yahoo's transition table: 1 → 4, 5; 2 → 3, 4, 5; 3 → 2, 4, 5; 5 → 2, 4; 4 → nothing.
    pub fn can_change_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Reserved, Cancelled | Completed)
                | (Processing, OnHold | Cancelled | Completed)
                | (OnHold, Processing | Cancelled | Completed)
                | (Completed, Processing | Cancelled)
        )
    }
}

/// Yahoo's `FraudHoldStatus` (不正保留ステータス).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FraudHoldStatus {
    /// 0 or absent: 不正リスク低
    #[default]
    None,
    /// 1 ルール保留審査中
    UnderReview,
    /// 2 ルール保留解除
    Released,
    /// 3 ルール悪用確定
    FraudConfirmed,
}

impl FraudHoldStatus {
    pub fn code(self) -> u8 {
        match self {
            FraudHoldStatus::None => 0,
            FraudHoldStatus::UnderReview => 1,
            FraudHoldStatus::Released => 2,
            FraudHoldStatus::FraudConfirmed => 3,
        }
    }

    /// Parses the element's text; empty or absent means 0.
    pub fn from_code(code: Option<u8>) -> Option<FraudHoldStatus> {
        match code {
            None | Some(0) => Some(FraudHoldStatus::None),
            Some(1) => Some(FraudHoldStatus::UnderReview),
            Some(2) => Some(FraudHoldStatus::Released),
            Some(3) => Some(FraudHoldStatus::FraudConfirmed),
            Some(_) => None,
        }
    }

    /// Held orders (1 and 3) may only be cancelled, and orderList may hide them.
    pub fn is_held(self) -> bool {
        matches!(self, FraudHoldStatus::UnderReview | FraudHoldStatus::FraudConfirmed)
    }

    /// Yahoo's name of the value.
    pub fn name(self) -> &'static str {
        match self {
            FraudHoldStatus::None => "不正リスク低",
            FraudHoldStatus::UnderReview => "ルール保留審査中",
            FraudHoldStatus::Released => "ルール保留解除",
            FraudHoldStatus::FraudConfirmed => "ルール悪用確定",
        }
    }

    /// The value as pages show it, in words: 「審査中（ルール保留審査中）」, Yahoo's name beside
    /// ours; an unknown code as 「不明（7）」.
    pub fn label_of(code: u8) -> String {
        match FraudHoldStatus::from_code(Some(code)) {
            Some(FraudHoldStatus::None) => "なし（不正リスク低）".into(),
            Some(h) => format!("{}（{}）", h.badge().unwrap_or_default(), h.name()),
            None => format!("不明（{code}）"),
        }
    }

    /// The badge shown on order pages; none for orders never held.
    pub fn badge(self) -> Option<&'static str> {
        match self {
            FraudHoldStatus::None => None,
            FraudHoldStatus::UnderReview => Some("審査中"),
            FraudHoldStatus::Released => Some("保留解除"),
            FraudHoldStatus::FraudConfirmed => Some("不正確定"),
        }
    }
}

/// The message every refused change shows, exactly as product.md §6 words it.
pub const FRAUD_HOLD_REFUSAL: &str = "不正利用審査中の注文は「キャンセル」へのステータス変更のみ行えます";

/// A status change refused by the fraud-hold rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("不正利用審査中の注文は「キャンセル」へのステータス変更のみ行えます")]
pub struct FraudHoldRefusal;

/// The fraud-hold rule: with the store's restriction on (the default), an order whose
/// FraudHoldStatus is 1 or 3 may only move to キャンセル.
pub fn check_fraud_hold(
    restriction_on: bool,
    fraud_hold: FraudHoldStatus,
    target: InternalStatus,
) -> Result<(), FraudHoldRefusal> {
    if restriction_on && fraud_hold.is_held() && target != InternalStatus::Cancelled {
        Err(FraudHoldRefusal)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_table_matches_the_contract() {
        use OrderStatus::*;
        let allowed: Vec<(u8, u8)> = OrderStatus::ALL
            .into_iter()
            .flat_map(|f| OrderStatus::ALL.into_iter().map(move |t| (f, t)))
            .filter(|(f, t)| f.can_change_to(*t))
            .map(|(f, t)| (f.code(), t.code()))
            .collect();
        assert_eq!(allowed, vec![(1, 4), (1, 5), (2, 3), (2, 4), (2, 5), (3, 2), (3, 4), (3, 5), (5, 2), (5, 4)]);
        assert!(!Cancelled.can_change_to(Processing));
        assert_eq!(OrderStatus::from_code(9), None);
    }

    #[test]
    fn held_orders_may_only_be_cancelled() {
        for held in [FraudHoldStatus::UnderReview, FraudHoldStatus::FraudConfirmed] {
            for target in InternalStatus::ALL {
                let result = check_fraud_hold(true, held, target);
                assert_eq!(result.is_ok(), target == InternalStatus::Cancelled, "{held:?} → {target:?}");
            }
            // The merchant may switch the restriction off (not recommended).
            assert!(check_fraud_hold(false, held, InternalStatus::Shipped).is_ok());
        }
        for free in [FraudHoldStatus::None, FraudHoldStatus::Released] {
            assert!(InternalStatus::ALL.into_iter().all(|t| check_fraud_hold(true, free, t).is_ok()));
        }
        assert_eq!(FraudHoldRefusal.to_string(), FRAUD_HOLD_REFUSAL);
    }

    #[test]
    fn fraud_hold_codes() {
        assert_eq!(FraudHoldStatus::from_code(None), Some(FraudHoldStatus::None));
        assert_eq!(FraudHoldStatus::from_code(Some(3)), Some(FraudHoldStatus::FraudConfirmed));
        assert_eq!(FraudHoldStatus::from_code(Some(4)), None);
        assert_eq!(FraudHoldStatus::Released.badge(), Some("保留解除"));
        assert!(!FraudHoldStatus::Released.is_held());
    }
}
