//! `dialerd check-config`.

use crate::config::Settings;
use crate::error::CliError;

/// Prints the effective configuration with the API key redacted. Loading it
/// already validated every key (an error exits 78 before this runs).
pub fn run(settings: &Settings) -> Result<(), CliError> {
    out!("{}", settings.redacted_toml());
    for warning in settings.warnings() {
        errln!("warning: {warning}");
    }
    if settings.api_key.is_none() {
        errln!(
            "note: no API key is configured; `run` needs one unless provider.base_url points at `dialerd simulate`"
        );
    }
    Ok(())
}
