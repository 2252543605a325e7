//! CSV files for people who open them in Excel: UTF-8 with a BOM, or Shift_JIS (Windows-31J,
//! which is what Excel in Japan reads and what encoding_rs calls Shift_JIS). A character that
//! Shift_JIS cannot hold (𠮷, emoji, …) becomes 〓, the geta mark Japanese systems use for it,
//! so the loss is visible instead of silent.
//!
//! The order export is streamed: it reads the filtered list a thousand lines at a time by
//! keyset, encodes each chunk and hands it to the response, so a large export holds one chunk
//! in memory, not the whole file.

use axum::body::Bytes;
use futures_util::stream::{self, Stream};

use crate::{
    db::{
        Db,
        order_list::{self, Cursor, Filter, Line},
    },
    domain::{order::OrderStatus, scope::OrderScope},
    web::render::jst,
};

/// Lines read from the database per chunk of the export.
pub const CHUNK: i64 = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8Bom,
    ShiftJis,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Utf8Bom => "text/csv; charset=utf-8",
            Encoding::ShiftJis => "text/csv; charset=shift_jis",
        }
    }

    /// What the file starts with.
    fn preamble(self) -> &'static [u8] {
        match self {
            Encoding::Utf8Bom => b"\xEF\xBB\xBF",
            Encoding::ShiftJis => b"",
        }
    }

    /// Encodes text; in Shift_JIS, every character it cannot hold becomes 〓.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8Bom => text.as_bytes().to_vec(),
            Encoding::ShiftJis => {
                let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
                let mut out = Vec::with_capacity(text.len() + 16);
                let mut rest = text;
                loop {
                    let needed = encoder
                        .max_buffer_length_from_utf8_without_replacement(rest.len())
                        .unwrap_or(rest.len() * 2 + 16);
                    out.reserve(needed);
                    let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
                    rest = &rest[read..];
                    match result {
                        encoding_rs::EncoderResult::InputEmpty => break,
                        encoding_rs::EncoderResult::OutputFull => continue,
                        encoding_rs::EncoderResult::Unmappable(_) => out.extend_from_slice(GETA_SJIS),
                    }
                }
                out
            }
        }
    }
}

/// 〓 in Shift_JIS.
const GETA_SJIS: &[u8] = b"\x81\xAC";

/// One CSV field: quoted when it holds a comma, quote or line break, and with a leading `'`
/// when it starts like a formula (=, +, -, @), so a buyer's name cannot run in Excel.
pub fn field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if formula { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&value);
    }
}

/// Writes one record (fields separated by commas, CRLF at the end, as Excel expects).
pub fn record<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

pub const ORDER_HEADER: [&str; 25] = [
    "注文ID",
    "ストア",
    "注文日時",
    "公開日時",
    "ステータス",
    "Yahoo!注文ステータス",
    "不正保留",
    "入金ステータス",
    "支払方法",
    "出荷ステータス",
    "配送方法",
    "配送伝票番号",
    "合計金額",
    "注文者氏名",
    "注文者カナ",
    "注文者電話番号",
    "注文者メールアドレス",
    "注文者郵便番号",
    "注文者住所",
    "お届け先氏名",
    "お届け先郵便番号",
    "お届け先住所",
    "お届け先電話番号",
    "社内メモ",
    "タグ",
];

fn code_label(v: Option<i64>, labels: &[&str]) -> String {
    match v {
        Some(c) => {
            usize::try_from(c).ok().and_then(|i| labels.get(i)).map_or_else(|| c.to_string(), |l| (*l).to_owned())
        }
        None => String::new(),
    }
}

/// The export's record of one list line (already masked by the scope), with its tags' names.
pub fn order_record(out: &mut String, l: &Line, tags: &[crate::db::tags::Tag]) {
    let yahoo = u8::try_from(l.order_status).ok().and_then(OrderStatus::from_code).map_or("", OrderStatus::label);
    let fields = [
        l.order_id.clone(),
        l.store_name.clone(),
        jst(l.order_time),
        l.publication_time.map(jst).unwrap_or_default(),
        l.internal_status().label().to_owned(),
        yahoo.to_owned(),
        l.fraud_hold().badge().unwrap_or("").to_owned(),
        code_label(l.pay_status, &["未入金", "入金済"]),
        l.pay_method_name.clone(),
        code_label(l.ship_status, &["出荷不可", "出荷可", "出荷処理中", "出荷済み", "着荷済み"]),
        l.ship_method_name.clone(),
        l.ship_invoice_number1.clone(),
        l.total_price.to_string(),
        format!("{} {}", l.bill_last_name, l.bill_first_name).trim().to_owned(),
        format!("{} {}", l.bill_last_name_kana, l.bill_first_name_kana).trim().to_owned(),
        l.bill_phone.clone(),
        l.bill_mail.clone(),
        l.bill_zip_code.clone(),
        format!("{}{}{}{}", l.bill_prefecture, l.bill_city, l.bill_address1, l.bill_address2),
        format!("{} {}", l.ship_last_name, l.ship_first_name).trim().to_owned(),
        l.ship_zip_code.clone(),
        format!("{}{}{}{}", l.ship_prefecture, l.ship_city, l.ship_address1, l.ship_address2),
        l.ship_phone.clone(),
        l.note.clone(),
        tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(" "),
    ];
    record(out, fields.iter().map(String::as_str));
}

/// What one row of the order export is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One row per order, with its buyer and recipient.
    Orders,
    /// One row per item line (商品明細): the order's ID, store, time and status, and the line's
    /// code, title, options and quantity. No personal data.
    Items,
}

/// The item-level export's columns.
pub const ITEM_HEADER: [&str; 11] = [
    "注文ID",
    "ストア",
    "注文日時",
    "ステータス",
    "商品コード",
    "サブコード",
    "商品名",
    "オプション",
    "数量",
    "単価",
    "小計",
];

fn item_records(out: &mut String, l: &Line, items: &[crate::domain::order::OrderItem]) {
    for i in items {
        let options: Vec<String> = i.options.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        let fields = [
            l.order_id.clone(),
            l.store_name.clone(),
            jst(l.order_time),
            l.internal_status().label().to_owned(),
            i.item_id.clone(),
            i.sub_code.clone(),
            i.title.clone(),
            options.join(" / "),
            i.quantity.to_string(),
            i.unit_price.to_string(),
            (i.unit_price * i.quantity).to_string(),
        ];
        record(out, fields.iter().map(String::as_str));
    }
}

enum Step {
    Header,
    After(Option<Cursor>),
    Done,
}

/// The export of the filtered list as a stream of encoded chunks. A database error ends the
/// stream with an error, which aborts the download (the browser shows it failed) rather than
/// handing over a file that silently stops half-way.
pub fn order_stream(
    db: Db,
    scope: OrderScope,
    filter: Filter,
    encoding: Encoding,
    shape: Shape,
) -> impl Stream<Item = Result<Bytes, sqlx::Error>> + Send + 'static {
    stream::try_unfold(Step::Header, move |step| {
        let (db, scope, filter) = (db.clone(), scope.clone(), filter.clone());
        async move {
            match step {
                Step::Header => {
                    let mut text = String::new();
                    match shape {
                        Shape::Orders => record(&mut text, ORDER_HEADER),
                        Shape::Items => record(&mut text, ITEM_HEADER),
                    }
                    let mut bytes = encoding.preamble().to_vec();
                    bytes.extend(encoding.encode(&text));
                    Ok(Some((Bytes::from(bytes), Step::After(None))))
                }
                Step::After(cursor) => {
                    let lines: Vec<order_list::Line> = order_list::page(&db, &scope, &filter, cursor, CHUNK).await?;
                    if lines.is_empty() {
                        return Ok(None);
                    }
                    let pks: Vec<_> = lines.iter().map(|l| l.id).collect();
                    let mut text = String::with_capacity(lines.len() * 256);
                    match shape {
                        Shape::Orders => {
                            let tags = crate::db::tags::of_orders(&db, scope.account, &pks).await?;
                            for l in &lines {
                                order_record(&mut text, l, tags.get(&l.id).map_or(&[], Vec::as_slice));
                            }
                        }
                        Shape::Items => {
                            let items = crate::db::orders::items_of(&db, &pks).await?;
                            for l in &lines {
                                item_records(&mut text, l, items.get(&l.id).map_or(&[], Vec::as_slice));
                            }
                        }
                    }
                    let next = if (lines.len() as i64) < CHUNK {
                        Step::Done
                    } else {
                        Step::After(lines.last().map(|l| l.cursor(filter.sort)))
                    };
                    Ok(Some((Bytes::from(encoding.encode(&text)), next)))
                }
                Step::Done => Ok(None),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_jis_replaces_what_it_cannot_hold_visibly() {
        let bytes = Encoding::ShiftJis.encode("山田𠮷子😀,ｱ");
        let (decoded, _, had_errors) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert!(!had_errors);
        assert_eq!(decoded, "山田〓子〓,ｱ");
        // Characters Windows-31J adds (① ㈱ ～) survive.
        let bytes = Encoding::ShiftJis.encode("①㈱～");
        let (round, _, _) = encoding_rs::SHIFT_JIS.decode(&bytes);
        assert_eq!(round, "①㈱～");
    }

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        record(&mut out, ["a,b", "say \"hi\"", "=1+2", "line\nbreak", "plain"]);
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",'=1+2,\"line\nbreak\",plain\r\n");
    }

    #[test]
    fn utf8_starts_with_a_bom() {
        assert_eq!(Encoding::Utf8Bom.preamble(), b"\xEF\xBB\xBF");
        assert_eq!(Encoding::Utf8Bom.encode("日本"), "日本".as_bytes());
    }
}
