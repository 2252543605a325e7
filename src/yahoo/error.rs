//! Yahoo's answers turned into typed errors (yahoo-store-api.md §2, §6), each with what the
//! merchant should do, in Japanese.

use reqwest::StatusCode;

use crate::xml::Element;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum YahooError {
    #[error("the store is not connected to Yahoo")]
    NotConnected,
    #[error("the store is missing a setting: {0}")]
    NotConfigured(&'static str),
    /// The access token expired or is unknown (the client refreshes and retries once).
    #[error("access token expired")]
    TokenExpired,
    /// `px-04102`: the API session is over (12 h without public-key auth, 28 d with).
    #[error("API session cap reached (px-04102)")]
    SessionCap,
    /// `invalid_grant` on refresh: the merchant must authorize again.
    #[error("refresh token expired or revoked (invalid_grant)")]
    InvalidGrant,
    #[error("client ID or secret refused (invalid_client)")]
    InvalidClient,
    #[error("source IP not registered (px-04306)")]
    IpNotAllowed,
    #[error("app not permitted to use this API ({0})")]
    NotPermitted(String),
    #[error("rate limit or quota exceeded")]
    Throttled,
    #[error("illegal status transition: {0}")]
    IllegalTransition(String),
    #[error("refused: order under fraud review: {0}")]
    FraudHold(String),
    #[error("Yahoo error {status} {code:?}: {message}")]
    Api { status: u16, code: Option<String>, message: String },
    #[error("temporary failure: {0}")]
    Temporary(String),
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl YahooError {
    /// Worth retrying after a pause.
    pub fn is_temporary(&self) -> bool {
        matches!(self, YahooError::Throttled | YahooError::Temporary(_) | YahooError::Malformed(_))
    }

    /// The authentication problems that stop a store's imports until someone acts.
    pub fn is_auth_problem(&self) -> bool {
        matches!(
            self,
            YahooError::SessionCap
                | YahooError::InvalidGrant
                | YahooError::InvalidClient
                | YahooError::IpNotAllowed
                | YahooError::NotPermitted(_)
        )
    }

    /// The code kept on the store for diagnosis.
    pub fn auth_code(&self) -> Option<&'static str> {
        Some(match self {
            YahooError::SessionCap => "px-04102",
            YahooError::InvalidGrant => "invalid_grant",
            YahooError::InvalidClient => "invalid_client",
            YahooError::IpNotAllowed => "px-04306",
            YahooError::NotPermitted(_) => "px-04303",
            _ => return None,
        })
    }

    /// A short Japanese explanation for the merchant.
    pub fn message_ja(&self) -> String {
        match self {
            YahooError::NotConnected => "Yahoo!と連携していません。「Yahoo!と連携する」を押してください".into(),
            YahooError::NotConfigured(what) => format!("{what}が設定されていません"),
            YahooError::TokenExpired => "アクセストークンの有効期限が切れました".into(),
            YahooError::SessionCap => "Yahoo!のAPIセッションが切れました（px-04102）。再認証してください".into(),
            YahooError::InvalidGrant => "Yahoo!連携の有効期限が切れたか、取り消されました。再認証してください".into(),
            YahooError::InvalidClient => "Client ID またはシークレットが正しくありません".into(),
            YahooError::IpNotAllowed => "このサーバーの送信元IPアドレスがYahoo!に登録されていません（px-04306）".into(),
            YahooError::NotPermitted(code) => {
                format!("このアプリケーションは注文APIの利用を許可されていません（{code}）")
            }
            YahooError::Throttled => {
                "Yahoo!の呼び出し回数の上限に達しました。しばらく待ってから再度お試しください".into()
            }
            YahooError::IllegalTransition(m) => format!("このステータスには変更できません（{m}）"),
            YahooError::FraudHold(_) => crate::domain::order::FRAUD_HOLD_REFUSAL.into(),
            YahooError::Api { code, message, .. } => {
                format!(
                    "Yahoo!がエラーを返しました: {message}{}",
                    code.as_ref().map(|c| format!("（{c}）")).unwrap_or_default()
                )
            }
            YahooError::Temporary(_) => {
                "Yahoo!に一時的に接続できませんでした。しばらくしてから再度お試しください".into()
            }
            YahooError::Malformed(_) => "Yahoo!からの応答を読み取れませんでした".into(),
        }
    }
}

/// Reads a store-API error answer (`<Error><Message/><Code/></Error>`) into a typed error.
pub fn from_store_answer(status: StatusCode, www_authenticate: Option<&str>, body: &[u8]) -> YahooError {
    let parsed = Element::parse(body).ok();
    let message = parsed.as_ref().and_then(|e| e.value_of("Message").map(str::to_owned)).unwrap_or_default();
    let code = parsed.as_ref().and_then(|e| e.value_of("Code").map(str::to_owned));
    match (status.as_u16(), code.as_deref()) {
        (_, Some("px-04102")) => YahooError::SessionCap,
        (_, Some("px-04306")) => YahooError::IpNotAllowed,
        (_, Some(c @ ("px-04303" | "px-14303" | "px-04304"))) => YahooError::NotPermitted(c.to_owned()),
        (401, _)
            if www_authenticate.is_some_and(|w| w.contains("invalid_token"))
                || message.contains("valid credentials") =>
        {
            YahooError::TokenExpired
        }
        (403, None) if message.contains("Forbidden") => YahooError::Throttled,
        (500..=599, _) => YahooError::Temporary(format!("HTTP {status}")),
        (_, Some("od20401")) => YahooError::FraudHold(message),
        _ if message.starts_with("Cannot Be Operated") => YahooError::IllegalTransition(message),
        _ => YahooError::Api { status: status.as_u16(), code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_error_shapes() {
        let cap = br#"<Error><Message>AccessToken has been expired. This API session is shorter than another API.</Message><Code>px-04102</Code></Error>"#;
        assert_eq!(from_store_answer(StatusCode::UNAUTHORIZED, None, cap), YahooError::SessionCap);
        let expired = br#"<Error><Message>Please provide valid credentials. Bearer realm="yahooapis.jp", error="invalid_token", error_description="expired token"</Message></Error>"#;
        assert_eq!(
            from_store_answer(StatusCode::UNAUTHORIZED, Some(r#"Bearer error="invalid_token""#), expired),
            YahooError::TokenExpired
        );
        let forbidden = b"<Error><Message>Your Request was Forbidden</Message></Error>";
        assert_eq!(from_store_answer(StatusCode::FORBIDDEN, None, forbidden), YahooError::Throttled);
        let ip = b"<Error><Message>Access denied</Message><Code>px-04306</Code></Error>";
        assert_eq!(from_store_answer(StatusCode::FORBIDDEN, None, ip), YahooError::IpNotAllowed);
        let seller =
            b"<?xml version='1.0'?><Error><Message>seller_id is not specified</Message><Code>px-04001</Code></Error>";
        assert!(
            matches!(from_store_answer(StatusCode::BAD_REQUEST, None, seller), YahooError::Api { code: Some(c), .. } if c == "px-04001")
        );
        let illegal = b"<Error><Message>Cannot Be Operated : Cancel OrderStatus</Message><Code>od20013</Code></Error>";
        assert!(matches!(from_store_answer(StatusCode::BAD_REQUEST, None, illegal), YahooError::IllegalTransition(_)));
        assert!(matches!(
            from_store_answer(StatusCode::SERVICE_UNAVAILABLE, None, b"<html>"),
            YahooError::Temporary(_)
        ));
    }
}
