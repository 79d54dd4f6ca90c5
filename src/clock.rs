//! The one clock everything reads. Production code uses [`SystemClock`];
//! tests use [`ManualClock`] to run days of schedule in milliseconds.
//! Nothing else in the crate calls `Utc::now()` or sleeps on its own.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

/// A source of the current time that can also wait.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current UTC time.
    fn now(&self) -> DateTime<Utc>;

    /// Waits until [`Clock::now`] is at or past `deadline`.
    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>>;

    /// Waits for `dur` of this clock's time.
    fn sleep(&self, dur: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.sleep_until(plus(self.now(), dur))
    }
}

/// A shared handle to the clock.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time, waiting with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let left = (deadline - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(left).await;
        })
    }
}

/// A clock that only moves when told to; sleepers wake when it passes their deadline.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    // A std Mutex: nothing awaits while it is held.
    now: Mutex<DateTime<Utc>>,
    moved: Notify,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(ManualInner {
                now: Mutex::new(start),
                moved: Notify::new(),
            }),
        }
    }

    /// Moves the clock forward by `by` and wakes every sleeper whose deadline passed.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).unwrap_or(chrono::TimeDelta::MAX);
        {
            let mut now = self.inner.now.lock().unwrap_or_else(|p| p.into_inner());
            *now += by;
        }
        self.inner.moved.notify_waiters();
    }

    /// Sets the clock to `to` (forwards or backwards) and wakes sleepers.
    pub fn set(&self, to: DateTime<Utc>) {
        *self.inner.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
        self.inner.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.inner.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sleep_until(
        &self,
        deadline: DateTime<Utc>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            loop {
                // Register interest before checking, so an advance in between is not missed.
                let moved = self.inner.moved.notified();
                if self.now() >= deadline {
                    return;
                }
                moved.await;
            }
        })
    }
}

/// `t + d`, saturating at the end of representable time instead of panicking.
pub fn plus(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the start of representable time instead of panicking.
pub fn minus(t: DateTime<Utc>, d: chrono::Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Formats a time the way the database stores it: ISO-8601 UTC to the second,
/// `2026-11-25T08:00:00Z`. One fixed width, so ordering by text is ordering by time.
pub fn to_db_text(t: DateTime<Utc>) -> String {
    db_text(t, false).unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// Formats an instant to the millisecond, the way send instants are stored:
/// `2026-11-25T08:00:00.123Z`. One fixed width, so text order is time order
/// within a column written this way.
pub fn to_db_text_ms(t: DateTime<Utc>) -> String {
    db_text(t, true).unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The stored form written digit by digit: chrono's `format` parses its
/// pattern on every call, and every claim, try and result writes a time.
/// `None` (chrono then formats it) for a year outside 0..=9999 or a leap
/// second, which chrono writes in its own way.
fn db_text(t: DateTime<Utc>, millis: bool) -> Option<String> {
    use chrono::{Datelike, Timelike};
    // Each accessor of a `DateTime` converts it to its naive form again:
    // convert once.
    let naive = t.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let (year, nanos) = (date.year(), time.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = [0u8; 24];
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, date.month());
    put(8, 2, date.day());
    put(11, 2, time.hour());
    put(14, 2, time.minute());
    put(17, 2, time.second());
    put(20, 3, nanos / 1_000_000);
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        out[i] = c;
    }
    let len = if millis {
        out[23] = b'Z';
        24
    } else {
        out[19] = b'Z';
        20
    };
    Some(String::from_utf8_lossy(&out[..len]).into_owned())
}

/// Parses a stored time. Accepts any RFC 3339 text and SQLite's own
/// `YYYY-MM-DD HH:MM:SS` (UTC), which `datetime('now')` and other writers produce.
pub fn from_db_text(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        let c2 = clock.clone();
        let task = tokio::spawn(async move { c2.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_secs(1800));
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_panicking() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            plus(t, Duration::from_secs(u64::MAX)),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            minus(DateTime::<Utc>::MIN_UTC, chrono::Duration::seconds(900)),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn db_text_is_iso8601_utc() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        assert_eq!(to_db_text(t), "2026-11-25T08:00:00Z");
        assert_eq!(from_db_text("2026-11-25T08:00:00Z"), Some(t));
        assert_eq!(from_db_text("2026-11-25 08:00:00"), Some(t));
        assert_eq!(from_db_text("yesterday"), None);
    }

    #[test]
    fn send_instants_keep_their_milliseconds_and_read_back() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap()
            + chrono::Duration::milliseconds(123);
        assert_eq!(to_db_text_ms(t), "2026-11-25T08:00:00.123Z");
        assert_eq!(from_db_text(&to_db_text_ms(t)), Some(t));
        let whole = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        assert_eq!(to_db_text_ms(whole), "2026-11-25T08:00:00.000Z");
    }

    #[test]
    fn stored_times_are_written_exactly_as_chrono_writes_them() {
        let start = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        // A prime step in milliseconds walks every field through its range.
        let mut t = start;
        for _ in 0..20_000 {
            assert_eq!(to_db_text(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(
                to_db_text_ms(t),
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            t += chrono::Duration::milliseconds(9_999_991_337);
        }
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap(),
            start + chrono::Duration::nanoseconds(999_999_999),
        ] {
            assert_eq!(to_db_text(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            assert_eq!(
                to_db_text_ms(t),
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
        }
    }
}
