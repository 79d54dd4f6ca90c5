//! The single-instance lock: one daemon per database, whatever path reaches it.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An exclusive lock on the database file's identity, held for the daemon's
/// life: the kernel releases it when the process dies, so a restart after
/// `kill -9` is never blocked, and a second daemon on the same database
/// refuses to start whatever path reaches it (a symlink, `..`, a hard link
/// in the same directory).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    _identity: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock for database `db`, or explains who holds it. Two lock
    /// files beside the real database file, both `flock`ed: `<canonical
    /// path>.lock`, which names the holder's pid, and `.dialerd-<dev>-<inode>.lock`,
    /// keyed by the file's identity. The database file itself is never held
    /// open here: closing a second descriptor of it would drop SQLite's own
    /// `fcntl` locks.
    pub fn acquire(db: &Path) -> anyhow::Result<Self> {
        // Created empty if missing (SQLite takes an empty file as a new
        // database), so it has an identity before the store opens it.
        // 0600 whatever the umask: the database (and the -wal and -shm
        // files SQLite derives from its mode) is private.
        drop(
            std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true),
                0o600,
            )
            .open(db)
            .with_context(|| format!("cannot open database {}", db.display()))?,
        );
        let canonical = std::fs::canonicalize(db)
            .with_context(|| format!("cannot resolve database path {}", db.display()))?;
        let id = std::fs::metadata(&canonical)
            .with_context(|| format!("cannot read database {}", canonical.display()))?;
        let mut name = canonical.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let identity = canonical.parent().unwrap_or(Path::new("/")).join(format!(
            ".dialerd-{}-{}.lock",
            id.dev(),
            id.ino()
        ));
        let file = open_lock_file(&path)?;
        let identity_file = open_lock_file(&identity)?;
        let locked = |f: &File| matches!(fs4::fs_std::FileExt::try_lock_exclusive(f), Ok(true));
        if !locked(&identity_file) || !locked(&file) {
            // The identity file names the holder whatever path it used.
            let holder = std::fs::read_to_string(&identity)
                .ok()
                .filter(|h| !h.trim().is_empty())
                .or_else(|| std::fs::read_to_string(&path).ok())
                .unwrap_or_default();
            anyhow::bail!(
                "another dialerd is already running on database {} (the file {}; lock {} held{}); refusing to start a second one",
                db.display(),
                canonical.display(),
                path.display(),
                if holder.trim().is_empty() {
                    String::new()
                } else {
                    format!(" by pid {}", holder.trim())
                }
            );
        }
        let _ = std::fs::write(&path, std::process::id().to_string());
        let _ = std::fs::write(&identity, std::process::id().to_string());
        Ok(Self {
            _file: file,
            _identity: identity_file,
            path,
        })
    }

    /// Whether a process holds the lock of database `db` now (without
    /// creating the lock file, and without taking the lock for long).
    pub fn is_held(db: &Path) -> bool {
        // The lock sits beside the real file, whatever path reaches it.
        let Ok(db) = std::fs::canonicalize(db) else {
            return false;
        };
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let Ok(file) = File::open(PathBuf::from(name)) else {
            return false;
        };
        match fs4::fs_std::FileExt::try_lock_shared(&file) {
            Ok(true) => {
                let _ = fs4::fs_std::FileExt::unlock(&file);
                false
            }
            Ok(false) | Err(_) => true,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating) a lock file.
fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
        0o600,
    )
    .open(path)
    .with_context(|| format!("cannot open lock file {}", path.display()))
}
