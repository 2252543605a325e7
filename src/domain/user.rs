//! Users, roles and the validation of what people type into the account forms.

use serde::{Deserialize, Serialize};

/// A merchant user's role inside their account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users, stores and settings.
    Owner,
    /// Works orders.
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "staff" => Some(Role::Staff),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "オーナー",
            Role::Staff => "スタッフ",
        }
    }
}

/// An email address, trimmed and lower-cased so that sign-in is case-insensitive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, &'static str> {
        let s = input.trim().to_lowercase();
        if s.is_empty() {
            return Err("メールアドレスを入力してください");
        }
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(s.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if valid { Ok(Email(s)) } else { Err("メールアドレスの形式が正しくありません") }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD_CHARS: usize = 10;

/// How long a password reset link issued by support staff works (it works once).
pub const RESET_LINK_VALID_MINUTES: i64 = 60;
const MAX_PASSWORD_BYTES: usize = 1024;

/// A new password chosen by a person. Checked for length only: long passphrases beat
/// composition rules, and the limit keeps hashing bounded.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("パスワードは10文字以上で入力してください");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("パスワードが長すぎます（1024バイトまで）");
    }
    Ok(())
}

/// A display name or account name: required, one line, bounded.
pub fn check_name(input: &str, empty_message: &'static str) -> Result<String, &'static str> {
    let s = input.trim();
    if s.is_empty() {
        return Err(empty_message);
    }
    if s.chars().count() > 100 {
        return Err("100文字以内で入力してください");
    }
    if s.chars().any(char::is_control) {
        return Err("改行や制御文字は使えません");
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        assert_eq!(Email::parse("  Taro@Example.JP ").unwrap().as_str(), "taro@example.jp");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in ["", "taro", "taro@", "@example.jp", "taro@example", "ta ro@example.jp", "a@b@c.jp", "a@.jp"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn password_length_rule() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("パスワードは十文字以上").is_ok());
        assert!(check_new_password(&"x".repeat(2000)).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  山田商店 ", "e").unwrap(), "山田商店");
        assert_eq!(check_name("  ", "e"), Err("e"));
        assert!(check_name("a\nb", "e").is_err());
        assert!(check_name(&"あ".repeat(101), "e").is_err());
    }
}
