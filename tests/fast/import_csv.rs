//! CSV imports through the library API and the real binary: header rules,
//! delimiters, encodings, line numbers, dedupe, hostile files, exit statuses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use dialerd::clock::ManualClock;
use dialerd::config::{CampaignDefaults, Settings};
use dialerd::error::Exit;
use dialerd::import::{
    CampaignOverrides, ImportError, ImportReport, ImportRequest, SqliteSelect, import_file,
    validate_direct,
};
use dialerd::store::Store;
use sqlx::Row;
use tempfile::TempDir;

struct Env {
    dir: TempDir,
    store: Store,
    defaults: CampaignDefaults,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap());
    let store = Store::open(&dir.path().join("d.db"), Arc::new(clock))
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

impl Env {
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn request(&self, path: &Path, campaign: &str) -> ImportRequest {
        ImportRequest {
            path: path.to_path_buf(),
            campaign: campaign.into(),
            overrides: CampaignOverrides::default(),
            select: SqliteSelect::Auto,
            dry_run: false,
        }
    }

    async fn import(
        &self,
        name: &str,
        bytes: impl AsRef<[u8]>,
    ) -> Result<ImportReport, ImportError> {
        let p = self.file(name, bytes);
        import_file(&self.store, &self.defaults, &self.request(&p, "c")).await
    }

    async fn run(&self, req: &ImportRequest) -> Result<ImportReport, ImportError> {
        import_file(&self.store, &self.defaults, req).await
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn numbers(&self) -> Vec<String> {
        sqlx::query_scalar("SELECT phone_number FROM contacts ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap()
    }

    async fn contexts(&self) -> Vec<serde_json::Value> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT call_context FROM contacts ORDER BY id")
            .fetch_all(self.store.pool())
            .await
            .unwrap();
        rows.iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect()
    }

    async fn assert_nothing_written(&self) {
        for t in ["campaigns", "contacts", "imports", "import_rejects"] {
            assert_eq!(
                self.count(&format!("SELECT COUNT(*) FROM {t}")).await,
                0,
                "{t} must stay empty"
            );
        }
    }
}

fn data_err(r: Result<ImportReport, ImportError>) -> String {
    match r {
        Err(e @ ImportError::DataErr { .. }) => {
            assert_eq!(e.exit(), Exit::DataErr);
            e.to_string()
        }
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[tokio::test]
async fn header_variants_find_the_phone_column_by_priority_after_normalising() {
    for (header, expect_ctx) in [
        ("Phone Number,name", "name"),
        ("To-Number,name", "name"),
        (" MSISDN ,name", "name"),
        ("Mobile,name,Phone", "Mobile"),
    ] {
        let e = env().await;
        let row = if header.ends_with("Phone") {
            "+14155550000,Ann,+14155552671"
        } else {
            "+14155552671,Ann"
        };
        let r = e
            .import("a.csv", format!("{header}\n{row}\n"))
            .await
            .unwrap();
        assert_eq!(r.counts.imported, 1, "{header}");
        assert_eq!(e.numbers().await, vec!["+14155552671"], "{header}");
        assert!(e.contexts().await[0].get(expect_ctx).is_some(), "{header}");
    }
}

#[tokio::test]
async fn each_delimiter_is_sniffed_from_the_header_line() {
    for d in [",", ";", "\t", "|"] {
        let e = env().await;
        let text = format!("phone{d}name{d}note\n+14155552671{d}Ann{d}\"a, b; c\"\n");
        e.import("a.csv", text).await.unwrap();
        assert_eq!(
            e.contexts().await[0],
            serde_json::json!({"name": "Ann", "note": "a, b; c"}),
            "{d:?}"
        );
    }
}

#[tokio::test]
async fn a_utf8_bom_and_crlf_line_endings_import_like_plain_lf() {
    let e = env().await;
    let r = e
        .import(
            "a.csv",
            "\u{feff}phone,name\r\n+14155552671,Ann\r\n+14155552672,Bob\r\n",
        )
        .await
        .unwrap();
    assert_eq!(r.counts.imported, 2);
    assert_eq!(e.contexts().await[1], serde_json::json!({"name": "Bob"}));
}

#[tokio::test]
async fn quoted_newlines_keep_the_line_numbers_of_later_rows_right() {
    let e = env().await;
    let text = "phone,note\n+14155552671,\"one\ntwo\nthree\"\nnot a number,x\n+14155552672,y\n";
    let r = e.import("a.csv", text).await.unwrap();
    assert_eq!(r.counts.imported, 2);
    assert_eq!(r.rejects[0].line, 5);
    assert_eq!(
        r.rejects[0].to_string(),
        "line 5: \"not a number\" is not a phone number"
    );
    let lines: Vec<i64> = sqlx::query_scalar("SELECT source_line FROM contacts ORDER BY id")
        .fetch_all(e.store.pool())
        .await
        .unwrap();
    assert_eq!(lines, vec![2, 6]);
    assert_eq!(e.contexts().await[0]["note"], "one\ntwo\nthree");
}

#[tokio::test]
async fn windows_1252_text_is_decoded_not_rejected() {
    let e = env().await;
    let r = e
        .import("a.csv", b"phone,name,cafe\n+14155552671,Zo\xEB,Caf\xE9\n")
        .await
        .unwrap();
    assert_eq!(r.counts.imported, 1);
    assert_eq!(
        e.contexts().await[0],
        serde_json::json!({"name": "Zoë", "cafe": "Café"})
    );
}

#[tokio::test]
async fn extra_columns_go_into_call_context_under_their_written_names() {
    let e = env().await;
    e.import(
        "a.csv",
        "phone, First Name ,Plan-Type\n+14155552671, Ann ,gold\n",
    )
    .await
    .unwrap();
    assert_eq!(
        e.contexts().await[0],
        serde_json::json!({"First Name": "Ann", "Plan-Type": "gold"})
    );
}

#[tokio::test]
async fn timezone_agent_id_and_external_id_columns_are_stored_on_the_contact() {
    let e = env().await;
    e.import(
        "a.csv",
        "phone,timezone,Agent ID,external_id,name\n+14155552671,America/Los_Angeles,42,crm-1,Ann\n",
    )
    .await
    .unwrap();
    let row = sqlx::query("SELECT timezone, agent_id, external_id, call_context FROM contacts")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "America/Los_Angeles");
    assert_eq!(row.get::<i64, _>(1), 42);
    assert_eq!(row.get::<String, _>(2), "crm-1");
    assert_eq!(row.get::<String, _>(3), r#"{"name":"Ann"}"#);
}

#[tokio::test]
async fn national_numbers_use_the_region_flag_then_the_configured_default() {
    let e = env().await;
    let p = e.file("a.csv", "phone\n(415) 555-2671\n020 7946 0958\n");
    let mut req = e.request(&p, "us");
    req.overrides.set("region", "US").unwrap();
    let r = e.run(&req).await.unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 1));
    let mut defaults = e.defaults.clone();
    defaults.region = Some(phonenumber::country::Id::GB);
    let r = import_file(&e.store, &defaults, &e.request(&p, "gb"))
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 1));
    assert_eq!(e.numbers().await, vec!["+14155552671", "+442079460958"]);
}

#[tokio::test]
async fn duplicates_within_a_file_and_across_imports_are_counted_not_inserted() {
    let e = env().await;
    let r = e
        .import(
            "a.csv",
            "phone\n+14155552671\n+1 (415) 555-2671\n+14155552672\n",
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.duplicate), (2, 1));
    let r = e
        .import("b.csv", "phone\n+14155552672\n+14155552673\n")
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.duplicate), (1, 1));
    assert_eq!(
        r.summary(),
        "imported 1 of 2 rows into campaign \"c\" (1 duplicate, 0 rejected)"
    );
    assert_eq!(e.count("SELECT COUNT(*) FROM contacts").await, 3);
    assert_eq!(
        e.count("SELECT rows_duplicate FROM imports WHERE id = 2")
            .await,
        1
    );
}

#[tokio::test]
async fn importing_the_same_file_twice_adds_nothing_and_says_so() {
    let e = env().await;
    let p = e.file("a.csv", "phone\n+14155552671\n+14155552672\n");
    e.run(&e.request(&p, "c")).await.unwrap();
    let again = e.run(&e.request(&p, "c")).await.unwrap();
    assert!(again.already_imported.is_some());
    assert_eq!(again.counts.imported, 0);
    assert!(
        again
            .summary()
            .starts_with("nothing imported: this content was already imported"),
        "{}",
        again.summary()
    );
    assert_eq!(e.count("SELECT COUNT(*) FROM contacts").await, 2);
    assert_eq!(e.count("SELECT COUNT(*) FROM imports").await, 1);
}

#[tokio::test]
async fn a_dry_run_counts_like_an_import_and_writes_nothing() {
    let e = env().await;
    let p = e.file("a.csv", "phone\n+14155552671\n+14155552671\nbad\n");
    let mut req = e.request(&p, "c");
    req.dry_run = true;
    let r = e.run(&req).await.unwrap();
    assert_eq!(
        (
            r.counts.total,
            r.counts.imported,
            r.counts.duplicate,
            r.counts.rejected
        ),
        (3, 1, 1, 1)
    );
    assert!(r.summary().contains("nothing was written"));
    e.assert_nothing_written().await;
    // Against an existing campaign, numbers already in it count as duplicates.
    e.import("b.csv", "phone\n+14155552671\n").await.unwrap();
    let r = e.run(&req).await.unwrap();
    assert_eq!((r.counts.imported, r.counts.duplicate), (0, 2));
    assert_eq!(e.count("SELECT COUNT(*) FROM imports").await, 1);
}

#[tokio::test]
async fn imported_contacts_are_validated_pending_and_linked_to_their_import() {
    let e = env().await;
    e.import("a.csv", "phone\n+14155552671\n").await.unwrap();
    let row = sqlx::query(
        "SELECT validated, state, import_id, source_line, created_at, updated_at FROM contacts",
    )
    .fetch_one(e.store.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<i64, _>(0), 1);
    assert_eq!(row.get::<String, _>(1), "pending");
    assert_eq!(row.get::<i64, _>(2), 1);
    assert_eq!(row.get::<i64, _>(3), 2);
    assert_eq!(row.get::<String, _>(4), "2026-11-25T08:00:00Z");
    assert_eq!(row.get::<String, _>(5), "2026-11-25T08:00:00Z");
    let imp =
        sqlx::query("SELECT source, sha256, rows_total, started_at, finished_at FROM imports")
            .fetch_one(e.store.pool())
            .await
            .unwrap();
    assert!(imp.get::<String, _>(0).ends_with("a.csv"));
    assert_eq!(imp.get::<String, _>(1).len(), 64);
    assert_eq!(imp.get::<i64, _>(2), 1);
    assert_eq!(
        imp.get::<Option<String>, _>(4).as_deref(),
        Some("2026-11-25T08:00:00Z")
    );
}

#[tokio::test]
async fn a_file_without_a_phone_column_fails_with_65_and_leaves_nothing_behind() {
    let e = env().await;
    let msg = data_err(e.import("a.csv", "name,email\nAnn,a@example.com\n").await);
    assert!(
        msg.contains("no phone column") && msg.contains("\"name\", \"email\""),
        "{msg}"
    );
    e.assert_nothing_written().await;
}

#[tokio::test]
async fn an_empty_file_and_a_header_only_file_fail_with_65() {
    let e = env().await;
    assert!(data_err(e.import("a.csv", "").await).contains("empty"));
    assert!(data_err(e.import("b.csv", "phone,name\n").await).contains("no rows"));
    e.assert_nothing_written().await;
}

#[tokio::test]
async fn a_file_of_only_invalid_rows_fails_with_65_and_leaves_nothing_behind() {
    let e = env().await;
    let r = e.import("a.csv", "phone\n+1 123\nhello\n").await;
    let Err(ImportError::DataErr {
        report: Some(report),
        ..
    }) = &r
    else {
        panic!("{r:?}")
    };
    assert_eq!(report.counts.rejected, 2);
    assert_eq!(
        report.rejects[0].to_string(),
        "line 2: \"+1 123\" is not a valid number in its country's numbering plan"
    );
    e.assert_nothing_written().await;
    // Into an existing campaign, nothing is added either (no import row, no rejects).
    e.import("b.csv", "phone\n+14155552671\n").await.unwrap();
    data_err(e.import("c.csv", "phone\n+1 123\n").await);
    assert_eq!(e.count("SELECT COUNT(*) FROM imports").await, 1);
    assert_eq!(e.count("SELECT COUNT(*) FROM import_rejects").await, 0);
}

#[tokio::test]
async fn ragged_rows_are_rejected_with_their_line_and_the_field_counts() {
    let e = env().await;
    let r = e
        .import(
            "a.csv",
            "phone,name\n+14155552671,Ann,extra\n+14155552672\n+14155552673,Cy\n",
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 2));
    assert!(
        r.rejects[0]
            .to_string()
            .starts_with("line 2: the row has 3 fields but the header has 2"),
        "{}",
        r.rejects[0]
    );
    assert!(
        r.rejects[1]
            .to_string()
            .starts_with("line 3: the row has 1 field but"),
        "{}",
        r.rejects[1]
    );
    let stored: Vec<(i64, String)> =
        sqlx::query_as("SELECT line, raw FROM import_rejects ORDER BY line")
            .fetch_all(e.store.pool())
            .await
            .unwrap();
    assert_eq!(
        stored,
        vec![
            (2, "+14155552671,Ann,extra".to_string()),
            (3, "+14155552672".to_string())
        ]
    );
}

#[tokio::test]
async fn a_five_megabyte_field_rejects_its_row_and_later_rows_still_import() {
    let e = env().await;
    let big = "x".repeat(5 * 1024 * 1024);
    let r = e
        .import(
            "a.csv",
            format!("phone,notes\n+14155552671,\"{big}\"\n+14155552672,ok\n"),
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 1));
    assert!(
        r.rejects[0].reason.contains("column \"notes\" is 5.0 MB"),
        "{}",
        r.rejects[0]
    );
    let raw: String = sqlx::query_scalar("SELECT raw FROM import_rejects")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert!(raw.len() <= 1100, "the stored raw text is truncated");
}

#[tokio::test]
async fn an_unclosed_quote_stops_reading_with_a_reason_instead_of_swallowing_the_file() {
    let e = env().await;
    let mut text = String::from("phone,notes\n+14155552671,ok\n+14155552672,\"never closed\n");
    let filler = "+14155552673,more\n".repeat(17 * 1024 * 1024 / 18);
    text.push_str(&filler);
    let r = e.import("a.csv", text).await.unwrap();
    assert_eq!(r.counts.imported, 1);
    assert!(
        r.rejects[0]
            .to_string()
            .starts_with("line 3: a record is longer than 16 MiB"),
        "{}",
        r.rejects[0]
    );
}

#[tokio::test]
async fn duplicate_headers_fail_with_65_naming_the_header() {
    let e = env().await;
    let msg = data_err(
        e.import("a.csv", "phone,Notes,notes\n+14155552671,a,b\n")
            .await,
    );
    assert!(msg.contains("two columns named \"Notes\""), "{msg}");
    e.assert_nothing_written().await;
}

#[tokio::test]
async fn formulas_are_stored_as_text_and_formula_prefixed_numbers_still_parse() {
    let e = env().await;
    let r = e
        .import(
            "a.csv",
            "phone,note\n=+14155552671,=cmd|' /C calc'!A0\n'+14155552672,@SUM(1+1)\n",
        )
        .await
        .unwrap();
    assert_eq!(r.counts.imported, 2);
    assert_eq!(e.numbers().await, vec!["+14155552671", "+14155552672"]);
    assert_eq!(e.contexts().await[0]["note"], "=cmd|' /C calc'!A0");
    assert_eq!(e.contexts().await[1]["note"], "@SUM(1+1)");
}

#[tokio::test]
async fn an_invalid_time_zone_rejects_only_its_row() {
    let e = env().await;
    let r = e
        .import(
            "a.csv",
            "phone,timezone\n+14155552671,Mars/Olympus\n+14155552672,Europe/Paris\n",
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 1));
    assert!(
        r.rejects[0]
            .to_string()
            .contains("line 2: unknown time zone \"Mars/Olympus\""),
        "{}",
        r.rejects[0]
    );
}

#[tokio::test]
async fn a_missing_file_or_a_directory_fails_with_66() {
    let e = env().await;
    for p in [e.dir.path().join("nope.csv"), e.dir.path().to_path_buf()] {
        let r = e.run(&e.request(&p, "c")).await;
        assert!(
            matches!(&r, Err(err) if err.exit() == Exit::NoInput),
            "{r:?}"
        );
    }
    e.assert_nothing_written().await;
}

#[tokio::test]
async fn new_contacts_reopen_a_completed_campaign() {
    let e = env().await;
    e.import("a.csv", "phone\n+14155552671\n").await.unwrap();
    sqlx::query("UPDATE campaigns SET status = 'completed'")
        .execute(e.store.pool())
        .await
        .unwrap();
    e.import("b.csv", "phone\n+14155552671\n").await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM campaigns")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "completed", "only duplicates: nothing new to dial");
    e.import("c.csv", "phone\n+14155552672\n").await.unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM campaigns")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert_eq!(status, "active");
}

#[tokio::test]
async fn flags_shape_a_new_campaign_and_are_kept_out_of_an_existing_one_with_a_warning() {
    let e = env().await;
    let p = e.file("a.csv", "phone\n+14155552671\n");
    let mut req = e.request(&p, "spring");
    for (k, v) in [
        ("window", "10:00-18:00"),
        ("agent_id", "7"),
        ("max_attempts", "5"),
        ("timezone", "Europe/Paris"),
    ] {
        req.overrides.set(k, v).unwrap();
    }
    let r = e.run(&req).await.unwrap();
    assert!(r.campaign_created && r.warnings.is_empty());
    let c = e.store.campaign_by_name("spring").await.unwrap().unwrap();
    assert_eq!(
        (
            c.window_start.as_str(),
            c.window_end.as_str(),
            c.agent_id,
            c.max_attempts
        ),
        ("10:00", "18:00", Some(7), 5)
    );
    assert_eq!(c.timezone, "Europe/Paris");
    let q = e.file("b.csv", "phone\n+14155552672\n");
    let mut req = e.request(&q, "spring");
    req.overrides.set("window", "08:00-12:00").unwrap();
    let r = e.run(&req).await.unwrap();
    assert_eq!(r.counts.imported, 1);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].contains("window 08:00-12:00 is ignored (the campaign has 10:00-18:00)"),
        "{}",
        r.warnings[0]
    );
    let c = e.store.campaign_by_name("spring").await.unwrap().unwrap();
    assert_eq!(c.window_start, "10:00");
}

#[tokio::test]
async fn batches_of_thousands_of_rows_land_in_one_campaign_with_exact_counts() {
    let e = env().await;
    let mut text = String::from("phone,n\n");
    for i in 0..12_345u32 {
        text.push_str(&format!("+447400{i:06},{i}\n"));
    }
    text.push_str("+447400000000,dup\n");
    let r = e.import("a.csv", text).await.unwrap();
    assert_eq!(
        (r.counts.total, r.counts.imported, r.counts.duplicate),
        (12_346, 12_345, 1)
    );
    assert_eq!(e.count("SELECT COUNT(*) FROM contacts").await, 12_345);
    assert_eq!(e.count("SELECT rows_imported FROM imports").await, 12_345);
}

/// The import copies its write-ahead log into the database file as it goes
/// (on a connection of its own): with the daemon's connections open, nothing
/// else would, and the log would grow as large as the import.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_import_is_checkpointed_as_it_goes_and_its_log_stays_small() {
    let e = env().await;
    let rows = 16 * dialerd::import::BATCH_ROWS;
    let mut text = String::from("phone,first_name,notes\n");
    for i in 0..rows {
        text.push_str(&format!(
            "+447400{i:06},Customer {i},renewal due {}\n",
            2026 + i % 3
        ));
    }
    let r = e.import("big.csv", text).await.unwrap();
    assert_eq!(r.counts.imported, rows as u64);
    let logical = e
        .count("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size")
        .await as u64;
    let size = |name: &str| {
        std::fs::metadata(e.dir.path().join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let (db, wal) = (size("d.db"), size("d.db-wal"));
    assert!(
        db * 10 >= logical * 9,
        "the database file holds {db} of {logical} bytes: the import's pages stayed in the log"
    );
    assert!(
        wal * 3 <= logical,
        "the log grew to {wal} bytes for a {logical}-byte database"
    );
}

#[tokio::test]
async fn rows_inserted_directly_are_normalised_or_marked_invalid_by_validate_direct() {
    let e = env().await;
    e.import("a.csv", "phone\n+14155552671\n").await.unwrap();
    let id = e.store.campaign_by_name("c").await.unwrap().unwrap().id;
    for raw in [
        "(415) 555-2672",
        "not a number",
        "415 555 2671",
        "+14155552673",
    ] {
        sqlx::query(
            "INSERT INTO contacts (campaign_id, phone_number, call_context) VALUES (?, ?, '{}')",
        )
        .bind(id)
        .bind(raw)
        .execute(e.store.pool())
        .await
        .unwrap();
    }
    sqlx::query(
        "UPDATE contacts SET timezone = 'Atlantis/Deep' WHERE phone_number = '+14155552673'",
    )
    .execute(e.store.pool())
    .await
    .unwrap();
    let raw = e.store.unvalidated_contacts(id, 100).await.unwrap();
    assert_eq!(raw.len(), 4);
    let results: Vec<(i64, Result<String, String>)> = raw
        .iter()
        .map(|c| {
            (
                c.id,
                validate_direct(
                    &c.phone_number,
                    c.timezone.as_deref(),
                    Some(phonenumber::country::Id::US),
                ),
            )
        })
        .collect();
    e.store.store_validations(&results).await.unwrap();
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT phone_number, state, invalid_reason FROM contacts ORDER BY id")
            .fetch_all(e.store.pool())
            .await
            .unwrap();
    assert_eq!(rows[1].0, "+14155552672", "rewritten to E.164");
    assert_eq!(rows[1].1, "pending");
    assert_eq!(rows[2].1, "invalid");
    assert_eq!(
        rows[2].2.as_deref(),
        Some("\"not a number\" is not a phone number")
    );
    assert_eq!(rows[3].1, "invalid", "a duplicate after normalisation");
    assert!(
        rows[3].2.as_deref().unwrap_or("").contains("duplicate"),
        "{:?}",
        rows[3]
    );
    assert_eq!(rows[4].1, "invalid");
    assert!(
        rows[4].2.as_deref().unwrap_or("").contains("Atlantis/Deep"),
        "{:?}",
        rows[4]
    );
}

// ---- through the real binary ----

fn dialerd(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dialerd"))
        .args(args)
        .current_dir(dir)
        .env("DIALERD_DATABASE__PATH", dir.join("bin.db"))
        .env_remove("DIALERD_CONFIG")
        .env("DIALERD_LOG__LEVEL", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_exits_0_and_prints_the_counts_and_the_first_rejects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        "phone,name\n+14155552671,Ann\n+14155552671,Dup\n+1 123,Bad\n",
    )
    .unwrap();
    let (code, out, err) = dialerd(dir.path(), &["import", "a.csv", "--campaign", "spring"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "imported 1 of 3 rows into new campaign \"spring\" (1 duplicate, 1 rejected)\n\
         calling zones of the valid rows: 0 from the timezone column, 2 from the number, \
         0 from the country (every zone of it), 0 from the campaign's zone\n\
         \x20 line 4: \"+1 123\" is not a valid number in its country's numbering plan\n"
    );
    let (code, out, _) = dialerd(dir.path(), &["import", "a.csv", "--campaign", "spring"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("nothing imported"), "{out}");
}

#[test]
fn the_binary_exits_65_66_and_64_for_unusable_data_missing_files_and_bad_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("np.csv"), "name\nAnn\n").unwrap();
    std::fs::write(dir.path().join("ok.csv"), "phone\n+14155552671\n").unwrap();
    let (code, _, err) = dialerd(dir.path(), &["import", "np.csv", "--campaign", "c"]);
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("no phone column"), "{err}");
    let (code, _, err) = dialerd(dir.path(), &["import", "missing.csv", "--campaign", "c"]);
    assert_eq!(code, 66, "{err}");
    let (code, _, err) = dialerd(dir.path(), &["import", ".", "--campaign", "c"]);
    assert_eq!(code, 66, "{err}");
    let (code, _, err) = dialerd(
        dir.path(),
        &["import", "ok.csv", "--campaign", "c", "--window", "9-5"],
    );
    assert_eq!(code, 64);
    assert!(err.contains("--window"), "{err}");
    let (code, _, err) = dialerd(
        dir.path(),
        &["import", "ok.csv", "--campaign", "c", "--region", "Narnia"],
    );
    assert_eq!(code, 64);
    assert!(err.contains("--region"), "{err}");
    let (code, out, _) = dialerd(
        dir.path(),
        &["import", "ok.csv", "--campaign", "c", "--dry-run"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("dry run: would import 1 of 1 row"), "{out}");
}

#[tokio::test]
async fn a_legacy_zone_abbreviation_is_rejected_with_its_line_and_a_reason() {
    let e = env().await;
    let r = e
        .import(
            "legacy.csv",
            "phone,timezone\n+14155552671,America/Los_Angeles\n+12125550123,EST\n\
             +13035550123,MST7MDT\n+16025550123,Etc/GMT+7\n+442079460958,\n",
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (2, 3));
    let lines: Vec<u64> = r.rejects.iter().map(|x| x.line).collect();
    assert_eq!(lines, [3, 4, 5]);
    assert!(
        r.rejects[0].reason.contains("\"EST\"") && r.rejects[0].reason.contains("daylight saving"),
        "{}",
        r.rejects[0].reason
    );
    assert!(
        r.rejects[1].reason.contains("POSIX rule"),
        "{}",
        r.rejects[1].reason
    );
    assert!(
        r.rejects[2].reason.contains("UTC-7"),
        "{}",
        r.rejects[2].reason
    );
}

#[tokio::test]
async fn the_import_report_counts_where_each_rows_zones_come_from() {
    let e = env().await;
    let r = e
        .import(
            "zones.csv",
            "phone,timezone\n+14155552671,America/Los_Angeles\n+12125550123,\n\
             +61412345678,\n+33142685300,\n+80012345678,\n",
        )
        .await
        .unwrap();
    // Column, number (New York), country (an Australian mobile, France), campaign (+800).
    assert_eq!(r.zone_sources, [1, 1, 2, 1]);
    let text = r.to_string();
    assert!(
        text.contains(
            "calling zones of the valid rows: 1 from the timezone column, 1 from the number, \
             2 from the country (every zone of it), 1 from the campaign's zone"
        ),
        "{text}"
    );
}

/// A pattern of the numbering plan must match the whole national number:
/// `+3161234567800` (two digits too many) is no Dutch mobile, and a
/// number with a digit too many must never slip past a DNC entry.
#[tokio::test]
async fn numbers_with_trailing_digits_are_rejected_with_their_line() {
    let e = env().await;
    let r = e
        .import(
            "t.csv",
            "phone\n+31612345678\n+3161234567800\n+4420794609580\n+1415555267100\n",
        )
        .await
        .unwrap();
    assert_eq!((r.counts.imported, r.counts.rejected), (1, 3));
    assert_eq!(e.numbers().await, vec!["+31612345678"]);
    let rejects: Vec<(i64, String)> =
        sqlx::query_as("SELECT line, reason FROM import_rejects ORDER BY line")
            .fetch_all(e.store.pool())
            .await
            .unwrap();
    assert_eq!(
        rejects.iter().map(|(l, _)| *l).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    assert!(
        rejects[0].1.contains("+3161234567800") && rejects[0].1.contains("not a valid number"),
        "{rejects:?}"
    );
}
