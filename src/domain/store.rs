//! Store settings (product.md §2): which Yahoo environment a store talks to, its switches, and
//! the validation of the store form. The parsing lives here so every path that writes a store
//! (form, command line, later imports) applies the same rules.

use std::collections::BTreeMap;

/// Which base URLs a store's API calls go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// 本番: Yahoo's production hosts.
    Production,
    /// テスト環境: Yahoo's sandbox (`snbx-` seller IDs).
    Sandbox,
    /// ローカルシミュレーター: the simulator built into this service.
    Simulator,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Production, Environment::Sandbox, Environment::Simulator];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Production => "production",
            Environment::Sandbox => "sandbox",
            Environment::Simulator => "simulator",
        }
    }

    pub fn parse(s: &str) -> Option<Environment> {
        Environment::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Environment::Production => "本番",
            Environment::Sandbox => "テスト環境",
            Environment::Simulator => "ローカルシミュレーター",
        }
    }
}

/// The order statuses of this product (product.md §6), in the order the tabs show them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InternalStatus {
    New,
    AwaitingPayment,
    AwaitingShipment,
    Shipped,
    OnHold,
    Cancelled,
    Completed,
    Failed,
    AutoImportInbox,
}

impl InternalStatus {
    pub const ALL: [InternalStatus; 9] = [
        InternalStatus::New,
        InternalStatus::AwaitingPayment,
        InternalStatus::AwaitingShipment,
        InternalStatus::Shipped,
        InternalStatus::OnHold,
        InternalStatus::Cancelled,
        InternalStatus::Completed,
        InternalStatus::Failed,
        InternalStatus::AutoImportInbox,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InternalStatus::New => "new",
            InternalStatus::AwaitingPayment => "awaiting_payment",
            InternalStatus::AwaitingShipment => "awaiting_shipment",
            InternalStatus::Shipped => "shipped",
            InternalStatus::OnHold => "on_hold",
            InternalStatus::Cancelled => "cancelled",
            InternalStatus::Completed => "completed",
            InternalStatus::Failed => "failed",
            InternalStatus::AutoImportInbox => "auto_import_inbox",
        }
    }

    pub fn parse(s: &str) -> Option<InternalStatus> {
        InternalStatus::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            InternalStatus::New => "新規受付",
            InternalStatus::AwaitingPayment => "入金待ち",
            InternalStatus::AwaitingShipment => "出荷待ち",
            InternalStatus::Shipped => "出荷済み",
            InternalStatus::OnHold => "保留",
            InternalStatus::Cancelled => "キャンセル",
            InternalStatus::Completed => "完了",
            InternalStatus::Failed => "失敗",
            InternalStatus::AutoImportInbox => "自動受注取込",
        }
    }

    /// Statuses a store may move freshly imported orders to (ステータス自動変更).
    /// 新規受付 is where they arrive anyway; 失敗 and the inbox are the system's own.
    pub fn auto_change_targets() -> impl Iterator<Item = InternalStatus> {
        [InternalStatus::AwaitingPayment, InternalStatus::AwaitingShipment, InternalStatus::OnHold].into_iter()
    }
}

pub const MIN_IMPORT_INTERVAL_MINUTES: i64 = 1;
/// A new order shows up within about a minute by default.
pub const DEFAULT_IMPORT_INTERVAL_MINUTES: i64 = 1;
pub const MAX_IMPORT_INTERVAL_MINUTES: i64 = 1440;

/// What the store form submits, as typed.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct StoreForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub seller_id: String,
    #[serde(default)]
    pub environment: String,
    #[serde(default)]
    pub client_id: String,
    /// Blank on edit means "keep the stored secret".
    #[serde(default)]
    pub client_secret: String,
    #[serde(default)]
    pub auto_import_enabled: Option<String>,
    #[serde(default)]
    pub auto_import_interval_minutes: String,
    #[serde(default)]
    pub auto_status_change_enabled: Option<String>,
    #[serde(default)]
    pub auto_status_change_target: String,
    #[serde(default)]
    pub restrict_fraud_hold_changes: Option<String>,
    #[serde(default)]
    pub stock_sync_enabled: Option<String>,
    #[serde(default)]
    pub auto_import_inbox: Option<String>,
    /// Ticked to confirm that changing ストアアカウント or 接続先 of a connected store ends its
    /// connection.
    #[serde(default)]
    pub confirm_disconnect: Option<String>,
    /// Ticked to confirm turning the fraud-hold restriction off, having read the risk.
    #[serde(default)]
    pub confirm_unrestrict: Option<String>,
}

/// Validated store settings, ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    pub name: String,
    pub seller_id: String,
    pub environment: Environment,
    pub client_id: String,
    pub auto_import_enabled: bool,
    pub auto_import_interval_minutes: i64,
    pub auto_status_change_enabled: bool,
    pub auto_status_change_target: Option<InternalStatus>,
    pub restrict_fraud_hold_changes: bool,
    pub stock_sync_enabled: bool,
    /// Automatically imported orders wait in 「自動受注取込」 until someone takes them in.
    pub auto_import_inbox: bool,
}

/// Field name → Japanese message, shown next to the field.
pub type FieldErrors = BTreeMap<&'static str, &'static str>;

/// Seller IDs (ストアアカウント) are lower-case letters, digits and hyphens.
pub fn check_seller_id(input: &str, environment: Option<Environment>) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err("ストアアカウントを入力してください");
    }
    if s.len() > 64 || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err("ストアアカウントは半角英小文字・数字・ハイフンで入力してください");
    }
    if environment == Some(Environment::Sandbox) && !s.starts_with("snbx-") {
        return Err("テスト環境のストアアカウントは「snbx-」で始まります");
    }
    Ok(s.to_string())
}

pub fn checked(value: Option<String>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

impl StoreForm {
    /// Applies every rule of the store form. On error, nothing is returned to be stored.
    pub fn validate(&self) -> Result<StoreSettings, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = super::user::check_name(&self.name, "ストア名を入力してください")
            .map_err(|e| errors.insert("name", e))
            .ok();
        let environment = Environment::parse(&self.environment);
        if environment.is_none() {
            errors.insert("environment", "接続先を選んでください");
        }
        let seller_id = check_seller_id(&self.seller_id, environment).map_err(|e| errors.insert("seller_id", e)).ok();
        let client_id = self.client_id.trim().to_string();
        if client_id.len() > 200 || client_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.insert("client_id", "Client IDに空白や改行は使えません（200文字まで）");
        }
        if self.client_secret.len() > 500 || self.client_secret.trim().chars().any(char::is_control) {
            errors.insert("client_secret", "シークレットの形式が正しくありません");
        }
        let interval = match self.auto_import_interval_minutes.trim() {
            "" => Some(DEFAULT_IMPORT_INTERVAL_MINUTES),
            s => s
                .parse::<i64>()
                .ok()
                .filter(|m| (MIN_IMPORT_INTERVAL_MINUTES..=MAX_IMPORT_INTERVAL_MINUTES).contains(m)),
        };
        if interval.is_none() {
            errors.insert("auto_import_interval_minutes", "取込間隔は1〜1440分の整数で入力してください");
        }
        let auto_status_change_enabled = checked(self.auto_status_change_enabled.clone());
        let target = match self.auto_status_change_target.trim() {
            "" => None,
            s => match InternalStatus::parse(s).filter(|t| InternalStatus::auto_change_targets().any(|a| a == *t)) {
                Some(t) => Some(t),
                None => {
                    errors.insert("auto_status_change_target", "変更先のステータスを選んでください");
                    None
                }
            },
        };
        if auto_status_change_enabled && target.is_none() {
            errors.entry("auto_status_change_target").or_insert("自動変更する場合は変更先のステータスを選んでください");
        }
        match (name, seller_id, environment, interval) {
            (Some(name), Some(seller_id), Some(environment), Some(interval)) if errors.is_empty() => {
                Ok(StoreSettings {
                    name,
                    seller_id,
                    environment,
                    client_id,
                    auto_import_enabled: checked(self.auto_import_enabled.clone()),
                    auto_import_interval_minutes: interval,
                    auto_status_change_enabled,
                    auto_status_change_target: target,
                    restrict_fraud_hold_changes: checked(self.restrict_fraud_hold_changes.clone()),
                    stock_sync_enabled: checked(self.stock_sync_enabled.clone()),
                    auto_import_inbox: checked(self.auto_import_inbox.clone()),
                })
            }
            _ => Err(errors),
        }
    }

    /// The client secret typed into the form, if any (blank keeps the stored one).
    pub fn new_client_secret(&self) -> Option<&str> {
        Some(self.client_secret.trim()).filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> StoreForm {
        StoreForm {
            name: "本店".into(),
            seller_id: "mystore".into(),
            environment: "production".into(),
            client_id: "dj00abc".into(),
            restrict_fraud_hold_changes: Some("on".into()),
            ..StoreForm::default()
        }
    }

    #[test]
    fn a_good_form_validates_with_defaults() {
        let s = form().validate().unwrap();
        assert_eq!(s.auto_import_interval_minutes, DEFAULT_IMPORT_INTERVAL_MINUTES);
        assert!(s.restrict_fraud_hold_changes);
        assert!(!s.auto_import_enabled && !s.stock_sync_enabled && !s.auto_status_change_enabled);
    }

    #[test]
    fn each_bad_field_is_named() {
        let f = StoreForm {
            name: " ".into(),
            seller_id: "My Store".into(),
            environment: "mars".into(),
            auto_import_interval_minutes: "0".into(),
            auto_status_change_enabled: Some("on".into()),
            ..StoreForm::default()
        };
        let e = f.validate().unwrap_err();
        for field in ["name", "seller_id", "environment", "auto_import_interval_minutes", "auto_status_change_target"] {
            assert!(e.contains_key(field), "{field} not reported: {e:?}");
        }
    }

    #[test]
    fn sandbox_requires_snbx_prefix() {
        let f = StoreForm { environment: "sandbox".into(), ..form() };
        assert_eq!(f.validate().unwrap_err()["seller_id"], "テスト環境のストアアカウントは「snbx-」で始まります");
        let f = StoreForm { environment: "sandbox".into(), seller_id: "snbx-abc".into(), ..form() };
        assert!(f.validate().is_ok());
    }

    #[test]
    fn auto_change_target_must_be_offered() {
        let f = StoreForm { auto_status_change_target: "shipped".into(), ..form() };
        assert!(f.validate().is_err());
        let f = StoreForm {
            auto_status_change_enabled: Some("on".into()),
            auto_status_change_target: "awaiting_shipment".into(),
            ..form()
        };
        assert_eq!(f.validate().unwrap().auto_status_change_target, Some(InternalStatus::AwaitingShipment));
    }
}
