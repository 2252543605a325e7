//! Diagnosis of authentication problems (product.md §7) and the three clocks and ahead-of-time
//! warnings (§3), from what the app knows about a store. Pure: the store page, the dashboard
//! and the support view all call [`diagnose`] and [`clocks`].

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::authorize::AuthorizeStatus;

/// What the app knows about a store's connection.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub connected: bool,
    pub authorized_at: Option<DateTime<Utc>>,
    pub has_public_key: bool,
    pub public_key_version: Option<i64>,
    pub public_key_expires_on: Option<NaiveDate>,
    pub last_authorize_status: Option<String>,
    pub last_auth_error: Option<String>,
    pub clock_offset_ms: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Reauthorize,
    SetPublicKey,
}

/// One thing to tell the merchant: a headline, what to do, and the button that does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub title: String,
    pub advice: String,
    pub action: Option<Action>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Finding {
    fn new(severity: Severity, title: impl Into<String>, advice: impl Into<String>, action: Option<Action>) -> Finding {
        Finding { severity, title: title.into(), advice: advice.into(), action }
    }

    pub fn css_class(&self) -> &'static str {
        match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

pub const AUTH_LIFETIME: Duration = Duration::days(28);
pub const SHORT_SESSION: Duration = Duration::hours(12);

fn status(f: &Facts) -> Option<AuthorizeStatus> {
    f.last_authorize_status.as_deref().map(AuthorizeStatus::parse)
}

/// Whether calls run in the 12-hour regime (public-key auth not passing).
pub fn short_regime(f: &Facts) -> bool {
    f.connected && status(f).is_some_and(|s| !s.is_authorized())
}

/// The key's own problem, if the app can see one without asking Yahoo.
fn key_problem(f: &Facts, today: NaiveDate) -> Option<Finding> {
    match (f.has_public_key, f.public_key_version) {
        (false, None) => Some(Finding::new(
            Severity::Error,
            "公開鍵と公開鍵バージョンが設定されていません",
            "公開鍵認証が行われないため、認証から12時間でYahoo!のAPIが使えなくなります。公開鍵と公開鍵バージョンを設定してください。",
            Some(Action::SetPublicKey),
        )),
        (true, None) | (false, Some(_)) => Some(Finding::new(
            Severity::Error,
            "公開鍵と公開鍵バージョンの片方だけが設定されています",
            "公開鍵と公開鍵バージョンは両方設定してください。",
            Some(Action::SetPublicKey),
        )),
        _ if f.public_key_expires_on.is_some_and(|d| d < today) => Some(Finding::new(
            Severity::Error,
            "公開鍵の有効期限が切れています",
            "公開鍵を再発行して設定してください。",
            Some(Action::SetPublicKey),
        )),
        _ => None,
    }
}

/// Which cause applies, most specific first.
pub fn diagnose(f: &Facts, now: DateTime<Utc>) -> Vec<Finding> {
    let today = super::jst::today(now);
    let mut out = Vec::new();
    match f.last_auth_error.as_deref() {
        Some("invalid_grant") => out.push(Finding::new(
            Severity::Error,
            "Yahoo!連携の有効期限が切れたか、取り消されました",
            "再認証してください。「Yahoo!と再連携する」を押すと、Yahoo!の同意画面に進みます。",
            Some(Action::Reauthorize),
        )),
        Some("invalid_client") => out.push(Finding::new(
            Severity::Error,
            "Client ID またはシークレットが正しくありません",
            "ストア設定の Client ID とシークレットを、Yahoo!デベロッパーネットワークの表示と同じにしてください。",
            None,
        )),
        Some("insufficient_scope") => out.push(Finding::new(
            Severity::Error,
            "このアプリケーションにストアAPIの権限（スコープ）がありません（insufficient_scope）",
            "Yahoo!が、このアプリケーション（ストア設定の Client ID）にはYahoo!ショッピングのストアAPI（注文API）を使う権限がないと答えました。\
             Yahoo!デベロッパーネットワークの「アプリケーションの管理」でこのアプリケーションを開き、利用するAPIのスコープにショッピングのストアAPIを加えてください。\
             アクセストークンの更新では直りません。スコープを加えたあとで再認証してください。",
            Some(Action::Reauthorize),
        )),
        Some("px-04306") => out.push(Finding::new(
            Severity::Error,
            "このサーバーの送信元IPアドレスがYahoo!に登録されていません（px-04306）",
            "Yahoo!デベロッパーネットワークのアプリケーション設定に、このサービスの送信元IPアドレスを登録してください。",
            None,
        )),
        Some("px-04303") => out.push(Finding::new(
            Severity::Error,
            "このアプリケーションは注文APIの利用を許可されていません（px-04303）",
            "Yahoo!ショッピングの注文API利用申請が承認されているか確認してください。",
            None,
        )),
        Some("px-04304") => out.push(Finding::new(
            Severity::Error,
            "Yahoo!の連携が別のストアアカウントのものです（px-04304）",
            "同意画面で、店舗設定のストアアカウント（seller ID）とは別のストアで同意した連携です。「Yahoo!と再連携する」を押し、このストアアカウントのストアで同意してください。",
            Some(Action::Reauthorize),
        )),
        Some("px-04102") => {
            let cause = key_problem(f, today)
                .map(|k| format!("{} {}", k.title, k.advice))
                .or_else(|| status(f).and_then(AuthorizeStatus::advice).map(str::to_owned))
                .unwrap_or_else(|| "認証から28日が経過しました。".to_owned());
            out.push(Finding::new(
                Severity::Error,
                "Yahoo!のAPIセッションが切れました（px-04102）",
                format!("原因: {cause} 設定を直したうえで再認証してください。"),
                Some(Action::Reauthorize),
            ));
        }
        _ => {}
    }
    if out.is_empty() {
        if let Some(k) = key_problem(f, today).filter(|_| f.connected) {
            out.push(k);
        } else if let Some(s) = status(f).filter(|s| !s.is_authorized()) {
            out.push(Finding::new(
                Severity::Warning,
                format!("公開鍵認証が通っていません（{}）", s.label()),
                format!("このままでは認証から12時間でAPIが使えなくなります。{}", s.advice().unwrap_or_default()),
                Some(Action::SetPublicKey),
            ));
        }
    }
    // Ahead of time (定期的に必要な作業).
    if let Some(left) = authorization_left(f, now).filter(|l| *l <= Duration::days(7) && *l > Duration::zero())
        && out.iter().all(|x| x.action != Some(Action::Reauthorize))
    {
        out.push(Finding::new(
            Severity::Warning,
            format!("Yahoo!連携の有効期限まであと{}", human(left)),
            "期限が切れる前に再認証してください。",
            Some(Action::Reauthorize),
        ));
    }
    if let Some(d) = f.public_key_expires_on
        && d >= today
        && (d - today).num_days() <= 60
    {
        out.push(Finding::new(
            Severity::Warning,
            format!("公開鍵の有効期限まであと{}日", (d - today).num_days()),
            "ストアクリエイターProで公開鍵を再発行し、新しい公開鍵とバージョンを設定してください。",
            Some(Action::SetPublicKey),
        ));
    }
    out
}

/// A store's connection with Yahoo, as every page says it (the store list, the dashboard, the
/// store page and its clocks ask this one function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connection {
    NotConnected,
    Connected,
    /// The session ran out, or Yahoo refused the refresh token (`invalid_grant`: revoked or
    /// expired on Yahoo's side): 再連携 is needed, whatever time the clock would have left.
    Expired,
}

impl Connection {
    pub fn label(self) -> &'static str {
        match self {
            Connection::NotConnected => "未連携",
            Connection::Connected => "連携済み",
            Connection::Expired => "期限切れ（再連携が必要です）",
        }
    }

    pub fn is_ok(self) -> bool {
        self == Connection::Connected
    }
}

pub fn connection(f: &Facts, now: DateTime<Utc>) -> Connection {
    if !f.connected {
        return Connection::NotConnected;
    }
    match authorization_left(f, now) {
        Some(left) if left <= Duration::zero() => Connection::Expired,
        _ if f.last_auth_error.as_deref() == Some("invalid_grant") => Connection::Expired,
        _ => Connection::Connected,
    }
}

/// The public key as lists say it: 未設定, 設定済み, or 期限切れ once its date has passed.
pub fn key_label(f: &Facts, now: DateTime<Utc>) -> &'static str {
    match f.public_key_expires_on {
        _ if !f.has_public_key => "未設定",
        Some(d) if d < super::jst::today(now) => "期限切れ",
        _ => "設定済み",
    }
}

/// Time left on the authorization: 28 days, or 12 hours while public-key auth is not passing.
pub fn authorization_left(f: &Facts, now: DateTime<Utc>) -> Option<Duration> {
    let at = f.authorized_at.filter(|_| f.connected)?;
    let lifetime = if short_regime(f) { SHORT_SESSION } else { AUTH_LIFETIME };
    Some(at + lifetime - now)
}

/// 「3日4時間」, 「5時間」, 「期限切れ」.
pub fn human(d: Duration) -> String {
    if d <= Duration::zero() {
        return "期限切れ".into();
    }
    let (days, hours, minutes) = (d.num_days(), d.num_hours() % 24, d.num_minutes() % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}分"),
        (0, h) => format!("{h}時間{minutes}分"),
        (d, h) => format!("{d}日{h}時間"),
    }
}

/// 「10分0秒」, 「13時間0分0秒」, 「45秒」.
fn human_seconds(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}秒"),
        (0, m) => format!("{m}分{s}秒"),
        (h, m) => format!("{h}時間{m}分{s}秒"),
    }
}

/// The three clocks of the store page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clocks {
    pub authorization: String,
    pub authorization_regime: &'static str,
    pub public_key: String,
    pub clock_offset: String,
}

pub fn clocks(f: &Facts, now: DateTime<Utc>) -> Clocks {
    let today = super::jst::today(now);
    Clocks {
        authorization: match authorization_left(f, now) {
            _ if connection(f, now) == Connection::Expired => Connection::Expired.label().into(),
            Some(left) if short_regime(f) => {
                format!("残り{}（公開鍵認証が通っていないため12時間で切れます）", human(left))
            }
            Some(left) => format!("残り{}", human(left)),
            None => "未連携".into(),
        },
        authorization_regime: if short_regime(f) { "12時間" } else { "28日" },
        public_key: match f.public_key_expires_on {
            Some(d) if d >= today => format!("残り{}日（{}まで）", (d - today).num_days(), d),
            Some(d) => format!("期限切れ（{d}）"),
            None => "未設定".into(),
        },
        clock_offset: match f.clock_offset_ms {
            None => "未計測".into(),
            Some(ms) if ms.abs() < 1000 => "ずれなし（1秒未満）".into(),
            Some(ms) => {
                let secs = (ms as f64 / 1000.0).round() as i64;
                format!(
                    "Yahoo!の時計がこのサーバーより{}{}います。署名の時刻は自動で補正しています。",
                    human_seconds(secs.abs()),
                    if ms > 0 { "進んで" } else { "遅れて" },
                )
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_refresh_token_is_expired_everywhere_whatever_the_clock_says() {
        let now = Utc::now();
        let mut f = Facts {
            connected: true,
            authorized_at: Some(now - Duration::days(1)),
            has_public_key: true,
            public_key_version: Some(1),
            public_key_expires_on: Some(super::super::jst::today(now) + Duration::days(300)),
            last_authorize_status: Some("authorized".into()),
            last_auth_error: None,
            clock_offset_ms: Some(0),
        };
        assert_eq!(connection(&f, now), Connection::Connected);
        assert!(clocks(&f, now).authorization.starts_with("残り27日"));
        f.last_auth_error = Some("invalid_grant".into());
        assert_eq!(connection(&f, now), Connection::Expired);
        assert_eq!(clocks(&f, now).authorization, "期限切れ（再連携が必要です）");
        f.connected = false;
        assert_eq!(connection(&f, now).label(), "未連携");
        assert_eq!(key_label(&f, now), "設定済み");
        f.public_key_expires_on = Some(super::super::jst::today(now) - Duration::days(1));
        assert_eq!(key_label(&f, now), "期限切れ");
    }

    fn connected() -> Facts {
        Facts {
            connected: true,
            authorized_at: Some(Utc::now()),
            has_public_key: true,
            public_key_version: Some(1),
            public_key_expires_on: Some(super::super::jst::today(Utc::now()) + Duration::days(300)),
            last_authorize_status: Some("authorized".into()),
            ..Facts::default()
        }
    }

    #[test]
    fn healthy_store_has_nothing_to_say() {
        assert!(diagnose(&connected(), Utc::now()).is_empty());
        assert_eq!(clocks(&connected(), Utc::now()).authorization_regime, "28日");
    }

    #[test]
    fn session_cap_names_the_cause() {
        let mut f = Facts {
            has_public_key: false,
            public_key_version: None,
            last_auth_error: Some("px-04102".into()),
            ..connected()
        };
        let d = diagnose(&f, Utc::now());
        assert!(d[0].advice.contains("公開鍵と公開鍵バージョンが設定されていません"), "{d:?}");
        f = Facts {
            last_auth_error: Some("px-04102".into()),
            last_authorize_status: Some("invalid-key-status".into()),
            ..connected()
        };
        assert!(diagnose(&f, Utc::now())[0].advice.contains("無効"));
        f = Facts { last_auth_error: Some("invalid_grant".into()), ..connected() };
        assert_eq!(diagnose(&f, Utc::now())[0].action, Some(Action::Reauthorize));
    }

    #[test]
    fn missing_scope_says_where_to_add_it() {
        let f = Facts { last_auth_error: Some("insufficient_scope".into()), ..connected() };
        let d = diagnose(&f, Utc::now());
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].severity, Severity::Error);
        assert!(d[0].title.contains("insufficient_scope"));
        for needle in
            ["Yahoo!デベロッパーネットワーク", "アプリケーションの管理", "スコープ", "ストアAPI", "更新では直りません"]
        {
            assert!(d[0].advice.contains(needle), "{needle}: {}", d[0].advice);
        }
    }

    #[test]
    fn warnings_ahead_of_time() {
        let now = Utc::now();
        let f = Facts { authorized_at: Some(now - Duration::days(22)), ..connected() };
        assert!(diagnose(&f, now).iter().any(|x| x.title.starts_with("Yahoo!連携の有効期限まであと6日")));
        let f =
            Facts { public_key_expires_on: Some(super::super::jst::today(now) + Duration::days(30)), ..connected() };
        assert!(diagnose(&f, now).iter().any(|x| x.title == "公開鍵の有効期限まであと30日"));
        let f = Facts { last_authorize_status: Some("none".into()), ..connected() };
        assert!(short_regime(&f));
        assert!(clocks(&f, now).authorization.contains("時間"));
        assert_eq!(diagnose(&f, now)[0].severity, Severity::Warning);
    }
}
