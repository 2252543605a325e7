//! Which characters a carrier can print, and how long a value is in the carriers' terms.
//!
//! Carriers read Shift_JIS and print JIS X 0208 (levels 1 and 2), ASCII and half-width katakana
//! only (shipping-day.md §1.1). We encode with encoding_rs's SHIFT_JIS, which is Windows-31J
//! (CP932), and then refuse what CP932 adds outside JIS X 0208: the NEC special row 13 (①, ㈱,
//! Ⅰ …, lead byte 0x87), the NEC-selected IBM extensions (0xED–0xEE), the IBM extensions
//! (0xFA–0xFC: 髙, 﨑, ⅰ …) and the user-defined area (0xF0–0xF9). Characters CP932 cannot hold
//! at all (𠮷, emoji, NBSP, 〜 U+301C …) are refused too. Most have a suggested replacement.

use unicode_normalization::{UnicodeNormalization, char::compose};

/// Whether the carrier can print `c`.
pub fn is_printable(c: char) -> bool {
    if c.is_control() {
        return false;
    }
    let mut buf = [0u8; 4];
    let Some(bytes) = encode_char(c, &mut buf) else {
        return false;
    };
    match *bytes {
        [b] => b < 0x80 || (0xA1..=0xDF).contains(&b),
        // JIS X 0208 rows 1–8 (0x81–0x84) and 16–84 (0x88–0x9F, 0xE0–0xEA). The encoder never
        // emits the unassigned cells inside those rows, so the lead byte decides.
        [lead, _] => matches!(lead, 0x81..=0x84 | 0x88..=0x9F | 0xE0..=0xEA),
        _ => false,
    }
}

/// `c` in CP932, or `None` when CP932 has no code for it.
fn encode_char(c: char, buf: &mut [u8; 4]) -> Option<&[u8]> {
    let mut s = [0u8; 4];
    let s = c.encode_utf8(&mut s);
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let (result, _, written) = encoder.encode_from_utf8_without_replacement(s, buf, true);
    match result {
        encoding_rs::EncoderResult::InputEmpty => Some(&buf[..written]),
        _ => None,
    }
}

/// Whether the carrier can print every character of `s`: the whole text encoded at once, then
/// its bytes read as [`is_printable`] reads one character's (the common case, every value of
/// every label, without an encoder per character).
fn all_printable(s: &str) -> bool {
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return true;
    }
    if s.chars().any(char::is_control) {
        return false;
    }
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let Some(capacity) = encoder.max_buffer_length_from_utf8_without_replacement(s.len()) else { return false };
    let mut out = Vec::with_capacity(capacity);
    let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(s, &mut out, true);
    if result != encoding_rs::EncoderResult::InputEmpty {
        return false;
    }
    let mut bytes = out.iter();
    while let Some(&b) = bytes.next() {
        match b {
            0x00..=0x7F | 0xA1..=0xDF => {}
            0x81..=0x84 | 0x88..=0x9F | 0xE0..=0xEA => {
                bytes.next();
            }
            _ => return false,
        }
    }
    true
}

/// The characters of `s` the carrier cannot print, each once, in order of appearance.
pub fn bad_chars(s: &str) -> Vec<char> {
    if all_printable(s) {
        return Vec::new();
    }
    let mut bad: Vec<char> = Vec::new();
    for c in s.chars() {
        if !is_printable(c) && !bad.contains(&c) {
            bad.push(c);
        }
    }
    bad
}

/// The suggested replacement for a character the carrier cannot print, if there is one
/// (the empty string means "remove it").
pub fn replacement(c: char) -> Option<String> {
    if let Some(r) = TABLE.iter().find(|(from, _)| *from == c).map(|(_, to)| *to) {
        return Some(r.to_owned());
    }
    match c {
        // Line breaks and tabs would break the label's layout; other controls are invisible.
        '\t' | '\r' | '\n' => return Some(" ".to_owned()),
        c if c.is_control() => return Some(String::new()),
        // En quad … hair space: an ordinary space.
        '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' => return Some(" ".to_owned()),
        // Zero-width characters and variation selectors (葛󠄀 is 葛 plus one): nothing to print.
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}' => {
            return Some(String::new());
        }
        _ => {}
    }
    // Compatibility ideographs (塚 U+FA10, 神 U+FA19 …) have a canonical twin that JIS holds;
    // Latin letters with accents (é, ü) keep their base letter.
    let decomposed: String = c.nfd().collect();
    let mut chars = decomposed.chars();
    if let Some(base) = chars.next()
        && base != c
        && chars.all(|m| ('\u{0300}'..='\u{036F}').contains(&m))
        && is_printable(base)
        && (!base.is_ascii() || base.is_ascii_alphabetic())
    {
        return Some(base.to_string());
    }
    None
}

/// `s` with every unprintable character replaced, when every one has a replacement; `None`
/// when some character has none. A value with nothing to replace comes back unchanged.
pub fn replace_all(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_printable(c) {
            out.push(c);
            continue;
        }
        // A combining (han)dakuten after kana: compose it (か + ◌゙ → が) when JIS has the result.
        if matches!(c, '\u{3099}' | '\u{309A}')
            && let Some(prev) = out.pop()
        {
            match compose(prev, c).filter(|&k| is_printable(k)) {
                Some(k) => out.push(k),
                None => {
                    out.push(prev);
                    out.push(if c == '\u{3099}' { '゛' } else { '゜' });
                }
            }
            continue;
        }
        out.push_str(&replacement(c)?);
    }
    Some(out)
}

/// Replacements for characters buyers and merchants commonly type that JIS X 0208 lacks.
const TABLE: &[(char, &str)] = &[
    // Dashes, tildes and spaces. CP932 writes JIS's wave dash as U+FF5E and its dash as U+2015,
    // so the Unicode look-alikes (〜 U+301C, — U+2014) do not encode at all.
    ('\u{301C}', "～"),
    ('\u{223C}', "～"),
    ('\u{2014}', "―"),
    ('\u{2011}', "-"),
    ('\u{2012}', "-"),
    ('\u{2013}', "-"),
    ('\u{2043}', "-"),
    ('\u{FE63}', "-"),
    ('\u{00A0}', " "),
    // The Latin-1 signs CP932 holds only in their full-width form (§1.1).
    ('\u{00A2}', "￠"),
    ('\u{00A3}', "￡"),
    ('\u{00AC}', "￢"),
    ('\u{2016}', "∥"),
    ('\u{00A6}', "|"),
    ('\u{00B7}', "・"),
    ('\u{00B5}', "μ"),
    ('\u{00C5}', "\u{212B}"),
    ('\u{00DF}', "ss"),
    ('\u{2715}', "×"),
    // Kanji outside JIS X 0208 that appear in names and addresses.
    ('𠮷', "吉"),
    ('髙', "高"),
    ('﨑', "崎"),
    ('德', "徳"),
    ('栁', "柳"),
    ('瀨', "瀬"),
    ('濵', "浜"),
    ('槗', "橋"),
    ('𣘺', "橋"),
    ('淸', "清"),
    ('黑', "黒"),
    ('鷗', "鴎"),
    // Kana JIS X 0208 lacks.
    ('ゔ', "ヴ"),
    ('ゕ', "ヵ"),
    ('ゖ', "ヶ"),
    ('ヷ', "ヴァ"),
    ('ヸ', "ヴィ"),
    ('ヹ', "ヴェ"),
    ('ヺ', "ヴォ"),
    // NEC special row 13.
    ('①', "1"),
    ('②', "2"),
    ('③', "3"),
    ('④', "4"),
    ('⑤', "5"),
    ('⑥', "6"),
    ('⑦', "7"),
    ('⑧', "8"),
    ('⑨', "9"),
    ('⑩', "10"),
    ('⑪', "11"),
    ('⑫', "12"),
    ('⑬', "13"),
    ('⑭', "14"),
    ('⑮', "15"),
    ('⑯', "16"),
    ('⑰', "17"),
    ('⑱', "18"),
    ('⑲', "19"),
    ('⑳', "20"),
    ('Ⅰ', "I"),
    ('Ⅱ', "II"),
    ('Ⅲ', "III"),
    ('Ⅳ', "IV"),
    ('Ⅴ', "V"),
    ('Ⅵ', "VI"),
    ('Ⅶ', "VII"),
    ('Ⅷ', "VIII"),
    ('Ⅸ', "IX"),
    ('Ⅹ', "X"),
    ('㍉', "ミリ"),
    ('㌔', "キロ"),
    ('㌢', "センチ"),
    ('㍍', "メートル"),
    ('㌘', "グラム"),
    ('㌧', "トン"),
    ('㌃', "アール"),
    ('㌶', "ヘクタール"),
    ('㍑', "リットル"),
    ('㍗', "ワット"),
    ('㌍', "カロリー"),
    ('㌦', "ドル"),
    ('㌣', "セント"),
    ('㌫', "パーセント"),
    ('㍊', "ミリバール"),
    ('㎜', "mm"),
    ('㎝', "cm"),
    ('㎞', "km"),
    ('㎎', "mg"),
    ('㎏', "kg"),
    ('㏄', "cc"),
    ('㎡', "m2"),
    ('㍻', "平成"),
    ('〝', "“"),
    ('〟', "”"),
    ('№', "No."),
    ('㏍', "K.K."),
    ('℡', "TEL"),
    ('㊤', "(上)"),
    ('㊥', "(中)"),
    ('㊦', "(下)"),
    ('㊧', "(左)"),
    ('㊨', "(右)"),
    ('㈱', "(株)"),
    ('㈲', "(有)"),
    ('㈹', "(代)"),
    ('㍾', "明治"),
    ('㍽', "大正"),
    ('㍼', "昭和"),
    ('∑', "Σ"),
    // IBM extensions (0xFA–0xFC) that are not kanji.
    ('ⅰ', "i"),
    ('ⅱ', "ii"),
    ('ⅲ', "iii"),
    ('ⅳ', "iv"),
    ('ⅴ', "v"),
    ('ⅵ', "vi"),
    ('ⅶ', "vii"),
    ('ⅷ', "viii"),
    ('ⅸ', "ix"),
    ('ⅹ', "x"),
    ('￤', "|"),
    ('＇', "'"),
    ('＂', "\""),
];

/// The length the carriers count: full-width characters are 2, ASCII and half-width katakana 1.
pub fn byte_len(s: &str) -> usize {
    s.chars().map(|c| if is_half_width(c) { 1 } else { 2 }).sum()
}

/// A character that takes one byte in Shift_JIS (¥ and ‾ are JIS X 0201's 0x5C and 0x7E).
fn is_half_width(c: char) -> bool {
    c.is_ascii() || ('\u{FF61}'..='\u{FF9F}').contains(&c) || c == '¥' || c == '‾'
}

/// Whether `s` is all half-width (ASCII or half-width katakana): B2's カナ columns.
pub fn is_half_width_text(s: &str) -> bool {
    s.chars().all(|c| (c.is_ascii() && !c.is_ascii_control()) || ('\u{FF61}'..='\u{FF9F}').contains(&c))
}

/// Full-width ASCII (Ａ, １, ＃ …) and the ideographic space as plain ASCII; anything else as is.
pub fn fold_ascii(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Half-width katakana for the カナ columns: katakana and hiragana become half-width katakana
/// with the (han)dakuten as a separate mark (ガ → ｶﾞ), full-width ASCII becomes ASCII, and the
/// long-vowel mark, 「」, 。、・ become their half-width forms. Other characters (kanji) are kept,
/// so the caller can tell the text was not all kana.
pub fn to_halfwidth_katakana(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = match c {
            // Hiragana ぁ…ゖ map onto katakana ァ…ヶ.
            '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60).unwrap_or(c),
            _ => c,
        };
        match c {
            '\u{30A1}'..='\u{30F6}' => out.push_str(KANA[(c as u32 - 0x30A1) as usize]),
            'ヷ' => out.push_str("ﾜﾞ"),
            'ヸ' => out.push_str("ｲﾞ"),
            'ヹ' => out.push_str("ｴﾞ"),
            'ヺ' => out.push_str("ｦﾞ"),
            'ー' | '－' | '―' | '‐' => out.push('ｰ'),
            '・' => out.push('･'),
            '「' => out.push('｢'),
            '」' => out.push('｣'),
            '。' => out.push('｡'),
            '、' => out.push('､'),
            '゛' | '\u{3099}' => out.push('ﾞ'),
            '゜' | '\u{309A}' => out.push('ﾟ'),
            c => out.push(fold_ascii(c)),
        }
    }
    out
}

/// Half-width forms of ァ (U+30A1) … ヶ (U+30F6), in code point order.
const KANA: [&str; 86] = [
    "ｧ", "ｱ", "ｨ", "ｲ", "ｩ", "ｳ", "ｪ", "ｴ", "ｫ", "ｵ", // ァ ア ィ イ ゥ ウ ェ エ ォ オ
    "ｶ", "ｶﾞ", "ｷ", "ｷﾞ", "ｸ", "ｸﾞ", "ｹ", "ｹﾞ", "ｺ", "ｺﾞ", // カ … ゴ
    "ｻ", "ｻﾞ", "ｼ", "ｼﾞ", "ｽ", "ｽﾞ", "ｾ", "ｾﾞ", "ｿ", "ｿﾞ", // サ … ゾ
    "ﾀ", "ﾀﾞ", "ﾁ", "ﾁﾞ", "ｯ", "ﾂ", "ﾂﾞ", "ﾃ", "ﾃﾞ", "ﾄ", "ﾄﾞ", // タ … ド
    "ﾅ", "ﾆ", "ﾇ", "ﾈ", "ﾉ", // ナ … ノ
    "ﾊ", "ﾊﾞ", "ﾊﾟ", "ﾋ", "ﾋﾞ", "ﾋﾟ", "ﾌ", "ﾌﾞ", "ﾌﾟ", "ﾍ", "ﾍﾞ", "ﾍﾟ", "ﾎ", "ﾎﾞ", "ﾎﾟ", // ハ … ポ
    "ﾏ", "ﾐ", "ﾑ", "ﾒ", "ﾓ", // マ … モ
    "ｬ", "ﾔ", "ｭ", "ﾕ", "ｮ", "ﾖ", // ャ … ヨ
    "ﾗ", "ﾘ", "ﾙ", "ﾚ", "ﾛ", // ラ … ロ
    "ﾜ", "ﾜ", "ｲ", "ｴ", "ｦ", "ﾝ", // ヮ ワ ヰ ヱ ヲ ン
    "ｳﾞ", "ｶ", "ｹ", // ヴ ヵ ヶ
];

/// Text in CP932. The text is assumed checked ([`bad_chars`] empty); should a character slip
/// through, it becomes 〓 (the geta mark) so the loss shows on the label instead of vanishing.
pub fn encode(s: &str) -> Vec<u8> {
    let mut encoder = encoding_rs::SHIFT_JIS.new_encoder();
    let mut out = Vec::with_capacity(s.len() + 16);
    let mut rest = s;
    loop {
        let needed = encoder.max_buffer_length_from_utf8_without_replacement(rest.len()).unwrap_or(rest.len() * 2 + 16);
        out.reserve(needed);
        let (result, read) = encoder.encode_from_utf8_to_vec_without_replacement(rest, &mut out, true);
        rest = &rest[read..];
        match result {
            encoding_rs::EncoderResult::InputEmpty => break,
            encoding_rs::EncoderResult::OutputFull => continue,
            encoding_rs::EncoderResult::Unmappable(_) => out.extend_from_slice(b"\x81\xAC"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jis_x_0208_ascii_and_half_width_kana_print() {
        for c in "山田太郎あアｱﾞ～－‐―−∥￠￡￢ー・〒々〇≒∵ΣΩ ~\\¥".chars() {
            assert!(is_printable(c), "{c} U+{:04X}", c as u32);
        }
        // Level 2 kanji up to row 84 (0xE0–0xEA) print too.
        assert!(is_printable('熙'));
        assert!(is_printable('堯'));
    }

    #[test]
    fn the_whole_text_check_agrees_with_the_check_of_each_character() {
        for s in [
            "",
            "abc",
            "東京都千代田区１－１",
            "ｱｲｳ ﾃﾞｽ",
            "髙橋",
            "𠮷野家",
            "①番地",
            "a\u{a0}b",
            "tab\there",
            "〜",
            "～",
        ] {
            assert_eq!(all_printable(s), s.chars().all(is_printable), "{s:?}");
        }
    }

    #[test]
    fn cp932_extensions_and_unencodable_characters_do_not_print() {
        // Row 13, IBM extensions, and characters CP932 lacks altogether.
        for c in "①⑳㈱ⅠⅩ№℡㍻∑∮∟髙﨑德栁鷗ⅰ＇＂￤𠮷😀\u{A0}\u{301C}\u{2014}¢£¬‖\u{80}\t\r\n\u{0}\u{E000}".chars()
        {
            assert!(!is_printable(c), "{c} U+{:04X}", c as u32);
        }
        assert_eq!(bad_chars("髙橋①髙"), vec!['髙', '①']);
    }

    #[test]
    fn wave_dashes_and_hyphens_buyers_type_encode_or_have_a_replacement() {
        for c in "〜～−‐—―－‑–".chars() {
            let ok = is_printable(c) || replacement(c).is_some_and(|r| r.chars().all(is_printable));
            assert!(ok, "{c} U+{:04X}", c as u32);
        }
        // CP932 holds JIS 1-33 as U+FF5E, so the Unicode wave dash must be replaced.
        assert!(!is_printable('\u{301C}'));
        assert_eq!(replacement('\u{301C}').as_deref(), Some("～"));
        assert_eq!(replacement('\u{2014}').as_deref(), Some("―"));
    }

    #[test]
    fn replacements_are_printable() {
        for (from, to) in TABLE {
            assert!(!is_printable(*from), "{from} needs no replacement");
            assert!(to.chars().all(is_printable), "{from} → {to}");
        }
        assert_eq!(replace_all("𠮷田 髙﨑德①"), Some("吉田 高崎徳1".to_owned()));
        assert_eq!(replace_all("¢£¬‖"), Some("￠￡￢∥".to_owned()));
        assert_eq!(replace_all("1\u{A0}2"), Some("1 2".to_owned()));
        // 塚 (U+FA10) has a canonical twin; é keeps its letter; か + combining dakuten composes.
        assert_eq!(replace_all("\u{FA10}本 José か\u{3099}"), Some("塚本 Jose が".to_owned()));
        assert_eq!(replace_all("葛\u{E0100}飾"), Some("葛飾".to_owned()));
        assert_eq!(replace_all("ok😀"), None);
        assert_eq!(replace_all("そのまま"), Some("そのまま".to_owned()));
    }

    #[test]
    fn byte_len_counts_full_width_as_two() {
        assert_eq!(byte_len("abc"), 3);
        assert_eq!(byte_len("ｱｲｳﾞ"), 4);
        assert_eq!(byte_len("山田"), 4);
        assert_eq!(byte_len("1-2　３"), 7);
        assert_eq!(byte_len("𠮷"), 2);
    }

    #[test]
    fn halfwidth_katakana_splits_dakuten() {
        assert_eq!(to_halfwidth_katakana("ヤマダ タロウ"), "ﾔﾏﾀﾞ ﾀﾛｳ");
        assert_eq!(to_halfwidth_katakana("がっこう　パーク"), "ｶﾞｯｺｳ ﾊﾟｰｸ");
        assert_eq!(to_halfwidth_katakana("ヴィクトリア・ＡＢＣ１"), "ｳﾞｨｸﾄﾘｱ･ABC1");
        assert_eq!(to_halfwidth_katakana("ｶﾅ"), "ｶﾅ");
        assert!(is_half_width_text(&to_halfwidth_katakana("ヲンヶヵゐゑ")));
        assert!(!is_half_width_text(&to_halfwidth_katakana("山田")));
    }

    #[test]
    fn encode_is_cp932_and_marks_slips() {
        assert_eq!(encode("ｱ髙～"), b"\xB1\xFB\xFC\x81\x60");
        assert_eq!(encode("a𠮷"), b"a\x81\xAC");
    }
}
