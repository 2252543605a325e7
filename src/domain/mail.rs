//! Mail (issue 29, shipping-day.md §4): the kinds of message, what each says, and how a failed
//! send is retried. Pure: the mail job and the events that queue mail call these.

use std::time::Duration;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// 「テストメール」 from the 送信メール page.
    Test,
    /// A held order released at Yahoo (FraudHoldStatus 1 → 2): ship it.
    HoldReleased,
    /// A held order confirmed as fraud (1 → 3): cancel it.
    HoldConfirmed,
    /// A password-reset link (asked for on パスワードを忘れた, or issued by support): its body
    /// is a secret, sealed at rest and never shown on a page.
    PasswordReset,
}

impl MailKind {
    pub const ALL: [MailKind; 4] =
        [MailKind::Test, MailKind::HoldReleased, MailKind::HoldConfirmed, MailKind::PasswordReset];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Test => "test",
            MailKind::HoldReleased => "hold_released",
            MailKind::HoldConfirmed => "hold_confirmed",
            MailKind::PasswordReset => "password_reset",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind as the 送信メール page names it.
    pub fn label_of(s: &str) -> &'static str {
        match MailKind::parse(s) {
            Some(MailKind::Test) => "テストメール",
            Some(MailKind::HoldReleased) => "不正保留の解除",
            Some(MailKind::HoldConfirmed) => "不正利用の確定",
            Some(MailKind::PasswordReset) => "パスワード再設定",
            None => "その他",
        }
    }
}

/// Orders a notification names one by one; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// The orders a notification covers: one line each (with its link), at most [`MAX_LISTED`],
/// then 「他N件」.
pub fn order_lines(orders: &[(String, String)]) -> String {
    let mut out: Vec<String> = orders.iter().take(MAX_LISTED).map(|(id, url)| format!("・{id}\n  {url}")).collect();
    if orders.len() > MAX_LISTED {
        out.push(format!("他{}件", orders.len() - MAX_LISTED));
    }
    out.join("\n")
}

/// Subject and body of a fraud-hold notification for one store's orders. `orders` are
/// (order ID, link to the order's page).
pub fn hold_notice(kind: MailKind, store: &str, orders: &[(String, String)]) -> (String, String) {
    let n = orders.len();
    let (subject, what) = match kind {
        MailKind::HoldConfirmed => (
            format!("【{store}】不正利用が確定した注文が{n}件あります（キャンセルしてください）"),
            "Yahoo!が次の注文を不正利用と確定しました（ルール悪用確定）。発送せず、キャンセルしてください。\n\
             キャンセルは注文のページから行えます（不正保留中の注文はキャンセルだけができます）。",
        ),
        _ => (
            format!("【{store}】不正保留が解除された注文が{n}件あります（出荷できます）"),
            "Yahoo!が次の注文の不正保留を解除しました（ルール保留解除）。ステータスを変えて出荷できます。",
        ),
    };
    let body = format!(
        "{what}\n\nストア: {store}\n{}\n\n――\nオーダーデスクからの自動送信です。通知の設定は送信メールのページで確かめられます。\n",
        order_lines(orders)
    );
    (subject, body)
}

/// Subject and body of a password-reset mail: the link, how long it works, and what to do if
/// the reader did not ask for it.
pub fn password_reset(link: &str, valid_minutes: i64, by_support: bool) -> (String, String) {
    let why = if by_support {
        "サポート担当者が、あなたのアカウントのパスワード再設定リンクを発行しました。"
    } else {
        "パスワードの再設定を受け付けました。"
    };
    (
        "オーダーデスク パスワードの再設定".to_owned(),
        format!(
            "{why}\n次のリンクを開いて、新しいパスワードを設定してください（{valid_minutes}分間、1回だけ使えます）。\n\n{link}\n\n心当たりがない場合は、このメールを破棄してください。パスワードは変わりません。\n"
        ),
    )
}

/// Subject and body of the test mail.
pub fn test_mail(account: &str, transport: &str) -> (String, String) {
    (
        "オーダーデスク テストメール".to_owned(),
        format!(
            "{account} 様\n\nオーダーデスクからのテストメールです。このメールが届いていれば、メールの送信設定（{transport}）は正しく動いています。\n\n日本語の件名と本文、長い行の折り返し、記号（〒・①・髙・﨑）が正しく表示されるかも確かめてください。\n"
        ),
    )
}

/// Sends a message is tried at most; after that it is failed for good (shown on 送信メール and
/// in /admin) until someone sends it again.
pub const MAX_ATTEMPTS: i64 = 8;

/// The pause before attempt `attempts + 1`: 30 s, doubling, at most an hour.
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 8) - 1).unwrap_or(0);
    Duration::from_secs((30u64 << exp).min(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storm_names_twenty_orders_and_counts_the_rest() {
        let orders: Vec<(String, String)> =
            (0..25).map(|i| (format!("store-{i}"), format!("http://x/orders/{i}"))).collect();
        let (subject, body) = hold_notice(MailKind::HoldReleased, "本店", &orders);
        assert!(subject.contains("【本店】") && subject.contains("25件"), "{subject}");
        assert!(body.contains("store-19") && !body.contains("store-20"));
        assert!(body.contains("他5件"));
        let (subject, body) = hold_notice(MailKind::HoldConfirmed, "本店", &orders[..1]);
        assert!(subject.contains("キャンセル") && body.contains("http://x/orders/0"));
        assert!(!body.contains("他"));
    }

    #[test]
    fn kinds_and_backoff() {
        for k in MailKind::ALL {
            assert_eq!(MailKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(MailKind::label_of("nope"), "その他");
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(20), Duration::from_secs(3600));
    }
}
