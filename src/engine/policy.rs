//! The calling policy, decided when a contact is claimed and again, on the
//! database state of that instant, before every try of its request (the
//! dial-time rule: [`decide_at_dial`] feeds fresh state to the same
//! [`decide`]); and the outcome policy that decides what happens to a contact
//! after a call. Pure functions: the caller passes the time and the
//! compliance rules in.
//!
//! Calling hours are several rules at once, each callee-local and each open
//! in every candidate zone of the contact: the campaign's window, the
//! quiet-hours floor (`compliance.quiet_hours`) and the window of the
//! callee's state or province (`compliance.regions`). [`check_hours`] says
//! which one closed, in which zone, so callers can record and explain it.
//! On top of the hours, the number itself: one live attempt per number and
//! a cap of calls per rolling 24 h (the stricter of
//! `dispatch.max_calls_per_number_per_day` and the region's limit).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::calendar::Window;
use crate::config::Compliance;
use crate::domain::{CampaignStatus, ContactState, HoldReason, Outcome};
use crate::phone::regions::{RegionCode, region_of};
use crate::phone::zones::{Candidates, candidate_zones};
use crate::store::{CampaignRules, ClaimDecision, ContactNext, DialState, DueContact, Release};

/// The zones a contact's calling hours must be open in, and their source:
/// its `timezone` column, else what the zone map says of its number, else
/// its country's zones, else the campaign's zone.
pub fn contact_zones(
    contact_tz: Option<&str>,
    number: &str,
    campaign_tz: Tz,
) -> Result<Candidates, String> {
    candidate_zones(contact_tz, number, campaign_tz)
}

/// A rule that sets callee-local calling hours.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "region")]
pub enum HoursRule {
    /// The campaign's own window.
    CampaignWindow,
    /// `compliance.quiet_hours`.
    QuietHours,
    /// `compliance.regions."US-FL"`'s window.
    Region(RegionCode),
}

impl HoursRule {
    /// A stable lowercase name (`campaign_window`, `quiet_hours`, `region`).
    pub fn kind(&self) -> &'static str {
        match self {
            HoursRule::CampaignWindow => "campaign_window",
            HoursRule::QuietHours => "quiet_hours",
            HoursRule::Region(_) => "region",
        }
    }
}

impl fmt::Display for HoursRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HoursRule::CampaignWindow => f.write_str("the campaign window"),
            HoursRule::QuietHours => f.write_str("quiet hours"),
            HoursRule::Region(r) => write!(f, "the {r} rule"),
        }
    }
}

/// Every calling-hours rule that applies to `number` in a campaign with
/// `window`: the campaign's, the quiet-hours floor, and the window of each
/// region its area code lies in.
pub fn hours_rules(
    window: Window,
    compliance: &Compliance,
    number: &str,
) -> Vec<(HoursRule, Window)> {
    let mut out = vec![(HoursRule::CampaignWindow, window)];
    if let Some(q) = compliance.quiet_hours {
        out.push((HoursRule::QuietHours, q));
    }
    for region in region_of(number) {
        if let Some(w) = compliance.regions.get(region).and_then(|r| r.window) {
            out.push((HoursRule::Region(region.clone()), w));
        }
    }
    out
}

/// Which rule keeps a contact from being called now, and where.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Closed {
    /// The first rule (in [`hours_rules`] order) closed in some candidate zone.
    pub rule: HoursRule,
    /// Its window.
    #[serde(serialize_with = "ser_display")]
    pub window: Window,
    /// The first candidate zone it is closed in.
    #[serde(serialize_with = "ser_display")]
    pub zone: Tz,
    /// When every rule is next open in every zone at once; `None`: not
    /// within three days (the zones' spread exceeds what the rules leave).
    pub next_open: Option<DateTime<Utc>>,
}

fn ser_display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The first rule closed at `at` in some zone of `zones`, with that zone.
pub fn first_closed(
    rules: &[(HoursRule, Window)],
    zones: &[Tz],
    at: DateTime<Utc>,
) -> Option<(usize, Tz)> {
    rules
        .iter()
        .enumerate()
        .find_map(|(i, (_, w))| zones.iter().find(|z| !w.is_open(at, **z)).map(|z| (i, *z)))
}

/// The earliest instant at or after `at` when every rule is open in every
/// zone; `None` when that does not happen within three days. Jumps to the
/// first instant a closed (rule, zone) pair opens, so no instant open in all
/// is ever jumped over.
pub fn next_open_all(
    rules: &[(HoursRule, Window)],
    zones: &[Tz],
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let limit = at + chrono::Duration::days(3);
    let mut t = at;
    while t <= limit {
        let Some((i, zone)) = first_closed(rules, zones, t) else {
            return Some(t);
        };
        let next = rules[i].1.next_open(t, zone);
        if next <= t {
            return None;
        }
        t = next;
    }
    None
}

/// Whether every calling-hours rule is open now in every candidate zone:
/// `Ok`, or the rule that closes it, where, and when all next open.
pub fn check_hours(
    rules: &[(HoursRule, Window)],
    zones: &[Tz],
    now: DateTime<Utc>,
) -> Result<(), Closed> {
    let Some((i, zone)) = first_closed(rules, zones, now) else {
        return Ok(());
    };
    Err(Closed {
        rule: rules[i].0.clone(),
        window: rules[i].1,
        zone,
        next_open: next_open_all(rules, zones, now),
    })
}

/// The calls one number may receive in any 24 hours: the global cap
/// (`dispatch.max_calls_per_number_per_day`, 0 = none) or a region's
/// stricter limit. `None`: no limit at all.
pub fn daily_limit(region_limit: Option<u32>, global_cap: u32) -> Option<u32> {
    let global = (global_cap > 0).then_some(global_cap);
    match (region_limit, global) {
        (Some(r), Some(g)) => Some(r.min(g)),
        (r, g) => r.or(g),
    }
}

/// The strictest per-number limit of the regions `number`'s area code lies in.
pub fn region_limit(compliance: &Compliance, number: &str) -> Option<(RegionCode, u32)> {
    region_of(number)
        .iter()
        .filter_map(|r| {
            let n = compliance.regions.get(r)?.max_calls_per_day?;
            Some((r.clone(), n))
        })
        .min_by_key(|(_, n)| *n)
}

/// Whether a number that received `calls_last_24h` placed calls may get
/// another under `limit` (from [`daily_limit`]).
pub fn under_limit(calls_last_24h: i64, limit: Option<u32>) -> bool {
    limit.is_none_or(|l| calls_last_24h < i64::from(l))
}

/// Decides what to do with one due contact at `now`, holding it to the
/// campaign's window, the quiet hours and its region's window in every
/// candidate zone.
pub fn decide(
    c: &DueContact,
    rules: &CampaignRules,
    compliance: &Compliance,
    campaign_agent: Option<i64>,
    now: DateTime<Utc>,
) -> ClaimDecision {
    decide_in(c, None, rules, compliance, campaign_agent, now).0
}

/// [`decide`], given the contact's candidate zones when they are already
/// known (`known`: what an earlier call returned for the same contact,
/// timezone column and campaign zone), and returning them when it worked
/// them out: the zones of a number come from libphonenumber's patterns,
/// the dearest part of the decision, and a try decides again what its
/// claim decided a moment before.
pub fn decide_in(
    c: &DueContact,
    known: Option<&Candidates>,
    rules: &CampaignRules,
    compliance: &Compliance,
    campaign_agent: Option<i64>,
    now: DateTime<Utc>,
) -> (ClaimDecision, Option<Candidates>) {
    let mut worked_out = None;
    let decision = decide_with(
        c,
        || {
            let zones = match known {
                Some(z) => Ok(z.clone()),
                None => contact_zones(c.timezone.as_deref(), &c.phone_number, rules.timezone),
            };
            worked_out = zones.as_ref().ok().cloned();
            zones
        },
        rules,
        compliance,
        campaign_agent,
        now,
    );
    (decision, worked_out)
}

/// [`decide`], with the candidate zones from `zones` (asked only when the
/// decision depends on them).
fn decide_with(
    c: &DueContact,
    zones: impl FnOnce() -> Result<Candidates, String>,
    rules: &CampaignRules,
    compliance: &Compliance,
    campaign_agent: Option<i64>,
    now: DateTime<Utc>,
) -> ClaimDecision {
    if c.on_dnc {
        return ClaimDecision::Suppress;
    }
    if let Some(problem) = &c.problem {
        return ClaimDecision::Invalid(problem.clone());
    }
    if c.attempts >= i64::from(rules.max_attempts) {
        return ClaimDecision::Exhaust;
    }
    let Some(agent_id) = c.agent_id.or(campaign_agent) else {
        return ClaimDecision::Invalid("no agent_id for this contact or its campaign".into());
    };
    let zones = match zones() {
        Ok(zones) => zones,
        Err(reason) => return ClaimDecision::Invalid(reason),
    };
    let hours = hours_rules(rules.window, compliance, &c.phone_number);
    match check_hours(&hours, zones.zones(), now) {
        Ok(()) => {}
        Err(Closed {
            next_open: Some(at),
            rule,
            ..
        }) => {
            return match rule {
                HoursRule::CampaignWindow => ClaimDecision::Defer(at),
                HoursRule::QuietHours => ClaimDecision::Hold {
                    until: at,
                    reason: HoldReason::QuietHours,
                },
                HoursRule::Region(_) => ClaimDecision::Hold {
                    until: at,
                    reason: HoldReason::Region,
                },
            };
        }
        Err(Closed {
            next_open: None, ..
        }) => return ClaimDecision::Invalid(never_open(&hours, &zones)),
    }
    if let Some(hold) = number_hold(c, rules, compliance, now) {
        return hold;
    }
    ClaimDecision::Dial { agent_id }
}

/// Why a contact can never be called: its rules never open in all its zones at once.
pub fn never_open(hours: &[(HoursRule, Window)], zones: &Candidates) -> String {
    let rules = hours
        .iter()
        .map(|(r, w)| format!("{r} {w}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "calling hours ({rules}) are never open in all of {} at once (the zones from the {}); \
         give the contact a timezone",
        zones.names(),
        match zones.source {
            crate::phone::zones::ZoneSource::Column => "timezone column",
            crate::phone::zones::ZoneSource::Number => "number's prefix",
            crate::phone::zones::ZoneSource::Country => "number's country",
            crate::phone::zones::ZoneSource::Campaign => "campaign",
        }
    )
}

/// How long a contact waits before its number is looked at again when
/// another campaign's attempt to it is still live.
pub const LIVE_ATTEMPT_RECHECK: Duration = Duration::from_secs(60);

/// The rules on the number itself, across campaigns: one live attempt per
/// number, and the per-number cap (the stricter of the global cap and the
/// callee's region limit).
fn number_hold(
    c: &DueContact,
    rules: &CampaignRules,
    compliance: &Compliance,
    now: DateTime<Utc>,
) -> Option<ClaimDecision> {
    if c.live_attempt_elsewhere {
        return Some(ClaimDecision::Hold {
            until: crate::clock::plus(now, LIVE_ATTEMPT_RECHECK),
            reason: HoldReason::LiveAttempt,
        });
    }
    let limit = number_limit(rules, compliance, &c.phone_number);
    cap_lifts_at(c.calls_last_24h, c.oldest_call_last_24h, limit, now).map(|until| {
        ClaimDecision::Hold {
            until,
            reason: HoldReason::Cap,
        }
    })
}

/// The calls `number` may receive in any 24 h (0: no limit): the stricter of
/// `dispatch.max_calls_per_number_per_day` and its region's limit.
pub fn number_limit(rules: &CampaignRules, compliance: &Compliance, number: &str) -> u32 {
    let region = region_limit(compliance, number).map(|(_, n)| n);
    daily_limit(region, rules.max_calls_per_number_per_day).unwrap_or(0)
}

/// The per-number cap: `None` when a number with `calls_last_24h` calls in
/// the rolling 24 h before `now` (the oldest at `oldest`) may be called under
/// a cap of `cap` calls (0 = no cap); else when the oldest call leaves the
/// window. A count over the cap (a lower cap after a reload) waits call by
/// call: each time the oldest leaves, the count is taken again.
pub fn cap_lifts_at(
    calls_last_24h: i64,
    oldest: Option<DateTime<Utc>>,
    cap: u32,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if cap == 0 || calls_last_24h < i64::from(cap) {
        return None;
    }
    let day = chrono::Duration::hours(24);
    // Counted calls are younger than 24 h, so this is later than now; a
    // missing time (another program's row) waits a whole day.
    Some(oldest.map_or(now + day, |t| t + day).max(now))
}

/// The dial-time rule: the claim's policy ([`decide`]) on the state of this
/// instant, plus what the claim checks in its transaction (campaign active,
/// dispatching not paused, the attempt still the contact's). `None`: send;
/// else the attempt ends `not_placed` with the reason and the contact goes
/// where the [`Release`] says, its attempt not spent.
pub fn decide_at_dial(
    s: &DialState,
    rules: &CampaignRules,
    compliance: &Compliance,
    campaign_agent: Option<i64>,
    now: DateTime<Utc>,
) -> Option<(String, Release)> {
    if !s.owns_attempt || s.contact_state != ContactState::InProgress.as_str() {
        let why = format!(
            "not sent: the contact ({}) no longer owns this attempt",
            s.contact_state
        );
        return Some((why, Release::Untouched));
    }
    let paused = |what: String| {
        Some((
            format!("not sent: {what}"),
            Release::HandBack {
                due: None,
                reason: HoldReason::Paused,
            },
        ))
    };
    match s.campaign {
        CampaignStatus::Active => {}
        CampaignStatus::Cancelled => {
            let close = Release::Close {
                state: ContactState::Cancelled,
                reason: None,
            };
            return Some(("not sent: campaign cancelled".into(), close));
        }
        CampaignStatus::Paused | CampaignStatus::Completed => {
            return paused(format!("campaign {}", s.campaign));
        }
    }
    if let Some(why) = &s.dispatch_paused {
        return paused(format!("dispatching is paused ({why})"));
    }
    let decision = decide(&s.contact, rules, compliance, campaign_agent, now);
    if matches!(decision, ClaimDecision::Dial { .. }) {
        return None;
    }
    Some(refusal(decision, s, rules, compliance, now))
}

/// The reason and the release for a decision other than `Dial`.
fn refusal(
    decision: ClaimDecision,
    s: &DialState,
    rules: &CampaignRules,
    compliance: &Compliance,
    now: DateTime<Utc>,
) -> (String, Release) {
    let close = |state, reason| Release::Close { state, reason };
    let back = |until, reason| Release::HandBack {
        due: Some(until),
        reason,
    };
    let (text, release) = match decision {
        ClaimDecision::Dial { .. } => ("sendable".to_string(), Release::Untouched),
        ClaimDecision::Suppress => (
            format!(
                "on the DNC list since {}",
                s.contact.dnc_since.as_deref().unwrap_or("(unknown)")
            ),
            close(ContactState::Suppressed, None),
        ),
        ClaimDecision::Exhaust => (
            "no attempts left".into(),
            close(ContactState::Exhausted, None),
        ),
        ClaimDecision::Invalid(reason) => {
            (reason.clone(), close(ContactState::Invalid, Some(reason)))
        }
        ClaimDecision::Defer(until) => (
            closed_hours_text(&s.contact, rules, compliance, now),
            back(until, HoldReason::Window),
        ),
        ClaimDecision::Hold { until, reason } => {
            let text = match reason {
                HoldReason::Cap => format!(
                    "{} calls to this number in the last 24 h (its limit is {}: \
                     dispatch.max_calls_per_number_per_day or its region's); next allowed at {}",
                    s.contact.calls_last_24h,
                    number_limit(rules, compliance, &s.contact.phone_number),
                    crate::clock::to_db_text(until)
                ),
                HoldReason::LiveAttempt => "another attempt to this number is still live".into(),
                HoldReason::QuietHours | HoldReason::Region => {
                    closed_hours_text(&s.contact, rules, compliance, now)
                }
                other => format!("held back ({other})"),
            };
            (text, back(until, reason))
        }
    };
    (format!("not sent: {text}"), release)
}

/// "outside quiet hours 08:00-21:00 in America/Chicago": which calling-hours
/// rule is closed now, and in which candidate zone.
fn closed_hours_text(
    c: &DueContact,
    rules: &CampaignRules,
    compliance: &Compliance,
    now: DateTime<Utc>,
) -> String {
    let Ok(zones) = contact_zones(c.timezone.as_deref(), &c.phone_number, rules.timezone) else {
        return "outside calling hours".into();
    };
    let hours = hours_rules(rules.window, compliance, &c.phone_number);
    match check_hours(&hours, zones.zones(), now) {
        Err(closed) => format!(
            "outside calling hours: {} {} in {}",
            closed.rule,
            closed.window,
            closed.zone.name()
        ),
        Ok(()) => "outside calling hours".into(),
    }
}

/// What becomes of a contact whose attempt (its `attempts`-th placed call)
/// ended with `outcome`.
pub fn after_outcome(
    outcome: Outcome,
    rules: &CampaignRules,
    attempts: i64,
    campaign: CampaignStatus,
    now: DateTime<Utc>,
) -> ContactNext {
    if outcome == Outcome::Completed {
        return ContactNext::Final(ContactState::Done);
    }
    if campaign == CampaignStatus::Cancelled {
        return ContactNext::Final(ContactState::Cancelled);
    }
    match rules.retry_delay(outcome) {
        Some(delay) if attempts < i64::from(rules.max_attempts) => ContactNext::RetryAt(
            crate::clock::plus(now, std::time::Duration::from_secs(delay)),
        ),
        // Not retried (an unknown outcome may have reached the person) or no attempts left.
        _ => ContactNext::Final(ContactState::Exhausted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{Schedule, Window};
    use chrono::TimeZone;

    fn rules(window: &str, tz: &str) -> CampaignRules {
        CampaignRules {
            schedule: Schedule::parse("* * * * *").unwrap(),
            timezone: tz.parse().unwrap(),
            window: Window::parse(window).unwrap(),
            max_attempts: 3,
            retry_delay_secs: 3600,
            retry_outcomes: vec![
                Outcome::NoAnswer,
                Outcome::Busy,
                Outcome::Failed,
                Outcome::Voicemail,
            ],
            retry_delays: vec![(Outcome::Busy, 600)],
            region: None,
            max_calls_per_number_per_day: 3,
        }
    }

    fn contact(number: &str, tz: Option<&str>, attempts: i64) -> DueContact {
        DueContact {
            id: 1,
            phone_number: number.into(),
            timezone: tz.map(String::from),
            agent_id: None,
            call_context: "{}".into(),
            state: "pending".into(),
            attempts,
            on_dnc: false,
            dnc_since: None,
            problem: None,
            calls_last_24h: 0,
            oldest_call_last_24h: None,
            live_attempt_elsewhere: false,
        }
    }

    #[test]
    fn a_dnc_number_is_suppressed_even_inside_the_window() {
        let mut c = contact("+442079460958", Some("Europe/London"), 0);
        c.on_dnc = true;
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        assert!(matches!(
            decide(
                &c,
                &rules("00:00-24:00", "UTC"),
                &Compliance::none(),
                Some(1),
                now
            ),
            ClaimDecision::Suppress
        ));
    }

    #[test]
    fn the_contact_zone_column_wins_over_the_campaign_zone() {
        // 13:00 UTC is 09:00 in New York (summer) but 22:00 in Tokyo.
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let r = rules("09:00-20:00", "Asia/Tokyo");
        let ny = contact("+442079460958", Some("America/New_York"), 0);
        assert!(matches!(
            decide(&ny, &r, &Compliance::none(), Some(7), now),
            ClaimDecision::Dial { agent_id: 7 }
        ));
        let tokyo = contact("+442079460958", Some("Asia/Tokyo"), 0);
        match decide(&tokyo, &r, &Compliance::none(), Some(7), now) {
            // Next 09:00 in Tokyo is 00:00 UTC the next day.
            ClaimDecision::Defer(t) => {
                assert_eq!(t, Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    /// Nevada's 775 spans Pacific and Mountain time (the zone map lists
    /// both): the window must be open in both, never judged in the
    /// campaign's zone (here UTC, which would have called from 02:00 local).
    #[test]
    fn a_number_whose_area_code_spans_two_zones_is_called_only_when_both_are_open() {
        let r = rules("09:00-20:00", "UTC");
        let nevada = contact("+17755550123", None, 0);
        let none = Compliance::none();
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 7, d, h, m, 0).unwrap();
        // 15:30 UTC: 09:30 in Boise, 08:30 in Reno.
        match decide(&nevada, &r, &none, Some(7), at(1, 15, 30)) {
            ClaimDecision::Defer(t) => assert_eq!(t, at(1, 16, 0), "09:00 in Reno"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&nevada, &r, &none, Some(7), at(1, 16, 0)),
            ClaimDecision::Dial { agent_id: 7 }
        ));
        // 01:59 UTC: 19:59 in Boise, still open in both.
        assert!(matches!(
            decide(&nevada, &r, &none, Some(7), at(2, 1, 59)),
            ClaimDecision::Dial { .. }
        ));
        // 02:00 UTC: 20:00 in Boise: closed until 09:00 in Reno.
        match decide(&nevada, &r, &none, Some(7), at(2, 2, 0)) {
            ClaimDecision::Defer(t) => assert_eq!(t, at(2, 16, 0)),
            other => panic!("{other:?}"),
        }
        // Its own timezone column decides alone.
        let own = contact("+17755550123", Some("America/Boise"), 0);
        assert!(matches!(
            decide(&own, &r, &none, Some(7), at(1, 15, 30)),
            ClaimDecision::Dial { .. }
        ));
    }

    #[test]
    fn a_window_shorter_than_an_area_codes_zone_spread_makes_the_contact_invalid() {
        let r = rules("09:00-09:30", "UTC");
        let nevada = contact("+17755550123", None, 0);
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        match decide(&nevada, &r, &Compliance::none(), Some(7), now) {
            ClaimDecision::Invalid(why) => {
                assert!(why.contains("never open in all of"), "{why}");
                assert!(why.contains("America/Boise, America/Los_Angeles"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Quiet hours hold on an all-day campaign, and a Florida number is held
    /// to Florida's 08:00-20:00; the verdict names the rule and the zone.
    #[test]
    fn quiet_hours_and_the_florida_window_close_an_all_day_campaign() {
        let r = rules("00:00-24:00", "UTC");
        let shipped = Compliance::default();
        let at = |h, m| Utc.with_ymd_and_hms(2026, 1, 15, h, m, 0).unwrap();
        // London, 03:00 local: the quiet-hours floor defers to 08:00.
        let london = contact("+442079460958", None, 0);
        match decide(&london, &r, &shipped, Some(7), at(3, 0)) {
            ClaimDecision::Hold { until, reason } => {
                assert_eq!(until, at(8, 0));
                assert_eq!(reason, HoldReason::QuietHours);
            }
            other => panic!("{other:?}"),
        }
        let hours = hours_rules(r.window, &shipped, "+442079460958");
        let closed = check_hours(&hours, &[chrono_tz::Europe::London], at(3, 0)).unwrap_err();
        assert_eq!(closed.rule, HoursRule::QuietHours);
        // Miami (EST, UTC-5), 20:30 local: quiet hours allow it, Florida does not.
        let miami = "+13055550123";
        let hours = hours_rules(r.window, &shipped, miami);
        let zones = contact_zones(None, miami, chrono_tz::UTC).unwrap();
        assert_eq!(zones.zones(), [chrono_tz::America::New_York]);
        let closed = check_hours(&hours, zones.zones(), at(1, 30)).unwrap_err();
        assert_eq!(closed.rule, HoursRule::Region("US-FL".parse().unwrap()));
        assert_eq!(closed.zone, chrono_tz::America::New_York);
        assert_eq!(closed.next_open, Some(at(13, 0)), "08:00 in Miami");
        assert!(check_hours(&hours, zones.zones(), at(13, 0)).is_ok());
        assert!(
            check_hours(&hours, zones.zones(), at(0, 59)).is_ok(),
            "19:59"
        );
    }

    /// A row another program wrote with a legacy zone name is never dialed
    /// by a guess at what `EST` meant: it becomes invalid with the reason.
    #[test]
    fn a_legacy_zone_name_written_directly_makes_the_contact_invalid() {
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 15, 0, 0).unwrap();
        let r = rules("09:00-20:00", "UTC");
        match decide(
            &contact("+12125550123", Some("EST"), 0),
            &r,
            &Compliance::default(),
            Some(1),
            now,
        ) {
            ClaimDecision::Invalid(why) => assert!(why.contains("daylight saving"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_daily_limit_is_the_stricter_of_region_and_global_cap() {
        let fl = Compliance::default();
        let (region, n) = region_limit(&fl, "+13055550123").unwrap();
        assert_eq!((region.as_str(), n), ("US-FL", 3));
        assert_eq!(region_limit(&fl, "+12125550123"), None);
        assert_eq!(daily_limit(Some(3), 5), Some(3));
        assert_eq!(daily_limit(Some(3), 2), Some(2));
        assert_eq!(daily_limit(None, 5), Some(5));
        assert_eq!(daily_limit(Some(3), 0), Some(3));
        assert_eq!(daily_limit(None, 0), None);
        // A fourth call in 24 h to a Florida number is refused.
        let limit = daily_limit(Some(n), 10);
        assert!(under_limit(2, limit));
        assert!(!under_limit(3, limit));
        assert!(under_limit(1000, None));
    }

    #[test]
    fn no_attempts_left_exhausts_and_no_agent_invalidates() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let r = rules("00:00-24:00", "UTC");
        assert!(matches!(
            decide(
                &contact("+442079460958", None, 3),
                &r,
                &Compliance::none(),
                Some(1),
                now
            ),
            ClaimDecision::Exhaust
        ));
        assert!(matches!(
            decide(
                &contact("+442079460958", None, 0),
                &r,
                &Compliance::none(),
                None,
                now
            ),
            ClaimDecision::Invalid(_)
        ));
        assert!(matches!(
            decide(
                &contact("+442079460958", Some("Nowhere/Land"), 0),
                &r,
                &Compliance::none(),
                Some(1),
                now
            ),
            ClaimDecision::Invalid(_)
        ));
    }

    #[test]
    fn outcomes_map_to_done_retry_or_exhausted() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let r = rules("00:00-24:00", "UTC");
        let active = CampaignStatus::Active;
        assert!(matches!(
            after_outcome(Outcome::Completed, &r, 1, active, now),
            ContactNext::Final(ContactState::Done)
        ));
        match after_outcome(Outcome::Busy, &r, 1, active, now) {
            ContactNext::RetryAt(t) => assert_eq!(t, now + chrono::Duration::seconds(600)),
            other => panic!("{other:?}"),
        }
        match after_outcome(Outcome::NoAnswer, &r, 2, active, now) {
            ContactNext::RetryAt(t) => assert_eq!(t, now + chrono::Duration::seconds(3600)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            after_outcome(Outcome::NoAnswer, &r, 3, active, now),
            ContactNext::Final(ContactState::Exhausted)
        ));
        assert!(matches!(
            after_outcome(Outcome::Unknown, &r, 1, active, now),
            ContactNext::Final(ContactState::Exhausted)
        ));
        assert!(matches!(
            after_outcome(Outcome::Cancelled, &r, 1, active, now),
            ContactNext::Final(ContactState::Exhausted)
        ));
        assert!(matches!(
            after_outcome(Outcome::Busy, &r, 1, CampaignStatus::Cancelled, now),
            ContactNext::Final(ContactState::Cancelled)
        ));
    }

    #[test]
    fn the_cap_holds_a_number_until_its_oldest_call_is_a_day_old() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let oldest = Utc.with_ymd_and_hms(2026, 6, 1, 9, 30, 0).unwrap();
        assert_eq!(cap_lifts_at(2, Some(oldest), 3, now), None);
        assert_eq!(
            cap_lifts_at(3, Some(oldest), 3, now),
            Some(Utc.with_ymd_and_hms(2026, 6, 2, 9, 30, 0).unwrap())
        );
        assert_eq!(
            cap_lifts_at(4, Some(oldest), 3, now),
            cap_lifts_at(3, Some(oldest), 3, now)
        );
        assert_eq!(cap_lifts_at(50, Some(oldest), 0, now), None, "0 = no cap");
        let mut c = contact("+442079460958", None, 0);
        c.calls_last_24h = 3;
        c.oldest_call_last_24h = Some(oldest);
        match decide(
            &c,
            &rules("00:00-24:00", "UTC"),
            &Compliance::none(),
            Some(1),
            now,
        ) {
            ClaimDecision::Hold { until, reason } => {
                assert_eq!(reason, HoldReason::Cap);
                assert_eq!(until, oldest + chrono::Duration::hours(24));
            }
            other => panic!("{other:?}"),
        }
    }

    /// Florida's statute allows 3 calls per 24 h: with a laxer global cap,
    /// a Florida number is still held at its fourth call, a New York number
    /// is not.
    #[test]
    fn a_region_limit_stricter_than_the_global_cap_holds_the_number() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 16, 0, 0).unwrap();
        let oldest = Utc.with_ymd_and_hms(2026, 6, 1, 9, 30, 0).unwrap();
        let mut r = rules("00:00-24:00", "UTC");
        r.max_calls_per_number_per_day = 5;
        let shipped = Compliance::default();
        let with_calls = |number: &str| {
            let mut c = contact(number, None, 0);
            c.calls_last_24h = 3;
            c.oldest_call_last_24h = Some(oldest);
            c
        };
        // 16:00 UTC is noon in Miami and New York: every window is open.
        match decide(&with_calls("+13055550123"), &r, &shipped, Some(1), now) {
            ClaimDecision::Hold { until, reason } => {
                assert_eq!(reason, HoldReason::Cap);
                assert_eq!(until, oldest + chrono::Duration::hours(24));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(number_limit(&r, &shipped, "+13055550123"), 3);
        assert!(matches!(
            decide(&with_calls("+12125550123"), &r, &shipped, Some(1), now),
            ClaimDecision::Dial { .. }
        ));
        assert_eq!(number_limit(&r, &shipped, "+12125550123"), 5);
    }

    #[test]
    fn a_number_with_a_live_attempt_elsewhere_is_held_back() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let mut c = contact("+442079460958", None, 0);
        c.live_attempt_elsewhere = true;
        assert!(matches!(
            decide(
                &c,
                &rules("00:00-24:00", "UTC"),
                &Compliance::none(),
                Some(1),
                now
            ),
            ClaimDecision::Hold {
                reason: HoldReason::LiveAttempt,
                ..
            }
        ));
    }

    fn dial_state(c: DueContact, campaign: CampaignStatus) -> DialState {
        DialState {
            contact_state: "in_progress".into(),
            contact: c,
            owns_attempt: true,
            campaign_id: 1,
            campaign,
            rules_key: String::new(),
            dispatch_paused: None,
        }
    }

    /// The dial-time rule gives the reason in words and sends the contact
    /// where the reason implies.
    #[test]
    fn the_dial_time_rule_refuses_with_the_reason_and_the_contacts_next_state() {
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
        let all_day = rules("00:00-24:00", "UTC");
        let ok = dial_state(contact("+442079460958", None, 0), CampaignStatus::Active);
        assert!(decide_at_dial(&ok, &all_day, &Compliance::none(), Some(1), now).is_none());

        let mut dnc = ok.clone();
        dnc.contact.on_dnc = true;
        dnc.contact.dnc_since = Some("2026-07-01T02:59:00Z".into());
        let (why, release) =
            decide_at_dial(&dnc, &all_day, &Compliance::none(), Some(1), now).unwrap();
        assert_eq!(why, "not sent: on the DNC list since 2026-07-01T02:59:00Z");
        assert!(matches!(
            release,
            Release::Close {
                state: ContactState::Suppressed,
                ..
            }
        ));

        let paused = dial_state(contact("+442079460958", None, 0), CampaignStatus::Paused);
        let (why, release) =
            decide_at_dial(&paused, &all_day, &Compliance::none(), Some(1), now).unwrap();
        assert_eq!(why, "not sent: campaign paused");
        assert_eq!(
            release,
            Release::HandBack {
                due: None,
                reason: HoldReason::Paused
            }
        );

        // 03:00 UTC is 22:00 in Chicago (CDT): outside 09:00-20:00.
        let chicago = dial_state(
            contact("+442079460958", Some("America/Chicago"), 0),
            CampaignStatus::Active,
        );
        let (why, release) = decide_at_dial(
            &chicago,
            &rules("09:00-20:00", "UTC"),
            &Compliance::none(),
            Some(1),
            now,
        )
        .unwrap();
        assert_eq!(
            why,
            "not sent: outside calling hours: the campaign window 09:00-20:00 in America/Chicago"
        );
        assert_eq!(
            release,
            Release::HandBack {
                due: Some(Utc.with_ymd_and_hms(2026, 7, 1, 14, 0, 0).unwrap()),
                reason: HoldReason::Window
            }
        );

        // An all-day campaign still keeps the quiet-hours floor at dial time:
        // 03:00 UTC is 22:00 in Chicago, after 21:00.
        let floor = Compliance::from_raw(&Default::default()).unwrap();
        let (why, release) = decide_at_dial(&chicago, &all_day, &floor, Some(1), now).unwrap();
        assert_eq!(
            why,
            "not sent: outside calling hours: quiet hours 08:00-21:00 in America/Chicago"
        );
        assert_eq!(
            release,
            Release::HandBack {
                due: Some(Utc.with_ymd_and_hms(2026, 7, 1, 13, 0, 0).unwrap()),
                reason: HoldReason::QuietHours
            }
        );

        let mut gone = ok.clone();
        gone.owns_attempt = false;
        assert_eq!(
            decide_at_dial(&gone, &all_day, &Compliance::none(), Some(1), now).map(|r| r.1),
            Some(Release::Untouched)
        );
    }
}
