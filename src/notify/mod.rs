//! The notifier (issue 29, shipping-day.md §4.3): a job on the one job engine, held by one
//! process at a time under the `notify` lease. Each tick it
//!
//! 1. **watches** what is true now and raises the notices no event writes by itself: a store's
//!    automatic import failing [`IMPORT_FAILS_IN_A_ROW`] runs in a row (and recovering), its
//!    authorization 7/3/1 days from running out (and run out), its public key 30/7/1 days from
//!    running out (and run out), pushes to Yahoo failed for good, stock Yahoo refused. Each
//!    notice has a key, so seeing the same fact again raises nothing;
//! 2. **folds** waiting deliveries into mail: per user, kind and store, at most one mail an hour,
//!    naming what it covers (up to 20, then 他N件);
//! 3. makes each user's **daily digest** once a day at 8:00 (Japan time): the summary per store
//!    and the notices they chose to get daily.
//!
//! Held orders released or confirmed are raised by the import itself, in its batch's
//! transaction. The mail the notifier queues is sent by the mail job.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    db::{
        self, Db,
        lease::Leased,
        mail::NewMail,
        notify::{self as store, Folded, NewNotice},
    },
    domain::{
        AccountId, StoreId,
        diagnosis::{self, authorization_left},
        jst,
        mail::MailKind,
        notify::{
            self as rules, AUTH_STEPS, IMPORT_FAILS_IN_A_ROW, KEY_STEPS, Mode, Section, StoreDay, days_left,
            warning_step,
        },
    },
    jobs::{Job, Lease, ProcessId},
};

/// Rows one watch looks at per kind of fact (the rest wait for the next tick).
const WATCH_LIMIT: i64 = 1_000;

pub struct Notifier {
    db: Db,
    owner: ProcessId,
    /// The service's address as mails link it (`ORDERDESK_PUBLIC_URL`).
    public_url: String,
    /// How long the notifier's lease lasts.
    lease: Duration,
    /// When the job last watched: the watch reads every store, so it runs once a minute while
    /// folding runs every tick.
    last_watch: Option<std::time::Instant>,
    /// When this process last took or renewed the lease: it is renewed once a third of it has
    /// passed, not written on every tick.
    lease_taken: Option<std::time::Instant>,
}

/// How often the job's tick watches the stores.
const WATCH_EVERY: Duration = Duration::from_secs(60);

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    pub raised: usize,
    pub mails: usize,
    pub digests: usize,
}

impl Notifier {
    pub fn new(db: Db, owner: ProcessId, public_url: String, lease: Duration) -> Notifier {
        Notifier { db, owner, public_url, lease, last_watch: None, lease_taken: None }
    }

    fn settings_link(&self) -> String {
        format!("{}/account/notifications", self.public_url)
    }

    /// Watch, fold and digest as of `now` (tests pass a time; the job passes the clock's).
    pub async fn run_at(&self, now: DateTime<Utc>) -> sqlx::Result<Tick> {
        let raised = self.watch(now).await?;
        let mails = self.fold(now).await?;
        let digests = self.digests(now).await?;
        Ok(Tick { raised, mails, digests })
    }

    /// Raises the notices of what is true at `now`; returns how many were new.
    pub async fn watch(&self, now: DateTime<Utc>) -> sqlx::Result<usize> {
        let base = &self.public_url;
        let mut notices = Vec::new();
        let stores = db::support::overview_stores(&self.db, AccountId(0), AccountId(i64::MAX), now).await?;
        let today = jst::today(now);
        for s in &stores {
            let at = |kind, key: String, line: String, link: String| NewNotice {
                account: s.account_id,
                store: Some(s.id),
                kind,
                key: format!("{}:{key}", s.id),
                line,
                link,
            };
            let store_link = format!("{base}/stores/{}", s.id);
            // The authorization: 7, 3, 1 days ahead, then run out.
            let facts = s.facts();
            if let (Some(left), Some(authorized)) = (authorization_left(&facts, now), facts.authorized_at) {
                let until = now + left;
                let stamp = authorized.timestamp();
                let when = jst::format_display(until);
                if left <= chrono::Duration::zero() {
                    notices.push(at(
                        MailKind::AuthExpired,
                        format!("{stamp}"),
                        format!("認証の期限（{when}）が切れました"),
                        store_link.clone(),
                    ));
                } else if let Some(step) = warning_step(days_left(until, now), &AUTH_STEPS) {
                    notices.push(at(
                        MailKind::AuthExpiring,
                        format!("{stamp}:{step}"),
                        format!("認証の期限まであと{}（{when}まで）", diagnosis::human(left)),
                        store_link.clone(),
                    ));
                }
            }
            // The public key: 30, 7, 1 days ahead, then run out.
            if let (true, Some(expires)) = (s.has_public_key, s.public_key_expires_on) {
                let days = (expires - today).num_days();
                let version = s.public_key_version.unwrap_or_default();
                let key_link = format!("{base}/stores/{}/public-key", s.id);
                if days < 0 {
                    notices.push(at(
                        MailKind::KeyExpiring,
                        format!("{version}:{expires}:expired"),
                        format!("公開鍵（バージョン{version}）の期限 {expires} が切れました"),
                        key_link,
                    ));
                } else if let Some(step) = warning_step(days, &KEY_STEPS) {
                    notices.push(at(
                        MailKind::KeyExpiring,
                        format!("{version}:{expires}:{step}"),
                        format!("公開鍵（バージョン{version}）の期限 {expires} まであと{days}日"),
                        key_link,
                    ));
                }
            }
            // The automatic import failing several runs in a row.
            if s.last_run_status.as_deref() == Some("failed") {
                let (runs, idle_at) = store::recent_runs(&self.db, s.id, IMPORT_FAILS_IN_A_ROW as i64).await?;
                let streak: Vec<_> = runs
                    .iter()
                    .take_while(|(_, status, _, started)| status == "failed" && idle_at.is_none_or(|i| *started > i))
                    .collect();
                if streak.len() >= IMPORT_FAILS_IN_A_ROW {
                    let (first, ..) = streak[streak.len() - 1];
                    let (last, _, message, _) = streak[0];
                    notices.push(at(
                        MailKind::ImportFailing,
                        format!("run{first}"),
                        format!(
                            "{}回続けて失敗しました（最後の理由: {}）",
                            streak.len(),
                            message.as_deref().unwrap_or("不明")
                        ),
                        format!("{base}/imports/{last}"),
                    ));
                }
            }
        }
        // Recovery: a store told of failing imports whose latest run went through.
        let open = store::open_import_failures(&self.db).await?;
        for (account, store_id, key) in open {
            let Some(s) = stores.iter().find(|s| s.id == store_id && s.account_id == account) else { continue };
            if s.last_run_status.as_deref() == Some("done") {
                notices.push(NewNotice {
                    account,
                    store: Some(store_id),
                    kind: MailKind::ImportRecovered,
                    key,
                    line: format!("{}に自動取込が再び成功しました", jst::format_display(now)),
                    link: format!("{base}/imports"),
                });
            }
        }
        // Pushes to Yahoo failed for good, and stock Yahoo refused.
        for p in store::unnoticed_failed_pushes(&self.db, WATCH_LIMIT).await? {
            notices.push(NewNotice {
                account: p.account_id,
                store: Some(p.store_id),
                kind: MailKind::PushFailed,
                key: p.key,
                line: format!("{}: {}", p.order_id, p.message),
                link: format!("{base}/orders/{}", p.order_pk),
            });
        }
        for f in store::unnoticed_failed_stock(&self.db, WATCH_LIMIT).await? {
            notices.push(NewNotice {
                account: f.account_id,
                store: Some(f.store_id),
                kind: MailKind::StockFailing,
                key: f.key,
                line: format!("{}: {}", f.code, f.message),
                link: format!("{base}/stock"),
            });
        }
        // One transaction per account: an account's users are read once.
        notices.sort_by_key(|n| n.account);
        let mut raised = 0;
        for chunk in notices.chunk_by(|a, b| a.account == b.account) {
            raised += store::raise(&self.db, chunk, now).await?;
        }
        Ok(raised)
    }

    /// Folds waiting immediate deliveries into mail: one per user, kind and store, unless that
    /// user got one of the kind for the store within the hour (then they wait for it).
    pub async fn fold(&self, now: DateTime<Utc>) -> sqlx::Result<usize> {
        let mut mails = 0;
        for (user, kind, store_id) in store::pending_groups(&self.db, Mode::Immediate).await? {
            let Some(mail_kind) = MailKind::parse(&kind) else { continue };
            let last = store::last_mailed(&self.db, user, mail_kind, store_id).await?;
            if rules::next_fold_at(last).is_some_and(|due| due > now) {
                continue;
            }
            let items = store::pending(&self.db, user, Mode::Immediate, Some((&kind, store_id))).await?;
            let Some(first) = items.first() else { continue };
            let store_name = first.store_name.clone().unwrap_or_default();
            let lines: Vec<rules::Item> = items.iter().map(|d| (d.line.clone(), d.link.clone())).collect();
            let (subject, body) = rules::notice_mail(mail_kind, &store_name, &lines, &self.settings_link());
            let folded = Folded {
                mail: NewMail {
                    user: Some(user),
                    ..NewMail::plain(first.account_id, store_id, mail_kind, &first.email, subject, body)
                },
                user,
                deliveries: items.iter().map(|d| d.notice_id).collect(),
                digest_day: None,
            };
            if store::commit_fold(&self.db, &folded, now).await? {
                mails += 1;
            }
        }
        Ok(mails)
    }

    /// Makes the daily digests due at `now` (each user's once a day).
    pub async fn digests(&self, now: DateTime<Utc>) -> sqlx::Result<usize> {
        let day = rules::digest_day(now);
        let due = rules::digest_time(day);
        let mut made = 0;
        let mut days: BTreeMap<AccountId, Vec<store::StoreDayRow>> = BTreeMap::new();
        for r in store::digest_readers(&self.db, day, due, 500).await? {
            let items = store::pending(&self.db, r.user, Mode::Digest, None).await?;
            let mut sections: Vec<Section> = Vec::new();
            for d in &items {
                let Some(kind) = MailKind::parse(&d.kind) else { continue };
                let name = d.store_name.clone().unwrap_or_default();
                match sections.last_mut() {
                    Some(s) if s.kind == kind && s.store == name => s.items.push((d.line.clone(), d.link.clone())),
                    _ => sections.push(Section { kind, store: name, items: vec![(d.line.clone(), d.link.clone())] }),
                }
            }
            let summary: Option<Vec<StoreDay>> = if r.reader.wants_summary() {
                if let std::collections::btree_map::Entry::Vacant(e) = days.entry(r.account) {
                    e.insert(store::store_days(&self.db, r.account, now - chrono::Duration::hours(24)).await?);
                }
                let all = &days[&r.account];
                let ids: Vec<StoreId> = all.iter().map(|s| s.0).collect();
                let mine = r.reader.summary_stores(&ids);
                Some(
                    all.iter()
                        .filter(|s| mine.contains(&s.0))
                        .map(|(_, name, new_orders, held, failed)| StoreDay {
                            store: name.clone(),
                            new_orders: *new_orders,
                            held: *held,
                            failed_pushes: *failed,
                        })
                        .collect(),
                )
            } else {
                None
            };
            if sections.is_empty() && summary.is_none() {
                store::skip_digest(&self.db, r.user, day).await?;
                continue;
            }
            let (subject, body) = rules::digest_mail(day, summary.as_deref(), &sections, &self.settings_link());
            let folded = Folded {
                mail: NewMail {
                    user: Some(r.user),
                    ..NewMail::plain(r.account, None, MailKind::Digest, &r.email, subject, body)
                },
                user: r.user,
                deliveries: items.iter().map(|d| d.notice_id).collect(),
                digest_day: Some(day),
            };
            if store::commit_fold(&self.db, &folded, now).await? {
                made += 1;
            }
        }
        Ok(made)
    }
}

impl Job for Notifier {
    const NAME: &'static str = "notify";

    async fn tick(&mut self) -> Result<(), String> {
        let lease = Lease::new(&self.db, Leased::Notify, 1, &self.owner, self.lease);
        // One notifier at a time across every process: the lease is kept between ticks (not
        // given back), so the holder stays the holder while it lives.
        let fresh = self.lease_taken.is_some_and(|t| t.elapsed() < self.lease / 3);
        if !fresh {
            if !lease.acquire().await.map_err(|e| e.to_string())? {
                self.lease_taken = None;
                return Ok(());
            }
            self.lease_taken = Some(std::time::Instant::now());
        }
        let watch = self.last_watch.is_none_or(|t| t.elapsed() >= WATCH_EVERY);
        let now = Utc::now();
        let work = async {
            if watch {
                self.watch(now).await?;
            }
            self.fold(now).await?;
            self.digests(now).await
        };
        match lease.hold(work).await {
            Ok(done) => {
                done.map_err(|e| e.to_string())?;
                if watch {
                    self.last_watch = Some(std::time::Instant::now());
                }
                Ok(())
            }
            Err(_) => {
                self.lease_taken = None;
                Ok(())
            }
        }
    }
}
