//! `dialerd import FILE --campaign NAME [...]`: flags parsed into campaign
//! overrides (a bad value exits 64 naming the flag), the input checked
//! before the database is touched (66), then the library import; the
//! summary and the first 10 rejects go to standard output, warnings to
//! standard error.

use super::ImportArgs;
use crate::config::Settings;
use crate::error::{CliError, Exit};
use crate::import::{
    CampaignOverrides, ImportError, ImportRequest, SqliteSelect, check_input, import_file,
};

/// Runs `import`.
pub async fn run(settings: &Settings, args: ImportArgs) -> Result<(), CliError> {
    let req = request(args)?;
    check_input(&req.path)?;
    let store = super::open(settings).await?;
    let result = import_file(&store, &settings.campaign_defaults, &req).await;
    store.close().await;
    match result {
        Ok(report) => {
            for w in &report.warnings {
                errln!("dialerd: warning: {w}");
            }
            out!("{report}");
            Ok(())
        }
        Err(ImportError::DataErr {
            message,
            report: Some(report),
        }) => {
            out!("{}", report.render_rejects(10));
            Err(CliError::msg(Exit::DataErr, message))
        }
        Err(e) => Err(e.into()),
    }
}

/// The import the flags describe.
fn request(a: ImportArgs) -> Result<ImportRequest, CliError> {
    let mut o = CampaignOverrides::default();
    let flags: [(&str, &str, Option<String>); 10] = [
        ("agent_id", "--agent-id", a.agent_id.map(|v| v.to_string())),
        (
            "from_number_id",
            "--from-number-id",
            a.from_number_id.map(|v| v.to_string()),
        ),
        ("schedule", "--schedule", a.schedule),
        ("timezone", "--timezone", a.timezone),
        ("window", "--window", a.window),
        (
            "max_attempts",
            "--max-attempts",
            a.max_attempts.map(|v| v.to_string()),
        ),
        (
            "retry_delay_secs",
            "--retry-delay",
            a.retry_delay.map(|v| v.to_string()),
        ),
        ("region", "--region", a.region),
        ("caller_pool", "--caller-pool", a.caller_pool),
        ("max_cost", "--max-cost", a.max_cost),
    ];
    for (key, flag, value) in flags {
        if let Some(v) = value {
            o.set(key, &v)
                .map_err(|m| CliError::msg(Exit::Usage, format!("{flag}: {m}")))?;
        }
    }
    let select = match (a.table, a.query) {
        (Some(t), None) => SqliteSelect::Table(t),
        (None, Some(q)) => SqliteSelect::Query(q),
        (None, None) => SqliteSelect::Auto,
        (Some(_), Some(_)) => {
            return Err(CliError::msg(
                Exit::Usage,
                "--table and --query cannot be used together",
            ));
        }
    };
    Ok(ImportRequest {
        path: a.file,
        campaign: a.campaign,
        overrides: o,
        select,
        dry_run: a.dry_run,
    })
}
