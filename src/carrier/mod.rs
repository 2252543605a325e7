//! Carrier label files (送り状データ) and carriers' issued-data files (shipping-day.md §1, §6.1–6.3).
//!
//! Pure: plain functions over plain data, with no database, HTTP or clock (callers pass `today`).
//! - [`b2`] ヤマト B2クラウド, [`ehiden`] 佐川 e飛伝Ⅲ and [`clickpost`] クリックポスト: each has a
//!   `check` that lists every problem of every parcel without writing anything, and a writer that
//!   assumes `check` found nothing. Nothing is ever cut short to fit: a value that is too long or
//!   holds a character the carrier cannot print is a [`Problem`] for the merchant to fix.
//! - [`jis`]: which characters a carrier can print (JIS X 0208 levels 1–2, ASCII, half-width
//!   katakana), replacements for the usual offenders, byte lengths, CP932 encoding.
//! - [`tracking`] reads the carriers' issued-data files back (tracking numbers by header name).
//! - [`url`]: the tracking URL and Yahoo's ShipCompanyCode per carrier.

pub mod b2;
pub mod clickpost;
pub mod ehiden;
pub mod jis;
mod rules;
pub mod tracking;
pub mod url;

use chrono::NaiveDate;

pub use b2::{B2Settings, B2Writer};
pub use clickpost::ClickPostSettings;
pub use ehiden::{DateFormat, EhidenSettings, EhidenWriter};
pub use tracking::{IssuedFile, IssuedRow, Refusal, RowKey, SourceEncoding, check_7dr};
pub use url::{JAPAN_POST_SHIP_COMPANY_CODE, tracking_url, yahoo_ship_company_code};

/// A carrier we write labels for and read tracking numbers from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carrier {
    Yamato,
    Sagawa,
    JapanPost,
}

impl Carrier {
    pub const ALL: [Carrier; 3] = [Carrier::Yamato, Carrier::Sagawa, Carrier::JapanPost];

    pub fn label(&self) -> &'static str {
        match self {
            Carrier::Yamato => "ヤマト運輸",
            Carrier::Sagawa => "佐川急便",
            Carrier::JapanPost => "日本郵便",
        }
    }

    /// The stable name stored in the database and used in forms.
    pub fn as_str(&self) -> &'static str {
        match self {
            Carrier::Yamato => "yamato",
            Carrier::Sagawa => "sagawa",
            Carrier::JapanPost => "japanpost",
        }
    }

    /// Yahoo's ShipCompanyCode for this carrier (see [`url::yahoo_ship_company_code`]).
    pub fn company_code(&self) -> &'static str {
        url::yahoo_ship_company_code(*self, url::JAPAN_POST_SHIP_COMPANY_CODE)
    }

    /// The carrier's tracking page for a number (Yahoo's ShipUrl).
    pub fn tracking_url(&self, number: &str) -> String {
        url::tracking_url(*self, number)
    }

    /// A hand-typed number: digits only, or why it cannot be used.
    pub fn check_number(&self, raw: &str) -> Result<String, String> {
        tracking::parse_number(*self, raw)
    }

    /// The carrier whose Yahoo ShipCompanyCode this is, for the two codes that name one.
    pub fn of_company_code(code: &str) -> Option<Carrier> {
        match code {
            "1001" => Some(Carrier::Yamato),
            "1002" => Some(Carrier::Sagawa),
            _ => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Carrier::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// A label file layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LabelFormat {
    B2,
    Ehiden,
    ClickPost,
}

impl LabelFormat {
    pub const ALL: [LabelFormat; 3] = [LabelFormat::B2, LabelFormat::Ehiden, LabelFormat::ClickPost];

    pub fn carrier(&self) -> Carrier {
        match self {
            LabelFormat::B2 => Carrier::Yamato,
            LabelFormat::Ehiden => Carrier::Sagawa,
            LabelFormat::ClickPost => Carrier::JapanPost,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            LabelFormat::B2 => "ヤマト B2クラウド",
            LabelFormat::Ehiden => "佐川 e飛伝Ⅲ",
            LabelFormat::ClickPost => "クリックポスト",
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LabelFormat::B2 => "b2",
            LabelFormat::Ehiden => "ehiden",
            LabelFormat::ClickPost => "clickpost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        LabelFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// Who a parcel goes to, as the order gives it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub name_kana: String,
    pub phone: String,
    pub zip: String,
    pub prefecture: String,
    pub city: String,
    pub address1: String,
    /// Building and room: B2 writes it in its own column (アパートマンション名).
    pub address2: String,
    pub company: String,
}

/// クール便.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cool {
    #[default]
    Normal,
    Frozen,
    Chilled,
}

impl Cool {
    pub const ALL: [Cool; 3] = [Cool::Normal, Cool::Frozen, Cool::Chilled];

    pub fn label(&self) -> &'static str {
        match self {
            Cool::Normal => "通常",
            Cool::Frozen => "冷凍",
            Cool::Chilled => "冷蔵",
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Cool::Normal => "normal",
            Cool::Frozen => "frozen",
            Cool::Chilled => "chilled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Cool::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// 配達時間帯: the slots buyers can ask for on Yahoo. Not every carrier offers every slot
/// (B2 dropped 12–14 and 20–21; each writer's `check` says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeSlot {
    Morning,
    H12_14,
    H14_16,
    H16_18,
    H18_20,
    H19_21,
    H20_21,
}

impl TimeSlot {
    pub const ALL: [TimeSlot; 7] = [
        TimeSlot::Morning,
        TimeSlot::H12_14,
        TimeSlot::H14_16,
        TimeSlot::H16_18,
        TimeSlot::H18_20,
        TimeSlot::H19_21,
        TimeSlot::H20_21,
    ];

    /// The slot a buyer asked for, from Yahoo's ShipRequestTime text ("午前中", "14:00-16:00",
    /// "14-16", "19時～21時", full-width digits, …). Anything else, "指定なし" included, is `None`.
    pub fn from_yahoo(text: &str) -> Option<Self> {
        let t: String = text.chars().map(jis::fold_ascii).collect();
        let t = t.trim();
        if t.contains("午前") || t.eq_ignore_ascii_case("am") {
            return Some(TimeSlot::Morning);
        }
        // The first two numbers are the hours ("14:00-16:00" → 14, 00, 16 …: skip minutes).
        let mut hours = Vec::new();
        let mut rest = t;
        while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
            let digits = &rest[start..];
            let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
            let number: u32 = digits[..end].parse().ok()?;
            let after = &digits[end..];
            // A number right after ':' is minutes.
            if !rest[..start].ends_with(':') {
                hours.push(number);
            }
            rest = after;
        }
        // A 4-digit code ("1416", B2's own style) is two hours.
        if let [code] = hours.as_slice()
            && (800..=2121).contains(code)
        {
            hours = vec![code / 100, code % 100];
        }
        match hours.as_slice() {
            [8, 12] | [9, 12] => Some(TimeSlot::Morning),
            [12, 14] => Some(TimeSlot::H12_14),
            [14, 16] => Some(TimeSlot::H14_16),
            [16, 18] => Some(TimeSlot::H16_18),
            [18, 20] => Some(TimeSlot::H18_20),
            [19, 21] => Some(TimeSlot::H19_21),
            [20, 21] => Some(TimeSlot::H20_21),
            _ => None,
        }
    }

    /// B2クラウド's 配達時間帯 code; `None` for the slots Yamato no longer offers (12–14, 20–21).
    pub fn b2_code(&self) -> Option<&'static str> {
        match self {
            TimeSlot::Morning => Some("0812"),
            TimeSlot::H14_16 => Some("1416"),
            TimeSlot::H16_18 => Some("1618"),
            TimeSlot::H18_20 => Some("1820"),
            TimeSlot::H19_21 => Some("1921"),
            TimeSlot::H12_14 | TimeSlot::H20_21 => None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            TimeSlot::Morning => "午前中",
            TimeSlot::H12_14 => "12時～14時",
            TimeSlot::H14_16 => "14時～16時",
            TimeSlot::H16_18 => "16時～18時",
            TimeSlot::H18_20 => "18時～20時",
            TimeSlot::H19_21 => "19時～21時",
            TimeSlot::H20_21 => "20時～21時",
        }
    }

    /// The stable name stored in the database and used in forms.
    pub fn as_str(&self) -> &'static str {
        match self {
            TimeSlot::Morning => "morning",
            TimeSlot::H12_14 => "12-14",
            TimeSlot::H14_16 => "14-16",
            TimeSlot::H16_18 => "16-18",
            TimeSlot::H18_20 => "18-20",
            TimeSlot::H19_21 => "19-21",
            TimeSlot::H20_21 => "20-21",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        TimeSlot::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// One shipment as a label needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parcel {
    /// お客様管理番号: our shipment key, ASCII; the issued-data file brings it back.
    pub management_no: String,
    /// The Yahoo order id (B2 記事).
    pub order_id: String,
    /// B2 送り状種類 code ("0".."9", "A"; see [`b2::service_types`]); unused by the others.
    pub service: String,
    pub cool: Cool,
    pub ship_date: NaiveDate,
    pub delivery_date: Option<NaiveDate>,
    pub delivery_time: Option<TimeSlot>,
    pub to: Party,
    /// 品名 printed on the label.
    pub item_name: String,
    /// 荷扱い1, 2.
    pub handling: [String; 2],
    pub packages: u32,
    /// コレクト / 代引 amount including tax; `None` unless cash on delivery.
    pub cod_amount: Option<i64>,
    pub cod_tax: Option<i64>,
}

/// The store as ご依頼主.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    pub name: String,
    pub name_kana: String,
    pub phone: String,
    pub zip: String,
    pub address: String,
    pub building: String,
}

/// Something that stops a label file from being written, for the merchant to fix.
/// A problem of the store's own settings has an empty `management_no` and `order_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub management_no: String,
    pub order_id: String,
    /// The column's Japanese name.
    pub field: &'static str,
    pub value: String,
    /// What is wrong and what to do, in Japanese.
    pub message: String,
    /// The whole value with the suggested replacements applied, when every bad character has one.
    pub replacement: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Carrier::ALL {
            assert_eq!(Carrier::parse(c.as_str()), Some(c));
        }
        for f in LabelFormat::ALL {
            assert_eq!(LabelFormat::parse(f.as_str()), Some(f));
        }
        for c in Cool::ALL {
            assert_eq!(Cool::parse(c.as_str()), Some(c));
        }
        for t in TimeSlot::ALL {
            assert_eq!(TimeSlot::parse(t.as_str()), Some(t));
        }
        assert_eq!(Carrier::parse("fedex"), None);
        assert_eq!(LabelFormat::B2.carrier(), Carrier::Yamato);
        assert_eq!(LabelFormat::Ehiden.carrier(), Carrier::Sagawa);
        assert_eq!(LabelFormat::ClickPost.carrier(), Carrier::JapanPost);
    }

    #[test]
    fn time_slot_from_yahoo_text() {
        let cases = [
            ("午前中", Some(TimeSlot::Morning)),
            ("午前中（8時～12時）", Some(TimeSlot::Morning)),
            ("8:00-12:00", Some(TimeSlot::Morning)),
            ("12:00-14:00", Some(TimeSlot::H12_14)),
            ("14:00-16:00", Some(TimeSlot::H14_16)),
            ("14-16", Some(TimeSlot::H14_16)),
            ("16時～18時", Some(TimeSlot::H16_18)),
            ("１８時〜２０時", Some(TimeSlot::H18_20)),
            ("19時～21時", Some(TimeSlot::H19_21)),
            (" 20:00 - 21:00 ", Some(TimeSlot::H20_21)),
            ("1921", Some(TimeSlot::H19_21)),
            ("指定なし", None),
            ("", None),
            ("10時まで", None),
            ("18-21", None),
        ];
        for (text, slot) in cases {
            assert_eq!(TimeSlot::from_yahoo(text), slot, "{text}");
        }
    }
}
