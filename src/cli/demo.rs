//! `dialerd demo`: the whole path in about half a minute, on a fresh machine
//! with no configuration and no API key. It starts the simulator in-process
//! on loopback, recreates a demo directory, imports the bundled sample
//! campaign through the import library, runs the daemon until nothing is
//! left to do while a progress line ticks on stderr, then prints one row per
//! contact and the `sqlite3` queries to look further.
//!
//! The demo builds its own configuration (fast schedule, all-day window,
//! short retry delay, no quiet hours or region rules, so it runs at any
//! hour, which it says) and ignores `DIALERD_*` variables, so a real
//! database or key in the environment is never touched.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::mpsc;

use super::DemoArgs;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{RawConfig, Settings};
use crate::daemon::{self, Control, RunOptions};
use crate::error::{CliError, Exit};
use crate::import::{self, ImportRequest};
use crate::secret::ApiKey;
use crate::sim::{self, SimHandle, SimOptions};
use crate::store::{ProgressCounts as Progress, Store};

/// The sample campaign, bundled so the demo works from any directory.
const SAMPLE_CSV: &str = include_str!("../../examples/campaign.csv");
/// The campaign the demo creates.
const CAMPAIGN: &str = "demo";
/// Written into the demo directory; only a directory holding it (or an empty
/// one) is ever deleted, so a mistyped `--dir` cannot wipe real files.
const MARKER: &str = ".dialerd-demo";
/// What the demo's configuration changes about calling hours, said up front.
const DEMO_HOURS: &str = "calling hours: this demo sets compliance.quiet_hours = \"off\" and no \
compliance.regions, so it dials its sample numbers at any hour; a real configuration keeps \
callee-local quiet hours 08:00-21:00 and the Florida and Oklahoma rules";
/// The demo normally ends in about 30 s; past this it stops and says so.
const DEADLINE: Duration = Duration::from_secs(90);

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<(), CliError> {
    // Clean output: warnings only, unless RUST_LOG says otherwise.
    crate::telemetry::set_level("warn");
    let started = Instant::now();
    recreate_dir(&args.dir)?;
    let csv = match &args.csv {
        Some(path) => path.clone(),
        None => {
            let path = args.dir.join("campaign.csv");
            std::fs::write(&path, SAMPLE_CSV)
                .with_context(|| format!("cannot write {}", path.display()))?;
            path
        }
    };
    let sim = sim::spawn(sim_options()).await?;
    let settings = demo_settings(&args.dir, &sim)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&settings.database_path, clock.clone()).await?;
    let request = ImportRequest {
        path: csv,
        campaign: CAMPAIGN.into(),
        overrides: Default::default(),
        select: Default::default(),
        dry_run: false,
    };
    let report = import::import_file(&store, &settings.campaign_defaults, &request).await?;
    {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "{}", report.render(10));
    }
    errln!("{DEMO_HOURS}");
    errln!(
        "simulated OmniDimension API at {}; dialing...",
        sim.base_url()
    );

    let finished = drive(settings, clock, &store).await;
    let _ = sim.shutdown().await;
    let elapsed = started.elapsed();
    let table = outcome_table(&store).await.map_err(anyhow::Error::from)?;
    let opt_outs = opt_out_lines(&store).await.map_err(anyhow::Error::from)?;
    store.close().await;
    let mut out = table;
    out.push_str(&opt_outs);
    out.push_str(&epilogue(&args.dir, elapsed));
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    finished
}

/// The simulator: a fixed seed, short calls, every outcome, a few faults
/// (429s, withheld answers) so retries and reconciliation show, and a few
/// callees who opt out.
fn sim_options() -> SimOptions {
    SimOptions {
        seed: 7,
        call_secs: sim::SecsRange { min: 1.0, max: 3.0 },
        fault_429: 0.05,
        fault_timeout: 0.02,
        timeout_hold_secs: 5.0,
        // A few callees ask not to be called again: the DNC list shows them.
        opt_out: 0.1,
        ..SimOptions::default()
    }
}

/// A fast configuration pointed at the simulator, with its key.
fn demo_settings(dir: &Path, sim: &SimHandle) -> Result<Settings, CliError> {
    let mut raw = RawConfig::default();
    raw.database.path = dir.join("dialerd.db").to_string_lossy().into_owned();
    raw.provider.base_url = sim.base_url();
    raw.provider.request_timeout_ms = 2_000;
    raw.dispatch.rate_per_second = 10.0;
    raw.dispatch.burst = 5;
    raw.dispatch.retry_max_delay_secs = 5;
    raw.reconcile.poll_interval_secs = 1.0;
    raw.reconcile.uncertain_grace_secs = 10;
    raw.daemon.heartbeat_secs = 1;
    raw.daemon.campaign_refresh_secs = 1.0;
    raw.daemon.shutdown_grace_secs = 5;
    raw.log.level = "warn".into();
    let d = &mut raw.campaign_defaults;
    d.agent_id = Some(1);
    d.schedule = "*/2 * * * * *".into();
    d.window = "00:00-24:00".into();
    d.max_attempts = 3;
    d.retry_delay_secs = 3;
    // The demo runs now, whatever the hour where its sample numbers are;
    // DEMO_HOURS tells the user so.
    raw.compliance.quiet_hours = "off".into();
    raw.compliance.regions.clear();
    // An empty environment: the demo never picks up a real key or database.
    let mut settings = Settings::from_raw(raw, None, &HashMap::new())?;
    settings.api_key = ApiKey::new(sim.options().api_key.clone());
    Ok(settings)
}

/// Deletes and recreates `dir`, refusing to delete anything the demo did not make.
fn recreate_dir(dir: &Path) -> Result<(), CliError> {
    if dir.exists() || dir.is_symlink() {
        let ours = dir.join(MARKER).is_file();
        let empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
        if !ours && !empty {
            return Err(CliError::msg(
                Exit::Usage,
                format!(
                    "{} exists and was not made by `dialerd demo`; refusing to delete it (choose another --dir)",
                    dir.display()
                ),
            ));
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "made by `dialerd demo`; the next demo deletes this directory\n",
    )
    .with_context(|| format!("cannot write in {}", dir.display()))?;
    Ok(())
}

/// Runs the daemon until idle, printing progress every half second; Ctrl-C
/// or the deadline stop it cleanly.
async fn drive(settings: Settings, clock: SharedClock, store: &Store) -> Result<(), CliError> {
    let (tx, rx) = mpsc::channel(4);
    let daemon = daemon::run(
        settings,
        clock,
        RunOptions {
            until_idle: true,
            config_file: None,
        },
        rx,
    );
    tokio::pin!(daemon);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let deadline = tokio::time::sleep(DEADLINE);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut line = ProgressLine::new();
    let mut cut_short: Option<&str> = None;
    let result = loop {
        tokio::select! {
            r = &mut daemon => break r,
            _ = tick.tick() => {
                if let Ok(p) = store.reports().progress_counts(CAMPAIGN).await {
                    line.show(&p, false);
                }
            }
            _ = &mut ctrl_c, if cut_short.is_none() => {
                cut_short = Some("interrupted");
                let _ = tx.send(Control::Stop).await;
            }
            _ = &mut deadline, if cut_short.is_none() => {
                cut_short = Some("still not finished after 90 s, so stopped");
                let _ = tx.send(Control::Stop).await;
            }
        }
    };
    if let Ok(p) = store.reports().progress_counts(CAMPAIGN).await {
        line.show(&p, true);
    }
    line.finish();
    result.context("the daemon failed")?;
    match cut_short {
        Some(why) => Err(CliError::msg(
            Exit::Failure,
            format!("demo {why}; the table shows where it got to"),
        )),
        None => Ok(()),
    }
}

impl std::fmt::Display for Progress {
    /// `dialed 23/36 · completed 12 · no answer 5 · busy 2 · in progress 4`,
    /// then the counts that are not zero yet.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "dialed {}/{} · completed {} · no answer {} · busy {} · in progress {}",
            self.dialed,
            self.contacts,
            self.outcome_completed,
            self.outcome_no_answer,
            self.outcome_busy,
            self.in_progress
        )?;
        for (n, what) in [
            (self.retry_wait, "retry wait"),
            (self.outcome_failed, "failed"),
            (self.outcome_voicemail, "voicemail"),
        ] {
            if n > 0 {
                write!(f, " · {what} {n}")?;
            }
        }
        Ok(())
    }
}

/// The live line on stderr: redrawn in place on a terminal; elsewhere one
/// line per change, at most every two seconds.
struct ProgressLine {
    terminal: bool,
    last: Option<(Progress, Instant)>,
}

impl ProgressLine {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            last: None,
        }
    }

    /// Shows `p`; `last` forces a line for the final state.
    fn show(&mut self, p: &Progress, last: bool) {
        let text = p.to_string();
        let mut err = std::io::stderr().lock();
        if self.terminal {
            // Clipped to one line of a narrow terminal, so `\r` redraws it in place.
            let _ = write!(err, "\r\x1b[2K{}", clip(&text, 79));
            let _ = err.flush();
        } else {
            let due = self
                .last
                .as_ref()
                .is_none_or(|(q, at)| q != p && (last || at.elapsed() >= Duration::from_secs(2)));
            if !due {
                return;
            }
            let _ = writeln!(err, "{text}");
        }
        self.last = Some((*p, Instant::now()));
    }

    fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The table of outcomes, one row per contact.
async fn outcome_table(store: &Store) -> sqlx::Result<String> {
    let rows = store.reports().outcome_rows(CAMPAIGN).await?;
    let mut out = format!(
        "\n{:<20} {:<16} {:<9} {:>5}  {:<9} {:>5}  {}\n",
        "contact", "number", "state", "calls", "outcome", "secs", "transcript"
    );
    for r in &rows {
        out.push_str(&format!(
            "{:<20} {:<16} {:<9} {:>5}  {:<9} {:>5}  {}\n",
            clip(&name(&r.call_context), 20),
            r.phone_number,
            r.state,
            r.attempts,
            r.outcome.as_deref().unwrap_or("-"),
            r.duration_secs
                .map_or("-".to_string(), |d| format!("{d:.0}")),
            r.transcript.as_deref().map_or(String::new(), excerpt),
        ));
    }
    Ok(out)
}

/// The numbers the simulated callees asked to put on the DNC list.
async fn opt_out_lines(store: &Store) -> sqlx::Result<String> {
    let listed: Vec<_> = store
        .dnc_list()
        .await?
        .into_iter()
        .filter(|d| d.source == crate::store::DncSource::OptOut.as_str())
        .collect();
    if listed.is_empty() {
        return Ok(String::new());
    }
    let mut out = format!(
        "\n{} callees asked not to be called again; their numbers are on the DNC list (source opt-out), \
         so no campaign calls them:\n",
        listed.len()
    );
    for d in &listed {
        // Bracketed: a table row is a line with a number after a space.
        out.push_str(&format!(
            "  [{}] {}\n",
            d.phone_number,
            d.reason.as_deref().unwrap_or("opt-out")
        ));
    }
    Ok(out)
}

/// "First Last" from the contact's context.
fn name(context: &str) -> String {
    let ctx: serde_json::Value = serde_json::from_str(context).unwrap_or_default();
    let part = |k: &str| {
        ctx.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let full = format!("{} {}", part("first_name"), part("last_name"))
        .trim()
        .to_string();
    if full.is_empty() { "-".into() } else { full }
}

/// What the person said on the call, shortened: the turns that are not the agent's.
fn excerpt(transcript: &str) -> String {
    let said: Vec<&str> = transcript
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .filter(|(who, _)| who.trim().eq_ignore_ascii_case("user"))
        })
        .map(|(_, text)| text.trim())
        .filter(|t| !t.is_empty())
        .collect();
    let text = if said.is_empty() {
        transcript.lines().next().unwrap_or("").to_string()
    } else {
        format!("“{}”", said.join(" / "))
    };
    clip(&text, 44)
}

/// `s` cut to `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

/// Where the database is and what to ask it.
fn epilogue(dir: &Path, elapsed: Duration) -> String {
    let db = dir.join("dialerd.db");
    let shown = std::path::absolute(&db).unwrap_or_else(|_| db.clone());
    let q = shell_quote(&db);
    format!(
        "\nfinished in {:.1} s. The database is {}\n\
         Try:\n  \
         sqlite3 -header -column {q} 'SELECT campaign, contacts, done, exhausted, calls_placed, outcome_completed, outcome_no_answer, outcome_busy FROM campaign_progress;'\n  \
         sqlite3 -header -column {q} \"SELECT phone_number, state, attempts, outcome, duration_secs FROM contact_outcomes WHERE campaign = 'demo';\"\n  \
         sqlite3 {q} \"SELECT transcript FROM attempts WHERE outcome = 'completed' LIMIT 1;\"\n  \
         sqlite3 -header -column {q} \"SELECT phone_number, reason, attempt_id FROM dnc WHERE source = 'opt-out';\"\n",
        elapsed.as_secs_f64(),
        shown.display(),
    )
}

/// `path` as one shell word.
fn shell_quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
