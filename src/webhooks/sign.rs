//! Signing: `X-Dialerd-Signature: sha256=<hex>` is the HMAC-SHA256, keyed
//! with the shared secret, of `"<X-Dialerd-Timestamp>.<body>"`. The receiver
//! recomputes it, compares in constant time, and refuses old timestamps so a
//! captured request cannot be replayed later.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The webhook secret. It never prints: `Debug` shows `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps a secret as read from its file, without the trailing newline a
    /// file usually ends with; `None` when nothing is left.
    pub fn new(raw: impl Into<Vec<u8>>) -> Option<Self> {
        let mut bytes: Vec<u8> = raw.into();
        while bytes.last().is_some_and(|b| b.is_ascii_whitespace()) {
            bytes.pop();
        }
        let start = bytes
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(bytes.len());
        bytes.drain(..start);
        (!bytes.is_empty()).then_some(Self(bytes))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&secret.0)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The signature header's value for a body sent at `timestamp` (unix seconds).
pub fn sign(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Whether `signature` (the header's value) is right for this body and
/// timestamp, compared in constant time.
pub fn verify(secret: &Secret, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    mac(secret, timestamp, body).verify_slice(&tag).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_and_fails_with_another() {
        let secret = Secret::new("s3cret\n").unwrap();
        let other = Secret::new("s3cret2").unwrap();
        let sig = sign(&secret, "1764600000", b"{\"a\":1}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert!(verify(&secret, "1764600000", b"{\"a\":1}", &sig));
        assert!(!verify(&other, "1764600000", b"{\"a\":1}", &sig));
        assert!(!verify(&secret, "1764600001", b"{\"a\":1}", &sig));
        assert!(!verify(&secret, "1764600000", b"{\"a\":2}", &sig));
        assert!(!verify(&secret, "1764600000", b"{\"a\":1}", "sha256=zz"));
    }

    #[test]
    fn the_signature_is_the_standard_hmac_sha256_of_timestamp_dot_body() {
        // As Python's hmac.new(b"Jefe", b'1764600000.{"a":1}', sha256) computes it.
        let secret = Secret::new("Jefe").unwrap();
        assert_eq!(
            sign(&secret, "1764600000", br#"{"a":1}"#),
            "sha256=68b0fc888661df188648e2cd16fc87a225315e425f601e9882fefbaa6bef6fc5"
        );
    }

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2").unwrap();
        assert!(!format!("{s:?} {s:#?}").contains("hunter2"));
        assert!(Secret::new(" \n").is_none());
    }
}
