//! The SQLite store: opening the database (pragmas, embedded migrations) and
//! one module per table family holding all of its SQL. Every state change is
//! one statement or one short transaction; none is held across an HTTP call.

mod attempts;
mod bulk;
mod campaigns;
mod checkpoint;
mod compliance;
mod contacts;
mod daemon;
mod dial;
mod dnc;
mod guard_conn;
pub use guard_conn::GuardRow;
mod imports;
mod plan;
mod pools;
mod report;
mod webhooks;

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool, migrate::MigrateError};

/// The condition of an attempt still waiting for its outcome, with the
/// column prefix given (`""` or `"a."`). The partial index
/// `attempts_outstanding` has exactly this condition, written as an OR chain
/// (cheap for SQLite to evaluate on every write, see migration 5), and SQLite
/// uses the index only for a query that repeats it.
macro_rules! live_attempt {
    ($p:literal) => {
        concat!(
            $p,
            "outcome IS NULL AND (",
            $p,
            "state = 'sending' OR ",
            $p,
            "state = 'accepted' OR ",
            $p,
            "state = 'uncertain')"
        )
    };
}
pub(crate) use live_attempt;

pub use attempts::*;
pub use bulk::{BatchWritten, BulkWriter, ImportBatch};
pub use campaigns::*;
pub use checkpoint::Checkpointer;
pub use compliance::*;
pub use contacts::*;
pub use daemon::*;
pub use dial::*;
pub use dnc::*;
pub use imports::*;
pub use plan::*;
pub use pools::*;
pub use report::*;
pub use webhooks::*;

use crate::clock::{SharedClock, to_db_text};

/// The migrations compiled into the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
    clock: SharedClock,
    /// Taken by every write transaction of this process, so writers queue
    /// here (in order, without sleeping) instead of in SQLite's busy handler,
    /// whose back-off sleeps for milliseconds at a time.
    write_turn: Arc<tokio::sync::Mutex<()>>,
    /// How the pool's connections were opened, for a probe outside the pool.
    connect: SqliteConnectOptions,
    /// The dial guard's own read-only connection (`None`: tries read it
    /// through the pool).
    guard: Option<Arc<guard_conn::GuardConn>>,
}

/// A write transaction (`BEGIN IMMEDIATE`) holding this process's write turn
/// until it is committed or dropped (rolled back).
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    /// Commits, then gives the write turn to the next writer.
    pub(crate) async fn commit(self) -> sqlx::Result<()> {
        self.tx.commit().await
    }
}

impl Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

/// The database could not be opened or brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be created or opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The database path.
        path: String,
        /// The SQLite error.
        source: sqlx::Error,
    },
    /// The database was written by a newer dialerd.
    #[error(
        "database {path} was written by a newer dialerd (schema version {found}; this binary knows up to {known}); upgrade dialerd or use another database"
    )]
    TooNew {
        /// The database path.
        path: String,
        /// The newest version recorded in the database.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A migration failed.
    #[error("cannot migrate database {path}: {source}")]
    Migrate {
        /// The database path.
        path: String,
        /// The migration error.
        source: MigrateError,
    },
}

/// Indexes and triggers on `contacts` and `attempts` that dialerd's own
/// migrations created (the rebuild of migration 5 makes its own again, or
/// drops them on purpose).
const OWN_OBJECTS: &[&str] = &[
    "contacts_due",
    "contacts_by_number",
    "contacts_unvalidated",
    "contacts_due_time_on_insert",
    "contacts_due_time_on_update",
    "attempts_by_call_log",
    "attempts_by_request",
    "attempts_outstanding",
    "attempts_by_contact",
    "attempts_by_campaign",
    "attempts_by_number",
];

/// The indexes and triggers an operator added to `contacts` or `attempts`
/// (name and SQL), when migration 5 is still to run: it rebuilds both tables,
/// and SQLite drops a table's indexes and triggers with it.
async fn operators_objects(pool: &SqlitePool) -> sqlx::Result<Vec<(String, String)>> {
    let migrated: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_one(pool)
    .await?;
    if migrated == 0 {
        return Ok(Vec::new());
    }
    let rebuilt: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version >= 5")
            .fetch_one(pool)
            .await?;
    if rebuilt > 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') \
         AND tbl_name IN ('contacts', 'attempts') AND sql IS NOT NULL ORDER BY type, name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(name, _)| !OWN_OBJECTS.contains(&name.as_str()))
        .collect())
}

impl Store {
    /// Opens (creating if needed) the database at `path` in WAL mode with
    /// `synchronous=FULL`, foreign keys on and a busy timeout, and applies
    /// any pending migrations.
    pub async fn open(path: &Path, clock: SharedClock) -> Result<Self, OpenError> {
        let shown = path.display().to_string();
        let io = |e: std::io::Error| OpenError::Open {
            path: shown.clone(),
            source: sqlx::Error::Io(e),
        };
        create_private(path).map_err(io)?;
        // Held until the migrations are done: see `migration_lock`.
        let _migrating = migration_lock(path).await.map_err(io)?;
        let opts = connect_options(path).map_err(|source| OpenError::Open {
            path: shown.clone(),
            source,
        })?;
        let pool = pool_options()
            .connect_with(opts.clone())
            .await
            .map_err(|source| OpenError::Open {
                path: shown.clone(),
                source,
            })?;
        let keep = operators_objects(&pool)
            .await
            .map_err(|e| OpenError::Migrate {
                path: shown.clone(),
                source: MigrateError::Execute(e),
            })?;
        note_rebuild(&pool, &keep, &to_db_text(clock.now())).await;
        migrate(&pool, shown).await?;
        let store = Self {
            pool,
            clock,
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
            connect: opts,
            // After the migrations: its statement reads migration 12's table.
            guard: guard_conn::GuardConn::open(path).map(Arc::new),
        };
        store.recreate(keep).await;
        Ok(store)
    }

    /// Creates again the operator's indexes and triggers that a rebuild of
    /// their table dropped, in one write transaction (which also makes the
    /// connection read the rebuilt schema: another of the pool's connections
    /// may still hold the old one, with these objects in it). One that cannot
    /// be created is logged, never fatal; each outcome is an `events` row of
    /// kind `migration`.
    async fn recreate(&self, objects: Vec<(String, String)>) {
        if objects.is_empty() {
            return;
        }
        let result: sqlx::Result<()> = async {
            let mut tx = self.begin_write().await?;
            let now = self.now_text();
            for (name, sql) in objects {
                let exists: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_schema WHERE name = ?")
                        .bind(&name)
                        .fetch_one(&mut *tx)
                        .await?;
                if exists > 0 {
                    continue;
                }
                // A failed statement leaves the transaction open and usable.
                let detail = match sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(&mut *tx)
                    .await
                {
                    Ok(_) => {
                        tracing::info!(%name, "recreated an index or trigger after rebuilding its table");
                        format!("recreated {name} after rebuilding its table")
                    }
                    Err(e) => {
                        tracing::warn!(%name, error = %e, %sql, "could not recreate an index or trigger after rebuilding its table");
                        format!("could not recreate {name} after rebuilding its table ({e}); its SQL: {sql}")
                    }
                };
                daemon::insert_event(&mut tx, &now, "migration", None, None, None, Some(&detail)).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not recreate the indexes and triggers a migration dropped; the events table has their SQL");
        }
    }

    /// Begins a write transaction once no other write transaction of this
    /// process is open. Another process's writer is still waited for by
    /// SQLite's busy timeout.
    pub(crate) async fn begin_write(&self) -> sqlx::Result<WriteTx> {
        let turn = self.write_turn.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _turn: turn })
    }

    /// Writes the heartbeat through a connection of its own, outside the
    /// pool: tells a database that cannot be written (this fails too) from
    /// a pool that can no longer write to a writable one (this succeeds).
    pub async fn probe_write(&self) -> sqlx::Result<()> {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect_with(&self.connect).await?;
        let result = async {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query("UPDATE daemon SET heartbeat_at = ? WHERE id = 1")
                .bind(self.now_text())
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        let _ = conn.close().await;
        result
    }

    /// The underlying pool, for queries the store does not wrap (tests, tools).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The clock the store stamps times with.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current time as stored text.
    fn now_text(&self) -> String {
        to_db_text(self.clock.now())
    }

    /// The current time as stored text, to the millisecond (send instants
    /// and the times compared with them).
    fn now_text_ms(&self) -> String {
        crate::clock::to_db_text_ms(self.clock.now())
    }

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        if let Some(g) = &self.guard {
            g.close();
        }
        self.pool.close().await;
    }
}

/// Creates a missing database file empty and readable by its owner only
/// (0600, whatever the umask). SQLite gives the `-wal` and `-shm` files it
/// creates the database file's mode, so they are private too. An existing
/// file keeps its mode (an operator may have opened it to a group), with a
/// warning when anyone may read it.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(file) => file.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o004 != 0
            {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", meta.permissions().mode() & 0o777),
                    "the database is readable by every user of this host; it holds personal data: chmod 600 it (or 640 with a group of readers)"
                );
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// An exclusive `flock` on the database's directory, taken by every process
/// that opens the store, for as long as it checks and applies migrations: two
/// processes starting on a new database at once (the daemon and a `dialerd
/// status`, say) would otherwise both try to create its tables, and one
/// would fail. The directory, not the database file: closing any descriptor
/// of the database file would drop the `fcntl` locks SQLite holds on it.
/// Waits in short steps, so the async runtime is never blocked. A directory
/// this process may not open (search but no read permission) goes without
/// the lock: the race it guards against is rarer than that setup.
async fn migration_lock(path: &Path) -> std::io::Result<Option<std::fs::File>> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(file) = std::fs::File::open(dir) else {
        return Ok(None);
    };
    loop {
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => return Ok(Some(file)),
            Ok(false) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e),
        }
    }
}

/// The pool's settings. A connection goes back into the pool only when it is
/// outside any transaction: a statement that failed with SQLITE_FULL or
/// SQLITE_IOERR may have made SQLite roll the transaction back by itself,
/// and then the `ROLLBACK` a dropped transaction queues fails too, leaving
/// the driver counting a transaction that no longer exists; every later
/// `BEGIN` on that connection would be refused. Such a connection is closed
/// and the pool opens a fresh one, so a fault never outlives its cause.
pub(crate) fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .after_release(|conn, _meta| {
            Box::pin(async move {
                use sqlx::Connection;
                // The ping runs after the queued ROLLBACK, if there is one.
                conn.ping().await?;
                let clean = !conn.is_in_transaction();
                if !clean {
                    tracing::warn!(
                        "closing a database connection a failed write left inside a transaction"
                    );
                }
                Ok(clean)
            })
        })
        .before_acquire(|conn, _meta| {
            Box::pin(async move {
                use sqlx::Connection;
                Ok(!conn.is_in_transaction())
            })
        })
}

/// How every connection of the store opens the database: WAL, full sync,
/// foreign keys, and a busy timeout long enough for another writer's turn.
fn connect_options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite:")?
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10)))
}

/// Records, before a migration rebuilds `contacts` and `attempts`, the SQL
/// of each operator's object the rebuild drops, so that it survives a crash
/// between the rebuild and the recreation.
async fn note_rebuild(pool: &SqlitePool, keep: &[(String, String)], now: &str) {
    if keep.is_empty() {
        return;
    }
    let Ok(mut conn) = pool.acquire().await else {
        return;
    };
    for (name, sql) in keep {
        let detail = format!(
            "rebuilding contacts and attempts drops {name}; it is created again afterwards from: {sql}"
        );
        let _ = daemon::insert_event(&mut conn, now, "migration", None, None, None, Some(&detail))
            .await;
    }
}

/// Runs the embedded migrations; a database from a newer dialerd is refused.
async fn migrate(pool: &SqlitePool, path: String) -> Result<(), OpenError> {
    let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match MIGRATOR.run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(found)) | Err(MigrateError::VersionTooNew(found, _)) => {
            Err(OpenError::TooNew { path, found, known })
        }
        Err(source) => Err(OpenError::Migrate { path, source }),
    }
}

/// Parses an optional stored time, tolerating text written by other programs.
pub(crate) fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(crate::clock::from_db_text)
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod tests;
