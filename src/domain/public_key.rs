//! The public-key form's checks (product.md §4), as one pure function: what the merchant pasted
//! and typed in, to either a key we can store (always as SPKI PEM) or a Japanese message per
//! field. A private key is recognised first and never echoed, stored or logged.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate};
use rsa::{
    RsaPublicKey,
    pkcs1::DecodeRsaPublicKey,
    pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding},
    traits::PublicKeyParts,
};

pub const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
pub const END: &str = "-----END PUBLIC KEY-----";
const BEGIN_PKCS1: &str = "-----BEGIN RSA PUBLIC KEY-----";
const END_PKCS1: &str = "-----END RSA PUBLIC KEY-----";
/// A 4096-bit key is under 1 KB of PEM; anything this long is not one key.
const MAX_LEN: usize = 16 * 1024;
pub const MIN_BITS: usize = 2048;
/// Yahoo issues 2048-bit keys; anything above this is not one of theirs.
pub const MAX_BITS: usize = 4096;
/// Yahoo's keys are valid one year after issue.
const VALIDITY_MONTHS: u32 = 12;

pub const BOTH_REQUIRED: &str = "公開鍵と公開鍵バージョンは両方入力してください";
pub const MARKERS: &str = "先頭の「-----BEGIN PUBLIC KEY-----」と末尾の「-----END PUBLIC KEY-----」も含めて、コピーした内容をそのまま貼り付けてください";
pub const PRIVATE_KEY: &str = "これは秘密鍵です。秘密鍵は誰にも渡してはいけません（保存していません）。ストアクリエイターProの暗号鍵管理で「コピー」した公開鍵を貼り付けてください";
pub const CERTIFICATE: &str =
    "これは証明書です。ストアクリエイターProの暗号鍵管理で「コピー」した公開鍵を貼り付けてください";
pub const SEVERAL_KEYS: &str = "公開鍵が複数含まれています。設定する公開鍵を1つだけ貼り付けてください";
pub const TEXT_AROUND: &str =
    "「-----BEGIN PUBLIC KEY-----」の前と「-----END PUBLIC KEY-----」の後には何も入れないでください";
pub const NOT_RSA: &str =
    "RSA の公開鍵ではありません。ストアクリエイターProの暗号鍵管理で発行した公開鍵を貼り付けてください";
pub const UNREADABLE: &str = "公開鍵の本文を読み取れません。途中が欠けたり書き換わったりしていないか確認し、コピーした内容をそのまま貼り付けてください";
pub const TOO_LONG: &str = "貼り付けた内容が長すぎます。公開鍵1つだけを貼り付けてください";
pub const VERSION: &str = "公開鍵バージョンは1以上の整数で入力してください（例: 1）";
pub const EXPIRY: &str = "有効期限は「2025-06-01」の形式で入力してください";
pub const EXPIRY_PAST: &str =
    "有効期限が今日以前です。期限が切れた鍵は使えません。ストアクリエイターProで公開鍵を再発行して設定してください";

/// What the form sent.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    pub public_key: String,
    #[serde(default)]
    pub public_key_version: String,
    #[serde(default)]
    pub public_key_expires_on: String,
}

/// A key that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedKey {
    /// Always SubjectPublicKeyInfo PEM, LF line endings.
    pub spki_pem: String,
    pub version: i64,
    pub expires_on: NaiveDate,
    pub bits: usize,
    /// Dashes turned into other characters by a word processor were put back.
    pub repaired_dashes: bool,
    /// A PKCS#1 `RSA PUBLIC KEY` was converted to SPKI.
    pub converted_pkcs1: bool,
}

/// Field → message. `private_key_seen` tells the page not to echo the textarea back.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyErrors {
    pub fields: BTreeMap<&'static str, String>,
    pub private_key_seen: bool,
}

impl KeyErrors {
    fn one(field: &'static str, message: impl Into<String>) -> KeyErrors {
        let mut e = KeyErrors::default();
        e.fields.insert(field, message.into());
        e
    }
}

/// Runs every check of product.md §4. `today` is the JST date the default expiry counts from.
pub fn check(form: &KeyForm, today: NaiveDate) -> Result<CheckedKey, KeyErrors> {
    if form.public_key.len() > MAX_LEN {
        return Err(KeyErrors::one("public_key", TOO_LONG));
    }
    let text = form.public_key.trim_start_matches('\u{feff}').replace("\r\n", "\n").replace('\r', "\n");
    let text = text.trim();
    let version_text = normalize_digits(form.public_key_version.trim());
    if holds_private_key(text) {
        let mut e = KeyErrors::one("public_key", PRIVATE_KEY);
        e.private_key_seen = true;
        return Err(e);
    }
    match (text.is_empty(), version_text.is_empty()) {
        (true, true) => {
            let mut e = KeyErrors::one("public_key", BOTH_REQUIRED);
            e.fields.insert("public_key_version", BOTH_REQUIRED.into());
            return Err(e);
        }
        (true, false) => return Err(KeyErrors::one("public_key", BOTH_REQUIRED)),
        (false, true) => return Err(KeyErrors::one("public_key_version", BOTH_REQUIRED)),
        (false, false) => {}
    }

    let mut errors = KeyErrors::default();
    let key = check_key_text(text);
    if let Err(message) = &key {
        errors.fields.insert("public_key", message.clone());
    }
    let version = version_text
        .parse::<i64>()
        .ok()
        .filter(|v| *v > 0 && *v < 1_000_000 && version_text.bytes().all(|b| b.is_ascii_digit()));
    if version.is_none() {
        errors.fields.insert("public_key_version", VERSION.into());
    }
    let expires_on = match form.public_key_expires_on.trim() {
        "" => today.checked_add_months(Months::new(12)),
        s => NaiveDate::parse_from_str(&normalize_digits(s).replace('/', "-"), "%Y-%m-%d").ok(),
    };
    match expires_on {
        None => {
            errors.fields.insert("public_key_expires_on", EXPIRY.into());
        }
        Some(date) if date <= today => {
            errors.fields.insert("public_key_expires_on", EXPIRY_PAST.into());
        }
        Some(date) => {
            let latest = today.checked_add_months(Months::new(VALIDITY_MONTHS)).unwrap_or(today);
            if date > latest {
                errors.fields.insert(
                    "public_key_expires_on",
                    format!("Yahoo!の公開鍵の有効期限は発行から1年です。{latest} 以前の日付を入力してください"),
                );
            }
        }
    }
    match (key, version, expires_on) {
        (Ok((public, repaired_dashes, converted_pkcs1)), Some(version), Some(expires_on))
            if errors.fields.is_empty() =>
        {
            let spki_pem =
                public.to_public_key_pem(LineEnding::LF).map_err(|_| KeyErrors::one("public_key", UNREADABLE))?;
            Ok(CheckedKey { spki_pem, version, expires_on, bits: public.n().bits(), repaired_dashes, converted_pkcs1 })
        }
        _ => Err(errors),
    }
}

/// Whether pasted text holds private-key material in any disguise: a label that says so in any
/// case or spacing (`PRIVATE  KEY`, `private key`), or a body that decodes as a private key
/// whatever the markers around it claim (a private key between PUBLIC KEY markers), with or
/// without markers, dash look-alikes and all.
fn holds_private_key(text: &str) -> bool {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use rsa::{pkcs1::DecodeRsaPrivateKey, pkcs8::DecodePrivateKey};
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if squeezed.contains("privatekey") || squeezed.contains("秘密鍵") {
        return true;
    }
    let is_private = |der: &[u8]| {
        rsa::RsaPrivateKey::from_pkcs8_der(der).is_ok()
            || rsa::RsaPrivateKey::from_pkcs1_der(der).is_ok()
            || rsa::pkcs8::PrivateKeyInfo::try_from(der).is_ok()
    };
    // The body: every line that is not a marker (a line of dashes or their look-alikes), as one
    // run of base64, and each block between markers on its own.
    let mut blocks = vec![String::new()];
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(is_dash_like) && line.ends_with(is_dash_like) {
            blocks.push(String::new());
            continue;
        }
        if let Some(last) = blocks.last_mut() {
            last.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    let all: String = blocks.concat();
    blocks.push(all);
    blocks.iter().filter(|b| !b.is_empty()).any(|b| STANDARD.decode(b.as_bytes()).is_ok_and(|der| is_private(&der)))
}

/// Full-width digits (１２) are what a Japanese IME often types; they mean the same number.
fn normalize_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32).unwrap_or(c),
            '－' => '-',
            '／' => '/',
            c => c,
        })
        .collect()
}

/// Dash look-alikes that word processors and web pages put in place of `-`.
fn is_dash_like(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'
            ..='\u{2015}' | '\u{2212}' | '\u{FF0D}' | '\u{30FC}' | '\u{2500}' | '\u{FE58}' | '\u{FE63}' | '\u{2043}'
    )
}

/// Puts back the five dashes around `BEGIN …`/`END …` lines. Returns the text and whether
/// anything changed.
fn repair_markers(text: &str) -> (String, bool) {
    let mut changed = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let trimmed = line.trim();
            let inner = trimmed.trim_matches(is_dash_like);
            let is_marker = (inner.starts_with("BEGIN ") || inner.starts_with("END ")) && inner.len() < trimmed.len();
            if !is_marker {
                return line.to_owned();
            }
            let fixed = format!("-----{inner}-----");
            if fixed != line {
                changed |= trimmed != fixed;
            }
            fixed
        })
        .collect();
    (lines.join("\n"), changed)
}

/// The key text alone: markers, one key, nothing around it, RSA, long enough.
fn check_key_text(text: &str) -> Result<(RsaPublicKey, bool, bool), String> {
    let (text, repaired) = repair_markers(text);
    if text.contains("BEGIN CERTIFICATE") {
        return Err(CERTIFICATE.into());
    }
    let begins = text.matches(BEGIN).count() + text.matches(BEGIN_PKCS1).count();
    let ends = text.matches(END).count() + text.matches(END_PKCS1).count();
    if begins > 1 || ends > 1 {
        return Err(SEVERAL_KEYS.into());
    }
    let (begin, end, pkcs1) =
        if text.contains(BEGIN_PKCS1) { (BEGIN_PKCS1, END_PKCS1, true) } else { (BEGIN, END, false) };
    let (Some(start), Some(stop)) = (text.find(begin), text.find(end)) else {
        return Err(MARKERS.into());
    };
    if stop < start {
        return Err(MARKERS.into());
    }
    if !text[..start].trim().is_empty() || !text[stop + end.len()..].trim().is_empty() {
        return Err(TEXT_AROUND.into());
    }
    let body: String = text[start + begin.len()..stop].chars().filter(|c| !c.is_whitespace()).collect();
    use base64::{Engine, engine::general_purpose::STANDARD};
    let der = STANDARD.decode(body.as_bytes()).map_err(|_| UNREADABLE.to_owned())?;
    if der.is_empty() {
        return Err(UNREADABLE.into());
    }
    let key = if pkcs1 {
        RsaPublicKey::from_pkcs1_der(&der).map_err(|_| UNREADABLE.to_owned())?
    } else {
        match RsaPublicKey::from_public_key_der(&der) {
            Ok(key) => key,
            Err(_) => {
                // A well-formed key of another algorithm (EC, Ed25519) gets its own message.
                let other = rsa::pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).is_ok();
                return Err(if other { NOT_RSA } else { UNREADABLE }.into());
            }
        }
    };
    let bits = key.n().bits();
    if bits < MIN_BITS {
        return Err(format!(
            "鍵の長さが {bits} ビットしかありません。{MIN_BITS} ビット以上の RSA 公開鍵を設定してください"
        ));
    }
    if bits > MAX_BITS {
        return Err(format!(
            "鍵の長さが {bits} ビットあります。Yahoo!の公開鍵は {MIN_BITS}〜{MAX_BITS} ビットです。ストアクリエイターProで発行した公開鍵を貼り付けてください"
        ));
    }
    Ok((key, repaired, pkcs1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn form(key: &str, version: &str) -> KeyForm {
        KeyForm { public_key: key.into(), public_key_version: version.into(), public_key_expires_on: String::new() }
    }

    #[test]
    fn good_keys_are_stored_as_spki() {
        let spki = fixture("public-1.pem");
        let ok = check(&form(&spki, "1"), today()).unwrap();
        assert_eq!(ok.spki_pem.trim(), spki.trim());
        assert_eq!((ok.version, ok.bits, ok.repaired_dashes), (1, 2048, false));
        assert_eq!(ok.expires_on, NaiveDate::from_ymd_opt(2027, 11, 24).unwrap());
        let pkcs1 = check(&form(&fixture("public-1-pkcs1.pem"), "２"), today()).unwrap();
        assert_eq!(pkcs1.spki_pem, ok.spki_pem);
        assert!(pkcs1.converted_pkcs1);
        assert_eq!(pkcs1.version, 2);
        let dashed =
            spki.replace("-----BEGIN", "—–BEGIN").replace("KEY-----", "KEY—–").replace("-----END", "－－－－－END");
        let repaired = check(&form(&dashed, "1"), today()).unwrap();
        assert!(repaired.repaired_dashes);
        assert_eq!(repaired.spki_pem, ok.spki_pem);
        let windows = format!("\u{feff}{}", spki.replace('\n', "\r\n"));
        assert_eq!(check(&form(&windows, "1"), today()).unwrap().spki_pem, ok.spki_pem);
    }

    #[test]
    fn bad_keys_name_their_problem() {
        let spki = fixture("public-1.pem");
        let cases: Vec<(String, &str)> = vec![
            (fixture("private-1.pem"), PRIVATE_KEY),
            (fixture("certificate.pem"), CERTIFICATE),
            (fixture("public-ec.pem"), NOT_RSA),
            (format!("{spki}{spki}"), SEVERAL_KEYS),
            (format!("鍵です\n{spki}"), TEXT_AROUND),
            (spki.replace(BEGIN, ""), MARKERS),
            (spki.replace("MII", "MII@@"), UNREADABLE),
        ];
        for (key, message) in cases {
            let e = check(&form(&key, "1"), today()).unwrap_err();
            assert_eq!(e.fields.get("public_key").map(String::as_str), Some(message), "{key}");
        }
        let short = check(&form(&fixture("public-1024.pem"), "1"), today()).unwrap_err();
        assert!(short.fields["public_key"].contains("1024 ビット"));
        for version in ["0", "-1", "v2", "1.5", "99999999"] {
            let e = check(&form(&spki, version), today()).unwrap_err();
            assert_eq!(e.fields.get("public_key_version").map(String::as_str), Some(VERSION), "{version}");
        }
        assert!(check(&form(&fixture("private-1-pkcs1.pem"), "1"), today()).unwrap_err().private_key_seen);
    }

    /// Found by an outside attack: private-key material under another name was echoed back.
    #[test]
    fn a_private_key_in_disguise_is_still_refused_and_never_echoed() {
        let private = fixture("private-1.pem");
        let body: String = private.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("\n");
        let disguises = [
            format!("{BEGIN}\n{body}\n{END}"),
            private.replace("PRIVATE KEY", "private key"),
            private.replace("PRIVATE KEY", "PRIVATE  KEY"),
            private.replace("PRIVATE KEY", "Private\tKey"),
            body.clone(),
            format!(
                "{BEGIN_PKCS1}\n{}\n{END_PKCS1}",
                fixture("private-1-pkcs1.pem")
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        ];
        for text in disguises {
            let e = check(&form(&text, "1"), today()).unwrap_err();
            assert!(e.private_key_seen, "{text}");
            assert_eq!(e.fields.get("public_key").map(String::as_str), Some(PRIVATE_KEY), "{text}");
        }
        assert!(check(&form(&fixture("public-1.pem"), "1"), today()).is_ok(), "a public key is still a public key");
    }
}
