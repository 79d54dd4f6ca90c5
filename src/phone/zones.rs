//! The time zone a phone number implies, for calling windows when a contact
//! has no `timezone` of its own: the zone of a country that has exactly one,
//! or the zone of a North American area code that lies wholly in one.
//!
//! A wrong zone means calling someone in the middle of the night, so these
//! tables prefer `None` (the caller falls back to the campaign's zone) to a
//! guess. Area codes that straddle a zone line, overlays of such codes,
//! non-geographic codes and codes not listed here all give `None`. Countries
//! are left out when part of their territory keeps another clock (Spain's
//! Canaries, Portugal's Azores, Ukraine's Crimea, China's Xinjiang, ...).

use chrono_tz::Tz;
use phonenumber::country::Id;

use super::PhoneNumber;

/// The zone a number determines: its country's, when the country has a single
/// zone, or its North American area code's. `None` when it is ambiguous.
pub fn zone_for_number(number: &PhoneNumber) -> Option<Tz> {
    zone_name(number)?.parse().ok()
}

/// The IANA name of the zone `number` determines.
fn zone_name(number: &PhoneNumber) -> Option<&'static str> {
    let e164 = number.as_str();
    if let Some((_, zone)) = PREFIXES.iter().find(|(p, _)| e164.starts_with(p)) {
        return Some(zone);
    }
    // A US or Canadian area code decides alone (the Caribbean and Pacific
    // +1 territories have area codes of their own, not in these tables), so
    // the common case needs no look at the numbering plan.
    if let Some(code) = area_code(e164) {
        if split_zones(code).is_some() {
            return None;
        }
        if let Some(zone) = nanp_zone(e164) {
            return Some(zone);
        }
    }
    match number.region()? {
        // The +1 Caribbean and Pacific territories have region ids of their own.
        Id::US | Id::CA => nanp_zone(e164),
        region => lookup(COUNTRIES, region.as_ref()),
    }
}

/// The area code of a +1 number with ten national digits.
fn area_code(e164: &str) -> Option<u16> {
    if e164.len() != 12 {
        return None;
    }
    e164.strip_prefix("+1")?.get(..3)?.parse().ok()
}

/// The zone of a US or Canadian number's area code.
fn nanp_zone(e164: &str) -> Option<&'static str> {
    let code = area_code(e164)?;
    if split_zones(code).is_some() {
        return None;
    }
    NANP.iter()
        .find(|(_, codes)| codes.binary_search(&code).is_ok())
        .map(|(zone, _)| *zone)
}

/// The value of `key` in a table sorted by key.
fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    let i = table.binary_search_by(|(k, _)| (*k).cmp(key)).ok()?;
    Some(table[i].1)
}

/// E.164 prefixes whose zone differs from the rest of their country's.
const PREFIXES: &[(&str, &str)] = &[
    // Chatham Islands landlines (03 305 ....), 45 minutes ahead of the mainland.
    ("+643305", "Pacific/Chatham"),
];

/// Countries (by `phonenumber` region id) that keep one clock everywhere,
/// sorted by id. From the tz database's `zone.tab` (countries with one zone),
/// plus those whose several zones have kept the same offset for years (AR, CY,
/// DE, MH, MY, UZ) and regions the tz database does not list (AC, TA, XK).
#[rustfmt::skip]
const COUNTRIES: &[(&str, &str)] = &[
    ("AC", "Atlantic/St_Helena"), ("AD", "Europe/Andorra"), ("AE", "Asia/Dubai"),
    ("AF", "Asia/Kabul"), ("AG", "America/Antigua"), ("AI", "America/Anguilla"),
    ("AL", "Europe/Tirane"), ("AM", "Asia/Yerevan"), ("AO", "Africa/Luanda"),
    ("AR", "America/Argentina/Buenos_Aires"), ("AS", "Pacific/Pago_Pago"), ("AT", "Europe/Vienna"),
    ("AW", "America/Aruba"), ("AX", "Europe/Mariehamn"), ("AZ", "Asia/Baku"),
    ("BA", "Europe/Sarajevo"), ("BB", "America/Barbados"), ("BD", "Asia/Dhaka"),
    ("BE", "Europe/Brussels"), ("BF", "Africa/Ouagadougou"), ("BG", "Europe/Sofia"),
    ("BH", "Asia/Bahrain"), ("BI", "Africa/Bujumbura"), ("BJ", "Africa/Porto-Novo"),
    ("BL", "America/St_Barthelemy"), ("BM", "Atlantic/Bermuda"), ("BN", "Asia/Brunei"),
    ("BO", "America/La_Paz"), ("BQ", "America/Kralendijk"), ("BS", "America/Nassau"),
    ("BT", "Asia/Thimphu"), ("BW", "Africa/Gaborone"), ("BY", "Europe/Minsk"),
    ("BZ", "America/Belize"), ("CC", "Indian/Cocos"), ("CF", "Africa/Bangui"),
    ("CG", "Africa/Brazzaville"), ("CH", "Europe/Zurich"), ("CI", "Africa/Abidjan"),
    ("CK", "Pacific/Rarotonga"), ("CM", "Africa/Douala"), ("CO", "America/Bogota"),
    ("CR", "America/Costa_Rica"), ("CU", "America/Havana"), ("CV", "Atlantic/Cape_Verde"),
    ("CW", "America/Curacao"), ("CX", "Indian/Christmas"), ("CY", "Asia/Nicosia"),
    ("CZ", "Europe/Prague"), ("DE", "Europe/Berlin"), ("DJ", "Africa/Djibouti"),
    ("DK", "Europe/Copenhagen"), ("DM", "America/Dominica"), ("DO", "America/Santo_Domingo"),
    ("DZ", "Africa/Algiers"), ("EE", "Europe/Tallinn"), ("EG", "Africa/Cairo"),
    ("EH", "Africa/El_Aaiun"), ("ER", "Africa/Asmara"), ("ET", "Africa/Addis_Ababa"),
    ("FI", "Europe/Helsinki"), ("FJ", "Pacific/Fiji"), ("FK", "Atlantic/Stanley"),
    ("FO", "Atlantic/Faroe"), ("FR", "Europe/Paris"), ("GA", "Africa/Libreville"),
    ("GB", "Europe/London"), ("GD", "America/Grenada"), ("GE", "Asia/Tbilisi"),
    ("GF", "America/Cayenne"), ("GG", "Europe/Guernsey"), ("GH", "Africa/Accra"),
    ("GI", "Europe/Gibraltar"), ("GM", "Africa/Banjul"), ("GN", "Africa/Conakry"),
    ("GP", "America/Guadeloupe"), ("GQ", "Africa/Malabo"), ("GR", "Europe/Athens"),
    ("GT", "America/Guatemala"), ("GU", "Pacific/Guam"), ("GW", "Africa/Bissau"),
    ("GY", "America/Guyana"), ("HK", "Asia/Hong_Kong"), ("HN", "America/Tegucigalpa"),
    ("HR", "Europe/Zagreb"), ("HT", "America/Port-au-Prince"), ("HU", "Europe/Budapest"),
    ("IE", "Europe/Dublin"), ("IL", "Asia/Jerusalem"), ("IM", "Europe/Isle_of_Man"),
    ("IN", "Asia/Kolkata"), ("IO", "Indian/Chagos"), ("IQ", "Asia/Baghdad"),
    ("IR", "Asia/Tehran"), ("IS", "Atlantic/Reykjavik"), ("IT", "Europe/Rome"),
    ("JE", "Europe/Jersey"), ("JM", "America/Jamaica"), ("JO", "Asia/Amman"),
    ("JP", "Asia/Tokyo"), ("KE", "Africa/Nairobi"), ("KG", "Asia/Bishkek"),
    ("KH", "Asia/Phnom_Penh"), ("KM", "Indian/Comoro"), ("KN", "America/St_Kitts"),
    ("KP", "Asia/Pyongyang"), ("KR", "Asia/Seoul"), ("KW", "Asia/Kuwait"),
    ("KY", "America/Cayman"), ("LA", "Asia/Vientiane"), ("LB", "Asia/Beirut"),
    ("LC", "America/St_Lucia"), ("LI", "Europe/Vaduz"), ("LK", "Asia/Colombo"),
    ("LR", "Africa/Monrovia"), ("LS", "Africa/Maseru"), ("LT", "Europe/Vilnius"),
    ("LU", "Europe/Luxembourg"), ("LV", "Europe/Riga"), ("LY", "Africa/Tripoli"),
    ("MA", "Africa/Casablanca"), ("MC", "Europe/Monaco"), ("MD", "Europe/Chisinau"),
    ("ME", "Europe/Podgorica"), ("MF", "America/Marigot"), ("MG", "Indian/Antananarivo"),
    ("MH", "Pacific/Majuro"), ("MK", "Europe/Skopje"), ("ML", "Africa/Bamako"),
    ("MM", "Asia/Yangon"), ("MO", "Asia/Macau"), ("MP", "Pacific/Saipan"),
    ("MQ", "America/Martinique"), ("MR", "Africa/Nouakchott"), ("MS", "America/Montserrat"),
    ("MT", "Europe/Malta"), ("MU", "Indian/Mauritius"), ("MV", "Indian/Maldives"),
    ("MW", "Africa/Blantyre"), ("MY", "Asia/Kuala_Lumpur"), ("MZ", "Africa/Maputo"),
    ("NA", "Africa/Windhoek"), ("NC", "Pacific/Noumea"), ("NE", "Africa/Niamey"),
    ("NF", "Pacific/Norfolk"), ("NG", "Africa/Lagos"), ("NI", "America/Managua"),
    ("NL", "Europe/Amsterdam"), ("NO", "Europe/Oslo"), ("NP", "Asia/Kathmandu"),
    ("NR", "Pacific/Nauru"), ("NU", "Pacific/Niue"), ("NZ", "Pacific/Auckland"),
    ("OM", "Asia/Muscat"), ("PA", "America/Panama"), ("PE", "America/Lima"),
    ("PH", "Asia/Manila"), ("PK", "Asia/Karachi"), ("PL", "Europe/Warsaw"),
    ("PM", "America/Miquelon"), ("PR", "America/Puerto_Rico"), ("PW", "Pacific/Palau"),
    ("PY", "America/Asuncion"), ("QA", "Asia/Qatar"), ("RE", "Indian/Reunion"),
    ("RO", "Europe/Bucharest"), ("RS", "Europe/Belgrade"), ("RW", "Africa/Kigali"),
    ("SA", "Asia/Riyadh"), ("SB", "Pacific/Guadalcanal"), ("SC", "Indian/Mahe"),
    ("SD", "Africa/Khartoum"), ("SE", "Europe/Stockholm"), ("SG", "Asia/Singapore"),
    ("SH", "Atlantic/St_Helena"), ("SI", "Europe/Ljubljana"), ("SJ", "Arctic/Longyearbyen"),
    ("SK", "Europe/Bratislava"), ("SL", "Africa/Freetown"), ("SM", "Europe/San_Marino"),
    ("SN", "Africa/Dakar"), ("SO", "Africa/Mogadishu"), ("SR", "America/Paramaribo"),
    ("SS", "Africa/Juba"), ("ST", "Africa/Sao_Tome"), ("SV", "America/El_Salvador"),
    ("SX", "America/Lower_Princes"), ("SY", "Asia/Damascus"), ("SZ", "Africa/Mbabane"),
    ("TA", "Atlantic/St_Helena"), ("TC", "America/Grand_Turk"), ("TD", "Africa/Ndjamena"),
    ("TG", "Africa/Lome"), ("TH", "Asia/Bangkok"), ("TJ", "Asia/Dushanbe"),
    ("TK", "Pacific/Fakaofo"), ("TL", "Asia/Dili"), ("TM", "Asia/Ashgabat"),
    ("TN", "Africa/Tunis"), ("TO", "Pacific/Tongatapu"), ("TR", "Europe/Istanbul"),
    ("TT", "America/Port_of_Spain"), ("TV", "Pacific/Funafuti"), ("TW", "Asia/Taipei"),
    ("TZ", "Africa/Dar_es_Salaam"), ("UG", "Africa/Kampala"), ("UY", "America/Montevideo"),
    ("UZ", "Asia/Tashkent"), ("VA", "Europe/Vatican"), ("VC", "America/St_Vincent"),
    ("VE", "America/Caracas"), ("VG", "America/Tortola"), ("VI", "America/St_Thomas"),
    ("VN", "Asia/Ho_Chi_Minh"), ("VU", "Pacific/Efate"), ("WF", "Pacific/Wallis"),
    ("WS", "Pacific/Apia"), ("XK", "Europe/Belgrade"), ("YE", "Asia/Aden"),
    ("YT", "Indian/Mayotte"), ("ZA", "Africa/Johannesburg"), ("ZM", "Africa/Lusaka"),
    ("ZW", "Africa/Harare"),
];

/// US and Canadian geographic area codes lying wholly in one zone, one sorted
/// list per zone. Overlays share their parent's zone. A code missing here
/// gives `None`: see [`SPLIT`] for the ones left out on purpose.
#[rustfmt::skip]
const NANP: &[(&str, &[u16])] = &[
    // US Eastern: CT DC DE FL (not the panhandle) GA IN (parts) KY (parts) MA
    // MD ME MI (not the UP) NC NH NJ NY OH PA RI SC TN (Knoxville) VA VT WV.
    ("America/New_York", &[
        201, 202, 203, 207, 212, 215, 216, 220, 223, 227, 229, 231, 234, 239, 240, 248, 252,
        260, 267, 269, 272, 276, 283, 301, 302, 304, 305, 313, 315, 317, 321, 326, 330, 332,
        336, 339,
        347, 351, 352, 363, 380, 386, 401, 404, 407, 410, 412, 413, 419, 434, 440, 443, 445,
        463, 470, 475, 478, 484, 502, 508, 513, 516, 517, 518, 540, 551, 561, 567, 570, 571,
        585, 586, 603, 607, 609, 610, 614, 616, 617, 631, 640, 645, 646, 656, 667, 678, 679,
        680, 681, 689, 703, 704, 706, 716, 717, 718, 724, 727, 732, 734, 740, 743, 754, 757,
        762, 765, 770, 771, 772, 774, 781, 786, 802, 803, 804, 810, 813, 814, 826, 828, 838,
        839, 843, 845, 848, 854, 856, 857, 859, 860, 862, 863, 864, 865, 878, 904, 908, 910,
        912, 914, 917, 919, 929, 934, 937, 941, 947, 948, 954, 959, 973, 978, 980, 984, 989,
    ]),
    // US Central: AL (not 334) AR IA IL KS (Wichita, Kansas City) LA MN MO MS
    // NE (east) OK TN (Nashville, west) TX (not El Paso, Midland) WI.
    ("America/Chicago", &[
        205, 210, 214, 217, 218, 224, 225, 228, 251, 254, 256, 262, 274, 281, 309, 312, 314,
        316, 318, 319, 320, 325, 327, 331, 337, 346, 353, 361, 402, 405, 409, 414, 417, 430,
        447, 464, 469, 479, 501, 504, 507, 512, 515, 531, 534, 539, 557, 563, 572, 573, 580,
        601, 608, 612, 615, 618, 629, 630, 636, 641, 651, 659, 660, 662, 682, 708, 712, 713,
        715, 726, 730, 731, 737, 763, 769, 773, 779, 806, 815, 816, 817, 830, 832, 847, 870,
        872, 901, 903, 913, 918, 920, 936, 938, 940, 945, 952, 956, 972, 975, 979, 985,
    ]),
    // US Mountain: CO MT NM UT WY.
    ("America/Denver", &[303, 307, 385, 406, 435, 505, 575, 719, 720, 801, 970, 983]),
    // Arizona without the Navajo Nation (928), which keeps daylight time.
    ("America/Phoenix", &[480, 520, 602, 623]),
    // US Pacific: CA NV (Las Vegas) OR (Portland) WA.
    ("America/Los_Angeles", &[
        206, 209, 213, 253, 279, 310, 323, 341, 350, 360, 408, 415, 424, 425, 442, 503, 509,
        510, 530, 559, 562, 564, 619, 626, 628, 650, 657, 661, 669, 702, 707, 714, 725, 747,
        760, 805, 818, 820, 831, 840, 858, 909, 916, 925, 949, 951, 971,
    ]),
    // All of Alaska but the western Aleutians (Adak, a few hundred people),
    // which keep Hawaii-Aleutian time, an hour behind: they get calls an
    // hour early in their day. Listing 907 as split instead would put every
    // Alaskan on the campaign's zone, several hours off.
    ("America/Anchorage", &[907]),
    ("Pacific/Honolulu", &[808]),
    // Ontario (not 807) and Quebec (not 418 and its overlays).
    ("America/Toronto", &[
        226, 249, 289, 343, 365, 416, 437, 438, 450, 514, 519, 548, 579, 613, 647, 705, 742,
        819, 873, 905,
    ]),
    ("America/Winnipeg", &[204, 431]),
    ("America/Edmonton", &[403, 587, 780, 825]),
    // The Lower Mainland only: 250 and the overlays 236, 672 and 778 reach the
    // Kootenays and the Peace River, which keep Mountain time.
    ("America/Vancouver", &[604]),
    ("America/Halifax", &[782, 902]),
    ("America/Moncton", &[506]),
];

/// Geographic area codes that straddle a zone line (or a daylight-time line),
/// kept out of [`NANP`] on purpose (a test checks they stay out), with every
/// clock their numbers may keep: a number's calling window must be open in
/// all of them. A zone whose clock always equals one of the others' at the
/// same instant is left out (British Columbia's places on Mountain Standard
/// Time all year match Vancouver in summer and Edmonton in winter).
#[rustfmt::skip]
const SPLIT: &[(&[u16], &[&str])] = &[
    // Idaho: the panhandle is Pacific; 986 is its overlay.
    (&[208, 986], &["America/Boise", "America/Los_Angeles"]),
    // Indiana: Central in the northwest and southwest corners.
    (&[219, 574, 812, 930], &["America/New_York", "America/Chicago"]),
    // British Columbia: the Kootenays keep Mountain time.
    (&[236, 250, 672, 778], &["America/Vancouver", "America/Edmonton"]),
    // Kentucky, Tennessee, Alabama, the Florida panhandle, Michigan's Upper
    // Peninsula: Central and Eastern counties.
    (&[270, 334, 364, 423, 448, 606, 850, 906], &["America/New_York", "America/Chicago"]),
    // Saskatchewan: Lloydminster keeps Alberta time.
    (&[306, 474, 639], &["America/Regina", "America/Edmonton"]),
    // The Dakotas, Nebraska, Kansas, west Texas: Mountain in the west.
    (&[308, 432, 605, 620, 701, 785, 915], &["America/Chicago", "America/Denver"]),
    // Eastern Quebec: the Magdalen Islands and the Lower North Shore are Atlantic.
    (&[367, 418, 581], &["America/Toronto", "America/Halifax"]),
    // Oregon: Malheur County is Mountain.
    (&[458, 541], &["America/Los_Angeles", "America/Boise"]),
    // Newfoundland and Labrador: Labrador is Atlantic, part of it without daylight time.
    (&[709, 879], &["America/St_Johns", "America/Halifax", "America/Puerto_Rico"]),
    // Northern Nevada: West Wendover is Mountain.
    (&[775], &["America/Los_Angeles", "America/Denver"]),
    // Northwestern Ontario: Kenora is Central.
    (&[807], &["America/Toronto", "America/Winnipeg"]),
    // Yukon (Mountain all year), the Northwest Territories and Nunavut.
    (&[867], &["America/Whitehorse", "America/Edmonton", "America/Winnipeg", "America/Toronto"]),
    // Northern Arizona: the Navajo Nation keeps daylight time.
    (&[928], &["America/Phoenix", "America/Denver"]),
];

/// The zones of area code `code` when it straddles a zone line.
fn split_zones(code: u16) -> Option<&'static [&'static str]> {
    SPLIT
        .iter()
        .find(|(codes, _)| codes.contains(&code))
        .map(|(_, zones)| *zones)
}

/// Every zone a US or Canadian number whose area code straddles a zone line
/// may be in; empty for any other number. With [`zone_for_number`] giving
/// `None` for these, a caller keeps its calling window open only when it is
/// open in all of them.
pub fn possible_zones(number: &PhoneNumber) -> Vec<Tz> {
    match area_code(number.as_str()).and_then(split_zones) {
        Some(names) => names.iter().filter_map(|n| n.parse().ok()).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The area-code shortcut is only right if every listed code is a US or
    /// Canadian one: a Caribbean code there would skip its own country's zone.
    #[test]
    fn every_listed_area_code_belongs_to_the_us_or_canada() {
        let mut valid = 0;
        for (_, codes) in NANP {
            for code in codes.iter() {
                for subscriber in ["2345678", "4567890", "7654321", "8675309"] {
                    let e164 = format!("+1{code}{subscriber}");
                    let Ok(p) = phonenumber::parse(None, &e164) else {
                        continue;
                    };
                    if !p.is_valid() {
                        continue;
                    }
                    valid += 1;
                    let region = p.country().id();
                    assert!(
                        matches!(region, Some(Id::US | Id::CA)),
                        "{e164} is listed in the area-code table but belongs to {region:?}"
                    );
                }
            }
        }
        assert!(valid > 200, "too few numbers checked: {valid}");
    }

    #[test]
    fn every_zone_name_in_the_tables_is_a_known_iana_zone() {
        let names = COUNTRIES
            .iter()
            .map(|(_, z)| *z)
            .chain(NANP.iter().map(|(z, _)| *z))
            .chain(PREFIXES.iter().map(|(_, z)| *z));
        for name in names {
            assert!(
                name.parse::<Tz>().is_ok(),
                "{name} is not a zone chrono-tz knows"
            );
        }
    }

    #[test]
    fn every_country_key_is_a_region_id_and_the_table_is_sorted_and_unique() {
        for pair in COUNTRIES.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} and {} out of order",
                pair[0].0,
                pair[1].0
            );
        }
        for (id, _) in COUNTRIES {
            assert!(
                id.parse::<Id>().is_ok(),
                "{id} is not a phonenumber region id"
            );
        }
        assert!(lookup(COUNTRIES, "US").is_none() && lookup(COUNTRIES, "CA").is_none());
    }

    #[test]
    fn every_area_code_list_is_sorted_and_no_code_has_two_zones_or_is_a_split_one() {
        let mut seen = std::collections::BTreeSet::new();
        for (zone, codes) in NANP {
            for pair in codes.windows(2) {
                assert!(
                    pair[0] < pair[1],
                    "{zone}: {} and {} out of order",
                    pair[0],
                    pair[1]
                );
            }
            for code in *codes {
                assert!(
                    (200..1000).contains(code),
                    "{zone}: {code} is not an area code"
                );
                assert!(seen.insert(*code), "{code} is listed twice");
                assert!(split_zones(*code).is_none(), "{code} straddles a zone line");
            }
        }
        let mut split = std::collections::BTreeSet::new();
        for (codes, zones) in SPLIT {
            for code in *codes {
                assert!(split.insert(*code), "SPLIT lists {code} twice");
            }
            assert!(
                zones.len() >= 2,
                "{codes:?}: a split code has several zones"
            );
            for zone in *zones {
                assert!(zone.parse::<Tz>().is_ok(), "{zone} is not a zone name");
            }
        }
    }
}
