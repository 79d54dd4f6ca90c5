//! Whether a number is tied to a place, as libphonenumber decides before it
//! looks a number's time zones up: fixed lines are, and mobiles only in the
//! countries whose mobile prefixes are geographic (Argentina, Brazil, China,
//! Indonesia, Mexico). An Australian or Russian mobile carries no place in its
//! digits, so only its country's zones are known.
//!
//! The metadata patterns are compiled once per country code and matched in
//! full, as libphonenumber does (`getNumberTypeHelper`), with the region
//! chosen as `getRegionCodeForNumberFromRegionList` chooses it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;

/// What libphonenumber's number type says about a number's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A fixed line (or a mobile in a country with geographic mobile
    /// prefixes): the longest prefix of the zone map locates it.
    Geographic,
    /// A valid number of another kind (mobile, toll free, VoIP...): only the
    /// country's zones apply.
    Countrywide,
    /// No kind of number of its country matches it.
    Unknown,
}

/// Countries whose mobile numbers are geographic (libphonenumber's
/// `GEO_MOBILE_COUNTRIES`).
const GEO_MOBILE_CODES: [u16; 5] = [52, 54, 55, 62, 86];

struct Desc {
    lengths: Vec<u16>,
    re: Regex,
}

impl Desc {
    fn new(d: &Descriptor) -> Option<Self> {
        let re = Regex::new(&format!("^(?x:{}\n)$", d.national_number().as_str())).ok()?;
        Some(Self {
            lengths: d.possible_length().to_vec(),
            re,
        })
    }

    fn matches(&self, n: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(n.len() as u16))) && self.re.is_match(n)
    }
}

/// `Some(None)` for an absent descriptor, `None` for one whose pattern fails to compile.
fn optional(d: Option<&Descriptor>) -> Option<Option<Desc>> {
    match d {
        Some(d) => Desc::new(d).map(Some),
        None => Some(None),
    }
}

struct Region {
    leading_digits: Option<Regex>,
    general: Desc,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN and
    /// voicemail: matched first, so a number of these kinds is never geographic.
    special: Vec<Desc>,
    fixed: Option<Desc>,
    mobile: Option<Desc>,
}

impl Region {
    fn new(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        let special = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ];
        let leading_digits = match meta.leading_digits() {
            Some(re) => Some(Regex::new(&format!("^(?:{})", re.as_str())).ok()?),
            None => None,
        };
        Some(Self {
            leading_digits,
            general: Desc::new(d.general())?,
            special: special
                .into_iter()
                .flatten()
                .map(Desc::new)
                .collect::<Option<_>>()?,
            fixed: optional(d.fixed_line())?,
            mobile: optional(d.mobile())?,
        })
    }

    /// libphonenumber's number type, folded into what it says about place.
    /// Its order (the special kinds before fixed line and mobile) only
    /// matters for a number that would otherwise be geographic, so the
    /// special patterns are tried last, and only when they can change the answer.
    fn place(&self, n: &str, code: u16) -> Place {
        let hit = |d: &Option<Desc>| d.as_ref().is_some_and(|d| d.matches(n));
        if !self.general.matches(n) {
            return Place::Unknown;
        }
        let special = || self.special.iter().any(|d| d.matches(n));
        let geographic =
            hit(&self.fixed) || (GEO_MOBILE_CODES.contains(&code) && hit(&self.mobile));
        if geographic {
            return if special() {
                Place::Countrywide
            } else {
                Place::Geographic
            };
        }
        if hit(&self.mobile) || special() {
            Place::Countrywide
        } else {
            Place::Unknown
        }
    }
}

/// The compiled regions of each country code, built on first use (`None`:
/// a code without metadata, or a pattern that does not compile).
type Cache = Mutex<HashMap<u16, Option<Arc<Vec<Region>>>>>;

fn regions(code: u16) -> Option<Arc<Vec<Region>>> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(code)
        .or_insert_with(|| {
            // In the database's order of regions (the main country first), as
            // libphonenumber tries them.
            let ids = DATABASE.region(&code)?;
            let metas = if ids.len() == 1 && ids[0] == "001" {
                DATABASE.by_code(&code)?
            } else {
                ids.iter()
                    .map(|id| DATABASE.by_id(*id))
                    .collect::<Option<Vec<_>>>()?
            };
            metas
                .into_iter()
                .map(Region::new)
                .collect::<Option<Vec<_>>>()
                .map(Arc::new)
        })
        .clone()
}

/// The country calling code of an E.164 number and its national number.
pub fn split_code(e164: &str) -> Option<(u16, &str)> {
    let digits = e164.strip_prefix('+')?;
    // Country codes are prefix-free: at most one of 1 to 3 digits is assigned.
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        DATABASE.by_code(&code)?;
        Some((code, &digits[len..]))
    })
}

/// Whether the E.164 number `e164` is tied to a place, by libphonenumber's rules.
pub fn place(e164: &str) -> Place {
    let Some((code, national)) = split_code(e164) else {
        return Place::Unknown;
    };
    let Some(regions) = regions(code) else {
        return Place::Unknown;
    };
    if let [only] = regions.as_slice() {
        return only.place(national, code);
    }
    // The region whose leading digits start the number, or (without leading
    // digits) whose kinds of number accept it.
    for r in regions.iter() {
        match &r.leading_digits {
            Some(ld) if ld.is_match(national) => return r.place(national, code),
            Some(_) => {}
            None => match r.place(national, code) {
                Place::Unknown => {}
                known => return known,
            },
        }
    }
    Place::Unknown
}
