//! The command line: `dialerd [--config FILE] COMMAND`. Each command lives in
//! its own file; this one parses arguments and maps errors to exit statuses.

/// `print!` to standard output that returns an error instead of panicking
/// when the reader has gone (`dialerd status | head -1`); `main` ends such a
/// command quietly.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*).map_err($crate::cli::stdout_error)?
    }};
}

/// `println!` that returns an error instead of panicking; see `out!`.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::cli::stdout_error)?
    }};
}

/// `eprintln!` that never panics: a message nobody can read is dropped.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod campaigns;
mod check;
mod demo;
mod dnc;
mod exit;
mod explain;
mod export;
mod import;
pub mod plan;
mod run;
mod status;
mod webhooks;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::Settings;
use crate::error::{CliError, Exit};
use crate::store::Store;

/// dialerd: outbound-call campaigns through the OmniDimension voice-agent API.
#[derive(Debug, Parser)]
#[command(name = "dialerd", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: $DIALERD_CONFIG, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: inbox watcher, cron scheduler, dispatcher, reconciler.
    Run(RunArgs),
    /// Import a CSV file or an SQLite database into a campaign.
    Import(ImportArgs),
    /// List, show, pause, resume or cancel campaigns.
    #[command(subcommand)]
    Campaigns(CampaignsCmd),
    /// Progress of every campaign.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One row per contact with its latest outcome.
    Export(ExportArgs),
    /// The do-not-call list, shared by all campaigns.
    #[command(subcommand)]
    Dnc(DncCmd),
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig,
    /// Serve an OmniDimension-compatible API for rehearsals, tests and benchmarks.
    Simulate(SimulateArgs),
    /// The simulator plus a sample campaign, end to end, on a fresh database.
    Demo(DemoArgs),
    /// Resume dispatching after it was paused for everyone (a rejected API key).
    #[command(subcommand)]
    Dispatch(DispatchCmd),
    /// Why a number may or may not be called now, rule by rule, and when it next may.
    Explain(ExplainArgs),
    /// Send a signed test event; requeue undelivered events.
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// Without dialing: who the next sweep of a campaign calls, who not and why, and when it could finish.
    Plan(PlanArgs),
}

/// `plan` options.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The campaign to plan.
    pub campaign: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `explain` options.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The numbers (E.164, or national with the campaign's default region).
    #[arg(required = true)]
    pub numbers: Vec<String>,
    /// Explain under this campaign's window and zone (default: campaign_defaults).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Print JSON (an array, one object per number).
    #[arg(long)]
    pub json: bool,
}

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Exit 0 once no contact is pending or waiting for a retry, no attempt
    /// is in flight, uncertain or awaiting its outcome, and (with webhooks) no
    /// event is waiting for delivery within webhooks.max_age_secs.
    #[arg(long)]
    pub until_idle: bool,
}

/// `import` options.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file or SQLite database to import.
    pub file: PathBuf,
    /// The campaign to create or append to.
    #[arg(long)]
    pub campaign: String,
    #[arg(long)]
    pub agent_id: Option<i64>,
    #[arg(long)]
    pub from_number_id: Option<i64>,
    /// Cron schedule (5 or 6 fields) of the campaign's sweeps.
    #[arg(long)]
    pub schedule: Option<String>,
    /// The campaign's time zone (IANA name).
    #[arg(long)]
    pub timezone: Option<String>,
    /// Calling hours in the contact's local time, HH:MM-HH:MM.
    #[arg(long)]
    pub window: Option<String>,
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Seconds to wait before redialing after no answer, busy or failed.
    #[arg(long)]
    pub retry_delay: Option<u64>,
    /// Default region (US, GB, ...) for numbers without a country code.
    #[arg(long)]
    pub region: Option<String>,
    /// SQLite source: the table to read.
    #[arg(long, conflicts_with = "query")]
    pub table: Option<String>,
    /// SQLite source: the query to run (its column names are the header).
    #[arg(long)]
    pub query: Option<String>,
    /// Report what would be imported and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `campaigns` subcommands.
#[derive(Debug, Subcommand)]
pub enum CampaignsCmd {
    /// Every campaign with its status and progress.
    List,
    /// One campaign's settings and progress.
    Show { name: String },
    /// Stop dispatching a campaign (calls in flight finish).
    Pause { name: String },
    /// Resume a paused campaign.
    Resume { name: String },
    /// Cancel a campaign: nothing more is dialed.
    Cancel { name: String },
}

/// `dnc` subcommands.
#[derive(Debug, Subcommand)]
pub enum DncCmd {
    /// Add numbers.
    Add {
        #[arg(required = true)]
        numbers: Vec<String>,
        /// Why (kept with the entry).
        #[arg(long)]
        reason: Option<String>,
        /// Region for numbers without a country code.
        #[arg(long)]
        region: Option<String>,
    },
    /// Remove numbers.
    Remove {
        #[arg(required = true)]
        numbers: Vec<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// Add every number of a file (one per line, or a CSV with a phone column).
    Import {
        file: PathBuf,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// Print the list.
    List,
}

/// `dispatch` subcommands.
#[derive(Debug, Subcommand)]
pub enum DispatchCmd {
    /// Clear a global dispatch pause (after fixing the API key).
    Resume,
}

/// `webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// Send a signed test event to webhooks.url and print the answer.
    Test,
    /// Requeue undelivered events (one by id, or --all), tried again at once.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["all", "id"])))]
    Retry {
        /// Every undelivered event, including those given up on.
        #[arg(long)]
        all: bool,
        /// The event's id (`webhook_outbox.id`, the X-Dialerd-Delivery header).
        id: Option<i64>,
    },
}

/// `export` options.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long)]
    pub campaign: Option<String>,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
    /// Write here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Export formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// `simulate` options.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    #[command(flatten)]
    pub sim: crate::sim::SimOptions,
}

/// `demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo database (recreated).
    #[arg(long, default_value = "dialerd-demo")]
    pub dir: PathBuf,
    /// The campaign CSV (default: the bundled examples/campaign.csv).
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Parses the command line and runs the command; returns the process exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::Usage as i32
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("dialerd: cannot start the async runtime: {e}");
            return Exit::Failure as i32;
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => 0,
        // The reader stopped early (`| head`): what it wanted, it got.
        Err(e) if is_closed_pipe(&e) => 0,
        Err(e) => {
            tracing::debug!(error = ?e.error, "command failed");
            errln!("dialerd: {e}");
            e.exit as i32
        }
    }
}

/// A failed write to standard output, as a command error.
pub(crate) fn stdout_error(e: std::io::Error) -> CliError {
    CliError::new(
        Exit::Failure,
        anyhow::Error::new(e).context("writing to standard output"),
    )
}

/// Whether `e` is a write to a pipe whose reader has gone.
fn is_closed_pipe(e: &CliError) -> bool {
    e.error.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs one parsed command.
pub async fn execute(cli: Cli) -> Result<(), CliError> {
    let settings = Settings::load(cli.config.as_deref())?;
    crate::telemetry::init(&settings.log());
    match cli.command {
        Command::CheckConfig => check::run(&settings),
        Command::Status { json } => status::run(&open(&settings).await?, &settings, json).await,
        Command::Campaigns(cmd) => campaigns::run(&open(&settings).await?, cmd).await,
        Command::Dnc(cmd) => dnc::run(&open(&settings).await?, &settings, cmd).await,
        Command::Dispatch(DispatchCmd::Resume) => {
            let store = open(&settings).await?;
            let cleared = store.resume_dispatch().await.map_err(anyhow::Error::from)?;
            outln!(
                "{}",
                if cleared {
                    "dispatching resumed"
                } else {
                    "dispatching was not paused"
                }
            );
            Ok(())
        }
        Command::Run(args) => run::run(settings, cli.config.clone(), args).await,
        Command::Simulate(args) => run::simulate(args).await,
        Command::Import(args) => import::run(&settings, args).await,
        Command::Export(args) => export::run(&open(&settings).await?, args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Explain(args) => explain::run(&open(&settings).await?, &settings, args).await,
        Command::Webhooks(cmd) => webhooks::run(&settings, cmd).await,
        Command::Plan(args) => plan::run(&open_existing(&settings).await?, &settings, args).await,
    }
}

/// Opens the configured database, which must exist: a command that only
/// reads never leaves an empty database behind (exit 66 when it is missing).
pub(crate) async fn open_existing(settings: &Settings) -> Result<Store, CliError> {
    if !settings.database_path.exists() {
        return Err(CliError::msg(
            Exit::NoInput,
            format!(
                "no database at {} (database.path); nothing has been imported there",
                settings.database_path.display()
            ),
        ));
    }
    open(settings).await
}

/// Opens the configured database (creating and migrating it as needed).
pub(crate) async fn open(settings: &Settings) -> Result<Store, CliError> {
    Ok(Store::open(&settings.database_path, Arc::new(SystemClock)).await?)
}
