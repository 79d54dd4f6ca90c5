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
}
