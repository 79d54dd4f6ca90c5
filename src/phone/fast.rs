//! A fast path for numbers already written in E.164 (`+447400123456`), the
//! common case in machine-made files.
//!
//! `phonenumber` looks every pattern up in a global, mutex-guarded LRU cache
//! keyed by the pattern's text, hashing patterns of up to a few kilobytes on
//! each of the dozen matches a validation makes; that costs ~20 µs a number,
//! far more than inserting the row. Here the same metadata patterns are
//! compiled once per country code and matched with the same semantics as
//! `phonenumber::is_valid` (possible lengths, then a leftmost match starting
//! at 0; the region chosen as its `source_for` does), except that a number
//! is valid only when a pattern matches the *whole* national number, as
//! libphonenumber requires: `phonenumber` 0.3.10 accepts a match of a prefix,
//! so `+3161234567800` (two digits too many) passed, and slipped past a DNC
//! entry for `+31612345678`. [`is_valid_number`] is the one validity test
//! both paths use. The fast path only ever
//! says "valid": a number it does not accept — any other form, a national
//! prefix the parser might strip, an invalid number — goes through
//! [`PhoneNumber::parse`], so results and reasons are exactly the slow path's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::{Regex, RegexBuilder};

use crate::phone::{PhoneError, PhoneNumber};

/// Parses `raw` to E.164 as [`PhoneNumber::parse`] does, faster when `raw`
/// is already `+` and digits.
pub fn parse_phone(raw: &str, region: Option<Id>) -> Result<String, PhoneError> {
    match fast_e164(raw, region) {
        Some(e164) => Ok(e164),
        None => PhoneNumber::parse(raw, region).map(|p| p.as_str().to_string()),
    }
}

/// [`parse_phone`], typed: the number a contact is stored and dialed with.
pub fn parse_number(raw: &str, region: Option<Id>) -> Result<PhoneNumber, PhoneError> {
    parse_phone(raw, region).map(PhoneNumber::from_e164_unchecked)
}

struct Desc {
    lengths: Vec<u16>,
    re: Regex,
}

impl Desc {
    fn is_match(&self, n: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(n.len() as u16))) && self.re.is_match(n)
    }
}

struct Region {
    id: String,
    general: Desc,
    kinds: Vec<Desc>,
    leading_digits: Option<Regex>,
    national_prefix: Option<String>,
    prefix_for_parsing: Option<Regex>,
}

impl Region {
    /// `phonenumber::validator::number_type(..) != Unknown`.
    fn valid(&self, n: &str) -> bool {
        self.general.is_match(n) && self.kinds.iter().any(|d| d.is_match(n))
    }

    /// Whether the parser could strip a national prefix (or carrier code) from `n`.
    fn may_strip(&self, n: &str) -> bool {
        self.national_prefix
            .as_deref()
            .is_some_and(|p| n.starts_with(p))
            || self
                .prefix_for_parsing
                .as_ref()
                .is_some_and(|re| re.is_match(n))
    }
}

struct CodeInfo {
    /// The regions of the code, in the database's order; for a
    /// non-geographic code ("001"), its metadata in `by_code` order.
    regions: Vec<Region>,
    /// One region (or a non-geographic code): it alone decides.
    single: bool,
}

/// A metadata pattern that must match a prefix (leading digits, national
/// prefixes): anchored at the start only, as libphonenumber's `lookingAt`.
fn regex(src: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{src}\n)"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

/// A number pattern, which must match the whole national number, as
/// libphonenumber's `matchNationalNumber` (`matches`, not `lookingAt`).
fn full_regex(src: &str) -> Option<Regex> {
    RegexBuilder::new(&format!("^(?:{src}\n)$"))
        .ignore_whitespace(true)
        .build()
        .ok()
}

fn desc(d: &Descriptor) -> Option<Desc> {
    Some(Desc {
        lengths: d.possible_length().to_vec(),
        re: full_regex(d.national_number().as_str())?,
    })
}

fn region(meta: &Metadata) -> Option<Region> {
    let d = meta.descriptors();
    let kinds = [
        d.premium_rate(),
        d.toll_free(),
        d.shared_cost(),
        d.voip(),
        d.personal_number(),
        d.pager(),
        d.uan(),
        d.voicemail(),
        d.fixed_line(),
        d.mobile(),
    ];
    Some(Region {
        id: meta.id().to_string(),
        general: desc(d.general())?,
        kinds: kinds
            .into_iter()
            .flatten()
            .map(desc)
            .collect::<Option<Vec<_>>>()?,
        leading_digits: match meta.leading_digits() {
            Some(re) => Some(regex(re.as_str())?),
            None => None,
        },
        national_prefix: meta.national_prefix().map(str::to_string),
        prefix_for_parsing: match meta.national_prefix_for_parsing() {
            Some(re) => Some(regex(re.as_str())?),
            None => None,
        },
    })
}

fn build(code: u16) -> Option<CodeInfo> {
    let ids = DATABASE.region(&code)?;
    if ids.len() == 1 && ids[0] == "001" {
        let metas = DATABASE.by_code(&code)?;
        let regions = metas.into_iter().map(region).collect::<Option<Vec<_>>>()?;
        return Some(CodeInfo {
            regions,
            single: true,
        });
    }
    let mut regions = Vec::with_capacity(ids.len());
    for id in &ids {
        // The parser turns the id into a country::Id; one it cannot is never valid.
        id.parse::<Id>().ok()?;
        regions.push(region(DATABASE.by_id(*id)?)?);
    }
    Some(CodeInfo {
        single: regions.len() == 1,
        regions,
    })
}

fn code_info(code: u16) -> Option<Arc<CodeInfo>> {
    static CACHE: OnceLock<Mutex<HashMap<u16, Option<Arc<CodeInfo>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(code)
        .or_insert_with(|| build(code).map(Arc::new))
        .clone()
}

/// The country code's metadata and the national number of `text` when it is
/// `+` and 7 to 15 digits with an assigned country code.
fn split(text: &str) -> Option<(Arc<CodeInfo>, &str)> {
    if !super::is_e164_form(text) {
        return None;
    }
    let digits = &text[1..];
    // Country codes are prefix-free: at most one of 1 to 3 digits is assigned.
    let (len, info) = (1..=3).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        DATABASE.region(&code)?;
        Some((len, code_info(code)?))
    })?;
    Some((info, &digits[len..]))
}

/// The region whose rules apply to national number `n`, as
/// `phonenumber::validator::source_for` chooses it: the only one, else the
/// first whose leading digits start `n`, or (without leading digits) whose
/// patterns accept it.
fn source<'a>(info: &'a CodeInfo, n: &str) -> Option<&'a Region> {
    if info.single {
        return info.regions.first();
    }
    info.regions.iter().find(|r| match &r.leading_digits {
        Some(ld) => ld.is_match(n),
        None => r.valid(n),
    })
}

/// The region of an E.164 number, as `phonenumber::parse(None, e164)`'s
/// `country().id()` gives it, without parsing: `Some(answer)` when `e164` is
/// `+` and digits read the same by both, `None` when only the parser can tell.
pub fn fast_region(e164: &str) -> Option<Option<Id>> {
    let (info, national) = split(e164)?;
    // The parser keeps the national number as an integer (leading zeros are
    // a flag of their own) and may strip a national prefix: leave those to it.
    if national.starts_with('0') || info.regions.iter().any(|r| r.may_strip(national)) {
        return None;
    }
    Some(source(&info, national).and_then(|r| r.id.parse().ok()))
}

/// Whether national number `national` (its leading zeros kept, as in
/// `+39 06...`) is a valid number of country code `code`: some kind of number
/// of the region whose rules apply matches it whole.
pub fn is_valid_number(code: u16, national: &str) -> bool {
    code_info(code).is_some_and(|info| is_valid(&info, national))
}

/// libphonenumber's `isValidNumber` for country code `info` and national number `n`.
fn is_valid(info: &CodeInfo, n: &str) -> bool {
    match source(info, n) {
        // `source` chose it because its patterns accept `n`.
        Some(r) if !info.single && r.leading_digits.is_none() => true,
        Some(r) => r.valid(n),
        None => false,
    }
}

/// The E.164 form of `raw` when it is `+` and 7 to 15 digits (after the
/// apostrophe or `=` a spreadsheet may put first) and certainly valid.
fn fast_e164(raw: &str, region: Option<Id>) -> Option<String> {
    let text = raw.trim().trim_start_matches(['\'', '=']).trim();
    let (info, national) = split(text)?;
    if info.regions.iter().any(|r| r.may_strip(national)) {
        return None;
    }
    if let Some(id) = region {
        let meta = DATABASE.by_id(id.as_ref())?;
        let home = code_info(meta.country_code())?;
        let r = home.regions.iter().find(|r| r.id == meta.id())?;
        if r.may_strip(national) {
            return None;
        }
    }
    is_valid(&info, national).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example national numbers of every kind of number of `meta`.
    fn examples(meta: &Metadata) -> impl Iterator<Item = &str> {
        let d = meta.descriptors();
        [
            Some(d.general()),
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .filter_map(|d| d.example())
    }

    /// Every example number of every region, and variants of it, gives the
    /// slow path's answer whenever the fast path answers at all.
    #[test]
    fn the_fast_path_agrees_with_the_parser_on_every_metadata_example() {
        let mut fast_hits = 0;
        let mut checked = 0;
        for meta in DATABASE.iter() {
            for ex in examples(meta) {
                let cc = meta.country_code();
                let mut variants = vec![ex.to_string(), format!("{ex}0"), format!("{ex}9")];
                if ex.len() > 1 {
                    variants.push(ex[..ex.len() - 1].to_string());
                    let last = (ex.as_bytes()[ex.len() - 1] - b'0' + 1) % 10;
                    variants.push(format!("{}{last}", &ex[..ex.len() - 1]));
                }
                variants.push(format!("0{ex}"));
                for v in variants {
                    let raw = format!("+{cc}{v}");
                    for region in [None, Some(Id::US), Some(Id::GB), Some(Id::IT)] {
                        checked += 1;
                        if let Some(fast) = fast_e164(&raw, region) {
                            fast_hits += 1;
                            let slow =
                                PhoneNumber::parse(&raw, region).map(|p| p.as_str().to_string());
                            assert_eq!(Ok(fast), slow, "{raw} region {region:?}");
                        }
                    }
                }
            }
        }
        assert!(
            fast_hits > checked / 10,
            "the fast path must serve most E.164 numbers ({fast_hits}/{checked})"
        );
    }

    /// The region the fast path gives is the parser's, for every valid
    /// metadata example of every region whenever it answers. (For a number
    /// no pattern matches whole, the parser still names the first region
    /// one matches a prefix of; libphonenumber and the fast path name none.
    /// Only valid numbers are stored.)
    #[test]
    fn the_fast_region_agrees_with_the_parser_on_every_metadata_example() {
        let (mut hits, mut checked) = (0, 0);
        for meta in DATABASE.iter() {
            for ex in examples(meta) {
                for v in [ex.to_string(), format!("{ex}0"), format!("0{ex}")] {
                    let raw = format!("+{}{v}", meta.country_code());
                    if PhoneNumber::parse(&raw, None).is_err() {
                        continue;
                    }
                    checked += 1;
                    if let Some(fast) = fast_region(&raw) {
                        hits += 1;
                        let slow = phonenumber::parse(None, &raw)
                            .ok()
                            .and_then(|p| p.country().id());
                        assert_eq!(fast, slow, "{raw}");
                    }
                }
            }
        }
        assert!(
            hits > checked / 2,
            "the fast path must serve most numbers ({hits}/{checked})"
        );
    }

    #[test]
    fn other_forms_and_invalid_numbers_take_the_slow_path_with_its_reasons() {
        assert_eq!(fast_e164("+44 7400 123456", None), None);
        assert_eq!(fast_e164("+1 123", None), None);
        assert_eq!(
            fast_e164("=+14155552671", None).as_deref(),
            Some("+14155552671")
        );
        assert_eq!(
            parse_phone("(415) 555-2671", Some(Id::US)).as_deref(),
            Ok("+14155552671")
        );
        assert!(matches!(
            parse_phone("+11234567890", None),
            Err(PhoneError::Invalid(_) | PhoneError::Unparseable(_))
        ));
    }
}
