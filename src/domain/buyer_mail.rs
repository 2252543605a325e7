//! Mail to buyers (issue 29, shipping-day.md §4.4): a store's templates for 発送連絡 and a free
//! message, the placeholders they may use, and how a template is checked and filled. Pure: the
//! store's メール設定 page checks and previews with these, and the shipping path fills them.

use std::collections::BTreeMap;

/// Every placeholder a template may use, with what it becomes. A template naming anything else
/// is refused when saved.
pub const PLACEHOLDERS: [(&str, &str); 11] = [
    ("注文ID", "Yahoo!の注文ID（例: demo-store-10000059）"),
    ("注文日", "注文の日付"),
    ("お客様名", "ご注文者の氏名"),
    ("お届け先", "お届け先の氏名・郵便番号・住所"),
    ("商品明細", "商品名・数量の一覧（1行に1商品）"),
    ("合計金額", "ご請求金額（円）"),
    ("配送会社", "配送会社の名前"),
    ("お問い合わせ番号", "配送伝票のお問い合わせ番号"),
    ("追跡URL", "配送会社の荷物追跡ページ"),
    ("出荷日", "出荷した日"),
    ("ストア名", "ストアの名前"),
];

pub const SHIP_SUBJECT: &str = "【{ストア名}】ご注文の商品を発送しました（注文ID: {注文ID}）";
pub const SHIP_BODY: &str = "{お客様名} 様\n\n\
{ストア名}をご利用いただき、ありがとうございます。\n\
ご注文の商品を{出荷日}に発送しました。\n\n\
■ 注文ID: {注文ID}\n\
■ 配送会社: {配送会社}\n\
■ お問い合わせ番号: {お問い合わせ番号}\n\
■ 荷物の追跡: {追跡URL}\n\n\
■ お届け先\n{お届け先}\n\n\
■ ご注文の商品\n{商品明細}\n\n\
到着まで今しばらくお待ちください。\n{ストア名}\n";
pub const FREE_SUBJECT: &str = "【{ストア名}】ご注文についてのお知らせ（注文ID: {注文ID}）";
pub const FREE_BODY: &str = "{お客様名} 様\n\n\
{ストア名}をご利用いただき、ありがとうございます。\n\n\
（ここにお知らせを書きます）\n\n\
■ 注文ID: {注文ID}\n\
■ ご注文の商品\n{商品明細}\n\n\
{ストア名}\n";

/// Longest template part accepted.
pub const MAX_TEMPLATE_CHARS: usize = 5_000;

/// Why a template was refused, in Japanese.
pub fn check(what: &str, template: &str) -> Result<(), String> {
    if template.trim().is_empty() {
        return Err(format!("{what}を入力してください。"));
    }
    if template.chars().count() > MAX_TEMPLATE_CHARS {
        return Err(format!("{what}は{MAX_TEMPLATE_CHARS}文字以内にしてください。"));
    }
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(format!("{what}の「{{」が閉じていません。差し込み項目は {{注文ID}} のように書きます。"));
        };
        let name = &after[..close];
        if name.contains('{') {
            return Err(format!("{what}の「{{」が閉じていません。差し込み項目は {{注文ID}} のように書きます。"));
        }
        if !PLACEHOLDERS.iter().any(|(p, _)| *p == name) {
            unknown.push(format!("{{{name}}}"));
        }
        rest = &after[close + 1..];
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("{what}に使えない差し込み項目があります: {}。使えるのは一覧の項目だけです。", unknown.join("、")))
    }
}

/// The values one order gives the placeholders.
pub type Values = BTreeMap<&'static str, String>;

/// A checked template with its placeholders filled (an unknown one, which [`check`] refuses,
/// is left as written).
pub fn render(template: &str, values: &Values) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if values.contains_key(&after[..close]) => {
                out.push_str(&values[&after[..close]]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// What an order tells a buyer mail (the shipping fields empty for a free message before
/// shipping).
#[derive(Clone, Debug, Default)]
pub struct OrderFacts {
    pub order_id: String,
    pub order_date: String,
    pub buyer_name: String,
    pub ship_to: String,
    pub lines: Vec<(String, i64)>,
    pub total: i64,
    pub carrier: String,
    pub tracking: String,
    pub tracking_url: String,
    pub ship_date: String,
    pub store: String,
}

pub fn values(f: &OrderFacts) -> Values {
    let lines: Vec<String> = f.lines.iter().map(|(title, qty)| format!("・{title} × {qty}")).collect();
    let or_dash = |s: &str| if s.is_empty() { "（未定）".to_owned() } else { s.to_owned() };
    BTreeMap::from([
        ("注文ID", f.order_id.clone()),
        ("注文日", f.order_date.clone()),
        ("お客様名", f.buyer_name.clone()),
        ("お届け先", f.ship_to.clone()),
        ("商品明細", lines.join("\n")),
        ("合計金額", super::invoice::yen(f.total)),
        ("配送会社", or_dash(&f.carrier)),
        ("お問い合わせ番号", or_dash(&f.tracking)),
        ("追跡URL", or_dash(&f.tracking_url)),
        ("出荷日", or_dash(&f.ship_date)),
        ("ストア名", f.store.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_pass_their_own_check() {
        for t in [SHIP_SUBJECT, SHIP_BODY, FREE_SUBJECT, FREE_BODY] {
            assert_eq!(check("本文", t), Ok(()));
        }
    }

    #[test]
    fn unknown_or_broken_placeholders_are_refused() {
        let e = check("本文", "{注文番号} と {お客様} 様").unwrap_err();
        assert!(e.contains("{注文番号}、{お客様}"), "{e}");
        assert!(check("件名", "{注文ID").unwrap_err().contains("閉じていません"));
        assert!(check("件名", "{{注文ID}").unwrap_err().contains("閉じていません"));
        assert!(check("件名", "  ").unwrap_err().contains("入力"));
        assert!(check("本文", &"あ".repeat(MAX_TEMPLATE_CHARS + 1)).is_err());
        // A brace alone is text, not a placeholder, once closed text is valid.
        assert_eq!(check("本文", "ありがとうございます} 以上"), Ok(()));
    }

    #[test]
    fn a_template_is_filled_from_an_order() {
        let f = OrderFacts {
            order_id: "demo-store-10000001".into(),
            buyer_name: "山田 花子".into(),
            lines: vec![("りんご".into(), 2), ("みかん".into(), 1)],
            total: 12_345,
            carrier: "ヤマト運輸".into(),
            tracking: "123456789012".into(),
            store: "本店".into(),
            ..OrderFacts::default()
        };
        let text = render(
            "{お客様名} 様 {注文ID}\n{商品明細}\n{合計金額} {配送会社} {お問い合わせ番号} {追跡URL} {x}",
            &values(&f),
        );
        assert_eq!(
            text,
            "山田 花子 様 demo-store-10000001\n・りんご × 2\n・みかん × 1\n12,345円 ヤマト運輸 123456789012 （未定） {x}"
        );
    }
}
