//! The inbox's optional sidecar, `NAME.toml` beside `NAME.csv`: the campaign
//! name and settings for a campaign the file creates. Unknown keys are an
//! error, so a typo never silently falls back to a default.
//!
//! ```toml
//! campaign = "spring-renewals"   # default: the file's stem
//! agent_id = 42
//! window = "10:00-18:00"
//! region = "GB"
//! ```

use super::overrides::CampaignOverrides;

/// A parsed sidecar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sidecar {
    /// The campaign name, when set.
    pub campaign: Option<String>,
    /// Settings for a new campaign.
    pub overrides: CampaignOverrides,
}

/// Parses a sidecar's text; the error names the key.
pub fn parse(text: &str) -> Result<Sidecar, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| format!("not valid TOML: {}", e.message()))?;
    let mut out = Sidecar::default();
    for (key, value) in &table {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            // An amount (`max_cost = 12.50`); other keys refuse the text.
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(format!(
                    "key {key}: expected a string or a number, found a {}",
                    other.type_str()
                ));
            }
        };
        if key == "campaign" {
            if text.trim().is_empty() {
                return Err("key campaign: the campaign name must not be empty".into());
            }
            out.campaign = Some(text.trim().to_string());
        } else {
            out.overrides
                .set(key, &text)
                .map_err(|m| format!("key {key}: {m}"))?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecar_names_the_campaign_and_sets_its_window() {
        let s = parse("campaign = \"spring\"\nwindow = \"10:00-18:00\"\nagent_id = 7\n").unwrap();
        assert_eq!(s.campaign.as_deref(), Some("spring"));
        assert_eq!(s.overrides.agent_id, Some(7));
        assert_eq!(
            s.overrides.window.map(|w| w.to_string()).as_deref(),
            Some("10:00-18:00")
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        assert!(
            parse("windw = \"10:00-18:00\"")
                .unwrap_err()
                .contains("windw")
        );
        assert!(
            parse("max_attempts = 0")
                .unwrap_err()
                .starts_with("key max_attempts")
        );
        assert!(parse("window = [1]").unwrap_err().contains("key window"));
        assert!(parse("= nonsense").unwrap_err().contains("TOML"));
        assert!(
            parse("max_cost = -1.5")
                .unwrap_err()
                .starts_with("key max_cost")
        );
        assert!(
            parse("caller_pool = \"\"")
                .unwrap_err()
                .starts_with("key caller_pool")
        );
        // A fraction is an amount only where an amount is asked for.
        assert!(
            parse("max_attempts = 2.5")
                .unwrap_err()
                .starts_with("key max_attempts")
        );
    }

    #[test]
    fn a_sidecar_sets_the_caller_pool_and_a_fractional_spend_cap() {
        let s = parse("caller_pool = \"east\"\nmax_cost = 12.50\ncost_estimate = 1\n").unwrap();
        assert_eq!(s.overrides.caller_pool.as_deref(), Some("east"));
        assert_eq!(s.overrides.max_cost, Some(12.5));
        assert_eq!(s.overrides.cost_estimate, Some(1.0));
    }
}
