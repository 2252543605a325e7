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
    /// ShipUrl: the carrier's tracking page for the number (empty when the carrier has none).
    pub ship_url: String,
}

/// A person's or a job's request to move one order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRequest {
    pub target: InternalStatus,
    /// Required for キャンセル.
    pub cancel_reason: Option<u16>,
    /// Required for 出荷済み.
    pub ship: Option<ShipInput>,
    /// The merchant's 「入金前でも出荷する」: an unpaid order of a method settled before shipping
    /// becomes 出荷済み only with it (the fraud-hold rule has no such override).
    pub unpaid_confirmed: bool,
}

impl ChangeRequest {
    /// A move to `target` that needs no cancel reason or shipping input.
    pub fn to(target: InternalStatus) -> ChangeRequest {
        ChangeRequest { target, cancel_reason: None, ship: None, unpaid_confirmed: false }
    }
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
    /// Yahoo's IsSeen: `Some(false)` with 処理中 is Yahoo's 新規受付, which takes no ship status
    /// until it is moved to 処理中.
    pub yahoo_seen: Option<bool>,
    /// Settled before shipping and unpaid (see `shipping::unpaid`): the pay method's name.
    pub unpaid: Option<String>,
    /// A 出荷止め tag the order carries (see `shipping::LeaveFacts::stop_tag`).
    pub stop_tag: Option<String>,
}

/// One change Yahoo must be told, in the order it must be told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Push {
    /// orderStatusChange (4 with a cancel reason; 5 with IsPointFix).
    Status { status: OrderStatus, cancel_reason: Option<u16> },
    /// orderShipStatusChange.
    Ship { ship_status: u8, company_code: String, invoice_number: String, ship_date: NaiveDate, ship_url: String },
}

/// Yahoo's ShipCompanyCode values the pages name (others are shown as their code).
pub const SHIP_COMPANIES: [(&str, &str); 3] = [("1000", "その他"), ("1001", "ヤマト運輸"), ("1002", "佐川急便")];

/// A cancel reason's words, or its code when unknown.
pub fn cancel_reason_label(code: u16) -> String {
    CANCEL_REASONS.iter().find(|(c, _)| *c == code).map_or_else(|| code.to_string(), |(_, l)| (*l).to_owned())
}

/// A ship company's name, or its code when unknown.
pub fn ship_company_label(code: &str) -> String {
    SHIP_COMPANIES.iter().find(|(c, _)| *c == code).map_or_else(|| code.to_owned(), |(_, l)| (*l).to_owned())
}

/// Yahoo's ShipStatus in words.
pub fn ship_status_label(code: u8) -> &'static str {
    match code {
        0 => "出荷不可",
        1 => "出荷可",
        2 => "出荷処理中",
        3 => "出荷済み",
        4 => "着荷済み",
        _ => "不明",
    }
}

impl Push {
    /// What Yahoo is told, in words (the outbox view and the history name pushes this way).
    pub fn label(&self) -> String {
        match self {
            Push::Status { status, cancel_reason: Some(reason) } => {
                format!("ステータス「{}」（キャンセル理由: {}）", status.label(), cancel_reason_label(*reason))
            }
            Push::Status { status: OrderStatus::Completed, .. } => "ステータス「完了」（ポイント確定）".to_owned(),
            Push::Status { status, .. } => format!("ステータス「{}」", status.label()),
            Push::Ship { ship_status, company_code, invoice_number, ship_date, .. } => format!(
                "出荷ステータス「{}」（配送会社: {}、伝票番号: {}、出荷日: {}）",
                ship_status_label(*ship_status),
                ship_company_label(company_code),
                invoice_number,
                ship_date.format("%Y-%m-%d")
            ),
        }
    }
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
    /// The shipping gate (`shipping::check_hold_and_payment`) refused a move to 出荷済み.
    #[error("{0}")]
    Leave(super::shipping::Exclusion),
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

/// The statuses a person is offered for an order: those [`targets`] allows from where it
/// stands, less what [`plan_change`] would refuse for its fraud hold. With the store's
/// restriction on, a held order is offered キャンセル only; with it off, everything but 出荷済み,
/// which a held order never reaches whatever the switch says (it would carry a tracking number).
pub fn offered(from: InternalStatus, fraud_hold: FraudHoldStatus, restriction_on: bool) -> Vec<InternalStatus> {
    targets(from)
        .filter(|to| super::order::check_fraud_hold(restriction_on, fraud_hold, *to).is_ok())
        .filter(|to| !(fraud_hold.is_held() && *to == InternalStatus::Shipped))
        .collect()
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
    // Yahoo has cancelled it (the buyer, or an earlier push): only our own キャンセル follows.
    if yahoo == Some(OrderStatus::Cancelled) && to != Cancelled {
        return Err(Refusal::YahooState { yahoo: OrderStatus::Cancelled, to });
    }
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
            // A held order never gets a tracking number, whatever the restriction switch says;
            // an unpaid prepay order only with the merchant's confirmation. Asked first, so that
            // the refusal names the hold (not a missing number nobody could give it).
            let leave = super::shipping::LeaveFacts {
                internal_status: facts.internal_status,
                yahoo_status: yahoo,
                fraud_hold: facts.fraud_hold,
                unpaid: facts.unpaid.clone(),
                stop_tag: facts.stop_tag.clone(),
            };
            super::shipping::check_hold_and_payment(&leave, req.unpaid_confirmed).map_err(Refusal::Leave)?;
            let ship = req.ship.as_ref().filter(|s| {
                !s.invoice_number.trim().is_empty()
                    && s.company_code.len() == 4
                    && s.company_code.bytes().all(|b| b.is_ascii_digit())
            });
            let ship = ship.ok_or(Refusal::NeedsShipInput)?;
            match yahoo {
                Some(y @ (OrderStatus::Reserved | OrderStatus::Cancelled)) => {
                    return Err(Refusal::YahooState { yahoo: y, to });
                }
                // Status before ship status: a 保留 order goes back to 処理中 first.
                Some(OrderStatus::OnHold) => {
                    pushes.push(Push::Status { status: OrderStatus::Processing, cancel_reason: None })
                }
                // Yahoo's 新規受付 takes no ship status: it is moved to 処理中 first.
                Some(OrderStatus::Processing) if facts.yahoo_seen == Some(false) => {
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
                    ship_url: ship.ship_url.clone(),
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
        && let Some(reason) = req.cancel_reason
    {
        history.push_str(&format!("。キャンセル理由: {}", cancel_reason_label(reason)));
    }
    Ok(Plan { to, history, pushes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_order_is_never_offered_shipped_whatever_the_switch_says() {
        use InternalStatus::*;
        for hold in [FraudHoldStatus::UnderReview, FraudHoldStatus::FraudConfirmed] {
            assert_eq!(offered(AwaitingShipment, hold, true), vec![Cancelled]);
            let off = offered(AwaitingShipment, hold, false);
            assert!(off.contains(&Cancelled) && !off.contains(&Shipped), "{off:?}");
        }
        assert!(offered(AwaitingShipment, FraudHoldStatus::Released, true).contains(&Shipped));
        assert!(offered(AwaitingShipment, FraudHoldStatus::None, true).contains(&Shipped));
    }
    use InternalStatus::*;

    fn facts(from: InternalStatus, yahoo: OrderStatus, hold: FraudHoldStatus) -> OrderFacts {
        OrderFacts {
            internal_status: from,
            yahoo_status: Some(yahoo),
            ship_status: Some(1),
            fraud_hold: hold,
            restriction_on: true,
            yahoo_seen: Some(true),
            unpaid: None,
            stop_tag: None,
        }
    }

    fn ship() -> ShipInput {
        ShipInput {
            company_code: "1001".into(),
            invoice_number: " 1234-5678 ".into(),
            ship_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            ship_url: "https://example.jp/t?n=12345678".into(),
        }
    }

    /// A complete request for `to`: a cancel reason for キャンセル, ship input for 出荷済み.
    fn req(to: InternalStatus) -> ChangeRequest {
        ChangeRequest {
            target: to,
            cancel_reason: (to == Cancelled).then_some(210),
            ship: (to == Shipped).then(ship),
            unpaid_confirmed: false,
        }
    }

    #[test]
    fn transition_table() {
        assert!(allowed(AutoImportInbox, New) && allowed(AutoImportInbox, Cancelled));
        assert!(!allowed(AutoImportInbox, Shipped));
        assert!(InternalStatus::ALL.into_iter().all(|to| !allowed(Cancelled, to)), "キャンセル is final");
        assert!(InternalStatus::ALL.into_iter().all(|from| !allowed(from, AutoImportInbox) && !allowed(from, Failed)));
        assert!(InternalStatus::ALL.into_iter().all(|s| !allowed(s, s)));
        assert!(!allowed(AwaitingPayment, Completed));
        assert_eq!(targets(Shipped).collect::<Vec<_>>(), vec![AwaitingShipment, Cancelled, Completed]);
        assert_eq!(targets(Completed).collect::<Vec<_>>(), vec![Shipped, Cancelled]);
    }

    #[test]
    fn held_orders_may_only_be_cancelled_and_only_the_cancel_is_pushed() {
        for hold in [FraudHoldStatus::UnderReview, FraudHoldStatus::FraudConfirmed] {
            for from in InternalStatus::ALL {
                for to in InternalStatus::ALL {
                    let result = plan_change(&facts(from, OrderStatus::Processing, hold), &req(to));
                    if to == Cancelled && allowed(from, to) {
                        let plan = result.unwrap();
                        assert_eq!(
                            plan.pushes,
                            vec![Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(210) }]
                        );
                    } else if to != Cancelled {
                        assert_eq!(result, Err(Refusal::FraudHold), "{hold:?} {from:?} → {to:?}");
                    }
                }
            }
            // With the restriction off the change is ours alone: Yahoo is told nothing but a
            // cancel. A held order still never ships: a tracking number is a parcel gone.
            let mut off = facts(AwaitingShipment, OrderStatus::OnHold, hold);
            off.restriction_on = false;
            assert_eq!(
                plan_change(&off, &req(Shipped)),
                Err(Refusal::Leave(crate::domain::shipping::Exclusion::FraudHold))
            );
            let plan = plan_change(&off, &req(Completed)).unwrap();
            assert!(plan.pushes.is_empty());
            assert!(plan.history.contains("不正保留中のためYahoo!には送信しません"), "{}", plan.history);
            let plan = plan_change(&off, &req(Cancelled)).unwrap();
            assert_eq!(plan.pushes.len(), 1);
        }
    }

    #[test]
    fn released_orders_are_free() {
        let plan = plan_change(&facts(New, OrderStatus::Processing, FraudHoldStatus::Released), &req(Shipped)).unwrap();
        assert_eq!(plan.pushes.len(), 1);
    }

    #[test]
    fn cancel_needs_a_known_reason_and_pushes_it() {
        let f = facts(New, OrderStatus::Processing, FraudHoldStatus::None);
        let none = ChangeRequest::to(Cancelled);
        assert_eq!(plan_change(&f, &none), Err(Refusal::NeedsCancelReason));
        let unknown = ChangeRequest { cancel_reason: Some(999), ..none.clone() };
        assert_eq!(plan_change(&f, &unknown), Err(Refusal::NeedsCancelReason));
        let plan = plan_change(&f, &req(Cancelled)).unwrap();
        assert_eq!(plan.to, Cancelled);
        assert_eq!(plan.pushes, vec![Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(210) }]);
        assert!(plan.history.contains("キャンセル理由: 欠品"), "{}", plan.history);
        // Yahoo has it cancelled already: ours follows, nothing is pushed.
        let plan = plan_change(&facts(New, OrderStatus::Cancelled, FraudHoldStatus::None), &req(Cancelled)).unwrap();
        assert!(plan.pushes.is_empty());
    }

    #[test]
    fn shipping_pushes_status_before_ship_status() {
        let f = facts(AwaitingShipment, OrderStatus::OnHold, FraudHoldStatus::None);
        let plan = plan_change(&f, &req(Shipped)).unwrap();
        assert_eq!(
            plan.pushes,
            vec![
                Push::Status { status: OrderStatus::Processing, cancel_reason: None },
                Push::Ship {
                    ship_status: SHIP_STATUS_SHIPPED,
                    company_code: "1001".into(),
                    invoice_number: "1234-5678".into(),
                    ship_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
                    ship_url: "https://example.jp/t?n=12345678".into(),
                },
            ]
        );
        let processing = facts(AwaitingShipment, OrderStatus::Processing, FraudHoldStatus::None);
        assert_eq!(plan_change(&processing, &req(Shipped)).unwrap().pushes.len(), 1);
        // Yahoo's 新規受付 (処理中, not seen) is moved to 処理中 first.
        let unseen = OrderFacts { yahoo_seen: Some(false), ..processing.clone() };
        let pushes = plan_change(&unseen, &req(Shipped)).unwrap().pushes;
        assert_eq!(pushes[0], Push::Status { status: OrderStatus::Processing, cancel_reason: None });
        assert_eq!(pushes.len(), 2);
        // Unpaid before shipping: only when the merchant confirms.
        let unpaid = OrderFacts { unpaid: Some("銀行振込".into()), ..processing.clone() };
        assert_eq!(
            plan_change(&unpaid, &req(Shipped)),
            Err(Refusal::Leave(crate::domain::shipping::Exclusion::Unpaid("銀行振込".into())))
        );
        let confirmed = ChangeRequest { unpaid_confirmed: true, ..req(Shipped) };
        assert_eq!(plan_change(&unpaid, &confirmed).unwrap().pushes.len(), 1);
        // Already shipped at Yahoo: nothing to push.
        let shipped = OrderFacts { ship_status: Some(SHIP_STATUS_SHIPPED), ..processing.clone() };
        assert!(plan_change(&shipped, &req(Shipped)).unwrap().pushes.is_empty());
        // Input is required, and the company is Yahoo's four-digit code.
        let bare = ChangeRequest::to(Shipped);
        assert_eq!(plan_change(&processing, &bare), Err(Refusal::NeedsShipInput));
        for bad in
            [ShipInput { invoice_number: "  ".into(), ..ship() }, ShipInput { company_code: "ヤマト".into(), ..ship() }]
        {
            let r = ChangeRequest { ship: Some(bad), ..bare.clone() };
            assert_eq!(plan_change(&processing, &r), Err(Refusal::NeedsShipInput));
        }
        // A reservation cannot be shipped.
        let reserved = facts(AwaitingShipment, OrderStatus::Reserved, FraudHoldStatus::None);
        assert_eq!(
            plan_change(&reserved, &req(Shipped)),
            Err(Refusal::YahooState { yahoo: OrderStatus::Reserved, to: Shipped })
        );
    }

    #[test]
    fn completing_pushes_status_five_unless_yahoo_has_it() {
        let f = facts(Shipped, OrderStatus::Processing, FraudHoldStatus::None);
        assert_eq!(
            plan_change(&f, &req(Completed)).unwrap().pushes,
            vec![Push::Status { status: OrderStatus::Completed, cancel_reason: None }]
        );
        let done = facts(Shipped, OrderStatus::Completed, FraudHoldStatus::None);
        assert!(plan_change(&done, &req(Completed)).unwrap().pushes.is_empty());
    }

    #[test]
    fn an_order_yahoo_cancelled_may_only_be_cancelled() {
        let f = facts(New, OrderStatus::Cancelled, FraudHoldStatus::None);
        for to in [AwaitingPayment, AwaitingShipment, Shipped, Completed, OnHold] {
            assert_eq!(
                plan_change(&f, &req(to)),
                Err(Refusal::YahooState { yahoo: OrderStatus::Cancelled, to }),
                "{to:?}"
            );
        }
    }

    #[test]
    fn refusals_in_order_and_in_words() {
        let f = facts(Cancelled, OrderStatus::Processing, FraudHoldStatus::None);
        assert_eq!(plan_change(&f, &req(Cancelled)), Err(Refusal::Unchanged(Cancelled)));
        assert_eq!(plan_change(&f, &req(New)), Err(Refusal::NotAllowed { from: Cancelled, to: New }));
        assert_eq!(
            Refusal::NotAllowed { from: Cancelled, to: New }.to_string(),
            "「キャンセル」から「新規受付」には変更できません"
        );
        assert_eq!(Refusal::FraudHold.to_string(), crate::domain::order::FRAUD_HOLD_REFUSAL);
        // The fraud-hold rule comes first, before the transition table.
        let held = facts(Cancelled, OrderStatus::Processing, FraudHoldStatus::UnderReview);
        assert_eq!(plan_change(&held, &req(New)), Err(Refusal::FraudHold));
    }

    #[test]
    fn pushes_in_words() {
        assert_eq!(
            Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(210) }.label(),
            "ステータス「キャンセル」（キャンセル理由: 欠品）"
        );
        assert_eq!(
            Push::Status { status: OrderStatus::Completed, cancel_reason: None }.label(),
            "ステータス「完了」（ポイント確定）"
        );
        let ship = Push::Ship {
            ship_status: 3,
            company_code: "1001".into(),
            invoice_number: "1234".into(),
            ship_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
            ship_url: String::new(),
        };
        assert_eq!(
            ship.label(),
            "出荷ステータス「出荷済み」（配送会社: ヤマト運輸、伝票番号: 1234、出荷日: 2026-11-30）"
        );
    }
}
