//! Phone numbers parsed at the edge into E.164 ([`PhoneNumber`]), so nothing
//! downstream handles raw strings; the time zones a number implies
//! ([`zones`]) and the state or province its area code lies in ([`regions`]).

use std::fmt;

use phonenumber::country::Id;

pub mod fast;
pub mod geo;
#[cfg(test)]
mod reference;
pub mod regions;
pub mod zones;

/// A valid phone number in E.164 form (`+14155552671`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PhoneNumber(String);

/// Why a number was refused, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing but punctuation.
    #[error("the phone number is empty")]
    Empty,
    /// A national number and no region to read it in.
    #[error(
        "{0:?} has no country code (+...) and the campaign has no default region (set --region or campaign_defaults.region)"
    )]
    NoRegion(String),
    /// The text is not a phone number at all.
    #[error("{0:?} is not a phone number")]
    Unparseable(String),
    /// It parses, but no such number can exist in its country's numbering plan.
    #[error("{0:?} is not a valid number in its country's numbering plan")]
    Invalid(String),
}

impl PhoneNumber {
    /// Parses `raw` (`+44 20 7946 0958`, `tel:+1-415-555-2671`, `(415) 555-2671`
    /// with region US, `0044 20...`) into E.164, using `region` for numbers
    /// without a country code.
    pub fn parse(raw: &str, region: Option<Id>) -> Result<Self, PhoneError> {
        let mut text = raw.trim();
        for prefix in ["tel:", "TEL:", "Tel:"] {
            if let Some(rest) = text.strip_prefix(prefix) {
                text = rest.trim();
            }
        }
        // A spreadsheet's "formula-safe" apostrophe, or an "=" prefix.
        let text = text.trim_start_matches(['\'', '=']).trim();
        if !text.chars().any(|c| c.is_ascii_digit()) {
            return if text.is_empty() {
                Err(PhoneError::Empty)
            } else {
                Err(PhoneError::Unparseable(raw.trim().to_string()))
            };
        }
        let international = text.starts_with('+') || text.starts_with("00");
        if !international && region.is_none() {
            return Err(PhoneError::NoRegion(raw.trim().to_string()));
        }
        // "00" is the international prefix in most of the world; read it as "+".
        let owned;
        let text = if region.is_none() && text.starts_with("00") {
            owned = format!("+{}", &text[2..]);
            owned.as_str()
        } else {
            text
        };
        // A number with its country code is read without the default region:
        // phonenumber would otherwise strip that region's national prefix
        // ("1" for US) from the national number (+33 1 42... became invalid).
        let region = if text.starts_with('+') { None } else { region };
        let parsed = phonenumber::parse(region, text)
            .map_err(|_| PhoneError::Unparseable(raw.trim().to_string()))?;
        // The crate's own `is_valid` accepts a pattern matching a prefix.
        let national = parsed.national().to_string();
        if !fast::is_valid_number(parsed.code().value(), &national) {
            return Err(PhoneError::Invalid(raw.trim().to_string()));
        }
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Self(e164))
    }

    /// Wraps text already known to be E.164 (read back from the database).
    pub fn from_e164_unchecked(s: String) -> Self {
        Self(s)
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The region the number belongs to, when its country code maps to one.
    pub fn region(&self) -> Option<Id> {
        if let Some(region) = fast::fast_region(&self.0) {
            return region;
        }
        phonenumber::parse(None, &self.0)
            .ok()
            .and_then(|p| p.country().id())
    }
}

impl sqlx::Type<sqlx::Sqlite> for PhoneNumber {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<sqlx::Sqlite>>::type_info()
    }

    fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Sqlite>>::compatible(ty)
    }
}

impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for PhoneNumber {
    fn encode_by_ref(
        &self,
        buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        <String as sqlx::Encode<'q, sqlx::Sqlite>>::encode(self.0.clone(), buf)
    }
}

/// Read back as written: every writer of a number column (the import, the
/// claim's due check, `dnc add`) parsed it first, and one row another
/// program wrote badly must not stop a query that reads every other row.
impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for PhoneNumber {
    fn decode(
        value: <sqlx::Sqlite as sqlx::Database>::ValueRef<'r>,
    ) -> Result<Self, sqlx::error::BoxDynError> {
        <String as sqlx::Decode<'r, sqlx::Sqlite>>::decode(value).map(Self)
    }
}

/// `+` and 7 to 15 digits: the form every number is stored in once validated.
pub fn is_e164_form(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_and_national_forms_normalise_to_e164() {
        let us = Some(Id::US);
        for raw in [
            "+14155552671",
            "+1 (415) 555-2671",
            "tel:+1-415-555-2671",
            " 415.555.2671 ",
            "(415) 555-2671",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw, us).unwrap().as_str(),
                "+14155552671",
                "{raw}"
            );
        }
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958", None)
                .unwrap()
                .as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse("0044 20 7946 0958", None)
                .unwrap()
                .as_str(),
            "+442079460958"
        );
        assert_eq!(
            PhoneNumber::parse("020 7946 0958", Some(Id::GB))
                .unwrap()
                .as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn bad_numbers_are_refused_with_a_reason() {
        assert_eq!(PhoneNumber::parse("  ", None), Err(PhoneError::Empty));
        assert!(matches!(
            PhoneNumber::parse("4155552671", None),
            Err(PhoneError::NoRegion(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("call me", Some(Id::US)),
            Err(PhoneError::Unparseable(_))
        ));
        assert!(matches!(
            PhoneNumber::parse("+1 123", None),
            Err(PhoneError::Invalid(_)) | Err(PhoneError::Unparseable(_))
        ));
        assert!(PhoneNumber::parse("+999 12345678", None).is_err());
    }

    #[test]
    fn an_international_number_ignores_the_default_region() {
        // The US national prefix "1" must not be stripped from a French number.
        let fr = PhoneNumber::parse("+33 1 42 68 53 00", Some(Id::US)).unwrap();
        assert_eq!(fr.as_str(), "+33142685300");
    }

    #[test]
    fn the_region_comes_from_the_country_code() {
        assert_eq!(
            PhoneNumber::parse("+33142685300", None).unwrap().region(),
            Some(Id::FR)
        );
    }
}
