//! The time zone a phone number implies.

use chrono_tz::Tz;

use super::PhoneNumber;

/// The zone a number determines: its country's, when the country has a single
/// zone, or its North American area code's. `None` when it is ambiguous.
pub fn zone_for_number(_number: &PhoneNumber) -> Option<Tz> {
    None
}
