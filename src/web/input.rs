//! One normalisation for every form and every query a person types into: NFKC for IDs, numbers
//! and emails (full-width ｄｅｍｏ－ｓｔｏｒｅ, １５ and ｙａｍａｄａ＠… mean what they look like),
//! trimming (full-width spaces too) for free text, and nothing at all for secrets, passwords
//! and pasted keys, which must arrive exactly as typed.
//!
//! Handlers take [`Form`] and [`Query`] from here instead of axum's, so no form can skip it.
//! Malformed bodies and queries are refused with a bare 400, which the error-page layer turns
//! into the Japanese error page.

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;
use unicode_normalization::UnicodeNormalization;

/// How a field is cleaned, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Passwords, secrets, keys, tokens: byte for byte.
    Exact,
    /// Names and free text: only surrounding spaces go (NFKC would turn ㈱ into (株)).
    Trim,
    /// IDs, numbers, emails, dates, choices: NFKC, then trimmed.
    Nfkc,
}

fn rule(field: &str) -> Rule {
    if field.contains("password")
        || field.contains("secret")
        || matches!(field, "public_key" | "csrf_token" | "next" | "code" | "state")
    {
        Rule::Exact
    } else if matches!(
        field,
        "name"
            | "display_name"
            | "account_name"
            | "reason"
            | "note"
            | "memo"
            | "message"
            | "from_name"
            | "subject"
            | "body"
            | "ship_subject"
            | "ship_body"
            | "free_subject"
            | "free_body"
    ) {
        Rule::Trim
    } else {
        Rule::Nfkc
    }
}

/// The one normalisation: what a field's value means, given its name.
pub fn normalize(field: &str, value: &str) -> String {
    match rule(field) {
        Rule::Exact => value.to_string(),
        Rule::Trim => value.trim().to_string(),
        Rule::Nfkc => value.nfkc().collect::<String>().trim().to_string(),
    }
}

/// Whether a typed value holds a control character that no field accepts: NUL and the other C0
/// and C1 controls (PostgreSQL cannot store NUL in text, and none of them is ever typed on
/// purpose). Free text keeps its line breaks and tabs; secrets are checked where they are used.
pub fn has_control_character(field: &str, value: &str) -> bool {
    let multi_line = matches!(
        field,
        "note" | "memo" | "reason" | "lines" | "postcodes" | "message" | "body" | "ship_body" | "free_body"
    );
    match rule(field) {
        Rule::Exact => false,
        _ => value.chars().any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t'))),
    }
}

/// Characters that show nothing: spaces of every width, controls, zero-width and joiner
/// characters, direction marks, variation selectors, soft hyphens, Hangul and Braille blanks.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

/// Free text with its invisible characters taken out (spaces between words kept, both ends
/// trimmed), and how many visible characters it has: what a reader of the audit log will see.
pub fn visible_text(s: &str) -> (String, usize) {
    let kept: String = s.chars().filter(|c| *c == ' ' || *c == '\u{3000}' || !is_invisible(*c)).collect();
    let kept = kept.trim_matches([' ', '\u{3000}']).to_owned();
    let count = kept.chars().filter(|c| !is_invisible(*c)).count();
    (kept, count)
}

/// Why a form or query was refused.
enum Refusal {
    /// A field held a control character (see [`has_control_character`]).
    ControlCharacter,
    Malformed(String),
}

fn normalized<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, Refusal> {
    if pairs.iter().any(|(k, v)| has_control_character(k, v) || k.chars().any(char::is_control)) {
        return Err(Refusal::ControlCharacter);
    }
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = normalize(&k, &v);
            (k, v)
        })
        .collect();
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| Refusal::Malformed(e.to_string()))?;
    serde_urlencoded::from_str(&encoded).map_err(|e| Refusal::Malformed(e.to_string()))
}

/// A query string carried inside another (the list's filters an order page links back to),
/// read as [`Query`] reads its own; `None` when it does not read.
pub fn nested_query<T: DeserializeOwned>(raw: &str) -> Option<T> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    normalized(pairs).ok()
}

fn bad_request(why: Refusal) -> Response {
    match why {
        Refusal::ControlCharacter => super::error::AppError::ControlCharacter.into_response(),
        Refusal::Malformed(why) => (StatusCode::BAD_REQUEST, format!("malformed form or query: {why}")).into_response(),
    }
}

/// A form body (`application/x-www-form-urlencoded`), normalised field by field.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let axum::Form(pairs) =
            axum::Form::<Vec<(String, String)>>::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        normalized(pairs).map(Form).map_err(bad_request)
    }
}

/// A query string, normalised the same way.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let axum::extract::Query(pairs) =
            axum::extract::Query::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
        normalized(pairs).map(Query).map_err(bad_request)
    }
}

/// The file of an upload form's `file` field (its name and bytes), or `None` when none was
/// chosen (or it is empty). Every upload page reads its file this way.
pub async fn uploaded_file(
    multipart: &mut axum::extract::Multipart,
) -> Result<Option<(String, Vec<u8>)>, super::error::AppError> {
    let unreadable = || super::error::AppError::BadRequest("ファイルを読めませんでした");
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(|_| unreadable())? {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("").to_owned();
            let bytes = field.bytes().await.map_err(|_| unreadable())?;
            file = Some((name, bytes.to_vec()));
        }
    }
    Ok(file.filter(|(_, b)| !b.is_empty()))
}

/// The first value of a form's field `name` (forms read as their pairs, where a field may
/// repeat), or empty.
pub fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// The orders ticked on a list form (its `order` fields): each once, in the order given, at
/// most `limit`.
pub fn ticked_orders(pairs: &[(String, String)], limit: usize) -> Vec<crate::db::orders::OrderPk> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .iter()
        .filter(|(k, _)| k == "order")
        .filter_map(|(_, v)| v.parse().ok().map(crate::db::orders::OrderPk))
        .filter(|pk| seen.insert(*pk))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn full_width_ids_numbers_and_emails_mean_what_they_look_like() {
        assert_eq!(normalize("seller_id", " ｄｅｍｏ－ｓｔｏｒｅ　"), "demo-store");
        assert_eq!(normalize("auto_import_interval_minutes", "１５"), "15");
        assert_eq!(normalize("email", "ｙａｍａｄａ＠ｅｘａｍｐｌｅ．ｊｐ"), "yamada@example.jp");
        assert_eq!(normalize("public_key_version", "２"), "2");
    }

    #[test]
    fn control_characters_are_refused_but_free_text_keeps_its_lines() {
        use super::has_control_character;
        for (field, value) in
            [("q", "山田\u{0}"), ("email", "a\u{0}@example.jp"), ("name", "店\u{7}"), ("item_code", "a\u{85}")]
        {
            assert!(has_control_character(field, value), "{field}: {value:?}");
        }
        assert!(!has_control_character("note", "一行目\r\n二行目\tタブ"));
        assert!(has_control_character("note", "一行目\u{0}"));
        assert!(!has_control_character("password", "\u{0}"), "secrets arrive exactly as typed");
        assert!(!has_control_character("q", "山田　太郎"));
    }

    #[test]
    fn invisible_characters_do_not_count_as_text() {
        use super::visible_text;
        assert_eq!(visible_text("\u{200B}"), (String::new(), 0));
        assert_eq!(visible_text(" \u{200B}\u{FEFF}　\u{2060} "), (String::new(), 0));
        assert_eq!(visible_text(" 問い合わせ\u{200B}対応 "), ("問い合わせ対応".to_string(), 7));
        assert_eq!(visible_text("注文 確認"), ("注文 確認".to_string(), 4));
    }

    #[test]
    fn names_are_trimmed_and_secrets_kept_exactly() {
        assert_eq!(normalize("name", "　㈱山田商店 "), "㈱山田商店");
        assert_eq!(normalize("password", " ｐａｓｓ "), " ｐａｓｓ ");
        assert_eq!(normalize("client_secret", " ｓ "), " ｓ ");
        assert_eq!(normalize("public_key", "－－－－－BEGIN"), "－－－－－BEGIN");
    }
}
