//! Mail (issue 29, shipping-day.md §4): the kinds of message, what each says, and how a failed
//! send is retried. Pure: the mail job and the events that queue mail call these.

use std::time::Duration;

/// What a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailKind {
    /// 「テストメール」 from the 送信メール page.
    Test,
    /// A held order released at Yahoo (FraudHoldStatus 1 → 2): ship it.
    HoldReleased,
    /// A held order confirmed as fraud (1 → 3): cancel it.
    HoldConfirmed,
    /// A store's automatic import failed several runs in a row.
    ImportFailing,
    /// …and works again.
    ImportRecovered,
    /// A store's authorization runs out in 7, 3 or 1 days.
    AuthExpiring,
    /// …and has run out.
    AuthExpired,
    /// A store's public key runs out in 30, 7 or 1 days (or has).
    KeyExpiring,
    /// A change pushed to Yahoo failed for good.
    PushFailed,
    /// Stock sync to Yahoo failing for some item codes.
    StockFailing,
    /// The daily digest: the day's summary and the notices a user chose to get once a day.
    Digest,
    /// A password-reset link (asked for on パスワードを忘れた, or issued by support): its body
    /// is a secret, sealed at rest and never shown on a page.
    PasswordReset,
    /// 発送連絡 to a buyer, when an order's tracking number is set.
    ShipNotice,
    /// A store's free message to a buyer, sent from the order's page.
    BuyerMessage,
    /// About the reader's account itself (someone signed up again with its address).
    AccountNotice,
    /// An owner added a user and invited them by mail to set their own password: its body
    /// holds the link, a secret like a reset link's.
    Invitation,
}

impl MailKind {
    pub const ALL: [MailKind; 16] = [
        MailKind::Test,
        MailKind::HoldReleased,
        MailKind::HoldConfirmed,
        MailKind::ImportFailing,
        MailKind::ImportRecovered,
        MailKind::AuthExpiring,
        MailKind::AuthExpired,
        MailKind::KeyExpiring,
        MailKind::PushFailed,
        MailKind::StockFailing,
        MailKind::Digest,
        MailKind::PasswordReset,
        MailKind::ShipNotice,
        MailKind::BuyerMessage,
        MailKind::AccountNotice,
        MailKind::Invitation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Test => "test",
            MailKind::HoldReleased => "hold_released",
            MailKind::HoldConfirmed => "hold_confirmed",
            MailKind::ImportFailing => "import_failing",
            MailKind::ImportRecovered => "import_recovered",
            MailKind::AuthExpiring => "auth_expiring",
            MailKind::AuthExpired => "auth_expired",
            MailKind::KeyExpiring => "key_expiring",
            MailKind::PushFailed => "push_failed",
            MailKind::StockFailing => "stock_failing",
            MailKind::Digest => "digest",
            MailKind::PasswordReset => "password_reset",
            MailKind::ShipNotice => "ship_notice",
            MailKind::BuyerMessage => "buyer_message",
            MailKind::AccountNotice => "account_notice",
            MailKind::Invitation => "invitation",
        }
    }

    pub fn parse(s: &str) -> Option<MailKind> {
        MailKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind as pages name it.
    pub fn label(self) -> &'static str {
        match self {
            MailKind::Test => "テストメール",
            MailKind::HoldReleased => "不正保留の解除",
            MailKind::HoldConfirmed => "不正利用の確定",
            MailKind::ImportFailing => "自動取込の失敗",
            MailKind::ImportRecovered => "自動取込の回復",
            MailKind::AuthExpiring => "認証の期限が近い",
            MailKind::AuthExpired => "認証の期限切れ",
            MailKind::KeyExpiring => "公開鍵の期限",
            MailKind::PushFailed => "Yahoo!への反映の失敗",
            MailKind::StockFailing => "在庫連携の失敗",
            MailKind::Digest => "日次のお知らせ",
            MailKind::PasswordReset => "パスワード再設定",
            MailKind::ShipNotice => "発送連絡（お客様）",
            MailKind::BuyerMessage => "お客様へのメール",
            MailKind::AccountNotice => "アカウントのお知らせ",
            MailKind::Invitation => "ユーザーの招待",
        }
    }

    pub fn label_of(s: &str) -> &'static str {
        MailKind::parse(s).map_or("その他", MailKind::label)
    }

    /// A mail to a buyer (its body holds the buyer's personal data).
    pub fn to_buyer(self) -> bool {
        matches!(self, MailKind::ShipNotice | MailKind::BuyerMessage)
    }
}

/// Subject and body of an invitation: who invited the reader to which account, the link to
/// set their own password, how long it works, and what to do if it was not meant for them.
pub fn invitation(account: &str, inviter: &str, link: &str, valid_hours: i64) -> (String, String) {
    let subject = format!("オーダーデスク {account} への招待");
    let body = format!(
        "{inviter} さんが、オーダーデスクの「{account}」にあなたをユーザーとして追加しました。\n\
         次のリンクを開き、自分のパスワードを決めてください（{valid_hours}時間有効・1回だけ使えます）。\n\n\
         {link}\n\n\
         パスワードを決めると、このメールアドレスとそのパスワードでログインできます。\n\
         期限が切れたときは、{inviter} さんに招待のし直しを依頼してください。\n\
         心当たりがない場合は、このメールを破棄してください（何も登録されません）。\n"
    );
    (subject, body)
}

/// Why a password-reset link is mailed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetWhy {
    /// The owner asked on パスワードを忘れた.
    Forgot,
    /// Support issued it for the owner.
    Support,
    /// Someone signed up with an address that already has an account: its owner is told so,
    /// with a way back in.
    SignUpAgain,
}

/// Subject and body of a password-reset mail: the link, how long it works, and what to do if
/// the reader did not ask for it.
pub fn password_reset(link: &str, valid_minutes: i64, why: ResetWhy) -> (String, String) {
    let signin = link.split("/password-reset/").next().map(|base| format!("{base}/signin")).unwrap_or_default();
    let (subject, lead) = match why {
        ResetWhy::Forgot => ("オーダーデスク パスワードの再設定", "パスワードの再設定を受け付けました。\n".to_owned()),
        ResetWhy::Support => (
            "オーダーデスク パスワードの再設定",
            "サポート担当者が、あなたのアカウントのパスワード再設定リンクを発行しました。\n".to_owned(),
        ),
        ResetWhy::SignUpAgain => (
            "オーダーデスク このメールアドレスはすでに登録されています",
            format!(
                "このメールアドレスで新規登録のお申し込みがありましたが、このアドレスにはすでにオーダーデスクのアカウントがあります（新しいアカウントは作っていません）。\n\nこれまでのアカウントにログインしてください: {signin}\n\nパスワードを忘れた場合は、"
            ),
        ),
    };
    (
        subject.to_owned(),
        format!(
            "{lead}次のリンクを開いて、新しいパスワードを設定してください（{valid_minutes}分間、1回だけ使えます）。\n\n{link}\n\n心当たりがない場合は、このメールを破棄してください。パスワードは変わりません。\n"
        ),
    )
}

/// The note to a staff member's address when someone signs up with it: it has an account
/// already, and its owner resets a staff password.
pub fn staff_signed_up_again(signin: &str) -> (String, String) {
    (
        "オーダーデスク このメールアドレスはすでに登録されています".to_owned(),
        format!(
            "このメールアドレスで新規登録のお申し込みがありましたが、このアドレスはすでにオーダーデスクのアカウントのスタッフとして登録されています（新しいアカウントは作っていません）。\n\nこれまでのアカウントにログインしてください: {signin}\nパスワードを忘れた場合は、アカウントのオーナーに再設定を依頼してください。\n\n心当たりがない場合は、このメールを破棄してください。\n"
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
    fn an_invitation_names_the_account_the_inviter_and_the_link() {
        let (subject, body) = invitation("商店", "店長", "https://desk.example/password-reset/abc", 72);
        assert!(subject.contains("商店"));
        assert!(body.contains("店長 さん") && body.contains("https://desk.example/password-reset/abc"));
        assert!(body.contains("72時間有効"));
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
