//! The writer: receives validated rows from the reader and inserts them in
//! batches of [`BATCH_ROWS`], each one `BEGIN IMMEDIATE` transaction on one
//! connection of its own (so sqlx's per-connection statement cache serves
//! every batch). That connection commits the intermediate batches with
//! `synchronous=NORMAL` and the last one with `FULL`: in WAL mode an fsync
//! of the log covers every frame before it, so the finished import is as
//! durable as any other write, while a million-row import does not wait for
//! two hundred fsyncs. (Any `FULL` commit by the daemon — dialing one of the
//! new contacts needs one — also makes the batches before it durable.) The
//! connection ([`Store::bulk_writer`], whose transaction the store owns) is closed afterwards, never returned
//! to the pool. Its log is copied into the database file by a
//! [`Checkpointer`] on a second connection, while the writer goes on.
//!
//! Nothing is written until the first valid row: the campaign (when new)
//! and the `imports` row are created in the transaction of the first batch,
//! and an import in which not one row is valid writes nothing at all, for a
//! new campaign or an existing one (its rejects are reported, not stored).
//! A dry run reads and validates the same way and only counts: numbers
//! already in the campaign are looked up per chunk, numbers seen earlier in
//! the file are remembered in memory (8 bytes per distinct number).

use std::collections::HashSet;

use tokio::sync::mpsc;

use super::rows::{Item, Reject};
use super::source::Producer;
use super::{BATCH_ROWS, ImportError, ImportReport, MAX_STORED_REJECTS};
use crate::clock::to_db_text;
use crate::domain::CampaignStatus;
use crate::phone::PhoneNumber;
use crate::store::{
    BulkWriter, Checkpointer, ImportBatch, NewCampaign, NewContact, Store, StoredReject,
};

/// The campaign an import goes into.
pub(crate) struct Plan {
    /// Settings to create it with, if it does not exist by the first batch.
    pub new_campaign: NewCampaign,
    /// Its id and status when it existed as the import started.
    pub existing: Option<(i64, CampaignStatus)>,
}

struct Writer {
    conn: BulkWriter,
    plan: Plan,
    campaign: Option<(i64, CampaignStatus)>,
    import_id: Option<i64>,
    started_at: String,
    valid: Vec<NewContact>,
    rejects: Vec<StoredReject>,
    stored_rejects: usize,
    checkpointer: Checkpointer,
    /// Batches committed.
    batches: u64,
}

/// Drains the reader and writes (or, for a dry run, counts) its rows.
pub(crate) async fn consume(
    store: &Store,
    plan: Plan,
    mut rx: mpsc::Receiver<Vec<Item>>,
    producer: Producer,
    mut report: ImportReport,
) -> Result<ImportReport, ImportError> {
    if report.dry_run {
        return dry_run(store, plan, rx, producer, report).await;
    }
    let conn = store.bulk_writer().await?;
    let checkpointer = Checkpointer::start(store).await?;
    let mut w = Writer {
        conn,
        campaign: plan.existing,
        plan,
        import_id: None,
        started_at: to_db_text(store.clock().now()),
        valid: Vec::with_capacity(BATCH_ROWS),
        rejects: Vec::new(),
        stored_rejects: 0,
        checkpointer,
        batches: 0,
    };
    let mut any_valid = false;
    while let Some(chunk) = rx.recv().await {
        for item in chunk {
            report.counts.total += 1;
            match item {
                Item::Valid(c, zones) => {
                    any_valid = true;
                    report.count_zone_source(zones);
                    w.valid.push(c);
                }
                Item::Reject(r) => {
                    report.add_reject(&r);
                    w.keep_reject(&r);
                }
            }
        }
        if w.valid.len() >= BATCH_ROWS {
            w.flush(&mut report, false).await?;
        }
    }
    finish(producer).await?;
    if !any_valid {
        return Err(nothing_importable(report));
    }
    w.conn.make_durable().await?;
    w.flush(&mut report, true).await?;
    let Writer {
        conn, checkpointer, ..
    } = w;
    conn.close().await;
    checkpointer.finish().await;
    Ok(report)
}

impl Writer {
    fn keep_reject(&mut self, r: &Reject) {
        if self.stored_rejects < MAX_STORED_REJECTS {
            self.stored_rejects += 1;
            let reason = if r.location.starts_with("line ") {
                r.reason.clone()
            } else {
                format!("{}: {}", r.location, r.reason)
            };
            self.rejects.push(StoredReject {
                line: i64::try_from(r.line).unwrap_or(i64::MAX),
                reason,
                raw: Some(r.raw.clone()).filter(|s| !s.is_empty()),
            });
        }
    }

    /// Writes the rows and rejects gathered so far in one transaction,
    /// creating the campaign and the import row on the first call.
    async fn flush(&mut self, report: &mut ImportReport, last: bool) -> Result<(), ImportError> {
        self.checkpointer.pace(self.batches).await;
        let written = self
            .conn
            .write_batch(ImportBatch {
                campaign: self.campaign,
                new_campaign: &self.plan.new_campaign,
                import_id: self.import_id,
                source: &report.source,
                sha256: &report.sha256,
                started_at: &self.started_at,
                rows: std::mem::replace(&mut self.valid, Vec::with_capacity(BATCH_ROWS)),
                rejects: &self.rejects,
                counts: report.counts,
                last,
            })
            .await?;
        self.batches += 1;
        self.checkpointer.committed(self.batches);
        self.rejects.clear();
        report.counts = written.counts;
        report.campaign_created |= written.created;
        report.campaign_id = Some(written.campaign.0);
        report.import_id = Some(written.import_id);
        self.campaign = Some(written.campaign);
        self.import_id = Some(written.import_id);
        Ok(())
    }
}

async fn dry_run(
    store: &Store,
    plan: Plan,
    mut rx: mpsc::Receiver<Vec<Item>>,
    producer: Producer,
    mut report: ImportReport,
) -> Result<ImportReport, ImportError> {
    let existing = plan.existing.map(|(id, _)| id);
    let mut seen: HashSet<u64> = HashSet::new();
    let mut any_valid = false;
    while let Some(chunk) = rx.recv().await {
        let mut numbers = Vec::new();
        for item in chunk {
            report.counts.total += 1;
            match item {
                Item::Valid(c, zones) => {
                    report.count_zone_source(zones);
                    numbers.push(c.phone_number)
                }
                Item::Reject(r) => report.add_reject(&r),
            }
        }
        any_valid |= !numbers.is_empty();
        let in_campaign: HashSet<PhoneNumber> = match existing {
            Some(id) if !numbers.is_empty() => store
                .existing_numbers(id, &numbers)
                .await?
                .into_iter()
                .collect(),
            _ => HashSet::new(),
        };
        for p in numbers {
            if in_campaign.contains(&p) || !seen.insert(number_key(p.as_str())) {
                report.counts.duplicate += 1;
            } else {
                report.counts.imported += 1;
            }
        }
    }
    finish(producer).await?;
    if !any_valid {
        return Err(nothing_importable(report));
    }
    report.campaign_id = existing;
    Ok(report)
}

/// An E.164 number as an integer (at most 15 digits always fit).
fn number_key(e164: &str) -> u64 {
    e164.trim_start_matches('+').parse().unwrap_or_else(|_| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        e164.hash(&mut h);
        h.finish()
    })
}

/// Waits for the reader and passes on its error.
async fn finish(producer: Producer) -> Result<(), ImportError> {
    producer
        .await
        .map_err(|e| ImportError::Other(anyhow::anyhow!("the import reader failed: {e}")))?
}

fn nothing_importable(report: ImportReport) -> ImportError {
    let message = if report.counts.total == 0 {
        format!(
            "{}: there are no rows after the header; nothing was imported",
            report.source
        )
    } else {
        format!(
            "{}: not one of the {} rows could be imported (every row was rejected); nothing was written",
            report.source, report.counts.total
        )
    };
    ImportError::DataErr {
        message,
        report: Some(Box::new(report)),
    }
}
