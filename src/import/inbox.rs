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
//!
//! The watcher creates the inbox, `done/` and `failed/` (0700) when they are
//! missing. Only regular files are read: a `*.csv` name that is a symlink, a
//! FIFO or anything else is moved to `failed/` unread (checked again by an
//! `O_NOFOLLOW` open just before the import; keep the inbox writable by the
//! daemon's user alone, as the systemd unit does, so nobody can swap a file
//! for a link between that check and the import's own open),
//! and nothing is ever written through a symlink: reports are created new
//! (`O_EXCL`, 0600), and a `done/` or `failed/` that is not a real
//! directory stops the scan.

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
        ensure_dirs(&self.dir)?;
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            anyhow::anyhow!("cannot read inbox directory {}: {e}", self.dir.display())
        })?;
        let mut present = HashMap::new();
        let mut ready = Vec::new();
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !is_candidate(&path) {
                continue;
            }
            // The entry itself, not what a symlink points at.
            match entry.file_type() {
                Ok(t) if t.is_file() => {}
                Ok(t) => {
                    let what = kind_of(&t);
                    let error = format!(
                        "{} is {what}, not a regular file; refused without reading it",
                        path.display()
                    );
                    out.extend(refuse(&self.dir, &path, now, error));
                    continue;
                }
                Err(_) => continue,
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
}

/// Creates the inbox and its `done/` and `failed/` (owner only) when
/// missing, and refuses a `done/` or `failed/` that is not a directory of
/// its own (a symlink would send files, and reports, elsewhere).
pub fn ensure_dirs(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for d in [dir.to_path_buf(), dir.join("done"), dir.join("failed")] {
        match std::fs::symlink_metadata(&d) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) if d != dir => anyhow::bail!(
                "{} is not a directory (a symlink?); the inbox refuses to move files through it",
                d.display()
            ),
            _ => {}
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&d)
            .map_err(|e| anyhow::anyhow!("cannot create inbox directory {}: {e}", d.display()))?;
    }
    Ok(())
}

/// What a non-regular directory entry is, for the refusal's reason.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

/// Opens `path` for reading only if it is a regular file itself: a symlink
/// fails (`O_NOFOLLOW`), and a FIFO is neither waited on (`O_NONBLOCK`) nor
/// read.
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Moves a refused entry to `failed/` with its report; `None` when it vanished.
fn refuse(dir: &Path, path: &Path, now: DateTime<Utc>, error: String) -> Option<InboxOutcome> {
    let stem = path.file_stem()?.to_string_lossy().into_owned();
    std::fs::symlink_metadata(path).ok()?;
    Some(fail(dir, path, &stem, now, error, None))
}

fn signature(path: &Path) -> Option<Signature> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let sidecar = std::fs::symlink_metadata(path.with_extension("toml"))
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
    // Checked again at the last moment: the entry may have been swapped.
    match open_regular(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            let error = format!(
                "{} is not a regular file ({e}); refused without reading it",
                path.display()
            );
            return Some(fail(dir, path, &stem, now, error, None));
        }
    }
    let side_path = path.with_extension("toml");
    let sidecar = match read_sidecar(&side_path) {
        Ok(Some(text)) => sidecar::parse(&text)
            .map(Some)
            .map_err(|m| format!("{}: {m}", side_path.display())),
        Ok(None) => Ok(None),
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

/// The sidecar's text, `None` when there is none; a sidecar that is not a
/// regular file is an error, never read.
fn read_sidecar(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut file = match open_regular(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Writes a new file readable by the daemon's user only, never through a
/// symlink: `O_EXCL` refuses any existing name, a dangling link included.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask may only have taken bits away; make it exactly 0600.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
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
    if let Err(e) = write_private(&errors, &text) {
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
    if !std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
        return Err(std::io::Error::other(format!(
            "{} is not a directory",
            target.display()
        )));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let free = |s: &str| {
        [ext.as_str(), "toml", "errors.txt"]
            .iter()
            // symlink_metadata: a dangling link counts as taken.
            .all(|e| std::fs::symlink_metadata(target.join(format!("{s}.{e}"))).is_err())
    };
    let chosen = std::iter::once(stem.to_string())
        .chain(std::iter::once(format!("{stem}.{stamp}")))
        .chain((2..).map(|n| format!("{stem}.{stamp}-{n}")))
        .find(|s| free(s))
        .unwrap_or_else(|| stem.to_string());
    let dest = target.join(format!("{chosen}.{ext}"));
    std::fs::rename(path, &dest)?;
    let side = path.with_extension("toml");
    if std::fs::symlink_metadata(&side).is_ok() {
        std::fs::rename(&side, target.join(format!("{chosen}.toml")))?;
    }
    Ok(dest)
}
