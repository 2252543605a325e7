//! Stock (在庫, product.md §8): item codes as Yahoo writes them, what a person types into the
//! stock form or a CSV file, and how pending pushes collapse. Pure: no database, no clock.

use unicode_normalization::UnicodeNormalization;

/// Codes per setStock call (yahoo-store-api.md §5).
pub const CODES_PER_CALL: usize = 1000;
/// The largest quantity the form and CSV accept.
pub const MAX_QUANTITY: i64 = 999_999;

/// Yahoo's item code, optionally with a sub-code: `item` or `item:subcode`. Letters, digits,
/// `-` and `_` (after NFKC, which the form reader applies), at most 99 characters a part.
pub fn parse_code(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("商品コードを入力してください".into());
    }
    let mut parts = s.split(':');
    let item = parts.next().unwrap_or_default();
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(format!(
            "商品コード「{s}」に「:」が2つ以上あります（商品コード:サブコード の形で入力してください）"
        ));
    }
    let valid = |p: &str| {
        !p.is_empty() && p.len() <= 99 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !valid(item) || sub.is_some_and(|p| !valid(p)) {
        return Err(format!("商品コード「{s}」には半角英数字と「-」「_」だけが使えます"));
    }
    Ok(s.to_owned())
}

/// A quantity as typed: a whole number from 0 to [`MAX_QUANTITY`].
pub fn parse_quantity(input: &str) -> Result<i64, String> {
    let s = input.trim().replace(',', "");
    match s.parse::<i64>() {
        Ok(n) if (0..=MAX_QUANTITY).contains(&n) => Ok(n),
        Ok(_) => Err(format!("在庫数「{}」は0から{MAX_QUANTITY}までの整数で入力してください", input.trim())),
        Err(_) => Err(format!("在庫数「{}」は数字で入力してください", input.trim())),
    }
}

/// One good line of an uploaded stock CSV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvLine {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub code: String,
    pub quantity: i64,
}

/// A line that could not be read, with why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvError {
    pub line: usize,
    pub message: String,
}

/// Reads a stock CSV (`商品コード,在庫数`, optionally with a header line), already decoded to
/// text. Bad lines are reported one by one and left out; a code given twice is an error on the
/// second line (the merchant must say which quantity is meant).
pub fn parse_csv(text: &str) -> (Vec<CsvLine>, Vec<CsvError>) {
    let (good, bad) = code_csv(text, "在庫数", parse_quantity);
    (good.into_iter().map(|(line, code, quantity)| CsvLine { line, code, quantity }).collect(), bad)
}

/// The one reader of `商品コード,<second>` files (stock quantities, 棚番): a header line is
/// skipped, both cells go through the forms' NFKC, the code through [`parse_code`] and the
/// second through `parse`; a bad line or a code given twice (on its second line: the merchant
/// must say which value is meant) is reported with its line number and left out.
fn code_csv<T>(
    text: &str,
    second: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> (Vec<(usize, String, T)>, Vec<CsvError>) {
    let mut good: Vec<(usize, String, T)> = Vec::new();
    let mut bad = Vec::new();
    for (i, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let line = i + 1;
        let raw = raw.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        let cells: Vec<String> = split_cells(raw);
        if line == 1 && cells.first().is_some_and(|c| c.contains("商品コード") || c.eq_ignore_ascii_case("code")) {
            continue;
        }
        if cells.len() < 2 {
            bad.push(CsvError { line, message: format!("「商品コード,{second}」の2列が必要です") });
            continue;
        }
        // The same NFKC as every form (web::input): full-width ｐｏｔ and ５ mean pot and 5.
        let code: String = cells[0].nfkc().collect();
        let value: String = cells[1].nfkc().collect();
        match (parse_code(&code), parse(&value)) {
            (Ok(code), Ok(value)) => {
                if let Some((first, ..)) = good.iter().find(|(_, c, _)| *c == code) {
                    bad.push(CsvError {
                        line, message: format!("商品コード「{code}」は{first}行目にもあります")
                    });
                } else {
                    good.push((line, code, value));
                }
            }
            (Err(e), _) | (_, Err(e)) => bad.push(CsvError { line, message: e }),
        }
    }
    (good, bad)
}

/// The longest 棚番 (location) accepted.
pub const MAX_LOCATION: usize = 30;

/// A 棚番 as typed: trimmed, at most [`MAX_LOCATION`] characters, no control characters. Empty
/// means "no location".
pub fn parse_location(input: &str) -> Result<String, String> {
    let s = input.trim();
    if s.chars().count() > MAX_LOCATION {
        return Err(format!("棚番「{s}」は{MAX_LOCATION}文字までです"));
    }
    if s.chars().any(char::is_control) {
        return Err("棚番に改行や制御文字は使えません".into());
    }
    Ok(s.to_owned())
}

/// Reads a 棚番 CSV (`商品コード,棚番`, optionally with a header line): good lines as
/// (code, location) and the bad ones with why. An empty 棚番 clears the code's.
pub fn parse_location_csv(text: &str) -> (Vec<(String, String)>, Vec<CsvError>) {
    let (good, bad) = code_csv(text, "棚番", parse_location);
    (good.into_iter().map(|(_, code, location)| (code, location)).collect(), bad)
}

/// Splits one CSV record (double-quoted cells with "" for a quote).
fn split_cells(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    cells.push(cell);
    cells
}

/// What a manual edit does when an order changed the quantity after the person read it: the
/// order's change wins, and the edit is applied as the difference the person meant.
pub fn merge_manual_edit(seen: i64, typed: i64, current: i64) -> i64 {
    (current + (typed - seen)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_csv() {
        let (good, bad) =
            parse_location_csv("商品コード,棚番\ntowel,A-01\n\"cup:cup-w\",B-2\nsoap,\nbad code,C\ntowel,D\n");
        assert_eq!(
            good,
            vec![("towel".into(), "A-01".into()), ("cup:cup-w".into(), "B-2".into()), ("soap".into(), String::new())]
        );
        assert_eq!(bad.iter().map(|e| e.line).collect::<Vec<_>>(), vec![5, 6]);
        assert!(bad[1].message.contains("2行目"));
        assert!(parse_location(&"棚".repeat(31)).is_err());
        assert_eq!(parse_location(" Ａ-1 ").unwrap(), "Ａ-1");
    }

    #[test]
    fn codes_as_yahoo_writes_them() {
        assert_eq!(parse_code(" tshirt-01:red_L "), Ok("tshirt-01:red_L".into()));
        assert!(parse_code("").is_err());
        assert!(parse_code("a:b:c").unwrap_err().contains("2つ以上"));
        assert!(parse_code("商品").unwrap_err().contains("半角英数字"));
        assert!(parse_code("item:").is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("1,200"), Ok(1200));
        assert!(parse_quantity("-1").unwrap_err().contains("0から"));
        assert!(parse_quantity("たくさん").unwrap_err().contains("数字"));
    }

    #[test]
    fn csv_reports_each_bad_line_and_keeps_the_good_ones() {
        let text = "\u{feff}商品コード,在庫数\r\nflower,10\r\n\"vase:blue\",\"1,200\"\r\nflower,3\r\n花,1\r\nonly-one\r\n\r\nbowl,-2\r\nｐｏｔ,５\r\n";
        let (good, bad) = parse_csv(text);
        assert_eq!(
            good,
            vec![
                CsvLine { line: 2, code: "flower".into(), quantity: 10 },
                CsvLine { line: 3, code: "vase:blue".into(), quantity: 1200 },
                CsvLine { line: 9, code: "pot".into(), quantity: 5 },
            ]
        );
        let lines: Vec<usize> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 8]);
        assert!(bad[0].message.contains("2行目にも"));
    }

    #[test]
    fn an_order_wins_over_an_older_manual_edit() {
        // Read 10, typed 15 (+5); meanwhile an order took 2 (now 8): the result is 13.
        assert_eq!(merge_manual_edit(10, 15, 8), 13);
        assert_eq!(merge_manual_edit(10, 15, 10), 15);
        assert_eq!(merge_manual_edit(5, 0, 3), 0);
    }
}
