//! Reading the carriers' issued-data files: which parcel got which tracking number
//! (shipping-day.md §1.2, §6.2).
//!
//! The file is UTF-8 (a BOM is fine) or, failing a strict UTF-8 decode, CP932 decoded strictly:
//! one malformed byte refuses the file rather than guessing. Columns are found **by header
//! name**, and the headers tell the carrier:
//! - B2クラウド 発行済データ: `お客様管理番号` + `伝票番号`;
//! - e飛伝Ⅲ: `お客様管理番号` + `お問い合せ送り状No.`;
//! - クリックポスト: `追跡番号` + `お届け先郵便番号`, `お届け先氏名` and `お届け先住所` (or its
//!   `1行目`–`4行目`). No management number comes back, so the caller matches by recipient.
//!
//! Only B2's header is confirmed by a real export's first columns; the e飛伝 and Click Post
//! headers come from public code and test fixtures (unverified). A whole-file fault is a
//! [`Refusal`]; a fault of one row is that row's `problem`, so the rest can still be used.

use std::collections::HashMap;

use super::{Carrier, jis};

/// Larger files are refused before reading (a day's issued data is far smaller).
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
/// More data rows than this are refused.
pub const MAX_ROWS: usize = 20_000;

/// Why a whole file cannot be read. The message says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("ファイルが空です。配送会社のサイトから発行済みデータを出力し直してください。")]
    Empty,
    #[error("ファイルが大きすぎます（10MBまで、今は{}MB）。期間を絞って出力し直してください。", .bytes.div_ceil(1024 * 1024))]
    TooLarge { bytes: usize },
    #[error(
        "Excelのファイルのようです。CSV形式で保存し直すか、配送会社のサイトから出力したCSVをそのままアップロードしてください。"
    )]
    Spreadsheet,
    #[error(
        "CSVではないファイルのようです（文字ではないデータが含まれています）。配送会社のサイトから出力したCSVをアップロードしてください。"
    )]
    Binary,
    #[error("ファイルの末尾で文字が途中で切れています。ダウンロードが完了しているか確かめ、出力し直してください。")]
    Truncated,
    #[error(
        "文字コードを読み取れませんでした（UTF-8でもShift_JISでもありません）。配送会社のサイトから出力したCSVをそのままアップロードしてください。"
    )]
    Encoding,
    #[error(
        "{line}行目の「\"」の対応が取れていません。ファイルを編集した場合は、配送会社のサイトから出力し直してください。"
    )]
    Quote { line: usize },
    #[error(
        "見出し行がわかりません。B2クラウドの発行済データ（お客様管理番号・伝票番号）、e飛伝Ⅲ（お客様管理番号・お問い合せ送り状No.）、クリックポスト（追跡番号）のCSVを、見出し行付きでアップロードしてください。"
    )]
    NoKnownHeader,
    #[error("{}のファイルに「{column}」の列がありません。見出し行付きで出力し直してください。", .carrier.label())]
    MissingColumn { carrier: Carrier, column: &'static str },
    #[error("見出し行のほかにデータの行がありません。発行済みの送り状を選んで出力し直してください。")]
    NoRows,
    #[error("行が多すぎます（20,000行まで）。期間を絞って出力し直してください。")]
    TooManyRows,
    #[error(
        "{line}行目の列の数（{found}）が見出し行（{expected}）と違います。ファイルを編集した場合は、配送会社のサイトから出力し直してください。"
    )]
    Ragged { line: usize, expected: usize, found: usize },
}

/// The encoding a file was read in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceEncoding {
    Utf8,
    ShiftJis,
}

/// What a row is matched by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    /// お客様管理番号: our shipment key, as written on the label (B2, e飛伝).
    ManagementNo(String),
    /// Click Post gives back only the recipient. `zip` is digits only; `address` is the lines
    /// joined without separators.
    Recipient { zip: String, name: String, address: String },
}

/// One data row with a tracking number, or with the reason it cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedRow {
    /// The file's line the row starts on (the header is line 1).
    pub line: usize,
    pub key: RowKey,
    /// Digits only (hyphens and spaces removed); as found when it is not a valid number.
    pub number: String,
    /// Why this row cannot be used, in Japanese; `None` when it can.
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedFile {
    pub carrier: Carrier,
    pub encoding: SourceEncoding,
    pub rows: Vec<IssuedRow>,
    /// Rows dropped because an earlier row had the same key and number.
    pub duplicates: usize,
}

/// Reads an issued-data file.
pub fn read(bytes: &[u8]) -> Result<IssuedFile, Refusal> {
    if bytes.len() > MAX_BYTES {
        return Err(Refusal::TooLarge { bytes: bytes.len() });
    }
    // xlsx is a zip; xls an OLE2 compound file.
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err(Refusal::Spreadsheet);
    }
    // DOS's end-of-file mark is harmless; other control bytes mean this is not text.
    let bytes = bytes.strip_suffix(b"\x1A").unwrap_or(bytes);
    if bytes.iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\r' | b'\n')) {
        return Err(Refusal::Binary);
    }
    let (text, encoding) = decode(bytes)?;
    if text.trim().is_empty() {
        return Err(Refusal::Empty);
    }
    let records = parse_csv(&text, MAX_ROWS + 1)?;
    let mut records = records.into_iter();
    let header = records.next().ok_or(Refusal::Empty)?;
    let layout = Layout::detect(&header.cells)?;
    let mut rows = Vec::new();
    for record in records {
        if record.cells.len() != header.cells.len() {
            return Err(Refusal::Ragged { line: record.line, expected: header.cells.len(), found: record.cells.len() });
        }
        rows.push(layout.row(&record));
    }
    if rows.is_empty() {
        return Err(Refusal::NoRows);
    }
    let (rows, duplicates) = dedupe(rows);
    Ok(IssuedFile { carrier: layout.carrier, encoding, rows, duplicates })
}

fn decode(bytes: &[u8]) -> Result<(String, SourceEncoding), Refusal> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        // A BOM says UTF-8: no falling back to Shift_JIS.
        return match std::str::from_utf8(rest) {
            Ok(text) => Ok((text.to_owned(), SourceEncoding::Utf8)),
            Err(e) if e.error_len().is_none() => Err(Refusal::Truncated),
            Err(_) => Err(Refusal::Encoding),
        };
    }
    let utf8_error = match std::str::from_utf8(bytes) {
        Ok(text) => return Ok((text.to_owned(), SourceEncoding::Utf8)),
        Err(e) => e,
    };
    let sjis = encoding_rs::SHIFT_JIS;
    if let Some(text) = sjis.decode_without_bom_handling_and_without_replacement(bytes) {
        // Japanese UTF-8 cut mid-character can still pass as Shift_JIS by chance: a valid
        // UTF-8 prefix holding non-ASCII text says which it really is.
        let prefix = &bytes[..utf8_error.valid_up_to()];
        if utf8_error.error_len().is_none() && !prefix.is_ascii() {
            return Err(Refusal::Truncated);
        }
        return Ok((text.into_owned(), SourceEncoding::ShiftJis));
    }
    if utf8_error.error_len().is_none() && !bytes[..utf8_error.valid_up_to()].is_ascii() {
        return Err(Refusal::Truncated);
    }
    // A Shift_JIS file whose last character lost its second byte.
    if let Some((_, head)) = bytes.split_last()
        && sjis.decode_without_bom_handling_and_without_replacement(head).is_some()
    {
        return Err(Refusal::Truncated);
    }
    Err(Refusal::Encoding)
}

/// One CSV record and the line it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub line: usize,
    pub cells: Vec<String>,
}

/// Parses CSV: `,` between cells; cells may be quoted, with `""` for a quote and line breaks
/// inside; records end with CRLF, LF or CR. Blank lines are skipped. More than `max_records`
/// records is [`Refusal::TooManyRows`].
pub(super) fn parse_csv(text: &str, max_records: usize) -> Result<Vec<Record>, Refusal> {
    let mut records = Vec::new();
    let mut chars = text.strip_prefix('\u{FEFF}').unwrap_or(text).chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(Refusal::Quote { line: start });
                }
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        cell.push(c);
                    }
                    '\r' => {
                        if chars.peek() != Some(&'\n') {
                            line += 1;
                        }
                        cell.push(c);
                    }
                    _ => cell.push(c),
                }
                continue;
            }
            match c {
                ',' => {
                    cells.push(std::mem::take(&mut cell));
                    was_quoted = false;
                }
                '"' if cell.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                // Text after a closing quote, or a quote inside a bare cell.
                '"' => return Err(Refusal::Quote { line: start }),
                _ if was_quoted && !matches!(c, '\r' | '\n') => return Err(Refusal::Quote { line: start }),
                '\r' | '\n' => {
                    if c == '\r' && chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line += 1;
                    break;
                }
                _ => cell.push(c),
            }
        }
        cells.push(cell);
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if records.len() == max_records {
            return Err(Refusal::TooManyRows);
        }
        records.push(Record { line: start, cells });
    }
    Ok(records)
}

/// Header names compared without spaces, full-width letters or a trailing full stop.
fn normalized(header: &str) -> String {
    let s: String = header.chars().map(jis::fold_ascii).filter(|c| !c.is_whitespace()).collect();
    s.trim_end_matches('.').to_owned()
}

const MANAGEMENT_NO: &str = "お客様管理番号";
const YAMATO_NUMBER: &str = "伝票番号";
/// e飛伝's number column, as public code spells it (with and without the full stop).
const SAGAWA_NUMBERS: [&str; 3] = ["お問い合せ送り状No", "お問合せ送り状No", "お問い合わせ送り状No"];
const POST_NUMBER: &str = "追跡番号";
const POST_ZIP: &str = "お届け先郵便番号";
const POST_NAME: &str = "お届け先氏名";
const POST_ADDRESS: &str = "お届け先住所";
const POST_LINES: [&str; 4] = ["お届け先住所1行目", "お届け先住所2行目", "お届け先住所3行目", "お届け先住所4行目"];

/// Where the columns are in this file.
struct Layout {
    carrier: Carrier,
    number: usize,
    key: KeyColumns,
}

enum KeyColumns {
    ManagementNo(usize),
    Recipient { zip: usize, name: usize, address: Vec<usize> },
}

impl Layout {
    fn detect(header: &[String]) -> Result<Layout, Refusal> {
        let names: Vec<String> = header.iter().map(|h| normalized(h)).collect();
        let find = |wanted: &str| names.iter().position(|n| n == wanted);
        let management = |carrier| {
            find(MANAGEMENT_NO)
                .map(KeyColumns::ManagementNo)
                .ok_or(Refusal::MissingColumn { carrier, column: MANAGEMENT_NO })
        };
        if let Some(number) = find(YAMATO_NUMBER) {
            return Ok(Layout { carrier: Carrier::Yamato, number, key: management(Carrier::Yamato)? });
        }
        if let Some(number) = SAGAWA_NUMBERS.iter().find_map(|n| find(n)) {
            return Ok(Layout { carrier: Carrier::Sagawa, number, key: management(Carrier::Sagawa)? });
        }
        if let Some(number) = find(POST_NUMBER) {
            let missing = |column| Refusal::MissingColumn { carrier: Carrier::JapanPost, column };
            let zip = find(POST_ZIP).ok_or(missing(POST_ZIP))?;
            let name = find(POST_NAME).ok_or(missing(POST_NAME))?;
            let address = match find(POST_ADDRESS) {
                Some(a) => vec![a],
                None => {
                    let lines: Vec<usize> = POST_LINES.iter().filter_map(|l| find(l)).collect();
                    if lines.is_empty() {
                        return Err(missing(POST_ADDRESS));
                    }
                    lines
                }
            };
            return Ok(Layout {
                carrier: Carrier::JapanPost,
                number,
                key: KeyColumns::Recipient { zip, name, address },
            });
        }
        Err(Refusal::NoKnownHeader)
    }

    fn row(&self, record: &Record) -> IssuedRow {
        let cell = |i: usize| record.cells[i].trim();
        let (key, key_problem) = match &self.key {
            KeyColumns::ManagementNo(i) => {
                let k = cell(*i).to_owned();
                let problem = k.is_empty().then(|| "お客様管理番号が空です。この行は取り込めません。".to_owned());
                (RowKey::ManagementNo(k), problem)
            }
            KeyColumns::Recipient { zip, name, address } => {
                let key = RowKey::Recipient {
                    zip: cell(*zip).chars().map(jis::fold_ascii).filter(char::is_ascii_digit).collect(),
                    name: cell(*name).to_owned(),
                    address: address.iter().map(|&i| cell(i)).collect(),
                };
                let problem = matches!(&key, RowKey::Recipient { name, .. } if name.is_empty())
                    .then(|| "お届け先氏名が空です。この行は取り込めません。".to_owned());
                (key, problem)
            }
        };
        let raw = cell(self.number);
        let (number, number_problem) = number(self.carrier, raw);
        IssuedRow { line: record.line, key, number, problem: key_problem.or(number_problem) }
    }
}

/// A number typed by hand, read as the files' numbers are: digits only, or why it cannot be
/// used (length, check digit).
pub fn parse_number(carrier: Carrier, raw: &str) -> Result<String, String> {
    let (digits, problem) = number(carrier, raw.trim());
    problem.map_or(Ok(digits), Err)
}

/// The number with hyphens and spaces removed, and why it cannot be used, if it cannot.
fn number(carrier: Carrier, raw: &str) -> (String, Option<String>) {
    let digits: String = raw.chars().map(jis::fold_ascii).filter(|c| !matches!(c, '-' | ' ')).collect();
    let what = number_name(carrier);
    if digits.is_empty() {
        return (digits, Some(format!("{what}が空です。送り状を印刷（発行）してから出力し直してください。")));
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return (
            raw.to_owned(),
            Some(format!(
                "{what}「{raw}」は数字ではありません。まだ発行されていない送り状かもしれません。印刷してから出力し直してください。"
            )),
        );
    }
    let lengths = number_lengths(carrier);
    if !lengths.contains(&digits.len()) {
        let expected = if lengths.start() == lengths.end() {
            format!("{}桁", lengths.start())
        } else {
            format!("{}〜{}桁", lengths.start(), lengths.end())
        };
        return (
            digits.clone(),
            Some(format!(
                "{what}「{raw}」の桁数が違います（{expected}、今は{}桁）。番号を確かめてください。",
                digits.len()
            )),
        );
    }
    if !check_7dr(&digits) {
        return (
            digits,
            Some(format!("{what}「{raw}」のチェックディジット（最後の1桁）が合いません。番号を確かめてください。")),
        );
    }
    (digits, None)
}

fn number_name(carrier: Carrier) -> &'static str {
    match carrier {
        Carrier::Yamato => "伝票番号",
        Carrier::Sagawa => "お問い合せ送り状No.",
        Carrier::JapanPost => "追跡番号",
    }
}

/// Yamato and Sagawa numbers are 12 digits; Japan Post's 11–13 is our **unverified** allowance
/// (Click Post and ゆうパック numbers seen are 12).
fn number_lengths(carrier: Carrier) -> std::ops::RangeInclusive<usize> {
    match carrier {
        Carrier::Yamato | Carrier::Sagawa => 12..=12,
        Carrier::JapanPost => 11..=13,
    }
}

/// The "7DR" check digit Yamato, Sagawa and Japan Post use (§1.2): the number without its last
/// digit, modulo 7, equals the last digit. Hyphens are ignored; anything else non-digit fails.
pub fn check_7dr(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter(|&c| c != '-').map(|c| c.to_digit(10).unwrap_or(u32::MAX)).collect();
    let Some((&last, body)) = digits.split_last() else {
        return false;
    };
    if body.is_empty() || digits.iter().any(|&d| d > 9) {
        return false;
    }
    body.iter().fold(0, |rem, &d| (rem * 10 + d) % 7) == last
}

/// Drops rows repeating an earlier row's key and number; marks every row of a key that comes
/// with different numbers, since which one is right cannot be told from the file.
fn dedupe(rows: Vec<IssuedRow>) -> (Vec<IssuedRow>, usize) {
    let mut kept: Vec<IssuedRow> = Vec::with_capacity(rows.len());
    let mut seen: HashMap<(RowKey, String), ()> = HashMap::new();
    let mut duplicates = 0;
    for row in rows {
        if seen.insert((row.key.clone(), row.number.clone()), ()).is_some() {
            duplicates += 1;
        } else {
            kept.push(row);
        }
    }
    let mut by_key: HashMap<&RowKey, Vec<usize>> = HashMap::new();
    for (i, row) in kept.iter().enumerate() {
        if !is_blank(&row.key) {
            by_key.entry(&row.key).or_default().push(i);
        }
    }
    let mut conflicts: Vec<(usize, String)> = Vec::new();
    for indexes in by_key.values().filter(|v| v.len() > 1) {
        let lines: Vec<String> = indexes.iter().map(|&i| format!("{}行目", kept[i].line)).collect();
        let what = match &kept[indexes[0]].key {
            RowKey::ManagementNo(k) => format!("お客様管理番号「{k}」"),
            RowKey::Recipient { name, .. } => format!("お届け先「{name}」"),
        };
        let message = format!(
            "{what}に違う番号が複数あります（{}）。どれが正しいか確かめて、1件だけ登録してください。",
            lines.join("、")
        );
        conflicts.extend(indexes.iter().map(|&i| (i, message.clone())));
    }
    for (i, message) in conflicts {
        kept[i].problem.get_or_insert(message);
    }
    (kept, duplicates)
}

fn is_blank(key: &RowKey) -> bool {
    match key {
        RowKey::ManagementNo(k) => k.is_empty(),
        RowKey::Recipient { name, .. } => name.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sjis(text: &str) -> Vec<u8> {
        let (bytes, _, bad) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!bad);
        bytes.into_owned()
    }

    const B2: &str = "お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日\r\n\
        \"DC20260807-000001-O\",0,0,490714955706,2026/08/05\r\n\
        S0002,0,0,4000-0000-0002,2026/08/05\r\n";

    #[test]
    fn b2_in_cp932() {
        let file = read(&sjis(B2)).unwrap();
        assert_eq!(file.carrier, Carrier::Yamato);
        assert_eq!(file.encoding, SourceEncoding::ShiftJis);
        assert_eq!(
            file.rows,
            vec![
                IssuedRow {
                    line: 2,
                    key: RowKey::ManagementNo("DC20260807-000001-O".to_owned()),
                    number: "490714955706".to_owned(),
                    problem: None
                },
                IssuedRow {
                    line: 3,
                    key: RowKey::ManagementNo("S0002".to_owned()),
                    number: "400000000002".to_owned(),
                    problem: None
                },
            ]
        );
    }

    #[test]
    fn b2_in_utf8_with_and_without_bom() {
        let plain = read(B2.as_bytes()).unwrap();
        assert_eq!(plain.encoding, SourceEncoding::Utf8);
        let mut with_bom = b"\xEF\xBB\xBF".to_vec();
        with_bom.extend_from_slice(B2.replace("\r\n", "\n").as_bytes());
        let bom = read(&with_bom).unwrap();
        assert_eq!(bom.encoding, SourceEncoding::Utf8);
        assert_eq!(bom.rows, plain.rows);
    }

    #[test]
    fn ehiden_by_header_name() {
        let text = "お届け先電話番号,お客様管理番号,お問い合せ送り状No.\r\n03-1111-2222,S0001,1234-5678-9013\r\n";
        let file = read(&sjis(text)).unwrap();
        assert_eq!(file.carrier, Carrier::Sagawa);
        assert_eq!(file.rows[0].key, RowKey::ManagementNo("S0001".to_owned()));
        assert_eq!(file.rows[0].number, "123456789013");
        assert_eq!(file.rows[0].problem, None);
    }

    #[test]
    fn click_post_by_recipient() {
        let text = "追跡番号,お届け先郵便番号,お届け先氏名,お届け先敬称,お届け先住所,内容品\n\
            987654321091,100-0014,山田 太郎,様,東京都千代田区永田町1-7-1,雑貨\n";
        let file = read(text.as_bytes()).unwrap();
        assert_eq!(file.carrier, Carrier::JapanPost);
        assert_eq!(
            file.rows[0].key,
            RowKey::Recipient {
                zip: "1000014".to_owned(),
                name: "山田 太郎".to_owned(),
                address: "東京都千代田区永田町1-7-1".to_owned()
            }
        );
        assert_eq!(file.rows[0].problem, None);
        let lines = "追跡番号,お届け先郵便番号,お届け先氏名,お届け先住所1行目,お届け先住所2行目\n\
            987654321091,1000014,山田 太郎,東京都千代田区,永田町1-7-1\n";
        let file = read(lines.as_bytes()).unwrap();
        assert!(
            matches!(&file.rows[0].key, RowKey::Recipient { address, .. } if address == "東京都千代田区永田町1-7-1")
        );
        let missing = "追跡番号,お届け先郵便番号,お届け先氏名\n987654321091,1000014,山田\n";
        assert_eq!(
            read(missing.as_bytes()),
            Err(Refusal::MissingColumn { carrier: Carrier::JapanPost, column: "お届け先住所" })
        );
    }

    #[test]
    fn check_digit() {
        assert!(check_7dr("490714955706"));
        assert!(check_7dr("4907-1495-5706"));
        assert!(!check_7dr("490714955707"));
        assert!(!check_7dr("49071495570x"));
        assert!(!check_7dr("7"));
        assert!(!check_7dr(""));
        let file = read("お客様管理番号,伝票番号\nS1,490714955707\n".as_bytes()).unwrap();
        assert!(file.rows[0].problem.as_deref().unwrap().contains("チェックディジット"));
    }

    #[test]
    fn unissued_and_malformed_numbers_are_row_problems() {
        let text = "お客様管理番号,伝票番号\nS1,\nS2,UMN000123\nS3,12345678903\n,490714955706\nS5,490714955706\n";
        let file = read(text.as_bytes()).unwrap();
        let problems: Vec<Option<&str>> = file.rows.iter().map(|r| r.problem.as_deref()).collect();
        assert!(problems[0].unwrap().contains("空です"));
        assert!(problems[1].unwrap().contains("数字ではありません"));
        assert!(problems[2].unwrap().contains("桁数"));
        assert!(problems[3].unwrap().contains("お客様管理番号が空"));
        assert_eq!(problems[4], None);
        assert_eq!(file.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 4, 5, 6]);
    }

    #[test]
    fn unknown_header_is_refused() {
        assert_eq!(read("注文番号,金額\n1,2\n".as_bytes()), Err(Refusal::NoKnownHeader));
        assert_eq!(
            read("送り状種類,伝票番号\n0,490714955706\n".as_bytes()),
            Err(Refusal::MissingColumn { carrier: Carrier::Yamato, column: "お客様管理番号" })
        );
    }

    #[test]
    fn binary_and_spreadsheets_are_refused() {
        assert_eq!(read(b"\x00\x01\x02\x03garbage"), Err(Refusal::Binary));
        assert_eq!(read(b"PK\x03\x04\x14\x00"), Err(Refusal::Spreadsheet));
        assert_eq!(read(b""), Err(Refusal::Empty));
        assert_eq!(read(b"\r\n\r\n"), Err(Refusal::Empty));
        assert_eq!(read("お客様管理番号,伝票番号\r\n".as_bytes()), Err(Refusal::NoRows));
    }

    #[test]
    fn truncated_multibyte_is_refused() {
        let mut cp932 = sjis(B2.trim_end());
        cp932.extend_from_slice(&sjis("ア")[..1]);
        assert_eq!(read(&cp932), Err(Refusal::Truncated));
        let utf8 = &B2.as_bytes()[..B2.len() - 1];
        let cut = "お客様管理番号,伝票番号\nS1,490714955706\nア".as_bytes();
        assert_eq!(read(&cut[..cut.len() - 1]), Err(Refusal::Truncated));
        assert!(read(utf8).is_ok(), "a missing final newline is fine");
        // Neither encoding: 0xFF is not a Shift_JIS byte.
        assert_eq!(read(b"\xFF\xFE,a\n"), Err(Refusal::Encoding));
    }

    #[test]
    fn ragged_row_is_refused_with_its_line() {
        let text = "お客様管理番号,伝票番号\nS1,490714955706\n\"S2\nwith a break\",1,2\n";
        assert_eq!(read(text.as_bytes()), Err(Refusal::Ragged { line: 3, expected: 2, found: 3 }));
        let message = Refusal::Ragged { line: 3, expected: 2, found: 3 }.to_string();
        assert!(message.starts_with("3行目"), "{message}");
    }

    #[test]
    fn duplicate_rows_are_kept_once_and_conflicts_marked() {
        let text = "お客様管理番号,伝票番号\n\
            S1,490714955706\n\
            S1,4907-1495-5706\n\
            S2,400000000002\n\
            S2,123456789013\n";
        let file = read(text.as_bytes()).unwrap();
        assert_eq!(file.duplicates, 1);
        assert_eq!(file.rows.len(), 3);
        assert_eq!(file.rows[0].problem, None);
        let conflict = file.rows[1].problem.as_deref().unwrap();
        assert!(conflict.contains("4行目、5行目"), "{conflict}");
        assert_eq!(file.rows[2].problem.as_deref(), Some(conflict));
    }

    #[test]
    fn too_many_rows_and_too_large() {
        let mut text = String::from("お客様管理番号,伝票番号\n");
        for i in 0..=MAX_ROWS {
            text.push_str(&format!("S{i},490714955706\n"));
        }
        assert_eq!(read(text.as_bytes()), Err(Refusal::TooManyRows));
        let exactly: String = text.lines().take(MAX_ROWS + 1).map(|l| format!("{l}\n")).collect();
        assert_eq!(read(exactly.as_bytes()).unwrap().rows.len(), MAX_ROWS);
        assert!(matches!(read(&vec![b'a'; MAX_BYTES + 1]), Err(Refusal::TooLarge { .. })));
    }

    #[test]
    fn csv_quotes_and_line_endings() {
        let records = parse_csv("a,\"b,\"\"c\"\"\",\"d\r\ne\"\r\n\r\nf,,g\rh\n", usize::MAX).unwrap();
        let cells: Vec<(usize, Vec<&str>)> =
            records.iter().map(|r| (r.line, r.cells.iter().map(String::as_str).collect())).collect();
        assert_eq!(cells, [(1, vec!["a", "b,\"c\"", "d\r\ne"]), (4, vec!["f", "", "g"]), (5, vec!["h"])]);
        assert_eq!(parse_csv("a,\"b\nc", 10), Err(Refusal::Quote { line: 1 }));
        assert_eq!(parse_csv("x\na,\"b\"c\n", 10), Err(Refusal::Quote { line: 2 }));
    }
}
