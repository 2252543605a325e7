//! `X-SWS-Authorize-Status`: the outcome of Yahoo's public-key check on a store-API call
//! (yahoo-store-api.md §3), and what each outcome tells the merchant to do (product.md §7).
//! The simulator produces these values and the client diagnoses them, from this one list.

/// Every value of the response header, in the order Yahoo checks the fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthorizeStatus {
    Authorized,
    None,
    InvalidKeyVersion,
    NotFoundKeyVersion,
    InvalidKeyStatus,
    ExpiredKeyVersion,
    InvalidAuthorizeValue,
    InvalidSellerId,
    InvalidTimestamp,
    ExpiredTimestamp,
    Unauthorized,
}

impl AuthorizeStatus {
    pub const ALL: [AuthorizeStatus; 11] = [
        AuthorizeStatus::Authorized,
        AuthorizeStatus::None,
        AuthorizeStatus::InvalidKeyVersion,
        AuthorizeStatus::NotFoundKeyVersion,
        AuthorizeStatus::InvalidKeyStatus,
        AuthorizeStatus::ExpiredKeyVersion,
        AuthorizeStatus::InvalidAuthorizeValue,
        AuthorizeStatus::InvalidSellerId,
        AuthorizeStatus::InvalidTimestamp,
        AuthorizeStatus::ExpiredTimestamp,
        AuthorizeStatus::Unauthorized,
    ];

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeStatus::Authorized => "authorized",
            AuthorizeStatus::None => "none",
            AuthorizeStatus::InvalidKeyVersion => "invalid-key-version",
            AuthorizeStatus::NotFoundKeyVersion => "not-found-key-version",
            AuthorizeStatus::InvalidKeyStatus => "invalid-key-status",
            AuthorizeStatus::ExpiredKeyVersion => "expired-key-version",
            AuthorizeStatus::InvalidAuthorizeValue => "invalid-authorize-value",
            AuthorizeStatus::InvalidSellerId => "invalid-sellerid",
            AuthorizeStatus::InvalidTimestamp => "invalid-timestamp",
            AuthorizeStatus::ExpiredTimestamp => "expired-timestamp",
            AuthorizeStatus::Unauthorized => "unauthorized",
        }
    }

    /// Parses a header value; anything unknown is `unauthorized` (a failure we cannot name).
    pub fn parse(value: &str) -> AuthorizeStatus {
        AuthorizeStatus::ALL.into_iter().find(|s| s.as_str() == value.trim()).unwrap_or(AuthorizeStatus::Unauthorized)
    }

    /// In the merchant's words (the header value stays for support, in `as_str`).
    pub fn label(self) -> &'static str {
        match self {
            AuthorizeStatus::Authorized => "公開鍵認証OK",
            AuthorizeStatus::None => "公開鍵認証なし",
            AuthorizeStatus::InvalidKeyVersion => "公開鍵バージョンが正しくない",
            AuthorizeStatus::NotFoundKeyVersion => "公開鍵バージョンが見つからない",
            AuthorizeStatus::InvalidKeyStatus => "公開鍵が無効",
            AuthorizeStatus::ExpiredKeyVersion => "公開鍵の期限切れ",
            AuthorizeStatus::InvalidAuthorizeValue => "署名が正しくない",
            AuthorizeStatus::InvalidSellerId => "ストアアカウントが一致しない",
            AuthorizeStatus::InvalidTimestamp => "署名の時刻が正しくない",
            AuthorizeStatus::ExpiredTimestamp => "署名の時刻が古い",
            AuthorizeStatus::Unauthorized => "公開鍵認証の失敗",
        }
    }

    /// A failure whose cause is the public key or its version as set (every failure but a
    /// clock's, which the client corrects by itself): the key step is not done while it stands
    /// (saving another key clears it).
    pub fn blames_key(self) -> bool {
        !matches!(
            self,
            AuthorizeStatus::Authorized | AuthorizeStatus::InvalidTimestamp | AuthorizeStatus::ExpiredTimestamp
        )
    }

    /// Passing keeps the session for 28 days; anything else cuts it to 12 hours.
    pub fn is_authorized(self) -> bool {
        self == AuthorizeStatus::Authorized
    }

    /// What the merchant should do, in Japanese (product.md §7). None when all is well.
    pub fn advice(self) -> Option<&'static str> {
        Some(match self {
            AuthorizeStatus::Authorized => return None,
            AuthorizeStatus::None => "公開鍵が送信されていません。公開鍵と公開鍵バージョンを両方設定してください。",
            AuthorizeStatus::InvalidKeyVersion | AuthorizeStatus::NotFoundKeyVersion => {
                "公開鍵バージョンが正しくありません。ストアクリエイターProの「設定 > 暗号鍵管理」で有効な公開鍵のバージョンを確認して設定してください。"
            }
            AuthorizeStatus::InvalidKeyStatus => {
                "設定した公開鍵がストアクリエイターProで「無効」になっています。「有効」に切り替えるか、有効な公開鍵を設定してください。"
            }
            AuthorizeStatus::ExpiredKeyVersion => {
                "公開鍵の有効期限（1年）が切れています。公開鍵を再発行して設定してください。"
            }
            AuthorizeStatus::InvalidAuthorizeValue => {
                "公開鍵の内容が正しくありません。ストアクリエイターProの「コピー」ボタンでコピーした公開鍵をそのまま貼り付けてください。"
            }
            AuthorizeStatus::InvalidSellerId => {
                "ストアアカウントが公開鍵を発行したストアと一致しません。ストアごとに発行した公開鍵を設定してください。"
            }
            AuthorizeStatus::InvalidTimestamp | AuthorizeStatus::ExpiredTimestamp => {
                "サーバーの時計がずれているため公開鍵認証に失敗しました。時計のずれを自動で補正して再試行します。"
            }
            AuthorizeStatus::Unauthorized => {
                "公開鍵認証に失敗しました。公開鍵と公開鍵バージョンの設定を確認してください。"
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip() {
        for s in AuthorizeStatus::ALL {
            assert_eq!(AuthorizeStatus::parse(s.as_str()), s);
        }
        assert_eq!(AuthorizeStatus::parse("something-new"), AuthorizeStatus::Unauthorized);
    }

    #[test]
    fn every_failure_has_advice() {
        for s in AuthorizeStatus::ALL {
            assert_eq!(s.advice().is_none(), s.is_authorized(), "{s:?}");
        }
        assert!(AuthorizeStatus::ExpiredKeyVersion.advice().unwrap().contains("公開鍵を再発行して設定してください"));
    }
}

/// The authentication failure codes kept on a store (`YahooError::auth_code`), in words. The
/// code is shown beside them, small, for support.
pub fn auth_error_label(code: &str) -> &'static str {
    match code {
        "invalid_grant" => "Yahoo!連携の有効期限切れ、または取り消し",
        "px-04102" => "Yahoo!のAPIセッション切れ",
        "invalid_client" => "Client ID またはシークレットの誤り",
        "insufficient_scope" => "アプリケーションにストアAPIの権限がない",
        "px-04306" => "このサーバーの送信元IPアドレスが未登録",
        "px-04303" => "このストアを操作する権限がない",
        "px-04304" => "連携したYahoo!アカウントとストアアカウントの不一致",
        _ => "認証の失敗",
    }
}

#[cfg(test)]
mod auth_error_tests {
    #[test]
    fn every_code_a_store_keeps_has_words() {
        use crate::yahoo::error::YahooError;
        for e in [
            YahooError::SessionCap,
            YahooError::InvalidGrant,
            YahooError::InvalidClient,
            YahooError::InsufficientScope,
            YahooError::IpNotAllowed,
            YahooError::NotPermitted(String::new()),
            YahooError::WrongSeller,
        ] {
            let code = e.auth_code().unwrap();
            assert_ne!(super::auth_error_label(code), "認証の失敗", "{code}");
        }
    }
}
