//! Time rules parsed at the edge: cron schedules, calling windows and time
//! zones. Everything here is pure; callers pass the current time in.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveTime, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A campaign's cron schedule (5 fields, or 6 with seconds), fired in a time zone.
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a 5- or 6-field cron expression. Day-of-month and day-of-week
    /// combine with OR, as in classic cron.
    pub fn parse(text: &str) -> Result<Self, String> {
        let fields = text.split_whitespace().count();
        if !(fields == 5 || fields == 6) {
            return Err(format!(
                "cron expression {text:?} has {fields} fields; expected 5 (min hour dom month dow) or 6 (with seconds first)"
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(text)
            .map_err(|e| format!("invalid cron expression {text:?}: {e}"))?;
        Ok(Self {
            text: text.trim().to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, evaluated in `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.text)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Daily calling hours in local time, `HH:MM-HH:MM`; `00:00-24:00` is all day,
/// and a window whose end is before its start wraps midnight (`21:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes after local midnight when calling may start.
    pub start_min: u32,
    /// Minutes after local midnight when calling must stop (1440 = midnight).
    pub end_min: u32,
}

impl Window {
    /// All day.
    pub const ALL_DAY: Window = Window {
        start_min: 0,
        end_min: 1440,
    };

    /// Parses `HH:MM-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("calling window {text:?} is not HH:MM-HH:MM (e.g. 09:00-20:00)");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let start_min = parse_hhmm(a).ok_or_else(bad)?;
        let end_min = parse_hhmm(b).ok_or_else(bad)?;
        if start_min == 1440 {
            return Err(format!("calling window {text:?} starts at 24:00"));
        }
        if start_min == end_min {
            return Err(format!(
                "calling window {text:?} is empty; use 00:00-24:00 for all day"
            ));
        }
        Ok(Self { start_min, end_min })
    }

    /// Whether `local` (a wall-clock time of day) is inside the window.
    pub fn contains(&self, local: NaiveTime) -> bool {
        let m = local.hour() * 60 + local.minute();
        if self.start_min < self.end_min {
            m >= self.start_min && m < self.end_min
        } else {
            m >= self.start_min || m < self.end_min
        }
    }

    /// Whether `at` falls inside the window in zone `tz`.
    pub fn is_open(&self, at: DateTime<Utc>, tz: Tz) -> bool {
        self.contains(at.with_timezone(&tz).time())
    }

    /// The earliest instant at or after `at` when the window is open in `tz`
    /// (`at` itself when it already is), looking two days ahead (`at` when
    /// nothing opens by then). Local time enters the window either by
    /// reaching its start or by a daylight-saving jump into it, so only
    /// those instants are tried: the local starts of the days around `at`
    /// and the zone's offset changes within the horizon.
    pub fn next_open(&self, at: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        if self.is_open(at, tz) {
            return at;
        }
        let horizon = at + chrono::Duration::minutes(2 * 1440 + 60);
        let mut candidates = self.local_starts(at, tz);
        candidates.extend(offset_changes(at, horizon, tz));
        candidates.sort_unstable();
        candidates
            .into_iter()
            .filter(|t| *t > at && *t <= horizon)
            .find(|t| self.is_open(*t, tz))
            .unwrap_or(at)
    }

    /// The instants the window starts on the local days from the day before
    /// `at` to three days after (both instants of an hour lived twice; none
    /// for a start a daylight-saving gap skips).
    fn local_starts(&self, at: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
        use chrono::TimeZone;
        let today = at.with_timezone(&tz).date_naive();
        let Some(start) = NaiveTime::from_num_seconds_from_midnight_opt(self.start_min * 60, 0)
        else {
            return Vec::new();
        };
        (-1..=3)
            .filter_map(|d| today.checked_add_signed(chrono::Duration::days(d)))
            .flat_map(|day| {
                let local = tz.from_local_datetime(&day.and_time(start));
                [local.earliest(), local.latest()]
            })
            .flatten()
            .map(|t| t.with_timezone(&Utc))
            .collect()
    }

    /// Whether `at` falls inside the window in every zone of `zones`.
    pub fn is_open_in_all(&self, at: DateTime<Utc>, zones: &[Tz]) -> bool {
        zones.iter().all(|tz| self.is_open(at, *tz))
    }

    /// The earliest instant at or after `at` when the window is open in
    /// every zone of `zones` at once; `None` when that does not happen within
    /// three days (a window shorter than the zones' spread is never open in
    /// all of them). Jumps from one zone's opening to the next: no instant
    /// open in all of them is ever jumped over, since each jump goes to the
    /// first instant a closed zone opens.
    pub fn next_open_in_all(&self, at: DateTime<Utc>, zones: &[Tz]) -> Option<DateTime<Utc>> {
        let limit = at + chrono::Duration::days(3);
        let mut t = at;
        while t <= limit {
            match zones.iter().find(|tz| !self.is_open(t, **tz)) {
                None => return Some(t),
                Some(closed) => {
                    let next = self.next_open(t, *closed);
                    if next <= t {
                        return None;
                    }
                    t = next;
                }
            }
        }
        None
    }

    /// The `start` text of the window, `HH:MM`.
    pub fn start_text(&self) -> String {
        fmt_hhmm(self.start_min)
    }

    /// The `end` text of the window, `HH:MM`.
    pub fn end_text(&self) -> String {
        fmt_hhmm(self.end_min)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start_text(), self.end_text())
    }
}

impl FromStr for Window {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The instants in `(from, to]` at which `tz` changes its offset from UTC.
/// Offsets are sampled every six hours (no zone changes twice that fast)
/// and each change is narrowed to the second.
fn offset_changes(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> Vec<DateTime<Utc>> {
    use chrono::Offset;
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
    let step = chrono::Duration::hours(6);
    let mut out = Vec::new();
    let mut lo = from;
    let mut lo_offset = offset(lo);
    while lo < to {
        let hi = (lo + step).min(to);
        let hi_offset = offset(hi);
        if lo_offset != hi_offset {
            // The first whole second whose offset differs from `lo`'s.
            let at_secs = |s: i64| DateTime::from_timestamp(s, 0).unwrap_or(hi);
            let (mut a, mut b) = (lo.timestamp(), hi.timestamp() + 1);
            while b - a > 1 {
                let mid = a + (b - a) / 2;
                if offset(at_secs(mid)) == lo_offset {
                    a = mid;
                } else {
                    b = mid;
                }
            }
            out.push(at_secs(b));
        }
        lo = hi;
        lo_offset = hi_offset;
    }
    out
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn fmt_hhmm(min: u32) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

/// Parses an IANA time zone name (`Europe/Paris`, `UTC`), with a clear error.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Europe/Paris)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Against a minute-by-minute scan: from instants every 97 minutes over
    /// a week around the spring DST change (in the US and in Europe), for
    /// day and overnight windows and zone sets up to five hours apart, the
    /// opening found is the first minute open in every zone, or `None` when
    /// no minute of the next three days is.
    #[test]
    fn the_common_opening_of_several_zones_is_the_first_minute_open_in_all() {
        let sets: [&[Tz]; 4] = [
            &[chrono_tz::America::New_York, chrono_tz::America::Chicago],
            &[
                chrono_tz::America::St_Johns,
                chrono_tz::America::Halifax,
                chrono_tz::America::Puerto_Rico,
            ],
            &[
                chrono_tz::America::Whitehorse,
                chrono_tz::America::Toronto,
                chrono_tz::Europe::London,
            ],
            &[chrono_tz::America::Phoenix, chrono_tz::America::Denver],
        ];
        for window in ["09:00-20:00", "21:00-02:00", "09:00-09:30", "08:00-12:00"] {
            let w = Window::parse(window).unwrap();
            for zones in sets {
                let mut at = utc(2026, 3, 5, 0, 7);
                while at < utc(2026, 3, 12, 0, 0) {
                    let found = w.next_open_in_all(at, zones);
                    let base = at.with_second(0).unwrap();
                    let scan = std::iter::once(at)
                        .chain((1..=3 * 1440).map(|m| base + chrono::Duration::minutes(m)))
                        .find(|t| w.is_open_in_all(*t, zones));
                    assert_eq!(found, scan, "{window} in {zones:?} from {at}");
                    at += chrono::Duration::minutes(97);
                }
            }
        }
    }

    /// Against a minute-by-minute scan, in zones with hour and half-hour
    /// daylight saving, without it, and across both changes of the year.
    #[test]
    fn the_next_opening_in_one_zone_is_the_first_minute_open() {
        let zones = [
            chrono_tz::America::New_York,
            chrono_tz::Australia::Sydney,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Europe::London,
            chrono_tz::Asia::Kolkata,
            chrono_tz::America::Phoenix,
        ];
        let weeks = [
            utc(2026, 3, 5, 0, 7),
            utc(2026, 4, 2, 0, 7),
            utc(2026, 10, 1, 0, 7),
            utc(2026, 10, 29, 0, 7),
        ];
        for window in [
            "09:00-20:00",
            "21:00-02:00",
            "02:00-03:00",
            "01:30-02:15",
            "00:00-24:00",
        ] {
            let w = Window::parse(window).unwrap();
            for tz in zones {
                for start in weeks {
                    let mut at = start;
                    while at < start + chrono::Duration::days(7) {
                        let base = at.with_second(0).unwrap();
                        let scan = std::iter::once(at)
                            .chain((1..=2 * 1440 + 60).map(|m| base + chrono::Duration::minutes(m)))
                            .find(|t| w.is_open(*t, tz))
                            .unwrap_or(at);
                        assert_eq!(w.next_open(at, tz), scan, "{window} in {tz} from {at}");
                        at += chrono::Duration::minutes(53);
                    }
                }
            }
        }
    }

    #[test]
    fn five_and_six_field_crons_parse_and_others_are_refused() {
        assert!(Schedule::parse("*/5 * * * *").is_ok());
        assert!(Schedule::parse("0 */5 * * * *").is_ok());
        assert!(Schedule::parse("* * *").is_err());
        assert!(Schedule::parse("61 * * * *").is_err());
    }

    #[test]
    fn cron_fires_in_the_campaign_zone_not_utc() {
        // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
        let s = Schedule::parse("0 9 * * *").unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            s.next_after(utc(2026, 1, 10, 0, 0), ny),
            Some(utc(2026, 1, 10, 14, 0))
        );
        assert_eq!(
            s.next_after(utc(2026, 7, 10, 0, 0), ny),
            Some(utc(2026, 7, 10, 13, 0))
        );
    }

    #[test]
    fn windows_parse_and_refuse_nonsense() {
        assert_eq!(
            Window::parse("09:00-20:00").unwrap(),
            Window {
                start_min: 540,
                end_min: 1200
            }
        );
        assert_eq!(Window::parse("00:00-24:00").unwrap(), Window::ALL_DAY);
        for bad in [
            "9-20",
            "25:00-26:00",
            "09:00",
            "09:00-09:00",
            "24:00-01:00",
            "09:60-10:00",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_window_that_wraps_midnight_is_open_late_and_early_but_not_midday() {
        let w = Window::parse("21:00-02:00").unwrap();
        assert!(w.contains(NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(w.contains(NaiveTime::from_hms_opt(1, 59, 0).unwrap()));
        assert!(!w.contains(NaiveTime::from_hms_opt(2, 0, 0).unwrap()));
        assert!(!w.contains(NaiveTime::from_hms_opt(12, 0, 0).unwrap()));
    }

    #[test]
    fn the_window_follows_new_york_across_the_dst_change() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let w = Window::parse("09:00-20:00").unwrap();
        // Saturday 7 March 2026 (EST, UTC-5): 09:00 local is 14:00 UTC.
        assert!(!w.is_open(utc(2026, 3, 7, 13, 59), ny));
        assert!(w.is_open(utc(2026, 3, 7, 14, 0), ny));
        // Monday 9 March 2026 (EDT, UTC-4): 09:00 local is 13:00 UTC.
        assert!(w.is_open(utc(2026, 3, 9, 13, 0), ny));
        assert_eq!(
            w.next_open(utc(2026, 3, 9, 3, 0), ny),
            utc(2026, 3, 9, 13, 0)
        );
        // Across the night of the change: closed at 01:00 UTC Sunday 8 March, next opening 13:00 UTC.
        assert_eq!(
            w.next_open(utc(2026, 3, 8, 5, 0), ny),
            utc(2026, 3, 8, 13, 0)
        );
    }

    #[test]
    fn unknown_zones_are_refused_by_name() {
        assert!(parse_tz("Europe/Paris").is_ok());
        assert!(
            parse_tz("Mars/Olympus")
                .unwrap_err()
                .contains("Mars/Olympus")
        );
    }
}
