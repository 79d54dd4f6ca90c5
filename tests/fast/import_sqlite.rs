//! SQLite databases as import sources: `--table`, `--query`, autodetection of
//! a single table, detection by content rather than by name, read-only access.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dialerd::clock::SystemClock;
use dialerd::config::{CampaignDefaults, Settings};
use dialerd::error::Exit;
use dialerd::import::{
    CampaignOverrides, ImportError, ImportReport, ImportRequest, SqliteSelect, import_file,
};
use dialerd::store::Store;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};
use tempfile::TempDir;

struct Env {
    dir: TempDir,
    store: Store,
    defaults: CampaignDefaults,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("d.db"), Arc::new(SystemClock))
        .await
        .unwrap();
    let defaults = Settings::load_with_env(None, &HashMap::new())
        .unwrap()
        .campaign_defaults;
    Env {
        dir,
        store,
        defaults,
    }
}

/// Writes an SQLite database at `dir/name` by running `sql`.
async fn source_db(dir: &Path, name: &str, sql: &str) -> PathBuf {
    let path = dir.join(name);
    let mut conn = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    path
}

const PEOPLE: &str =
    "CREATE TABLE people (mobile INTEGER, name TEXT, score REAL, note BLOB, tz TEXT);
    INSERT INTO people VALUES (14155552671, 'Ann', 2.5, NULL, 'x');
    INSERT INTO people VALUES (14155552672, NULL, 3.0, X'6869', 'y');
    INSERT INTO people VALUES (123, 'Bad', NULL, NULL, 'z');";

impl Env {
    async fn run(&self, path: &Path, select: SqliteSelect) -> Result<ImportReport, ImportError> {
        let mut overrides = CampaignOverrides::default();
        overrides.set("region", "US").unwrap();
        let req = ImportRequest {
            path: path.to_path_buf(),
            campaign: "c".into(),
            overrides,
            select,
            dry_run: false,
        };
        import_file(&self.store, &self.defaults, &req).await
    }

    async fn contacts(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT phone_number, call_context FROM contacts ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_table_is_imported_with_values_of_any_type_as_text() {
    let e = env().await;
    let src = source_db(e.dir.path(), "src.db", PEOPLE).await;
    let r = e
        .run(&src, SqliteSelect::Table("people".into()))
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (2, 1));
    let c = e.contacts().await;
    assert_eq!(c[0].0, "+14155552671");
    assert_eq!(c[0].1, r#"{"name":"Ann","score":"2.5","note":"","tz":"x"}"#);
    assert_eq!(c[1].1, r#"{"name":"","score":"3","note":"hi","tz":"y"}"#);
    assert!(r.source.ends_with("src.db#people"), "{}", r.source);
}

#[tokio::test]
async fn rejects_in_an_sqlite_source_are_located_by_row_and_stored_with_line_row_plus_one() {
    let e = env().await;
    let src = source_db(e.dir.path(), "src.db", PEOPLE).await;
    let r = e
        .run(&src, SqliteSelect::Table("people".into()))
        .await
        .unwrap();
    assert_eq!(
        r.rejects[0].to_string(),
        "row 3: \"123\" is not a valid number in its country's numbering plan"
    );
    let (line, reason): (i64, String) = sqlx::query_as("SELECT line, reason FROM import_rejects")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert_eq!(line, 4);
    assert!(reason.starts_with("row 3: "), "{reason}");
}

#[tokio::test]
async fn a_query_is_imported_with_its_column_names_as_the_header() {
    let e = env().await;
    let src = source_db(e.dir.path(), "src.db", PEOPLE).await;
    let q = "SELECT '+' || mobile AS phone, upper(name) AS who FROM people WHERE name IS NOT NULL AND mobile > 1000;";
    let r = e.run(&src, SqliteSelect::Query(q.into())).await.unwrap();
    assert_eq!(r.counts.imported, 1);
    assert_eq!(
        e.contacts().await,
        vec![("+14155552671".to_string(), r#"{"who":"ANN"}"#.to_string())]
    );
    assert!(r.source.contains("?SELECT '+'"), "{}", r.source);
}

#[tokio::test]
async fn an_unknown_table_fails_with_65_naming_the_tables_that_exist() {
    let e = env().await;
    let src = source_db(
        e.dir.path(),
        "src.db",
        "CREATE TABLE a (phone TEXT); CREATE TABLE b (phone TEXT);",
    )
    .await;
    let err = e
        .run(&src, SqliteSelect::Table("nope".into()))
        .await
        .unwrap_err();
    assert_eq!(err.exit(), Exit::DataErr);
    assert!(
        err.to_string()
            .contains("no table named \"nope\"; its tables are: \"a\", \"b\""),
        "{err}"
    );
}

#[tokio::test]
async fn a_database_with_one_table_is_read_without_naming_it() {
    let e = env().await;
    let src = source_db(
        e.dir.path(),
        "one.db",
        "CREATE TABLE t (phone TEXT); INSERT INTO t VALUES ('+14155552671');",
    )
    .await;
    let r = e.run(&src, SqliteSelect::Auto).await.unwrap();
    assert_eq!(r.counts.imported, 1);
    assert!(r.source.ends_with("one.db#t"));
}

#[tokio::test]
async fn several_tables_without_table_or_query_is_a_usage_error_listing_them() {
    let e = env().await;
    let src = source_db(
        e.dir.path(),
        "two.db",
        "CREATE TABLE a (phone TEXT); CREATE TABLE b (phone TEXT);",
    )
    .await;
    let err = e.run(&src, SqliteSelect::Auto).await.unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
    assert!(err.to_string().contains("\"a\", \"b\""), "{err}");
}

#[tokio::test]
async fn an_sqlite_file_named_csv_is_detected_by_content() {
    let e = env().await;
    let src = source_db(
        e.dir.path(),
        "contacts.csv",
        "CREATE TABLE t (phone TEXT); INSERT INTO t VALUES ('+14155552671');",
    )
    .await;
    let r = e.run(&src, SqliteSelect::Auto).await.unwrap();
    assert_eq!(r.counts.imported, 1);
    // And --table on a real CSV is a usage error.
    let csv = e.dir.path().join("real.csv");
    std::fs::write(&csv, "phone\n+14155552671\n").unwrap();
    let err = e
        .run(&csv, SqliteSelect::Table("t".into()))
        .await
        .unwrap_err();
    assert_eq!(err.exit(), Exit::Usage);
}

#[tokio::test]
async fn a_query_that_writes_or_holds_two_statements_is_refused_and_the_source_is_unchanged() {
    let e = env().await;
    let src = source_db(e.dir.path(), "src.db", PEOPLE).await;
    for q in [
        "DELETE FROM people RETURNING mobile AS phone",
        "SELECT mobile AS phone FROM people; DROP TABLE people",
        "SELEC nonsense",
    ] {
        let err = e
            .run(&src, SqliteSelect::Query(q.into()))
            .await
            .unwrap_err();
        assert_eq!(err.exit(), Exit::Usage, "{q}: {err}");
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(&src)
        .connect()
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM people")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(e.contacts().await.len(), 0);
}

#[tokio::test]
async fn the_same_table_imported_twice_adds_nothing() {
    let e = env().await;
    let src = source_db(e.dir.path(), "src.db", PEOPLE).await;
    e.run(&src, SqliteSelect::Table("people".into()))
        .await
        .unwrap();
    let again = e
        .run(&src, SqliteSelect::Table("people".into()))
        .await
        .unwrap();
    assert!(again.already_imported.is_some());
    assert_eq!(e.contacts().await.len(), 2);
}

#[tokio::test]
async fn the_binary_imports_a_table_and_exits_0() {
    let e = env().await;
    source_db(e.dir.path(), "src.db", PEOPLE).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialerd"))
        .args([
            "import",
            "src.db",
            "--campaign",
            "s",
            "--table",
            "people",
            "--region",
            "US",
        ])
        .current_dir(e.dir.path())
        .env("DIALERD_DATABASE__PATH", e.dir.path().join("bin.db"))
        .env_remove("DIALERD_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with(
            "imported 2 of 3 rows into new campaign \"s\" (0 duplicates, 1 rejected)\n\
             calling zones of the valid rows: 0 from the timezone column, 2 from the number, \
             0 from the country (every zone of it), 0 from the campaign's zone\n  row 3:"
        ),
        "{stdout}"
    );
}
