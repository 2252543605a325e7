//! Where a buyer follows a parcel, and which carrier Yahoo is told (shipping-day.md §1.5, §2).

use super::Carrier;

/// The carrier's tracking page for a number (hyphens and spaces dropped). Yahoo's ShipUrl takes
/// at most 100 characters; every pattern fits with a number of up to 13 digits.
pub fn tracking_url(carrier: Carrier, number: &str) -> String {
    let number: String = number.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    // Numbers are digits; anything else is escaped rather than trusted into a URL.
    let number: String = ::url::form_urlencoded::byte_serialize(number.as_bytes()).collect();
    match carrier {
        Carrier::Yamato => format!("https://member.kms.kuronekoyamato.co.jp/parcel/detail?pno={number}"),
        Carrier::Sagawa => format!("https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo={number}"),
        // §1.5's form with `searchKind=S002&` is 112 characters with 12 digits, over Yahoo's
        // 100; public code also calls the direct search without a kind (unverified which kinds
        // it then searches; Click Post and ゆうパック numbers are what we send).
        Carrier::JapanPost => {
            format!("https://trackings.post.japanpost.jp/services/srv/search/direct?locale=ja&reqCodeNo1={number}")
        }
    }
}

/// Yahoo's ShipCompanyCode for Japan Post when the store has not set one: 1000 その他, because
/// whether Yahoo's 1003 means 日本郵便 (as in Rakuten's list) is unconfirmed.
pub const JAPAN_POST_SHIP_COMPANY_CODE: &str = "1000";

/// Yahoo's ShipCompanyCode: 1001 ヤマト運輸 and 1002 佐川急便 are confirmed; Japan Post's is
/// the store's setting (`japan_post`, [`JAPAN_POST_SHIP_COMPANY_CODE`] by default).
pub fn yahoo_ship_company_code(carrier: Carrier, japan_post: &str) -> &str {
    match carrier {
        Carrier::Yamato => "1001",
        Carrier::Sagawa => "1002",
        Carrier::JapanPost => japan_post,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fit_yahoo_ship_url() {
        for carrier in Carrier::ALL {
            for number in ["490714955706", "4907-1495-5706", "1234567890123"] {
                let url = tracking_url(carrier, number);
                assert!(url.len() <= 100, "{url} is {} characters", url.len());
                assert!(url.ends_with(&number.replace('-', "")), "{url}");
            }
        }
        assert_eq!(
            tracking_url(Carrier::Yamato, "4907-1495-5706"),
            "https://member.kms.kuronekoyamato.co.jp/parcel/detail?pno=490714955706"
        );
        assert_eq!(
            tracking_url(Carrier::Sagawa, "123456789013"),
            "https://k2k.sagawa-exp.co.jp/p/web/okurijosearch.do?okurijoNo=123456789013"
        );
        assert_eq!(
            tracking_url(Carrier::JapanPost, "987654321091"),
            "https://trackings.post.japanpost.jp/services/srv/search/direct?locale=ja&reqCodeNo1=987654321091"
        );
        assert_eq!(
            tracking_url(Carrier::Yamato, "1&a=b"),
            "https://member.kms.kuronekoyamato.co.jp/parcel/detail?pno=1%26a%3Db"
        );
    }

    #[test]
    fn ship_company_codes() {
        assert_eq!(yahoo_ship_company_code(Carrier::Yamato, JAPAN_POST_SHIP_COMPANY_CODE), "1001");
        assert_eq!(yahoo_ship_company_code(Carrier::Sagawa, JAPAN_POST_SHIP_COMPANY_CODE), "1002");
        assert_eq!(yahoo_ship_company_code(Carrier::JapanPost, JAPAN_POST_SHIP_COMPANY_CODE), "1000");
        assert_eq!(yahoo_ship_company_code(Carrier::JapanPost, "1003"), "1003");
    }
}
