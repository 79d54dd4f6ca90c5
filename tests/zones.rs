//! The time zone a phone number implies: single-zone countries, North
//! American area codes, and `None` wherever the answer would be a guess.

use dialerd::phone::PhoneNumber;
use dialerd::phone::zones::zone_for_number;

fn zone(raw: &str) -> Option<String> {
    let number = PhoneNumber::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
    zone_for_number(&number).map(|tz| tz.name().to_string())
}

#[track_caller]
fn assert_zone(raw: &str, want: Option<&str>) {
    assert_eq!(zone(raw).as_deref(), want, "{raw}");
}

#[test]
fn a_us_or_canadian_area_code_in_one_zone_gives_that_zone() {
    assert_zone("+1 212 736 5000", Some("America/New_York"));
    assert_zone("+1 415 555 2671", Some("America/Los_Angeles"));
    assert_zone("+1 312 744 5000", Some("America/Chicago"));
    assert_zone("+1 303 866 2471", Some("America/Denver"));
    assert_zone("+1 808 586 0034", Some("Pacific/Honolulu"));
    assert_zone("+1 907 269 5100", Some("America/Anchorage"));
    assert_zone("+1 336 373 2002", Some("America/New_York")); // Greensboro, NC
    assert_zone("+1 416 392 2489", Some("America/Toronto"));
    assert_zone("+1 604 873 7000", Some("America/Vancouver"));
}

#[test]
fn arizona_gets_the_zone_without_daylight_time() {
    assert_zone("+1 602 262 6011", Some("America/Phoenix"));
}

#[test]
fn an_area_code_that_straddles_a_zone_line_gives_none() {
    assert_zone("+1 850 644 2525", None); // Florida panhandle
    assert_zone("+1 208 334 2411", None); // Idaho
    assert_zone("+1 928 774 5281", None); // Navajo Nation keeps daylight time
    assert_zone("+1 250 387 6121", None); // British Columbia interior
}

#[test]
fn a_split_area_code_lists_every_zone_it_spans_and_others_list_none() {
    let possible = |raw: &str| {
        let number = PhoneNumber::parse(raw, None).unwrap();
        dialerd::phone::zones::possible_zones(&number)
            .iter()
            .map(|z| z.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        possible("+1 850 644 2525"),
        ["America/New_York", "America/Chicago"]
    );
    assert_eq!(
        possible("+1 928 774 5281"),
        ["America/Phoenix", "America/Denver"]
    );
    assert_eq!(possible("+1 212 736 5000"), Vec::<String>::new());
    assert_eq!(possible("+44 20 7946 0958"), Vec::<String>::new());
}

#[test]
fn toll_free_numbers_give_none() {
    assert_zone("+1 800 642 7676", None);
    assert_zone("+1 888 555 1212", None);
}

#[test]
fn caribbean_nanp_numbers_use_their_own_region() {
    assert_zone("+1 876 929 1234", Some("America/Jamaica"));
    assert_zone("+1 787 722 2121", Some("America/Puerto_Rico"));
}

#[test]
fn a_country_with_one_zone_gives_that_zone() {
    assert_zone("+44 20 7946 0958", Some("Europe/London"));
    assert_zone("+33 1 42 68 53 00", Some("Europe/Paris"));
    assert_zone("+49 30 18272 0", Some("Europe/Berlin"));
    assert_zone("+91 98765 43210", Some("Asia/Kolkata"));
    assert_zone("+81 3 3581 3111", Some("Asia/Tokyo"));
}

#[test]
fn a_country_with_several_zones_gives_none() {
    assert_zone("+61 2 9374 4000", None); // Australia
    assert_zone("+7 495 606 3602", None); // Russia
    assert_zone("+52 55 5093 5300", None); // Mexico
    assert_zone("+34 912 34 56 78", None); // Spain (the Canaries)
}

#[test]
fn chatham_island_landlines_are_told_apart_from_the_new_zealand_mainland() {
    assert_zone("+64 9 302 0000", Some("Pacific/Auckland"));
    assert_zone("+64 3 305 0011", Some("Pacific/Chatham"));
}
