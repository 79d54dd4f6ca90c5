//! A log's `time_of_call` as the API writes it: documented as
//! `MM/DD/YYYY HH:MM:SS` with no zone, seen as `DD/MM/YYYY` elsewhere, and
//! sometimes ISO 8601. Parsing keeps what is known and nothing more: an
//! instant when the text names its zone, else a wall time in an unknown zone
//! with every date reading the text allows. Which reading and which zone the
//! API uses is learned from evidence (see the reconciler), never guessed here.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// The widest zone offsets in use: UTC−12 … UTC+14.
pub const WIDEST_WEST_MIN: i64 = -12 * 60;
/// See [`WIDEST_WEST_MIN`].
pub const WIDEST_EAST_MIN: i64 = 14 * 60;

/// How a slash-separated date is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateOrder {
    /// `MM/DD/YYYY`, as documented.
    MonthFirst,
    /// `DD/MM/YYYY`.
    DayFirst,
}

/// A parsed `time_of_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTime {
    /// The text named its zone (`Z` or an offset): an instant.
    Instant(DateTime<Utc>),
    /// A wall time in a zone the API does not name; one reading per date
    /// order the text allows (two when day and month are both 12 or less
    /// and differ). ISO text without a zone is read as [`DateOrder::MonthFirst`]
    /// (its order is not in doubt; only its zone is).
    Wall(Vec<(DateOrder, NaiveDateTime)>),
}

impl LogTime {
    /// Parses `text`; `None` when it is no time in any known form.
    pub fn parse(text: &str) -> Option<LogTime> {
        let s = text.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(LogTime::Instant(t.with_timezone(&Utc)));
        }
        for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
                return Some(LogTime::Wall(vec![(DateOrder::MonthFirst, t)]));
            }
        }
        slashed(s)
    }

    /// The readings in `order` (or every reading when `order` is `None`).
    pub fn readings(&self, order: Option<DateOrder>) -> Vec<NaiveDateTime> {
        match self {
            LogTime::Instant(t) => vec![t.naive_utc()],
            LogTime::Wall(r) => r
                .iter()
                .filter(|(o, _)| order.is_none_or(|w| w == *o))
                .map(|(_, t)| *t)
                .collect(),
        }
    }

    /// Whether the text named its zone.
    pub fn is_instant(&self) -> bool {
        matches!(self, LogTime::Instant(_))
    }
}

/// `A/B/YYYY HH:MM[:SS[.f]]`, read both ways where both are dates.
fn slashed(s: &str) -> Option<LogTime> {
    let (date, time) = s.split_once(' ')?;
    let mut parts = date.split('/');
    let (a, b, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let y: i32 = y.trim().parse().ok()?;
    let time = ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(time.trim(), f).ok())?;
    let mut readings = Vec::new();
    if let Some(d) = NaiveDate::from_ymd_opt(y, a, b) {
        readings.push((DateOrder::MonthFirst, d.and_time(time)));
    }
    if let Some(d) = NaiveDate::from_ymd_opt(y, b, a) {
        readings.push((DateOrder::DayFirst, d.and_time(time)));
    }
    (!readings.is_empty()).then_some(LogTime::Wall(readings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn wall(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, s)
            .unwrap()
    }

    #[test]
    fn a_day_above_twelve_allows_only_one_date_order() {
        assert_eq!(
            LogTime::parse("11/24/2026 15:02:41"),
            Some(LogTime::Wall(vec![(
                DateOrder::MonthFirst,
                wall(2026, 11, 24, 15, 2, 41)
            )]))
        );
        assert_eq!(
            LogTime::parse("24/11/2026 15:02:41"),
            Some(LogTime::Wall(vec![(
                DateOrder::DayFirst,
                wall(2026, 11, 24, 15, 2, 41)
            )]))
        );
    }

    #[test]
    fn a_date_both_ways_valid_keeps_both_readings_and_guesses_neither() {
        let t = LogTime::parse("01/12/2026 08:00:00").unwrap();
        assert_eq!(
            t.readings(None),
            vec![wall(2026, 1, 12, 8, 0, 0), wall(2026, 12, 1, 8, 0, 0)]
        );
        assert_eq!(
            t.readings(Some(DateOrder::DayFirst)),
            vec![wall(2026, 12, 1, 8, 0, 0)]
        );
    }

    #[test]
    fn iso_text_with_an_offset_is_an_instant_and_without_one_a_wall_time() {
        let want = Utc.with_ymd_and_hms(2026, 11, 24, 15, 2, 41).unwrap();
        assert_eq!(
            LogTime::parse("2026-11-24T20:32:41+05:30"),
            Some(LogTime::Instant(want))
        );
        assert!(LogTime::parse("2026-11-24T15:02:41Z").unwrap().is_instant());
        assert!(!LogTime::parse("2026-11-24 15:02:41").unwrap().is_instant());
    }

    #[test]
    fn text_that_is_no_time_is_refused_not_guessed() {
        for bad in [
            "",
            "yesterday",
            "13/45/2026 10:00:00",
            "1/2/3/2026 10:00",
            "11/24/2026",
            "11/24/2026 25:00:00",
        ] {
            assert_eq!(LogTime::parse(bad), None, "{bad:?}");
        }
    }
}
