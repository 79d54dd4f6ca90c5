//! Campaign settings given with an import (command-line flags or an inbox
//! sidecar), parsed at the edge and laid over the configured defaults.
//!
//! They only shape a campaign the import creates. Appending to an existing
//! campaign keeps its stored settings (a running campaign does not change
//! under an operator's feet); each setting that differs becomes a warning.

use chrono_tz::Tz;
use phonenumber::country::Id;

use crate::calendar::{Schedule, Window, parse_tz};
use crate::config::{CampaignDefaults, parse_region};
use crate::store::{Campaign, NewCampaign};

/// The setting names, as sidecar keys (flags use hyphens; `retry_delay_secs`
/// is `--retry-delay`).
pub const SETTING_KEYS: [&str; 11] = [
    "agent_id",
    "from_number_id",
    "schedule",
    "timezone",
    "window",
    "max_attempts",
    "retry_delay_secs",
    "region",
    "caller_pool",
    "max_cost",
    "cost_estimate",
];

/// Settings that override the campaign defaults, each already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignOverrides {
    /// The agent that places the calls.
    pub agent_id: Option<i64>,
    /// The caller id number.
    pub from_number_id: Option<i64>,
    /// Sweep schedule.
    pub schedule: Option<Schedule>,
    /// The campaign's zone.
    pub timezone: Option<Tz>,
    /// Calling hours.
    pub window: Option<Window>,
    /// Attempts per contact.
    pub max_attempts: Option<u32>,
    /// Wait before a redial.
    pub retry_delay_secs: Option<u64>,
    /// Region for numbers without a country code.
    pub region: Option<Id>,
    /// The caller pool the calls go out from.
    pub caller_pool: Option<String>,
    /// The spend cap.
    pub max_cost: Option<f64>,
    /// The cost assumed per call awaiting its outcome.
    pub cost_estimate: Option<f64>,
}

/// A cost: a finite number, 0 or more (`12`, `12.50`).
pub fn parse_cost(v: &str) -> Result<f64, String> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && *c >= 0.0)
        .ok_or_else(|| format!("{v:?} is not an amount (a number, 0 or more, like 12.50)"))
}

impl CampaignOverrides {
    /// Sets `key` (one of [`SETTING_KEYS`]) from its text; the error says
    /// what is wrong with the value (the caller names the flag or key).
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let v = value.trim();
        let positive = |what: &str| {
            v.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{v:?} is not a positive whole number ({what})"))
        };
        match key {
            "agent_id" => self.agent_id = Some(positive("an agent id")?),
            "from_number_id" => self.from_number_id = Some(positive("a phone number id")?),
            "schedule" => self.schedule = Some(Schedule::parse(v)?),
            "timezone" => self.timezone = Some(parse_tz(v)?),
            "window" => self.window = Some(Window::parse(v)?),
            "max_attempts" => {
                let n = positive("at least 1")?;
                self.max_attempts =
                    Some(u32::try_from(n).map_err(|_| format!("{v:?} is too large"))?);
            }
            "retry_delay_secs" => {
                self.retry_delay_secs = Some(
                    v.parse::<u64>()
                        .map_err(|_| format!("{v:?} is not a whole number of seconds"))?,
                );
            }
            "region" => self.region = Some(parse_region(v)?),
            "caller_pool" => {
                if v.is_empty() {
                    return Err("the pool name must not be empty".into());
                }
                self.caller_pool = Some(v.to_string());
            }
            "max_cost" => self.max_cost = Some(parse_cost(v)?),
            "cost_estimate" => self.cost_estimate = Some(parse_cost(v)?),
            other => {
                return Err(format!(
                    "unknown setting {other:?} (known: campaign, {})",
                    SETTING_KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The settings of a new campaign `name`: the defaults with these overrides.
    pub fn new_campaign(&self, name: &str, defaults: &CampaignDefaults) -> NewCampaign {
        let mut c = NewCampaign::from_defaults(name, defaults);
        c.agent_id = self.agent_id.or(c.agent_id);
        c.from_number_id = self.from_number_id.or(c.from_number_id);
        if let Some(s) = &self.schedule {
            c.schedule = s.clone();
        }
        c.timezone = self.timezone.unwrap_or(c.timezone);
        c.window = self.window.unwrap_or(c.window);
        c.max_attempts = self.max_attempts.unwrap_or(c.max_attempts);
        c.retry_delay_secs = self.retry_delay_secs.unwrap_or(c.retry_delay_secs);
        c.region = self.region.or(c.region);
        c.caller_pool = self.caller_pool.clone().or(c.caller_pool);
        c.max_cost = self.max_cost.or(c.max_cost);
        c.cost_estimate = self.cost_estimate.or(c.cost_estimate);
        c
    }

    /// One warning per override that differs from existing campaign `c`,
    /// whose settings are kept.
    pub fn differences(&self, c: &Campaign) -> Vec<String> {
        let mut out = Vec::new();
        let mut diff = |key: &str, given: Option<String>, stored: String| {
            if let Some(g) = given.filter(|g| *g != stored) {
                out.push(format!(
                    "campaign {:?} already exists, so its settings are kept: {key} {g} is ignored (the campaign has {stored})",
                    c.name
                ));
            }
        };
        let opt = |v: Option<i64>| v.map_or("none".to_string(), |v| v.to_string());
        diff(
            "agent_id",
            self.agent_id.map(|v| v.to_string()),
            opt(c.agent_id),
        );
        diff(
            "from_number_id",
            self.from_number_id.map(|v| v.to_string()),
            opt(c.from_number_id),
        );
        diff(
            "schedule",
            self.schedule.as_ref().map(|s| s.to_string()),
            c.schedule.clone(),
        );
        diff(
            "timezone",
            self.timezone.map(|t| t.name().to_string()),
            c.timezone.clone(),
        );
        diff(
            "window",
            self.window.map(|w| w.to_string()),
            format!("{}-{}", c.window_start, c.window_end),
        );
        diff(
            "max_attempts",
            self.max_attempts.map(|v| v.to_string()),
            c.max_attempts.to_string(),
        );
        diff(
            "retry_delay_secs",
            self.retry_delay_secs.map(|v| v.to_string()),
            c.retry_delay_secs.to_string(),
        );
        diff(
            "region",
            self.region.map(|r| format!("{r:?}")),
            c.region.clone().unwrap_or_else(|| "none".into()),
        );
        diff(
            "caller_pool",
            self.caller_pool.clone(),
            c.caller_pool.clone().unwrap_or_else(|| "none".into()),
        );
        let cost = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("{v:.2}"));
        diff(
            "max_cost",
            self.max_cost.map(|v| format!("{v:.2}")),
            cost(c.max_cost),
        );
        diff(
            "cost_estimate",
            self.cost_estimate.map(|v| format!("{v:.2}")),
            cost(c.cost_estimate),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_validated_with_a_reason() {
        let mut o = CampaignOverrides::default();
        assert!(o.set("window", "9-5").unwrap_err().contains("HH:MM-HH:MM"));
        assert!(o.set("max_attempts", "0").is_err());
        assert!(o.set("agent_id", "x").is_err());
        assert!(
            o.set("colour", "red")
                .unwrap_err()
                .contains("unknown setting")
        );
        o.set("region", "gb").unwrap();
        o.set("retry_delay_secs", "60").unwrap();
        assert_eq!((o.region, o.retry_delay_secs), (Some(Id::GB), Some(60)));
    }
}
