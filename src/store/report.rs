//! Read-only SQL behind `status`, `campaigns list/show`, `export` and the
//! counts `dnc` prints. Each query is one short statement, so a reader never
//! keeps a snapshot open while it formats output (an open snapshot would stop
//! the running daemon's WAL checkpoints).
//!
//! Rows come back as [`Record`]s, each column decoded by the type SQLite
//! actually stored: other programs write this database, and a column holding
//! odd text (or NULL) is shown as it is instead of failing the command.

use futures::TryStreamExt;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::Store;
use crate::phone::PhoneNumber;

/// One row of a report query: its columns, in query order, with their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    columns: Vec<(String, Value)>,
}

impl Record {
    /// A record of these columns, in this order.
    pub fn from_columns(columns: Vec<(String, Value)>) -> Self {
        Self { columns }
    }

    /// Decodes every column of `row` by its stored type.
    fn from_row(row: &SqliteRow) -> Self {
        let columns = row
            .columns()
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name().to_string(), cell(row, i)))
            .collect();
        Self { columns }
    }

    /// The columns and their values, in query order.
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.columns.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The value of column `name` (`Null` when absent).
    pub fn get(&self, name: &str) -> &Value {
        self.columns
            .iter()
            .find(|(k, _)| k == name)
            .map_or(&Value::Null, |(_, v)| v)
    }

    /// Column `name` as an integer: 0 when NULL or not a number.
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name) {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .unwrap_or(0),
            Value::String(s) => s.trim().parse().unwrap_or(0),
            _ => 0,
        }
    }

    /// Column `name` as a number: 0 when NULL or not a number.
    pub fn float(&self, name: &str) -> f64 {
        match self.get(name) {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            Value::String(s) => s
                .trim()
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite())
                .unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Column `name` as text: `None` when NULL; numbers in their usual form.
    pub fn text(&self, name: &str) -> Option<String> {
        value_text(self.get(name))
    }
}

/// A value as text: `None` for NULL, strings as they are, anything else as JSON.
pub fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for (k, v) in &self.columns {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Column `i` of `row` as JSON, by the type SQLite stored (not the declared one).
fn cell(row: &SqliteRow, i: usize) -> Value {
    let Ok(raw) = row.try_get_raw(i) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let kind = raw.type_info().name().to_string();
    match kind.as_str() {
        "INTEGER" => row
            .try_get::<i64, _>(i)
            .map(Value::from)
            .unwrap_or(Value::Null),
        "REAL" => row
            .try_get::<f64, _>(i)
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        "BLOB" => row
            .try_get::<Vec<u8>, _>(i)
            .map(|b| Value::String(String::from_utf8_lossy(&b).into_owned()))
            .unwrap_or(Value::Null),
        _ => row
            .try_get::<String, _>(i)
            .map(Value::String)
            .unwrap_or(Value::Null),
    }
}

/// A campaign found by name: what a command needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRef {
    /// The row id.
    pub id: i64,
    /// The name as stored.
    pub name: String,
    /// The `status` column as stored.
    pub status: String,
}

/// The columns of `contact_outcomes` that `export` writes, in order.
pub const EXPORT_COLUMNS: &[&str] = &[
    "campaign",
    "phone_number",
    "external_id",
    "call_context",
    "state",
    "attempts",
    "outcome",
    "attempt_state",
    "provider_status",
    "duration_secs",
    "transcript",
    "recording_url",
    "cost",
    "total_cost",
    "sent_at",
    "finished_at",
    "invalid_reason",
];

/// Numbers per `IN (...)` statement: well under SQLite's parameter limit.
const NUMBERS_PER_STATEMENT: usize = 500;

/// The report queries, borrowed from a [`Store`].
#[derive(Debug, Clone, Copy)]
pub struct Reports<'a> {
    store: &'a Store,
}

impl Store {
    /// The read-only report queries.
    pub fn reports(&self) -> Reports<'_> {
        Reports { store: self }
    }
}

impl Reports<'_> {
    /// Runs `q` and decodes every row.
    async fn records(
        &self,
        q: sqlx::query::Query<'_, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    ) -> sqlx::Result<Vec<Record>> {
        let rows = q.fetch_all(&self.store.pool).await?;
        Ok(rows.iter().map(Record::from_row).collect())
    }

    /// Every row of `campaign_progress`, by campaign id.
    pub async fn progress(&self) -> sqlx::Result<Vec<Record>> {
        self.records(sqlx::query(
            "SELECT * FROM campaign_progress ORDER BY campaign_id",
        ))
        .await
    }

    /// The `campaign_progress` row of campaign `id`.
    pub async fn progress_of(&self, id: i64) -> sqlx::Result<Option<Record>> {
        let q = sqlx::query("SELECT * FROM campaign_progress WHERE campaign_id = ?").bind(id);
        Ok(self.records(q).await?.into_iter().next())
    }

    /// Every campaign's settings with its contact counts, by id: the
    /// `campaigns` columns plus `contacts`, `pending`, `in_progress`,
    /// `retry_wait`, `done` and `exhausted` from `campaign_progress`.
    pub async fn campaign_overview(&self) -> sqlx::Result<Vec<Record>> {
        self.records(sqlx::query(
            "SELECT c.*, p.contacts, p.pending, p.in_progress, p.retry_wait, p.done, p.exhausted \
             FROM campaigns c JOIN campaign_progress p ON p.campaign_id = c.id ORDER BY c.id",
        ))
        .await
    }

    /// Every column of campaign `id`.
    pub async fn campaign(&self, id: i64) -> sqlx::Result<Option<Record>> {
        let q = sqlx::query("SELECT * FROM campaigns WHERE id = ?").bind(id);
        Ok(self.records(q).await?.into_iter().next())
    }

    /// The campaign named `name` (surrounding spaces ignored).
    pub async fn campaign_ref(&self, name: &str) -> sqlx::Result<Option<CampaignRef>> {
        let row = sqlx::query("SELECT id, name, status FROM campaigns WHERE name = ?")
            .bind(name.trim())
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.map(|r| {
            let rec = Record::from_row(&r);
            CampaignRef {
                id: rec.int("id"),
                name: rec.text("name").unwrap_or_default(),
                status: rec.text("status").unwrap_or_default(),
            }
        }))
    }

    /// Every campaign name, by id.
    pub async fn campaign_names(&self) -> sqlx::Result<Vec<String>> {
        let rows = self
            .records(sqlx::query("SELECT name FROM campaigns ORDER BY id"))
            .await?;
        Ok(rows.iter().filter_map(|r| r.text("name")).collect())
    }

    /// The last `limit` events of campaign `id`, newest first.
    pub async fn campaign_events(&self, id: i64, limit: i64) -> sqlx::Result<Vec<Record>> {
        let q = sqlx::query(
            "SELECT at, kind, detail FROM events WHERE campaign_id = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(id)
        .bind(limit);
        self.records(q).await
    }

    /// The distinct top-level keys of the contacts' `call_context` objects
    /// (of one campaign, or all), in the order they first appear; at most `limit`.
    pub async fn context_keys(
        &self,
        campaign: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<Vec<String>> {
        let q = sqlx::query(
            "SELECT j.key AS key FROM contacts c, json_each(c.call_context) j \
             WHERE (?1 IS NULL OR c.campaign_id = ?1) AND json_type(c.call_context) = 'object' \
             GROUP BY j.key ORDER BY MIN(c.id), MIN(j.id) LIMIT ?2",
        )
        .bind(campaign)
        .bind(limit);
        let rows = self.records(q).await?;
        Ok(rows.iter().filter_map(|r| r.text("key")).collect())
    }

    /// Up to `limit` rows of `contact_outcomes` (of one campaign, or all) with
    /// `contact_id` above `after`, by contact id: [`EXPORT_COLUMNS`] plus
    /// `contact_id`. Paging by key keeps each statement short however big
    /// the export; rows are decoded as they stream in.
    pub async fn export_page(
        &self,
        campaign: Option<i64>,
        after: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<Record>> {
        let sql = format!(
            "SELECT contact_id, {} FROM contact_outcomes \
             WHERE contact_id > ?1 AND (?2 IS NULL OR campaign_id = ?2) ORDER BY contact_id LIMIT ?3",
            EXPORT_COLUMNS.join(", ")
        );
        // Safe: built from the constant column list only.
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(campaign)
            .bind(limit)
            .fetch(&self.store.pool)
            .map_ok(|row| Record::from_row(&row))
            .try_collect()
            .await
    }

    /// How many contacts waiting to be dialed (`pending` or `retry_wait`) have
    /// one of `numbers`.
    pub async fn open_contacts_with(&self, numbers: &[PhoneNumber]) -> sqlx::Result<i64> {
        let mut total = 0;
        for chunk in numbers.chunks(NUMBERS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!(
                "SELECT COUNT(*) FROM contacts WHERE state IN ('pending', 'retry_wait') \
                 AND phone_number IN ({marks})"
            );
            // Safe: only placeholders are interpolated.
            let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
            for n in chunk {
                q = q.bind(n.as_str());
            }
            total += q.fetch_one(&self.store.pool).await?;
        }
        Ok(total)
    }
}

/// A campaign's counts for a live progress line.
#[derive(Debug, Default, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct ProgressCounts {
    pub contacts: i64,
    /// Contacts with at least one placed (or possibly placed) call.
    pub dialed: i64,
    pub in_progress: i64,
    pub retry_wait: i64,
    pub outcome_completed: i64,
    pub outcome_no_answer: i64,
    pub outcome_busy: i64,
    pub outcome_failed: i64,
    pub outcome_voicemail: i64,
}

/// One contact's latest outcome, from the `contact_outcomes` view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutcomeRow {
    pub phone_number: String,
    pub call_context: String,
    pub state: String,
    pub attempts: i64,
    pub outcome: Option<String>,
    pub duration_secs: Option<f64>,
    pub transcript: Option<String>,
}

impl Reports<'_> {
    /// The progress counts of campaign `name` (zeros when it does not exist).
    pub async fn progress_counts(&self, name: &str) -> sqlx::Result<ProgressCounts> {
        sqlx::query_as(
            "SELECT contacts, in_progress, retry_wait, outcome_completed, outcome_no_answer, outcome_busy, \
                    outcome_failed, outcome_voicemail, \
                    (SELECT COUNT(*) FROM contacts c WHERE c.campaign_id = p.campaign_id AND c.attempts > 0) AS dialed \
             FROM campaign_progress p WHERE campaign = ?",
        )
        .bind(name)
        .fetch_optional(&self.store.pool)
        .await
        .map(Option::unwrap_or_default)
    }

    /// Every contact of campaign `name` with its latest outcome, by contact id.
    pub async fn outcome_rows(&self, name: &str) -> sqlx::Result<Vec<OutcomeRow>> {
        sqlx::query_as(
            "SELECT phone_number, call_context, state, attempts, outcome, duration_secs, transcript \
             FROM contact_outcomes WHERE campaign = ? ORDER BY contact_id",
        )
        .bind(name)
        .fetch_all(&self.store.pool)
        .await
    }
}
