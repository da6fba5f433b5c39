//! Tenants and API keys. Keys are random, shown once, and stored as SHA-256 hashes.

use crate::error::Result;
use crate::store::{ApiKey, Store, Tenant};
use time::OffsetDateTime;

/// A new API key: `hk_` and 32 random bytes (256 bits), base64url. Shown once, stored hashed.
pub fn generate_key() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "hk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The hex SHA-256 of a presented key: what the store indexes keys by.
pub fn hash_key(key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    let mut out = String::with_capacity(64);
    for &b in digest.as_ref() {
        out.push(char::from_digit((b >> 4) as u32, 16).expect("nibble"));
        out.push(char::from_digit((b & 0xf) as u32, 16).expect("nibble"));
    }
    out
}

/// Makes sure `tenant_id` exists and accepts `key`: how the local stack and tests set up the
/// tenant behind `HERALD_API_KEY`. Idempotent.
pub async fn ensure_tenant_with_key(
    store: &dyn Store,
    tenant_id: &str,
    name: &str,
    key: &str,
) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    store
        .put_tenant(&Tenant {
            id: tenant_id.to_string(),
            name: name.to_string(),
            created_at: now,
        })
        .await?;
    store
        .put_api_key(&ApiKey {
            id: crate::ids::prefixed("key"),
            tenant_id: tenant_id.to_string(),
            hash: hash_key(key),
            created_at: now,
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_distinct() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with("hk_") && a.len() == 3 + 43);
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
