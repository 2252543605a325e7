//! ヤマト B2クラウド: the import CSV for 「外部データから発行」 (shipping-day.md §1.1, §6.1).
//!
//! 95 columns in the 基本レイアウト order, a header row, CP932, CRLF. Yamato's own layout PDF is
//! not public in a form we could read, so the order, the lengths and the header texts follow
//! public code that agrees with itself (§1.1 [B7]–[B11]). B2 reads the columns by position.
//! Unverified: the 96/97-column variant (not written), 複数口 (type 6) as one row with 発行枚数 =
//! packages and the お客様管理番号 as 複数口くくりキー, and 個数口表示フラグ 3 for several packages.

use std::io::{self, Write};

use chrono::NaiveDate;

use super::rules::{self, Checker, key_char, normalize_zip, slashed};
use super::{Cool, Parcel, Problem, Sender, jis};

/// Per-store settings from the merchant's B2クラウド account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct B2Settings {
    /// 請求先顧客コード: 10–12 digits.
    pub customer_code: String,
    /// 請求先分類コード: blank or 3 digits.
    pub class_code: String,
    /// 運賃管理番号: 2 digits (e.g. "01").
    pub freight_no: String,
}

/// 送り状種類 codes as B2クラウド has them now (the set changed in 2023–2025: 7 is now
/// クロネコゆうパケット and ネコポス is A; vendors still document the old meanings).
pub fn service_types() -> &'static [(&'static str, &'static str)] {
    &[
        ("0", "発払い"),
        ("1", "EAZY"),
        ("2", "コレクト"),
        ("3", "クロネコゆうメール"),
        ("4", "タイム"),
        ("5", "着払い"),
        ("6", "発払い（複数口）"),
        ("7", "クロネコゆうパケット"),
        ("8", "宅急便コンパクト"),
        ("9", "宅急便コンパクトコレクト"),
        ("A", "ネコポス"),
    ]
}

fn service_name(code: &str) -> Option<&'static str> {
    service_types().iter().find(|(c, _)| *c == code).map(|(_, name)| *name)
}

/// The header row. Texts as the public generators write them ([B7], with [B9] and [B10]
/// agreeing); B2 reads by position, so a differing name elsewhere (お届け予定（指定）日 in
/// Yamato's newer wording) does not matter on import. Column 34 keeps the generators' exact
/// 「ｺﾚｸﾄ代金引換額（税込)」 (half-width kana, mixed brackets), which three unrelated codebases share.
pub const HEADER: [&str; 95] = [
    "お客様管理番号",                               // 1
    "送り状種類",                                   // 2
    "クール区分",                                   // 3
    "伝票番号",                                     // 4
    "出荷予定日",                                   // 5
    "お届け予定日",                                 // 6
    "配達時間帯",                                   // 7
    "お届け先コード",                               // 8
    "お届け先電話番号",                             // 9
    "お届け先電話番号枝番",                         // 10
    "お届け先郵便番号",                             // 11
    "お届け先住所",                                 // 12
    "お届け先アパートマンション名",                 // 13
    "お届け先会社・部門１",                         // 14
    "お届け先会社・部門２",                         // 15
    "お届け先名",                                   // 16
    "お届け先名(ｶﾅ)",                               // 17
    "敬称",                                         // 18
    "ご依頼主コード",                               // 19
    "ご依頼主電話番号",                             // 20
    "ご依頼主電話番号枝番",                         // 21
    "ご依頼主郵便番号",                             // 22
    "ご依頼主住所",                                 // 23
    "ご依頼主アパートマンション",                   // 24
    "ご依頼主名",                                   // 25
    "ご依頼主名(ｶﾅ)",                               // 26
    "品名コード１",                                 // 27
    "品名１",                                       // 28
    "品名コード２",                                 // 29
    "品名２",                                       // 30
    "荷扱い１",                                     // 31
    "荷扱い２",                                     // 32
    "記事",                                         // 33
    "ｺﾚｸﾄ代金引換額（税込)",                        // 34
    "内消費税額等",                                 // 35
    "止置き",                                       // 36
    "営業所コード",                                 // 37
    "発行枚数",                                     // 38
    "個数口表示フラグ",                             // 39
    "請求先顧客コード",                             // 40
    "請求先分類コード",                             // 41
    "運賃管理番号",                                 // 42
    "クロネコwebコレクトデータ登録",                // 43
    "クロネコwebコレクト加盟店番号",                // 44
    "クロネコwebコレクト申込受付番号１",            // 45
    "クロネコwebコレクト申込受付番号２",            // 46
    "クロネコwebコレクト申込受付番号３",            // 47
    "お届け予定ｅメール利用区分",                   // 48
    "お届け予定ｅメールe-mailアドレス",             // 49
    "入力機種",                                     // 50
    "お届け予定ｅメールメッセージ",                 // 51
    "お届け完了ｅメール利用区分",                   // 52
    "お届け完了ｅメールe-mailアドレス",             // 53
    "お届け完了ｅメールメッセージ",                 // 54
    "クロネコ収納代行利用区分",                     // 55
    "予備",                                         // 56
    "収納代行請求金額(税込)",                       // 57
    "収納代行内消費税額等",                         // 58
    "収納代行請求先郵便番号",                       // 59
    "収納代行請求先住所",                           // 60
    "収納代行請求先住所（アパートマンション名）",   // 61
    "収納代行請求先会社・部門名１",                 // 62
    "収納代行請求先会社・部門名２",                 // 63
    "収納代行請求先名(漢字)",                       // 64
    "収納代行請求先名(カナ)",                       // 65
    "収納代行問合せ先名(漢字)",                     // 66
    "収納代行問合せ先郵便番号",                     // 67
    "収納代行問合せ先住所",                         // 68
    "収納代行問合せ先住所（アパートマンション名）", // 69
    "収納代行問合せ先電話番号",                     // 70
    "収納代行管理番号",                             // 71
    "収納代行品名",                                 // 72
    "収納代行備考",                                 // 73
    "複数口くくりキー",                             // 74
    "検索キータイトル1",                            // 75
    "検索キー1",                                    // 76
    "検索キータイトル2",                            // 77
    "検索キー2",                                    // 78
    "検索キータイトル3",                            // 79
    "検索キー3",                                    // 80
    "検索キータイトル4",                            // 81
    "検索キー4",                                    // 82
    "検索キータイトル5",                            // 83
    "検索キー5",                                    // 84
    "予備",                                         // 85
    "予備",                                         // 86
    "投函予定メール利用区分",                       // 87
    "投函予定メールe-mailアドレス",                 // 88
    "投函予定メールメッセージ",                     // 89
    "投函完了メール（お届け先宛）利用区分",         // 90
    "投函完了メール（お届け先宛）e-mailアドレス",   // 91
    "投函完了メール（お届け先宛）メールメッセージ", // 92
    "投函完了メール（ご依頼主宛）利用区分",         // 93
    "投函完了メール（ご依頼主宛）e-mailアドレス",   // 94
    "投函完了メール（ご依頼主宛）メールメッセージ", // 95
];

/// The column's name by its 1-based number, as the spec tables count.
fn name(no: usize) -> &'static str {
    HEADER[no - 1]
}

/// Byte limits (full-width = 2) of the columns we fill, from §1.1.
const MANAGEMENT_NO_MAX: usize = 20;
const PHONE_MAX: usize = 15;
const ADDRESS_MAX: usize = 64;
const BUILDING_MAX: usize = 32;
const COMPANY_MAX: usize = 50;
const NAME_MAX: usize = 32;
const KANA_MAX: usize = 50;
const ITEM_MAX: usize = 50;
const HANDLING_MAX: usize = 20;
const ARTICLE_MAX: usize = 44;
const COLLECT_MAX: i64 = 300_000;

/// B2 prints a blank 敬称 as nothing; buyers expect 様.
const HONORIFIC: &str = "様";

/// Types whose fare the consignee pays or that need no billing account (着払い, ゆうメール).
fn needs_billing(service: &str) -> bool {
    !matches!(service, "3" | "5")
}

fn is_collect(service: &str) -> bool {
    matches!(service, "2" | "9")
}

/// Cool is refused later by B2 for anything but these (§1.1: our choice, from the old layout).
fn allows_cool(service: &str) -> bool {
    matches!(service, "0" | "2" | "4" | "5" | "8")
}

/// Posted into a letterbox: no delivery time.
fn is_letterbox(service: &str) -> bool {
    matches!(service, "3" | "7" | "A")
}

/// Types that may print several labels (発行枚数), from [B9]'s notes.
fn allows_several(service: &str) -> bool {
    matches!(service, "0" | "1" | "4" | "5" | "6" | "7" | "A")
}

/// Every problem that stops these parcels from going into B2, nothing written.
pub fn check(parcels: &[Parcel], sender: &Sender, settings: &B2Settings, today: NaiveDate) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_sender(&mut Checker::new(&mut problems, "", ""), sender);
    let billing_needed = parcels.iter().any(|p| needs_billing(&p.service));
    check_settings(&mut Checker::new(&mut problems, "", ""), settings, billing_needed);
    for p in parcels {
        check_parcel(&mut Checker::new(&mut problems, &p.management_no, &p.order_id), p, today);
    }
    problems
}

fn check_sender(c: &mut Checker, s: &Sender) {
    c.phone(name(20), &s.phone, PHONE_MAX);
    c.zip(name(22), &s.zip);
    c.text(name(23), &s.address, ADDRESS_MAX, true);
    c.text(name(24), &s.building, BUILDING_MAX, false);
    c.text(name(25), &s.name, NAME_MAX, true);
    c.kana(name(26), &s.name_kana, KANA_MAX);
}

fn check_settings(c: &mut Checker, s: &B2Settings, billing_needed: bool) {
    let digits = |v: &str, lens: std::ops::RangeInclusive<usize>| {
        lens.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit())
    };
    let field = name(40);
    if s.customer_code.is_empty() {
        if billing_needed {
            c.push(field, "", format!("「{field}」が未設定です。B2クラウドのお客様コード（半角数字10〜12桁）をストアの「出荷設定」に入力してください。"), None);
        }
    } else if !digits(&s.customer_code, 10..=12) {
        c.push(
            field,
            &s.customer_code,
            format!("「{field}」は半角数字10〜12桁です。ストアの「出荷設定」を直してください。"),
            None,
        );
    }
    let field = name(41);
    if !s.class_code.is_empty() && !digits(&s.class_code, 3..=3) {
        c.push(
            field,
            &s.class_code,
            format!("「{field}」は空か半角数字3桁です。ストアの「出荷設定」を直してください。"),
            None,
        );
    }
    let field = name(42);
    if s.freight_no.is_empty() {
        if billing_needed {
            c.push(field, "", format!("「{field}」が未設定です。B2クラウドの運賃管理番号（半角数字2桁、例: 01）をストアの「出荷設定」に入力してください。"), None);
        }
    } else if !digits(&s.freight_no, 2..=2) {
        c.push(
            field,
            &s.freight_no,
            format!("「{field}」は半角数字2桁です（例: 01）。ストアの「出荷設定」を直してください。"),
            None,
        );
    }
}

fn check_parcel(c: &mut Checker, p: &Parcel, today: NaiveDate) {
    c.code(name(1), &p.management_no, MANAGEMENT_NO_MAX, true, key_char, "半角英数字");
    let service = p.service.as_str();
    let known = service_name(service);
    if known.is_none() {
        let list: Vec<String> = service_types().iter().map(|(code, n)| format!("{code} {n}")).collect();
        c.push(
            name(2),
            service,
            format!(
                "「{}」の「{service}」はB2クラウドにありません。次から選んでください: {}。",
                name(2),
                list.join("、")
            ),
            None,
        );
    }
    let service_label = known.unwrap_or("");

    if p.cool != Cool::Normal && known.is_some() && !allows_cool(service) {
        c.push(
            name(3),
            p.cool.label(),
            format!("{service_label}（{service}）はクール便（{}）にできません。クール便をやめるか、発払い・コレクト・タイム・着払い・宅急便コンパクトにしてください。", p.cool.label()),
            None,
        );
    }

    c.dates((name(5), p.ship_date), p.delivery_date.map(|d| (name(6), d)), today);

    if let Some(slot) = p.delivery_time {
        let field = name(7);
        if service == "4" {
            c.push(field, slot.label(), format!("タイム（4）の時間帯は「10時まで」「17時まで」だけで、{}は指定できません。時間帯指定をやめるか、送り状種類を変えてください。", slot.label()), None);
        } else if is_letterbox(service) {
            c.push(field, slot.label(), format!("{service_label}（{service}）はポスト投函のため時間帯（{}）を指定できません。時間帯指定をやめてください。", slot.label()), None);
        } else if slot.b2_code().is_none() {
            c.push(field, slot.label(), format!("ヤマト運輸は{}の時間帯指定を受け付けていません。午前中、14時～16時、16時～18時、18時～20時、19時～21時から選び直してください。", slot.label()), None);
        }
    }

    let to = &p.to;
    c.phone(name(9), &to.phone, PHONE_MAX);
    c.zip(name(11), &to.zip);
    c.text(name(12), &address(p), ADDRESS_MAX, true);
    c.text(name(13), &to.address2, BUILDING_MAX, false);
    c.text(name(14), &to.company, COMPANY_MAX, false);
    c.text(name(16), &to.name, NAME_MAX, true);
    c.kana(name(17), &to.name_kana, KANA_MAX);
    c.text(name(28), &p.item_name, ITEM_MAX, service != "3");
    c.text(name(31), &p.handling[0], HANDLING_MAX, false);
    c.text(name(32), &p.handling[1], HANDLING_MAX, false);
    c.text(name(33), &p.order_id, ARTICLE_MAX, false);

    if is_collect(service) {
        match p.cod_amount {
            Some(amount) if (1..=COLLECT_MAX).contains(&amount) => match p.cod_tax {
                Some(tax) if (0..=amount).contains(&tax) => {}
                tax => c.push(
                    name(35),
                    &tax.map(|t| t.to_string()).unwrap_or_default(),
                    format!("コレクトには代金のうちの消費税額（0円〜代金）が必要です。「{}」を入力してください。", name(35)),
                    None,
                ),
            },
            amount => c.push(
                name(34),
                &amount.map(|a| a.to_string()).unwrap_or_default(),
                format!("{service_label}（{service}）には代金引換額（税込、1円〜300,000円）が必要です。金額を確かめてください。"),
                None,
            ),
        }
    } else if let Some(amount) = p.cod_amount {
        c.push(
            name(34),
            &amount.to_string(),
            format!("代金引換の金額がありますが、送り状種類が{}です。コレクト（2）か宅急便コンパクトコレクト（9）にしてください。", if known.is_some() { format!("{service_label}（{service}）") } else { format!("「{service}」") }),
            None,
        );
    }

    let field = name(38);
    match p.packages {
        0 => c.push(field, "0", "個数が0です。1以上にしてください。".to_owned(), None),
        n if service == "6" && !(2..=99).contains(&n) => c.push(
            field,
            &n.to_string(),
            format!("発払い（複数口）（6）は2〜99個です（今は{n}個）。個数か送り状種類を直してください。"),
            None,
        ),
        n if n > 99 => {
            c.push(field, &n.to_string(), format!("個数は99までです（今は{n}個）。送り状を分けてください。"), None)
        }
        n if n > 1 && known.is_some() && !allows_several(service) => c.push(
            field,
            &n.to_string(),
            format!("{service_label}（{service}）は1個ずつの送り状です（今は{n}個）。1個ずつ出荷を分けてください。"),
            None,
        ),
        _ => {}
    }
}

/// お届け先住所: prefecture, city and street; the building goes to its own column.
fn address(p: &Parcel) -> String {
    format!("{}{}{}", p.to.prefecture, p.to.city, p.to.address1)
}

/// Streams a B2 import file (see [`rules::LabelWriter`]).
pub type B2Writer<W> = rules::LabelWriter<W, B2Settings>;

impl<W: Write> B2Writer<W> {
    /// Writes the header row.
    pub fn new(w: W, sender: &Sender, settings: &B2Settings) -> io::Result<Self> {
        Self::start(w, &HEADER, sender, settings, row)
    }

    /// Rows only, without the header: a part of a file whose first part [`Self::new`] began.
    pub fn continuing(w: W, sender: &Sender, settings: &B2Settings) -> io::Result<Self> {
        Self::start(w, &[], sender, settings, row)
    }
}

fn row(p: &Parcel, s: &Sender, settings: &B2Settings) -> Vec<String> {
    let mut row = vec![String::new(); HEADER.len()];
    let mut set = |no: usize, value: String| row[no - 1] = value;
    let service = p.service.as_str();
    set(1, p.management_no.clone());
    set(2, p.service.clone());
    set(
        3,
        match p.cool {
            Cool::Normal => "0",
            Cool::Frozen => "1",
            Cool::Chilled => "2",
        }
        .to_owned(),
    );
    set(5, slashed(p.ship_date));
    set(6, p.delivery_date.map(slashed).unwrap_or_default());
    set(7, p.delivery_time.and_then(|t| t.b2_code()).unwrap_or("").to_owned());
    set(9, p.to.phone.clone());
    set(11, normalize_zip(&p.to.zip).unwrap_or_else(|| p.to.zip.clone()));
    set(12, address(p));
    set(13, p.to.address2.clone());
    set(14, p.to.company.clone());
    set(16, p.to.name.clone());
    set(17, jis::to_halfwidth_katakana(&p.to.name_kana));
    set(18, HONORIFIC.to_owned());
    set(20, s.phone.clone());
    set(22, normalize_zip(&s.zip).unwrap_or_else(|| s.zip.clone()));
    set(23, s.address.clone());
    set(24, s.building.clone());
    set(25, s.name.clone());
    set(26, jis::to_halfwidth_katakana(&s.name_kana));
    set(28, p.item_name.clone());
    set(31, p.handling[0].clone());
    set(32, p.handling[1].clone());
    set(33, p.order_id.clone());
    set(34, p.cod_amount.map(|a| a.to_string()).unwrap_or_default());
    set(35, p.cod_tax.map(|t| t.to_string()).unwrap_or_default());
    if p.packages > 1 {
        set(38, p.packages.to_string());
        // 3: print the 個数口 frame with "1/3" style counts.
        set(39, "3".to_owned());
    }
    set(40, settings.customer_code.clone());
    set(41, settings.class_code.clone());
    set(42, settings.freight_no.clone());
    if service == "6" {
        set(74, p.management_no.clone());
    }
    row
}

#[cfg(test)]
mod tests {
    use super::super::rules::testing::{cell_counts, cp932, fields, parcels, sender, today};
    use super::super::{TimeSlot, rules::MAX_DAYS_AHEAD};
    use super::*;
    use chrono::Days;

    fn settings() -> B2Settings {
        B2Settings { customer_code: "012345678901".to_owned(), class_code: String::new(), freight_no: "01".to_owned() }
    }

    fn render(parcels: &[Parcel]) -> Vec<u8> {
        let mut w = B2Writer::new(Vec::new(), &sender(), &settings()).unwrap();
        for p in parcels {
            w.write(p).unwrap();
        }
        w.finish().unwrap()
    }

    /// `n` empty cells, to write the long blank stretches of a row legibly.
    fn blanks(n: usize) -> String {
        ",".repeat(n)
    }

    #[test]
    fn golden_file() {
        let header = concat!(
            "お客様管理番号,送り状種類,クール区分,伝票番号,出荷予定日,お届け予定日,配達時間帯,お届け先コード,",
            "お届け先電話番号,お届け先電話番号枝番,お届け先郵便番号,お届け先住所,お届け先アパートマンション名,",
            "お届け先会社・部門１,お届け先会社・部門２,お届け先名,お届け先名(ｶﾅ),敬称,ご依頼主コード,",
            "ご依頼主電話番号,ご依頼主電話番号枝番,ご依頼主郵便番号,ご依頼主住所,ご依頼主アパートマンション,",
            "ご依頼主名,ご依頼主名(ｶﾅ),品名コード１,品名１,品名コード２,品名２,荷扱い１,荷扱い２,記事,",
            "ｺﾚｸﾄ代金引換額（税込),内消費税額等,止置き,営業所コード,発行枚数,個数口表示フラグ,請求先顧客コード,",
            "請求先分類コード,運賃管理番号,クロネコwebコレクトデータ登録,クロネコwebコレクト加盟店番号,",
            "クロネコwebコレクト申込受付番号１,クロネコwebコレクト申込受付番号２,クロネコwebコレクト申込受付番号３,",
            "お届け予定ｅメール利用区分,お届け予定ｅメールe-mailアドレス,入力機種,お届け予定ｅメールメッセージ,",
            "お届け完了ｅメール利用区分,お届け完了ｅメールe-mailアドレス,お届け完了ｅメールメッセージ,",
            "クロネコ収納代行利用区分,予備,収納代行請求金額(税込),収納代行内消費税額等,収納代行請求先郵便番号,",
            "収納代行請求先住所,収納代行請求先住所（アパートマンション名）,収納代行請求先会社・部門名１,",
            "収納代行請求先会社・部門名２,収納代行請求先名(漢字),収納代行請求先名(カナ),収納代行問合せ先名(漢字),",
            "収納代行問合せ先郵便番号,収納代行問合せ先住所,収納代行問合せ先住所（アパートマンション名）,",
            "収納代行問合せ先電話番号,収納代行管理番号,収納代行品名,収納代行備考,複数口くくりキー,",
            "検索キータイトル1,検索キー1,検索キータイトル2,検索キー2,検索キータイトル3,検索キー3,",
            "検索キータイトル4,検索キー4,検索キータイトル5,検索キー5,予備,予備,",
            "投函予定メール利用区分,投函予定メールe-mailアドレス,投函予定メールメッセージ,",
            "投函完了メール（お届け先宛）利用区分,投函完了メール（お届け先宛）e-mailアドレス,",
            "投函完了メール（お届け先宛）メールメッセージ,投函完了メール（ご依頼主宛）利用区分,",
            "投函完了メール（ご依頼主宛）e-mailアドレス,投函完了メール（ご依頼主宛）メールメッセージ",
        );
        // Columns 1–33 differ per parcel; 34–42 carry the money and the billing settings;
        // 43–95 (53 columns) stay blank.
        let sender_cols = "03-1234-5678,,100-0014,東京都千代田区永田町1-7-1,永田町ビル3F,オーダー商店,ｵｰﾀﾞｰｼｮｳﾃﾝ";
        let tail = blanks(53);
        let lines = vec![
            header.to_owned(),
            format!(
                "S0001,2,0,,2026/05/11,,,,090-1111-2222,,530-0001,大阪府大阪市北区梅田1-1-1,,,,山田 太郎,ﾔﾏﾀﾞ ﾀﾛｳ,様,,{sender_cols},,雑貨,,,ワレモノ注意,,store-10000001,5500,500,,,,,012345678901,,01{tail}"
            ),
            format!(
                "S0002,0,2,,2026/05/11,2026/05/13,1416,,06-2222-3333,,060-0001,北海道札幌市中央区北1条西2-3,,株式会社サンプル,,佐藤 花子,ｻﾄｳ ﾊﾅｺ,様,,{sender_cols},,食品,,,,,store-10000002,,,,,,,012345678901,,01{tail}"
            ),
            format!(
                "S0003,0,0,,2026/05/11,,,,080-3333-4444,,812-0011,福岡県福岡市博多区博多駅前2-2-2,\"博多ハイツ101号,南棟\",,,鈴木 一郎,ｽｽﾞｷ ｲﾁﾛｳ,様,,{sender_cols},,衣類,,,,,store-10000003,,,,,,,012345678901,,01{tail}"
            ),
        ];
        let expected = cp932(&lines);
        let parcels = parcels();
        assert_eq!(check(&parcels, &sender(), &settings(), today()), vec![]);
        let actual = render(&parcels);
        // Text first, for a readable diff; then the bytes.
        assert_eq!(
            encoding_rs::SHIFT_JIS.decode(&actual).0.into_owned(),
            encoding_rs::SHIFT_JIS.decode(&expected).0.into_owned()
        );
        assert_eq!(actual, expected);
        assert_eq!(cell_counts(&actual), vec![95; 4]);
        assert_eq!(HEADER.join(","), header);
    }

    fn problems_of(p: Parcel) -> Vec<Problem> {
        check(&[p], &sender(), &settings(), today())
    }

    fn one() -> Parcel {
        parcels().remove(1)
    }

    #[test]
    fn collect_needs_an_amount_within_range_and_its_tax() {
        let mut p = parcels().remove(0);
        p.cod_amount = None;
        assert_eq!(fields(&problems_of(p.clone())), [("S0001", "ｺﾚｸﾄ代金引換額（税込)")]);
        p.cod_amount = Some(300_001);
        assert_eq!(fields(&problems_of(p.clone())), [("S0001", "ｺﾚｸﾄ代金引換額（税込)")]);
        p.cod_amount = Some(300_000);
        p.cod_tax = None;
        assert_eq!(fields(&problems_of(p.clone())), [("S0001", "内消費税額等")]);
        p.service = "9".to_owned();
        p.cod_tax = Some(27_272);
        assert_eq!(problems_of(p), vec![]);
    }

    #[test]
    fn a_cod_amount_on_a_prepaid_type_is_refused() {
        let mut p = one();
        p.cod_amount = Some(1000);
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "ｺﾚｸﾄ代金引換額（税込)")]);
        assert!(problems[0].message.contains("コレクト（2）"));
    }

    #[test]
    fn billing_code_and_freight_number_are_required_except_for_types_5_and_3() {
        let empty = B2Settings::default();
        let p = one();
        let problems = check(std::slice::from_ref(&p), &sender(), &empty, today());
        assert_eq!(fields(&problems), [("", "請求先顧客コード"), ("", "運賃管理番号")]);
        for service in ["5", "3"] {
            let mut q = p.clone();
            q.service = service.to_owned();
            q.cool = Cool::Normal;
            q.delivery_time = None;
            assert_eq!(check(&[q], &sender(), &empty, today()), vec![], "type {service}");
        }
        let bad =
            B2Settings { customer_code: "12345".to_owned(), class_code: "1".to_owned(), freight_no: "1".to_owned() };
        assert_eq!(
            fields(&check(&[p], &sender(), &bad, today())),
            [("", "請求先顧客コード"), ("", "請求先分類コード"), ("", "運賃管理番号")]
        );
    }

    #[test]
    fn cool_only_with_types_0_2_4_5_8() {
        for (service, ok) in
            [("0", true), ("2", false), ("4", true), ("5", true), ("8", true), ("7", false), ("A", false), ("3", false)]
        {
            let mut p = one();
            p.service = service.to_owned();
            p.delivery_time = None;
            if service == "2" {
                // Collect itself allows cool; its missing amount is the only problem.
                p.cod_amount = Some(1000);
                p.cod_tax = Some(90);
                assert_eq!(problems_of(p), vec![], "type 2");
                continue;
            }
            let problems = problems_of(p);
            assert_eq!(problems.iter().any(|x| x.field == "クール区分"), !ok, "type {service}: {problems:?}");
        }
    }

    #[test]
    fn type_4_refuses_time_slots() {
        let mut p = one();
        p.service = "4".to_owned();
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "配達時間帯")]);
        p.delivery_time = None;
        assert_eq!(problems_of(p), vec![]);
    }

    #[test]
    fn withdrawn_time_slots_are_refused() {
        for slot in [TimeSlot::H12_14, TimeSlot::H20_21] {
            let mut p = one();
            p.delivery_time = Some(slot);
            assert_eq!(fields(&problems_of(p)), [("S0002", "配達時間帯")]);
        }
        let mut p = one();
        p.service = "A".to_owned();
        p.cool = Cool::Normal;
        assert_eq!(fields(&problems_of(p)), [("S0002", "配達時間帯")]);
    }

    #[test]
    fn service_code_must_be_in_the_table() {
        let mut p = one();
        p.service = "B".to_owned();
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "送り状種類")]);
        assert!(problems[0].message.contains("A ネコポス"));
        assert_eq!(service_types().len(), 11);
    }

    #[test]
    fn ship_date_from_today_to_30_days() {
        let mut p = one();
        p.delivery_date = None;
        p.ship_date = today().pred_opt().unwrap();
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "出荷予定日")]);
        p.ship_date = today().checked_add_days(Days::new(MAX_DAYS_AHEAD + 1)).unwrap();
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "出荷予定日")]);
        p.ship_date = today().checked_add_days(Days::new(MAX_DAYS_AHEAD)).unwrap();
        assert_eq!(problems_of(p), vec![]);
    }

    #[test]
    fn delivery_date_within_30_days_and_not_before_shipping() {
        let mut p = one();
        p.delivery_date = today().checked_add_days(Days::new(MAX_DAYS_AHEAD + 1));
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "お届け予定日")]);
        p.ship_date = today().succ_opt().unwrap();
        p.delivery_date = Some(today());
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "お届け予定日")]);
        assert!(problems[0].message.contains("より前"));
    }

    #[test]
    fn phone_is_digits_and_hyphens() {
        let mut p = one();
        p.to.phone = "06(2222)3333".to_owned();
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "お届け先電話番号")]);
        assert_eq!(problems[0].replacement.as_deref(), Some("06-2222-3333"));
    }

    #[test]
    fn zip_is_seven_digits() {
        let mut p = one();
        p.to.zip = "060-001".to_owned();
        assert_eq!(fields(&problems_of(p)), [("S0002", "お届け先郵便番号")]);
    }

    #[test]
    fn name_and_address_are_required() {
        let mut p = one();
        p.to.name = String::new();
        p.to.prefecture = String::new();
        p.to.city = String::new();
        p.to.address1 = " ".to_owned();
        assert_eq!(fields(&problems_of(p)), [("S0002", "お届け先住所"), ("S0002", "お届け先名")]);
    }

    #[test]
    fn address_and_building_limits() {
        let mut p = one();
        p.to.address1 = "あ".repeat(32 - 9);
        assert_eq!(problems_of(p.clone()), vec![], "32 full-width characters fit");
        p.to.address1.push('あ');
        p.to.address2 = "い".repeat(17);
        assert_eq!(fields(&problems_of(p)), [("S0002", "お届け先住所"), ("S0002", "お届け先アパートマンション名")]);
    }

    #[test]
    fn name_over_16_full_width_characters_is_refused() {
        let mut p = one();
        p.to.name = "山".repeat(16);
        assert_eq!(problems_of(p.clone()), vec![]);
        p.to.name.push('山');
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "お届け先名")]);
        assert_eq!(problems[0].replacement, None, "never cut short");
    }

    #[test]
    fn item_name_within_25_full_width_characters_and_required() {
        let mut p = one();
        p.item_name = "品".repeat(26);
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "品名１")]);
        p.item_name = String::new();
        assert_eq!(fields(&problems_of(p)), [("S0002", "品名１")]);
    }

    #[test]
    fn characters_outside_jis_x_0208_name_the_character_and_offer_a_replacement() {
        let mut p = one();
        p.to.name = "髙橋 𠮷男".to_owned();
        p.to.address2 = "コーポ①".to_owned();
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0002", "お届け先アパートマンション名"), ("S0002", "お届け先名")]);
        assert_eq!(problems[0].replacement.as_deref(), Some("コーポ1"));
        assert!(problems[1].message.contains("「髙（U+9AD9）」「𠮷（U+20BB7）」"), "{}", problems[1].message);
        assert_eq!(problems[1].replacement.as_deref(), Some("高橋 吉男"));
        assert_eq!(problems[1].order_id, "store-10000002");
    }

    #[test]
    fn kana_that_is_not_kana_is_refused() {
        let mut p = one();
        p.to.name_kana = "佐藤".to_owned();
        assert_eq!(fields(&problems_of(p)), [("S0002", "お届け先名(ｶﾅ)")]);
    }

    #[test]
    fn management_number_is_ascii_up_to_20() {
        let mut p = one();
        p.management_no = "Ｓ０００２".to_owned();
        let problems = problems_of(p.clone());
        assert_eq!(problems[0].field, "お客様管理番号");
        assert_eq!(problems[0].replacement.as_deref(), Some("S0002"));
        p.management_no = "S".repeat(21);
        assert_eq!(problems_of(p)[0].field, "お客様管理番号");
    }

    #[test]
    fn several_packages() {
        let mut p = one();
        p.packages = 3;
        assert_eq!(problems_of(p.clone()), vec![]);
        let out = render(&[p.clone()]);
        let text = encoding_rs::SHIFT_JIS.decode(&out).0.into_owned();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        assert_eq!((row[37], row[38]), ("3", "3"));
        p.packages = 0;
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "発行枚数")]);
        p.packages = 2;
        p.service = "8".to_owned();
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "発行枚数")]);
        p.service = "6".to_owned();
        p.cool = Cool::Normal;
        p.packages = 1;
        assert_eq!(fields(&problems_of(p.clone())), [("S0002", "発行枚数")]);
        p.packages = 2;
        assert_eq!(problems_of(p.clone()), vec![]);
        let out = render(&[p]);
        let text = encoding_rs::SHIFT_JIS.decode(&out).0.into_owned();
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(row[73], "S0002");
    }

    #[test]
    fn sender_problems_are_reported_once() {
        let s = Sender { phone: "03-1234-5678 内線1".to_owned(), name: String::new(), ..sender() };
        let problems = check(&parcels(), &s, &settings(), today());
        assert_eq!(fields(&problems), [("", "ご依頼主電話番号"), ("", "ご依頼主名")]);
    }
}
