//! Validation of one row, the same for every source: the phone number parsed
//! to E.164, the optional columns checked, the rest gathered into the
//! `call_context` JSON object. Also [`validate_direct`], the same rules for
//! rows other programs insert straight into the database.

use phonenumber::country::Id;

use super::header::Mapping;
use crate::phone::fast::{parse_number, parse_phone};
use crate::phone::zones::{ZoneSource, parse_contact_tz, zone_source};
use crate::store::NewContact;

/// The longest value a cell may hold; a longer one rejects its row.
pub const MAX_CELL_BYTES: usize = 64 * 1024;
/// How much of a rejected row's text is kept.
pub const MAX_RAW_BYTES: usize = 1024;

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The row's line (the header is line 1; for SQLite sources the row ordinal + 1).
    pub line: u64,
    /// Where a person finds the row: `line 7` in a CSV file, `row 5` in an SQLite source.
    pub location: String,
    /// Why, as a sentence.
    pub reason: String,
    /// The row's text, truncated to about 1 KiB.
    pub raw: String,
}

impl std::fmt::Display for Reject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// What a source produced for one row.
#[derive(Debug)]
pub enum Item {
    /// A contact to insert, and where its calling zones will come from
    /// (worked out here, on the reading thread, not by the writer).
    Valid(NewContact, ZoneSource),
    /// A refused row.
    Reject(Reject),
}

/// How rows are located in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locator {
    /// By line in a text file.
    Line,
    /// By row ordinal in a table or query result (line = ordinal + 1).
    Row,
}

impl Locator {
    /// `line 7` or `row 6`.
    pub fn describe(self, line: u64) -> String {
        match self {
            Locator::Line => format!("line {line}"),
            Locator::Row => format!("row {}", line.saturating_sub(1)),
        }
    }
}

/// Checks rows against a mapped header.
#[derive(Debug, Clone)]
pub struct Validator {
    /// The mapped header.
    pub mapping: Mapping,
    /// Region for numbers without a country code.
    pub region: Option<Id>,
    /// How rows are located.
    pub locator: Locator,
    /// Field separator used to rebuild a rejected row's text.
    pub delimiter: u8,
}

impl Validator {
    /// Checks one row; `None` for an empty row, which is skipped silently.
    pub fn check<S: AsRef<str>>(&self, line: u64, values: &[S]) -> Option<Item> {
        if values.iter().all(|v| v.as_ref().trim().is_empty()) {
            return None;
        }
        Some(match self.contact(line, values) {
            Ok(c) => {
                let zones = zone_source(c.timezone.is_some(), c.phone_number.as_str());
                Item::Valid(c, zones)
            }
            Err(reason) => Item::Reject(self.reject(line, reason, values)),
        })
    }

    /// A reject for row `line` with its text rebuilt from `values`.
    pub fn reject<S: AsRef<str>>(&self, line: u64, reason: String, values: &[S]) -> Reject {
        Reject {
            line,
            location: self.locator.describe(line),
            reason,
            raw: raw_text(values, self.delimiter),
        }
    }

    fn contact<S: AsRef<str>>(&self, line: u64, values: &[S]) -> Result<NewContact, String> {
        let m = &self.mapping;
        if values.len() != m.width() {
            return Err(format!(
                "the row has {} field{} but the header has {} (check for an unquoted {:?} inside a value)",
                values.len(),
                if values.len() == 1 { "" } else { "s" },
                m.width(),
                char::from(self.delimiter)
            ));
        }
        if let Some((i, v)) = values
            .iter()
            .enumerate()
            .find(|(_, v)| v.as_ref().len() > MAX_CELL_BYTES)
        {
            return Err(format!(
                "the value in column {:?} is {} long; a cell may hold at most 64 KiB",
                m.names[i],
                human_size(v.as_ref().len())
            ));
        }
        let phone_number =
            parse_number(values[m.phone].as_ref(), self.region).map_err(|e| e.to_string())?;
        let opt = |i: Option<usize>| {
            i.map(|i| values[i].as_ref().trim())
                .filter(|v| !v.is_empty())
        };
        let timezone = opt(m.timezone)
            .map(|tz| parse_contact_tz(tz).map(|z| z.name().to_string()))
            .transpose()?;
        let agent_id = opt(m.agent_id)
            .map(|a| {
                a.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("agent_id {a:?} is not a positive whole number"))
            })
            .transpose()?;
        let external_id = opt(m.external_id).map(str::to_string);
        let mut ctx = String::with_capacity(2 + m.context.len() * 24);
        ctx.push('{');
        for (n, (i, key)) in m.context.iter().enumerate() {
            if n > 0 {
                ctx.push(',');
            }
            ctx.push_str(key);
            push_json_str(&mut ctx, values[*i].as_ref().trim());
        }
        ctx.push('}');
        Ok(NewContact {
            phone_number,
            call_context: ctx,
            timezone,
            agent_id,
            external_id,
            source_line: i64::try_from(line).unwrap_or(i64::MAX),
        })
    }
}

/// Validates a number another program inserted directly (with its optional
/// `timezone` column) by the rules an import applies: `Ok` with the E.164
/// form, or `Err` with the reason, ready for [`crate::store::Store::store_validations`].
pub fn validate_direct(
    raw_number: &str,
    timezone: Option<&str>,
    region: Option<Id>,
) -> Result<String, String> {
    let e164 = parse_phone(raw_number, region).map_err(|e| e.to_string())?;
    if let Some(tz) = timezone.map(str::trim).filter(|t| !t.is_empty()) {
        parse_contact_tz(tz)?;
    }
    Ok(e164)
}

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A row's text rebuilt with `delimiter`, quoting as CSV does, cut to about
/// [`MAX_RAW_BYTES`] on a character boundary.
pub fn raw_text<S: AsRef<str>>(values: &[S], delimiter: u8) -> String {
    let d = char::from(delimiter);
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if out.len() > MAX_RAW_BYTES {
            break;
        }
        if i > 0 {
            out.push(d);
        }
        let v = v.as_ref();
        let v = &v[..floor_char_boundary(v, MAX_RAW_BYTES + 1)];
        if v.contains([d, '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&v.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(v);
        }
    }
    if out.len() > MAX_RAW_BYTES {
        out.truncate(floor_char_boundary(&out, MAX_RAW_BYTES));
        out.push('…');
    }
    out
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// `5.0 MB`, `70 KiB`.
fn human_size(n: usize) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KiB", n / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::header::map_header;

    fn validator(header: &[&str], region: Option<Id>) -> Validator {
        let h: Vec<String> = header.iter().map(|s| s.to_string()).collect();
        Validator {
            mapping: map_header(&h).unwrap(),
            region,
            locator: Locator::Line,
            delimiter: b',',
        }
    }

    #[test]
    fn context_values_are_json_strings_under_their_written_names() {
        let v = validator(&["Phone", "First Name", "note"], None);
        let Some(Item::Valid(c, _)) = v.check(2, &["+14155552671", "Zoë", "say \"hi\"\n"]) else {
            panic!()
        };
        assert_eq!(
            c.call_context,
            r#"{"First Name":"Zoë","note":"say \"hi\""}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&c.call_context).unwrap();
        assert_eq!(parsed["First Name"], "Zoë");
    }

    #[test]
    fn an_empty_row_is_skipped_and_a_ragged_one_rejected() {
        let v = validator(&["phone", "name"], None);
        assert!(v.check(2, &["", " "]).is_none());
        let Some(Item::Reject(r)) = v.check(3, &["+14155552671"]) else {
            panic!()
        };
        assert_eq!(
            r.to_string(),
            "line 3: the row has 1 field but the header has 2 (check for an unquoted ',' inside a value)"
        );
    }

    #[test]
    fn a_bad_time_zone_or_agent_id_rejects_the_row() {
        let v = validator(&["phone", "timezone", "agent_id"], None);
        let Some(Item::Reject(r)) = v.check(2, &["+14155552671", "Mars/Olympus", ""]) else {
            panic!()
        };
        assert!(
            r.reason.contains("unknown time zone \"Mars/Olympus\""),
            "{r}"
        );
        let Some(Item::Reject(r)) = v.check(2, &["+14155552671", "", "seven"]) else {
            panic!()
        };
        assert!(r.reason.contains("agent_id \"seven\""), "{r}");
    }

    #[test]
    fn raw_text_is_requoted_and_truncated() {
        assert_eq!(raw_text(&["a,b", "c"], b','), "\"a,b\",c");
        let long = "x".repeat(5000);
        assert!(raw_text(&[long.as_str()], b',').len() <= MAX_RAW_BYTES + 3);
    }

    #[test]
    fn direct_validation_normalises_or_explains() {
        assert_eq!(
            validate_direct("(415) 555-2671", None, Some(Id::US)),
            Ok("+14155552671".into())
        );
        assert!(validate_direct("+14155552671", Some("Nowhere/Land"), None).is_err());
        assert!(
            validate_direct("555", None, None)
                .unwrap_err()
                .contains("no country code")
        );
    }
}
