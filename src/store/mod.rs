//! The SQLite store: opening the database (pragmas, embedded migrations) and
//! one module per table family holding all of its SQL. Every state change is
//! one statement or one short transaction; none is held across an HTTP call.

mod attempts;
mod campaigns;
mod checkpoint;
mod contacts;
mod daemon;
mod dnc;
mod imports;
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
pub use campaigns::*;
pub use checkpoint::Checkpointer;
pub use contacts::*;
pub use daemon::*;
pub use dnc::*;
pub use imports::*;
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
        let opts = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|source| OpenError::Open {
                path: shown.clone(),
                source,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts)
            .await
            .map_err(|source| OpenError::Open {
                path: shown.clone(),
                source,
            })?;
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let keep = operators_objects(&pool)
            .await
            .map_err(|e| OpenError::Migrate {
                path: shown.clone(),
                source: MigrateError::Execute(e),
            })?;
        // Written before the rebuild, so that the SQL survives a crash
        // between the rebuild and the recreation.
        if !keep.is_empty()
            && let Ok(mut conn) = pool.acquire().await
        {
            let now = to_db_text(clock.now());
            for (name, sql) in &keep {
                let detail = format!(
                    "rebuilding contacts and attempts drops {name}; it is created again afterwards from: {sql}"
                );
                let _ = daemon::insert_event(
                    &mut conn,
                    &now,
                    "migration",
                    None,
                    None,
                    None,
                    Some(&detail),
                )
                .await;
            }
        }
        match MIGRATOR.run(&pool).await {
            Ok(()) => {}
            Err(MigrateError::VersionMissing(found))
            | Err(MigrateError::VersionTooNew(found, _)) => {
                return Err(OpenError::TooNew {
                    path: shown,
                    found,
                    known,
                });
            }
            Err(source) => {
                return Err(OpenError::Migrate {
                    path: shown,
                    source,
                });
            }
        }
        let store = Self {
            pool,
            clock,
            write_turn: Arc::new(tokio::sync::Mutex::new(())),
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

    /// Closes the pool, checkpointing the WAL.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Parses an optional stored time, tolerating text written by other programs.
pub(crate) fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(crate::clock::from_db_text)
}

impl From<OpenError> for crate::error::CliError {
    fn from(e: OpenError) -> Self {
        crate::error::CliError::new(crate::error::Exit::Failure, e)
    }
}

#[cfg(test)]
mod tests;
