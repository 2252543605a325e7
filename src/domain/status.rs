//! Internal statuses (product.md §6): which moves are allowed, what each move must tell Yahoo,
//! and [`plan_change`], the one function every status change calls (bulk action, detail page,
//! automatic change on import, anything added later). It applies the fraud-hold rule
//! ([`super::order::check_fraud_hold`]) before anything else.
//!
//! Pure: no database, no clock. `db::changes::change_status` reads the order inside its
//! transaction, asks this module for a plan, and writes the plan (status, history, outbox).

use chrono::NaiveDate;

use super::{
    order::{FraudHoldStatus, OrderStatus},
    store::InternalStatus,
};

/// Yahoo's CancelReason codes (yahoo-store-api.md §4.3), as the cancel form offers them.
pub const CANCEL_REASONS: [(u16, &str); 13] = [
    (100, "キャンセル（お客様都合）"),
    (110, "返品"),
    (120, "未入金"),
    (130, "住所不明"),
    (140, "受け取り拒否"),
    (150, "連絡不通"),
    (160, "重複注文"),
    (170, "決済審査不可"),
    (180, "その他（お客様都合）"),
    (200, "決済方法都合"),
    (210, "欠品"),
    (220, "販売中止"),
    (230, "その他（ストア都合）"),
];

/// What shipping tells Yahoo (orderShipStatusChange).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipInput {
    /// ShipCompanyCode (1000 その他, 1001 ヤマト運輸, …).
    pub company_code: String,
    pub invoice_number: String,
    pub ship_date: NaiveDate,
}

/// A person's or a job's request to move one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRequest {
    pub target: InternalStatus,
    /// Required for キャンセル.
    pub cancel_reason: Option<u16>,
    /// Required for 出荷済み.
    pub ship: Option<ShipInput>,
}

/// What the plan needs to know about the order as it stands (read inside the transaction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderFacts {
    pub internal_status: InternalStatus,
    pub yahoo_status: Option<OrderStatus>,
    pub ship_status: Option<u8>,
    pub fraud_hold: FraudHoldStatus,
    /// The store's 不正保留注文のステータス変更を制限する (on by default).
    pub restriction_on: bool,
}

/// One change Yahoo must be told, in the order it must be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// orderStatusChange (4 with a cancel reason; 5 with IsPointFix).
    Status { status: OrderStatus, cancel_reason: Option<u16> },
    /// orderShipStatusChange.
    Ship { ship_status: u8, company_code: String, invoice_number: String, ship_date: NaiveDate },
}

/// An accepted change: the new internal status, its history line and the pushes to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub to: InternalStatus,
    pub history: String,
    pub pushes: Vec<Push>,
}

/// Why a change was refused, in words for the merchant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not an order of this account, or of a store this user may not work.
    #[error("注文が見つかりません")]
    NotFound,
    #[error("{}", super::order::FRAUD_HOLD_REFUSAL)]
    FraudHold,
    #[error("「{}」から「{}」には変更できません", .from.label(), .to.label())]
    NotAllowed { from: InternalStatus, to: InternalStatus },
    #[error("キャンセル理由を選んでください")]
    NeedsCancelReason,
    #[error("出荷済みにするには配送会社・伝票番号・出荷日を入力してください")]
    NeedsShipInput,
    #[error("すでに「{}」です", .0.label())]
    Unchanged(InternalStatus),
    /// Yahoo's own state does not allow it (for example shipping an order Yahoo still has as
    /// 予約中, or anything but nothing for an order Yahoo has cancelled).
    #[error("Yahoo!で「{}」の注文は「{}」にできません", .yahoo.label(), .to.label())]
    YahooState { yahoo: OrderStatus, to: InternalStatus },
}

/// Ship status 出荷済み in orderShipStatusChange.
pub const SHIP_STATUS_SHIPPED: u8 = 3;

/// The internal transition table (product.md §6). キャンセル is final, as at Yahoo.
pub fn allowed(from: InternalStatus, to: InternalStatus) -> bool {
    use InternalStatus::*;
    if from == to || to == AutoImportInbox || to == Failed {
        return false;
    }
    match from {
        Cancelled => false,
        AutoImportInbox => matches!(to, New | Cancelled),
        New | Failed | OnHold => true,
        AwaitingPayment => !matches!(to, Completed),
        AwaitingShipment => true,
        Shipped => matches!(to, Completed | Cancelled | AwaitingShipment),
        Completed => matches!(to, Cancelled | Shipped),
    }
}

/// The statuses a person may choose for an order in `from` (the detail page's choices).
pub fn targets(from: InternalStatus) -> impl Iterator<Item = InternalStatus> {
    InternalStatus::ALL.into_iter().filter(move |to| allowed(from, *to))
}

/// Plans one status change: the fraud-hold rule first, then the transition table, the inputs
/// the target needs, and what Yahoo must be told. With the store's restriction off, a held
/// order may change internally, but only a cancel is pushed (Yahoo refuses the rest).
pub fn plan_change(facts: &OrderFacts, req: &ChangeRequest) -> Result<Plan, Refusal> {
    use InternalStatus::*;
    let to = req.target;
    super::order::check_fraud_hold(facts.restriction_on, facts.fraud_hold, to).map_err(|_| Refusal::FraudHold)?;
    if facts.internal_status == to {
        return Err(Refusal::Unchanged(to));
    }
    if !allowed(facts.internal_status, to) {
        return Err(Refusal::NotAllowed { from: facts.internal_status, to });
    }
    let held = facts.fraud_hold.is_held();
    let yahoo = facts.yahoo_status;
    let mut pushes = Vec::new();
    match to {
        Cancelled => {
            let reason = req.cancel_reason.filter(|r| CANCEL_REASONS.iter().any(|(c, _)| c == r));
            let reason = reason.ok_or(Refusal::NeedsCancelReason)?;
            if yahoo.is_some_and(|y| y.can_change_to(OrderStatus::Cancelled)) {
                pushes.push(Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(reason) });
            }
        }
        Shipped => {
            let ship = req.ship.as_ref().filter(|s| !s.invoice_number.trim().is_empty() && !s.company_code.is_empty());
            let ship = ship.ok_or(Refusal::NeedsShipInput)?;
            match yahoo {
                Some(y @ (OrderStatus::Reserved | OrderStatus::Cancelled)) => {
                    return Err(Refusal::YahooState { yahoo: y, to });
                }
                // Status before ship status: a 保留 order goes back to 処理中 first.
                Some(OrderStatus::OnHold) => {
                    pushes.push(Push::Status { status: OrderStatus::Processing, cancel_reason: None })
                }
                _ => {}
            }
            if facts.ship_status != Some(SHIP_STATUS_SHIPPED) {
                pushes.push(Push::Ship {
                    ship_status: SHIP_STATUS_SHIPPED,
                    company_code: ship.company_code.clone(),
                    invoice_number: ship.invoice_number.trim().to_owned(),
                    ship_date: ship.ship_date,
                });
            }
        }
        Completed => match yahoo {
            Some(OrderStatus::Completed) | None => {}
            Some(y) if y.can_change_to(OrderStatus::Completed) => {
                pushes.push(Push::Status { status: OrderStatus::Completed, cancel_reason: None })
            }
            Some(y) => return Err(Refusal::YahooState { yahoo: y, to }),
        },
        _ => {}
    }
    let mut history = format!("ステータスを「{}」から「{}」に変更しました", facts.internal_status.label(), to.label());
    if held {
        // Only reachable with the restriction off, or for a cancel: Yahoo accepts only cancels.
        let before = pushes.len();
        pushes.retain(|p| matches!(p, Push::Status { status: OrderStatus::Cancelled, .. }));
        if pushes.len() < before {
            history.push_str("（不正保留中のためYahoo!には送信しません）");
        }
    }
    if to == Cancelled
        && let Some(reason) = CANCEL_REASONS.iter().find(|(c, _)| Some(*c) == req.cancel_reason)
    {
        history.push_str(&format!("。キャンセル理由: {}", reason.1));
    }
    Ok(Plan { to, history, pushes })
}
