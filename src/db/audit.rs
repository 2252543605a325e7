//! The audit log (product.md §10): append-only, per account. There is deliberately no function
//! that edits an entry, and the database refuses updates as well.

use chrono::{DateTime, Utc};

use super::{Db, now, with_pool};
use crate::domain::{
    AccountId, StoreId,
    scope::{MASK, OrderScope},
};

/// Who did it, as shown to the merchant.
#[derive(Clone, Debug)]
pub enum Actor<'a> {
    /// A merchant user, by email.
    User(&'a str),
    /// Someone who is not signed in (failed sign-ins).
    Anonymous,
    /// Support staff of the service, by name.
    Support(&'a str),
    /// The service itself (jobs).
    System,
}

impl Actor<'_> {
    fn label(&self) -> String {
        match self {
            Actor::User(email) => (*email).to_string(),
            Actor::Anonymous => "(未ログイン)".to_string(),
            Actor::Support(name) => format!("{SUPPORT_PREFIX}{name}"),
            Actor::System => SYSTEM_LABEL.to_string(),
        }
    }
}

/// What happened. The codes are stable (stored); the labels are for the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    SignIn,
    SignInFailed,
    SignOut,
    PasswordChanged,
    UserAdded,
    UserRemoved,
    StoreCreated,
    StoreUpdated,
    StoreDeleted,
    ClientSecretChanged,
    StoreConnected,
    PublicKeyChanged,
    EmergencyStop,
    EmergencyResume,
    ManualImport,
    OrderReimported,
    Reconciled,
    /// An owner set a new password for another user of the account.
    PasswordReset,
    /// Several orders' statuses changed at once from the list.
    BulkStatusChange,
    /// The order list exported as CSV.
    OrdersExported,
    /// A stock CSV applied.
    StockUploaded,
    /// Stock read from a store (getStock).
    StockPulled,
    /// Support staff issued a one-time password reset link for an owner.
    PasswordResetLinkIssued,
    /// An owner set a new password through a reset link.
    PasswordResetLinkUsed,
    /// Someone tried to sign up with the email of a user of this account (nothing was created).
    SignUpWithExistingEmail,
    /// An owner changed which stores a user may work, or whether buyers' data is masked.
    UserAccessChanged,
    /// Support staff opened a read-only look at the account's data, with a stated reason.
    SupportAccess,
    /// The audit log exported as CSV.
    AuditExported,
    /// The stock list exported as CSV.
    StockExported,
    /// A carrier label file (送り状データ) written.
    LabelsExported,
    /// Tracking numbers set from a carrier's issued-data file.
    TrackingImported,
    /// A tag made or deleted.
    TagsChanged,
    /// A rule made, changed, moved or deleted, or the 離島 postcodes replaced.
    RulesChanged,
    DocumentsPrinted,
    DocumentSettingsChanged,
    /// A store's mail settings (sender, Reply-To, 発送連絡, templates) saved.
    MailSettingsChanged,
    /// A user's own 通知の設定 saved.
    NotificationSettingsChanged,
    /// A free message mailed to an order's buyer.
    BuyerMailSent,
}

impl Action {
    pub const ALL: [Action; 38] = [
        Action::SignIn,
        Action::SignInFailed,
        Action::SignOut,
        Action::PasswordChanged,
        Action::UserAdded,
        Action::UserRemoved,
        Action::StoreCreated,
        Action::StoreUpdated,
        Action::StoreDeleted,
        Action::ClientSecretChanged,
        Action::StoreConnected,
        Action::PublicKeyChanged,
        Action::EmergencyStop,
        Action::EmergencyResume,
        Action::ManualImport,
        Action::OrderReimported,
        Action::Reconciled,
        Action::PasswordReset,
        Action::BulkStatusChange,
        Action::OrdersExported,
        Action::StockUploaded,
        Action::StockPulled,
        Action::PasswordResetLinkIssued,
        Action::PasswordResetLinkUsed,
        Action::SignUpWithExistingEmail,
        Action::UserAccessChanged,
        Action::SupportAccess,
        Action::AuditExported,
        Action::StockExported,
        Action::LabelsExported,
        Action::TrackingImported,
        Action::TagsChanged,
        Action::RulesChanged,
        Action::DocumentsPrinted,
        Action::DocumentSettingsChanged,
        Action::MailSettingsChanged,
        Action::NotificationSettingsChanged,
        Action::BuyerMailSent,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Action::SignIn => "sign_in",
            Action::SignInFailed => "sign_in_failed",
            Action::SignOut => "sign_out",
            Action::PasswordChanged => "password_changed",
            Action::UserAdded => "user_added",
            Action::UserRemoved => "user_removed",
            Action::StoreCreated => "store_created",
            Action::StoreUpdated => "store_updated",
            Action::StoreDeleted => "store_deleted",
            Action::ClientSecretChanged => "client_secret_changed",
            Action::StoreConnected => "store_connected",
            Action::PublicKeyChanged => "public_key_changed",
            Action::EmergencyStop => "emergency_stop",
            Action::EmergencyResume => "emergency_resume",
            Action::ManualImport => "manual_import",
            Action::OrderReimported => "order_reimported",
            Action::Reconciled => "reconciled",
            Action::PasswordReset => "password_reset",
            Action::BulkStatusChange => "bulk_status_change",
            Action::OrdersExported => "orders_exported",
            Action::StockUploaded => "stock_uploaded",
            Action::LabelsExported => "labels_exported",
            Action::TrackingImported => "tracking_imported",
            Action::TagsChanged => "tags_changed",
            Action::RulesChanged => "rules_changed",
            Action::DocumentsPrinted => "documents_printed",
            Action::DocumentSettingsChanged => "document_settings_changed",
            Action::MailSettingsChanged => "mail_settings_changed",
            Action::NotificationSettingsChanged => "notification_settings_changed",
            Action::BuyerMailSent => "buyer_mail_sent",
            Action::StockPulled => "stock_pulled",
            Action::PasswordResetLinkIssued => "password_reset_link_issued",
            Action::PasswordResetLinkUsed => "password_reset_link_used",
            Action::SignUpWithExistingEmail => "sign_up_with_existing_email",
            Action::UserAccessChanged => "user_access_changed",
            Action::SupportAccess => "support_access",
            Action::AuditExported => "audit_exported",
            Action::StockExported => "stock_exported",
        }
    }

    pub fn label_for_code(code: &str) -> &'static str {
        match Action::ALL.into_iter().find(|a| a.code() == code) {
            Some(Action::SignIn) => "ログイン",
            Some(Action::SignInFailed) => "ログイン失敗",
            Some(Action::SignOut) => "ログアウト",
            Some(Action::PasswordChanged) => "パスワード変更",
            Some(Action::UserAdded) => "ユーザー追加",
            Some(Action::UserRemoved) => "ユーザー削除",
            Some(Action::StoreCreated) => "ストア追加",
            Some(Action::StoreUpdated) => "ストア設定変更",
            Some(Action::StoreDeleted) => "ストア削除",
            Some(Action::ClientSecretChanged) => "クライアントシークレット変更",
            Some(Action::StoreConnected) => "Yahoo!連携",
            Some(Action::PublicKeyChanged) => "公開鍵の設定",
            Some(Action::EmergencyStop) => "緊急停止",
            Some(Action::EmergencyResume) => "緊急停止の解除",
            Some(Action::ManualImport) => "手動取込",
            Some(Action::OrderReimported) => "注文再取込",
            Some(Action::Reconciled) => "注文の照合・取込",
            Some(Action::PasswordReset) => "パスワード再設定",
            Some(Action::BulkStatusChange) => "ステータス一括変更",
            Some(Action::OrdersExported) => "受注CSV出力",
            Some(Action::StockUploaded) => "在庫CSVの反映",
            Some(Action::StockPulled) => "在庫の取得",
            Some(Action::PasswordResetLinkIssued) => "パスワード再設定リンクの発行",
            Some(Action::PasswordResetLinkUsed) => "再設定リンクによるパスワード再設定",
            Some(Action::SignUpWithExistingEmail) => "登録済みのメールアドレスでの新規登録",
            Some(Action::UserAccessChanged) => "担当ストア・個人情報の表示の変更",
            Some(Action::SupportAccess) => "サポートによる閲覧",
            Some(Action::AuditExported) => "監査ログのCSV出力",
            Some(Action::StockExported) => "在庫CSV出力",
            Some(Action::LabelsExported) => "送り状データの出力",
            Some(Action::TrackingImported) => "伝票番号の取込",
            Some(Action::TagsChanged) => "タグの作成・削除",
            Some(Action::RulesChanged) => "ルールの変更",
            Some(Action::DocumentsPrinted) => "納品書・ピッキングリストの印刷",
            Some(Action::DocumentSettingsChanged) => "納品書設定の変更",
            Some(Action::MailSettingsChanged) => "ストアのメール設定の変更",
            Some(Action::NotificationSettingsChanged) => "通知の設定の変更",
            Some(Action::BuyerMailSent) => "お客様へのメール送信",
            None => "その他",
        }
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Entry {
    pub fn action_label(&self) -> &'static str {
        Action::label_for_code(&self.action)
    }

    pub fn actor_kind(&self) -> ActorKind {
        ActorKind::of_label(&self.actor)
    }
}

/// The kind of actor, as the log's filter and export name it (user / job / support).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    User,
    Job,
    Support,
}

const SUPPORT_PREFIX: &str = "サポート: ";
const SYSTEM_LABEL: &str = "システム";

impl ActorKind {
    pub const ALL: [ActorKind; 3] = [ActorKind::User, ActorKind::Job, ActorKind::Support];

    pub fn code(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Job => "job",
            ActorKind::Support => "support",
        }
    }

    pub fn parse(code: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            ActorKind::User => "ユーザー",
            ActorKind::Job => "システム（ジョブ）",
            ActorKind::Support => "サポート",
        }
    }

    /// The kind of a stored actor label (see [`Actor::label`]; the label is what is stored, so
    /// entries written before the kinds existed are classified the same way).
    pub fn of_label(label: &str) -> ActorKind {
        if label.starts_with(SUPPORT_PREFIX) {
            ActorKind::Support
        } else if label == SYSTEM_LABEL {
            ActorKind::Job
        } else {
            ActorKind::User
        }
    }
}

/// The changed fields of an edit, as the log words them: `項目 前 → 後` for each field whose
/// value changed, joined with 「、」 (store settings, a user's access). Only for fields whose
/// values may be shown: never pass a secret or a password.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes(Vec<String>);

impl Changes {
    /// Notes `label` if `before` and `after` differ.
    pub fn field(&mut self, label: &str, before: impl Into<String>, after: impl Into<String>) {
        let (before, after) = (before.into(), after.into());
        if before != after {
            self.0.push(format!("{label} {before} → {after}"));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entry's detail: `subject: change、change`; `None` if nothing changed.
    pub fn detail(&self, subject: &str) -> Option<String> {
        (!self.is_empty()).then(|| format!("{subject}: {}", self.0.join("、")))
    }
}

/// What the audit page and its export select. Dates are whole JST days.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub actor: Option<ActorKind>,
    pub action: Option<Action>,
    /// Entries about this store, by the `store_id` they were written with ([`Note::store`]).
    /// Entries written before the column existed (migration 0017) have no store and match no
    /// store filter; the store's name in their detail is not searched, since names change and
    /// one store's name can begin another's.
    pub store: Option<StoreId>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// One page of the account's log matching `filter`, newest first, below `before_id` if given.
/// One page of the log as this reader may read it: an order export's search text (which may be
/// a buyer's name or phone number; entries written before it was left out hold it) is masked
/// for a reader who may not see buyers' personal data.
pub async fn search(
    db: &Db,
    scope: &OrderScope,
    filter: &Filter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    let mut entries = search_account(db, scope.account, filter, before_id, limit).await?;
    if scope.mask_personal {
        for e in entries.iter_mut().filter(|e| e.action == Action::OrdersExported.code()) {
            e.detail = masked_search(&e.detail);
        }
    }
    Ok(entries)
}

/// `CSV出力: a=1&q=山田` → `CSV出力: a=1&q=＊＊＊`.
fn masked_search(detail: &str) -> String {
    let Some((head, query)) = detail.split_once(": ") else { return detail.to_owned() };
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let v = if k == "q" && !v.is_empty() { std::borrow::Cow::Borrowed(MASK) } else { v };
        out.append_pair(&k, &v);
    }
    format!("{head}: {}", out.finish())
}

async fn search_account(
    db: &Db,
    account_id: AccountId,
    filter: &Filter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    let far_past = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
    let far_future = DateTime::<Utc>::from_timestamp(253_402_214_400, 0).expect("year 9999");
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id, actor, action, detail, ip, created_at from audit_log
             where account_id = $1 and id < $2
               and ($3 = '' or ($3 = 'support' and actor like $9) or ($3 = 'job' and actor = $10)
                    or ($3 = 'user' and actor not like $9 and actor <> $10))
               and ($4 = '' or action = $4)
               and ($5 = 0 or store_id = $5)
               and created_at >= $6 and created_at < $7
             order by id desc limit $8",
        )
        .bind(account_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(filter.actor.map(ActorKind::code).unwrap_or_default())
        .bind(filter.action.map(Action::code).unwrap_or_default())
        // Store IDs start at 1, so 0 means no store filter.
        .bind(filter.store.map_or(0, |s| s.0))
        .bind(filter.from.unwrap_or(far_past))
        .bind(filter.until.unwrap_or(far_future))
        .bind(limit)
        .bind(format!("{SUPPORT_PREFIX}%"))
        .bind(SYSTEM_LABEL)
        .fetch_all(p)
        .await
    })
}

/// An entry, written by [`record_in`] in the transaction of the change it records, so that the
/// change and its entry commit together or not at all. `detail` must never contain a secret.
#[derive(Clone, Debug)]
pub struct Note {
    pub account_id: AccountId,
    actor: String,
    pub action: Action,
    detail: String,
    ip: Option<String>,
    /// The store the entry concerns, if any (what the page's store filter matches).
    store_id: Option<StoreId>,
}

impl Note {
    /// The same entry with words added to its detail.
    pub fn with_suffix(&self, suffix: &str) -> Note {
        Note { detail: format!("{}{suffix}", self.detail), ..self.clone() }
    }

    pub fn new(
        account_id: AccountId,
        actor: Actor<'_>,
        action: Action,
        detail: impl Into<String>,
        ip: Option<&str>,
    ) -> Note {
        Note {
            account_id,
            actor: actor.label(),
            action,
            detail: detail.into(),
            ip: ip.map(str::to_string),
            store_id: None,
        }
    }

    /// The same entry, about `store_id` (every entry about one store says which, so the audit
    /// page's store filter finds it whatever the store is called now).
    pub fn store(self, store_id: StoreId) -> Note {
        Note { store_id: Some(store_id), ..self }
    }

    /// The same entry for another account (sign-up learns its account ID inside its transaction).
    pub fn for_account(self, account_id: AccountId) -> Note {
        Note { account_id, ..self }
    }
}

const INSERT: &str = "insert into audit_log (account_id, actor, action, detail, ip, created_at, store_id)
     values ($1, $2, $3, $4, $5, $6, $7)";

/// A connection of either backend that can append audit entries (inside a transaction:
/// `audit::record_in(&mut *tx, &note)`).
pub trait AuditConnection: Send {
    fn append(&mut self, note: &Note) -> impl Future<Output = sqlx::Result<()>> + Send;
}

macro_rules! audit_connection {
    ($conn:ty) => {
        impl AuditConnection for $conn {
            async fn append(&mut self, note: &Note) -> sqlx::Result<()> {
                sqlx::query(INSERT)
                    .bind(note.account_id)
                    .bind(&note.actor)
                    .bind(note.action.code())
                    .bind(&note.detail)
                    .bind(note.ip.as_deref())
                    .bind(now())
                    .bind(note.store_id)
                    .execute(&mut *self)
                    .await
                    .map(|_| ())
            }
        }
    };
}
audit_connection!(sqlx::SqliteConnection);
audit_connection!(sqlx::PgConnection);

/// Appends `note` on `conn`: pass the transaction of the change it records.
pub async fn record_in<C: AuditConnection + ?Sized>(conn: &mut C, note: &Note) -> sqlx::Result<()> {
    conn.append(note).await
}

/// Appends an entry on its own, for events that change nothing else (sign-in, sign-out, a
/// failed attempt, a support access). Changes use [`record_in`] in their own transaction.
pub async fn record(
    db: &Db,
    account_id: AccountId,
    actor: Actor<'_>,
    action: Action,
    detail: &str,
    ip: Option<&str>,
) -> sqlx::Result<()> {
    record_note(db, &Note::new(account_id, actor, action, detail, ip)).await
}

/// Appends `note` on its own, like [`record`], for a standalone entry built as a [`Note`] (one
/// about a store, say).
pub async fn record_note(db: &Db, note: &Note) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut conn = p.acquire().await?;
        record_in(&mut *conn, note).await
    })
}

/// One page of the account's log, newest first, starting below `before_id` if given.
pub async fn page(db: &Db, account_id: AccountId, before_id: Option<i64>, limit: i64) -> sqlx::Result<Vec<Entry>> {
    with_pool!(db, |p| {
        sqlx::query_as(
            "select id, actor, action, detail, ip, created_at from audit_log
             where account_id = $1 and id < $2 order by id desc limit $3",
        )
        .bind(account_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(p)
        .await
    })
}

#[cfg(test)]
mod tests {
    use super::Changes;

    #[test]
    fn changes_name_only_what_changed_before_and_after() {
        let mut c = Changes::default();
        assert_eq!(c.detail("本店"), None, "nothing changed, no entry");
        c.field("ストア名", "本店", "本店");
        assert!(c.is_empty());
        c.field("ストア名", "本店", "新本店");
        c.field("在庫連動", "オフ", "オン");
        assert_eq!(c.detail("新本店").as_deref(), Some("新本店: ストア名 本店 → 新本店、在庫連動 オフ → オン"));
    }
}

#[cfg(test)]
mod search_tests {
    #[test]
    fn an_exports_search_text_is_masked() {
        // (The detail is a query string, percent-encoded like the one written.)
        let mask: String = url::form_urlencoded::byte_serialize(super::MASK.as_bytes()).collect();
        assert_eq!(super::masked_search("CSV出力: status=new&q=0901234"), format!("CSV出力: status=new&q={mask}"));
        assert_eq!(super::masked_search("CSV出力: q=%E5%B1%B1%E7%94%B0"), format!("CSV出力: q={mask}"));
        assert_eq!(super::masked_search("CSV出力: status=new"), "CSV出力: status=new");
    }
}
