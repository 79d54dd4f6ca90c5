//! `dialerd campaigns list|show|pause|resume|cancel`. Changes go through
//! [`Store::set_campaign_status`]; a running daemon re-reads campaigns every
//! couple of seconds, so they take effect without signalling it.

use anyhow::Context;

use super::CampaignsCmd;
use super::status::{Table, clean, money, status_cell};
use crate::config::Settings;
use crate::domain::CampaignStatus;
use crate::error::{CliError, Exit};
use crate::store::{CampaignRef, Record, Store};

/// How many events `campaigns show` prints.
const SHOWN_EVENTS: i64 = 10;

/// Progress columns `campaigns show` leaves out (shown with the settings).
const NOT_PROGRESS: &[&str] = &[
    "campaign_id",
    "campaign",
    "status",
    "status_reason",
    "last_sweep_at",
    "next_sweep_at",
];

/// Runs a `campaigns` subcommand.
pub async fn run(store: &Store, settings: &Settings, cmd: CampaignsCmd) -> Result<(), CliError> {
    match cmd {
        CampaignsCmd::List => list(store).await,
        CampaignsCmd::Show { name } => show(store, &name).await,
        CampaignsCmd::Pause { name } => change(store, &name, CampaignStatus::Paused).await,
        CampaignsCmd::Resume { name, max_cost } => {
            resume(store, settings, &name, max_cost.as_deref()).await
        }
        CampaignsCmd::Cancel { name } => change(store, &name, CampaignStatus::Cancelled).await,
    }
}

/// The campaign named `name`, or an error (exit 1) listing the names that exist.
pub(super) async fn find(store: &Store, name: &str) -> Result<CampaignRef, CliError> {
    let reports = store.reports();
    if let Some(c) = reports
        .campaign_ref(name)
        .await
        .context("looking up the campaign")?
    {
        return Ok(c);
    }
    let names = reports
        .campaign_names()
        .await
        .context("listing campaigns")?;
    let known = match names.len() {
        0 => "there are no campaigns yet".to_string(),
        n if n <= 20 => format!("campaigns: {}", names.join(", ")),
        n => format!("campaigns: {}, and {} more", names[..20].join(", "), n - 20),
    };
    Err(CliError::msg(
        Exit::Failure,
        format!("no campaign named {name:?} ({})", clean(&known)),
    ))
}

/// `campaigns list`: one line per campaign.
async fn list(store: &Store) -> Result<(), CliError> {
    let rows = store
        .reports()
        .campaign_overview()
        .await
        .context("reading campaigns")?;
    if rows.is_empty() {
        outln!("no campaigns yet (import one with: dialerd import FILE --campaign NAME)");
        return Ok(());
    }
    let mut table = Table::new(&[
        "NAME",
        "STATUS",
        "AGENT",
        "SCHEDULE",
        "TIMEZONE",
        "WINDOW",
        "CONTACTS",
        "DONE",
        "EXHAUSTED",
        "PENDING",
        "RETRY WAIT",
        "IN PROGRESS",
        "NEXT SWEEP",
    ]);
    for r in &rows {
        table.push(vec![
            text(r, "name"),
            status_cell(r.text("status"), r.text("status_reason")),
            text(r, "agent_id"),
            text(r, "schedule"),
            text(r, "timezone"),
            format!("{}-{}", text(r, "window_start"), text(r, "window_end")),
            r.int("contacts").to_string(),
            r.int("done").to_string(),
            r.int("exhausted").to_string(),
            r.int("pending").to_string(),
            r.int("retry_wait").to_string(),
            r.int("in_progress").to_string(),
            text(r, "next_sweep_at"),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// `campaigns show NAME`: every setting, the progress counts and recent events.
async fn show(store: &Store, name: &str) -> Result<(), CliError> {
    let c = find(store, name).await?;
    let reports = store.reports();
    let settings = reports
        .campaign(c.id)
        .await
        .context("reading the campaign")?
        .unwrap_or_default();
    let progress = reports
        .progress_of(c.id)
        .await
        .context("reading campaign_progress")?
        .unwrap_or_default();
    let events = reports
        .campaign_events(c.id, SHOWN_EVENTS)
        .await
        .context("reading events")?;

    let mut table = Table::new(&["", ""]);
    for (col, _) in settings.columns() {
        table.push(vec![col.to_string(), text(&settings, col)]);
    }
    out!("{}", table.render());
    // A campaign inserted by hand may carry a typo the daemon pauses it for.
    if let Ok(Some(campaign)) = store.campaign(c.id).await
        && let Err(problem) = campaign.rules()
    {
        outln!("problem: {}", clean(&problem));
    }

    outln!("\nprogress");
    let mut table = Table::new(&["", ""]);
    for (col, _) in progress
        .columns()
        .filter(|(col, _)| !NOT_PROGRESS.contains(col))
    {
        let value = if col.ends_with("cost") || matches!(col, "spent" | "cost_committed") {
            match progress.text(col) {
                // No spend cap.
                None => "-".to_string(),
                Some(_) => money(progress.float(col)),
            }
        } else if col == "caller_pool" {
            text(&progress, col)
        } else {
            progress.int(col).to_string()
        };
        table.push(vec![format!("  {col}"), value]);
    }
    out!("{}", table.render());

    outln!("\nrecent events (newest first)");
    if events.is_empty() {
        outln!("  none");
        return Ok(());
    }
    let mut table = Table::new(&["  AT", "KIND", "DETAIL"]);
    for e in &events {
        table.push(vec![
            format!("  {}", text(e, "at")),
            text(e, "kind"),
            text(e, "detail"),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// `campaigns pause|resume|cancel NAME`: sets the status to `target`.
async fn change(store: &Store, name: &str, target: CampaignStatus) -> Result<(), CliError> {
    let c = find(store, name).await?;
    let current = c.status.parse::<CampaignStatus>().ok();
    if current == Some(target) {
        outln!("campaign {:?} is already {target}; nothing changed", c.name);
        return Ok(());
    }
    if let Some(why) = refusal(current, target) {
        return Err(CliError::msg(
            Exit::Failure,
            format!("campaign {:?} {why}", c.name),
        ));
    }
    let reports = store.reports();
    let before = reports
        .progress_of(c.id)
        .await
        .context("reading campaign_progress")?
        .unwrap_or_default();
    let reason = (target != CampaignStatus::Active).then_some("by operator");
    let found = store
        .set_campaign_status(c.id, target, reason)
        .await
        .context("changing the campaign's status")?;
    if !found {
        return Err(CliError::msg(
            Exit::Failure,
            format!("campaign {:?} was deleted meanwhile", c.name),
        ));
    }
    outln!("campaign {:?}: {} -> {target}", c.name, clean(&c.status));
    match target {
        CampaignStatus::Cancelled => {
            let after = reports
                .progress_of(c.id)
                .await
                .context("reading campaign_progress")?
                .unwrap_or_default();
            let cancelled = after.int("cancelled") - before.int("cancelled");
            outln!(
                "contacts cancelled: {cancelled}; calls in flight, which finish and are recorded: {}",
                after.int("in_progress")
            );
        }
        CampaignStatus::Paused => outln!(
            "nothing more is dialed until `dialerd campaigns resume {}`; calls in flight finish",
            c.name
        ),
        _ => outln!("due contacts are dialed from the next sweep"),
    }
    outln!("a running daemon applies this within seconds");
    Ok(())
}

/// `campaigns resume NAME [--max-cost AMOUNT]`: sets the spend cap first
/// when given, and refuses while the committed cost is at or over the cap
/// (the daemon would pause it again at once).
async fn resume(
    store: &Store,
    settings: &Settings,
    name: &str,
    max_cost: Option<&str>,
) -> Result<(), CliError> {
    let c = find(store, name).await?;
    if let Some(text) = max_cost {
        let cost = crate::import::parse_cost(text)
            .map_err(|m| CliError::msg(Exit::Usage, format!("--max-cost: {m}")))?;
        store
            .set_campaign_max_cost(c.id, Some(cost))
            .await
            .context("setting the campaign's max_cost")?;
        outln!("campaign {:?}: max_cost set to {cost:.2}", c.name);
    }
    let spend = store
        .spend_state(c.id)
        .await
        .context("reading the campaign's spending")?;
    let estimate = settings.campaign_defaults.cost_estimate;
    if let Some(reason) = spend.and_then(|s| crate::engine::limits::cap_reached(&s, estimate, true))
    {
        return Err(CliError::msg(
            Exit::Failure,
            format!(
                "campaign {:?} not resumed: {reason}; raise the cap with `dialerd campaigns resume {} --max-cost AMOUNT`",
                c.name, c.name
            ),
        ));
    }
    change(store, name, CampaignStatus::Active).await
}

/// Why moving from `current` to `target` is refused, if it is.
fn refusal(current: Option<CampaignStatus>, target: CampaignStatus) -> Option<&'static str> {
    use CampaignStatus::*;
    match (current?, target) {
        (Cancelled, Active) => Some(
            "is cancelled and cannot be resumed: its open contacts were cancelled (import them into a new campaign to call them)",
        ),
        (Completed, Active) => Some(
            "is completed: every contact is finished, so there is nothing to resume (importing new contacts reopens it)",
        ),
        (Cancelled, Paused) => Some("is cancelled; there is nothing to pause"),
        (Completed, Paused) => Some("is completed; there is nothing to pause"),
        _ => None,
    }
}

/// Column `col` as a table cell: `-` when NULL.
fn text(r: &Record, col: &str) -> String {
    r.text(col).unwrap_or_else(|| "-".into())
}
