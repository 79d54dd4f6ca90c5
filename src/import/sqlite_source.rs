//! SQLite databases as a source: a table (`--table`) or a query (`--query`)
//! read in-process through a read-only connection (`mode=ro` plus
//! `query_only`), so nothing the user passes can write to the file. The
//! columns' names are the header; every value becomes text (NULL as empty).
//! Rows are located as `row N` (N from 1), stored with line N + 1 so that,
//! as for a CSV file, the header is line 1.

use std::path::Path;

use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteRow};
use sqlx::{
    Column, ConnectOptions, Connection, Executor, Row, SqliteConnection, Statement, ValueRef,
};
use tokio::sync::mpsc;

use super::header::quoted_list;
use super::rows::{Item, Validator};
use super::{CHUNK_ROWS, ImportError, SqliteSelect};

/// The first 16 bytes of every SQLite database file.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// An opened SQLite source, ready to stream.
pub struct SqliteSource {
    conn: SqliteConnection,
    sql: String,
    /// The column names.
    pub header: Vec<String>,
    /// `#table` or `?query`, appended to the path in the import's `source`.
    pub label: String,
}

/// Opens `path` read-only and resolves what to read from it.
pub async fn open(
    path: &Path,
    shown: &str,
    select: &SqliteSelect,
) -> Result<SqliteSource, ImportError> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .pragma("query_only", "ON");
    let mut conn = opts
        .connect()
        .await
        .map_err(|e| ImportError::NoInput(format!("cannot open SQLite database {shown}: {e}")))?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .map_err(|e| ImportError::data(format!("{shown}: cannot read the list of tables: {e}")))?;
    let (sql, label) = choose_rows(&tables, shown, select)?;
    let bad_query = |e: sqlx::Error| match select {
        SqliteSelect::Query(_) => ImportError::Usage(format!("--query: {e}")),
        _ => ImportError::data(format!("{shown}: cannot read {label}: {e}")),
    };
    let stmt = (&mut conn)
        .prepare(sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(
            sql.clone(),
        )))
        .await
        .map_err(bad_query)?;
    let header = stmt
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    Ok(SqliteSource {
        conn,
        sql,
        header,
        label,
    })
}

/// The SQL that reads the rows the import wants, and a label naming them
/// (`#table` or `?query`): `--query` as given (one statement), `--table`
/// (matched case-insensitively when not exactly), or the only table.
fn choose_rows(
    tables: &[(String, String)],
    shown: &str,
    select: &SqliteSelect,
) -> Result<(String, String), ImportError> {
    let names: Vec<String> = tables.iter().map(|(n, _)| n.clone()).collect();
    Ok(match select {
        SqliteSelect::Query(q) => {
            let q = single_statement(q)?;
            (q.to_string(), format!("?{q}"))
        }
        SqliteSelect::Table(t) => {
            let Some(name) = names
                .iter()
                .find(|n| *n == t)
                .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(t)))
            else {
                return Err(ImportError::data(format!(
                    "{shown} has no table named {t:?}; its tables are: {}",
                    listed(&names)
                )));
            };
            (
                format!("SELECT * FROM {}", quote_ident(name)),
                format!("#{name}"),
            )
        }
        SqliteSelect::Auto => {
            let only: Vec<&String> = tables
                .iter()
                .filter(|(_, ty)| ty == "table")
                .map(|(n, _)| n)
                .collect();
            match only.as_slice() {
                [one] => (
                    format!("SELECT * FROM {}", quote_ident(one)),
                    format!("#{one}"),
                ),
                _ => {
                    return Err(ImportError::Usage(format!(
                        "{shown} is an SQLite database with {} tables ({}); choose one with --table or use --query",
                        only.len(),
                        listed(&names)
                    )));
                }
            }
        }
    })
}

impl SqliteSource {
    /// Streams every row, validates it and sends the results in chunks.
    pub async fn produce(
        mut self,
        v: Validator,
        tx: mpsc::Sender<Vec<Item>>,
    ) -> Result<(), ImportError> {
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        let mut ordinal: u64 = 0;
        {
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.clone())).fetch(&mut self.conn);
            while let Some(row) = rows.try_next().await.map_err(query_failed)? {
                ordinal += 1;
                let values = row_text(&row);
                if let Some(item) = v.check(ordinal + 1, &values) {
                    chunk.push(item);
                }
                if chunk.len() >= CHUNK_ROWS && tx.send(std::mem::take(&mut chunk)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(chunk).await;
        }
        let _ = self.conn.close().await;
        Ok(())
    }
}

fn query_failed(e: sqlx::Error) -> ImportError {
    let text = e.to_string();
    if text.contains("readonly") || text.contains("read-only") || text.contains("query_only") {
        ImportError::Usage(format!(
            "--query must be a single read-only statement (SELECT ...): {text}"
        ))
    } else {
        ImportError::data(format!("reading the SQLite source failed: {text}"))
    }
}

/// Every value of `row` as text: integers as digits, reals without a
/// trailing `.0` when whole, NULL as empty, blobs as UTF-8 (lossy).
fn row_text(row: &SqliteRow) -> Vec<String> {
    (0..row.len())
        .map(|i| {
            let Ok(raw) = row.try_get_raw(i) else {
                return String::new();
            };
            if raw.is_null() {
                return String::new();
            }
            let ty = raw.type_info().to_string();
            match ty.as_str() {
                "INTEGER" => row
                    .try_get_unchecked::<i64, _>(i)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                "REAL" => row
                    .try_get_unchecked::<f64, _>(i)
                    .map(|f| {
                        if f.fract() == 0.0 && f.abs() < 1e15 {
                            format!("{}", f as i64)
                        } else {
                            f.to_string()
                        }
                    })
                    .unwrap_or_default(),
                "BLOB" => row
                    .try_get_unchecked::<Vec<u8>, _>(i)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
                _ => row.try_get_unchecked::<String, _>(i).unwrap_or_default(),
            }
        })
        .collect()
}

/// `"name"` with embedded quotes doubled.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn listed(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        quoted_list(names)
    }
}

/// The query without trailing semicolons, refused when it holds a second
/// statement (a `;` followed by more than whitespace or comments, outside
/// quotes and comments).
fn single_statement(q: &str) -> Result<&str, ImportError> {
    let body = q
        .trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if body.is_empty() {
        return Err(ImportError::Usage("--query is empty".into()));
    }
    let b = body.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_past(b, i + 1, &[q]),
            b'[' => i = skip_past(b, i + 1, b"]"),
            b'-' if b.get(i + 1) == Some(&b'-') => i = skip_past(b, i + 2, b"\n"),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_past(b, i + 2, b"*/"),
            b';' => {
                return Err(ImportError::Usage(
                    "--query must be a single statement; it contains more than one".into(),
                ));
            }
            _ => i += 1,
        }
    }
    Ok(body)
}

fn skip_past(b: &[u8], from: usize, end: &[u8]) -> usize {
    b[from.min(b.len())..]
        .windows(end.len())
        .position(|w| w == end)
        .map_or(b.len(), |p| from + p + end.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(quote_ident("my \"t\""), "\"my \"\"t\"\"\"");
    }

    #[test]
    fn only_a_single_statement_is_accepted_as_a_query() {
        assert_eq!(
            single_statement("SELECT ';' AS x;  ").unwrap(),
            "SELECT ';' AS x"
        );
        assert_eq!(
            single_statement("SELECT 1 -- a; b\n").unwrap(),
            "SELECT 1 -- a; b"
        );
        assert!(single_statement("SELECT 1; DELETE FROM t").is_err());
        assert!(single_statement("  ").is_err());
    }
}
