//! The picking list (shipping-day.md §3.2): トータルピッキング for a batch. Part one has one line
//! per item code + sub-code + options with the total quantity and the orders it belongs to,
//! in 棚番 order (then by code) so the walk is a single round; part two lists the orders with
//! their parcel counts. The batch and the print time are on every page. It carries no
//! personal data, so a masked staff member prints the same list.

use std::collections::{BTreeMap, HashMap};

use super::pdf::{Face, Frame};

/// One order of the batch as the list needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PickOrder {
    pub order_id: String,
    pub store_name: String,
    pub ship_method: String,
    pub lines: Vec<PickItem>,
    /// Parcels (個口) of its shipments; 1 when it has none yet.
    pub parcels: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PickItem {
    pub item_id: String,
    pub sub_code: String,
    pub title: String,
    pub options: Vec<(String, String)>,
    pub quantity: i64,
}

/// One line of part one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickLine {
    /// 棚番; empty when the merchant has set none (such lines come last).
    pub location: String,
    pub item_id: String,
    pub sub_code: String,
    pub title: String,
    pub option: String,
    pub quantity: i64,
    pub orders: Vec<String>,
}

/// The stock code of a line, as the stock page writes it: `item` or `item:sub`.
pub fn stock_code(item_id: &str, sub_code: &str) -> String {
    if sub_code.is_empty() { item_id.to_owned() } else { format!("{item_id}:{sub_code}") }
}

/// Sums the batch's lines by item code, sub-code and options; a line's 棚番 is its stock
/// code's, else its item code's. Sorted by 棚番 (lines without one last), then by code.
pub fn aggregate(orders: &[PickOrder], locations: &HashMap<String, String>) -> Vec<PickLine> {
    let mut by_key: BTreeMap<(String, String, String), PickLine> = BTreeMap::new();
    for o in orders {
        for l in &o.lines {
            let option = l.options.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" / ");
            let key = (l.item_id.clone(), l.sub_code.clone(), option.clone());
            let line = by_key.entry(key).or_insert_with(|| PickLine {
                location: locations
                    .get(&stock_code(&l.item_id, &l.sub_code))
                    .or_else(|| locations.get(&l.item_id))
                    .cloned()
                    .unwrap_or_default(),
                item_id: l.item_id.clone(),
                sub_code: l.sub_code.clone(),
                title: l.title.clone(),
                option,
                quantity: 0,
                orders: Vec::new(),
            });
            line.quantity += l.quantity;
            if line.orders.last() != Some(&o.order_id) {
                line.orders.push(o.order_id.clone());
            }
        }
    }
    let mut lines: Vec<PickLine> = by_key.into_values().collect();
    lines.sort_by(|a, b| {
        (a.location.is_empty(), natural(&a.location), &a.item_id, &a.sub_code, &a.option).cmp(&(
            b.location.is_empty(),
            natural(&b.location),
            &b.item_id,
            &b.sub_code,
            &b.option,
        ))
    });
    lines
}

/// A 棚番 compared the way shelves are walked: digit runs as numbers (A-2 before A-10).
fn natural(s: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = c.to_digit(10).unwrap_or(0) as u64;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(d as u64);
                chars.next();
            }
            out.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    out.push((text, u64::MAX));
    out
}

/// The list on A4 portrait regions. `heading` is 「バッチ #12 ・ 印刷 2026-12-07 10:15」.
pub fn layout(heading: &str, lines: &[PickLine], orders: &[PickOrder], region: (f32, f32)) -> Vec<Frame> {
    let face = Face::get();
    let (w, h) = region;
    let (left, right, size, small) = (30.0, w - 30.0, 8.5, 7.0);
    let bottom = h - 40.0;
    let total_qty: i64 = lines.iter().map(|l| l.quantity).sum();
    let summary = format!("注文 {}件 ・ {}品目 ・ {}点", orders.len(), lines.len(), total_qty);
    let mut frames = Vec::new();
    let mut f = Frame::default();

    let header = |f: &mut Frame, part: &str| -> f32 {
        f.text(left, 28.0, 15.0, "ピッキングリスト");
        f.text_right(right, 30.0, size, heading);
        f.text_right(right, 30.0 + size + 4.0, size, &summary);
        f.text(left, 58.0, size + 1.0, part);
        76.0
    };
    // Part one's columns: ✓ | 棚番 | code | name and option | quantity | orders.
    let (c_check, c_loc, c_code, c_name, c_qty, c_orders) =
        (left, left + 16.0, left + 74.0, left + 190.0, right - 150.0, right - 140.0);
    let part1_head = |f: &mut Frame, y: f32| -> f32 {
        f.shade(left, y, right - left, size + 7.0, 225);
        let t = y + 3.5;
        f.text(c_loc, t, size, "棚番");
        f.text(c_code, t, size, "商品コード");
        f.text(c_name, t, size, "商品名・オプション");
        f.text_right(c_qty, t, size, "数量");
        f.text(c_orders, t, size, "注文");
        y + size + 7.0
    };
    let mut y = header(&mut f, "1. 商品ごとの数量（棚番順）");
    y = part1_head(&mut f, y);
    for l in lines {
        let code = if l.sub_code.is_empty() { l.item_id.clone() } else { format!("{}\n{}", l.item_id, l.sub_code) };
        let code_lines = face.wrap(&code, small, c_name - c_code - 6.0);
        let mut name = face.wrap(&l.title, size, c_qty - c_name - 34.0);
        let option = if l.option.is_empty() { Vec::new() } else { face.wrap(&l.option, small, c_qty - c_name - 34.0) };
        let order_lines = face.wrap(&l.orders.join(" "), small, right - c_orders);
        let rows = (name.len() as f32 * (size + 3.0) + option.len() as f32 * (small + 2.5))
            .max(code_lines.len() as f32 * (small + 2.5))
            .max(order_lines.len() as f32 * (small + 2.5));
        let row_h = rows + 6.0;
        if y + row_h > bottom {
            frames.push(std::mem::take(&mut f));
            y = header(&mut f, "1. 商品ごとの数量（棚番順・続き）");
            y = part1_head(&mut f, y);
        }
        let top = y + 3.0;
        // A box to tick by hand.
        f.hline(c_check + 2.0, c_check + 10.0, top, 0.5);
        f.hline(c_check + 2.0, c_check + 10.0, top + 8.0, 0.5);
        f.vline(c_check + 2.0, top, top + 8.0, 0.5);
        f.vline(c_check + 10.0, top, top + 8.0, 0.5);
        f.text(c_loc, top, size, &face.fit(&l.location, size, c_code - c_loc - 4.0));
        let mut cy = top;
        for c in &code_lines {
            f.text(c_code, cy, small, c);
            cy += small + 2.5;
        }
        let mut ny = top;
        for t in name.drain(..) {
            f.text(c_name, ny, size, &t);
            ny += size + 3.0;
        }
        for t in option {
            f.text_gray(c_name, ny, small, &t, 90);
            ny += small + 2.5;
        }
        f.text_right(c_qty, top - 1.0, size + 2.0, &l.quantity.to_string());
        let mut oy = top;
        for t in order_lines {
            f.text(c_orders, oy, small, &t);
            oy += small + 2.5;
        }
        y += row_h;
        f.hline(left, right, y, 0.3);
    }

    // Part two: the orders and their parcels.
    let (o_id, o_store, o_method, o_qty, o_parcels) =
        (left + 4.0, left + 150.0, left + 290.0, right - 60.0, right - 4.0);
    let part2_head = |f: &mut Frame, y: f32| -> f32 {
        f.shade(left, y, right - left, size + 7.0, 225);
        let t = y + 3.5;
        f.text(o_id, t, size, "注文番号");
        f.text(o_store, t, size, "ストア");
        f.text(o_method, t, size, "配送方法");
        f.text_right(o_qty, t, size, "点数");
        f.text_right(o_parcels, t, size, "個口");
        y + size + 7.0
    };
    if y + 60.0 > bottom {
        frames.push(std::mem::take(&mut f));
        y = header(&mut f, "2. 注文ごとの個口");
    } else {
        y += 14.0;
        f.text(left, y, size + 1.0, "2. 注文ごとの個口");
        y += size + 8.0;
    }
    y = part2_head(&mut f, y);
    for o in orders {
        let row_h = size + 7.0;
        if y + row_h > bottom {
            frames.push(std::mem::take(&mut f));
            y = header(&mut f, "2. 注文ごとの個口（続き）");
            y = part2_head(&mut f, y);
        }
        let top = y + 3.0;
        f.text(o_id, top, size, &o.order_id);
        f.text(o_store, top, size, &face.fit(&o.store_name, size, o_method - o_store - 6.0));
        f.text(o_method, top, size, &face.fit(&o.ship_method, size, o_qty - o_method - 40.0));
        f.text_right(o_qty, top, size, &o.lines.iter().map(|l| l.quantity).sum::<i64>().to_string());
        f.text_right(o_parcels, top, size, &o.parcels.to_string());
        y += row_h;
        f.hline(left, right, y, 0.3);
    }
    frames.push(f);
    let n = frames.len();
    for (i, frame) in frames.iter_mut().enumerate() {
        frame.text_right(right, h - 28.0, small, &format!("{} / {n}", i + 1));
        frame.text_gray(left, h - 28.0, small, heading, 110);
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, sub: &str, opt: &str, q: i64) -> PickItem {
        PickItem {
            item_id: id.into(),
            sub_code: sub.into(),
            title: format!("{id}の商品"),
            options: if opt.is_empty() { vec![] } else { vec![("色".into(), opt.into())] },
            quantity: q,
        }
    }

    fn order(id: &str, lines: Vec<PickItem>) -> PickOrder {
        PickOrder { order_id: id.into(), store_name: "店".into(), ship_method: "宅配便".into(), lines, parcels: 1 }
    }

    #[test]
    fn lines_are_summed_per_code_and_option_and_walk_the_shelves() {
        let orders = vec![
            order("o1", vec![item("towel", "towel-w", "白", 2), item("cup", "", "", 1)]),
            order("o2", vec![item("towel", "towel-w", "白", 1), item("towel", "towel-b", "黒", 1)]),
            order("o3", vec![item("soap", "", "", 3), item("cup", "", "", 2)]),
        ];
        let locations: HashMap<String, String> = [
            ("towel:towel-w".to_string(), "A-10".to_string()),
            ("towel".to_string(), "A-2".to_string()),
            ("cup".to_string(), "B-1".to_string()),
        ]
        .into();
        let lines = aggregate(&orders, &locations);
        let got: Vec<(&str, &str, i64, Vec<&str>)> = lines
            .iter()
            .map(|l| {
                (l.location.as_str(), l.sub_code.as_str(), l.quantity, l.orders.iter().map(String::as_str).collect())
            })
            .collect();
        assert_eq!(
            got,
            vec![
                // towel-b has no 棚番 of its own: it takes its item code's, which sorts before A-10.
                ("A-2", "towel-b", 1, vec!["o2"]),
                ("A-10", "towel-w", 3, vec!["o1", "o2"]),
                ("B-1", "", 3, vec!["o1", "o3"]),
                ("", "", 3, vec!["o3"]),
            ]
        );
    }

    #[test]
    fn ten_thousand_lines_make_pages_with_the_batch_on_every_one() {
        let orders: Vec<PickOrder> = (0..2000)
            .map(|i| order(&format!("o{i}"), (0..5).map(|j| item(&format!("c{i}-{j}"), "", "", 1)).collect()))
            .collect();
        let lines = aggregate(&orders, &HashMap::new());
        assert_eq!(lines.len(), 10_000);
        let frames = layout("バッチ #7 ・ 印刷 2026-12-07 10:00", &lines, &orders, (595.28, 841.89));
        assert!(frames.len() > 100);
        for f in &frames {
            assert!(f.texts().contains(&"バッチ #7 ・ 印刷 2026-12-07 10:00"));
        }
        let all: Vec<&str> = frames.iter().flat_map(|f| f.texts()).collect();
        assert!(all.contains(&"c1999-4") && all.contains(&"o1999"));
    }
}
