//! `dialerd status [--json]`: every campaign's progress from the
//! `campaign_progress` view (contacts per state, calls per outcome, contacts
//! held back and why), whether a daemon is running (from its heartbeat)
//! and whether dispatching is paused for everyone. Also home of the small
//! text-table helper the other report commands share.

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::json;

use crate::config::Settings;
use crate::error::CliError;
use crate::store::{DaemonRow, Record, Store};

/// Contact-state columns of the first table: (view column, heading).
const CONTACT_COLUMNS: &[(&str, &str)] = &[
    ("contacts", "CONTACTS"),
    ("pending", "PENDING"),
    ("in_progress", "IN PROGRESS"),
    ("retry_wait", "RETRY WAIT"),
    ("done", "DONE"),
    ("exhausted", "EXHAUSTED"),
    ("suppressed", "SUPPRESSED"),
    ("invalid", "INVALID"),
    ("cancelled", "CANCELLED"),
];

/// Call columns of the second table: (view column, heading).
const CALL_COLUMNS: &[(&str, &str)] = &[
    ("calls_placed", "CALLS PLACED"),
    ("outcome_completed", "COMPLETED"),
    ("outcome_no_answer", "NO ANSWER"),
    ("outcome_busy", "BUSY"),
    ("outcome_failed", "FAILED"),
    ("outcome_voicemail", "VOICEMAIL"),
    ("outcome_cancelled", "CANCELLED"),
    ("outcome_unknown", "UNKNOWN"),
    ("uncertain", "UNCERTAIN"),
    ("awaiting_outcome", "AWAITING OUTCOME"),
];

/// Contacts held back and why, third table: (view column, heading). The
/// DNC count is the suppressed contacts; the others wait (pending or
/// retry_wait) with that `hold_reason`.
const HELD_COLUMNS: &[(&str, &str)] = &[
    ("held", "HELD BACK"),
    ("held_dnc", "DNC"),
    ("held_window", "OUTSIDE WINDOW"),
    ("held_quiet_hours", "QUIET HOURS"),
    ("held_region", "REGION HOURS"),
    ("held_cap", "PER-NUMBER CAP"),
    ("held_live_attempt", "LIVE ATTEMPT ELSEWHERE"),
];

/// Prints the progress of every campaign, the daemon's state and any global
/// dispatch pause; as one JSON object with `json`.
pub async fn run(store: &Store, settings: &Settings, json: bool) -> Result<(), CliError> {
    let campaigns = store
        .reports()
        .progress()
        .await
        .context("reading campaign_progress")?;
    let row = store.daemon_row().await.context("reading the daemon row")?;
    let window = 3 * settings.daemon().heartbeat.as_secs().max(1);
    let mut daemon = DaemonState::of(
        &row,
        store.clock().now(),
        i64::try_from(window).unwrap_or(i64::MAX),
    );
    // Silent, yet its lock is held: alive, but unable to write its heartbeat.
    if let DaemonState::Silent { at, age } = &daemon
        && crate::daemon::InstanceLock::is_held(&settings.database_path)
    {
        daemon = DaemonState::Stuck {
            at: at.clone(),
            age: *age,
        };
    }
    let paused = row
        .dispatch_paused
        .as_deref()
        .filter(|p| !p.trim().is_empty());
    let webhooks = store
        .webhook_summary()
        .await
        .context("reading webhook_outbox")?;
    if json {
        let out = json!({
            "daemon": daemon_json(&row, &daemon),
            "dispatch_paused": paused,
            "campaigns": campaigns,
            "webhooks": webhooks,
        });
        outln!("{out}");
        return Ok(());
    }
    outln!("{}", daemon.line(&row));
    if let Some(reason) = paused {
        outln!(
            "DISPATCH PAUSED: {} — fix the key, then run: dialerd dispatch resume",
            clean(reason)
        );
    }
    if let Some(line) = webhooks_line(&webhooks, settings.webhooks.is_some()) {
        outln!("{line}");
    }
    outln!();
    if campaigns.is_empty() {
        outln!("no campaigns yet (import one with: dialerd import FILE --campaign NAME)");
        return Ok(());
    }
    out!(
        "{}",
        progress_table(&campaigns, CONTACT_COLUMNS, None).render()
    );
    outln!();
    out!(
        "{}",
        progress_table(&campaigns, CALL_COLUMNS, Some("total_cost")).render()
    );
    outln!();
    out!(
        "{}",
        progress_table(&campaigns, HELD_COLUMNS, None).render()
    );
    Ok(())
}

/// The outbox in one line, when webhooks are on or events are left in it.
fn webhooks_line(w: &crate::store::WebhookSummary, on: bool) -> Option<String> {
    let waiting = w.pending + w.retrying;
    if !on && waiting + w.gave_up == 0 {
        return None;
    }
    let mut line = format!(
        "webhooks{}: {} delivered, {} pending, {} retrying, {} given up",
        if on { "" } else { " (off)" },
        w.delivered,
        w.pending,
        w.retrying,
        w.gave_up
    );
    if let Some(t) = w.oldest_undelivered_at.as_deref().filter(|_| waiting > 0) {
        line.push_str(&format!("; oldest waiting since {}", clean(t)));
    }
    if let Some(e) = w.last_error.as_deref().filter(|_| waiting + w.gave_up > 0) {
        line.push_str(&format!("; last error: {}", clean(e)));
    }
    if w.gave_up > 0 {
        line.push_str(
            " (see the webhook_backlog view; requeue with: dialerd webhooks retry --all)",
        );
    }
    Some(line)
}

/// One row per campaign (name, status, `columns`, optionally a cost) and a totals row.
fn progress_table(rows: &[Record], columns: &[(&str, &str)], cost: Option<&str>) -> Table {
    let mut headings = vec!["CAMPAIGN", "STATUS"];
    headings.extend(columns.iter().map(|(_, h)| *h));
    headings.extend(cost.map(|_| "COST"));
    let mut table = Table::new(&headings);
    let mut totals = vec![0i64; columns.len()];
    let mut total_cost = 0.0;
    for r in rows {
        let mut cells = vec![
            r.text("campaign").unwrap_or_default(),
            status_cell(r.text("status"), r.text("status_reason")),
        ];
        for (i, (col, _)) in columns.iter().enumerate() {
            totals[i] = totals[i].saturating_add(r.int(col));
            cells.push(r.int(col).to_string());
        }
        if let Some(col) = cost {
            total_cost += r.float(col);
            cells.push(money(r.float(col)));
        }
        table.push(cells);
    }
    let mut cells = vec!["TOTAL".to_string(), String::new()];
    cells.extend(totals.iter().map(i64::to_string));
    if cost.is_some() {
        cells.push(money(total_cost));
    }
    table.push(cells);
    table
}

/// Whether a daemon is running on this database, judged by its heartbeat.
#[derive(Debug, Clone, PartialEq)]
enum DaemonState {
    /// A heartbeat within the last three heartbeat periods.
    Running { age: i64 },
    /// The last daemon recorded a clean stop.
    Stopped { at: String },
    /// Heartbeats stopped without a clean stop (killed, crashed, host down).
    Silent { at: String, age: i64 },
    /// No readable heartbeat: no daemon ever ran on this database.
    Never,
    /// Heartbeats stopped while a daemon still holds the database's lock: it
    /// runs but cannot write the database, and dispatches nothing.
    Stuck { at: String, age: i64 },
}

impl DaemonState {
    /// Judges `row` at `now`; a heartbeat older than `window` seconds is stale.
    fn of(row: &DaemonRow, now: DateTime<Utc>, window: i64) -> Self {
        let heartbeat = row.heartbeat();
        let stopped = row
            .stopped_at
            .as_deref()
            .and_then(crate::clock::from_db_text);
        if let Some(at) = stopped.filter(|s| heartbeat.is_none_or(|h| *s >= h)) {
            return Self::Stopped {
                at: crate::clock::to_db_text(at),
            };
        }
        match heartbeat {
            // A heartbeat slightly in the future (clocks a little apart) counts as fresh.
            Some(h) if (now - h).num_seconds() < window => Self::Running {
                age: (now - h).num_seconds().max(0),
            },
            Some(h) => Self::Silent {
                at: crate::clock::to_db_text(h),
                age: (now - h).num_seconds(),
            },
            None => Self::Never,
        }
    }

    /// The `daemon: ...` line.
    fn line(&self, row: &DaemonRow) -> String {
        let whose = match (row.pid, row.host.as_deref()) {
            (Some(pid), Some(host)) => format!("pid {pid} on {}, ", clean(host)),
            (Some(pid), None) => format!("pid {pid}, "),
            _ => String::new(),
        };
        match self {
            Self::Running { age } => {
                format!("daemon: running ({whose}last seen {} ago)", duration(*age))
            }
            Self::Stopped { at } => format!("daemon: not running (stopped cleanly at {at})"),
            Self::Silent { at, age } => format!(
                "daemon: not running ({whose}last seen {} ago at {at}; it did not stop cleanly)",
                duration(*age)
            ),
            Self::Never => "daemon: not running (no heartbeat recorded)".to_string(),
            Self::Stuck { at, age } => format!(
                "daemon: running ({whose}holding the database lock) but NOT WRITING THE DATABASE: \
                 no heartbeat for {} (since {at}); it dispatches nothing until it can write \
                 (full disk? read-only? another writer?); its log (journalctl -u dialerd) says why",
                duration(*age)
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Running { .. } => "running",
            Self::Stopped { .. } => "stopped",
            Self::Silent { .. } => "not_running",
            Self::Never => "no_heartbeat",
            Self::Stuck { .. } => "not_writing",
        }
    }
}

fn daemon_json(row: &DaemonRow, state: &DaemonState) -> serde_json::Value {
    let age = match state {
        DaemonState::Running { age }
        | DaemonState::Silent { age, .. }
        | DaemonState::Stuck { age, .. } => Some(*age),
        _ => None,
    };
    json!({
        "state": state.name(),
        "running": matches!(state, DaemonState::Running { .. }),
        "last_seen_secs_ago": age,
        "pid": row.pid,
        "host": row.host,
        "version": row.version,
        "started_at": row.started_at,
        "heartbeat_at": row.heartbeat_at,
        "stopped_at": row.stopped_at,
        "status_line": row.status_line,
    })
}

/// `3 s`, `5 min`, `2 h`, `3 d`.
pub(super) fn duration(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 2 * 3600 => format!("{} min", s / 60),
        s if s < 2 * 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A status with its reason: `paused (by operator)`.
pub(super) fn status_cell(status: Option<String>, reason: Option<String>) -> String {
    let status = status.unwrap_or_else(|| "?".into());
    match reason.filter(|r| !r.trim().is_empty()) {
        Some(r) => format!("{status} ({r})"),
        None => status,
    }
}

/// A cost with at most four decimals and no trailing zeros.
pub(super) fn money(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// Text from the database made safe for one table cell on a terminal:
/// control characters (line breaks, escape sequences) become spaces.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A text table: columns separated by two spaces, numeric columns (every
/// cell a number, empty or `-`) right-aligned. Headings all empty: no header line.
#[derive(Debug, Clone, Default)]
pub(super) struct Table {
    headings: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub(super) fn new(headings: &[&str]) -> Self {
        Self {
            headings: headings.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are empty, cells are [`clean`]ed.
    pub(super) fn push(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    /// The table as lines of text, each ending in a newline.
    pub(super) fn render(&self) -> String {
        let ncols = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headings.len()])
            .max()
            .unwrap_or(0);
        let width = |i: usize| {
            self.rows
                .iter()
                .map(|r| cell(r, i))
                .chain([cell(&self.headings, i)])
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..ncols).map(width).collect();
        let numeric: Vec<bool> = (0..ncols)
            .map(|i| {
                let mut cells = self
                    .rows
                    .iter()
                    .map(|r| cell(r, i))
                    .filter(|c| !c.is_empty() && *c != "-")
                    .peekable();
                // `+1415...` parses as a number but reads as a phone number.
                cells.peek().is_some()
                    && cells.all(|c| !c.starts_with('+') && c.parse::<f64>().is_ok())
            })
            .collect();
        let mut out = String::new();
        let header = self
            .headings
            .iter()
            .any(|h| !h.is_empty())
            .then_some(&self.headings);
        for row in header.into_iter().chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cell(row, i);
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(w - c.chars().count());
                if numeric[i] {
                    line.push_str(&pad);
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    line.push_str(&pad);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Cell `i` of `row`, empty when the row is short.
fn cell(row: &[String], i: usize) -> &str {
    row.get(i).map_or("", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn row(heartbeat: Option<&str>, stopped: Option<&str>) -> DaemonRow {
        DaemonRow {
            pid: Some(42),
            host: Some("box".into()),
            version: None,
            started_at: None,
            heartbeat_at: heartbeat.map(Into::into),
            stopped_at: stopped.map(Into::into),
            dispatch_paused: None,
            status_line: None,
        }
    }

    #[test]
    fn a_table_aligns_text_left_and_numbers_right() {
        let mut t = Table::new(&["NAME", "N"]);
        t.push(vec!["a".into(), "1".into()]);
        t.push(vec!["long name".into(), "100".into()]);
        assert_eq!(
            t.render(),
            "NAME         N\na            1\nlong name  100\n"
        );
    }

    #[test]
    fn control_characters_from_the_database_cannot_break_a_table_line() {
        let mut t = Table::new(&["", ""]);
        t.push(vec!["a\nb\x1b[31m".into(), "x".into()]);
        assert_eq!(t.render(), "a b [31m  x\n");
    }

    #[test]
    fn the_daemon_counts_as_running_only_while_its_heartbeat_is_fresh() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let fresh = DaemonState::of(&row(Some("2026-01-01T11:59:57Z"), None), now, 15);
        assert_eq!(fresh, DaemonState::Running { age: 3 });
        assert_eq!(
            fresh.line(&row(None, None)),
            "daemon: running (pid 42 on box, last seen 3 s ago)"
        );
        let stale = DaemonState::of(&row(Some("2026-01-01T11:50:00Z"), None), now, 15);
        assert!(
            matches!(stale, DaemonState::Silent { age: 600, .. }),
            "{stale:?}"
        );
        let stopped = DaemonState::of(
            &row(Some("2026-01-01T11:59:59Z"), Some("2026-01-01T11:59:59Z")),
            now,
            15,
        );
        assert!(
            stopped
                .line(&row(None, None))
                .contains("stopped cleanly at 2026-01-01T11:59:59Z")
        );
        assert_eq!(
            DaemonState::of(&row(None, None), now, 15),
            DaemonState::Never
        );
        assert_eq!(
            DaemonState::of(&row(Some("garbage"), None), now, 15),
            DaemonState::Never
        );
    }

    #[test]
    fn costs_print_without_trailing_zeros() {
        assert_eq!(money(1.5), "1.5");
        assert_eq!(money(0.0), "0");
        assert_eq!(money(0.01234), "0.0123");
    }
}
