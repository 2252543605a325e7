//! `X-sws-signature` (yahoo-store-api.md §3): the RSA encryption, with PKCS#1 v1.5 padding, of
//! `<sellerId>:<unix seconds>` under the store's public key, in standard padded Base64.
//! It is encryption, not signing, so the value differs on every call.

use base64::{Engine, engine::general_purpose::STANDARD};
use rsa::{Pkcs1v15Encrypt, RsaPublicKey};

/// The text that is encrypted.
pub fn plaintext(seller_id: &str, unix_seconds: i64) -> String {
    format!("{seller_id}:{unix_seconds}")
}

/// Builds the header value. CPU-bound (a modular exponentiation): call it on a blocking thread.
pub fn build(key: &RsaPublicKey, seller_id: &str, unix_seconds: i64) -> Result<String, rsa::Error> {
    let cipher =
        key.encrypt(&mut rand::thread_rng(), Pkcs1v15Encrypt, plaintext(seller_id, unix_seconds).as_bytes())?;
    Ok(STANDARD.encode(cipher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::RsaPrivateKey;

    #[test]
    fn decrypts_back_to_seller_and_time() {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        let public = RsaPublicKey::from(&private);
        let a = build(&public, "mystore", 1_717_200_000).unwrap();
        let b = build(&public, "mystore", 1_717_200_000).unwrap();
        assert_ne!(a, b, "PKCS#1 v1.5 encryption is randomised");
        let plain = private.decrypt(Pkcs1v15Encrypt, &STANDARD.decode(a).unwrap()).unwrap();
        assert_eq!(plain, b"mystore:1717200000");
    }
}
