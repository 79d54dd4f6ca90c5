//! The zones a number implies, held against libphonenumber's own answers:
//! a fixed line by its longest prefix in the zone map, any other number by
//! its country's zones, and the campaign's zone only for a country the map
//! does not know.

use dialerd::phone::PhoneNumber;
use dialerd::phone::zones::{ZoneSource, candidate_zones, number_zones};

fn zones(raw: &str) -> (Vec<String>, ZoneSource) {
    let number = PhoneNumber::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
    let c = candidate_zones(None, number.as_str(), chrono_tz::Asia::Tokyo).unwrap();
    (
        c.zones().iter().map(|z| z.name().to_string()).collect(),
        c.source,
    )
}

#[track_caller]
fn assert_zones(raw: &str, want: &[&str], source: ZoneSource) {
    assert_eq!(
        zones(raw),
        (want.iter().map(|s| s.to_string()).collect(), source),
        "{raw}"
    );
}

/// `tests/data/zones-sample.txt` is what `phonenumbers` (libphonenumber's
/// Python port) answers for every example number of every region and kind
/// and for a number under every prefix of the map: dialerd must answer the
/// same for each, so a bad regeneration of the embedded map fails here.
#[test]
fn the_embedded_map_answers_as_libphonenumber_does_on_its_sample() {
    let sample = include_str!("../data/zones-sample.txt");
    let (mut checked, mut unknown, mut mismatches) = (0, 0, Vec::new());
    for line in sample.lines().filter(|l| !l.starts_with('#')) {
        let (number, want) = line.split_once('|').unwrap();
        // Numbers our numbering metadata (an older release) cannot read are
        // not the zone map's concern.
        if PhoneNumber::parse(number, None).is_err() {
            unknown += 1;
            continue;
        }
        checked += 1;
        let got = match number_zones(number) {
            Some((zones, _)) => zones.iter().map(|z| z.name()).collect::<Vec<_>>().join("&"),
            None => "Etc/Unknown".to_string(),
        };
        if got != want {
            mismatches.push(format!("{number}: libphonenumber {want}, dialerd {got}"));
        }
    }
    assert!(
        checked > 7000,
        "only {checked} numbers checked ({unknown} unreadable)"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {checked} numbers disagree:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn a_us_or_canadian_fixed_line_gets_its_area_codes_zone() {
    use ZoneSource::Number;
    assert_zones("+1 212 736 5000", &["America/New_York"], Number);
    assert_zones("+1 415 555 2671", &["America/Los_Angeles"], Number);
    assert_zones("+1 931 555 0123", &["America/Chicago"], Number); // Tennessee's 931
    assert_zones("+1 602 262 6011", &["America/Phoenix"], Number);
    assert_zones("+1 416 392 2489", &["America/Toronto"], Number);
    assert_zones("+1 876 929 1234", &["America/Jamaica"], Number);
}

#[test]
fn a_split_area_code_gets_every_zone_it_spans() {
    use ZoneSource::Number;
    assert_zones(
        "+1 907 555 0123",
        &["America/Adak", "America/Anchorage"],
        Number,
    );
    assert_zones("+1 907 269 5100", &["America/Juneau"], Number);
    assert_zones(
        "+1 775 555 0123",
        &["America/Boise", "America/Los_Angeles"],
        Number,
    );
}

#[test]
fn a_mobile_in_a_multi_zone_country_gets_every_zone_of_its_country() {
    use ZoneSource::Country;
    let (au, source) = zones("+61 412 345 678");
    assert_eq!(source, Country);
    assert!(au.contains(&"Australia/Perth".into()) && au.contains(&"Australia/Sydney".into()));
    let (ru, source) = zones("+7 912 345 6789");
    assert_eq!(source, Country);
    assert!(ru.contains(&"Asia/Yekaterinburg".into()) && ru.contains(&"Europe/Moscow".into()));
}

#[test]
fn a_fixed_line_in_a_multi_zone_country_gets_its_prefixes_zones() {
    assert_zones("+61 2 9374 4000", &["Australia/Sydney"], ZoneSource::Number);
    assert_zones(
        "+61 8 9222 9222",
        &["Australia/Adelaide", "Australia/Perth"],
        ZoneSource::Number,
    );
    assert_zones(
        "+52 55 5093 5300",
        &["America/Mexico_City"],
        ZoneSource::Number,
    );
    assert_zones("+64 3 305 0011", &["Pacific/Chatham"], ZoneSource::Number);
}

#[test]
fn a_single_zone_country_is_the_countrys_zone() {
    assert_zones("+33 1 42 68 53 00", &["Europe/Paris"], ZoneSource::Country);
    assert_zones("+91 98765 43210", &["Asia/Calcutta"], ZoneSource::Country);
}

#[test]
fn a_country_the_map_does_not_know_falls_back_to_the_campaign_zone() {
    assert_zones("+800 1234 5678", &["Asia/Tokyo"], ZoneSource::Campaign);
}

#[test]
fn the_timezone_column_wins_and_legacy_names_are_refused() {
    let c = candidate_zones(Some("Europe/Paris"), "+12125550123", chrono_tz::UTC).unwrap();
    assert_eq!(
        (c.zones(), c.source),
        (&[chrono_tz::Europe::Paris][..], ZoneSource::Column)
    );
    let err = candidate_zones(Some("EST"), "+12125550123", chrono_tz::UTC).unwrap_err();
    assert!(
        err.contains("EST") && err.contains("daylight saving"),
        "{err}"
    );
}

mod calling_hours {
    //! Every calling-hours rule through time: a sweep of instants across
    //! both daylight-saving changes of New York and Sydney, and in zones
    //! without daylight saving, for split area codes and multi-zone
    //! countries. Time is passed in, as the dispatcher's clock passes it.

    use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};
    use dialerd::calendar::{Schedule, Window};
    use dialerd::config::Compliance;
    use dialerd::engine::policy::decide;
    use dialerd::phone::zones::candidate_zones;
    use dialerd::store::{CampaignRules, ClaimDecision, DueContact};

    fn rules(window: &str, tz: &str) -> CampaignRules {
        CampaignRules {
            schedule: Schedule::parse("* * * * *").unwrap(),
            timezone: tz.parse().unwrap(),
            window: Window::parse(window).unwrap(),
            max_attempts: 3,
            retry_delay_secs: 3600,
            retry_outcomes: vec![],
            retry_delays: vec![],
            region: None,
            max_calls_per_number_per_day: 3,
        }
    }

    fn contact(number: &str) -> DueContact {
        DueContact {
            id: 1,
            phone_number: number.into(),
            timezone: None,
            agent_id: Some(7),
            call_context: "{}".into(),
            state: "pending".into(),
            attempts: 0,
            on_dnc: false,
            dnc_since: None,
            problem: None,
            calls_last_24h: 0,
            oldest_call_last_24h: None,
            live_attempt_elsewhere: false,
        }
    }

    /// Minutes after local midnight in `zone` at `at`.
    fn local_minute(at: DateTime<Utc>, zone: chrono_tz::Tz) -> u32 {
        let l = at.with_timezone(&zone);
        l.hour() * 60 + l.minute()
    }

    /// Numbers whose zones spread over hours: Australian mobiles and
    /// landlines, Brazil, Mexico, Russia, Indonesia, Nevada's and Alaska's
    /// split area codes, New York, Phoenix (no daylight saving), Florida,
    /// and an international freephone number (the campaign's zone).
    const NUMBERS: [&str; 14] = [
        "+61412345678",
        "+61293744000",
        "+61892229222",
        "+5511955550143",
        "+5592955550143",
        "+525550935300",
        "+79123456789",
        "+74956063602",
        "+628121234567",
        "+17755550123",
        "+19075550123",
        "+12125550123",
        "+16022626011",
        "+80012345678",
    ];

    /// The instants swept: every 17 minutes over four days around each
    /// daylight-saving change of New York (8 March, 1 November 2026) and
    /// Sydney (5 April, 4 October 2026).
    fn instants() -> impl Iterator<Item = DateTime<Utc>> {
        [(3, 6), (10, 30), (4, 3), (10, 2)]
            .into_iter()
            .flat_map(|(month, day)| {
                let start = Utc.with_ymd_and_hms(2026, month, day, 0, 3, 0).unwrap();
                (0..4 * 24 * 60 / 17).map(move |i| start + Duration::minutes(17 * i))
            })
    }

    /// Whenever a contact is dialed, the campaign window and the quiet
    /// hours hold in every candidate zone (checked here from the wall
    /// clock, not through the policy's own code); whenever it is put off,
    /// the instant given is the first minute it may be dialed.
    #[test]
    fn no_contact_is_dialed_outside_its_hours_in_any_candidate_zone() {
        let shipped = Compliance::default();
        let (mut dialed, mut deferred) = (0, 0);
        for (window, (lo, hi)) in [("09:00-20:00", (540, 1200)), ("00:00-24:00", (0, 1440))] {
            for campaign_tz in ["UTC", "Australia/Sydney", "America/New_York"] {
                let r = rules(window, campaign_tz);
                for number in NUMBERS {
                    let c = contact(number);
                    let zones = candidate_zones(None, number, r.timezone).unwrap();
                    for now in instants() {
                        match decide(&c, &r, &shipped, Some(7), now) {
                            ClaimDecision::Dial { .. } => {
                                dialed += 1;
                                for z in zones.zones() {
                                    let m = local_minute(now, *z);
                                    assert!(
                                        m >= lo.max(480) && m < hi.min(1260),
                                        "{number} dialed at {now}: {m} min after midnight in {z}"
                                    );
                                }
                            }
                            ClaimDecision::Defer(at) | ClaimDecision::Hold { until: at, .. } => {
                                deferred += 1;
                                assert!(at > now, "{number} at {now}: deferred to {at}");
                                let before = at - Duration::minutes(1);
                                let dial = |t| {
                                    matches!(
                                        decide(&c, &r, &shipped, Some(7), t),
                                        ClaimDecision::Dial { .. }
                                    )
                                };
                                assert!(dial(at), "{number}: not dialable at its opening {at}");
                                assert!(
                                    before < now || !dial(before),
                                    "{number}: dialable a minute before its opening {at}"
                                );
                            }
                            other => panic!("{number} at {now}: {other:?}"),
                        }
                    }
                }
            }
        }
        assert!(
            dialed > 10_000 && deferred > 10_000,
            "{dialed} dialed, {deferred} deferred"
        );
    }

    /// An all-day campaign still calls nobody outside 08:00-21:00 local.
    #[test]
    fn the_quiet_hours_floor_holds_on_an_all_day_campaign() {
        let r = rules("00:00-24:00", "UTC");
        let london = contact("+442079460958");
        let at = |h, m| Utc.with_ymd_and_hms(2026, 3, 29, h, m, 0).unwrap();
        // 29 March 2026: London moves to BST at 01:00 UTC.
        match decide(&london, &r, &Compliance::default(), Some(7), at(3, 0)) {
            ClaimDecision::Hold { until, reason } => {
                assert_eq!(until, at(7, 0), "08:00 BST");
                assert_eq!(reason, dialerd::domain::HoldReason::QuietHours);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decide(&london, &r, &Compliance::none(), Some(7), at(3, 0)),
            ClaimDecision::Dial { .. }
        ));
    }

    /// Florida's statute: 08:00-20:00 callee-local, even in a campaign
    /// whose own window runs later.
    #[test]
    fn a_florida_number_is_called_only_from_eight_to_eight() {
        let r = rules("07:00-22:00", "UTC");
        let miami = contact("+13055550123");
        let shipped = Compliance::default();
        // 1 November 2026: Miami leaves daylight time at 06:00 UTC.
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        for (now, open) in [
            (at(1, 0, 30), false),  // 20:30 EDT on 31 October
            (at(1, 12, 59), false), // 07:59 EST
            (at(1, 13, 0), true),   // 08:00 EST
            (at(2, 0, 59), true),   // 19:59 EST
            (at(2, 1, 0), false),   // 20:00 EST
        ] {
            let d = decide(&miami, &r, &shipped, Some(7), now);
            assert_eq!(
                matches!(d, ClaimDecision::Dial { .. }),
                open,
                "{now}: {d:?}"
            );
        }
    }
}
