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

/// Text in a campaign's spend cap or estimate is refused when written: read
/// back, it would fail every read of `campaigns`, and every sweep with it.
#[tokio::test]
async fn a_spend_cap_written_as_text_is_refused_and_campaigns_stay_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    sqlx::query("INSERT INTO campaigns (name) VALUES ('capped')")
        .execute(store.pool())
        .await
        .unwrap();
    for sql in [
        "UPDATE campaigns SET max_cost = '$10'",
        "UPDATE campaigns SET cost_estimate = '12,50'",
        "UPDATE campaigns SET max_cost = -1",
    ] {
        let err = sqlx::query(sql).execute(store.pool()).await.unwrap_err();
        assert!(err.to_string().contains("CHECK"), "{sql}: {err}");
    }
    sqlx::query("UPDATE campaigns SET max_cost = '12.50', cost_estimate = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let c = store.campaign_by_name("capped").await.unwrap().unwrap();
    assert_eq!((c.max_cost, c.cost_estimate), (Some(12.5), Some(2.0)));
    assert_eq!(store.campaigns().await.unwrap().len(), 1);
}

/// Migration 5 copies `contacts` and `attempts` into rebuilt tables: every
/// row, id and link must survive, and every rule must still hold after it.
#[tokio::test]
async fn upgrading_a_version_4_database_keeps_every_row_link_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    let old = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    MIGRATOR.run_to(4, &old).await.unwrap();
    for sql in [
        "INSERT INTO campaigns (id, name) VALUES (7, 'kept'), (8, 'other')",
        "INSERT INTO contacts (id, campaign_id, phone_number, call_context, state, attempts, validated) \
         VALUES (41, 7, '+14155552671', '{\"n\":1}', 'done', 1, 1), \
                (42, 7, '+14155552672', '{}', 'pending', 0, 1), \
                (43, 8, '+14155552671', '{}', 'retry_wait', 1, 1)",
        "INSERT INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, \
                               call_log_id, outcome, sent_at, uncertain_at) \
         VALUES (5, 41, 7, 1, 'accepted', 3, '+14155552671', 900, 'completed', '2026-11-01T10:00:00Z', NULL), \
                (6, 43, 8, 1, 'uncertain', 3, '+14155552671', NULL, NULL, '2026-11-01T10:00:01Z', '2026-11-01T10:00:05Z')",
        // An operator's own index and trigger on the rebuilt tables.
        "CREATE INDEX contacts_by_external_id ON contacts(external_id)",
        "CREATE TRIGGER operator_audit AFTER UPDATE OF state ON contacts \
         BEGIN INSERT INTO events (at, kind, contact_id) VALUES ('2026-11-01T00:00:00Z', 'operator', NEW.id); END",
    ] {
        sqlx::query(sql).execute(&old).await.unwrap();
    }
    old.close().await;

    let store = Store::open(&path, Arc::new(SystemClock)).await.unwrap();
    let pool = store.pool();
    let contacts: Vec<(i64, i64, String, String, String)> = sqlx::query_as(
        "SELECT id, campaign_id, phone_number, call_context, state FROM contacts ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        contacts,
        vec![
            (
                41,
                7,
                "+14155552671".into(),
                "{\"n\":1}".into(),
                "done".into()
            ),
            (42, 7, "+14155552672".into(), "{}".into(), "pending".into()),
            (
                43,
                8,
                "+14155552671".into(),
                "{}".into(),
                "retry_wait".into()
            ),
        ]
    );
    type AttemptRow = (i64, i64, String, Option<i64>, Option<String>);
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT id, contact_id, state, call_log_id, uncertain_at FROM attempts ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        attempts,
        vec![
            (5, 41, "accepted".into(), Some(900), None),
            (
                6,
                43,
                "uncertain".into(),
                None,
                // Migration 8 keeps the instant, to the millisecond.
                Some("2026-11-01T10:00:05.000Z".into())
            ),
        ]
    );
    let outcome: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM contact_outcomes WHERE contact_id = 41")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(
        outcome.as_deref(),
        Some("completed"),
        "views read the new tables"
    );

    // The pool's connections still enforce foreign keys, and they cascade.
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let problems: Vec<(String,)> = sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
        .fetch_all(pool)
        .await
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    sqlx::query("DELETE FROM contacts WHERE id = 43")
        .execute(pool)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE contact_id = 43")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "deleting a contact still deletes its attempts");

    // The rules: one contact per number and campaign, the state and outcome
    // lists, the due-time update trigger.
    for bad in [
        "INSERT INTO contacts (campaign_id, phone_number) VALUES (7, '+14155552671')",
        "INSERT INTO contacts (campaign_id, phone_number, state) VALUES (7, '+14155550000', 'dialing')",
        "UPDATE attempts SET outcome = 'maybe' WHERE id = 5",
        "UPDATE attempts SET state = 'lost' WHERE id = 5",
        "INSERT INTO contacts (campaign_id, phone_number) VALUES (99, '+14155550000')",
    ] {
        assert!(sqlx::query(bad).execute(pool).await.is_err(), "{bad}");
    }
    sqlx::query("UPDATE contacts SET next_attempt_at = '2026-11-25 08:00:00' WHERE id = 42")
        .execute(pool)
        .await
        .unwrap();
    let due: String = sqlx::query_scalar("SELECT next_attempt_at FROM contacts WHERE id = 42")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(due, "2026-11-25T08:00:00Z");
    // The operator's objects are back (and said so); dialerd's dropped ones are not.
    let objects: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type IN ('index', 'trigger') AND tbl_name = 'contacts' ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        objects,
        [
            "contacts_by_external_id",
            "contacts_due",
            "contacts_due_time_on_update",
            "contacts_unvalidated",
            "operator_audit",
            "sqlite_autoindex_contacts_1",
            "webhook_contact_final",
        ]
    );
    let audited = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM events WHERE kind = 'operator' AND contact_id = 42",
        )
        .fetch_one(pool)
        .await
        .unwrap()
    };
    let before = audited().await;
    sqlx::query("UPDATE contacts SET state = 'cancelled' WHERE id = 42")
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(
        audited().await,
        before + 1,
        "the operator's trigger runs again"
    );
    let said: Vec<String> =
        sqlx::query_scalar("SELECT detail FROM events WHERE kind = 'migration' ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(said.len(), 4, "{said:?}");
    assert!(said[0].contains("drops contacts_by_external_id") && said[0].contains("CREATE INDEX"));
    assert!(said[3].starts_with("recreated operator_audit"), "{said:?}");
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    let by_number = plan(
        &store,
        "SELECT id FROM contacts WHERE phone_number = '+14155552671'",
    )
    .await;
    assert!(
        by_number.contains("USING INDEX") || by_number.contains("USING COVERING INDEX"),
        "a number's contacts are found through the unique index: {by_number}"
    );
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
            .replace("?3", "10")
            .replace("?4", "'2025-12-31T00:00:00Z'"),
    )
    .await;
    assert!(
        due.contains("contacts_due") && !due.contains("TEMP B-TREE"),
        "the due query must walk the index, never sort: {due}"
    );
    assert!(due.contains("contacts_due"), "{due}");
    assert!(
        due.contains("attempts_by_number"),
        "the rules on a number read its attempts by the index: {due}"
    );
    for prefix_query in [
        concat!(
            "SELECT id FROM attempts WHERE ",
            live_attempt!(""),
            " ORDER BY agent_id, sent_at"
        ),
        concat!(
            "SELECT a.id FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE ",
            live_attempt!("a."),
            " ORDER BY a.agent_id, a.sent_at"
        ),
    ] {
        let outstanding = plan(&store, prefix_query).await;
        assert!(
            outstanding.contains("attempts_outstanding") && !outstanding.contains("TEMP B-TREE"),
            "{prefix_query}: {outstanding}"
        );
    }
}

#[tokio::test]
async fn the_dial_time_read_finds_attempts_and_numbers_by_their_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let read = plan(
        &store,
        &super::dial::batch_sql()
            .replace("?1", "'[1,2,3]'")
            .replace("?2", "'2025-12-31T00:00:00Z'"),
    )
    .await;
    assert!(
        read.contains("attempts_by_number") && read.contains("attempts_by_contact"),
        "the number's and the contact's attempts are read by their indexes: {read}"
    );
    assert!(
        !read.contains("SCAN a") && !read.contains("SCAN n") && !read.contains("SCAN c"),
        "no table is scanned: {read}"
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
    // Another program's rows, as it wrote them; validating them (before any
    // dial) makes their times canonical or the contact invalid.
    sqlx::query(
        "INSERT INTO contacts (campaign_id, phone_number, next_attempt_at) VALUES \
         (1, '+14155552671', '2026-07-01 20:00:00'), (1, '+14155552672', '2026-07-01T22:00:00+02:00'), \
         (1, '+14155552673', 'tomorrow'), (1, '+14155552674', NULL)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let ok = |n: &str| Ok(n.to_string());
    store
        .store_validations(&[
            (1, ok("+14155552671")),
            (2, ok("+14155552672")),
            (3, ok("+14155552673")),
            (4, ok("+14155552674")),
        ])
        .await
        .unwrap();
    let rows: Vec<(Option<String>, String, Option<String>)> =
        sqlx::query_as("SELECT next_attempt_at, state, invalid_reason FROM contacts ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows[0],
        (Some("2026-07-01T20:00:00Z".into()), "pending".into(), None)
    );
    assert_eq!(
        rows[1],
        (Some("2026-07-01T20:00:00Z".into()), "pending".into(), None)
    );
    assert_eq!(
        rows[2].1, "invalid",
        "text that is not a time is refused, never read as due now"
    );
    assert!(
        rows[2]
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("'tomorrow' is not a time")
    );
    assert_eq!(rows[3], (None, "pending".into(), None));
    sqlx::query("UPDATE contacts SET next_attempt_at = '2026-08-01 09:30:00' WHERE id = 1")
        .execute(store.pool())
        .await
        .unwrap();
    let t: String = sqlx::query_scalar("SELECT next_attempt_at FROM contacts WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        t, "2026-08-01T09:30:00Z",
        "an update by another program too"
    );
}

#[tokio::test]
async fn the_dial_time_read_counts_a_numbers_other_attempts_as_the_claim_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let now = chrono::Utc::now();
    let ago = |h: i64| crate::clock::to_db_text_ms(now - chrono::Duration::hours(h));
    for sql in [
        "INSERT INTO campaigns (id, name) VALUES (1, 'a'), (2, 'b')",
        "INSERT INTO contacts (id, campaign_id, phone_number, state, validated) VALUES \
         (1, 1, '+14155552671', 'in_progress', 1), (2, 2, '+14155552671', 'pending', 1)",
    ] {
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    }
    // The attempt asked about, then the number's others: a live call an
    // hour ago, a finished one two hours ago, one a day and a half ago,
    // and one never placed.
    let rows = [
        (1, 1, "sending", None, ago(0)),
        (2, 2, "accepted", None, ago(1)),
        (3, 2, "accepted", Some("completed"), ago(2)),
        (4, 2, "accepted", Some("completed"), ago(36)),
        (5, 2, "not_placed", None, ago(3)),
    ];
    for (id, contact, state, outcome, sent) in rows {
        sqlx::query(
            "INSERT INTO attempts (id, contact_id, campaign_id, attempt_no, state, outcome, agent_id, to_number, sent_at) \
             VALUES (?, ?, ?, ?, ?, ?, 7, '+14155552671', ?)",
        )
        .bind(id)
        .bind(contact)
        .bind(contact)
        .bind(id)
        .bind(state)
        .bind(outcome)
        .bind(sent)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let states = store.dial_states(&[1, 99], now).await.unwrap();
    assert!(!states.contains_key(&99), "a missing attempt is missing");
    let s = &states[&1];
    assert!(s.owns_attempt);
    assert_eq!(s.contact.calls_last_24h, 2, "{s:?}");
    assert_eq!(
        s.contact
            .oldest_call_last_24h
            .map(crate::clock::to_db_text_ms),
        Some(ago(2))
    );
    assert!(s.contact.live_attempt_elsewhere, "{s:?}");
    assert!(!s.contact.on_dnc);
    // The claim's own query reads the same facts for the other contact.
    let claim: (i64, Option<String>, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT calls_24h, oldest_24h, live_elsewhere FROM ({}) WHERE id = 2",
        super::contacts::due_sql()
    )))
    .bind(2)
    .bind(crate::clock::to_db_text(now))
    .bind(10)
    .bind(crate::clock::to_db_text(now - chrono::Duration::hours(24)))
    .fetch_one(store.pool())
    .await
    .unwrap();
    // It counts attempt 1 too (it is not that contact's own).
    assert_eq!(claim, (3, Some(ago(2)), 1));
    sqlx::query("INSERT INTO dnc (phone_number) VALUES ('+14155552671')")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE attempts SET outcome = 'completed' WHERE id = 2")
        .execute(store.pool())
        .await
        .unwrap();
    let s = &store.dial_states(&[1], now).await.unwrap()[&1];
    assert!(s.contact.on_dnc, "a DNC entry made after the claim is seen");
    assert!(!s.contact.live_attempt_elsewhere, "{s:?}");
}
