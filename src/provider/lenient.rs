//! Tolerant readers for JSON fields of unreliable type. The API writes `false`
//! where others write `null` or `""`, and numbers sometimes arrive as strings;
//! every reader here maps each of those to `None` instead of failing.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// An integer from a number (integral) or a numeric string; `false`, `null`,
/// `""`, fractions and anything else are `None`.
pub(crate) fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| integral(n.as_f64()?)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| integral(s.parse::<f64>().ok()?))
        }
        _ => None,
    }
}

/// `f` as an integer when it is a whole number well inside `i64`.
fn integral(f: f64) -> Option<i64> {
    // 9e15 < 2^53: every whole f64 below it converts exactly.
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// A finite float from a number or a numeric string.
pub(crate) fn float(v: Option<&Value>) -> Option<f64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// Non-empty trimmed text from a string, or a number's decimal text.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let t = s.trim();
            (!t.is_empty()).then(|| t.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A flag from a bool, `"true"`/`"false"`/`"yes"`/`"no"`, or 0/1; anything else is false.
pub(crate) fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "yes" | "1")
        }
        _ => false,
    }
}

/// An opaque id: a non-zero integer or non-empty text (not `"0"`, not
/// `"false"`). An object yields its `id` field (the `call_request_id` shape).
pub(crate) fn opaque_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Object(o) => opaque_id(o.get("id")),
        Value::Number(n) => match n.as_i64().or_else(|| integral(n.as_f64()?)) {
            Some(0) => None,
            Some(i) => Some(i.to_string()),
            None => Some(n.to_string()),
        },
        Value::String(s) => {
            let t = s.trim();
            let empty = t.is_empty()
                || t == "0"
                || t.eq_ignore_ascii_case("false")
                || t.eq_ignore_ascii_case("null");
            (!empty).then(|| t.to_string())
        }
        _ => None,
    }
}

/// A time from `MM/DD/YYYY HH:MM:SS` (taken as UTC), RFC 3339, or
/// `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = text(v)?;
    for fmt in [
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M:%S%.f",
        "%m/%d/%Y %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, fmt) {
            return Some(t.and_utc());
        }
    }
    crate::clock::from_db_text(&s)
}

/// Seconds from display text `M:S` or `H:M:S` (`1:07`, `0:0`, `1:02:03`).
pub(crate) fn clock_text_secs(s: &str) -> Option<f64> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return None;
    }
    let mut total = 0.0;
    for p in parts {
        let n: f64 = p.trim().parse().ok()?;
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        total = total * 60.0 + n;
    }
    total.is_finite().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn false_null_and_empty_are_absent_for_every_reader() {
        for v in [json!(false), json!(null), json!(""), json!([]), json!({})] {
            assert_eq!(int(Some(&v)), None, "{v}");
            assert_eq!(float(Some(&v)), None, "{v}");
            assert_eq!(text(Some(&v)), None, "{v}");
            assert!(!flag(Some(&v)), "{v}");
            assert_eq!(opaque_id(Some(&v)), None, "{v}");
            assert_eq!(time(Some(&v)), None, "{v}");
        }
        assert_eq!(int(None), None);
        assert_eq!(opaque_id(None), None);
    }

    #[test]
    fn numbers_may_arrive_as_strings() {
        assert_eq!(int(Some(&json!("42"))), Some(42));
        assert_eq!(int(Some(&json!(" 42 "))), Some(42));
        assert_eq!(int(Some(&json!(42.0))), Some(42));
        assert_eq!(int(Some(&json!("42.0"))), Some(42));
        assert_eq!(int(Some(&json!(42.5))), None);
        assert_eq!(float(Some(&json!("0.09"))), Some(0.09));
        assert_eq!(float(Some(&json!(67))), Some(67.0));
        assert_eq!(
            text(Some(&json!(16505550101_i64))),
            Some("16505550101".into())
        );
        assert!(flag(Some(&json!("true"))));
        assert!(flag(Some(&json!(1))));
    }

    #[test]
    fn request_ids_come_from_objects_numbers_or_strings() {
        assert_eq!(
            opaque_id(Some(&json!({"id": 3170021, "type_of_request": "api"}))),
            Some("3170021".into())
        );
        assert_eq!(
            opaque_id(Some(&json!({"id": false, "type_of_request": "web"}))),
            None
        );
        assert_eq!(
            opaque_id(Some(&json!({"id": "abc-1"}))),
            Some("abc-1".into())
        );
        assert_eq!(opaque_id(Some(&json!(3170021))), Some("3170021".into()));
        assert_eq!(opaque_id(Some(&json!("3170021"))), Some("3170021".into()));
        assert_eq!(opaque_id(Some(&json!(0))), None);
        assert_eq!(opaque_id(Some(&json!("0"))), None);
        assert_eq!(opaque_id(Some(&json!(true))), None);
    }

    #[test]
    fn times_parse_as_utc_in_the_api_format_and_rfc3339() {
        let want = Utc.with_ymd_and_hms(2026, 11, 24, 15, 2, 41).unwrap();
        assert_eq!(time(Some(&json!("11/24/2026 15:02:41"))), Some(want));
        assert_eq!(time(Some(&json!("2026-11-24T15:02:41Z"))), Some(want));
        assert_eq!(time(Some(&json!("2026-11-24T16:02:41+01:00"))), Some(want));
        assert_eq!(time(Some(&json!("24/11/2026 15:02:41"))), None);
        assert_eq!(time(Some(&json!("13/45/2026 99:99:99"))), None);
    }

    #[test]
    fn clock_text_gives_seconds() {
        assert_eq!(clock_text_secs("1:07"), Some(67.0));
        assert_eq!(clock_text_secs("0:0"), Some(0.0));
        assert_eq!(clock_text_secs("1:02:03"), Some(3723.0));
        assert_eq!(clock_text_secs("67"), None);
        assert_eq!(clock_text_secs("a:b"), None);
        assert_eq!(clock_text_secs("-1:00"), None);
    }
}
