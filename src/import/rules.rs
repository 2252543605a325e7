//! The import's decisions as plain functions over plain data, unit-tested without a server:
//! which orders need orderInfo, what changed (field by field, in Japanese), what a fraud-hold
//! change means, which status a new order gets, when held orders are re-checked, and which
//! window a run searches.

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};

use crate::{
    domain::{
        jst,
        order::{FraudHoldStatus, HistoryLine, Known, OrderDetail, OrderStatus},
        scope::{OrderScope, PERSONAL_CHANGE_KIND, PERSONAL_LABELS},
        status::{
            ChangeRequest, OrderFacts, Refusal, cancel_reason_label, plan_change, ship_company_label, ship_status_label,
        },
        store::InternalStatus,
    },
    yahoo::api::OrderSummary,
};

/// The history line of an automatic status change refused for a held order (product.md §5).
pub const AUTO_CHANGE_REFUSED: &str = "不正保留中のためステータス変更しませんでした";

/// True when orderList shows something we have not stored: a new order, or a different
/// Version, LastUpdateTime or FraudHoldStatus.
pub fn needs_fetch(summary: &OrderSummary, known: Option<&Known>) -> bool {
    let Some(k) = known else { return true };
    summary.version.is_some_and(|v| v != k.version)
        || (summary.last_update_time.is_some() && summary.last_update_time != k.last_update_time)
        || i64::from(summary.fraud_hold_status) != k.fraud_hold_status
}

/// One changed field: label, old value, new value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldChange {
    pub label: &'static str,
    pub before: String,
    pub after: String,
}

impl FieldChange {
    /// A change of a buyer's name, kana, postcode, address, phone number or email.
    pub fn is_personal(&self) -> bool {
        PERSONAL_LABELS.contains(&self.label)
    }

    /// The change as this reader may see it: personal values masked.
    pub fn masked(&self, scope: &OrderScope) -> FieldChange {
        if !self.is_personal() {
            return self.clone();
        }
        let (mut before, mut after) = (self.before.clone(), self.after.clone());
        scope.mask_fields([&mut before, &mut after]);
        FieldChange { label: self.label, before, after }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// A time as merchants read it: JST, to the second (seconds keep two different times apart).
fn jst_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&jst::offset()).format("%Y-%m-%d %H:%M:%S").to_string()
}

fn time(t: &Option<DateTime<Utc>>) -> String {
    t.map(jst_time).unwrap_or_default()
}

/// A Yahoo code with its meaning, as the order page shows it ("2: 処理中").
fn coded(code: impl std::fmt::Display, meaning: &str) -> String {
    format!("{code}: {meaning}")
}

/// Every field of an order as (label, value), in the order Yahoo groups them. Item lines are
/// one value each.
pub fn fields(d: &OrderDetail) -> Vec<(&'static str, String)> {
    let mut f: Vec<(&'static str, String)> = vec![
        (
            "注文ステータス",
            coded(d.order_status, OrderStatus::from_code(d.order_status).map_or("不明", OrderStatus::label)),
        ),
        ("閲覧済み", d.is_seen.map_or_else(String::new, |seen| if seen { "閲覧済み" } else { "未閲覧" }.into())),
        ("不正保留ステータス", FraudHoldStatus::label_of(d.fraud_hold_status)),
        ("公開日時", time(&d.publication_time)),
        ("注文日時", jst_time(d.order_time)),
        (
            "キャンセル理由",
            d.cancel_reason.map_or_else(String::new, |c| {
                coded(c, &u16::try_from(c).map_or_else(|_| "不明".into(), cancel_reason_label))
            }),
        ),
        ("購入者コメント", d.buyer_comments.clone()),
        (
            "入金ステータス",
            d.pay_status.map_or_else(String::new, |p| coded(p, if p == 1 { "入金済" } else { "未入金" })),
        ),
        ("支払方法", d.pay_method.clone()),
        ("支払方法名", d.pay_method_name.clone()),
        ("入金日", opt(&d.pay_date)),
        ("請求先氏名", format!("{} {}", d.bill.last_name, d.bill.first_name)),
        ("請求先氏名カナ", format!("{} {}", d.bill.last_name_kana, d.bill.first_name_kana)),
        ("請求先郵便番号", d.bill.zip_code.clone()),
        ("請求先住所", format!("{}{}{}{}", d.bill.prefecture, d.bill.city, d.bill.address1, d.bill.address2)),
        ("請求先電話番号", d.bill.phone.clone()),
        ("メールアドレス", d.bill_mail.clone()),
        ("出荷ステータス", d.ship_status.map_or_else(String::new, |c| coded(c, ship_status_label(c)))),
        ("配送方法", d.ship_method.clone()),
        ("配送方法名", d.ship_method_name.clone()),
        ("お届け希望日", opt(&d.ship_request_date)),
        ("お届け希望時間", d.ship_request_time.clone()),
        (
            "配送会社",
            if d.ship_company_code.is_empty() { String::new() } else { ship_company_label(&d.ship_company_code) },
        ),
        ("送り状番号1", d.ship_invoice_number1.clone()),
        ("送り状番号2", d.ship_invoice_number2.clone()),
        ("出荷日", opt(&d.ship_date)),
        ("お届け先氏名", format!("{} {}", d.ship.last_name, d.ship.first_name)),
        ("お届け先氏名カナ", format!("{} {}", d.ship.last_name_kana, d.ship.first_name_kana)),
        ("お届け先郵便番号", d.ship.zip_code.clone()),
        ("お届け先住所", format!("{}{}{}{}", d.ship.prefecture, d.ship.city, d.ship.address1, d.ship.address2)),
        ("お届け先電話番号", d.ship.phone.clone()),
        ("手数料", d.pay_charge.to_string()),
        ("送料", d.ship_charge.to_string()),
        ("ギフト包装料", d.gift_wrap_charge.to_string()),
        ("値引き", d.discount.to_string()),
        ("利用ポイント", d.use_point.to_string()),
        ("合計金額", d.total_price.to_string()),
        ("決済金額", d.settle_amount.to_string()),
    ];
    let items = d
        .items
        .iter()
        .map(|i| {
            let options = i.options.iter().map(|(n, v)| format!("{n}:{v}")).collect::<Vec<_>>().join(" ");
            format!(
                "{} {} {} {} {}円×{}",
                i.line_id,
                i.item_id,
                i.sub_code,
                if options.is_empty() { i.title.clone() } else { format!("{} ({options})", i.title) },
                i.unit_price,
                i.quantity
            )
        })
        .collect::<Vec<_>>()
        .join(" / ");
    f.push(("商品", items));
    f
}

/// What differs between the stored order and Yahoo's, field by field (Version and
/// LastUpdateTime are bookkeeping, not shown).
pub fn diff(before: &OrderDetail, after: &OrderDetail) -> Vec<FieldChange> {
    fields(before)
        .into_iter()
        .zip(fields(after))
        .filter(|((_, b), (_, a))| b != a)
        .map(|((label, before), (_, after))| FieldChange { label, before, after })
        .collect()
}

/// What a fraud-hold change means for the merchant (product.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldEvent {
    /// 1 → 2: the restriction lifts; it may be shipped.
    Released,
    /// 1 → 3: fraud confirmed; flag it for cancellation.
    Confirmed,
    /// Any other change of the value.
    Other,
}

pub fn hold_event(before: u8, after: u8) -> Option<HoldEvent> {
    match (before, after) {
        (b, a) if b == a => None,
        (1, 2) => Some(HoldEvent::Released),
        (_, 3) => Some(HoldEvent::Confirmed),
        _ => Some(HoldEvent::Other),
    }
}

fn hold_name(code: u8) -> &'static str {
    FraudHoldStatus::from_code(Some(code)).unwrap_or_default().name()
}

/// The notification a change of the fraud-hold status asks for: a held order released (ship
/// it) or confirmed as fraud (cancel it).
pub fn hold_notice(before: &OrderDetail, after: &OrderDetail) -> Option<crate::domain::mail::MailKind> {
    match hold_event(before.fraud_hold_status, after.fraud_hold_status) {
        Some(HoldEvent::Released) => Some(crate::domain::mail::MailKind::HoldReleased),
        Some(HoldEvent::Confirmed) => Some(crate::domain::mail::MailKind::HoldConfirmed),
        _ => None,
    }
}

/// History of an order seen again: the fraud-hold change first, then the other fields.
pub fn change_history(before: &OrderDetail, after: &OrderDetail) -> (Vec<HistoryLine>, bool) {
    let mut lines = Vec::new();
    let mut flag_cancel = false;
    match hold_event(before.fraud_hold_status, after.fraud_hold_status) {
        Some(HoldEvent::Released) => lines.push(HistoryLine {
            kind: "fraud_hold",
            message: "不正保留が解除されました（ルール保留解除）。ステータス変更の制限はなくなり、出荷できます".into(),
        }),
        Some(HoldEvent::Confirmed) => {
            flag_cancel = true;
            lines.push(HistoryLine {
                kind: "fraud_hold",
                message: "不正利用が確定しました（ルール悪用確定）。この注文はキャンセルしてください".into(),
            });
        }
        Some(HoldEvent::Other) => lines.push(HistoryLine {
            kind: "fraud_hold",
            message: format!(
                "不正保留ステータスが変わりました: {} → {}",
                hold_name(before.fraud_hold_status),
                hold_name(after.fraud_hold_status)
            ),
        }),
        None => {}
    }
    let (personal, other): (Vec<FieldChange>, Vec<FieldChange>) =
        diff(before, after).into_iter().filter(|c| c.label != "不正保留ステータス").partition(FieldChange::is_personal);
    // Buyers' personal data changes on a line of its own, which a masked reader reads without
    // the values (`OrderScope::history_message`), while the other changes stay readable.
    for (kind, changes) in [("import_changed", other), (PERSONAL_CHANGE_KIND, personal)] {
        if changes.is_empty() {
            continue;
        }
        let each: Vec<String> =
            changes.iter().map(|c| format!("{}: {} → {}", c.label, shown(&c.before), shown(&c.after))).collect();
        lines.push(HistoryLine { kind, message: format!("Yahoo!で変更されました。{}", each.join("、")) });
    }
    (lines, flag_cancel)
}

fn shown(v: &str) -> &str {
    if v.trim().is_empty() { "（なし）" } else { v }
}

/// How a new order arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// 新規受付 (manual import, re-import, or automatic import with nothing set).
    New,
    /// Automatic import into the 「自動受注取込」 inbox.
    Inbox,
    /// Automatic import with ステータス自動変更 to this status.
    AutoChange(InternalStatus),
}

/// Status and history of an order imported for the first time. With ステータス自動変更 on (and
/// only for automatic imports), the order moves to the chosen status unless the fraud-hold
/// rule refuses it, in which case it goes to 失敗 (the one plan, `domain::status::plan_change`).
///
/// `unpaid` (see `domain::shipping::unpaid`): an order of a method settled before shipping
/// that Yahoo has as 未入金 goes to 入金待ち instead of 出荷待ち, and moves on when paid
/// ([`paid_now`]).
pub fn new_order(
    detail: &OrderDetail,
    arrival: Arrival,
    restrict_fraud_hold: bool,
    unpaid: Option<&str>,
) -> (InternalStatus, Vec<HistoryLine>, bool) {
    let hold = FraudHoldStatus::from_code(Some(detail.fraud_hold_status)).unwrap_or_default();
    let mut lines = vec![HistoryLine { kind: "import_new", message: "Yahoo!から取り込みました".into() }];
    match hold {
        FraudHoldStatus::UnderReview => lines.push(HistoryLine {
            kind: "fraud_hold",
            message: format!(
                "不正保留中の注文です（{}）。審査が終わるまでキャンセル以外のステータス変更はできません",
                hold.name()
            ),
        }),
        // Imported after the review confirmed the fraud: the same words as a change 1 → 3.
        FraudHoldStatus::FraudConfirmed => lines.push(HistoryLine {
            kind: "fraud_hold",
            message: format!("不正利用が確定しています（{}）。この注文はキャンセルしてください", hold.name()),
        }),
        FraudHoldStatus::None | FraudHoldStatus::Released => {}
    }
    let flag_cancel = hold == FraudHoldStatus::FraudConfirmed;
    let status = match arrival {
        Arrival::New => InternalStatus::New,
        Arrival::Inbox => {
            lines.push(HistoryLine {
                kind: "status",
                message: "「自動受注取込」に入りました。内容を確認して取り込んでください".into(),
            });
            InternalStatus::AutoImportInbox
        }
        // The one plan every status change asks (fraud-hold rule, transitions), as if a job
        // moved the new order from 新規受付. The targets offered for it push nothing to Yahoo.
        Arrival::AutoChange(chosen) => {
            let target = match (chosen, unpaid) {
                (InternalStatus::AwaitingShipment, Some(method)) => {
                    lines.push(HistoryLine {
                        kind: "status",
                        message: format!("入金前の注文です（{method}・未入金）。入金されると「出荷待ち」に進みます"),
                    });
                    InternalStatus::AwaitingPayment
                }
                _ => chosen,
            };
            let facts = OrderFacts {
                internal_status: InternalStatus::New,
                yahoo_status: OrderStatus::from_code(detail.order_status),
                ship_status: detail.ship_status,
                fraud_hold: hold,
                restriction_on: restrict_fraud_hold,
                yahoo_seen: detail.is_seen,
                unpaid: None,
                // A new order carries no tags yet (rules come later in the same import).
                stop_tag: None,
            };
            match plan_change(&facts, &ChangeRequest::to(target)) {
                Ok(plan) if plan.pushes.is_empty() => {
                    lines.push(HistoryLine {
                        kind: "status",
                        message: format!("ステータス自動変更: {} → {}", InternalStatus::New.label(), target.label()),
                    });
                    target
                }
                Err(Refusal::FraudHold) => {
                    lines.push(HistoryLine { kind: "status", message: AUTO_CHANGE_REFUSED.into() });
                    InternalStatus::Failed
                }
                // A target that would need Yahoo told (never offered) or that the plan refuses.
                Ok(_) | Err(_) => {
                    lines.push(HistoryLine {
                        kind: "status",
                        message: format!("ステータス自動変更できませんでした（{}）", target.label()),
                    });
                    InternalStatus::New
                }
            }
        }
    };
    (status, lines, flag_cancel)
}

/// A held order the automatic status change left at 失敗 (「不正保留中のためステータス変更しま
/// せんでした」), released by Yahoo now (1 → 2): the same automatic change, planned as for an
/// order arriving now (the fraud-hold rule, the transitions, 入金待ち for an unpaid prepay
/// order), and the history line saying so. `None` when it does not apply or the plan refuses.
pub fn released_move(
    before: &OrderDetail,
    after: &OrderDetail,
    stored: InternalStatus,
    target: InternalStatus,
    restrict_fraud_hold: bool,
    unpaid: Option<&str>,
) -> Option<(InternalStatus, HistoryLine)> {
    if stored != InternalStatus::Failed
        || hold_event(before.fraud_hold_status, after.fraud_hold_status) != Some(HoldEvent::Released)
    {
        return None;
    }
    let (status, _, _) = new_order(after, Arrival::AutoChange(target), restrict_fraud_hold, unpaid);
    (!matches!(status, InternalStatus::New | InternalStatus::Failed)).then(|| {
        (
            status,
            HistoryLine {
                kind: "status",
                message: format!(
                    "不正保留が解除されたため、ステータス自動変更: {} → {}",
                    InternalStatus::Failed.label(),
                    status.label()
                ),
            },
        )
    })
}

/// An order waiting for payment (入金待ち) that Yahoo now reports paid moves on to 出荷待ち:
/// the history line saying so, when it applies.
pub fn paid_now(before: &OrderDetail, after: &OrderDetail, stored: InternalStatus) -> Option<HistoryLine> {
    (stored == InternalStatus::AwaitingPayment && before.pay_status == Some(0) && after.pay_status == Some(1)).then(
        || HistoryLine {
            kind: "status",
            message: format!(
                "Yahoo!で入金済みになったため、ステータスを「{}」から「{}」に進めました",
                InternalStatus::AwaitingPayment.label(),
                InternalStatus::AwaitingShipment.label()
            ),
        },
    )
}

/// Yahoo reviews held orders once a day in the early morning (seed 001); by this JST time the
/// day's review is taken to be over, and held orders are re-checked at once.
pub fn review_done_at(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = jst::today(now);
    let at = |d: chrono::NaiveDate| {
        jst::offset()
            .from_local_datetime(&d.and_time(NaiveTime::from_hms_opt(6, 0, 0).expect("valid time")))
            .single()
            .expect("JST has no gaps")
            .with_timezone(&Utc)
    };
    let t = at(today);
    if t <= now { t } else { at(today.pred_opt().unwrap_or(today)) }
}

/// Held orders (1) are re-checked with orderInfo on every run while that fits the share of
/// the daily quota kept for it, otherwise spaced out, but at least hourly and at once after
/// the daily review. Returns the oldest `checked_at` that is still fresh enough.
pub fn held_check_before(now: DateTime<Utc>, held: i64, interval: Duration, daily_budget: i64) -> DateTime<Utc> {
    let runs_per_day = (Duration::days(1).num_seconds() / interval.num_seconds().max(60)).max(1);
    let affordable_runs = if held == 0 { runs_per_day } else { (daily_budget / held).max(1) };
    let spacing = if affordable_runs >= runs_per_day {
        Duration::zero()
    } else {
        Duration::seconds(Duration::days(1).num_seconds() / affordable_runs).min(Duration::hours(1))
    };
    // Orders checked before the review ended are due whatever the spacing.
    (now - spacing).max(review_done_at(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yahoo::api::{Address, OrderItem};

    fn detail(fh: u8) -> OrderDetail {
        OrderDetail {
            order_id: "s-1".into(),
            version: 1,
            order_time: Utc.with_ymd_and_hms(2026, 11, 20, 1, 0, 0).unwrap(),
            last_update_time: None,
            publication_time: None,
            order_status: 2,
            is_seen: Some(false),
            fraud_hold_status: fh,
            cancel_reason: None,
            buyer_comments: String::new(),
            pay_status: Some(0),
            pay_method: "payment_a1".into(),
            pay_method_name: "クレジットカード決済".into(),
            pay_date: None,
            bill: Address { last_name: "山田".into(), first_name: "太郎".into(), ..Address::default() },
            bill_mail: "t@example.jp".into(),
            ship_status: Some(1),
            ship_method: String::new(),
            ship_method_name: String::new(),
            ship_request_date: None,
            ship_request_time: String::new(),
            ship_company_code: String::new(),
            ship_invoice_number1: String::new(),
            ship_invoice_number2: String::new(),
            ship_date: None,
            ship: Address::default(),
            pay_charge: 0,
            ship_charge: 500,
            gift_wrap_charge: 0,
            discount: 0,
            use_point: 0,
            coupon_discount: 0,
            gift_card_discount: 0,
            social_gift_type: 0,
            need_gift_wrap: None,
            total_price: 1500,
            settle_amount: 1500,
            items: vec![OrderItem {
                line_id: 1,
                item_id: "mug".into(),
                title: "マグ".into(),
                sub_code: String::new(),
                options: vec![],
                unit_price: 1000,
                quantity: 1,
                tax_ratio: Some(10),
                product_id: String::new(),
                category_id: Some(1),
            }],
            seller_id: "s".into(),
        }
    }

    #[test]
    fn what_needs_orderinfo() {
        let s = OrderSummary {
            order_id: "s-1".into(),
            version: Some(2),
            order_time: None,
            last_update_time: None,
            publication_time: None,
            order_status: Some(2),
            fraud_hold_status: 0,
        };
        assert!(needs_fetch(&s, None));
        let k = Known { order_id: "s-1".into(), version: 2, last_update_time: None, fraud_hold_status: 0 };
        assert!(!needs_fetch(&s, Some(&k)));
        assert!(needs_fetch(&s, Some(&Known { version: 1, ..k.clone() })));
        assert!(needs_fetch(&OrderSummary { fraud_hold_status: 2, ..s.clone() }, Some(&k)));
    }

    #[test]
    fn diff_names_fields_in_japanese() {
        let a = detail(0);
        let mut b = a.clone();
        b.ship_invoice_number1 = "1234".into();
        b.items[0].quantity = 2;
        let d = diff(&a, &b);
        assert_eq!(d.iter().map(|c| c.label).collect::<Vec<_>>(), vec!["送り状番号1", "商品"]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn diff_shows_values_as_the_order_page_does() {
        let a = detail(1);
        let mut b = detail(2);
        b.order_status = 4;
        b.publication_time = Some(Utc.with_ymd_and_hms(2026, 11, 30, 18, 25, 32).unwrap());
        let shown: Vec<(&str, String, String)> =
            diff(&a, &b).into_iter().map(|c| (c.label, c.before, c.after)).collect();
        let of = |label: &str| shown.iter().find(|(l, ..)| *l == label).cloned().unwrap();
        assert_eq!(of("不正保留ステータス").1, "審査中（ルール保留審査中）");
        assert_eq!(of("不正保留ステータス").2, "保留解除（ルール保留解除）");
        assert_eq!(of("注文ステータス").2, "4: キャンセル");
        assert_eq!(of("公開日時").2, "2026-12-01 03:25:32", "JST, to the second");
    }

    #[test]
    fn release_and_confirmation() {
        let (lines, flag) = change_history(&detail(1), &detail(2));
        assert!(!flag);
        assert!(lines[0].message.contains("解除"), "{lines:?}");
        let (lines, flag) = change_history(&detail(1), &detail(3));
        assert!(flag);
        assert!(lines[0].message.contains("キャンセルしてください"));
        assert_eq!(lines.len(), 1, "the hold is not listed twice: {lines:?}");
    }

    #[test]
    fn automatic_change_goes_through_the_fraud_hold_rule() {
        let to_shipment = Arrival::AutoChange(InternalStatus::AwaitingShipment);
        let (status, lines, _) = new_order(&detail(1), to_shipment, true, None);
        assert_eq!(status, InternalStatus::Failed);
        assert!(lines.iter().any(|l| l.message == AUTO_CHANGE_REFUSED));
        let (status, _, flag) = new_order(&detail(3), to_shipment, true, None);
        assert_eq!(status, InternalStatus::Failed);
        assert!(flag);
        let (status, _, _) = new_order(&detail(0), to_shipment, true, None);
        assert_eq!(status, InternalStatus::AwaitingShipment);
        let (status, _, _) = new_order(&detail(1), Arrival::New, true, None);
        assert_eq!(status, InternalStatus::New);
        let (status, _, _) = new_order(&detail(1), Arrival::Inbox, true, None);
        assert_eq!(status, InternalStatus::AutoImportInbox);
        // The merchant switched the restriction off: the change is made.
        let (status, _, _) = new_order(&detail(1), to_shipment, false, None);
        assert_eq!(status, InternalStatus::AwaitingShipment);
    }

    #[test]
    fn unpaid_prepay_waits_at_awaiting_payment_and_moves_on_when_paid() {
        let to_shipment = Arrival::AutoChange(InternalStatus::AwaitingShipment);
        let (status, lines, _) = new_order(&detail(0), to_shipment, true, Some("銀行振込"));
        assert_eq!(status, InternalStatus::AwaitingPayment);
        assert!(lines.iter().any(|l| l.message.contains("銀行振込・未入金")), "{lines:?}");
        let (status, _, _) = new_order(&detail(0), to_shipment, true, None);
        assert_eq!(status, InternalStatus::AwaitingShipment);
        let mut before = detail(0);
        before.pay_status = Some(0);
        let mut after = before.clone();
        after.pay_status = Some(1);
        assert!(paid_now(&before, &after, InternalStatus::AwaitingPayment).is_some());
        assert!(paid_now(&before, &after, InternalStatus::New).is_none(), "only from 入金待ち");
        assert!(paid_now(&before, &before, InternalStatus::AwaitingPayment).is_none());
    }

    #[test]
    fn held_orders_are_rechecked_within_budget() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 3, 0, 0).unwrap(); // 12:00 JST
        let minute = Duration::minutes(1);
        // A few held orders: every run.
        assert_eq!(held_check_before(now, 5, minute, 20_000), now);
        // Many: spaced out, never more than an hour.
        let before = held_check_before(now, 1_000, minute, 20_000);
        assert!(before < now && before >= now - Duration::hours(1), "{before}");
        // Right after the review window, everything checked before it is due at once.
        let after_review = Utc.with_ymd_and_hms(2026, 11, 24, 21, 10, 0).unwrap(); // 06:10 JST
        let before = held_check_before(after_review, 100_000, minute, 20_000);
        assert!(before >= Utc.with_ymd_and_hms(2026, 11, 24, 21, 0, 0).unwrap());
        assert_eq!(review_done_at(after_review), Utc.with_ymd_and_hms(2026, 11, 24, 21, 0, 0).unwrap());
    }
}
