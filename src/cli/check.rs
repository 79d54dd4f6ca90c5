//! `dialerd check-config`.

use crate::config::Settings;
use crate::error::CliError;

/// Prints the effective configuration with the API key redacted. Loading it
/// already validated every key (an error exits 78 before this runs).
pub fn run(settings: &Settings) -> Result<(), CliError> {
    print!("{}", settings.redacted_toml());
    if let Some(w) = &settings.webhooks {
        println!(
            "# webhook secret: [redacted] (from {})",
            w.secret_source.display()
        );
    }
    if settings.api_key.is_none() {
        eprintln!(
            "note: no API key is configured; `run` needs one unless provider.base_url points at `dialerd simulate`"
        );
    }
    Ok(())
}
