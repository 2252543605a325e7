//! The 納品書's layout (shipping-day.md §3.1): one slip per order, the seller block with the
//! 登録番号, the lines with ※ on 軽減税率 lines, fees and reductions, the total and tax per rate,
//! and the payment method. A gift prints no money at all. A long order continues on the next
//! region with its header repeated; every region of a slip says 「n / N」.

use chrono::NaiveDate;

use super::pdf::{Face, Frame};
use crate::domain::invoice::{Charges, REDUCED_RATE, TaxSummary};

/// What a field Yahoo masked (a social gift's giver) prints as, so that it does not read as an
/// error or a blank.
pub const HIDDEN: &str = "（ギフトのため非表示）";

/// A name with its honorific (none for a hidden one).
fn honorific(name: &str) -> String {
    if name == HIDDEN { name.to_owned() } else { format!("{name} 様") }
}

/// The issuer block (the store's 納品書 settings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seller {
    pub name: String,
    pub address: String,
    pub phone: String,
    /// `T` and 13 digits, or empty.
    pub registration: String,
    pub message: String,
}

/// A name-and-address block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub zip: String,
    pub address: String,
    pub phone: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlipLine {
    pub title: String,
    pub item_id: String,
    pub sub_code: String,
    pub options: Vec<(String, String)>,
    pub unit_price: i64,
    pub quantity: i64,
    pub rate: u8,
}

impl SlipLine {
    pub fn amount(&self) -> i64 {
        self.unit_price * self.quantity
    }
}

/// The money of a slip that shows prices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Money {
    pub charges: Charges,
    pub summary: TaxSummary,
}

/// Everything one 納品書 prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slip {
    pub order_id: String,
    pub store_name: String,
    pub order_date: NaiveDate,
    /// The date and what it is (出荷日, 出荷予定日 or 発行日).
    pub ship_date: (NaiveDate, &'static str),
    pub recipient: Party,
    pub buyer: Party,
    pub lines: Vec<SlipLine>,
    /// `None` for a gift: no prices, fees or tax block.
    pub money: Option<Money>,
    pub pay_method: String,
    /// The buyer's 備考 when the store prints it.
    pub comments: Option<String>,
    pub seller: Seller,
    /// The order is a gift (its slip says so in its header).
    pub gift: bool,
}

pub use crate::domain::invoice::yen;

/// Sizes for a region: A4 gets 9 pt text, smaller regions 8 pt.
struct Style {
    margin: f32,
    size: f32,
    small: f32,
    line: f32,
}

impl Style {
    fn for_region(w: f32, h: f32) -> Style {
        if w > 500.0 && h > 800.0 {
            Style { margin: 36.0, size: 9.0, small: 7.5, line: 13.0 }
        } else {
            Style { margin: 26.0, size: 8.0, small: 6.5, line: 11.0 }
        }
    }
}

/// Columns of the line table.
struct Columns {
    name: (f32, f32),
    unit: f32,
    qty: f32,
    amount: f32,
}

/// The slip laid out on regions of `region` size (width, height in points).
pub fn layout(slip: &Slip, region: (f32, f32)) -> Vec<Frame> {
    let face = Face::get();
    let (w, h) = region;
    let st = Style::for_region(w, h);
    let left = st.margin;
    let right = w - st.margin;
    let bottom = h - st.margin - st.line;
    let priced = slip.money.is_some();
    let cols = if priced {
        Columns { name: (left + 4.0, right - 190.0), unit: right - 120.0, qty: right - 72.0, amount: right - 4.0 }
    } else {
        Columns { name: (left + 4.0, right - 60.0), unit: 0.0, qty: right - 8.0, amount: 0.0 }
    };
    let mut frames: Vec<Frame> = Vec::new();
    let mut f = Frame::default();
    let mut y = first_page_header(&mut f, slip, &st, left, right);
    y = table_header(&mut f, &st, &cols, priced, left, right, y);

    let new_region = |frames: &mut Vec<Frame>, f: &mut Frame| -> f32 {
        frames.push(std::mem::take(f));
        let mut y = st.margin;
        f.text(left, y, st.size + 3.0, "納品書（続き）");
        f.text_right(right, y + 3.0, st.size, &format!("注文番号 {}", slip.order_id));
        y += st.size + 3.0 + 10.0;
        table_header(f, &st, &cols, priced, left, right, y)
    };

    for line in &slip.lines {
        let mark = if priced && line.rate == REDUCED_RATE { " ※" } else { "" };
        let title = face.wrap(&format!("{}{mark}", line.title), st.size, cols.name.1 - cols.name.0);
        let mut detail = vec![if line.sub_code.is_empty() {
            format!("商品コード {}", line.item_id)
        } else {
            format!("商品コード {} / {}", line.item_id, line.sub_code)
        }];
        if !line.options.is_empty() {
            let opts: Vec<String> = line.options.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            detail.extend(face.wrap(&opts.join("　"), st.small, cols.name.1 - cols.name.0));
        }
        let row_h = title.len() as f32 * (st.size + 3.0) + detail.len() as f32 * (st.small + 2.5) + 5.0;
        if y + row_h > bottom {
            y = new_region(&mut frames, &mut f);
        }
        let top = y + 3.0;
        let mut ty = top;
        for t in &title {
            f.text(cols.name.0, ty, st.size, t);
            ty += st.size + 3.0;
        }
        for d in &detail {
            f.text_gray(cols.name.0, ty, st.small, d, 90);
            ty += st.small + 2.5;
        }
        if priced {
            f.text_right(cols.unit, top, st.size, &yen(line.unit_price));
            f.text_right(cols.qty, top, st.size, &line.quantity.to_string());
            f.text_right(cols.amount, top, st.size, &yen(line.amount()));
        } else {
            f.text_right(cols.qty, top, st.size, &line.quantity.to_string());
        }
        y += row_h;
        f.hline(left, right, y, 0.3);
    }

    // Money: fees, reductions, the total and tax per rate, then the payment.
    if let Some(money) = &slip.money {
        let c = &money.charges;
        let s = &money.summary;
        let mut rows: Vec<(String, String)> = vec![("商品合計".into(), yen(s.items_total))];
        for (label, v) in [("送料", c.ship_charge), ("決済手数料", c.pay_charge), ("ギフト包装料", c.gift_wrap_charge)]
        {
            if v != 0 {
                rows.push((label.into(), yen(v)));
            }
        }
        for (label, v) in [("値引き", c.discount), ("クーポン値引き", c.coupon)] {
            if v != 0 {
                rows.push((label.into(), yen(-v)));
            }
        }
        rows.push(("合計（税込）".into(), yen(s.items_total + s.fees_total - s.reductions)));
        for r in &s.rates {
            rows.push((format!("{}%対象", r.rate), format!("{}（内消費税 {}）", yen(r.total), yen(r.tax))));
        }
        for (label, v) in [("ポイント利用", c.points), ("ギフトカード利用", c.gift_card)] {
            if v != 0 {
                rows.push((label.into(), yen(-v)));
            }
        }
        rows.push(("ご請求金額".into(), yen(s.billed)));
        let block_h = rows.len() as f32 * (st.size + 5.0) + 2.0 * st.line + 6.0;
        if y + block_h > bottom {
            y = new_region(&mut frames, &mut f);
        }
        y += 6.0;
        let label_x = right - 250.0;
        for (i, (label, value)) in rows.iter().enumerate() {
            let strong = label == "ご請求金額" || label == "合計（税込）";
            if strong {
                f.shade(label_x - 4.0, y - 1.0, right - label_x + 4.0, st.size + 4.0, 235);
            }
            f.text(label_x, y, st.size, label);
            f.text_right(right - 4.0, y, st.size, value);
            y += st.size + 5.0;
            if i + 1 == rows.len() {
                f.hline(label_x - 4.0, right, y - 2.0, 0.5);
            }
        }
        y += 4.0;
        if slip.lines.iter().any(|l| l.rate == REDUCED_RATE) {
            f.text(left, y, st.small + 0.5, "※は軽減税率（8%）対象商品です。");
            y += st.line;
        }
        if !slip.pay_method.is_empty() {
            f.text(left, y, st.size, &format!("お支払い方法: {}", slip.pay_method));
            y += st.line;
        }
    }

    if let Some(comments) = slip.comments.as_deref().filter(|c| !c.trim().is_empty()) {
        let text = face.wrap(comments, st.small + 0.5, right - left - 8.0);
        y += 4.0;
        if y + st.line > bottom {
            y = new_region(&mut frames, &mut f);
        }
        f.text(left, y, st.size, "備考");
        y += st.line;
        for t in text {
            if y + st.line > bottom {
                y = new_region(&mut frames, &mut f);
                f.text(left, y, st.size, "備考（続き）");
                y += st.line;
            }
            f.text(left + 8.0, y, st.small + 0.5, &t);
            y += st.small + 4.0;
        }
    }
    frames.push(f);

    // Page numbers, now that the count is known.
    let n = frames.len();
    for (i, frame) in frames.iter_mut().enumerate() {
        frame.text_right(right, h - st.margin + 2.0, st.small, &format!("{} / {n}", i + 1));
        frame.text_gray(left, h - st.margin + 2.0, st.small, &format!("注文番号 {}", slip.order_id), 110);
    }
    frames
}

/// The first region's header: title, order facts, recipient and buyer, the seller block and
/// the message. Returns where the table starts.
fn first_page_header(f: &mut Frame, slip: &Slip, st: &Style, left: f32, right: f32) -> f32 {
    let face = Face::get();
    let mut y = st.margin;
    let title = if slip.gift { "納品書（ギフト）" } else { "納品書" };
    f.text_center((left + right) / 2.0, y, st.size + 9.0, title);
    y += st.size + 9.0 + 12.0;
    let mid = left + (right - left) * 0.55;

    // Left: the recipient, then the buyer.
    let mut ly = y;
    f.text_gray(left, ly, st.small, "お届け先", 90);
    ly += st.small + 4.0;
    let addr_w = mid - left - 12.0;
    if !slip.recipient.zip.is_empty() {
        f.text(left, ly, st.size, &format!("〒{}", slip.recipient.zip));
        ly += st.line;
    }
    for t in face.wrap(&slip.recipient.address, st.size, addr_w) {
        f.text(left, ly, st.size, &t);
        ly += st.line;
    }
    for t in face.wrap(&honorific(&slip.recipient.name), st.size + 3.0, addr_w) {
        f.text(left, ly, st.size + 3.0, &t);
        ly += st.size + 6.0;
    }
    if !slip.recipient.phone.is_empty() {
        f.text(left, ly, st.size, &format!("TEL {}", slip.recipient.phone));
        ly += st.line;
    }
    ly += 4.0;
    if slip.buyer != slip.recipient && !slip.buyer.name.is_empty() {
        f.text_gray(left, ly, st.small, "ご注文者", 90);
        ly += st.small + 4.0;
        for t in face.wrap(&honorific(&slip.buyer.name), st.size, addr_w) {
            f.text(left, ly, st.size, &t);
            ly += st.line;
        }
    }

    // Right: the order, then the seller.
    let mut ry = y;
    let facts = [
        ("注文番号", slip.order_id.clone()),
        ("注文日", slip.order_date.format("%Y年%m月%d日").to_string()),
        (slip.ship_date.1, slip.ship_date.0.format("%Y年%m月%d日").to_string()),
    ];
    for (k, v) in facts {
        f.text_gray(mid, ry, st.small, k, 90);
        f.text(mid + 52.0, ry - 0.5, st.size, &v);
        ry += st.line;
    }
    ry += 6.0;
    let s = &slip.seller;
    let seller_w = right - mid;
    let name = if s.name.is_empty() { &slip.store_name } else { &s.name };
    for t in face.wrap(name, st.size + 2.0, seller_w) {
        f.text(mid, ry, st.size + 2.0, &t);
        ry += st.size + 5.0;
    }
    for t in face.wrap(&s.address, st.small + 0.5, seller_w) {
        f.text(mid, ry, st.small + 0.5, &t);
        ry += st.small + 3.5;
    }
    if !s.phone.is_empty() {
        f.text(mid, ry, st.small + 0.5, &format!("TEL {}", s.phone));
        ry += st.small + 3.5;
    }
    if !s.registration.is_empty() {
        f.text(mid, ry, st.small + 0.5, &format!("登録番号 {}", s.registration));
        ry += st.small + 3.5;
    }

    let mut y = ly.max(ry) + 8.0;
    if !s.message.trim().is_empty() {
        for t in face.wrap(&s.message, st.small + 0.5, right - left) {
            f.text(left, y, st.small + 0.5, &t);
            y += st.small + 4.0;
        }
        y += 6.0;
    } else if slip.money.is_some() {
        f.text(left, y, st.size, "このたびはお買い上げいただき、ありがとうございます。下記のとおり納品いたします。");
        y += st.line + 6.0;
    }
    y
}

fn table_header(f: &mut Frame, st: &Style, cols: &Columns, priced: bool, left: f32, right: f32, y: f32) -> f32 {
    let h = st.size + 7.0;
    f.shade(left, y, right - left, h, 225);
    let top = y + 3.5;
    f.text(cols.name.0, top, st.size, "商品名");
    if priced {
        f.text_right(cols.unit, top, st.size, "単価（税込）");
        f.text_right(cols.qty, top, st.size, "数量");
        f.text_right(cols.amount, top, st.size, "金額（税込）");
    } else {
        f.text_right(cols.qty, top, st.size, "数量");
    }
    f.hline(left, right, y + h, 0.6);
    y + h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invoice::{LineAmount, summarize};

    fn slip(lines: usize, gift: bool) -> Slip {
        let lines: Vec<SlipLine> = (0..lines)
            .map(|i| SlipLine {
                title: format!("オーガニックコットン今治タオル バスタオル 2枚セット 商品{i}"),
                item_id: format!("towel-{i}"),
                sub_code: String::new(),
                options: vec![("カラー".into(), "ホワイト".into())],
                unit_price: 1080,
                quantity: 1,
                rate: if i % 2 == 0 { 8 } else { 10 },
            })
            .collect();
        let amounts: Vec<LineAmount> = lines.iter().map(|l| LineAmount { amount: l.amount(), rate: l.rate }).collect();
        let charges = Charges { total_price: amounts.iter().map(|a| a.amount).sum(), ..Charges::default() };
        let money = (!gift).then(|| Money { charges, summary: summarize(&amounts, &charges).unwrap() });
        Slip {
            order_id: "store-10000001".into(),
            store_name: "テストストア".into(),
            order_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
            ship_date: (NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(), "出荷予定日"),
            recipient: Party {
                name: "山田 花子".into(),
                zip: "1000001".into(),
                address: "東京都千代田区".into(),
                phone: "0312345678".into(),
            },
            buyer: Party { name: "山田 太郎".into(), ..Party::default() },
            lines,
            money,
            pay_method: "クレジットカード決済".into(),
            comments: None,
            seller: Seller { registration: "T7000012050002".into(), ..Seller::default() },
            gift,
        }
    }

    #[test]
    fn yen_has_commas() {
        assert_eq!(yen(0), "0円");
        assert_eq!(yen(1234567), "1,234,567円");
        assert_eq!(yen(-500), "-500円");
        assert_eq!(yen(999), "999円");
    }

    #[test]
    fn eighty_lines_continue_with_the_header_and_page_numbers() {
        let frames = layout(&slip(80, false), (595.28, 841.89));
        let n = frames.len();
        assert!(n >= 3, "{n} pages");
        for (i, f) in frames.iter().enumerate() {
            let texts = f.texts();
            assert!(texts.contains(&"商品名"), "page {i} repeats the table header");
            assert!(texts.contains(&format!("{} / {n}", i + 1).as_str()));
            if i > 0 {
                assert!(texts.contains(&"納品書（続き）"));
            }
        }
        let all: Vec<&str> = frames.iter().flat_map(|f| f.texts()).collect();
        assert!(all.iter().any(|t| t.contains("商品79")), "the last line is printed");
        assert!(all.contains(&"ご請求金額"));
        // A small region makes more pages of the same slip.
        assert!(layout(&slip(80, false), (595.28, 420.9)).len() > n);
    }

    #[test]
    fn every_paper_prints_whole_slips() {
        use crate::documents::pdf::Paper;
        let slips = [slip(3, false), slip(2, true), slip(4, false)];
        for (paper, pages) in [(Paper::A4, 3), (Paper::A5, 3), (Paper::A4Two, 2)] {
            let (pdf, n) = crate::documents::write_slips(&slips, paper, "test", chrono::Utc::now()).unwrap();
            assert_eq!(n, pages, "{paper:?}");
            // ORDERDESK_KEEP_PDFS=<folder> keeps them, to look at (docs/screenshots).
            if let Ok(dir) = std::env::var("ORDERDESK_KEEP_PDFS") {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(std::path::Path::new(&dir).join(format!("paper-{}.pdf", paper.as_str())), pdf).unwrap();
            }
        }
        // Each slip starts a region of its own. Half an A4 holds a slip of three lines; a
        // longer one continues on the next half (so 3 + 2 + 4 lines take four halves: 2 sheets).
        for s in &slips[..2] {
            assert_eq!(layout(s, Paper::A4Two.region()).len(), 1);
        }
        assert_eq!(layout(&slips[2], Paper::A4Two.region()).len(), 2);
    }

    #[test]
    fn a_gift_has_no_money() {
        let frames = layout(&slip(3, true), (595.28, 841.89));
        let all: Vec<&str> = frames.iter().flat_map(|f| f.texts()).collect();
        assert!(all.contains(&"納品書（ギフト）"));
        assert!(!all.iter().any(|t| t.contains('円')), "{all:?}");
        assert!(!all.iter().any(|t| t.contains('※')));
    }
}
