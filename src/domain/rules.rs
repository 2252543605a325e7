//! Rules (issue 30): what a merchant's rule says, whether an order matches it and why, and
//! which rules apply to an order, over plain data. `db::rules` stores them and applies what
//! they say inside the writer's transaction; `web::rules` edits them.
//!
//! A rule is a list of conditions (AND between conditions, OR between the values of one) and a
//! list of actions. Rules apply top to bottom (by position), every matching rule applies, and a
//! rule may end the list for the order (「以降のルールを適用しない」). A status set by a rule
//! goes through the one status plan (`domain::status::plan_change`), so a held order is never
//! moved by a rule.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{StoreId, order::OrderDetail, store::InternalStatus};
use crate::carrier::LabelFormat;

/// 都道府県, in JIS order (the prefecture condition accepts these names only).
pub const PREFECTURES: [&str; 47] = [
    "北海道",
    "青森県",
    "岩手県",
    "宮城県",
    "秋田県",
    "山形県",
    "福島県",
    "茨城県",
    "栃木県",
    "群馬県",
    "埼玉県",
    "千葉県",
    "東京都",
    "神奈川県",
    "新潟県",
    "富山県",
    "石川県",
    "福井県",
    "山梨県",
    "長野県",
    "岐阜県",
    "静岡県",
    "愛知県",
    "三重県",
    "滋賀県",
    "京都府",
    "大阪府",
    "兵庫県",
    "奈良県",
    "和歌山県",
    "鳥取県",
    "島根県",
    "岡山県",
    "広島県",
    "山口県",
    "徳島県",
    "香川県",
    "愛媛県",
    "高知県",
    "福岡県",
    "佐賀県",
    "長崎県",
    "熊本県",
    "大分県",
    "宮崎県",
    "鹿児島県",
    "沖縄県",
];

/// The statuses a rule may set: the ones that need no further input (出荷済み needs tracking
/// numbers, キャンセル a reason and a person).
pub const RULE_TARGETS: [InternalStatus; 4] =
    [InternalStatus::New, InternalStatus::AwaitingPayment, InternalStatus::AwaitingShipment, InternalStatus::OnHold];

/// Above this many rules the page warns (there is no cap).
pub const MANY_RULES: usize = 100;

/// The share of the previewed orders above which saving a rule asks for confirmation.
pub const CONFIRM_SHARE_PERCENT: usize = 20;

/// Orders a preview runs a rule against, by default (the newest).
pub const PREVIEW_ORDERS: i64 = 500;

/// A buyer comment condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentIs {
    Present,
    Absent,
    /// Contains one of these.
    Contains(Vec<String>),
}

/// One condition; the values of one condition are alternatives (OR).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Condition {
    /// PayMethod code (payment_a1) or a part of its name.
    PayMethod(Vec<String>),
    /// Yahoo's PayStatus: 0 未入金, 1 入金済み.
    PayStatus(Vec<u8>),
    /// TotalPrice within [min, max] (either may be open).
    Total {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// お届け先 prefecture.
    Prefecture(Vec<String>),
    /// お届け先 postcode on (true) or off (false) the merchant's 離島 list.
    RemoteIsland(bool),
    /// Item code (ItemId) or SubCode contains one of these.
    ItemCode(Vec<String>),
    /// An item option (name or value) contains one of these.
    ItemOption(Vec<String>),
    Comment(CommentIs),
    /// A delivery date or time requested (true) or neither (false).
    DeliveryRequested(bool),
    /// Gift wrapping (GiftWrapCharge above zero) or not.
    Gift(bool),
    /// Yahoo's FraudHoldStatus codes (0–3).
    FraudHold(Vec<u8>),
    /// ShipMethod code (postage1) or a part of its name.
    ShipMethod(Vec<String>),
    /// The same e-mail or phone is on an earlier order of the account (true) or on none (false).
    RepeatBuyer(bool),
    /// Number of item lines within [min, max].
    Lines {
        min: Option<i64>,
        max: Option<i64>,
    },
}

/// One action, applied in the order listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Action {
    AddTag(i64),
    RemoveTag(i64),
    /// Through the status plan: refused for a held order, with its history line.
    SetStatus(String),
    /// A line appended to the 社内メモ.
    Memo(String),
    /// The label file (and B2 service) for the order's parcels.
    Label {
        format: String,
        service: Option<String>,
    },
    /// お届け希望日 left blank on the label.
    ClearDeliveryDate,
}

/// What a rule says: its conditions and actions. `match_all` is the explicit 「すべての注文」:
/// a rule without conditions is refused unless it says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSpec {
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub match_all: bool,
}

/// A stored rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: i64,
    pub name: String,
    pub position: i64,
    pub enabled: bool,
    /// Empty: every store.
    pub stores: Vec<StoreId>,
    pub spec: RuleSpec,
    pub stop_after: bool,
}

/// What an order offers the conditions: Yahoo's fields, and what the account knows of it.
#[derive(Clone, Copy, Debug)]
pub struct RuleFacts<'a> {
    pub store: StoreId,
    pub detail: &'a OrderDetail,
    pub repeat_buyer: bool,
}

/// What the conditions and actions need besides the order: the account's tags (by id: name
/// and 出荷止め) and its 離島 postcodes.
#[derive(Clone, Debug, Default)]
pub struct RuleContext {
    pub tags: HashMap<i64, (String, bool)>,
    pub islands: HashSet<String>,
}

/// A postcode as the 離島 list keeps it: its seven digits (full-width, hyphens and 〒 dropped).
pub fn postcode(s: &str) -> Option<String> {
    let digits: String = s
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            _ => None,
        })
        .collect();
    (digits.len() == 7).then_some(digits)
}

fn contains_any(hay: &str, needles: &[String]) -> Option<String> {
    needles.iter().find(|n| !n.is_empty() && hay.contains(n.as_str())).cloned()
}

fn within(v: i64, min: Option<i64>, max: Option<i64>) -> bool {
    min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
}

fn range_words(min: Option<i64>, max: Option<i64>, unit: &str) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a}{unit}〜{b}{unit}"),
        (Some(a), None) => format!("{a}{unit}以上"),
        (None, Some(b)) => format!("{b}{unit}以下"),
        (None, None) => "指定なし".to_owned(),
    }
}

fn yes_no(b: bool, yes: &str, no: &str) -> String {
    if b { yes.to_owned() } else { no.to_owned() }
}

impl Condition {
    /// Why the order matches, in words naming the value that matched; `None` when it does not.
    pub fn matches(&self, f: &RuleFacts, cx: &RuleContext) -> Option<String> {
        let d = f.detail;
        match self {
            Condition::PayMethod(list) => list
                .iter()
                .find(|v| !v.is_empty() && (d.pay_method == **v || d.pay_method_name.contains(v.as_str())))
                .map(|_| {
                    format!(
                        "支払方法={}",
                        if d.pay_method_name.is_empty() { &d.pay_method } else { &d.pay_method_name }
                    )
                }),
            Condition::PayStatus(list) => {
                let s = d.pay_status?;
                list.contains(&s).then(|| format!("入金状況={}", pay_status_label(s)))
            }
            Condition::Total { min, max } => {
                within(d.total_price, *min, *max).then(|| format!("合計金額={}円", d.total_price))
            }
            Condition::Prefecture(list) => {
                list.contains(&d.ship.prefecture).then(|| format!("お届け先の都道府県={}", d.ship.prefecture))
            }
            Condition::RemoteIsland(want) => {
                let on = postcode(&d.ship.zip_code).is_some_and(|z| cx.islands.contains(&z));
                (on == *want).then(|| {
                    if on {
                        format!("離島の郵便番号={}", d.ship.zip_code)
                    } else {
                        "離島の郵便番号ではない".to_owned()
                    }
                })
            }
            Condition::ItemCode(list) => d.items.iter().find_map(|i| {
                contains_any(&i.item_id, list).or_else(|| contains_any(&i.sub_code, list)).map(|_| {
                    format!(
                        "商品コード={}{}",
                        i.item_id,
                        if i.sub_code.is_empty() { String::new() } else { format!("（{}）", i.sub_code) }
                    )
                })
            }),
            Condition::ItemOption(list) => d.items.iter().flat_map(|i| i.options.iter()).find_map(|(k, v)| {
                contains_any(k, list).or_else(|| contains_any(v, list)).map(|_| format!("オプション={k}:{v}"))
            }),
            Condition::Comment(CommentIs::Present) => {
                (!d.buyer_comments.trim().is_empty()).then(|| "ご要望欄あり".to_owned())
            }
            Condition::Comment(CommentIs::Absent) => {
                d.buyer_comments.trim().is_empty().then(|| "ご要望欄なし".to_owned())
            }
            Condition::Comment(CommentIs::Contains(list)) => {
                contains_any(&d.buyer_comments, list).map(|w| format!("ご要望欄に「{w}」"))
            }
            Condition::DeliveryRequested(want) => {
                let requested = d.ship_request_date.is_some() || !d.ship_request_time.trim().is_empty();
                (requested == *want).then(|| {
                    if requested {
                        let date = d.ship_request_date.map(|x| x.format("%Y-%m-%d").to_string()).unwrap_or_default();
                        format!("お届け希望={}", format!("{date} {}", d.ship_request_time).trim())
                    } else {
                        "お届け希望なし".to_owned()
                    }
                })
            }
            Condition::Gift(want) => {
                let gift = d.gift_wrap_charge > 0;
                (gift == *want).then(|| yes_no(gift, "ギフト包装あり", "ギフト包装なし"))
            }
            Condition::FraudHold(list) => list.contains(&d.fraud_hold_status).then(|| {
                format!(
                    "不正保留={}",
                    super::order::FraudHoldStatus::from_code(Some(d.fraud_hold_status)).unwrap_or_default().name()
                )
            }),
            Condition::ShipMethod(list) => list
                .iter()
                .find(|v| !v.is_empty() && (d.ship_method == **v || d.ship_method_name.contains(v.as_str())))
                .map(|_| {
                    format!(
                        "配送方法={}",
                        if d.ship_method_name.is_empty() { &d.ship_method } else { &d.ship_method_name }
                    )
                }),
            Condition::RepeatBuyer(want) => {
                (f.repeat_buyer == *want).then(|| yes_no(f.repeat_buyer, "以前にも購入あり", "初めての購入"))
            }
            Condition::Lines { min, max } => {
                let n = d.items.len() as i64;
                within(n, *min, *max).then(|| format!("商品行数={n}"))
            }
        }
    }

    /// The condition in words (the rule list and its preview show them).
    pub fn describe(&self) -> String {
        let list = |l: &[String]| l.join("、");
        match self {
            Condition::PayMethod(l) => format!("支払方法が {}", list(l)),
            Condition::PayStatus(l) => {
                format!("入金状況が {}", l.iter().map(|s| pay_status_label(*s)).collect::<Vec<_>>().join("、"))
            }
            Condition::Total { min, max } => format!("合計金額が {}", range_words(*min, *max, "円")),
            Condition::Prefecture(l) => format!("お届け先が {}", list(l)),
            Condition::RemoteIsland(b) => yes_no(*b, "お届け先が離島", "お届け先が離島ではない"),
            Condition::ItemCode(l) => format!("商品コードに {} を含む", list(l)),
            Condition::ItemOption(l) => format!("オプションに {} を含む", list(l)),
            Condition::Comment(CommentIs::Present) => "ご要望欄あり".to_owned(),
            Condition::Comment(CommentIs::Absent) => "ご要望欄なし".to_owned(),
            Condition::Comment(CommentIs::Contains(l)) => format!("ご要望欄に {} を含む", list(l)),
            Condition::DeliveryRequested(b) => yes_no(*b, "お届け日時の指定あり", "お届け日時の指定なし"),
            Condition::Gift(b) => yes_no(*b, "ギフト包装あり", "ギフト包装なし"),
            Condition::FraudHold(l) => format!(
                "不正保留が {}",
                l.iter()
                    .map(|c| super::order::FraudHoldStatus::from_code(Some(*c)).unwrap_or_default().name())
                    .collect::<Vec<_>>()
                    .join("、")
            ),
            Condition::ShipMethod(l) => format!("配送方法が {}", list(l)),
            Condition::RepeatBuyer(b) => yes_no(*b, "以前にも購入した購入者", "初めての購入者"),
            Condition::Lines { min, max } => format!("商品行数が {}", range_words(*min, *max, "行")),
        }
    }
}

/// Yahoo's PayStatus in words.
pub fn pay_status_label(code: u8) -> &'static str {
    match code {
        0 => "未入金",
        1 => "入金済み",
        _ => "不明",
    }
}

impl Action {
    /// The action in words, naming its tag (or saying the tag is gone).
    pub fn describe(&self, cx: &RuleContext) -> String {
        let tag = |id: &i64| cx.tags.get(id).map_or_else(|| "（削除されたタグ）".to_owned(), |(n, _)| n.clone());
        match self {
            Action::AddTag(id) => format!("タグ「{}」を付ける", tag(id)),
            Action::RemoveTag(id) => format!("タグ「{}」を外す", tag(id)),
            Action::SetStatus(s) => {
                format!("ステータスを「{}」にする", InternalStatus::parse(s).map_or(s.as_str(), |s| s.label()))
            }
            Action::Memo(m) => format!("社内メモに「{m}」を追記"),
            Action::Label { format, service } => {
                let f = LabelFormat::parse(format).map_or(format.as_str(), |f| f.label());
                match service {
                    Some(s) if !s.is_empty() => format!("送り状を {f}（サービス {s}）にする"),
                    _ => format!("送り状を {f} にする"),
                }
            }
            Action::ClearDeliveryDate => "送り状のお届け希望日を空にする".to_owned(),
        }
    }

    /// The tag this action names, if any.
    pub fn tag(&self) -> Option<i64> {
        match self {
            Action::AddTag(id) | Action::RemoveTag(id) => Some(*id),
            _ => None,
        }
    }
}

impl RuleSpec {
    /// Every condition holds (none at all only with `match_all`): the reasons, one per
    /// condition, or `None`.
    pub fn matches(&self, f: &RuleFacts, cx: &RuleContext) -> Option<Vec<String>> {
        if self.conditions.is_empty() {
            return self.match_all.then(|| vec!["すべての注文".to_owned()]);
        }
        self.conditions.iter().map(|c| c.matches(f, cx)).collect()
    }

    /// Whether a condition needs the buyer's earlier orders (read only when some rule does).
    pub fn uses_repeat_buyer(&self) -> bool {
        self.conditions.iter().any(|c| matches!(c, Condition::RepeatBuyer(_)))
    }

    /// Whether this order's match turns on its buyer's earlier orders: the rule asks about
    /// them and every other condition holds. Only such orders need the database's answer.
    pub fn needs_repeat_buyer(&self, f: &RuleFacts, cx: &RuleContext) -> bool {
        self.uses_repeat_buyer()
            && self
                .conditions
                .iter()
                .filter(|c| !matches!(c, Condition::RepeatBuyer(_)))
                .all(|c| c.matches(f, cx).is_some())
    }

    /// Why this rule cannot be saved, in Japanese (empty: it can).
    pub fn refusals(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.conditions.is_empty() && !self.match_all {
            out.push(
                "条件がありません。すべての注文に適用する場合は「すべての注文に適用する」にチェックを入れてください"
                    .to_owned(),
            );
        }
        if self.actions.is_empty() {
            out.push("動作を1つ以上指定してください".to_owned());
        }
        for c in &self.conditions {
            match c {
                Condition::Total { min: Some(a), max: Some(b) } | Condition::Lines { min: Some(a), max: Some(b) }
                    if a > b =>
                {
                    out.push(format!("{}: 下限が上限より大きくなっています", c.describe()));
                }
                Condition::Prefecture(l) => {
                    for p in l.iter().filter(|p| !PREFECTURES.contains(&p.as_str())) {
                        out.push(format!("都道府県「{p}」はありません（例: 沖縄県、東京都、北海道）"));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Conditions that cannot all hold (saved all the same, with this warning).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let has = |f: &dyn Fn(&Condition) -> bool| self.conditions.iter().any(f);
        if has(&|c| matches!(c, Condition::Comment(CommentIs::Absent)))
            && has(&|c| matches!(c, Condition::Comment(CommentIs::Contains(_))))
        {
            out.push("「ご要望欄なし」と「ご要望欄に含む」は同時に成り立ちません".to_owned());
        }
        if self.match_all && !self.conditions.is_empty() {
            out.push("条件があるため「すべての注文」は使われません".to_owned());
        }
        let (mut adds, mut removes) = (HashSet::new(), HashSet::new());
        for a in &self.actions {
            match a {
                Action::AddTag(id) => {
                    adds.insert(*id);
                }
                Action::RemoveTag(id) => {
                    removes.insert(*id);
                }
                _ => {}
            }
        }
        if adds.intersection(&removes).next().is_some() {
            out.push("同じタグを付けて外す動作があります（後の動作が残ります）".to_owned());
        }
        if self.actions.iter().filter(|a| matches!(a, Action::SetStatus(_))).count() > 1 {
            out.push("ステータスを変える動作が複数あります（順に適用されます）".to_owned());
        }
        out
    }
}

impl Rule {
    /// Tags this rule names that no longer exist: such a rule is broken and skipped.
    pub fn missing_tags(&self, cx: &RuleContext) -> Vec<i64> {
        self.spec.actions.iter().filter_map(Action::tag).filter(|id| !cx.tags.contains_key(id)).collect()
    }

    pub fn is_broken(&self, cx: &RuleContext) -> bool {
        !self.missing_tags(cx).is_empty()
    }

    pub fn applies_to_store(&self, store: StoreId) -> bool {
        self.stores.is_empty() || self.stores.contains(&store)
    }
}

/// A rule that matched an order: which, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit<'r> {
    pub rule: &'r Rule,
    pub reasons: Vec<String>,
}

/// Whether any rule that could apply to this order turns on its buyer's earlier orders (see
/// [`RuleSpec::needs_repeat_buyer`]); `f.repeat_buyer` is not read.
pub fn needs_repeat_buyer(rules: &[Rule], f: &RuleFacts, cx: &RuleContext) -> bool {
    rules
        .iter()
        .any(|r| r.enabled && r.applies_to_store(f.store) && !r.is_broken(cx) && r.spec.needs_repeat_buyer(f, cx))
}

/// The rules that apply to this order, top to bottom: enabled, not broken, for its store,
/// matching; the list ends after a matching rule that says 「以降のルールを適用しない」. `rules`
/// must be in their order (by position).
pub fn evaluate<'r>(rules: &'r [Rule], f: &RuleFacts, cx: &RuleContext) -> Vec<Hit<'r>> {
    let mut hits = Vec::new();
    for rule in rules {
        if !rule.enabled || !rule.applies_to_store(f.store) || rule.is_broken(cx) {
            continue;
        }
        if let Some(reasons) = rule.spec.matches(f, cx) {
            hits.push(Hit { rule, reasons });
            if rule.stop_after {
                break;
            }
        }
    }
    hits
}

/// The history line of a rule applied: its name, why it matched and what it did.
pub fn history_line(hit: &Hit, done: &[String]) -> String {
    let did = if done.is_empty() { "変更なし".to_owned() } else { done.join("、") };
    format!("ルール「{}」を適用しました（{}）: {did}", hit.rule.name, hit.reasons.join("、"))
}

/// What a set of actions does to an order's tags, in order: the tags added and removed at
/// the end (a later action on the same tag wins).
pub fn tag_effect<'a>(actions: impl IntoIterator<Item = &'a Action>) -> (Vec<i64>, Vec<i64>) {
    let mut state: Vec<(i64, bool)> = Vec::new();
    for a in actions {
        let (id, add) = match a {
            Action::AddTag(id) => (*id, true),
            Action::RemoveTag(id) => (*id, false),
            _ => continue,
        };
        match state.iter_mut().find(|(t, _)| *t == id) {
            Some(s) => s.1 = add,
            None => state.push((id, add)),
        }
    }
    let adds = state.iter().filter(|(_, a)| *a).map(|(t, _)| *t).collect();
    let removes = state.iter().filter(|(_, a)| !*a).map(|(t, _)| *t).collect();
    (adds, removes)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::order::{Address, OrderItem};

    fn order() -> OrderDetail {
        OrderDetail {
            order_id: "shop-a-1".into(),
            pay_method: "payment_b1".into(),
            pay_method_name: "銀行振込".into(),
            pay_status: Some(0),
            total_price: 12_000,
            ship: Address { prefecture: "沖縄県".into(), zip_code: "907-0004".into(), ..Address::default() },
            ship_method: "postage1".into(),
            ship_method_name: "宅配便".into(),
            buyer_comments: "午前中に届けてください".into(),
            items: vec![OrderItem {
                line_id: 1,
                item_id: "tea-001".into(),
                sub_code: "tea-001-red".into(),
                options: vec![("のし".into(), "御中元".into())],
                ..OrderItem::default()
            }],
            ..OrderDetail::default()
        }
    }

    fn cx() -> RuleContext {
        RuleContext {
            tags: HashMap::from([(1, ("離島確認".to_owned(), true)), (2, ("ギフト".to_owned(), false))]),
            islands: HashSet::from(["9070004".to_owned()]),
        }
    }

    fn facts(d: &OrderDetail) -> RuleFacts<'_> {
        RuleFacts { store: StoreId(1), detail: d, repeat_buyer: false }
    }

    fn rule(id: i64, conditions: Vec<Condition>, actions: Vec<Action>) -> Rule {
        Rule {
            id,
            name: format!("ルール{id}"),
            position: id,
            enabled: true,
            stores: Vec::new(),
            spec: RuleSpec { conditions, actions, match_all: false },
            stop_after: false,
        }
    }

    #[test]
    fn every_condition_matches_its_value_and_not_another() {
        let d = order();
        let f = facts(&d);
        let c = cx();
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        let yes = [
            Condition::PayMethod(s(&["payment_b1"])),
            Condition::PayMethod(s(&["振込"])),
            Condition::PayStatus(vec![0]),
            Condition::Total { min: Some(10_000), max: None },
            Condition::Total { min: Some(12_000), max: Some(12_000) },
            Condition::Prefecture(s(&["北海道", "沖縄県"])),
            Condition::RemoteIsland(true),
            Condition::ItemCode(s(&["red"])),
            Condition::ItemCode(s(&["tea-"])),
            Condition::ItemOption(s(&["御中元"])),
            Condition::ItemOption(s(&["のし"])),
            Condition::Comment(CommentIs::Present),
            Condition::Comment(CommentIs::Contains(s(&["午前"]))),
            Condition::DeliveryRequested(false),
            Condition::Gift(false),
            Condition::FraudHold(vec![0, 2]),
            Condition::ShipMethod(s(&["宅配"])),
            Condition::RepeatBuyer(false),
            Condition::Lines { min: None, max: Some(1) },
        ];
        for cond in &yes {
            assert!(cond.matches(&f, &c).is_some(), "{cond:?} should match");
        }
        let no = [
            Condition::PayMethod(s(&["payment_a1"])),
            Condition::PayStatus(vec![1]),
            Condition::Total { min: None, max: Some(11_999) },
            Condition::Prefecture(s(&["東京都"])),
            Condition::RemoteIsland(false),
            Condition::ItemCode(s(&["coffee"])),
            Condition::ItemOption(s(&["包装"])),
            Condition::Comment(CommentIs::Absent),
            Condition::Comment(CommentIs::Contains(s(&["夜"]))),
            Condition::DeliveryRequested(true),
            Condition::Gift(true),
            Condition::FraudHold(vec![1, 3]),
            Condition::ShipMethod(s(&["postage2"])),
            Condition::RepeatBuyer(true),
            Condition::Lines { min: Some(2), max: None },
        ];
        for cond in &no {
            assert!(cond.matches(&f, &c).is_none(), "{cond:?} should not match");
        }
        // The reason names the value that matched.
        assert_eq!(Condition::Prefecture(s(&["沖縄県"])).matches(&f, &c).unwrap(), "お届け先の都道府県=沖縄県");
        // Repeat buyer and delivery requests as the order has them.
        let mut d2 = order();
        d2.ship_request_date = NaiveDate::from_ymd_opt(2026, 12, 10);
        d2.gift_wrap_charge = 300;
        d2.fraud_hold_status = 1;
        let f2 = RuleFacts { repeat_buyer: true, ..facts(&d2) };
        for cond in [
            Condition::DeliveryRequested(true),
            Condition::Gift(true),
            Condition::FraudHold(vec![1]),
            Condition::RepeatBuyer(true),
        ] {
            assert!(cond.matches(&f2, &c).is_some(), "{cond:?}");
        }
        // A postcode off the list, or written full-width, is judged by its digits.
        let mut d3 = order();
        d3.ship.zip_code = "９０７－０００４".into();
        assert!(Condition::RemoteIsland(true).matches(&facts(&d3), &c).is_some());
        d3.ship.zip_code = "900-0006".into();
        assert!(Condition::RemoteIsland(false).matches(&facts(&d3), &c).is_some());
    }

    #[test]
    fn conditions_are_and_and_values_are_or() {
        let d = order();
        let c = cx();
        let both = RuleSpec {
            conditions: vec![
                Condition::Prefecture(vec!["東京都".into(), "沖縄県".into()]),
                Condition::Total { min: Some(10_000), max: None },
            ],
            actions: vec![Action::AddTag(1)],
            match_all: false,
        };
        assert_eq!(both.matches(&facts(&d), &c).unwrap(), vec!["お届け先の都道府県=沖縄県", "合計金額=12000円"]);
        let one_fails = RuleSpec {
            conditions: vec![Condition::Prefecture(vec!["沖縄県".into()]), Condition::Gift(true)],
            ..both.clone()
        };
        assert!(one_fails.matches(&facts(&d), &c).is_none());
        // No condition: only when said explicitly.
        let empty = RuleSpec { conditions: vec![], ..both.clone() };
        assert!(empty.matches(&facts(&d), &c).is_none());
        assert!(!empty.refusals().is_empty());
        let all = RuleSpec { match_all: true, ..empty };
        assert!(all.matches(&facts(&d), &c).is_some());
        assert!(all.refusals().is_empty());
    }

    #[test]
    fn rules_apply_top_to_bottom_and_stop_when_told() {
        let d = order();
        let c = cx();
        let okinawa = || vec![Condition::Prefecture(vec!["沖縄県".into()])];
        let mut rules = vec![
            rule(1, okinawa(), vec![Action::AddTag(1)]),
            rule(2, vec![Condition::Gift(true)], vec![Action::AddTag(2)]),
            rule(3, okinawa(), vec![Action::Memo("離島".into())]),
            rule(4, okinawa(), vec![Action::RemoveTag(1)]),
        ];
        let ids = |hits: Vec<Hit>| hits.iter().map(|h| h.rule.id).collect::<Vec<_>>();
        assert_eq!(ids(evaluate(&rules, &facts(&d), &c)), vec![1, 3, 4]);
        rules[2].stop_after = true;
        assert_eq!(ids(evaluate(&rules, &facts(&d), &c)), vec![1, 3]);
        // A stop on a rule that does not match stops nothing.
        rules[1].stop_after = true;
        assert_eq!(ids(evaluate(&rules, &facts(&d), &c)), vec![1, 3]);
        // Disabled, other-store and broken rules are skipped.
        rules[0].enabled = false;
        rules[2].stores = vec![StoreId(2)];
        rules[3].spec.actions = vec![Action::AddTag(99)];
        assert!(rules[3].is_broken(&c));
        assert_eq!(ids(evaluate(&rules, &facts(&d), &c)), Vec::<i64>::new());
    }

    #[test]
    fn the_buyers_earlier_orders_are_asked_only_when_they_decide() {
        let d = order();
        let c = cx();
        let big =
            rule(1, vec![Condition::RepeatBuyer(true), Condition::Total { min: Some(50_000), max: None }], vec![]);
        let okinawa =
            rule(2, vec![Condition::RepeatBuyer(false), Condition::Prefecture(vec!["沖縄県".into()])], vec![]);
        assert!(!needs_repeat_buyer(std::slice::from_ref(&big), &facts(&d), &c), "the total already fails");
        assert!(needs_repeat_buyer(&[big, okinawa.clone()], &facts(&d), &c));
        let plain = rule(3, vec![Condition::Prefecture(vec!["沖縄県".into()])], vec![]);
        assert!(!needs_repeat_buyer(&[plain], &facts(&d), &c));
    }

    #[test]
    fn a_later_tag_action_wins() {
        let acts = [Action::AddTag(1), Action::AddTag(2), Action::RemoveTag(1), Action::Memo("x".into())];
        assert_eq!(tag_effect(&acts), (vec![2], vec![1]));
        let acts = [Action::RemoveTag(1), Action::AddTag(1)];
        assert_eq!(tag_effect(&acts), (vec![1], vec![]));
    }

    #[test]
    fn bad_rules_are_refused_or_warned_in_japanese() {
        let spec = RuleSpec {
            conditions: vec![
                Condition::Total { min: Some(5000), max: Some(1000) },
                Condition::Prefecture(vec!["沖縄".into()]),
            ],
            actions: vec![],
            match_all: false,
        };
        let r = spec.refusals();
        assert!(r.iter().any(|m| m.contains("下限が上限より大きく")), "{r:?}");
        assert!(r.iter().any(|m| m.contains("都道府県「沖縄」はありません")), "{r:?}");
        assert!(r.iter().any(|m| m.contains("動作を1つ以上")), "{r:?}");
        let contradictory = RuleSpec {
            conditions: vec![
                Condition::Comment(CommentIs::Absent),
                Condition::Comment(CommentIs::Contains(vec!["急ぎ".into()])),
            ],
            actions: vec![Action::AddTag(1), Action::RemoveTag(1)],
            match_all: false,
        };
        assert!(contradictory.refusals().is_empty());
        let w = contradictory.warnings();
        assert_eq!(w.len(), 2, "{w:?}");
    }

    #[test]
    fn the_history_line_says_which_rule_did_what_and_why() {
        let d = order();
        let c = cx();
        let rules = [rule(1, vec![Condition::Prefecture(vec!["沖縄県".into()])], vec![Action::AddTag(1)])];
        let hits = evaluate(&rules, &facts(&d), &c);
        let line = history_line(&hits[0], &["タグ「離島確認」を付けました".to_owned()]);
        assert_eq!(line, "ルール「ルール1」を適用しました（お届け先の都道府県=沖縄県）: タグ「離島確認」を付けました");
    }

    #[test]
    fn specs_round_trip_as_json() {
        let spec = RuleSpec {
            conditions: vec![
                Condition::Comment(CommentIs::Contains(vec!["a".into()])),
                Condition::Lines { min: Some(2), max: None },
            ],
            actions: vec![Action::Label { format: "ehiden".into(), service: None }, Action::ClearDeliveryDate],
            match_all: false,
        };
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<RuleSpec>(&json).unwrap(), spec);
    }
}
