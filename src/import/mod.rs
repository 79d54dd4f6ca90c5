//! Importing contacts: a CSV file or an SQLite database (told apart by
//! content) streamed into a campaign.
//!
//! The pipeline is the same for every source: the source yields rows
//! (`csv_source`, `sqlite_source`), one header mapping decides what each
//! column means (`header`), each row is validated into a contact or a
//! reject with a reason (`rows`), and a writer inserts contacts in batched
//! transactions, deduplicating on the campaign's unique numbers
//! (`pipeline`). Reading and validating run on their own task while the
//! writer inserts, so parsing and SQLite overlap; a bounded channel between
//! them keeps memory flat whatever the file's size.
//!
//! [`import_file`] is the entry point for the command line, the inbox
//! watcher ([`inbox`]) and the demo; [`validate_direct`] applies the same
//! rules to rows other programs insert straight into the database.

mod csv_source;
mod header;
pub mod inbox;
mod overrides;
mod pipeline;
mod report;
mod rows;
mod sidecar;
mod source;
mod sqlite_source;

use std::path::PathBuf;

pub use header::{PHONE_COLUMNS, normalise as normalise_header};
pub use inbox::{InboxOutcome, InboxWatcher};
pub use overrides::{CampaignOverrides, SETTING_KEYS};
pub use report::ImportReport;
pub use rows::{MAX_CELL_BYTES, Reject, validate_direct};
pub use source::check_input;

use crate::config::CampaignDefaults;
use crate::domain::CampaignStatus;
use crate::store::Store;

/// Rows per write transaction.
pub const BATCH_ROWS: usize = 5_000;
/// Rows per message from the reader to the writer.
pub(crate) const CHUNK_ROWS: usize = 1_000;
/// Rejects stored in `import_rejects` per import; all are counted.
pub const MAX_STORED_REJECTS: usize = 10_000;
/// Rejects kept in an [`ImportReport`] (the command line prints the first 10).
pub const MAX_REPORTED_REJECTS: usize = 1_000;

/// What to read from an SQLite source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SqliteSelect {
    /// Its only table (an error when it has several).
    #[default]
    Auto,
    /// This table (or view).
    Table(String),
    /// The rows of this single read-only statement.
    Query(String),
}

/// One import to run.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The file, as given (recorded as the import's source).
    pub path: PathBuf,
    /// The campaign to create or append to.
    pub campaign: String,
    /// Settings for a campaign the import creates.
    pub overrides: CampaignOverrides,
    /// What to read when the file is an SQLite database.
    pub select: SqliteSelect,
    /// Count and validate only; write nothing.
    pub dry_run: bool,
}

/// Why an import did not run (each maps to an exit status).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A wrong flag or setting (64).
    #[error("{0}")]
    Usage(String),
    /// The file is missing, a directory, or unreadable (66).
    #[error("{0}")]
    NoInput(String),
    /// Not one row could be imported (65). Nothing was written; the report,
    /// when rows were read, has the counts and the rejects.
    #[error("{message}")]
    DataErr {
        /// What is wrong with the data.
        message: String,
        /// Counts and rejects, when there were rows.
        report: Option<Box<ImportReport>>,
    },
    /// Anything else: the database failed (1).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl ImportError {
    /// A data error without a report.
    pub(crate) fn data(message: impl Into<String>) -> Self {
        Self::DataErr {
            message: message.into(),
            report: None,
        }
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Other(anyhow::Error::new(e).context("database error during import"))
    }
}

/// Imports `req.path` into campaign `req.campaign`, creating the campaign
/// (with `defaults` under `req.overrides`) in the same transaction as the
/// first batch of contacts. Returns the counts; fails with
/// [`ImportError::DataErr`] — having written nothing — when not one row
/// could be imported, and reports "already imported" without reading the
/// rows when this content was fully imported into the campaign before.
pub async fn import_file(
    store: &Store,
    defaults: &CampaignDefaults,
    req: &ImportRequest,
) -> Result<ImportReport, ImportError> {
    let name = req.campaign.trim();
    if name.is_empty() {
        return Err(ImportError::Usage(
            "--campaign: the campaign name must not be empty".into(),
        ));
    }
    let existing = store.campaign_by_name(name).await?;
    let opened = source::open(&req.path, &req.select).await?;
    let mut report = ImportReport::new(name, &opened.source, &opened.sha256, req.dry_run);
    if let Some(c) = &existing {
        report.warnings = req.overrides.differences(c);
        match c.status() {
            CampaignStatus::Paused => report.warnings.push(format!(
                "campaign {:?} is paused: its new contacts are dialed once it is resumed",
                c.name
            )),
            CampaignStatus::Cancelled => report.warnings.push(format!(
                "campaign {:?} is cancelled, so its new contacts will never be dialed; import them into a new campaign",
                c.name
            )),
            _ => {}
        }
        report.campaign_id = Some(c.id);
        if let Some(prior) = store.completed_import(c.id, &opened.sha256).await? {
            report.already_imported = Some(prior);
            return Ok(report);
        }
    }
    let stored_region = existing
        .as_ref()
        .and_then(|c| c.region.as_deref())
        .and_then(|r| crate::config::parse_region(r).ok());
    let region = req.overrides.region.or(stored_region).or(defaults.region);
    let plan = pipeline::Plan {
        new_campaign: req.overrides.new_campaign(name, defaults),
        existing: existing.map(|c| (c.id, c.status())),
    };
    let (rx, producer) = opened.spawn(region);
    pipeline::consume(store, plan, rx, producer, report).await
}
