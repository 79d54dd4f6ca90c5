//! The simulator's command-line options (interface.md, "Simulator") and the
//! small value types they parse into.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::domain::Outcome;
use crate::provider::{CallStatus, normalise_status};

/// The simulator's default API key, accepted by the official SDK.
pub const DEFAULT_API_KEY: &str = "sim-key-local";

/// The default key of earlier versions, too short for the SDK; accepted as
/// long as the key is the default, so existing scripts keep working.
pub const LEGACY_API_KEY: &str = "sim-key";

/// Options of `dialerd simulate` (everything but `--listen`).
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct SimOptions {
    /// The key accepted as `Authorization: Bearer KEY`; others get 401. The
    /// default is long enough for the official SDK (8 characters at least);
    /// while it is in use, the old default `sim-key` is accepted too.
    #[arg(long, default_value = DEFAULT_API_KEY)]
    pub api_key: String,
    /// Seed of the random draws (faults, outcomes, call lengths): the same seed
    /// and the same sequence of requests give the same results.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Relative weights of the final outcomes, e.g. `completed=60,busy=40`.
    #[arg(
        long,
        default_value = "completed=60,no_answer=20,busy=10,failed=5,voicemail=5"
    )]
    pub outcomes: OutcomeWeights,
    /// Seconds from dispatch to a final call log, drawn uniformly, `MIN-MAX` (`0.1-0.3` ok).
    #[arg(long, default_value = "2-5")]
    pub call_secs: SecsRange,
    /// Extra delay before answering any API request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Dispatch requests allowed per second; past it, 429 with `Retry-After: 1`. 0 = no limit.
    #[arg(long, default_value_t = 0)]
    pub rate_limit: u32,
    /// Probability of a 429 with `Retry-After: 1` (call not placed).
    #[arg(long = "fault-429", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_429: f64,
    /// Probability of a 500 before the call is placed.
    #[arg(long = "fault-500", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_500: f64,
    /// Probability of a 500 after the call was placed.
    #[arg(long = "fault-500-placed", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_500_placed: f64,
    /// Probability that the call is placed and the answer withheld for `--timeout-hold-secs`.
    #[arg(long = "fault-timeout", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_timeout: f64,
    /// Probability that the connection is closed without an answer (call not placed).
    #[arg(long = "fault-drop", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_drop: f64,
    /// Probability that the call is placed and the answer is a 200 whose body is not JSON.
    #[arg(long = "fault-garbage", default_value_t = 0.0, value_parser = parse_probability)]
    pub fault_garbage: f64,
    /// How long `--fault-timeout` withholds the answer (or until shutdown), in seconds.
    #[arg(long, default_value_t = 60.0, value_parser = parse_secs)]
    pub timeout_hold_secs: f64,
    /// Append one JSON line per dispatch request received to this file.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Calls (and journal entries) kept in memory; past it the oldest are
    /// forgotten, their logs no longer listed and `GET` of their id a 404.
    /// Bounds a long-running simulator's memory (the file journal keeps all).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_calls: u64,
    /// Write `time_of_call` in UTC+M (minutes, −720 … 840), as an API
    /// writing an account's local time would.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true,
          value_parser = clap::value_parser!(i64).range(-720..=840))]
    pub log_time_offset_min: i64,
    /// Serve at most N logs per page, whatever `pagesize` asks.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_page_size: Option<u32>,
    /// Probability that a placed call's answer carries an earlier call's
    /// `requestId` (its log keeps its own).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    pub repeat_request_ids: f64,
    /// List a call's log only once the call has ended.
    #[arg(long)]
    pub log_after_end: bool,
    /// Probability that a completed call's callee asks not to be called
    /// again: its log has `extracted_variables.opt_out = true` and a
    /// transcript line saying so.
    #[arg(long = "opt-out", default_value_t = 0.0, value_parser = parse_probability)]
    pub opt_out: f64,
    /// How `time_of_call` is written: `mdy` (`MM/DD/YYYY HH:MM:SS`, as
    /// documented), `dmy` (`DD/MM/YYYY HH:MM:SS`) or `iso` (RFC 3339 with the offset).
    #[arg(long, default_value = "mdy")]
    pub time_format: TimeFormat,
}

/// How the simulator writes `time_of_call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TimeFormat {
    /// `MM/DD/YYYY HH:MM:SS`.
    Mdy,
    /// `DD/MM/YYYY HH:MM:SS`.
    Dmy,
    /// RFC 3339 with the offset.
    Iso,
}

/// The zone and format `time_of_call` is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeStyle {
    /// Minutes east of UTC.
    pub offset_min: i64,
    pub format: TimeFormat,
}

impl TimeStyle {
    /// The style the options ask for.
    pub fn of(o: &SimOptions) -> Self {
        Self {
            offset_min: o.log_time_offset_min,
            format: o.time_format,
        }
    }

    /// `t` written in this style.
    pub fn write(&self, t: chrono::DateTime<chrono::Utc>) -> String {
        let secs = i32::try_from(self.offset_min * 60).unwrap_or(0);
        let zone = chrono::FixedOffset::east_opt(secs)
            .unwrap_or_else(|| chrono::Offset::fix(&chrono::Utc));
        let local = t.with_timezone(&zone);
        match self.format {
            TimeFormat::Mdy => local.format("%m/%d/%Y %H:%M:%S").to_string(),
            TimeFormat::Dmy => local.format("%d/%m/%Y %H:%M:%S").to_string(),
            TimeFormat::Iso => local.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl SimOptions {
    /// Whether `key` is accepted: the configured one, and the legacy
    /// default while the configured key is the default.
    pub fn accepts_key(&self, key: &str) -> bool {
        key == self.api_key || (self.api_key == DEFAULT_API_KEY && key == LEGACY_API_KEY)
    }
}

impl Default for SimOptions {
    /// The command-line defaults.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            opts: SimOptions,
        }
        <Defaults as clap::Parser>::try_parse_from(["simulate"])
            .expect("the default values of SimOptions parse")
            .opts
    }
}

/// Relative weights of the final outcomes a placed call can have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeWeights(Vec<(Outcome, u32)>);

impl OutcomeWeights {
    /// The outcomes with a positive weight, in the order given.
    pub fn weights(&self) -> &[(Outcome, u32)] {
        &self.0
    }

    /// The outcome at `point` of the cumulative weights, `point` in `[0, 1)`.
    pub fn pick(&self, point: f64) -> Outcome {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        // point < 1, so target < total and some outcome is always reached.
        let target = (point.clamp(0.0, 1.0) * total as f64) as u64;
        let mut acc = 0u64;
        for (outcome, w) in &self.0 {
            acc += u64::from(*w);
            if target < acc {
                return *outcome;
            }
        }
        self.0.last().map(|(o, _)| *o).unwrap_or(Outcome::Completed)
    }
}

impl FromStr for OutcomeWeights {
    type Err = String;

    /// Parses `completed=60,no_answer=20,...`; names as the API spells them
    /// (`no-answer`, `no_answer`, `canceled`, ...).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut out: Vec<(Outcome, u32)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not NAME=WEIGHT"))?;
            let outcome = match normalise_status(Some(name), false) {
                CallStatus::Final(o) => o,
                CallStatus::NotFinal => {
                    return Err(format!(
                        "unknown outcome {name:?} (expected completed, no_answer, busy, failed, voicemail, cancelled)"
                    ));
                }
            };
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("the weight of {name:?} must be a whole number, not {weight:?}")
            })?;
            if out.iter().any(|(o, _)| *o == outcome) {
                return Err(format!("outcome {name:?} is given twice"));
            }
            if weight > 0 {
                out.push((outcome, weight));
            }
        }
        if out.is_empty() {
            return Err("at least one outcome needs a positive weight".into());
        }
        Ok(OutcomeWeights(out))
    }
}

impl fmt::Display for OutcomeWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(o, w)| format!("{o}={w}")).collect();
        f.write_str(&parts.join(","))
    }
}

/// A range of seconds, `MIN-MAX` (or one number for a fixed value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecsRange {
    /// Shortest, in seconds.
    pub min: f64,
    /// Longest, in seconds.
    pub max: f64,
}

impl SecsRange {
    /// The value at `point` in `[0, 1)` of the range.
    pub fn at(&self, point: f64) -> f64 {
        self.min + (self.max - self.min) * point.clamp(0.0, 1.0)
    }
}

impl FromStr for SecsRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (min, max) = match s.trim().split_once('-') {
            Some((a, b)) => (parse_secs(a)?, parse_secs(b)?),
            None => {
                let v = parse_secs(s)?;
                (v, v)
            }
        };
        if min > max {
            return Err(format!("{s:?}: MIN is larger than MAX"));
        }
        Ok(SecsRange { min, max })
    }
}

impl fmt::Display for SecsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// A probability in `[0, 1]`.
fn parse_probability(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{s:?} is not a probability between 0 and 1"))
    }
}

/// A finite, non-negative number of seconds.
fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if (0.0..1.0e9).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is not a non-negative number of seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostile_api_options_parse_and_write_time_of_call_as_asked() {
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            opts: SimOptions,
        }
        let o = <P as clap::Parser>::try_parse_from([
            "simulate",
            "--log-time-offset-min",
            "-300",
            "--max-page-size",
            "20",
            "--repeat-request-ids",
            "0.1",
            "--log-after-end",
            "--time-format",
            "dmy",
        ])
        .unwrap()
        .opts;
        assert_eq!(o.log_time_offset_min, -300);
        assert_eq!(o.max_page_size, Some(20));
        assert!(o.log_after_end);
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-25T03:04:05Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(TimeStyle::of(&o).write(t), "24/11/2026 22:04:05");
        let iso = TimeStyle {
            offset_min: 330,
            format: TimeFormat::Iso,
        };
        assert_eq!(iso.write(t), "2026-11-25T08:34:05+05:30");
        assert!(
            <P as clap::Parser>::try_parse_from(["simulate", "--log-time-offset-min", "900"])
                .is_err()
        );
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let o = SimOptions::default();
        assert_eq!(o.api_key, "sim-key-local");
        assert!(o.accepts_key("sim-key-local") && o.accepts_key("sim-key"));
        assert!(!o.accepts_key("other-key"));
        let custom = SimOptions {
            api_key: "custom-key-1".into(),
            ..SimOptions::default()
        };
        assert!(custom.accepts_key("custom-key-1"));
        assert!(!custom.accepts_key("sim-key") && !custom.accepts_key("sim-key-local"));
        assert_eq!(o.call_secs, SecsRange { min: 2.0, max: 5.0 });
        assert_eq!(
            o.outcomes.to_string(),
            "completed=60,no_answer=20,busy=10,failed=5,voicemail=5"
        );
        assert_eq!(o.fault_drop, 0.0);
        assert!(o.journal.is_none());
    }

    #[test]
    fn outcome_weights_accept_the_api_spellings_and_reject_nonsense() {
        let w: OutcomeWeights = "no-answer=1, Busy=2,canceled=0".parse().unwrap();
        assert_eq!(w.weights(), &[(Outcome::NoAnswer, 1), (Outcome::Busy, 2)]);
        assert!(
            "ringing=1"
                .parse::<OutcomeWeights>()
                .unwrap_err()
                .contains("unknown outcome")
        );
        assert!(
            "busy"
                .parse::<OutcomeWeights>()
                .unwrap_err()
                .contains("NAME=WEIGHT")
        );
        assert!(
            "busy=x"
                .parse::<OutcomeWeights>()
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            "busy=1,busy=2"
                .parse::<OutcomeWeights>()
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            "busy=0"
                .parse::<OutcomeWeights>()
                .unwrap_err()
                .contains("positive")
        );
    }

    #[test]
    fn picking_follows_the_cumulative_weights() {
        let w: OutcomeWeights = "completed=3,busy=1".parse().unwrap();
        assert_eq!(w.pick(0.0), Outcome::Completed);
        assert_eq!(w.pick(0.74), Outcome::Completed);
        assert_eq!(w.pick(0.75), Outcome::Busy);
        assert_eq!(w.pick(0.999_999), Outcome::Busy);
        assert_eq!(w.pick(1.0), Outcome::Busy);
    }

    #[test]
    fn second_ranges_parse_floats_and_single_values() {
        assert_eq!(
            "0.1-0.3".parse::<SecsRange>().unwrap(),
            SecsRange { min: 0.1, max: 0.3 }
        );
        assert_eq!(
            "3".parse::<SecsRange>().unwrap(),
            SecsRange { min: 3.0, max: 3.0 }
        );
        assert!("5-2".parse::<SecsRange>().is_err());
        assert!("a-2".parse::<SecsRange>().is_err());
        assert!(parse_probability("1.5").is_err());
        assert_eq!(parse_probability("0.25"), Ok(0.25));
    }
}
