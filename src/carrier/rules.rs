//! The field checks the three label writers share, and the CSV record they all write.

use std::io::{self, Write};

use chrono::{Days, NaiveDate};

use super::{Parcel, Problem, Sender, jis};

/// How far ahead a ship or delivery date may be (B2's limit, §1.1; we apply it to all carriers).
pub const MAX_DAYS_AHEAD: u64 = 30;

/// Collects the problems of one parcel, or of the store's settings (empty key and order id).
pub struct Checker<'a> {
    problems: &'a mut Vec<Problem>,
    management_no: &'a str,
    order_id: &'a str,
}

impl<'a> Checker<'a> {
    pub fn new(problems: &'a mut Vec<Problem>, management_no: &'a str, order_id: &'a str) -> Self {
        Checker { problems, management_no, order_id }
    }

    pub fn push(&mut self, field: &'static str, value: &str, message: String, replacement: Option<String>) {
        self.problems.push(Problem {
            management_no: self.management_no.to_owned(),
            order_id: self.order_id.to_owned(),
            field,
            value: value.to_owned(),
            message,
            replacement,
        });
    }

    /// Printed text: only printable characters, at most `max` bytes (full-width = 2).
    pub fn text(&mut self, field: &'static str, value: &str, max: usize, required: bool) {
        if value.trim().is_empty() {
            if required {
                self.push(field, value, format!("「{field}」が空です。入力してください。"), None);
            }
            return;
        }
        // Measure what would be written once the characters are fixed.
        let fixed = self.chars(field, value);
        let len = jis::byte_len(fixed.as_deref().unwrap_or(value));
        if len > max {
            self.push(field, value, too_long(field, max, len), None);
        }
    }

    /// Printed text spread over several columns of `width` bytes each (e飛伝's 住所１–３,
    /// クリックポスト's 住所1–4行目): each part starts a new line and a long part wraps, but the
    /// whole must fit in `max_lines`.
    pub fn lines(&mut self, field: &'static str, parts: &[&str], width: usize, max_lines: usize, required: bool) {
        let joined = parts.concat();
        if joined.trim().is_empty() {
            if required {
                self.push(field, &joined, format!("「{field}」が空です。入力してください。"), None);
            }
            return;
        }
        // Character problems per part, so a replacement is for one value the merchant typed.
        for part in parts {
            self.chars(field, part);
        }
        let fixed: Vec<String> = parts.iter().map(|p| jis::replace_all(p).unwrap_or_else(|| (*p).to_owned())).collect();
        let fixed: Vec<&str> = fixed.iter().map(String::as_str).collect();
        let used = pack_lines(&fixed, width).len();
        if used > max_lines {
            self.push(
                field,
                &joined,
                format!(
                    "「{field}」が長すぎます（全角{}文字・半角{width}文字の{max_lines}行まで、今は{used}行分）。短くしてください。",
                    width / 2
                ),
                None,
            );
        }
    }

    /// A problem for each character the carrier cannot print; the value with replacements
    /// applied, when every such character has one.
    fn chars(&mut self, field: &'static str, value: &str) -> Option<String> {
        let bad = jis::bad_chars(value);
        let suggestion = jis::replace_all(value);
        if bad.is_empty() {
            return suggestion;
        }
        let listed = quote_chars(&bad);
        let message = match &suggestion {
            Some(s) => format!(
                "「{field}」の{listed}は送り状に印字できない文字です（JIS第1・第2水準の外）。置き換え案「{s}」を使うか、別の文字に直してください。"
            ),
            None => {
                let hints: Vec<String> = bad
                    .iter()
                    .filter_map(|&c| jis::replacement(c).map(|r| format!("「{}」は「{r}」", shown(c))))
                    .collect();
                let hint = if hints.is_empty() {
                    String::new()
                } else {
                    format!("（{}に置き換えられます）", hints.join("、"))
                };
                format!(
                    "「{field}」の{listed}は送り状に印字できない文字です（JIS第1・第2水準の外）。削除するか、別の文字に直してください{hint}。"
                )
            }
        };
        self.push(field, value, message, suggestion.clone());
        suggestion
    }

    /// A column of half-width codes (digits, letters, a few signs), at most `max` characters.
    pub fn code(
        &mut self,
        field: &'static str,
        value: &str,
        max: usize,
        required: bool,
        allowed: fn(char) -> bool,
        what: &str,
    ) {
        if value.is_empty() {
            if required {
                self.push(field, value, format!("「{field}」が空です。{what}で入力してください。"), None);
            }
            return;
        }
        if !value.chars().all(allowed) {
            let folded: String = value.trim().chars().map(jis::fold_ascii).collect();
            let replacement = (folded.chars().all(allowed) && folded.len() <= max).then_some(folded);
            self.push(field, value, format!("「{field}」は{what}で入力してください（今は「{value}」）。"), replacement);
            return;
        }
        if value.len() > max {
            self.push(field, value, format!("「{field}」は{what}{max}文字までです（今は{}文字）。", value.len()), None);
        }
    }

    /// A phone number: half-width digits and hyphens, at most `max` characters.
    pub fn phone(&mut self, field: &'static str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.push(field, value, format!("「{field}」が空です。電話番号を入力してください。"), None);
            return;
        }
        let ok = |s: &str| {
            s.len() <= max
                && s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_digit() || c == '-')
        };
        if ok(value) {
            return;
        }
        let fixed = normalize_phone(value);
        let replacement = ok(&fixed).then_some(fixed);
        let message = if value.chars().all(|c| c.is_ascii_digit() || c == '-') && value.len() > max {
            format!("「{field}」が長すぎます（{max}文字まで、今は{}文字）。番号を確かめてください。", value.len())
        } else {
            format!("「{field}」は半角の数字とハイフンだけで入力してください（今は「{value}」）。")
        };
        self.push(field, value, message, replacement);
    }

    /// A postcode: 7 digits, with or without the hyphen.
    pub fn zip(&mut self, field: &'static str, value: &str) {
        if value.trim().is_empty() {
            self.push(field, value, format!("「{field}」が空です。郵便番号7桁を入力してください。"), None);
            return;
        }
        if normalize_zip(value).is_some() {
            return;
        }
        let folded: String = value.chars().map(jis::fold_ascii).filter(|c| !matches!(c, '〒' | ' ')).collect();
        let replacement = normalize_zip(&folded.replace(['ー', '－', '‐', '−', '―'], "-"));
        self.push(
            field,
            value,
            format!("「{field}」は半角数字7桁（123-4567 か 1234567）で入力してください（今は「{value}」）。"),
            replacement,
        );
    }

    /// A half-width katakana column, filled from the kana the order gives (full-width is fine).
    pub fn kana(&mut self, field: &'static str, source: &str, max: usize) {
        let kana = jis::to_halfwidth_katakana(source);
        if !jis::is_half_width_text(&kana) {
            let others: Vec<char> =
                kana.chars().filter(|c| !jis::is_half_width_text(&c.to_string())).fold(Vec::new(), |mut v, c| {
                    if !v.contains(&c) {
                        v.push(c);
                    }
                    v
                });
            self.push(
                field,
                source,
                format!(
                    "「{field}」にカナにできない文字{}があります。フリガナをカタカナで入力し直すか、空にしてください。",
                    quote_chars(&others)
                ),
                None,
            );
            return;
        }
        if kana.len() > max {
            self.push(
                field,
                source,
                format!("「{field}」が長すぎます（半角{max}文字まで、今は半角{}文字）。短くしてください。", kana.len()),
                None,
            );
        }
    }

    /// 出荷予定日 from today to 30 days ahead; お届け予定日 no later than that and not before
    /// the ship date.
    pub fn dates(
        &mut self,
        (ship_field, ship): (&'static str, NaiveDate),
        delivery: Option<(&'static str, NaiveDate)>,
        today: NaiveDate,
    ) {
        let last = today.checked_add_days(Days::new(MAX_DAYS_AHEAD)).unwrap_or(today);
        let range = format!("今日（{}）から{MAX_DAYS_AHEAD}日後（{}）まで", slashed(today), slashed(last));
        if ship < today {
            self.push(
                ship_field,
                &slashed(ship),
                format!("「{ship_field}」（{}）が過去の日付です。{range}の日付にしてください。", slashed(ship)),
                None,
            );
        } else if ship > last {
            self.push(
                ship_field,
                &slashed(ship),
                format!("「{ship_field}」（{}）が先すぎます。{range}の日付にしてください。", slashed(ship)),
                None,
            );
        }
        if let Some((field, date)) = delivery {
            if date > last {
                self.push(
                    field,
                    &slashed(date),
                    format!(
                        "「{field}」（{}）が先すぎます。{}までの日付にするか、日付指定をやめてください。",
                        slashed(date),
                        slashed(last)
                    ),
                    None,
                );
            } else if date < ship {
                self.push(
                    field,
                    &slashed(date),
                    format!(
                        "「{field}」（{}）が「{ship_field}」（{}）より前です。出荷予定日以降の日付にしてください。",
                        slashed(date),
                        slashed(ship)
                    ),
                    None,
                );
            }
        }
    }
}

fn too_long(field: &str, max: usize, len: usize) -> String {
    format!(
        "「{field}」が長すぎます（全角{}文字・半角{max}文字まで、今は半角換算{len}文字）。短くしてください。",
        max / 2
    )
}

/// A character as a message shows it: invisible ones by their code point.
/// Streams a label file: its header row, then a row per parcel, each with the sender and the
/// carrier settings set last (one file may hold several stores' parcels). Every parcel must
/// have passed its format's `check`.
pub struct LabelWriter<W: Write, S: Clone> {
    w: W,
    sender: Sender,
    settings: S,
    row: fn(&Parcel, &Sender, &S) -> Vec<String>,
}

impl<W: Write, S: Clone> LabelWriter<W, S> {
    /// Writes the header row (none when `header` is empty: the rest of a file written in parts).
    pub(super) fn start(
        mut w: W,
        header: &[&str],
        sender: &Sender,
        settings: &S,
        row: fn(&Parcel, &Sender, &S) -> Vec<String>,
    ) -> io::Result<Self> {
        if !header.is_empty() {
            write_record(&mut w, header)?;
        }
        Ok(LabelWriter { w, sender: sender.clone(), settings: settings.clone(), row })
    }

    /// The sender and settings of the rows written next.
    pub fn set_sender(&mut self, sender: &Sender, settings: &S) {
        self.sender = sender.clone();
        self.settings = settings.clone();
    }

    pub fn write(&mut self, p: &Parcel) -> io::Result<()> {
        let row = (self.row)(p, &self.sender, &self.settings);
        let fields: Vec<&str> = row.iter().map(String::as_str).collect();
        write_record(&mut self.w, &fields)
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}

fn shown(c: char) -> String {
    if c.is_control()
        || c.is_whitespace()
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}')
    {
        format!("U+{:04X}", c as u32)
    } else {
        // With its code point: 𠮷 and 吉 look alike on a screen.
        format!("{c}（U+{:04X}）", c as u32)
    }
}

fn quote_chars(chars: &[char]) -> String {
    chars.iter().map(|&c| format!("「{}」", shown(c))).collect()
}

/// `parts` as lines of at most `width` bytes: each part starts a line, a long one wraps at a
/// character boundary, blank parts take no line.
pub fn pack_lines(parts: &[&str], width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for part in parts {
        let mut line = String::new();
        let mut len = 0;
        for c in part.trim().chars() {
            let w = jis::byte_len(c.encode_utf8(&mut [0; 4]));
            if len + w > width && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            line.push(c);
            len += w;
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

/// `YYYY/MM/DD`.
pub fn slashed(d: NaiveDate) -> String {
    d.format("%Y/%m/%d").to_string()
}

/// `123-4567` from `1234567` or `123-4567`; `None` for anything else.
pub fn normalize_zip(s: &str) -> Option<String> {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    let shape_ok = match s.len() {
        7 => true,
        8 => s.as_bytes()[3] == b'-',
        _ => false,
    };
    (shape_ok && digits.len() == 7 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{}-{}", &digits[..3], &digits[3..]))
}

/// A phone number as it should have been typed: full-width digits folded, dash look-alikes and
/// parentheses as hyphens, spaces dropped.
fn normalize_phone(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars().map(jis::fold_ascii) {
        match c {
            '0'..='9' => out.push(c),
            '-' | 'ー' | '－' | '‐' | '−' | '―' | '(' | ')' if !out.is_empty() && !out.ends_with('-') => {
                out.push('-')
            }
            _ => {}
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// Writes one CSV record in CP932 with CRLF, quoting the fields that hold `,` `"` CR or LF.
/// No formula guard as in `web::csv`: the carrier must get the value exactly as checked.
pub fn write_record<W: Write>(w: &mut W, fields: &[&str]) -> io::Result<()> {
    let mut line = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            line.push('"');
            line.push_str(&f.replace('"', "\"\""));
            line.push('"');
        } else {
            line.push_str(f);
        }
    }
    line.push_str("\r\n");
    w.write_all(&jis::encode(&line))
}

/// お客様管理番号: letters, digits, `-` and `_`.
pub fn key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

#[cfg(test)]
pub mod testing {
    //! Helpers the writers' tests share.

    use super::super::{Cool, Parcel, Party, Sender, TimeSlot};
    use chrono::NaiveDate;

    pub fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 11).unwrap()
    }

    pub fn sender() -> Sender {
        Sender {
            name: "オーダー商店".to_owned(),
            name_kana: "オーダーショウテン".to_owned(),
            phone: "03-1234-5678".to_owned(),
            zip: "1000014".to_owned(),
            address: "東京都千代田区永田町1-7-1".to_owned(),
            building: "永田町ビル3F".to_owned(),
        }
    }

    /// The golden set: a COD parcel, one with a delivery date and slot, one with an apartment
    /// line (holding a comma, to be quoted).
    pub fn parcels() -> Vec<Parcel> {
        let base = Parcel {
            management_no: "S0001".to_owned(),
            order_id: "store-10000001".to_owned(),
            service: "2".to_owned(),
            cool: Cool::Normal,
            ship_date: today(),
            delivery_date: None,
            delivery_time: None,
            to: Party {
                name: "山田 太郎".to_owned(),
                name_kana: "ヤマダ タロウ".to_owned(),
                phone: "090-1111-2222".to_owned(),
                zip: "5300001".to_owned(),
                prefecture: "大阪府".to_owned(),
                city: "大阪市北区".to_owned(),
                address1: "梅田1-1-1".to_owned(),
                address2: String::new(),
                company: String::new(),
            },
            item_name: "雑貨".to_owned(),
            handling: ["ワレモノ注意".to_owned(), String::new()],
            packages: 1,
            cod_amount: Some(5500),
            cod_tax: Some(500),
        };
        let second = Parcel {
            management_no: "S0002".to_owned(),
            order_id: "store-10000002".to_owned(),
            service: "0".to_owned(),
            cool: Cool::Chilled,
            delivery_date: Some(NaiveDate::from_ymd_opt(2026, 5, 13).unwrap()),
            delivery_time: Some(TimeSlot::H14_16),
            to: Party {
                name: "佐藤 花子".to_owned(),
                name_kana: "さとう はなこ".to_owned(),
                phone: "06-2222-3333".to_owned(),
                zip: "060-0001".to_owned(),
                prefecture: "北海道".to_owned(),
                city: "札幌市中央区".to_owned(),
                address1: "北1条西2-3".to_owned(),
                address2: String::new(),
                company: "株式会社サンプル".to_owned(),
            },
            item_name: "食品".to_owned(),
            handling: [String::new(), String::new()],
            cod_amount: None,
            cod_tax: None,
            ..base.clone()
        };
        let third = Parcel {
            management_no: "S0003".to_owned(),
            order_id: "store-10000003".to_owned(),
            service: "0".to_owned(),
            cool: Cool::Normal,
            to: Party {
                name: "鈴木 一郎".to_owned(),
                name_kana: "スズキ イチロウ".to_owned(),
                phone: "080-3333-4444".to_owned(),
                zip: "812-0011".to_owned(),
                prefecture: "福岡県".to_owned(),
                city: "福岡市博多区".to_owned(),
                address1: "博多駅前2-2-2".to_owned(),
                address2: "博多ハイツ101号,南棟".to_owned(),
                company: String::new(),
            },
            item_name: "衣類".to_owned(),
            handling: [String::new(), String::new()],
            packages: 1,
            cod_amount: None,
            cod_tax: None,
            ..base.clone()
        };
        vec![base, second, third]
    }

    /// The expected file: the lines joined with CRLF, in CP932.
    pub fn cp932(lines: &[String]) -> Vec<u8> {
        let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
        assert!(!unmappable);
        bytes.into_owned()
    }

    /// Every line's number of cells, read back with the tracking reader's CSV parser.
    pub fn cell_counts(file: &[u8]) -> Vec<usize> {
        let (text, _, bad) = encoding_rs::SHIFT_JIS.decode(file);
        assert!(!bad);
        super::super::tracking::parse_csv(&text, usize::MAX).unwrap().into_iter().map(|r| r.cells.len()).collect()
    }

    /// The problems' (management_no, field) pairs, for terse assertions.
    pub fn fields(problems: &[super::Problem]) -> Vec<(&str, &'static str)> {
        problems.iter().map(|p| (p.management_no.as_str(), p.field)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_is_normalised() {
        assert_eq!(normalize_zip("1234567").as_deref(), Some("123-4567"));
        assert_eq!(normalize_zip("123-4567").as_deref(), Some("123-4567"));
        assert_eq!(normalize_zip("12-34567"), None);
        assert_eq!(normalize_zip("123456"), None);
        let mut problems = Vec::new();
        Checker::new(&mut problems, "K", "O").zip("お届け先郵便番号", "〒１２３－４５６７");
        assert_eq!(problems[0].replacement.as_deref(), Some("123-4567"));
    }

    #[test]
    fn phone_is_digits_and_hyphens() {
        let mut problems = Vec::new();
        let mut c = Checker::new(&mut problems, "K", "O");
        c.phone("お届け先電話番号", "090-1234-5678", 15);
        c.phone("お届け先電話番号", "03(1234)5678", 15);
        c.phone("お届け先電話番号", "０９０ー１２３４ー５６７８", 15);
        c.phone("お届け先電話番号", "090-1234-5678-9999", 15);
        c.phone("お届け先電話番号", "", 15);
        let replacements: Vec<Option<&str>> = problems.iter().map(|p| p.replacement.as_deref()).collect();
        assert_eq!(replacements, [Some("03-1234-5678"), Some("090-1234-5678"), None, None]);
        assert!(problems[2].message.contains("長すぎます"));
        assert!(problems[3].message.contains("空です"));
    }

    #[test]
    fn text_names_the_characters_and_offers_a_replacement() {
        let mut problems = Vec::new();
        let mut c = Checker::new(&mut problems, "K", "O");
        c.text("お届け先名", "髙橋 𠮷男", 32, true);
        c.text("お届け先名", "田中😀", 32, true);
        c.text("お届け先名", "あいうえおかきくけこさしすせそたち", 32, true);
        c.text("お届け先名", " ", 32, true);
        assert_eq!(problems.len(), 4);
        assert!(problems[0].message.contains("「髙（U+9AD9）」「𠮷（U+20BB7）」"), "{}", problems[0].message);
        assert_eq!(problems[0].replacement.as_deref(), Some("高橋 吉男"));
        assert_eq!(problems[1].replacement, None);
        assert!(problems[2].message.contains("全角16文字"), "{}", problems[2].message);
        assert!(problems[3].message.contains("空です"));
    }

    #[test]
    fn lines_wrap_and_each_part_starts_a_line() {
        assert_eq!(
            pack_lines(&["東京都千代田区", "永田町一丁目七番一号", ""], 16),
            ["東京都千代田区", "永田町一丁目七番", "一号"]
        );
        let mut problems = Vec::new();
        let mut c = Checker::new(&mut problems, "K", "O");
        c.lines("お届け先住所１", &["東京都千代田区", "永田町1-7-1", "ビル"], 32, 3, true);
        c.lines("お届け先住所１", &["東京都千代田区", &"永".repeat(17), "ビル"], 32, 3, true);
        c.lines("お届け先住所１", &["", " "], 32, 3, true);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].message.contains("4行分"), "{}", problems[0].message);
        assert!(problems[1].message.contains("空です"));
    }

    #[test]
    fn records_are_quoted_when_needed() {
        let mut out = Vec::new();
        write_record(&mut out, &["a", "b,c", "say \"hi\"", "x\ny", ""]).unwrap();
        assert_eq!(out, b"a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\",\r\n");
    }
}
