//! What the reconciler learns about the API from calls whose request it
//! knows, so that "this log is newer than that attempt" rests on evidence and
//! not on an assumed zone:
//! - [`ZoneEvidence`]: the zone (and date order) the API writes
//!   `time_of_call` in, learned from accepted attempts whose send instant and
//!   first sight of the log are known. Until learned, the widest offsets
//!   (UTC−12 … UTC+14) are assumed.
//! - [`IdMarks`]: the highest call-log id the listing showed at a known
//!   instant. A database hands ids out in order, so a call placed after that
//!   instant has a higher id; in a listing ordered by descending id, reading
//!   down to the mark has read every log that could be newer.

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, Duration, Utc};

use crate::provider::{DateOrder, LogTime, WIDEST_EAST_MIN, WIDEST_WEST_MIN};

/// The zone offsets (minutes east of UTC) consistent with every log of a
/// known call seen so far, per date order still possible.
#[derive(Debug, Clone)]
pub struct ZoneEvidence {
    /// (order, lowest offset, highest offset), in minutes.
    orders: Vec<(DateOrder, i64, i64)>,
    /// Logs of known calls learned from.
    observed: u64,
    /// How far the API's clock may differ from ours, in minutes.
    skew_min: i64,
}

impl ZoneEvidence {
    /// Nothing learned: both date orders, every offset; `skew` is how far
    /// the API's clock may be from ours.
    pub fn new(skew: Duration) -> Self {
        let skew_min = skew.num_minutes().max(1);
        Self {
            orders: vec![
                (
                    DateOrder::MonthFirst,
                    WIDEST_WEST_MIN - skew_min,
                    WIDEST_EAST_MIN + skew_min,
                ),
                (
                    DateOrder::DayFirst,
                    WIDEST_WEST_MIN - skew_min,
                    WIDEST_EAST_MIN + skew_min,
                ),
            ],
            observed: 0,
            skew_min,
        }
    }

    /// Whether a log of a known call has narrowed the offsets.
    pub fn learned(&self) -> bool {
        self.observed > 0
    }

    /// The date orders still possible and their offset ranges (minutes).
    pub fn ranges(&self) -> &[(DateOrder, i64, i64)] {
        &self.orders
    }

    /// Learns from the log of a call whose request was sent at `sent` and
    /// whose log was first listed at `seen`: the call happened in between
    /// (give or take the clocks' skew), so its wall time minus the offset
    /// lies there too. A reading that contradicts what was learned before
    /// drops its date order; if every order drops, the API changed how it
    /// writes times, and everything learned is forgotten.
    pub fn learn(&mut self, t: &LogTime, sent: DateTime<Utc>, seen: DateTime<Utc>) {
        let LogTime::Wall(_) = t else {
            return;
        };
        let delay_min = (seen - sent).num_minutes().max(0) + 1;
        let skew = self.skew_min;
        self.orders.retain_mut(|(order, lo, hi)| {
            let Some(r) = t.readings(Some(*order)).first().copied() else {
                return false;
            };
            // wall = utc + offset, with utc in [sent - skew, seen + skew].
            let d = (r - sent.naive_utc()).num_minutes();
            *lo = (*lo).max(d - delay_min - skew);
            *hi = (*hi).min(d + skew);
            lo <= hi
        });
        if self.orders.is_empty() {
            tracing::warn!(
                "call-log times contradict what was learned of the API's zone; assuming the widest offsets again"
            );
            *self = Self::new(Duration::minutes(skew));
            return;
        }
        self.observed += 1;
    }

    /// The latest instant a log written `t` may stand for (`None`: unknown).
    pub fn latest(&self, t: &LogTime) -> Option<DateTime<Utc>> {
        if let LogTime::Instant(i) = t {
            return Some(*i + Duration::minutes(self.skew_min));
        }
        self.orders
            .iter()
            .flat_map(|(o, lo, _)| {
                t.readings(Some(*o))
                    .into_iter()
                    .map(move |r| r.and_utc() - Duration::minutes(*lo))
            })
            .max()
    }

    /// The earliest instant a log written `t` may stand for (`None`: unknown).
    pub fn earliest(&self, t: &LogTime) -> Option<DateTime<Utc>> {
        if let LogTime::Instant(i) = t {
            return Some(*i - Duration::minutes(self.skew_min));
        }
        self.orders
            .iter()
            .flat_map(|(o, _, hi)| {
                t.readings(Some(*o))
                    .into_iter()
                    .map(move |r| r.and_utc() - Duration::minutes(*hi))
            })
            .min()
    }
}

/// Most marks kept per agent.
const MARKS_KEPT: usize = 256;

/// The highest log id a listing's first page showed, and when the answer
/// arrived: every log with a higher id was created after that instant.
#[derive(Debug, Clone, Default)]
pub struct IdMarks {
    marks: VecDeque<(DateTime<Utc>, i64)>,
}

impl IdMarks {
    /// Notes that by `at` the highest id listed was `id`.
    pub fn note(&mut self, at: DateTime<Utc>, id: i64) {
        if self.marks.back().is_some_and(|(_, m)| *m >= id) {
            return;
        }
        self.marks.push_back((at, id));
        if self.marks.len() > MARKS_KEPT {
            self.marks.pop_front();
        }
    }

    /// The highest id known to have existed before `t`: a call placed at or
    /// after `t` has a higher one.
    pub fn before(&self, t: DateTime<Utc>) -> Option<i64> {
        self.marks
            .iter()
            .rev()
            .find(|(at, _)| *at < t)
            .map(|(_, id)| *id)
    }
}

/// Whether a run of pages has been in descending log-id order, and how low
/// it has read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdOrder {
    /// Every page so far had strictly descending ids, and every id above the
    /// lowest one read before it was a row already read (logs added at the
    /// head push rows onto the next page, so a page may repeat rows).
    pub descending: bool,
    /// The lowest id read.
    pub lowest: Option<i64>,
    /// Every id read.
    read: BTreeSet<i64>,
    /// The highest id of the first page: ids above it are logs added since
    /// (at the head).
    highest: Option<i64>,
}

impl Default for IdOrder {
    fn default() -> Self {
        Self {
            descending: true,
            lowest: None,
            read: BTreeSet::new(),
            highest: None,
        }
    }
}

impl IdOrder {
    /// Takes in one page's ids, in the server's order. A log without an id
    /// breaks the evidence (its place cannot be known).
    pub fn page(&mut self, ids: &[Option<i64>]) {
        let mut prev: Option<i64> = None;
        let (floor, top) = (self.lowest, self.highest);
        for id in ids {
            let Some(id) = *id else {
                self.descending = false;
                continue;
            };
            if prev.is_some_and(|p| id >= p) {
                self.descending = false;
            }
            if floor.is_some_and(|f| id > f)
                && top.is_some_and(|t| id < t)
                && !self.read.contains(&id)
            {
                // A log we never read, inside the range already read past.
                self.descending = false;
            }
            prev = Some(id);
            self.read.insert(id);
            self.lowest = Some(self.lowest.map_or(id, |l| l.min(id)));
            if top.is_none() {
                // The first page: its highest id is the newest log at the start.
                self.highest = Some(self.highest.map_or(id, |h| h.max(id)));
            }
        }
    }

    /// How many distinct ids this run read.
    pub fn rows(&self) -> usize {
        self.read.len()
    }

    /// Whether this run has read every log with an id above `mark`.
    pub fn reached(&self, mark: i64) -> bool {
        self.descending && self.lowest.is_some_and(|l| l <= mark)
    }
}

/// Rows that must have been read in descending id order, over every listing
/// of an agent, before its ids are taken as the listing's order.
pub const ORDER_TRUSTED_AFTER: u64 = 100;

/// What the listings of one agent have shown of their order, over time: ids
/// are used as evidence only after many rows in descending order and never
/// after one out of order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListingTrust {
    /// Rows read in runs that stayed in descending order.
    pub rows_in_order: u64,
    /// A run was seen out of descending order.
    pub broken: bool,
}

impl ListingTrust {
    /// Takes in a finished (or abandoned) run.
    pub fn note(&mut self, run: &IdOrder) {
        if run.descending {
            self.rows_in_order = self.rows_in_order.saturating_add(run.rows() as u64);
        } else if !self.broken {
            tracing::warn!(
                "the call-log listing is not in descending id order; only reading to its end proves a call absent"
            );
            self.broken = true;
        }
    }

    /// Whether ids may be taken as the listing's order.
    pub fn trusted(&self) -> bool {
        !self.broken && self.rows_in_order >= ORDER_TRUSTED_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A day above 12, so one log shows the date order.
    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 14, 10, 0, 0).unwrap()
    }

    fn wall_text(utc: DateTime<Utc>, offset_min: i64, dmy: bool) -> LogTime {
        let w = utc + Duration::minutes(offset_min);
        let f = if dmy {
            "%d/%m/%Y %H:%M:%S"
        } else {
            "%m/%d/%Y %H:%M:%S"
        };
        LogTime::parse(&w.format(f).to_string()).unwrap()
    }

    #[test]
    fn before_any_evidence_a_log_may_stand_for_any_instant_within_the_widest_offsets() {
        let z = ZoneEvidence::new(Duration::minutes(2));
        let t = wall_text(t0(), 0, false);
        assert!(z.latest(&t).unwrap() >= t0() + Duration::hours(12));
        assert!(z.earliest(&t).unwrap() <= t0() - Duration::hours(14));
    }

    #[test]
    fn one_known_call_teaches_the_offset_in_every_zone_and_date_order() {
        for offset in [-300, 0, 330, 840, -720] {
            for dmy in [false, true] {
                let mut z = ZoneEvidence::new(Duration::minutes(2));
                let sent = t0();
                z.learn(
                    &wall_text(sent + Duration::seconds(1), offset, dmy),
                    sent,
                    sent + Duration::seconds(20),
                );
                assert!(z.learned());
                let later = t0() + Duration::hours(3);
                let log = wall_text(later, offset, dmy);
                let (lo, hi) = (z.earliest(&log).unwrap(), z.latest(&log).unwrap());
                assert!(
                    lo <= later && later <= hi,
                    "offset {offset} dmy {dmy}: {later} not in {lo}..{hi}"
                );
                assert!(hi - lo <= Duration::minutes(10), "{lo}..{hi} is too wide");
            }
        }
    }

    proptest::proptest! {
        /// Whatever the zone and date order, after learning from known calls
        /// sent at any time and seen after any delay, a later log's true
        /// instant lies between its earliest and latest possible instants.
        #[test]
        fn a_learned_zone_always_holds_the_true_instant(
            offset in -720i64..=840,
            dmy: bool,
            delays in proptest::collection::vec(0i64..600, 1..5),
            gaps in proptest::collection::vec(0i64..86_400 * 60, 1..5),
            later in 0i64..86_400 * 90,
        ) {
            let mut z = ZoneEvidence::new(Duration::minutes(2));
            let mut sent = t0();
            for (delay, gap) in delays.iter().zip(gaps.iter().cycle()) {
                sent += Duration::seconds(*gap);
                let call = sent + Duration::seconds(delay / 2);
                z.learn(&wall_text(call, offset, dmy), sent, sent + Duration::seconds(*delay));
            }
            let t = sent + Duration::seconds(later);
            let log = wall_text(t, offset, dmy);
            let (lo, hi) = (z.earliest(&log).unwrap(), z.latest(&log).unwrap());
            proptest::prop_assert!(lo <= t && t <= hi, "{} not in {}..{}", t, lo, hi);
        }

        /// In a listing in descending id order, cut into pages of any size,
        /// with any number of new logs added at its head between two pages,
        /// a run that says it reached a mark has read every id above the mark.
        #[test]
        fn reaching_a_mark_means_every_newer_log_was_read(
            n in 1i64..120,
            cap in 1usize..20,
            added in proptest::collection::vec(0i64..5, 0..40),
            mark in 0i64..200,
        ) {
            let mut listing: Vec<i64> = (1..=n).rev().collect();
            let mut next = n + 1;
            let mut order = IdOrder::default();
            let mut page = 0usize;
            let mut seen = std::collections::BTreeSet::new();
            loop {
                let rows: Vec<Option<i64>> =
                    listing.iter().skip(page * cap).take(cap).map(|i| Some(*i)).collect();
                if rows.is_empty() {
                    break;
                }
                order.page(&rows);
                seen.extend(rows.iter().flatten().copied());
                proptest::prop_assert!(order.descending);
                if order.reached(mark) {
                    for id in (1..next).filter(|i| *i > mark && *i <= n) {
                        proptest::prop_assert!(seen.contains(&id), "{} above mark {} was not read", id, mark);
                    }
                    break;
                }
                page += 1;
                for _ in 0..added.get(page).copied().unwrap_or(0) {
                    listing.insert(0, next);
                    next += 1;
                }
            }
        }
    }

    #[test]
    fn marks_name_the_highest_id_listed_before_an_instant() {
        let mut m = IdMarks::default();
        m.note(t0(), 10);
        m.note(t0() + Duration::seconds(30), 15);
        m.note(t0() + Duration::seconds(60), 12);
        assert_eq!(m.before(t0()), None);
        assert_eq!(m.before(t0() + Duration::seconds(31)), Some(15));
        assert_eq!(m.before(t0() + Duration::seconds(1)), Some(10));
    }

    #[test]
    fn a_listing_out_of_id_order_proves_nothing() {
        let mut o = IdOrder::default();
        o.page(&[Some(9), Some(8), Some(7)]);
        o.page(&[Some(7), Some(6)]);
        assert!(
            o.reached(6),
            "a row pushed onto the next page is no disorder"
        );
        o.page(&[Some(8), Some(2)]);
        o.page(&[Some(1)]);
        assert!(o.reached(1), "a row repeated after logs were added");
        let mut o = IdOrder::default();
        o.page(&[Some(9), Some(5)]);
        o.page(&[Some(7), Some(2)]);
        assert!(!o.reached(2), "an unread id inside the range read past");
        let mut o = IdOrder::default();
        o.page(&[Some(1), Some(2)]);
        assert!(!o.reached(1));
        let mut o = IdOrder::default();
        o.page(&[Some(5), None, Some(1)]);
        assert!(!o.reached(1));
    }
}
