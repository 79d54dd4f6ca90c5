//! A wrapper for the API key that never prints: `Debug` and `Display` show
//! `[redacted]`, and the only way to the text is [`ApiKey::expose`], called
//! where the `Authorization` header is built and nowhere else.

use std::fmt;

/// The OmniDimension API key.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key, trimming the whitespace and newline a key file usually ends with.
    /// Returns `None` for an empty key.
    pub fn new(raw: impl Into<String>) -> Option<Self> {
        let s: String = raw.into();
        let t = s.trim();
        if t.is_empty() {
            None
        } else {
            Some(Self(t.to_string()))
        }
    }

    /// The key itself. Only for building the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short fingerprint (`sha256:` and the first 16 hex digits of the
    /// key's SHA-256): tells two keys apart, and says nothing usable about
    /// either. Stored with a pause the key caused.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.0.as_bytes());
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_prints() {
        let k = ApiKey::new("sk-very-secret\n").unwrap();
        assert_eq!(k.expose(), "sk-very-secret");
        assert!(!format!("{k:?} {k} {k:#?}").contains("very-secret"));
        assert!(ApiKey::new("  \n").is_none());
    }

    #[test]
    fn a_fingerprint_tells_keys_apart_without_showing_them() {
        let a = ApiKey::new("sk-very-secret").unwrap();
        let b = ApiKey::new("sk-very-secret\n").unwrap();
        let c = ApiKey::new("sk-other-secret").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert!(a.fingerprint().starts_with("sha256:"));
        assert_eq!(a.fingerprint().len(), "sha256:".len() + 16);
        assert!(!a.fingerprint().contains("secret"));
    }
}
