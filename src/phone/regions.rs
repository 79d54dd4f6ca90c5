//! The jurisdiction a North American number's area code lies in, for rules
//! that states and provinces set on calling hours and call counts:
//! libphonenumber's English geocoding data (`data/nanp-regions.txt`,
//! embedded), area code to ISO 3166-2 code (`US-FL`, `CA-ON`). A call to an
//! area code is presumed to reach its state: that is what Oklahoma's law says,
//! and the only thing a dialer can know before the call.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use crate::phone::geo::split_code;

/// libphonenumber's geocoder names for NANP area codes (Apache-2.0; see NOTICE).
const NANP_DATA: &str = include_str!("../../data/nanp-regions.txt");

/// Canadian provinces and territories; every other code is a US state or territory.
const CANADIAN: [&str; 13] = [
    "AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT",
];

/// An ISO 3166-2 subdivision code such as `US-FL` or `CA-QC`, upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct RegionCode(String);

impl RegionCode {
    /// The code's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RegionCode {
    type Err = String;

    /// Parses `US-FL` (any case): two letters, `-`, one to three letters or digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let ok = upper.split_once('-').is_some_and(|(country, sub)| {
            country.len() == 2
                && country.bytes().all(|b| b.is_ascii_uppercase())
                && (1..=3).contains(&sub.len())
                && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if ok {
            Ok(Self(upper))
        } else {
            Err(format!(
                "{s:?} is not a region code like US-FL or CA-ON (country, '-', state or province)"
            ))
        }
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The regions an area code's numbers may be in (most have one; 902 spans
/// Nova Scotia and Prince Edward Island, 867 the three territories), and the
/// geocoder's name for it.
#[derive(Debug, Clone, Default)]
pub struct AreaCode {
    /// The regions, empty for a Caribbean country or a code without one.
    pub regions: Vec<RegionCode>,
    /// The geocoder's English name (`Florida`, `Jamaica`), possibly empty.
    pub name: String,
}

/// Every area code's entry, read on first use; index = area code.
fn table() -> &'static [Option<AreaCode>] {
    static TABLE: OnceLock<Vec<Option<AreaCode>>> = OnceLock::new();
    TABLE.get_or_init(|| parse(NANP_DATA).0)
}

/// Reads `code|ST[/ST...]|name` lines. Returns the table (index = area
/// code) and the lines it had to skip, with their numbers.
pub fn parse(text: &str) -> (Vec<Option<AreaCode>>, Vec<String>) {
    let mut table = vec![None; 1000];
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, '|');
        let (code, states, name) = (fields.next(), fields.next(), fields.next());
        let code = code.and_then(|c| c.trim().parse::<usize>().ok());
        let (Some(code), Some(states)) = (code.filter(|c| (200..1000).contains(c)), states) else {
            problems.push(format!("line {}: {line:?} is not code|states|name", i + 1));
            continue;
        };
        let regions = states
            .split('/')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|st| {
                let country = if CANADIAN.contains(&st) { "CA" } else { "US" };
                format!("{country}-{st}").parse::<RegionCode>()
            })
            .collect::<Result<Vec<_>, _>>();
        match regions {
            Ok(regions) => {
                table[code] = Some(AreaCode {
                    regions,
                    name: name.unwrap_or("").trim().to_string(),
                })
            }
            Err(e) => problems.push(format!("line {}: {e}", i + 1)),
        }
    }
    (table, problems)
}

/// The area code entry of a +1 number, if the data has one.
pub fn area_code_of(e164: &str) -> Option<&'static AreaCode> {
    let (1, national) = split_code(e164)? else {
        return None;
    };
    if national.len() != 10 {
        return None;
    }
    let code: usize = national[..3].parse().ok()?;
    table().get(code)?.as_ref()
}

/// The states or provinces a number's area code lies in; empty outside
/// the US and Canada or for a code the data does not place.
pub fn region_of(e164: &str) -> &'static [RegionCode] {
    area_code_of(e164).map_or(&[], |a| a.regions.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_the_embedded_area_code_table_is_read() {
        let (table, problems) = parse(NANP_DATA);
        assert!(problems.is_empty(), "{problems:?}");
        let lines = NANP_DATA.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(table.iter().flatten().count(), lines);
    }

    #[test]
    fn area_codes_map_to_their_state_or_province() {
        let region = |n: &str| {
            region_of(n)
                .iter()
                .map(|r| r.as_str().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(region("+13055550123"), ["US-FL"]);
        assert_eq!(region("+14055550123"), ["US-OK"]);
        assert_eq!(region("+14165550123"), ["CA-ON"]);
        assert_eq!(region("+19025550123"), ["CA-NS", "CA-PE"]);
        assert!(region("+18765550123").is_empty(), "Jamaica is no state");
        assert!(region("+442079460958").is_empty());
    }

    #[test]
    fn region_codes_parse_in_any_case_and_refuse_nonsense() {
        assert_eq!("us-fl".parse::<RegionCode>().unwrap().as_str(), "US-FL");
        for bad in ["FL", "USA-FL", "US-", "US_FL", "US-FLOR"] {
            assert!(bad.parse::<RegionCode>().is_err(), "{bad}");
        }
    }
}
