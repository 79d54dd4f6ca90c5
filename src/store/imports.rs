//! SQL of the `imports` and `import_rejects` tables and the batched insertion
//! of imported contacts.
//!
//! An import writes through one connection, in short `BEGIN IMMEDIATE`
//! transactions of a few thousand rows, so a running daemon is never locked
//! out for long. Contacts go in as multi-row `INSERT ... ON CONFLICT DO
//! NOTHING` statements of a fixed shape: sqlx prepares each shape once per
//! connection, and `rows_affected` tells inserted rows from duplicates.

use std::sync::OnceLock;

use sqlx::{Row, SqliteConnection};

use super::Store;
use crate::domain::CampaignStatus;
use crate::phone::PhoneNumber;

/// A validated contact ready to be inserted (its number already E.164).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// The number, parsed.
    pub phone_number: PhoneNumber,
    /// JSON object text.
    pub call_context: String,
    /// A valid IANA zone name.
    pub timezone: Option<String>,
    /// Agent overriding the campaign's.
    pub agent_id: Option<i64>,
    /// The caller's own identifier for the contact.
    pub external_id: Option<String>,
    /// Where the row came from (the file's line, or row ordinal + 1).
    pub source_line: i64,
}

/// A rejected row as stored in `import_rejects`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredReject {
    /// Line of the row in its file (the header is line 1).
    pub line: i64,
    /// Why it was rejected.
    pub reason: String,
    /// The row's text, truncated.
    pub raw: Option<String>,
}

/// Counts of an import, as the `imports` row keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Data rows read (empty rows are not counted).
    pub total: u64,
    /// Rows inserted as new contacts.
    pub imported: u64,
    /// Valid rows whose number was already in the campaign.
    pub duplicate: u64,
    /// Rows refused, with a reason.
    pub rejected: u64,
}

/// An earlier import of the same content that ran to its end.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PriorImport {
    /// Its id.
    pub id: i64,
    /// When it finished.
    pub finished_at: String,
    /// What it was read from.
    pub source: String,
}

/// Contacts per multi-row INSERT: 6 parameters each stays far below
/// SQLite's limit of 32766 variables.
const ROWS_PER_STATEMENT: usize = 500;

/// The INSERT of `rows` contacts. Parameters are anonymous (`?`), because
/// SQLite resolves each numbered one by a linear search, which made binding
/// thousands of them quadratic; the values shared by every row (campaign,
/// import, time) come last, once.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(256 + rows * 16);
    sql.push_str("WITH v(phone_number, call_context, timezone, agent_id, external_id, source_line) AS (VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?)");
    }
    sql.push_str(
        ") INSERT INTO contacts (phone_number, call_context, timezone, agent_id, external_id, source_line, \
         campaign_id, import_id, created_at, updated_at, state, validated) \
         SELECT v.*, ?, ?, ?, ?, 'pending', 1 FROM v WHERE true \
         ON CONFLICT (campaign_id, phone_number) DO NOTHING",
    );
    sql
}

fn full_insert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| insert_sql(ROWS_PER_STATEMENT))
}

impl Store {
    /// The id of campaign `name`, read inside an open transaction.
    pub(super) async fn campaign_id_tx(
        &self,
        conn: &mut SqliteConnection,
        name: &str,
    ) -> sqlx::Result<Option<(i64, CampaignStatus)>> {
        let row = sqlx::query("SELECT id, status FROM campaigns WHERE name = ?")
            .bind(name.trim())
            .fetch_optional(&mut *conn)
            .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }

    /// The latest import of content `sha256` into `campaign_id` that finished.
    pub async fn completed_import(
        &self,
        campaign_id: i64,
        sha256: &str,
    ) -> sqlx::Result<Option<PriorImport>> {
        sqlx::query_as(
            "SELECT id, finished_at, source FROM imports \
             WHERE campaign_id = ? AND sha256 = ? AND finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(campaign_id)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await
    }

    /// Starts an `imports` row inside an open transaction; returns its id.
    pub(super) async fn insert_import_tx(
        &self,
        conn: &mut SqliteConnection,
        campaign_id: i64,
        source: &str,
        sha256: &str,
        started_at: &str,
    ) -> sqlx::Result<i64> {
        sqlx::query_scalar("INSERT INTO imports (campaign_id, source, sha256, started_at) VALUES (?, ?, ?, ?) RETURNING id")
            .bind(campaign_id)
            .bind(source)
            .bind(sha256)
            .bind(started_at)
            .fetch_one(&mut *conn)
            .await
    }

    /// Inserts validated contacts into `campaign_id`; a number already in the
    /// campaign is skipped. Returns how many rows were inserted. The rows are
    /// taken by value so their text moves into the statement uncopied.
    pub(super) async fn insert_contacts_tx(
        &self,
        conn: &mut SqliteConnection,
        campaign_id: i64,
        import_id: i64,
        rows: Vec<NewContact>,
    ) -> sqlx::Result<u64> {
        let now = self.now_text();
        let mut inserted = 0;
        let mut left = rows.len();
        let mut rows = rows.into_iter();
        while left > 0 {
            let n = left.min(ROWS_PER_STATEMENT);
            left -= n;
            let sql = if n == ROWS_PER_STATEMENT {
                sqlx::query(full_insert_sql())
            } else {
                sqlx::query(sqlx::AssertSqlSafe(insert_sql(n)))
            };
            let mut q = sql;
            for c in rows.by_ref().take(n) {
                q = q
                    .bind(c.phone_number)
                    .bind(c.call_context)
                    .bind(c.timezone)
                    .bind(c.agent_id)
                    .bind(c.external_id)
                    .bind(c.source_line);
            }
            let q = q
                .bind(campaign_id)
                .bind(import_id)
                .bind(now.clone())
                .bind(now.clone());
            inserted += q.execute(&mut *conn).await?.rows_affected();
        }
        Ok(inserted)
    }

    /// Records rejected rows of import `import_id`.
    pub(super) async fn insert_rejects_tx(
        &self,
        conn: &mut SqliteConnection,
        import_id: i64,
        rejects: &[StoredReject],
    ) -> sqlx::Result<()> {
        for r in rejects {
            sqlx::query(
                "INSERT INTO import_rejects (import_id, line, reason, raw) VALUES (?, ?, ?, ?)",
            )
            .bind(import_id)
            .bind(r.line)
            .bind(&r.reason)
            .bind(&r.raw)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Writes an import's counts; with `finished` also stamps `finished_at`,
    /// which marks the content as fully imported.
    pub(super) async fn update_import_tx(
        &self,
        conn: &mut SqliteConnection,
        import_id: i64,
        counts: ImportCounts,
        finished: bool,
    ) -> sqlx::Result<()> {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        sqlx::query(
            "UPDATE imports SET rows_total = ?, rows_imported = ?, rows_duplicate = ?, rows_rejected = ?, \
             finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?",
        )
        .bind(n(counts.total))
        .bind(n(counts.imported))
        .bind(n(counts.duplicate))
        .bind(n(counts.rejected))
        .bind(finished)
        .bind(self.now_text())
        .bind(import_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Which of `numbers` (E.164) are already contacts of `campaign_id`.
    pub async fn existing_numbers(
        &self,
        campaign_id: i64,
        numbers: &[PhoneNumber],
    ) -> sqlx::Result<Vec<PhoneNumber>> {
        let list = serde_json::to_string(numbers).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query_scalar(
            "SELECT j.value FROM json_each(?) j \
             WHERE EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = ? AND c.phone_number = j.value)",
        )
        .bind(list)
        .bind(campaign_id)
        .fetch_all(&self.pool)
        .await
    }

    /// The rejected rows of import `import_id`, by line.
    pub async fn import_rejects(&self, import_id: i64) -> sqlx::Result<Vec<StoredReject>> {
        sqlx::query_as(
            "SELECT line, reason, raw FROM import_rejects WHERE import_id = ? ORDER BY line",
        )
        .bind(import_id)
        .fetch_all(&self.pool)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multi_row_insert_binds_rows_first_and_shared_values_last() {
        let sql = insert_sql(2);
        assert!(
            sql.contains("AS (VALUES (?,?,?,?,?,?),(?,?,?,?,?,?)) INSERT"),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT v.*, ?, ?, ?, ?, 'pending', 1 FROM v"),
            "{sql}"
        );
        assert_eq!(sql.matches('?').count(), 16);
    }
}
