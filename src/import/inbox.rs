//! The inbox: a directory watched for `*.csv` campaigns. The daemon calls
//! [`InboxWatcher::scan_once`] every `inbox.poll_interval_secs`; one call is
//! one step, so tests drive it scan by scan with a manual clock.
//!
//! A file is taken once it is completely written: its size and mtime (and
//! its sidecar's, if any) unchanged between two scans at least `settle`
//! apart by the store's clock. Hidden files (`.name.csv`, the temporary
//! names of most uploaders) are ignored. A taken file is imported into the
//! campaign its sidecar names (default: the file stem) and moved with its
//! sidecar to `done/`; a file whose data or sidecar is unusable goes to
//! `failed/` with `NAME.errors.txt` saying why. A name already taken in
//! `done/` or `failed/` gets a timestamp suffix. Dropping the same file again
//! adds nothing (its sha256 was fully imported) and it still moves to `done/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::{ImportError, ImportReport, ImportRequest, SqliteSelect, import_file, sidecar};
use crate::config::CampaignDefaults;
use crate::store::Store;

/// What happened to one inbox file in a scan.
#[derive(Debug)]
pub enum InboxOutcome {
    /// Imported (or already imported before) and moved to `done/`.
    Imported {
        /// The file as found.
        file: PathBuf,
        /// Where it was moved.
        moved_to: PathBuf,
        /// The counts.
        report: Box<ImportReport>,
    },
    /// Unusable; moved to `failed/` beside an `.errors.txt` report.
    Failed {
        /// The file as found.
        file: PathBuf,
        /// Where it was moved.
        moved_to: PathBuf,
        /// Why.
        error: String,
    },
    /// Left in place (the database failed, or a move did not work); the
    /// file settles again and is retried.
    Deferred {
        /// The file.
        file: PathBuf,
        /// Why.
        error: String,
    },
}

/// What a file looked like at a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    size: u64,
    mtime: Option<SystemTime>,
    sidecar: Option<(u64, Option<SystemTime>)>,
}

/// Remembers what each inbox file looked like between scans.
#[derive(Debug)]
pub struct InboxWatcher {
    dir: PathBuf,
    settle: Duration,
    seen: HashMap<PathBuf, (Signature, DateTime<Utc>)>,
}

impl InboxWatcher {
    /// A watcher of `dir` taking files unchanged for at least `settle`.
    pub fn new(dir: impl Into<PathBuf>, settle: Duration) -> Self {
        Self {
            dir: dir.into(),
            settle,
            seen: HashMap::new(),
        }
    }

    /// The watched directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One scan: notes every `*.csv` file, and imports those that have
    /// settled. Fails only when the directory itself cannot be read.
    pub async fn scan_once(
        &mut self,
        store: &Store,
        defaults: &CampaignDefaults,
    ) -> anyhow::Result<Vec<InboxOutcome>> {
        let now = store.clock().now();
        let settle = chrono::Duration::from_std(self.settle).unwrap_or(chrono::TimeDelta::MAX);
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            anyhow::anyhow!("cannot read inbox directory {}: {e}", self.dir.display())
        })?;
        let mut present = HashMap::new();
        let mut ready = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_candidate(&path) {
                continue;
            }
            // A file that vanished since the listing is simply not there.
            let Some(sig) = signature(&path) else {
                continue;
            };
            let since = match self.seen.get(&path) {
                Some((old, since)) if *old == sig => {
                    if now - *since >= settle {
                        ready.push(path.clone());
                    }
                    *since
                }
                // New or changed: this scan is its first observation.
                _ => now,
            };
            present.insert(path, (sig, since));
        }
        self.seen = present;
        ready.sort();
        let mut out = Vec::new();
        for path in ready {
            self.seen.remove(&path);
            if let Some(o) = take(&self.dir, &path, store, defaults, now).await {
                out.push(o);
            }
        }
        Ok(out)
    }
}

fn is_candidate(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.')
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        && path.is_file()
}

fn signature(path: &Path) -> Option<Signature> {
    let meta = std::fs::metadata(path).ok()?;
    let sidecar = std::fs::metadata(path.with_extension("toml"))
        .ok()
        .map(|m| (m.len(), m.modified().ok()));
    Some(Signature {
        size: meta.len(),
        mtime: meta.modified().ok(),
        sidecar,
    })
}

/// Imports one settled file and moves it; `None` when it vanished.
async fn take(
    dir: &Path,
    path: &Path,
    store: &Store,
    defaults: &CampaignDefaults,
    now: DateTime<Utc>,
) -> Option<InboxOutcome> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    let side_path = path.with_extension("toml");
    let sidecar = match std::fs::read_to_string(&side_path) {
        Ok(text) => sidecar::parse(&text)
            .map(Some)
            .map_err(|m| format!("{}: {m}", side_path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", side_path.display())),
    };
    let sidecar = match sidecar {
        Ok(s) => s.unwrap_or_default(),
        Err(error) => return Some(fail(dir, path, &stem, now, error, None)),
    };
    let req = ImportRequest {
        path: path.to_path_buf(),
        campaign: sidecar.campaign.clone().unwrap_or_else(|| stem.clone()),
        overrides: sidecar.overrides,
        select: SqliteSelect::Auto,
        dry_run: false,
    };
    match import_file(store, defaults, &req).await {
        Ok(report) => Some(match move_out(dir, "done", path, &stem, now) {
            Ok(moved_to) => InboxOutcome::Imported {
                file: path.to_path_buf(),
                moved_to,
                report: Box::new(report),
            },
            Err(e) => InboxOutcome::Deferred {
                file: path.to_path_buf(),
                error: format!("imported, but cannot move it to done/: {e}"),
            },
        }),
        Err(ImportError::NoInput(_)) if !path.exists() => None,
        Err(ImportError::Other(e)) => Some(InboxOutcome::Deferred {
            file: path.to_path_buf(),
            error: format!("{e:#}"),
        }),
        Err(ImportError::DataErr { message, report }) => {
            Some(fail(dir, path, &stem, now, message, report))
        }
        Err(e) => Some(fail(dir, path, &stem, now, e.to_string(), None)),
    }
}

fn fail(
    dir: &Path,
    path: &Path,
    stem: &str,
    now: DateTime<Utc>,
    error: String,
    report: Option<Box<ImportReport>>,
) -> InboxOutcome {
    let moved_to = match move_out(dir, "failed", path, stem, now) {
        Ok(p) => p,
        Err(e) => {
            return InboxOutcome::Deferred {
                file: path.to_path_buf(),
                error: format!("{error}; and cannot move it to failed/: {e}"),
            };
        }
    };
    let mut text = format!(
        "dialerd could not import {} ({}):\n{error}\n",
        path.display(),
        crate::clock::to_db_text(now)
    );
    if let Some(r) = report {
        text.push('\n');
        text.push_str(&format!(
            "{} rows read, {} rejected:\n",
            r.counts.total, r.counts.rejected
        ));
        text.push_str(&r.render_rejects(super::MAX_REPORTED_REJECTS));
    }
    let errors = moved_to.with_extension("errors.txt");
    if let Err(e) = std::fs::write(&errors, text) {
        tracing::warn!(file = %errors.display(), error = %e, "cannot write the inbox error report");
    }
    InboxOutcome::Failed {
        file: path.to_path_buf(),
        moved_to,
        error,
    }
}

/// Moves `path` (and its sidecar) into `dir/sub/`, choosing a stem that
/// collides with nothing there; returns the file's new path.
fn move_out(
    dir: &Path,
    sub: &str,
    path: &Path,
    stem: &str,
    now: DateTime<Utc>,
) -> std::io::Result<PathBuf> {
    let target = dir.join(sub);
    std::fs::create_dir_all(&target)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let free = |s: &str| {
        [ext.as_str(), "toml", "errors.txt"]
            .iter()
            .all(|e| !target.join(format!("{s}.{e}")).exists())
    };
    let chosen = std::iter::once(stem.to_string())
        .chain(std::iter::once(format!("{stem}.{stamp}")))
        .chain((2..).map(|n| format!("{stem}.{stamp}-{n}")))
        .find(|s| free(s))
        .unwrap_or_else(|| stem.to_string());
    let dest = target.join(format!("{chosen}.{ext}"));
    std::fs::rename(path, &dest)?;
    let side = path.with_extension("toml");
    if side.exists() {
        std::fs::rename(&side, target.join(format!("{chosen}.toml")))?;
    }
    Ok(dest)
}
