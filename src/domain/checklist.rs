//! The store page's checklist: the four steps from a new store to orders arriving, in their
//! order, each done or not, and which one is next (the page's one primary button).

use chrono::{DateTime, Utc};

use super::{
    authorize::AuthorizeStatus,
    diagnosis::{self, Facts},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// ① The app registered at Yahoo (redirect URI), its Client ID and secret entered here.
    RegisterApp,
    /// ② 連携: the merchant's consent at Yahoo.
    Connect,
    /// ③ 公開鍵 and its version.
    PublicKey,
    /// ④ 接続テスト passed with public-key authentication.
    Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Done,
    Next,
    Later,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    pub state: StepState,
}

impl Step {
    pub fn number(&self) -> &'static str {
        match self.kind {
            StepKind::RegisterApp => "①",
            StepKind::Connect => "②",
            StepKind::PublicKey => "③",
            StepKind::Test => "④",
        }
    }

    pub fn title(&self) -> &'static str {
        match self.kind {
            StepKind::RegisterApp => "Yahoo!にアプリケーションを登録し、Client ID とシークレットを入力",
            StepKind::Connect => "Yahoo!と連携",
            StepKind::PublicKey => "公開鍵を設定",
            StepKind::Test => "接続テスト",
        }
    }

    pub fn state_label(&self) -> &'static str {
        match self.state {
            StepState::Done => "完了",
            StepState::Next => "次の手順",
            StepState::Later => "未完了",
        }
    }

    pub fn css_class(&self) -> &'static str {
        match self.state {
            StepState::Done => "step done",
            StepState::Next => "step next",
            StepState::Later => "step later",
        }
    }

    /// A stable name for templates and tests.
    pub fn code(&self) -> &'static str {
        match self.kind {
            StepKind::RegisterApp => "register",
            StepKind::Connect => "connect",
            StepKind::PublicKey => "key",
            StepKind::Test => "test",
        }
    }

    pub fn is_next(&self) -> bool {
        self.state == StepState::Next
    }

    pub fn is_done(&self) -> bool {
        self.state == StepState::Done
    }
}

/// The steps of a store; the first one not done is next. `app_registered`: Client ID and
/// secret are both set.
///
/// The steps follow the diagnosis (`diagnosis::diagnose`): a connection it says must be made
/// again is not done, and neither is a key Yahoo refused for the key's sake (a wrong version,
/// a disabled key): the step it points at is the next one, with its button.
pub fn checklist(app_registered: bool, f: &Facts, now: DateTime<Utc>) -> Vec<Step> {
    let must_reconnect = diagnosis::diagnose(f, now)
        .iter()
        .any(|d| d.severity == diagnosis::Severity::Error && d.action == Some(diagnosis::Action::Reauthorize));
    let authorized = diagnosis::connection(f, now).is_ok() && !must_reconnect;
    let key_refused =
        f.last_authorize_status.as_deref().map(AuthorizeStatus::parse).is_some_and(AuthorizeStatus::blames_key);
    let key_set = f.has_public_key
        && f.public_key_version.is_some()
        && f.public_key_expires_on.is_none_or(|d| d >= super::jst::today(now))
        && !key_refused;
    let tested = authorized
        && key_set
        && f.last_auth_error.is_none()
        && f.last_authorize_status.as_deref().map(AuthorizeStatus::parse).is_some_and(AuthorizeStatus::is_authorized);
    let done = [
        (StepKind::RegisterApp, app_registered),
        (StepKind::Connect, authorized),
        (StepKind::PublicKey, key_set),
        (StepKind::Test, tested),
    ];
    let mut next_given = false;
    done.into_iter()
        .map(|(kind, done)| {
            let state = if done {
                StepState::Done
            } else if !next_given {
                next_given = true;
                StepState::Next
            } else {
                StepState::Later
            };
            Step { kind, state }
        })
        .collect()
}

/// The step to do next, if any.
pub fn next_step(steps: &[Step]) -> Option<StepKind> {
    steps.iter().find(|s| s.is_next()).map(|s| s.kind)
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn facts() -> Facts {
        Facts {
            connected: false,
            authorized_at: None,
            has_public_key: false,
            public_key_version: None,
            public_key_expires_on: None,
            last_authorize_status: None,
            last_auth_error: None,
            clock_offset_ms: None,
        }
    }

    #[test]
    fn the_next_step_after_each_stage() {
        let now = Utc::now();
        assert_eq!(next_step(&checklist(false, &facts(), now)), Some(StepKind::RegisterApp));
        assert_eq!(next_step(&checklist(true, &facts(), now)), Some(StepKind::Connect));
        let connected = Facts { connected: true, authorized_at: Some(now), ..facts() };
        assert_eq!(next_step(&checklist(true, &connected, now)), Some(StepKind::PublicKey));
        let keyed = Facts { has_public_key: true, public_key_version: Some(1), ..connected.clone() };
        assert_eq!(next_step(&checklist(true, &keyed, now)), Some(StepKind::Test));
        let tested = Facts { last_authorize_status: Some("authorized".into()), ..keyed.clone() };
        assert_eq!(next_step(&checklist(true, &tested, now)), None);
        // A 12-hour session that ended is not 連携済み any more.
        let ended = Facts {
            last_authorize_status: Some("none".into()),
            authorized_at: Some(now - Duration::hours(13)),
            ..keyed
        };
        let steps = checklist(true, &ended, now);
        assert_eq!(next_step(&steps), Some(StepKind::Connect));
        assert_eq!(diagnosis::clocks(&ended, now).authorization, "期限切れ（再連携が必要です）");
        // A key Yahoo refused for its version (after 接続テスト): ③ is next again, not ④.
        for refused in ["invalid-key-version", "not-found-key-version", "invalid-key-status"] {
            let wrong = Facts { last_authorize_status: Some(refused.into()), ..tested.clone() };
            let steps = checklist(true, &wrong, now);
            assert_eq!(next_step(&steps), Some(StepKind::PublicKey), "{refused}");
            assert!(steps.iter().find(|s| s.kind == StepKind::Connect).unwrap().is_done(), "{refused}");
        }
        // A clock the client corrects is not the key's fault.
        let skewed = Facts { last_authorize_status: Some("invalid-timestamp".into()), ..tested.clone() };
        assert_eq!(next_step(&checklist(true, &skewed, now)), Some(StepKind::Test));
        // Only one step is next.
        assert_eq!(checklist(false, &facts(), now).iter().filter(|s| s.is_next()).count(), 1);
    }
}
