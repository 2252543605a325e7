//! Notifications (issue 29, shipping-day.md §4.3): who wants which kind, for which store and how
//! (a user's [`Prefs`]), when the watcher raises a notice (the warning steps), when a folded
//! mail or the daily digest is due, and what each notification mail says. Pure: the notifier
//! (`notify`) and the 通知の設定 page call these.
//!
//! A notice names orders by their ID, stores by their name and counts things; it never holds a
//! buyer's name, address, phone or mail address, so a masked staff member's mail is the same
//! text as anyone's.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

use super::{StoreId, mail::MailKind};

/// How a user gets one kind of notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A mail at once (folded: at most one per kind per store per hour).
    Immediate,
    /// In the daily digest.
    Digest,
    Off,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Immediate, Mode::Digest, Mode::Off];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Immediate => "immediate",
            Mode::Digest => "digest",
            Mode::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Mode::Immediate => "すぐに",
            Mode::Digest => "日次のお知らせで",
            Mode::Off => "受け取らない",
        }
    }
}

/// The kinds of notice the watcher and the import raise, as the settings page lists them.
pub const NOTICE_KINDS: [MailKind; 9] = [
    MailKind::HoldReleased,
    MailKind::HoldConfirmed,
    MailKind::ImportFailing,
    MailKind::ImportRecovered,
    MailKind::AuthExpiring,
    MailKind::AuthExpired,
    MailKind::KeyExpiring,
    MailKind::PushFailed,
    MailKind::StockFailing,
];

/// The daily summary's key among a user's choices (it is only ever daily: on or off).
pub const DAILY_SUMMARY: &str = "daily_summary";

/// What a kind's choice means, for the settings page.
pub fn hint(kind: MailKind) -> &'static str {
    match kind {
        MailKind::HoldReleased => "Yahoo!が不正保留を解除した注文（出荷できます）",
        MailKind::HoldConfirmed => "Yahoo!が不正利用と確定した注文（キャンセルしてください）",
        MailKind::ImportFailing => "自動取込が3回続けて失敗したとき",
        MailKind::ImportRecovered => "失敗が続いた自動取込が再び成功したとき",
        MailKind::AuthExpiring => "Yahoo!の認証の期限の7日・3日・1日前",
        MailKind::AuthExpired => "Yahoo!の認証の期限が切れたとき",
        MailKind::KeyExpiring => "公開鍵の期限の30日・7日・1日前と期限切れ",
        MailKind::PushFailed => "ステータスや出荷の反映がYahoo!に受け付けられなかったとき",
        MailKind::StockFailing => "在庫数をYahoo!に反映できなかったとき",
        _ => "",
    }
}

/// A user's choices. Kinds missing from `modes` take the role's default: owners get every kind
/// at once (and the daily summary), staff get nothing until they choose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prefs {
    pub modes: BTreeMap<String, Mode>,
    /// The stores chosen; `None`: every store the user can see.
    pub stores: Option<Vec<StoreId>>,
}

impl Prefs {
    /// From the stored columns; anything unreadable counts as not chosen.
    pub fn from_stored(modes: &str, stores: Option<&str>) -> Prefs {
        Prefs {
            modes: serde_json::from_str(modes).unwrap_or_default(),
            stores: stores
                .and_then(|s| serde_json::from_str::<Vec<i64>>(s).ok())
                .map(|v| v.into_iter().map(StoreId).collect()),
        }
    }

    pub fn modes_json(&self) -> String {
        serde_json::to_string(&self.modes).unwrap_or_else(|_| "{}".into())
    }

    pub fn stores_json(&self) -> Option<String> {
        self.stores
            .as_ref()
            .map(|s| serde_json::to_string(&s.iter().map(|s| s.0).collect::<Vec<_>>()).unwrap_or_default())
    }

    /// How the user gets `key` (a [`MailKind`]'s name or [`DAILY_SUMMARY`]).
    pub fn mode(&self, is_owner: bool, key: &str) -> Mode {
        self.modes.get(key).copied().unwrap_or_else(|| default_mode(is_owner, key))
    }

    pub fn covers(&self, store: StoreId) -> bool {
        self.stores.as_ref().is_none_or(|s| s.contains(&store))
    }
}

pub fn default_mode(is_owner: bool, key: &str) -> Mode {
    match (is_owner, key) {
        (false, _) => Mode::Off,
        (true, DAILY_SUMMARY) => Mode::Digest,
        (true, _) => Mode::Immediate,
    }
}

/// A user as the fan-out sees them.
#[derive(Clone, Debug)]
pub struct Reader {
    pub is_owner: bool,
    /// The stores the user may see (`None`: all of the account's).
    pub scope: Option<Vec<StoreId>>,
    pub prefs: Prefs,
}

impl Reader {
    /// How this user gets a notice of `kind` about `store`; `None` when not at all (the kind is
    /// off, or the store is outside their scope or their choice).
    pub fn wants(&self, kind: MailKind, store: Option<StoreId>) -> Option<Mode> {
        if let Some(store) = store
            && (self.scope.as_ref().is_some_and(|s| !s.contains(&store)) || !self.prefs.covers(store))
        {
            return None;
        }
        match self.prefs.mode(self.is_owner, kind.as_str()) {
            Mode::Off => None,
            m => Some(m),
        }
    }

    pub fn wants_summary(&self) -> bool {
        self.prefs.mode(self.is_owner, DAILY_SUMMARY) != Mode::Off
    }

    /// The stores the daily summary covers, of `all` the account's.
    pub fn summary_stores(&self, all: &[StoreId]) -> Vec<StoreId> {
        all.iter()
            .copied()
            .filter(|s| self.scope.as_ref().is_none_or(|scope| scope.contains(s)) && self.prefs.covers(*s))
            .collect()
    }
}

/// A storm is folded: one mail per kind per store per user within this long.
pub fn fold_window() -> Duration {
    Duration::hours(1)
}

/// When a user's next mail of a kind for a store may go, given when the last one went.
pub fn next_fold_at(last_sent: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    last_sent.map(|t| t + fold_window())
}

/// The daily digest goes at this hour, Japan time.
pub const DIGEST_HOUR_JST: u32 = 8;

/// The day whose digest is due at `now`: today (Japan time) from 8:00, yesterday before.
pub fn digest_day(now: DateTime<Utc>) -> NaiveDate {
    let local = now.with_timezone(&super::jst::offset());
    let today = local.date_naive();
    if local.hour() >= DIGEST_HOUR_JST { today } else { today.pred_opt().unwrap_or(today) }
}

/// When the digest of `day` is due.
pub fn digest_time(day: NaiveDate) -> DateTime<Utc> {
    let local = day.and_hms_opt(DIGEST_HOUR_JST, 0, 0).unwrap_or_default();
    (local - Duration::hours(9)).and_utc()
}

/// Warning steps, in days ahead: the authorization's and the public key's.
pub const AUTH_STEPS: [i64; 3] = [7, 3, 1];
pub const KEY_STEPS: [i64; 3] = [30, 7, 1];

/// The tightest step `days_left` has reached (a store found at 2 days left warns once, as the
/// 3-day step, not as 7 and 3); `None` when further away than the first step.
pub fn warning_step(days_left: i64, steps: &[i64]) -> Option<i64> {
    steps.iter().copied().filter(|d| days_left <= *d).min()
}

/// Whole days left before `until`, rounded up (1 hour left is 1 day).
pub fn days_left(until: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let secs = (until - now).num_seconds();
    if secs <= 0 { 0 } else { (secs + 86_399) / 86_400 }
}

/// Failed automatic import runs in a row that make a notice.
pub const IMPORT_FAILS_IN_A_ROW: usize = 3;

/// Notices a mail names one by one; the rest are counted.
pub const MAX_LISTED: usize = 20;

/// One notice in a mail: its line and its link (empty: none).
pub type Item = (String, String);

/// The items a mail covers: one line each (with its link), at most [`MAX_LISTED`], then 「他N件」.
pub fn item_lines(items: &[Item]) -> String {
    let mut out: Vec<String> = items
        .iter()
        .take(MAX_LISTED)
        .map(|(line, link)| if link.is_empty() { format!("・{line}") } else { format!("・{line}\n  {link}") })
        .collect();
    if items.len() > MAX_LISTED {
        out.push(format!("他{}件", items.len() - MAX_LISTED));
    }
    out.join("\n")
}

/// What a kind's mail says first, and its subject for `n` items of store `store`.
fn lead(kind: MailKind, store: &str, n: usize) -> (String, &'static str) {
    match kind {
        MailKind::HoldConfirmed => (
            format!("【{store}】不正利用が確定した注文が{n}件あります（キャンセルしてください）"),
            "Yahoo!が次の注文を不正利用と確定しました（ルール悪用確定）。発送せず、キャンセルしてください。\n\
             キャンセルは注文のページから行えます（不正保留中の注文はキャンセルだけができます）。",
        ),
        MailKind::HoldReleased => (
            format!("【{store}】不正保留が解除された注文が{n}件あります（出荷できます）"),
            "Yahoo!が次の注文の不正保留を解除しました（ルール保留解除）。ステータスを変えて出荷できます。",
        ),
        MailKind::ImportFailing => (
            format!("【{store}】自動取込が続けて失敗しています"),
            "注文の自動取込が続けて失敗しています。新しい注文が取り込まれていない可能性があります。\n\
             取込のページで理由を確かめてください。回復したらお知らせします。",
        ),
        MailKind::ImportRecovered => {
            (format!("【{store}】自動取込が回復しました"), "失敗が続いていた注文の自動取込が、再び成功しました。")
        }
        MailKind::AuthExpiring => (
            format!("【{store}】Yahoo!の認証の期限が近づいています"),
            "Yahoo!の認証の期限が近づいています。期限が切れると自動取込とYahoo!への反映が止まります。\n\
             ストアのページから再認証してください（オーナーが行えます）。",
        ),
        MailKind::AuthExpired => (
            format!("【{store}】Yahoo!の認証の期限が切れました"),
            "Yahoo!の認証の期限が切れました。自動取込とYahoo!への反映が止まっています。\n\
             ストアのページから再認証してください（オーナーが行えます）。",
        ),
        MailKind::KeyExpiring => (
            format!("【{store}】公開鍵の期限のお知らせ"),
            "ストアクリエイターProで発行した公開鍵の期限が近づいています（または切れました）。\n\
             ストアクリエイターProで公開鍵を再発行し、ストアの「公開鍵を設定」で新しい公開鍵とバージョンを設定してください。",
        ),
        MailKind::PushFailed => (
            format!("【{store}】Yahoo!への反映に失敗した注文が{n}件あります"),
            "次の注文の変更（ステータス・出荷）がYahoo!に受け付けられませんでした。\n\
             注文のページで理由を確かめ、必要なら再送してください。",
        ),
        MailKind::StockFailing => (
            format!("【{store}】在庫連携に失敗した商品が{n}件あります"),
            "次の商品の在庫数をYahoo!に反映できませんでした。在庫のページで理由を確かめてください。",
        ),
        _ => (format!("【{store}】お知らせ"), ""),
    }
}

const FOOTER: &str = "――\nオーダーデスクからの自動送信です。";

/// Subject and body of one kind's mail for one store's notices. `settings` is the link to the
/// reader's 通知の設定.
pub fn notice_mail(kind: MailKind, store: &str, items: &[Item], settings: &str) -> (String, String) {
    let (subject, what) = lead(kind, store, items.len());
    let store_line = if store.is_empty() { String::new() } else { format!("ストア: {store}\n") };
    let body = format!(
        "{what}\n\n{store_line}{}\n\n{FOOTER}\n受け取る通知は「通知の設定」で変えられます: {settings}\n",
        item_lines(items)
    );
    (subject, body)
}

/// One store's figures in the daily summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreDay {
    pub store: String,
    /// Orders imported in the last 24 hours.
    pub new_orders: i64,
    /// Orders under fraud review now.
    pub held: i64,
    /// Pushes to Yahoo failed and not yet sent again.
    pub failed_pushes: i64,
}

/// One section of the digest: a kind's notices for one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub kind: MailKind,
    pub store: String,
    pub items: Vec<Item>,
}

/// Subject and body of the daily digest of `day`; `summary` when the reader takes it.
pub fn digest_mail(
    day: NaiveDate,
    summary: Option<&[StoreDay]>,
    sections: &[Section],
    settings: &str,
) -> (String, String) {
    let mut body = format!("{}のお知らせです。\n", day.format("%Y年%m月%d日"));
    if let Some(stores) = summary {
        body.push_str("\n■ 前日からの状況（24時間）\n");
        if stores.is_empty() {
            body.push_str("ストアがありません。\n");
        }
        for s in stores {
            body.push_str(&format!(
                "・{}: 新しい注文 {}件 / 不正保留中 {}件 / Yahoo!への反映の失敗 {}件\n",
                s.store, s.new_orders, s.held, s.failed_pushes
            ));
        }
    }
    for s in sections {
        let store = if s.store.is_empty() { String::new() } else { format!("【{}】", s.store) };
        body.push_str(&format!("\n■ {store}{}（{}件）\n{}\n", s.kind.label(), s.items.len(), item_lines(&s.items)));
    }
    body.push_str(&format!("\n{FOOTER}\n受け取る通知は「通知の設定」で変えられます: {settings}\n"));
    (format!("【オーダーデスク】日次のお知らせ（{}）", day.format("%Y-%m-%d")), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n).map(|i| (format!("store-{i}"), format!("http://x/orders/{i}"))).collect()
    }

    #[test]
    fn a_storm_names_twenty_and_counts_the_rest() {
        let (subject, body) = notice_mail(MailKind::HoldReleased, "本店", &items(25), "http://x/account/notifications");
        assert!(subject.contains("【本店】") && subject.contains("25件"), "{subject}");
        assert!(body.contains("store-19") && !body.contains("store-20"));
        assert!(body.contains("他5件") && body.contains("http://x/account/notifications"));
        let (subject, body) = notice_mail(MailKind::HoldConfirmed, "本店", &items(1), "s");
        assert!(subject.contains("キャンセル") && body.contains("http://x/orders/0"));
        assert!(!body.contains("他"));
        for kind in NOTICE_KINDS {
            let (subject, body) = notice_mail(kind, "本店", &items(2), "s");
            assert!(subject.starts_with("【本店】") && !body.starts_with('\n'), "{kind:?}: {subject}");
            assert!(!hint(kind).is_empty());
        }
    }

    #[test]
    fn defaults_owners_everything_staff_nothing() {
        let owner = Reader { is_owner: true, scope: None, prefs: Prefs::default() };
        let staff = Reader { is_owner: false, scope: Some(vec![StoreId(1)]), prefs: Prefs::default() };
        for kind in NOTICE_KINDS {
            assert_eq!(owner.wants(kind, Some(StoreId(9))), Some(Mode::Immediate));
            assert_eq!(staff.wants(kind, Some(StoreId(1))), None);
        }
        assert!(owner.wants_summary() && !staff.wants_summary());
        // Staff choose; their scope still applies.
        let mut prefs = Prefs::default();
        prefs.modes.insert(MailKind::HoldReleased.as_str().into(), Mode::Digest);
        let staff = Reader { prefs, ..staff };
        assert_eq!(staff.wants(MailKind::HoldReleased, Some(StoreId(1))), Some(Mode::Digest));
        assert_eq!(staff.wants(MailKind::HoldReleased, Some(StoreId(2))), None, "outside the staff scope");
        assert_eq!(staff.wants(MailKind::HoldConfirmed, Some(StoreId(1))), None);
        // An owner narrows to some stores and turns a kind off.
        let mut prefs = Prefs { stores: Some(vec![StoreId(3)]), ..Prefs::default() };
        prefs.modes.insert(MailKind::PushFailed.as_str().into(), Mode::Off);
        let owner = Reader { prefs, ..owner };
        assert_eq!(owner.wants(MailKind::HoldReleased, Some(StoreId(3))), Some(Mode::Immediate));
        assert_eq!(owner.wants(MailKind::HoldReleased, Some(StoreId(4))), None);
        assert_eq!(owner.wants(MailKind::PushFailed, Some(StoreId(3))), None);
        assert_eq!(owner.summary_stores(&[StoreId(3), StoreId(4)]), vec![StoreId(3)]);
        // Stored and read back; garbage is "not chosen".
        let back = Prefs::from_stored(&owner.prefs.modes_json(), owner.prefs.stores_json().as_deref());
        assert_eq!(back, owner.prefs);
        assert_eq!(Prefs::from_stored("nonsense", Some("[")), Prefs::default());
    }

    #[test]
    fn steps_fold_and_digest_times() {
        assert_eq!(warning_step(10, &AUTH_STEPS), None);
        assert_eq!(warning_step(7, &AUTH_STEPS), Some(7));
        assert_eq!(warning_step(2, &AUTH_STEPS), Some(3));
        assert_eq!(warning_step(1, &AUTH_STEPS), Some(1));
        assert_eq!(warning_step(0, &KEY_STEPS), Some(1));
        assert_eq!(warning_step(29, &KEY_STEPS), Some(30));
        let now = DateTime::parse_from_rfc3339("2026-12-07T00:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(days_left(now + Duration::hours(1), now), 1);
        assert_eq!(days_left(now + Duration::days(3), now), 3);
        assert_eq!(days_left(now - Duration::hours(1), now), 0);
        assert_eq!(next_fold_at(Some(now)), Some(now + Duration::hours(1)));
        // 2026-12-07 09:00 JST is past 8:00: today's digest; 07:00 JST is still yesterday's.
        assert_eq!(digest_day(now), NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
        assert_eq!(digest_day(now - Duration::hours(2)), NaiveDate::from_ymd_opt(2026, 12, 6).unwrap());
        assert_eq!(digest_time(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()), now - Duration::hours(1));
    }

    #[test]
    fn the_digest_has_the_summary_and_the_sections() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let stores = [StoreDay { store: "本店".into(), new_orders: 12, held: 1, failed_pushes: 0 }];
        let sections = [Section { kind: MailKind::StockFailing, store: "本店".into(), items: items(3) }];
        let (subject, body) = digest_mail(day, Some(&stores), &sections, "s");
        assert!(subject.contains("2026-12-07"));
        assert!(body.contains("本店: 新しい注文 12件 / 不正保留中 1件"), "{body}");
        assert!(body.contains("■ 【本店】在庫連携の失敗（3件）"), "{body}");
        let (_, body) = digest_mail(day, None, &sections, "s");
        assert!(!body.contains("新しい注文"));
    }
}
