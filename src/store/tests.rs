use std::sync::Arc;

use super::*;
use crate::clock::SystemClock;

async fn open(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("d.db"), Arc::new(SystemClock))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fresh_path_gets_every_table_and_view_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    for want in [
        "attempts",
        "campaign_progress",
        "campaigns",
        "contact_outcomes",
        "contacts",
        "dnc",
        "import_rejects",
        "imports",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[tokio::test]
async fn opening_an_already_migrated_database_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    sqlx::query("INSERT INTO campaigns (name) VALUES ('kept')")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let store = open(&dir).await;
    assert!(store.campaign_by_name("kept").await.unwrap().is_some());
}

#[tokio::test]
async fn a_database_from_a_newer_dialerd_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'future', 1, x'00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    store.close().await;
    let err = Store::open(&dir.path().join("d.db"), Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OpenError::TooNew { found: 9999, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer dialerd"), "{err}");
}

#[tokio::test]
async fn an_unwritable_path_is_an_error_naming_it() {
    let err = Store::open(
        std::path::Path::new("/nonexistent-dir/x/d.db"),
        Arc::new(SystemClock),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent-dir/x/d.db"), "{err}");
}

async fn plan(store: &Store, sql: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(store.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|r| r.3)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[tokio::test]
async fn the_due_and_outstanding_queries_use_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let due = plan(
        &store,
        &super::contacts::due_sql()
            .replace("?1", "1")
            .replace("?2", "'2026-01-01T00:00:00Z'")
            .replace("?3", "10"),
    )
    .await;
    assert!(
        due.contains("contacts_due") && !due.contains("TEMP B-TREE"),
        "the due query must walk the index, never sort: {due}"
    );
    assert!(due.contains("contacts_due"), "{due}");
    let outstanding = plan(
        &store,
        "SELECT id FROM attempts WHERE outcome IS NULL AND state IN ('sending', 'accepted', 'uncertain') ORDER BY agent_id, sent_at",
    )
    .await;
    assert!(
        outstanding.contains("attempts_outstanding"),
        "{outstanding}"
    );
}

#[tokio::test]
async fn states_outside_the_contract_are_refused_by_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    sqlx::query("INSERT INTO campaigns (name) VALUES ('c')")
        .execute(store.pool())
        .await
        .unwrap();
    let bad = sqlx::query("INSERT INTO contacts (campaign_id, phone_number, state) VALUES (1, '+14155552671', 'dialing')")
        .execute(store.pool())
        .await;
    assert!(bad.is_err());
    let bad =
        sqlx::query("INSERT INTO contacts (campaign_id, phone_number) VALUES (42, '+14155552671')")
            .execute(store.pool())
            .await;
    assert!(bad.is_err(), "foreign keys are enforced");
}

#[tokio::test]
async fn due_times_written_in_other_formats_are_made_canonical_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    sqlx::query("INSERT INTO campaigns (name) VALUES ('c')")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO contacts (campaign_id, phone_number, next_attempt_at) VALUES \
         (1, '+14155552671', '2026-07-01 20:00:00'), (1, '+14155552672', '2026-07-01T22:00:00+02:00'), \
         (1, '+14155552673', 'tomorrow')",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let rows: Vec<(Option<String>, String)> =
        sqlx::query_as("SELECT next_attempt_at, state FROM contacts ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows[0],
        (Some("2026-07-01T20:00:00Z".into()), "pending".into())
    );
    assert_eq!(
        rows[1],
        (Some("2026-07-01T20:00:00Z".into()), "pending".into())
    );
    assert_eq!(
        rows[2].1, "invalid",
        "text that is not a time is refused, never read as due now"
    );
    sqlx::query("UPDATE contacts SET next_attempt_at = '2026-08-01 09:30:00' WHERE id = 1")
        .execute(store.pool())
        .await
        .unwrap();
    let t: String = sqlx::query_scalar("SELECT next_attempt_at FROM contacts WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(t, "2026-08-01T09:30:00Z");
}
