//! The support view's 「要対応」 rule (product.md §3, §9): which of a store's facts call for a
//! person. One pure function, [`attention`], that the overview and its filter both use.

use chrono::{DateTime, Duration, Utc};

use super::diagnosis::{self, Facts};

/// Warnings this far ahead (authorization and key expiry).
pub const WARN_AHEAD: Duration = Duration::days(7);

/// What the support view knows about one store.
#[derive(Clone, Debug, Default)]
pub struct StoreHealth {
    pub facts: Facts,
    /// The most recent import run's status (`done`, `failed`, …), if any.
    pub last_run_status: Option<String>,
    /// Automatic import blocked by an authentication failure nobody has acted on.
    pub blocked: bool,
    pub failing_pushes: i64,
    /// 緊急停止 of the store or of its account.
    pub stopped: bool,
}

/// One reason a store needs a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attention {
    AuthorizationExpiring,
    KeyExpiring,
    TwelveHourRegime,
    ImportsFailing,
    PushesFailing,
    Stopped,
}

impl Attention {
    pub fn label(self) -> &'static str {
        match self {
            Attention::AuthorizationExpiring => "認証の期限が7日以内",
            Attention::KeyExpiring => "公開鍵の期限が7日以内",
            Attention::TwelveHourRegime => "12時間認証",
            Attention::ImportsFailing => "取込が失敗",
            Attention::PushesFailing => "Yahoo!への反映が失敗",
            Attention::Stopped => "緊急停止中",
        }
    }
}

/// Every reason `h` needs attention at `now`, in a fixed order; empty when the store is healthy.
pub fn attention(h: &StoreHealth, now: DateTime<Utc>) -> Vec<Attention> {
    let f = &h.facts;
    let today = super::jst::today(now);
    let mut out = Vec::new();
    if diagnosis::authorization_left(f, now).is_some_and(|left| left <= WARN_AHEAD) {
        out.push(Attention::AuthorizationExpiring);
    }
    if f.public_key_expires_on.is_some_and(|d| d - today <= WARN_AHEAD) {
        out.push(Attention::KeyExpiring);
    }
    if diagnosis::short_regime(f) {
        out.push(Attention::TwelveHourRegime);
    }
    if h.blocked || h.last_run_status.as_deref() == Some("failed") {
        out.push(Attention::ImportsFailing);
    }
    if h.failing_pushes > 0 {
        out.push(Attention::PushesFailing);
    }
    if h.stopped {
        out.push(Attention::Stopped);
    }
    out
}

/// Failed runs as a share of all runs, in percent (None without runs).
pub fn error_rate(runs: i64, failed: i64) -> Option<i64> {
    (runs > 0).then(|| failed * 100 / runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 3, 0, 0).unwrap()
    }

    fn healthy() -> StoreHealth {
        StoreHealth {
            facts: Facts {
                connected: true,
                authorized_at: Some(now() - Duration::days(1)),
                has_public_key: true,
                public_key_version: Some(1),
                public_key_expires_on: Some(super::super::jst::today(now()) + Duration::days(300)),
                last_authorize_status: Some("authorized".into()),
                last_auth_error: None,
                clock_offset_ms: Some(0),
            },
            last_run_status: Some("done".into()),
            ..StoreHealth::default()
        }
    }

    #[test]
    fn a_healthy_store_needs_nothing() {
        assert!(attention(&healthy(), now()).is_empty());
        assert!(attention(&StoreHealth::default(), now()).is_empty(), "a store not yet connected is not flagged");
    }

    #[test]
    fn each_reason_on_its_own() {
        let mut h = healthy();
        h.facts.public_key_expires_on = Some(super::super::jst::today(now()) + Duration::days(5));
        assert_eq!(attention(&h, now()), [Attention::KeyExpiring]);
        h.facts.public_key_expires_on = Some(super::super::jst::today(now()) + Duration::days(8));
        assert!(attention(&h, now()).is_empty());

        let mut h = healthy();
        h.facts.authorized_at = Some(now() - Duration::days(22));
        assert_eq!(attention(&h, now()), [Attention::AuthorizationExpiring]);
        h.facts.authorized_at = Some(now() - Duration::days(20));
        assert!(attention(&h, now()).is_empty());

        let mut h = healthy();
        h.facts.last_authorize_status = Some("invalid-key-version".into());
        // 12 hours left at most, so the authorization is expiring as well.
        assert_eq!(attention(&h, now()), [Attention::AuthorizationExpiring, Attention::TwelveHourRegime]);

        let mut h = healthy();
        h.last_run_status = Some("failed".into());
        assert_eq!(attention(&h, now()), [Attention::ImportsFailing]);
        let mut h = healthy();
        h.blocked = true;
        assert_eq!(attention(&h, now()), [Attention::ImportsFailing]);

        let mut h = healthy();
        h.failing_pushes = 2;
        assert_eq!(attention(&h, now()), [Attention::PushesFailing]);

        let mut h = healthy();
        h.stopped = true;
        assert_eq!(attention(&h, now()), [Attention::Stopped]);
    }

    #[test]
    fn error_rate_in_percent() {
        assert_eq!(error_rate(0, 0), None);
        assert_eq!(error_rate(4, 1), Some(25));
    }
}
