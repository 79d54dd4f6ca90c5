//! `[compliance]` typed: the quiet-hours floor and the rules of states and
//! provinces, which the calling policy applies on top of every campaign's
//! window. The shipped region rules are configuration, not legal advice.

use std::collections::BTreeMap;

use super::{ConfigError, RawCompliance, invalid};
use crate::calendar::Window;
use crate::phone::regions::RegionCode;

/// The compliance rules every call is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compliance {
    /// Callee-local hours outside which nobody is called; `None`: `off`.
    pub quiet_hours: Option<Window>,
    /// Rules of the callee's state or province, by region code.
    pub regions: BTreeMap<RegionCode, RegionRule>,
}

/// What one state or province requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionRule {
    /// Callee-local calling hours.
    pub window: Option<Window>,
    /// Calls placed to one number in any 24 hours; `None`: no limit of its own.
    pub max_calls_per_day: Option<u32>,
}

impl Default for Compliance {
    /// The shipped defaults: quiet hours 08:00-21:00, Florida and Oklahoma.
    fn default() -> Self {
        // The raw defaults are constants that parse; an error cannot happen.
        Self::from_raw(&RawCompliance::default()).unwrap_or(Self {
            quiet_hours: None,
            regions: BTreeMap::new(),
        })
    }
}

impl Compliance {
    /// No floor and no region rules (tests of the campaign window alone).
    pub fn none() -> Self {
        Self {
            quiet_hours: None,
            regions: BTreeMap::new(),
        }
    }

    /// Validates `[compliance]`; errors name the key.
    pub fn from_raw(raw: &RawCompliance) -> Result<Self, ConfigError> {
        let quiet = raw.quiet_hours.trim();
        let quiet_hours = if quiet.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(Window::parse(quiet).map_err(|m| {
                invalid(
                    "compliance.quiet_hours",
                    format!("{m}; or `off` to disable"),
                )
            })?)
        };
        let mut regions = BTreeMap::new();
        for (name, rule) in &raw.regions {
            let key = format!("compliance.regions.\"{name}\"");
            let code: RegionCode = name.parse().map_err(|m: String| invalid(&key, m))?;
            let window = rule
                .window
                .as_deref()
                .map(Window::parse)
                .transpose()
                .map_err(|m| invalid(&format!("{key}.window"), m))?;
            let rule = RegionRule {
                window,
                max_calls_per_day: rule.max_calls_per_day.filter(|n| *n > 0),
            };
            if regions.insert(code.clone(), rule).is_some() {
                return Err(invalid(&key, format!("{code} is configured twice")));
            }
        }
        Ok(Self {
            quiet_hours,
            regions,
        })
    }
}
