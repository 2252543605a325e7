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
    /// A stored secret (its column named) does not open for this store's row: it must be
    /// entered again.
    #[error("the stored {0} cannot be opened for this store")]
    SecretUnreadable(&'static str),
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
    /// 401 with `WWW-Authenticate: Bearer … error="insufficient_scope"`: the app lacks the
    /// store API scope. Permanent: refreshing the token does not help.
    #[error("the app lacks the store API scope (insufficient_scope)")]
    InsufficientScope,
    #[error("source IP not registered (px-04306)")]
    IpNotAllowed,
    #[error("app not permitted to use this API ({0})")]
    NotPermitted(String),
    /// px-04304: the token belongs to another seller than the store's seller ID.
    #[error("token for another seller (px-04304)")]
    WrongSeller,
    /// At the OAuth callback: the seller who consented is not the store's.
    #[error("consent given for another seller than {expected} (px-04304)")]
    SellerMismatch { expected: String, consented: Option<String> },
    #[error("rate limit or quota exceeded")]
    Throttled,
    #[error("illegal status transition: {0}")]
    IllegalTransition(String),
    #[error("refused: order under fraud review: {0}")]
    FraudHold(String),
    /// Any other refusal, including an HTTP 200 whose `Status` is `NG` (`status` 200). The
    /// message carries Yahoo's `Detail` when there is one.
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

    /// Yahoo says there is no such order (od10001).
    pub fn is_order_not_found(&self) -> bool {
        matches!(self, YahooError::Api { code: Some(code), .. } if code == ORDER_NOT_FOUND)
    }

    /// The authentication problems that stop a store's imports until someone acts.
    pub fn is_auth_problem(&self) -> bool {
        matches!(
            self,
            YahooError::SessionCap
                | YahooError::InvalidGrant
                | YahooError::InvalidClient
                | YahooError::InsufficientScope
                | YahooError::IpNotAllowed
                | YahooError::NotPermitted(_)
                | YahooError::WrongSeller
        )
    }

    /// The code kept on the store for diagnosis.
    pub fn auth_code(&self) -> Option<&'static str> {
        Some(match self {
            YahooError::SessionCap => "px-04102",
            YahooError::InvalidGrant => "invalid_grant",
            YahooError::InvalidClient => "invalid_client",
            YahooError::InsufficientScope => INSUFFICIENT_SCOPE,
            YahooError::IpNotAllowed => "px-04306",
            YahooError::NotPermitted(_) => "px-04303",
            YahooError::WrongSeller => "px-04304",
            _ => return None,
        })
    }

    /// A short Japanese explanation for the merchant.
    pub fn message_ja(&self) -> String {
        match self {
            YahooError::NotConnected => "Yahoo!と連携していません。「Yahoo!と連携する」を押してください".into(),
            YahooError::NotConfigured(what) => format!("{what}が設定されていません"),
            YahooError::SecretUnreadable(crate::yahoo::client::CLIENT_SECRET) => SECRET_UNREADABLE.into(),
            YahooError::SecretUnreadable(_) => TOKENS_UNREADABLE.into(),
            YahooError::TokenExpired => "アクセストークンの有効期限が切れました".into(),
            YahooError::SessionCap => "Yahoo!のAPIセッションが切れました（px-04102）。再認証してください".into(),
            YahooError::InvalidGrant => "Yahoo!連携の有効期限が切れたか、取り消されました。再認証してください".into(),
            YahooError::InvalidClient => "Client ID またはシークレットが正しくありません".into(),
            YahooError::InsufficientScope => "このアプリケーションにはYahoo!ショッピングのストアAPIを使う権限（スコープ）がありません（insufficient_scope）。Yahoo!デベロッパーネットワークのアプリケーション設定でストアAPIのスコープを追加し、再認証してください".into(),
            YahooError::IpNotAllowed => "このサーバーの送信元IPアドレスがYahoo!に登録されていません（px-04306）".into(),
            YahooError::SellerMismatch { expected, consented } => format!(
                "同意したストアアカウント（{}）が、この店舗のストアアカウント（{expected}）と違います（px-04304）。連携は保存していません。ストアアカウント {expected} でログインして同意し直してください",
                consented.as_deref().unwrap_or("不明")
            ),
            YahooError::WrongSeller => "Yahoo!の連携が別のストアアカウントのものです（px-04304）。店舗設定のストアアカウント（seller ID）のストアで同意し直してください".into(),
            YahooError::NotPermitted(code) => {
                format!("このアプリケーションは注文APIの利用を許可されていません（{code}）")
            }
            YahooError::Throttled => {
                "Yahoo!の呼び出し回数の上限に達しました。しばらく待ってから再度お試しください".into()
            }
            YahooError::IllegalTransition(m) => format!("このステータスには変更できません（{m}）"),
            YahooError::FraudHold(_) => crate::domain::order::FRAUD_HOLD_REFUSAL.into(),
            YahooError::Api { code: Some(code), .. } if code == ORDER_NOT_FOUND => {
                format!("この注文IDの注文はYahoo!にありません。ストアアカウントと注文IDを確かめてください（{code}）")
            }
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

/// orderInfo's answer for an order ID Yahoo does not have (yahoo-store-api.md §4.2; the code is
/// assumed there, as in the simulator).
pub const ORDER_NOT_FOUND: &str = "od10001";

/// A stored client secret that does not open for its store (copied from another row, or damaged).
pub const SECRET_UNREADABLE: &str =
    "保存されているシークレットを読み取れません。ストア設定でシークレットをもう一度入力してください";
/// Stored tokens that do not open for their store.
pub const TOKENS_UNREADABLE: &str =
    "保存されているYahoo!連携の情報を読み取れません。「Yahoo!と連携する」からもう一度連携してください";

/// The `auth_code` of [`YahooError::InsufficientScope`], as Yahoo names the error.
pub const INSUFFICIENT_SCOPE: &str = "insufficient_scope";

/// What Yahoo's `<Error>` elements say: the first code, every message and detail, trimmed (CDATA
/// and the newlines Yahoo pads messages with are gone).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: String,
    pub detail: Option<String>,
}

impl ErrorBody {
    /// Reads the errors of an answer: the root `<Error>` itself, or the `<Error>`s under
    /// `Result` (an answer whose `Status` is `NG` may hold several).
    pub fn read(root: &Element) -> ErrorBody {
        let errors: Vec<&Element> = if root.name == "Error" {
            vec![root]
        } else {
            let parent = root.child("Result").unwrap_or(root);
            parent.children_named("Error").collect()
        };
        let join = |name: &str| {
            let parts: Vec<&str> = errors.iter().filter_map(|e| e.value_of(name)).collect();
            (!parts.is_empty()).then(|| parts.join(" / "))
        };
        ErrorBody {
            code: errors.iter().find_map(|e| e.value_of("Code")).map(str::to_owned),
            message: join("Message").unwrap_or_default(),
            detail: join("Detail"),
        }
    }

    /// The message with the detail, as the merchant and the logs see it.
    fn full_message(&self) -> String {
        match &self.detail {
            Some(detail) if !self.message.is_empty() => format!("{} ({detail})", self.message),
            Some(detail) => detail.clone(),
            None => self.message.clone(),
        }
    }
}

/// Reads a store-API error answer (`<Error><Message/><Code/></Error>`) into a typed error.
pub fn from_store_answer(status: StatusCode, www_authenticate: Option<&str>, body: &[u8]) -> YahooError {
    let error = Element::parse(body).map(|root| ErrorBody::read(&root)).unwrap_or_default();
    classify(status.as_u16(), www_authenticate, error)
}

/// A successful HTTP answer can still be a refusal: a `Status` of `NG` (under `Result`, or at the
/// root as orderList writes it) with its `<Error>`, or an `<Error>` root. Those become the Yahoo
/// error they are (never "malformed", never retried); anything else is the answer.
pub fn from_success(status: StatusCode, root: Element) -> Result<Element, YahooError> {
    let status_text = root.path(&["Result", "Status"]).or_else(|| root.child("Status")).map(|s| s.text.trim());
    if root.name == "Error" || status_text == Some("NG") {
        let mut error = ErrorBody::read(&root);
        if error.message.is_empty() && error.code.is_none() {
            error.message = "Status NG".into();
        }
        return Err(classify(status.as_u16(), None, error));
    }
    Ok(root)
}

/// One place that decides what an error means, whichever way it arrived.
fn classify(status: u16, www_authenticate: Option<&str>, error: ErrorBody) -> YahooError {
    let says = |needle: &str| www_authenticate.is_some_and(|w| w.contains(needle)) || error.message.contains(needle);
    match (status, error.code.as_deref()) {
        (_, Some("px-04102")) => YahooError::SessionCap,
        (_, Some("px-04306")) => YahooError::IpNotAllowed,
        (_, Some("px-04304")) => YahooError::WrongSeller,
        (_, Some(c @ ("px-04303" | "px-14303"))) => YahooError::NotPermitted(c.to_owned()),
        // Before the expired-token rule: this body also asks for "valid credentials".
        (401, _) if says(INSUFFICIENT_SCOPE) => YahooError::InsufficientScope,
        (401, _) if says("invalid_token") || error.message.contains("valid credentials") => YahooError::TokenExpired,
        (403, None) if error.message.contains("Forbidden") => YahooError::Throttled,
        (500..=599, _) => YahooError::Temporary(format!("HTTP {status}")),
        (_, Some("od20401")) => YahooError::FraudHold(error.full_message()),
        _ if error.message.starts_with("Cannot Be Operated") => YahooError::IllegalTransition(error.message),
        _ => YahooError::Api { status, message: error.full_message(), code: error.code },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn px_04304_is_diagnosed_as_itself() {
        let other = b"<Error><Message>token for another seller</Message><Code>px-04304</Code></Error>";
        let e = from_store_answer(StatusCode::FORBIDDEN, None, other);
        assert_eq!(e, YahooError::WrongSeller);
        assert_eq!(e.auth_code(), Some("px-04304"));
        assert!(e.message_ja().contains("別のストアアカウント") && !e.message_ja().contains("px-04303"));
        let not_permitted = b"<Error><Message>x</Message><Code>px-04303</Code></Error>";
        assert_eq!(from_store_answer(StatusCode::FORBIDDEN, None, not_permitted).auth_code(), Some("px-04303"));
    }

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

    #[test]
    fn an_unknown_order_is_told_in_japanese() {
        let missing = YahooError::Api {
            status: 400,
            code: Some(ORDER_NOT_FOUND.into()),
            message: "Order does not exist.".into(),
        };
        assert_eq!(
            missing.message_ja(),
            "この注文IDの注文はYahoo!にありません。ストアアカウントと注文IDを確かめてください（od10001）"
        );
        assert!(!missing.is_temporary() && !missing.is_auth_problem());
    }

    #[test]
    fn error_bodies_in_every_recorded_shape() {
        let namespaced = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error xmlns=\"urn:yahoo:api\"><Message>item_code() is invalid format.</Message><Code>st-02101</Code></Error>";
        assert_eq!(
            from_store_answer(StatusCode::BAD_REQUEST, None, namespaced.as_bytes()),
            YahooError::Api {
                status: 400,
                code: Some("st-02101".into()),
                message: "item_code() is invalid format.".into()
            }
        );
        let detailed = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<Error xmlns=\"urn:yahoo:api\">\n  <Message><![CDATA[\n    Invalid Request.\n  ]]></Message>\n  <Code>od00001</Code>\n  <Detail><![CDATA[OrderId is not specified]]></Detail>\n</Error>\n";
        let e = from_store_answer(StatusCode::BAD_REQUEST, None, detailed.as_bytes());
        assert_eq!(
            e,
            YahooError::Api {
                status: 400,
                code: Some("od00001".into()),
                message: "Invalid Request. (OrderId is not specified)".into()
            }
        );
        assert_eq!(
            e.message_ja(),
            "Yahoo!がエラーを返しました: Invalid Request. (OrderId is not specified)（od00001）"
        );
        assert!(!e.is_temporary());
        let padded = "<Error>\n<Message>\n\nYour Request was Forbidden\n\n</Message>\n</Error>";
        assert_eq!(from_store_answer(StatusCode::FORBIDDEN, None, padded.as_bytes()), YahooError::Throttled);
        let cdata_cap = "<Error><Message><![CDATA[AccessToken has been expired. This API session is shorter than another API.]]></Message><Code>\npx-04102\n</Code></Error>";
        assert_eq!(from_store_answer(StatusCode::UNAUTHORIZED, None, cdata_cap.as_bytes()), YahooError::SessionCap);
    }

    #[test]
    fn insufficient_scope_is_permanent_and_not_an_expired_token() {
        let www = r#"Bearer realm="yahooapis.jp", error="insufficient_scope", error_description="insufficient scope""#;
        let body = format!("<Error><Message>Please provide valid credentials. {www}</Message></Error>");
        for header in [Some(www), None] {
            let e = from_store_answer(StatusCode::UNAUTHORIZED, header, body.as_bytes());
            assert_eq!(e, YahooError::InsufficientScope, "{header:?}");
            assert!(e.is_auth_problem() && !e.is_temporary());
            assert_eq!(e.auth_code(), Some("insufficient_scope"));
            assert!(e.message_ja().contains("スコープ") && e.message_ja().contains("Yahoo!デベロッパーネットワーク"));
        }
        // The header alone is enough.
        assert_eq!(
            from_store_answer(StatusCode::UNAUTHORIZED, Some(www), b"<Error><Message>Unauthorized</Message></Error>"),
            YahooError::InsufficientScope
        );
    }

    #[test]
    fn status_ng_in_a_200_is_a_yahoo_refusal() {
        let ng = "<ResultSet totalResultsAvailable=\"1\"><Result><Status>NG</Status><Error><Code>od83001</Code><Message><![CDATA[\n この注文は変更できません \n]]></Message><Detail>OrderId=s-1</Detail></Error></Result></ResultSet>";
        let e = from_success(StatusCode::OK, Element::parse(ng.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(
            e,
            YahooError::Api {
                status: 200,
                code: Some("od83001".into()),
                message: "この注文は変更できません (OrderId=s-1)".into()
            }
        );
        assert!(!e.is_temporary() && !e.is_auth_problem());
        assert_eq!(e.message_ja(), "Yahoo!がエラーを返しました: この注文は変更できません (OrderId=s-1)（od83001）");
        // Several errors (the shape Yahoo's item APIs use): the first code, every message.
        let two = "<ResultSet><Result><Status>NG</Status><Error><Target>path</Target><Code>it-01001</Code><Message>a</Message></Error><Error><Code>it-01002</Code><Message>b</Message></Error></Result></ResultSet>";
        assert_eq!(
            from_success(StatusCode::OK, Element::parse(two.as_bytes()).unwrap()).unwrap_err(),
            YahooError::Api { status: 200, code: Some("it-01001".into()), message: "a / b".into() }
        );
        // orderList's root is `Result`; an NG there is read the same way, and the usual mapping applies.
        let list = "<Result><Status>NG</Status><Error><Code>od20401</Code><Message>held</Message></Error></Result>";
        assert!(matches!(
            from_success(StatusCode::OK, Element::parse(list.as_bytes()).unwrap()),
            Err(YahooError::FraudHold(_))
        ));
        let bare = "<ResultSet><Result><Status>NG</Status></Result></ResultSet>";
        assert!(matches!(
            from_success(StatusCode::OK, Element::parse(bare.as_bytes()).unwrap()),
            Err(YahooError::Api { status: 200, .. })
        ));
        // An `<Error>` root in a 200, and a plain OK answer.
        let root = Element::parse(b"<Error><Message>m</Message><Code>c</Code></Error>").unwrap();
        assert!(matches!(from_success(StatusCode::OK, root), Err(YahooError::Api { status: 200, .. })));
        let ok = Element::parse(b"<ResultSet><Result><Status>OK</Status></Result></ResultSet>").unwrap();
        assert!(from_success(StatusCode::OK, ok).is_ok());
    }
}
