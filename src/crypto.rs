//! Encryption of secrets at rest (client secrets, OAuth tokens) and password hashing.
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a 32-byte key taken from the environment or
//! generated into the data folder on first run. The random 24-byte nonce makes fresh nonces safe
//! without a counter. The associated data names the column *and the row* (`store.client_secret:12`),
//! so a sealed value copied into another column or another store's row does not open there.
//! Values sealed before the row was named (format 1, the column only) are re-sealed at start by
//! `db::reseal`; [`SecretBox::open_v1`] exists only for that.

use std::{io::Write, path::Path, sync::Arc};

use anyhow::Context;
use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{
    Key, XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, Payload},
};

/// What each sealed secret is bound to: its column, named in the associated data (with its
/// row). Written here, with the sealing, so that the database layer and the Yahoo client both
/// name them without depending on each other.
pub mod purpose {
    pub const CLIENT_SECRET: &str = "store.client_secret";
    pub const REFRESH_TOKEN: &str = "store.refresh_token";
    pub const ACCESS_TOKEN: &str = "store.access_token";
}

/// Format 1: the associated data is the column name only (before row binding).
const FORMAT_V1: u8 = 1;
/// Format 2: the associated data is `<column>:<row id>`.
const FORMAT_V2: u8 = 2;
const NONCE_LEN: usize = 24;

/// Seals and opens secrets. Cheap to clone.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Arc<XChaCha20Poly1305>,
    /// A key for MACs, derived from the secrets key (never the key itself).
    mac_key: Arc<[u8; 32]>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; 32]) -> SecretBox {
        let mac_key = hmac_sha256(key, b"orderdesk mac key v1");
        SecretBox { cipher: Arc::new(XChaCha20Poly1305::new(Key::from_slice(key))), mac_key: Arc::new(mac_key) }
    }

    /// A MAC of `data` for `purpose` (for example the anonymous CSRF cookie), URL-safe base64.
    /// Several servers sharing the secrets key make and accept the same MACs.
    pub fn mac(&self, purpose: &str, data: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut message = Vec::with_capacity(purpose.len() + 1 + data.len());
        message.extend_from_slice(purpose.as_bytes());
        message.push(0);
        message.extend_from_slice(data.as_bytes());
        URL_SAFE_NO_PAD.encode(hmac_sha256(&self.mac_key[..], &message))
    }

    /// Whether `mac` is [`SecretBox::mac`] of `data` for `purpose`, in constant time.
    pub fn verify_mac(&self, purpose: &str, data: &str, mac: &str) -> bool {
        constant_time_eq(&self.mac(purpose, data), mac)
    }

    /// The key from `ORDERDESK_SECRET_KEY` (base64), or the one in `<data dir>/secret.key`,
    /// created with owner-only permissions if it does not exist yet.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<SecretBox> {
        let encoded = match configured {
            Some(k) => k.trim().to_string(),
            None => {
                let path = data_dir.join("secret.key");
                if !path.exists() {
                    std::fs::create_dir_all(data_dir)
                        .with_context(|| format!("creating data folder {}", data_dir.display()))?;
                    let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                    let mut options = std::fs::OpenOptions::new();
                    options.write(true).create_new(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                    let mut file = options.open(&path).with_context(|| format!("creating {}", path.display()))?;
                    writeln!(file, "{}", STANDARD.encode(key))?;
                    tracing::info!(path = %path.display(), "generated a new secrets key");
                }
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        let bytes = STANDARD.decode(encoded).context("the secrets key is not valid base64")?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| anyhow::anyhow!("the secrets key must be 32 bytes"))?;
        Ok(SecretBox::from_key(&key))
    }

    /// Encrypts `plaintext` for the column `column` of the row `row` (format 2).
    pub fn seal(&self, column: &str, row: i64, plaintext: &str) -> Vec<u8> {
        self.seal_with(FORMAT_V2, &aad(column, row), plaintext)
    }

    /// Decrypts a value sealed by [`SecretBox::seal`] for the same column and row. A format-1
    /// value is refused here: it names no row, so it could have been moved from another one.
    pub fn open(&self, column: &str, row: i64, sealed: &[u8]) -> anyhow::Result<String> {
        anyhow::ensure!(sealed.first() == Some(&FORMAT_V2), "not a format-2 secret");
        self.open_with(&aad(column, row), sealed)
    }

    /// Whether the value is in the old format 1 (to be re-sealed).
    pub fn is_v1(sealed: &[u8]) -> bool {
        sealed.first() == Some(&FORMAT_V1)
    }

    /// Opens a format-1 value (associated data: the column only). For the re-sealing at start.
    pub fn open_v1(&self, column: &str, sealed: &[u8]) -> anyhow::Result<String> {
        anyhow::ensure!(Self::is_v1(sealed), "not a format-1 secret");
        self.open_with(column.as_bytes(), sealed)
    }

    /// Seals in the old format 1, as databases from before format 2 hold it: for tests of the
    /// re-sealing only.
    #[doc(hidden)]
    pub fn seal_v1(&self, column: &str, plaintext: &str) -> Vec<u8> {
        self.seal_with(FORMAT_V1, column.as_bytes(), plaintext)
    }

    fn seal_with(&self, format: u8, aad: &[u8], plaintext: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory input");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(format);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> anyhow::Result<String> {
        anyhow::ensure!(sealed.len() > 1 + NONCE_LEN, "unknown secret format");
        let nonce = XNonce::from_slice(&sealed[1..1 + NONCE_LEN]);
        let plain = self
            .cipher
            .decrypt(nonce, Payload { msg: &sealed[1 + NONCE_LEN..], aad })
            .map_err(|_| anyhow::anyhow!("secret cannot be decrypted (wrong key, column or row)"))?;
        Ok(String::from_utf8(plain)?)
    }
}

/// The associated data of a format-2 value: the column and the row it belongs to.
fn aad(column: &str, row: i64) -> Vec<u8> {
    format!("{column}:{row}").into_bytes()
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Hashes a password with argon2id. Slow on purpose: call it through [`hash_password_blocking`].
fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?
        .to_string())
}

/// Hashes on a blocking thread so the runtime keeps serving other requests.
pub async fn hash_password_blocking(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await?
}

/// Checks a password against a stored hash on a blocking thread.
pub async fn verify_password_blocking(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?
}

/// A hash of a random password, verified against when the email is unknown so that an unknown
/// email and a wrong password take the same time.
pub fn dummy_hash() -> String {
    let random = XChaCha20Poly1305::generate_key(&mut OsRng);
    hash_password(&STANDARD.encode(random)).expect("hashing a random password succeeds")
}

/// A random URL-safe token (CSRF tokens, OAuth state).
pub fn random_token() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = XChaCha20Poly1305::generate_key(&mut OsRng);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two strings in time that does not depend on where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip() {
        let b = SecretBox::from_key(&[7; 32]);
        let sealed = b.seal("store.client_secret", 12, "s3cr3t");
        assert!(!sealed.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(sealed[0], FORMAT_V2);
        assert_eq!(b.open("store.client_secret", 12, &sealed).unwrap(), "s3cr3t");
        assert_ne!(sealed, b.seal("store.client_secret", 12, "s3cr3t"), "nonces must differ");
    }

    #[test]
    fn wrong_purpose_or_key_fails() {
        let b = SecretBox::from_key(&[7; 32]);
        let sealed = b.seal("store.client_secret", 12, "s3cr3t");
        assert!(b.open("store.refresh_token", 12, &sealed).is_err());
        assert!(b.open("store.client_secret", 13, &sealed).is_err(), "another row's value does not open");
        assert!(SecretBox::from_key(&[8; 32]).open("store.client_secret", 12, &sealed).is_err());
        assert!(b.open("store.client_secret", 12, &[2, 2, 3]).is_err());
    }

    #[test]
    fn format_1_opens_only_through_open_v1() {
        let b = SecretBox::from_key(&[7; 32]);
        let old = b.seal_v1("store.client_secret", "s3cr3t");
        assert!(SecretBox::is_v1(&old));
        assert!(b.open("store.client_secret", 12, &old).is_err(), "format 1 names no row");
        assert_eq!(b.open_v1("store.client_secret", &old).unwrap(), "s3cr3t");
        assert!(b.open_v1("store.client_secret", &b.seal("store.client_secret", 12, "x")).is_err());
    }

    #[test]
    fn key_file_is_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load(None, dir.path()).unwrap();
        let sealed = a.seal("p", 1, "x");
        let b = SecretBox::load(None, dir.path()).unwrap();
        assert_eq!(b.open("p", 1, &sealed).unwrap(), "x");
    }

    #[test]
    fn configured_key_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SecretBox::load(Some("c2hvcnQ="), dir.path()).is_err());
        assert!(SecretBox::load(Some(&STANDARD.encode([1u8; 32])), dir.path()).is_ok());
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
