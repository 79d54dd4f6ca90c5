//! The calling policy, decided when a contact is claimed and again, on the
//! database state of that instant, before every try of its request (the
//! dial-time rule: [`decide_at_dial`] feeds fresh state to the same
//! [`decide`]); and the outcome policy that decides what happens to a contact
//! after a call. Pure functions: the caller passes the time in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::{CampaignStatus, ContactState, HoldReason, Outcome};
use crate::phone::{
    PhoneNumber,
    zones::{possible_zones, zone_for_number},
};
use crate::store::{CampaignRules, ClaimDecision, ContactNext, DialState, DueContact, Release};

/// The zones a contact's calling window must be open in: its own `timezone`
/// column, else the zone its number determines, else every zone its area
/// code spans when it straddles a zone line, else the campaign's.
pub fn contact_zones(
    contact_tz: Option<&str>,
    number: &str,
    campaign_tz: Tz,
) -> Result<Vec<Tz>, String> {
    if let Some(name) = contact_tz.map(str::trim).filter(|s| !s.is_empty()) {
        return crate::calendar::parse_tz(name).map(|tz| vec![tz]);
    }
    let number = PhoneNumber::from_e164_unchecked(number.to_string());
    if let Some(tz) = zone_for_number(&number) {
        return Ok(vec![tz]);
    }
    // An area code that straddles a zone line: every zone it may be in,
    // never the campaign's (for Alaska or Florida's panhandle, hours off).
    let possible = possible_zones(&number);
    if !possible.is_empty() {
        return Ok(possible);
    }
    Ok(vec![campaign_tz])
}

/// Decides what to do with one due contact at `now`.
pub fn decide(
    c: &DueContact,
    rules: &CampaignRules,
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
    let zones = match contact_zones(c.timezone.as_deref(), &c.phone_number, rules.timezone) {
        Ok(zones) => zones,
        Err(reason) => return ClaimDecision::Invalid(reason),
    };
    if !rules.window.is_open_in_all(now, &zones) {
        return match rules.window.next_open_in_all(now, &zones) {
            Some(at) => ClaimDecision::Defer(at),
            None => ClaimDecision::Invalid(format!(
                "the calling window {}-{} is never open in all of {} at once (the zones this number's \
                 area code spans); give the contact a timezone",
                rules.window.start_text(),
                rules.window.end_text(),
                zones
                    .iter()
                    .map(|z| z.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
    }
    if let Some(hold) = number_hold(c, rules, now) {
        return hold;
    }
    ClaimDecision::Dial { agent_id }
}

/// How long a contact waits before its number is looked at again when
/// another campaign's attempt to it is still live.
pub const LIVE_ATTEMPT_RECHECK: Duration = Duration::from_secs(60);

/// The rules on the number itself, across campaigns: one live attempt per
/// number, and the per-number cap.
fn number_hold(c: &DueContact, rules: &CampaignRules, now: DateTime<Utc>) -> Option<ClaimDecision> {
    if c.live_attempt_elsewhere {
        return Some(ClaimDecision::Hold {
            until: crate::clock::plus(now, LIVE_ATTEMPT_RECHECK),
            reason: HoldReason::LiveAttempt,
        });
    }
    cap_lifts_at(
        c.calls_last_24h,
        c.oldest_call_last_24h,
        rules.max_calls_per_number_per_day,
        now,
    )
    .map(|until| ClaimDecision::Hold {
        until,
        reason: HoldReason::Cap,
    })
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
    let decision = decide(&s.contact, rules, campaign_agent, now);
    if matches!(decision, ClaimDecision::Dial { .. }) {
        return None;
    }
    Some(refusal(decision, s, rules, now))
}

/// The reason and the release for a decision other than `Dial`.
fn refusal(
    decision: ClaimDecision,
    s: &DialState,
    rules: &CampaignRules,
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
        ClaimDecision::Defer(until) => {
            let zones = contact_zones(
                s.contact.timezone.as_deref(),
                &s.contact.phone_number,
                rules.timezone,
            )
            .unwrap_or_default();
            let closed: Vec<&str> = zones
                .iter()
                .filter(|z| !rules.window.is_open(now, **z))
                .map(|z| z.name())
                .collect();
            (
                format!("outside calling hours in {}", closed.join(", ")),
                back(until, HoldReason::Window),
            )
        }
        ClaimDecision::Hold { until, reason } => {
            let text = match reason {
                HoldReason::Cap => format!(
                    "{} calls to this number in the last 24 h (dispatch.max_calls_per_number_per_day is {}); next allowed at {}",
                    s.contact.calls_last_24h,
                    rules.max_calls_per_number_per_day,
                    crate::clock::to_db_text(until)
                ),
                HoldReason::LiveAttempt => "another attempt to this number is still live".into(),
                other => format!("held back ({other})"),
            };
            (text, back(until, reason))
        }
    };
    (format!("not sent: {text}"), release)
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
            decide(&c, &rules("00:00-24:00", "UTC"), Some(1), now),
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
            decide(&ny, &r, Some(7), now),
            ClaimDecision::Dial { agent_id: 7 }
        ));
        let tokyo = contact("+442079460958", Some("Asia/Tokyo"), 0);
        match decide(&tokyo, &r, Some(7), now) {
            // Next 09:00 in Tokyo is 00:00 UTC the next day.
            ClaimDecision::Defer(t) => {
                assert_eq!(t, Utc.with_ymd_and_hms(2026, 6, 2, 0, 0, 0).unwrap())
            }
            other => panic!("{other:?}"),
        }
    }

    /// Florida's 850 spans Eastern and Central time: the window must be open
    /// in both, never judged in the campaign's zone (here UTC, which would
    /// have called from 05:00 local time).
    #[test]
    fn a_number_whose_area_code_spans_two_zones_is_called_only_when_both_are_open() {
        let r = rules("09:00-20:00", "UTC");
        let panhandle = contact("+18505550123", None, 0);
        let at = |h, m| Utc.with_ymd_and_hms(2026, 7, 1, h, m, 0).unwrap();
        // 13:30 UTC: 09:30 in Tallahassee, 08:30 in Pensacola.
        match decide(&panhandle, &r, Some(7), at(13, 30)) {
            ClaimDecision::Defer(t) => assert_eq!(t, at(14, 0), "09:00 in Pensacola"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&panhandle, &r, Some(7), at(14, 0)),
            ClaimDecision::Dial { agent_id: 7 }
        ));
        // 23:59 UTC: 19:59 in Tallahassee, still open in both.
        assert!(matches!(
            decide(&panhandle, &r, Some(7), at(23, 59)),
            ClaimDecision::Dial { .. }
        ));
        // 00:00 UTC: 20:00 in Tallahassee: closed until 09:00 in Pensacola.
        match decide(
            &panhandle,
            &r,
            Some(7),
            Utc.with_ymd_and_hms(2026, 7, 2, 0, 0, 0).unwrap(),
        ) {
            ClaimDecision::Defer(t) => {
                assert_eq!(t, Utc.with_ymd_and_hms(2026, 7, 2, 14, 0, 0).unwrap())
            }
            other => panic!("{other:?}"),
        }
        // Its own timezone column decides alone.
        let own = contact("+18505550123", Some("America/New_York"), 0);
        assert!(matches!(
            decide(&own, &r, Some(7), at(13, 30)),
            ClaimDecision::Dial { .. }
        ));
    }

    #[test]
    fn a_window_shorter_than_an_area_codes_zone_spread_makes_the_contact_invalid() {
        let r = rules("09:00-09:30", "UTC");
        let panhandle = contact("+18505550123", None, 0);
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 12, 0, 0).unwrap();
        match decide(&panhandle, &r, Some(7), now) {
            ClaimDecision::Invalid(why) => {
                assert!(why.contains("never open in all of"), "{why}");
                assert!(why.contains("America/Chicago"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_attempts_left_exhausts_and_no_agent_invalidates() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let r = rules("00:00-24:00", "UTC");
        assert!(matches!(
            decide(&contact("+442079460958", None, 3), &r, Some(1), now),
            ClaimDecision::Exhaust
        ));
        assert!(matches!(
            decide(&contact("+442079460958", None, 0), &r, None, now),
            ClaimDecision::Invalid(_)
        ));
        assert!(matches!(
            decide(
                &contact("+442079460958", Some("Nowhere/Land"), 0),
                &r,
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
        match decide(&c, &rules("00:00-24:00", "UTC"), Some(1), now) {
            ClaimDecision::Hold { until, reason } => {
                assert_eq!(reason, HoldReason::Cap);
                assert_eq!(until, oldest + chrono::Duration::hours(24));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_number_with_a_live_attempt_elsewhere_is_held_back() {
        let now = Utc.with_ymd_and_hms(2026, 6, 1, 13, 0, 0).unwrap();
        let mut c = contact("+442079460958", None, 0);
        c.live_attempt_elsewhere = true;
        assert!(matches!(
            decide(&c, &rules("00:00-24:00", "UTC"), Some(1), now),
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
        assert!(decide_at_dial(&ok, &all_day, Some(1), now).is_none());

        let mut dnc = ok.clone();
        dnc.contact.on_dnc = true;
        dnc.contact.dnc_since = Some("2026-07-01T02:59:00Z".into());
        let (why, release) = decide_at_dial(&dnc, &all_day, Some(1), now).unwrap();
        assert_eq!(why, "not sent: on the DNC list since 2026-07-01T02:59:00Z");
        assert!(matches!(
            release,
            Release::Close {
                state: ContactState::Suppressed,
                ..
            }
        ));

        let paused = dial_state(contact("+442079460958", None, 0), CampaignStatus::Paused);
        let (why, release) = decide_at_dial(&paused, &all_day, Some(1), now).unwrap();
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
        let (why, release) =
            decide_at_dial(&chicago, &rules("09:00-20:00", "UTC"), Some(1), now).unwrap();
        assert_eq!(why, "not sent: outside calling hours in America/Chicago");
        assert_eq!(
            release,
            Release::HandBack {
                due: Some(Utc.with_ymd_and_hms(2026, 7, 1, 14, 0, 0).unwrap()),
                reason: HoldReason::Window
            }
        );

        let mut gone = ok.clone();
        gone.owns_attempt = false;
        assert_eq!(
            decide_at_dial(&gone, &all_day, Some(1), now).map(|r| r.1),
            Some(Release::Untouched)
        );
    }
}
