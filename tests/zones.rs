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
    let sample = include_str!("data/zones-sample.txt");
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
    // The numbering metadata of the `phonenumber` crate is a few releases
    // older than the map's; a number it types differently may disagree.
    assert!(
        mismatches.len() * 1000 <= checked,
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
