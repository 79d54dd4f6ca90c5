//! An import's writer connection and its batch transaction. The connection
//! never leaves the store: the import hands over rows and counts, the store
//! owns the `BEGIN IMMEDIATE` transaction that writes them.

use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::domain::CampaignStatus;

use super::{ImportCounts, NewCampaign, NewContact, Store, StoredReject};

/// A connection of its own for one import's writer (see
/// [`Store::bulk_writer`]); close it with [`BulkWriter::close`].
pub struct BulkWriter {
    store: Store,
    conn: SqliteConnection,
}

impl std::fmt::Debug for BulkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkWriter").finish_non_exhaustive()
    }
}

/// One batch of an import, written in one transaction.
#[derive(Debug)]
pub struct ImportBatch<'a> {
    /// The campaign's id and status, when known from an earlier batch or
    /// from before the import; otherwise it is looked up by name inside the
    /// transaction and created from `new_campaign` when missing.
    pub campaign: Option<(i64, CampaignStatus)>,
    /// Settings to create the campaign with.
    pub new_campaign: &'a NewCampaign,
    /// The `imports` row, once the first batch created it.
    pub import_id: Option<i64>,
    /// The file name and content hash for a new `imports` row.
    pub source: &'a str,
    pub sha256: &'a str,
    /// When the import started (database text).
    pub started_at: &'a str,
    /// Valid rows to insert (duplicates in the campaign are skipped).
    pub rows: Vec<NewContact>,
    /// Rejects to keep with the import.
    pub rejects: &'a [StoredReject],
    /// The import's counts before this batch; the batch adds its own.
    pub counts: ImportCounts,
    /// Whether this is the last batch (stamps the import finished).
    pub last: bool,
}

/// What one committed batch wrote.
#[derive(Debug, Clone)]
pub struct BatchWritten {
    /// The campaign's id and status after the batch.
    pub campaign: (i64, CampaignStatus),
    /// Whether this batch created the campaign.
    pub created: bool,
    /// The `imports` row.
    pub import_id: i64,
    /// The import's counts after the batch.
    pub counts: ImportCounts,
}

impl Store {
    /// A connection of its own for an import's writer: intermediate batches
    /// commit with `synchronous = NORMAL` (see [`BulkWriter::make_durable`]
    /// for the last), a larger page cache keeps the upper levels of the
    /// table and its two indexes in memory, and automatic checkpoints are
    /// off: a [`Checkpointer`](super::Checkpointer) copies the log on a
    /// thread of its own instead.
    pub async fn bulk_writer(&self) -> sqlx::Result<BulkWriter> {
        let mut conn = self.pool.connect_options().connect().await?;
        for pragma in [
            "PRAGMA synchronous = NORMAL",
            "PRAGMA cache_size = -24576",
            "PRAGMA wal_autocheckpoint = 0",
        ] {
            sqlx::query(pragma).execute(&mut conn).await?;
        }
        Ok(BulkWriter {
            store: self.clone(),
            conn,
        })
    }
}

impl BulkWriter {
    /// Makes the next commit (the import's last) an fsync of the log, which
    /// also covers every earlier batch's frames.
    pub async fn make_durable(&mut self) -> sqlx::Result<()> {
        sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    /// Writes `b` in one `BEGIN IMMEDIATE` transaction: the campaign (when
    /// new) and the `imports` row on the first batch, then the contacts,
    /// the rejects and the counts. A completed campaign that gains contacts
    /// is reopened.
    pub async fn write_batch(&mut self, b: ImportBatch<'_>) -> sqlx::Result<BatchWritten> {
        let store = &self.store;
        let mut tx = self.conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut created = false;
        let (campaign_id, mut status) = match b.campaign {
            Some(c) => c,
            // Looked up again inside the transaction: another process may have created it.
            None => match store.campaign_id_tx(&mut tx, &b.new_campaign.name).await? {
                Some(c) => c,
                None => {
                    created = true;
                    let id = store.insert_campaign_tx(&mut tx, b.new_campaign).await?;
                    (id, CampaignStatus::Active)
                }
            },
        };
        let import_id = match b.import_id {
            Some(id) => id,
            None => {
                store
                    .insert_import_tx(&mut tx, campaign_id, b.source, b.sha256, b.started_at)
                    .await?
            }
        };
        let n = b.rows.len() as u64;
        let inserted = store
            .insert_contacts_tx(&mut tx, campaign_id, import_id, b.rows)
            .await?;
        store
            .insert_rejects_tx(&mut tx, import_id, b.rejects)
            .await?;
        if inserted > 0 && status == CampaignStatus::Completed {
            store.reopen_campaign_tx(&mut tx, campaign_id).await?;
            status = CampaignStatus::Active;
        }
        let mut counts = b.counts;
        counts.imported += inserted;
        counts.duplicate += n - inserted;
        store
            .update_import_tx(&mut tx, import_id, counts, b.last)
            .await?;
        tx.commit().await?;
        Ok(BatchWritten {
            campaign: (campaign_id, status),
            created,
            import_id,
            counts,
        })
    }

    /// Closes the connection (it never returns to the pool).
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}
