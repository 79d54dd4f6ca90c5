//! `dialerd check-config`.

use crate::config::Settings;
use crate::error::CliError;

/// How to see what the systemd service really runs with: its database path
/// and API key come from the unit, not from the file alone.
const SERVICE_CHECK: &str = "note: the systemd service takes its API key (a credential) and its database path from its unit; \
to check the configuration it really runs with:\n  sudo systemd-run --pipe --wait --quiet \\\n    \
--property=LoadCredential=api_key:/etc/dialerd/api_key \\\n    \
--property=Environment=DIALERD_DATABASE__PATH=/var/lib/dialerd/dialerd.db \\\n    \
/usr/local/bin/dialerd --config /etc/dialerd/dialerd.toml check-config";

/// Prints the effective configuration with the API key redacted. Loading it
/// already validated every key (an error exits 78 before this runs).
pub fn run(settings: &Settings) -> Result<(), CliError> {
    out!("{}", settings.redacted_toml());
    if let Some(w) = &settings.webhooks {
        outln!(
            "# webhook secret: [redacted] (from {})",
            w.secret_source.display()
        );
    }
    for warning in settings.warnings() {
        errln!("warning: {warning}");
    }
    if settings.api_key.is_none() {
        errln!(
            "note: no API key is configured; `run` needs one unless provider.base_url points at `dialerd simulate`"
        );
        if std::env::var_os("INVOCATION_ID").is_none() {
            errln!("{SERVICE_CHECK}");
        }
    }
    Ok(())
}
