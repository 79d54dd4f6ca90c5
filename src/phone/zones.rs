//! The time zones a contact may be in: its own `timezone` column, else what
//! libphonenumber's zone map (`data/timezones.txt`, embedded) says of its
//! number, else every zone the map lists for its country, and only for a
//! country the map does not know, the campaign's zone. A calling window must
//! be open in all of them at once: a dialer that phones people must not guess
//! which one they are in.
//!
//! The map is read once into a digit trie, so a lookup walks at most nine
//! nodes and allocates nothing.

use std::fmt;
use std::sync::OnceLock;

use chrono_tz::Tz;

use super::geo::{self, Place};

/// libphonenumber's `timezones/map_data.txt` (Apache-2.0; see NOTICE).
const MAP_DATA: &str = include_str!("../../data/timezones.txt");

/// Where a contact's candidate zones came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneSource {
    /// The contact's own `timezone` column.
    Column,
    /// The zone map's entry for a prefix of the number longer than its country code.
    Number,
    /// Every zone the map lists for the number's country code (a mobile or
    /// other non-geographic number, or a prefix the map does not know).
    Country,
    /// The campaign's zone: the map does not know the country at all.
    Campaign,
}

impl ZoneSource {
    /// Every source, in the order reports list them.
    pub const ALL: [ZoneSource; 4] = [
        ZoneSource::Column,
        ZoneSource::Number,
        ZoneSource::Country,
        ZoneSource::Campaign,
    ];

    /// The lowercase name (`column`, `number`, `country`, `campaign`).
    pub fn as_str(self) -> &'static str {
        match self {
            ZoneSource::Column => "column",
            ZoneSource::Number => "number",
            ZoneSource::Country => "country",
            ZoneSource::Campaign => "campaign",
        }
    }
}

impl fmt::Display for ZoneSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contact's candidate zones and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    zones: Zones,
    /// Where they came from.
    pub source: ZoneSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Zones {
    One(Tz),
    Map(&'static [Tz]),
}

impl Candidates {
    /// The zones, at least one.
    pub fn zones(&self) -> &[Tz] {
        match &self.zones {
            Zones::One(tz) => std::slice::from_ref(tz),
            Zones::Map(zones) => zones,
        }
    }

    /// The zone names joined by ", ".
    pub fn names(&self) -> String {
        self.zones()
            .iter()
            .map(|z| z.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The candidate zones of a contact with `timezone` (its column, when set)
/// and E.164 number `e164`, in a campaign kept in `campaign_tz`. `Err` names
/// why the column's value cannot be used.
pub fn candidate_zones(
    timezone: Option<&str>,
    e164: &str,
    campaign_tz: Tz,
) -> Result<Candidates, String> {
    if let Some(name) = timezone.map(str::trim).filter(|s| !s.is_empty()) {
        return Ok(Candidates {
            zones: Zones::One(parse_contact_tz(name)?),
            source: ZoneSource::Column,
        });
    }
    Ok(match number_zones(e164) {
        Some((zones, source)) => Candidates {
            zones: Zones::Map(zones),
            source,
        },
        None => Candidates {
            zones: Zones::One(campaign_tz),
            source: ZoneSource::Campaign,
        },
    })
}

/// The source a contact's zones would come from, without building them
/// (what `import` counts).
pub fn zone_source(has_timezone: bool, e164: &str) -> ZoneSource {
    if has_timezone {
        return ZoneSource::Column;
    }
    number_zones(e164).map_or(ZoneSource::Campaign, |(_, s)| s)
}

/// What the map says of a number, as libphonenumber's
/// `time_zones_for_number` does: a fixed line (or a geographic mobile) by the
/// longest prefix of its digits; any other number, or one whose prefix the
/// map lacks, by its country code alone. `None` when the map does not know
/// the country either.
pub fn number_zones(e164: &str) -> Option<(&'static [Tz], ZoneSource)> {
    let map = zone_map();
    let digits = e164.strip_prefix('+')?;
    let (code, _) = geo::split_code(e164)?;
    let code_len = code.to_string().len();
    if geo::place(e164) == Place::Geographic
        && let Some((len, zones)) = map.longest(digits)
    {
        let source = if len > code_len {
            ZoneSource::Number
        } else {
            ZoneSource::Country
        };
        return Some((zones, source));
    }
    map.longest(&digits[..code_len])
        .map(|(_, zones)| (zones, ZoneSource::Country))
}

/// Loads libphonenumber's metadata and the zone map now. Both load on
/// first use, and the first use would otherwise be the first claim after
/// start: compiling the metadata's patterns takes about a third of a second
/// of CPU, while that claim's contacts wait to be sent.
pub fn warm_up() {
    let _ = number_zones("+14155552671");
    let _ = geo::place("+442079460958");
}

/// Parses a contact's `timezone` value: an IANA zone name, refusing the
/// legacy names that are no place (`EST`, `MST`, `HST` are fixed offsets
/// that ignore daylight saving; `EST5EDT` and its kind are POSIX rules;
/// `Etc/GMT+5` is UTC-5 with its sign inverted). Links to a place
/// (`US/Eastern`) and `UTC` itself are accepted.
pub fn parse_contact_tz(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if let Some(why) = legacy_reason(name) {
        return Err(format!("timezone {name:?} is refused: {why}"));
    }
    crate::calendar::parse_tz(name)
}

/// Why `name` is a legacy zone name a contact may not use, if it is one.
pub fn legacy_reason(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    let place = |zone: &str| format!("use the callee's place, e.g. {zone}");
    let fixed = |offset: &str, zone: &str| {
        format!(
            "it is a fixed offset ({offset}) that ignores daylight saving; {}",
            place(zone)
        )
    };
    match upper.as_str() {
        "EST" => Some(fixed("UTC-05:00", "America/New_York")),
        "MST" => Some(fixed(
            "UTC-07:00",
            "America/Denver (or America/Phoenix, which keeps no daylight time)",
        )),
        "HST" => Some(fixed("UTC-10:00", "Pacific/Honolulu")),
        "EST5EDT" | "CST6CDT" | "MST7MDT" | "PST8PDT" => Some(format!(
            "it is a POSIX rule, not a place (a callee's state or county may keep other rules); {}",
            place("America/New_York, America/Chicago, America/Denver or America/Los_Angeles")
        )),
        "CET" | "EET" | "MET" | "WET" => Some(format!(
            "it is a rule shared by several countries, not a place; {}",
            place("Europe/Paris")
        )),
        _ => {
            let offset = upper
                .strip_prefix("ETC/GMT")
                .or_else(|| upper.strip_prefix("GMT"))?;
            let n: i32 = offset.parse().ok().filter(|n| *n != 0)?;
            Some(format!(
                "it is a fixed offset of UTC{:+} (POSIX names invert the sign) with no daylight saving; {}",
                -n,
                place("America/Bogota")
            ))
        }
    }
}

/// The embedded zone map, read on first use.
pub fn zone_map() -> &'static ZoneMap {
    static MAP: OnceLock<ZoneMap> = OnceLock::new();
    MAP.get_or_init(|| {
        let (map, problems) = ZoneMap::parse(MAP_DATA);
        for p in problems {
            tracing::error!(problem = %p, "embedded zone map");
        }
        map
    })
}

/// Phone-number prefixes (country code first) to zones; the longest prefix wins.
#[derive(Debug, Default)]
pub struct ZoneMap {
    /// A trie over digits; node 0 is the root. `next[d] == 0`: no child.
    nodes: Vec<Node>,
    lists: Vec<Vec<Tz>>,
    /// Prefixes held.
    entries: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Node {
    next: [u32; 10],
    /// 1 + the index of this prefix's zone list; 0: no entry here.
    list: u32,
}

impl ZoneMap {
    /// Reads `prefix|Zone&Zone` lines (`#` comments). Returns the map and a
    /// description of every line it had to skip (`line N: ...`).
    pub fn parse(text: &str) -> (ZoneMap, Vec<String>) {
        let mut map = ZoneMap {
            nodes: vec![Node::default()],
            ..ZoneMap::default()
        };
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_entry(line) {
                Ok((prefix, zones)) => map.insert(prefix, zones),
                Err(why) => problems.push(format!("line {}: {why}", i + 1)),
            }
        }
        (map, problems)
    }

    fn insert(&mut self, prefix: &str, zones: Vec<Tz>) {
        let mut at = 0usize;
        for d in prefix.bytes().map(|b| usize::from(b - b'0')) {
            if self.nodes[at].next[d] == 0 {
                self.nodes.push(Node::default());
                self.nodes[at].next[d] = (self.nodes.len() - 1) as u32;
            }
            at = self.nodes[at].next[d] as usize;
        }
        self.lists.push(zones);
        self.nodes[at].list = self.lists.len() as u32;
        self.entries += 1;
    }

    /// The entry of the longest prefix of `digits`: its length and zones.
    pub fn longest(&self, digits: &str) -> Option<(usize, &[Tz])> {
        let mut at = 0usize;
        let mut best = None;
        for (i, b) in digits.bytes().enumerate() {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            match self.nodes[at].next[usize::from(d)] {
                0 => break,
                next => at = next as usize,
            }
            if let Some(list) = self.nodes[at].list.checked_sub(1) {
                best = Some((i + 1, self.lists[list as usize].as_slice()));
            }
        }
        best
    }

    /// How many prefixes the map holds.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the map holds no prefix.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

fn parse_entry(line: &str) -> Result<(&str, Vec<Tz>), String> {
    let (prefix, names) = line
        .split_once('|')
        .ok_or_else(|| format!("{line:?} is not prefix|zones"))?;
    if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("prefix {prefix:?} is not 1 to 15 digits"));
    }
    let zones = names
        .split('&')
        .map(|n| {
            n.trim()
                .parse::<Tz>()
                .map_err(|_| format!("prefix {prefix}: {n:?} is not a zone chrono-tz knows"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((prefix, zones))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_embedded_map_is_read() {
        let (map, problems) = ZoneMap::parse(MAP_DATA);
        assert!(problems.is_empty(), "{problems:?}");
        let lines = MAP_DATA
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(map.len(), lines);
        assert!(map.len() > 3000);
    }

    #[test]
    fn the_longest_prefix_wins() {
        let (map, _) =
            ZoneMap::parse("1|UTC&Asia/Tokyo\n1212|America/New_York\n12125|Europe/Paris\n");
        assert_eq!(
            map.longest("12125550100"),
            Some((5, &[chrono_tz::Europe::Paris][..]))
        );
        assert_eq!(
            map.longest("12124550100"),
            Some((4, &[chrono_tz::America::New_York][..]))
        );
        assert_eq!(map.longest("1300").map(|(n, z)| (n, z.len())), Some((1, 2)));
        assert_eq!(map.longest("44"), None);
    }

    #[test]
    fn a_bad_line_is_reported_with_its_number_and_skipped() {
        let (map, problems) = ZoneMap::parse("# c\n1|Mars/Olympus\nx|UTC\n33|Europe/Paris\n");
        assert_eq!(map.len(), 1);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].starts_with("line 2:"), "{problems:?}");
        assert!(problems[1].starts_with("line 3:"), "{problems:?}");
    }

    #[test]
    fn legacy_names_are_refused_with_a_reason_and_places_are_accepted() {
        for bad in [
            "EST",
            "MST",
            "HST",
            "EST5EDT",
            "PST8PDT",
            "CET",
            "Etc/GMT+5",
            "etc/gmt-3",
        ] {
            let err = parse_contact_tz(bad).unwrap_err();
            assert!(err.contains("refused"), "{bad}: {err}");
        }
        assert!(parse_contact_tz("Etc/GMT+5").unwrap_err().contains("UTC-5"));
        for good in [
            "America/New_York",
            "US/Eastern",
            "UTC",
            "Etc/GMT",
            "Asia/Kolkata",
        ] {
            assert!(parse_contact_tz(good).is_ok(), "{good}");
        }
    }
}
