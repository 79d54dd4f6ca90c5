//! `[compliance]` typed: the quiet-hours floor and the rules of states and
//! provinces, which the calling policy applies on top of every campaign's
//! window, and what in a call's log is a callee's request not to be called
//! again (`[compliance.opt_out]`). The shipped rules are configuration, not
//! legal advice.

use std::collections::BTreeMap;

use super::{ConfigError, RawCompliance, RawOptOut, invalid};
use crate::calendar::Window;
use crate::phone::regions::RegionCode;

/// The compliance rules every call is held to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compliance {
    /// Callee-local hours outside which nobody is called; `None`: `off`.
    pub quiet_hours: Option<Window>,
    /// Rules of the callee's state or province, by region code.
    pub regions: BTreeMap<RegionCode, RegionRule>,
    /// What in a call's log puts its number on the do-not-call list.
    pub opt_out: OptOut,
}

/// `[compliance.opt_out]`, validated: the extracted variable and the
/// phrases that mean "do not call me again".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptOut {
    /// The `extracted_variables` key whose truthy value opts out; `None`: off.
    pub variable: Option<String>,
    /// Phrases, lower-cased with whitespace collapsed (see
    /// [`OptOut::normalise`]); empty: phrases are not looked for.
    pub phrases: Vec<String>,
}

impl OptOut {
    /// Neither the variable nor any phrase.
    pub fn off() -> Self {
        Self {
            variable: None,
            phrases: Vec::new(),
        }
    }

    /// Validates `[compliance.opt_out]`; errors name the key (and the phrase's index).
    pub fn from_raw(raw: &RawOptOut) -> Result<Self, ConfigError> {
        let variable = raw.variable.trim();
        let mut phrases = Vec::with_capacity(raw.phrases.len());
        for (i, p) in raw.phrases.iter().enumerate() {
            let n = Self::normalise(p);
            if !n.chars().any(char::is_alphanumeric) {
                return Err(invalid(
                    &format!("compliance.opt_out.phrases[{i}]"),
                    format!(
                        "{p:?} has no letters or digits; remove it (an empty list disables phrases)"
                    ),
                ));
            }
            if !phrases.contains(&n) {
                phrases.push(n);
            }
        }
        Ok(Self {
            variable: (!variable.is_empty()).then(|| variable.to_string()),
            phrases,
        })
    }

    /// Text as phrases are matched: lower case, typographic apostrophes as
    /// `'`, every run of whitespace one space, trimmed.
    pub fn normalise(text: &str) -> String {
        text.to_lowercase()
            .replace(['\u{2019}', '\u{2018}', '`'], "'")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
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
            opt_out: OptOut::off(),
        })
    }
}

impl Compliance {
    /// No floor and no region rules (tests of the campaign window alone);
    /// opt-outs are still honoured with the shipped variable and phrases.
    pub fn none() -> Self {
        Self {
            quiet_hours: None,
            regions: BTreeMap::new(),
            opt_out: OptOut::from_raw(&RawOptOut::default()).unwrap_or_else(|_| OptOut::off()),
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
            opt_out: OptOut::from_raw(&raw.opt_out)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::Settings;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dialerd.toml");
        std::fs::write(&path, file).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load_with_env(Some(&path), &env)
    }

    #[test]
    fn opt_out_ships_the_variable_and_phrases_and_an_empty_list_disables_phrases() {
        let s = load("", &[]).unwrap();
        assert_eq!(s.compliance.opt_out.variable.as_deref(), Some("opt_out"));
        assert!(
            s.compliance
                .opt_out
                .phrases
                .contains(&"stop calling".to_string())
        );
        let off = load("[compliance.opt_out]\nvariable = \"\"\nphrases = []\n", &[]).unwrap();
        assert_eq!(off.compliance.opt_out, OptOut::off());
        let mine = load(
            "[compliance.opt_out]\nvariable = \"dnc_requested\"\nphrases = [\"  Leave Me   ALONE \"]\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            mine.compliance.opt_out.variable.as_deref(),
            Some("dnc_requested")
        );
        assert_eq!(
            mine.compliance.opt_out.phrases,
            vec!["leave me alone".to_string()]
        );
    }

    #[test]
    fn opt_out_phrases_come_from_the_environment_as_a_list() {
        let s = load(
            "",
            &[(
                "DIALERD_COMPLIANCE__OPT_OUT__PHRASES",
                "stop calling,go away",
            )],
        )
        .unwrap();
        assert_eq!(
            s.compliance.opt_out.phrases,
            vec!["stop calling".to_string(), "go away".to_string()]
        );
    }

    #[test]
    fn a_bad_opt_out_phrase_names_the_file_key_and_index() {
        let err = load(
            "[compliance.opt_out]\nphrases = [\"stop calling\", \"!!\"]\n",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("compliance.opt_out.phrases[1]"), "{err}");
    }
}
