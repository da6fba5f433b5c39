//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256("{id}.{ts}.{body}")>`
//! keyed by the base64 part of `whsec_…` secrets.

use crate::secret::Secret;
use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

const PREFIX: &str = "whsec_";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the secret is not whsec_<base64>")]
    BadSecret,
    #[error("no signature matches")]
    Mismatch,
    #[error("the timestamp is too far from now")]
    Stale,
}

/// A fresh `whsec_` secret over 32 random bytes.
pub fn generate_secret() -> Secret {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    Secret::new(format!("{PREFIX}{}", STANDARD.encode(key)))
}

/// The HMAC key a `whsec_` secret stands for.
pub fn secret_key(secret: &Secret) -> Result<Vec<u8>, SignatureError> {
    let encoded = secret
        .expose()
        .strip_prefix(PREFIX)
        .unwrap_or(secret.expose());
    STANDARD
        .decode(encoded)
        .map_err(|_| SignatureError::BadSecret)
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut mac = hmac::Context::with_key(&key);
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(itoa::Buffer::new().format(timestamp).as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.sign()
}

/// Appends `v1,<signature>` to `out`.
pub fn sign_into(out: &mut String, key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) {
    let tag = mac(key, msg_id, timestamp, body);
    out.push_str("v1,");
    STANDARD.encode_string(tag.as_ref(), out);
}

/// The `webhook-signature` value: one space-separated `v1,` signature per active secret.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a Secret>,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SignatureError> {
    let mut out = String::with_capacity(48);
    for secret in secrets {
        if !out.is_empty() {
            out.push(' ');
        }
        sign_into(&mut out, &secret_key(secret)?, msg_id, timestamp, body);
    }
    Ok(out)
}

/// Verifies a received delivery as a receiver would: any `v1,` signature in `header` may match,
/// and the timestamp must be within `tolerance_secs` of `now`.
pub fn verify(
    secret: &Secret,
    msg_id: &str,
    timestamp: i64,
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let key = secret_key(secret)?;
    for sig in header.split(' ') {
        let Some(encoded) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            continue;
        };
        let expected = mac(&key, msg_id, timestamp, body);
        if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_ref(), &tag).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's test suite.
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let header = signature_header(
            [&secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn generated_secrets_sign_and_verify() {
        let secret = generate_secret();
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(secret_key(&secret).unwrap().len(), 32);
        let header = signature_header([&secret], "evt_1", 100, b"{}").unwrap();
        assert_eq!(
            verify(&secret, "evt_1", 100, &header, b"{}", 100, 300),
            Ok(())
        );
        assert_eq!(
            verify(&secret, "evt_1", 100, &header, b"{ }", 100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "evt_2", 100, &header, b"{}", 100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&secret, "evt_1", 100, &header, b"{}", 1000, 300),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn two_secrets_give_two_signatures_each_verifying() {
        let (old, new) = (generate_secret(), generate_secret());
        let header = signature_header([&new, &old], "evt_1", 5, b"x").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&old, "evt_1", 5, &header, b"x", 5, 1).is_ok());
        assert!(verify(&new, "evt_1", 5, &header, b"x", 5, 1).is_ok());
    }

    #[test]
    fn bad_secret_is_an_error() {
        assert_eq!(
            signature_header([&Secret::new("whsec_***")], "m", 1, b"").unwrap_err(),
            SignatureError::BadSecret
        );
    }
}
