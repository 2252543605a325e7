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
    } else if matches!(field, "name" | "display_name" | "account_name" | "reason" | "note" | "memo") {
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

fn normalized<T: DeserializeOwned>(pairs: Vec<(String, String)>) -> Result<T, String> {
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| {
            let v = normalize(&k, &v);
            (k, v)
        })
        .collect();
    let encoded = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
    serde_urlencoded::from_str(&encoded).map_err(|e| e.to_string())
}

fn bad_request(why: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("malformed form or query: {why}")).into_response()
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
    fn names_are_trimmed_and_secrets_kept_exactly() {
        assert_eq!(normalize("name", "　㈱山田商店 "), "㈱山田商店");
        assert_eq!(normalize("password", " ｐａｓｓ "), " ｐａｓｓ ");
        assert_eq!(normalize("client_secret", " ｓ "), " ｓ ");
        assert_eq!(normalize("public_key", "－－－－－BEGIN"), "－－－－－BEGIN");
    }
}
