//! The operator commands `status`, `campaigns`, `dnc` and `export`, run
//! through the real binary against a database prepared by SQL.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use chrono::Utc;
use dialerd::clock::{SystemClock, to_db_text};
use dialerd::store::Store;
use serde_json::Value;

/// A fresh database in a temporary directory.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dialerd.db"), Arc::new(SystemClock))
            .await
            .unwrap();
        Self { dir, store }
    }

    /// A fixture with the campaigns of [`seed`].
    async fn seeded() -> Self {
        let f = Self::new().await;
        seed(&f.store).await;
        f
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("dialerd.db")
    }

    /// Runs `dialerd ARGS` on this database.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dialerd"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("DIALERD_CONFIG")
            .env_remove("DIALERD_CAMPAIGN_DEFAULTS__REGION")
            .env("DIALERD_DATABASE__PATH", self.db())
            .output()
            .unwrap()
    }

    /// Runs `dialerd ARGS`, expecting success; returns standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dialerd {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    async fn exec(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.store.pool())
            .await
            .unwrap();
    }

    async fn scalar(&self, sql: &str) -> String {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    async fn contact_state(&self, phone: &str) -> String {
        self.scalar(&format!(
            "SELECT state FROM contacts WHERE phone_number = '{phone}'"
        ))
        .await
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Campaign `spring`: eight contacts, one in every interesting state, with
/// attempts and outcomes; campaign `autumn`: one pending contact.
async fn seed(store: &Store) {
    let sql = r#"
        INSERT INTO campaigns (id, name, agent_id) VALUES (1, 'spring', 77), (2, 'autumn', 78);
        INSERT INTO contacts (id, campaign_id, phone_number, call_context, state, attempts, invalid_reason) VALUES
            (1, 1, '+14155550101', '{}', 'pending', 0, NULL),
            (2, 1, '+14155550102', '{}', 'pending', 0, NULL),
            (3, 1, '+14155550103', '{}', 'in_progress', 1, NULL),
            (4, 1, '+14155550104', '{"note": "=1+2", "callback": "+14155552671"}', 'done', 1, NULL),
            (5, 1, '+14155550105', '{}', 'retry_wait', 1, NULL),
            (6, 1, '+14155550106', '{}', 'exhausted', 2, NULL),
            (7, 1, '12', '{}', 'invalid', 0, 'not a phone number'),
            (8, 1, '+14155550108', '{}', 'in_progress', 1, NULL),
            (9, 2, '+14155550109', '{}', 'pending', 0, NULL);
        INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, outcome,
                              duration_secs, transcript, cost, sent_at) VALUES
            (3, 1, 1, 'accepted', 77, '+14155550103', NULL, NULL, NULL, NULL, '2026-01-01T10:00:00Z'),
            (4, 1, 1, 'accepted', 77, '+14155550104', 'completed', 42.5, 'Hello, world', 0.25, '2026-01-01T10:00:00Z'),
            (5, 1, 1, 'accepted', 77, '+14155550105', 'no_answer', 0, NULL, 0.05, '2026-01-01T10:00:00Z'),
            (6, 1, 1, 'accepted', 77, '+14155550106', 'busy', 0, NULL, 0.01, '2026-01-01T10:00:00Z'),
            (6, 1, 2, 'accepted', 77, '+14155550106', 'failed', 0, NULL, 0.02, '2026-01-01T11:00:00Z'),
            (8, 1, 1, 'uncertain', 77, '+14155550108', NULL, NULL, NULL, NULL, '2026-01-01T10:00:00Z');
    "#;
    sqlx::raw_sql(sql).execute(store.pool()).await.unwrap();
}

fn campaign<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["campaigns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["campaign"] == name)
        .unwrap_or_else(|| panic!("{name} missing from {status}"))
}

#[tokio::test]
async fn status_json_reports_every_count_of_campaign_progress() {
    let f = Fixture::seeded().await;
    let status: Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    let spring = campaign(&status, "spring");
    let want = [
        ("contacts", 8),
        ("pending", 2),
        ("in_progress", 2),
        ("retry_wait", 1),
        ("done", 1),
        ("exhausted", 1),
        ("suppressed", 0),
        ("invalid", 1),
        ("cancelled", 0),
        ("attempts", 6),
        ("calls_placed", 5),
        ("outcome_completed", 1),
        ("outcome_no_answer", 1),
        ("outcome_busy", 1),
        ("outcome_failed", 1),
        ("outcome_unknown", 0),
        ("awaiting_outcome", 1),
        ("uncertain", 1),
    ];
    for (col, n) in want {
        assert_eq!(spring[col], n, "{col} in {spring}");
    }
    assert!(
        (spring["total_cost"].as_f64().unwrap() - 0.33).abs() < 1e-9,
        "{spring}"
    );
    assert_eq!(campaign(&status, "autumn")["pending"], 1);
    assert_eq!(status["dispatch_paused"], Value::Null);
    assert_eq!(status["daemon"]["running"], false);
}

#[tokio::test]
async fn status_prints_a_row_per_campaign_and_a_totals_line() {
    let f = Fixture::seeded().await;
    let out = f.ok(&["status"]);
    let line = |first: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.starts_with(first))
            .unwrap_or_else(|| panic!("no {first} line in\n{out}"));
        l.split_whitespace().map(String::from).collect()
    };
    // CAMPAIGN STATUS CONTACTS PENDING IN-PROGRESS RETRY-WAIT DONE EXHAUSTED SUPPRESSED INVALID CANCELLED
    assert_eq!(
        line("spring")[..11],
        [
            "spring", "active", "8", "2", "2", "1", "1", "1", "0", "1", "0"
        ]
    );
    assert_eq!(
        line("TOTAL")[..10],
        ["TOTAL", "9", "3", "2", "1", "1", "1", "0", "1", "0"]
    );
    assert!(
        out.contains("CALLS PLACED") && out.contains("0.33"),
        "{out}"
    );
}

/// An operator sees why a campaign is not moving: contacts held back per
/// reason, in `status`, its JSON and the `campaign_progress` view.
#[tokio::test]
async fn status_counts_contacts_held_back_and_why() {
    let f = Fixture::seeded().await;
    f.exec(
        "UPDATE contacts SET hold_reason = 'cap' WHERE id = 1; \
         UPDATE contacts SET hold_reason = 'window' WHERE id = 5; \
         UPDATE contacts SET hold_reason = 'live_attempt' WHERE id = 9; \
         UPDATE contacts SET state = 'suppressed', hold_reason = 'dnc' WHERE id = 2; \
         UPDATE contacts SET hold_reason = 'window' WHERE id = 4",
    )
    .await;
    let status: Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    let spring = campaign(&status, "spring");
    for (col, n) in [
        ("held", 3),
        ("held_dnc", 1),
        ("held_window", 1),
        ("held_cap", 1),
        ("held_live_attempt", 0),
    ] {
        assert_eq!(spring[col], n, "{col} in {spring}");
    }
    assert_eq!(campaign(&status, "autumn")["held_live_attempt"], 1);
    let out = f.ok(&["status"]);
    assert!(
        out.contains("HELD BACK")
            && out.contains("PER-NUMBER CAP")
            && out.contains("LIVE ATTEMPT ELSEWHERE"),
        "{out}"
    );
    let spring_held = out
        .lines()
        .rfind(|l| l.starts_with("spring"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>();
    // HELD BACK, DNC, OUTSIDE WINDOW, QUIET HOURS, REGION HOURS, PER-NUMBER
    // CAP, LIVE ATTEMPT ELSEWHERE, NO CALLER NUMBER, SPEND CAP.
    assert_eq!(
        spring_held[2..],
        ["3", "1", "1", "0", "0", "1", "0", "0", "0"],
        "{out}"
    );
}

#[tokio::test]
async fn status_says_running_only_while_the_heartbeat_is_recent() {
    let f = Fixture::seeded().await;
    let never = f.ok(&["status"]);
    assert!(
        never.contains("daemon: not running (no heartbeat recorded)"),
        "{never}"
    );

    let fresh = to_db_text(Utc::now() - chrono::Duration::seconds(2));
    f.exec(&format!(
        "UPDATE daemon SET pid = 4242, host = 'box', heartbeat_at = '{fresh}'"
    ))
    .await;
    let running = f.ok(&["status"]);
    assert!(
        running.contains("daemon: running (pid 4242 on box, last seen"),
        "{running}"
    );
    let json: Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    assert_eq!(json["daemon"]["running"], true);

    let old = to_db_text(Utc::now() - chrono::Duration::seconds(600));
    f.exec(&format!("UPDATE daemon SET heartbeat_at = '{old}'"))
        .await;
    let stale = f.ok(&["status"]);
    assert!(
        stale.contains("daemon: not running (pid 4242 on box, last seen 10 min ago"),
        "{stale}"
    );

    f.exec(&format!("UPDATE daemon SET stopped_at = '{old}'"))
        .await;
    let stopped = f.ok(&["status"]);
    assert!(
        stopped.contains(&format!("stopped cleanly at {old}")),
        "{stopped}"
    );
}

#[tokio::test]
async fn status_shouts_when_dispatch_is_paused_for_everyone() {
    let f = Fixture::seeded().await;
    f.exec("UPDATE daemon SET dispatch_paused = '2026-01-01T00:00:00Z: API key rejected (401)'")
        .await;
    let out = f.ok(&["status"]);
    assert!(
        out.contains("DISPATCH PAUSED: 2026-01-01T00:00:00Z: API key rejected (401) — fix the key, then run: dialerd dispatch resume"),
        "{out}"
    );
    let json: Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    assert_eq!(
        json["dispatch_paused"],
        "2026-01-01T00:00:00Z: API key rejected (401)"
    );
}

#[tokio::test]
async fn pausing_and_resuming_a_campaign_changes_its_status_in_the_database() {
    let f = Fixture::seeded().await;
    let out = f.ok(&["campaigns", "pause", "spring"]);
    assert!(out.contains("active -> paused"), "{out}");
    assert_eq!(
        f.scalar("SELECT status FROM campaigns WHERE name = 'spring'")
            .await,
        "paused"
    );
    assert!(
        f.ok(&["campaigns", "list"])
            .contains("paused (by operator)")
    );
    f.ok(&["campaigns", "resume", "spring"]);
    assert_eq!(
        f.scalar("SELECT status FROM campaigns WHERE name = 'spring'")
            .await,
        "active"
    );
    assert_eq!(f.contact_state("+14155550101").await, "pending");
}

#[tokio::test]
async fn cancelling_a_campaign_cancels_waiting_contacts_but_not_calls_in_flight() {
    let f = Fixture::seeded().await;
    let out = f.ok(&["campaigns", "cancel", "spring"]);
    assert!(
        out.contains("contacts cancelled: 3; calls in flight, which finish and are recorded: 2"),
        "{out}"
    );
    assert_eq!(
        f.scalar("SELECT status FROM campaigns WHERE name = 'spring'")
            .await,
        "cancelled"
    );
    assert_eq!(f.contact_state("+14155550101").await, "cancelled");
    assert_eq!(f.contact_state("+14155550105").await, "cancelled");
    assert_eq!(f.contact_state("+14155550103").await, "in_progress");
    assert_eq!(f.contact_state("+14155550104").await, "done");
    assert_eq!(
        f.contact_state("+14155550109").await,
        "pending",
        "other campaigns are untouched"
    );
}

#[tokio::test]
async fn a_cancelled_campaign_cannot_be_resumed() {
    let f = Fixture::seeded().await;
    f.ok(&["campaigns", "cancel", "spring"]);
    let out = f.run(&["campaigns", "resume", "spring"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot be resumed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        f.scalar("SELECT status FROM campaigns WHERE name = 'spring'")
            .await,
        "cancelled"
    );
}

#[tokio::test]
async fn an_unknown_campaign_exits_1_and_names_the_existing_ones() {
    let f = Fixture::seeded().await;
    for args in [
        &["campaigns", "show", "nope"][..],
        &["campaigns", "pause", "nope"],
        &["export", "--campaign", "nope"],
    ] {
        let out = f.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(r#"no campaign named "nope" (campaigns: spring, autumn)"#),
            "{err}"
        );
    }
}

#[tokio::test]
async fn campaigns_list_and_show_print_settings_progress_and_events() {
    let f = Fixture::seeded().await;
    let list = f.ok(&["campaigns", "list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("spring") && l.contains("09:00-20:00")),
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("autumn")), "{list}");
    f.ok(&["campaigns", "pause", "spring"]);
    let show = f.ok(&["campaigns", "show", "spring"]);
    for want in [
        "max_attempts",
        "retry_delay_secs",
        "calls_placed",
        "total_cost",
        "campaign_paused",
    ] {
        assert!(show.contains(want), "{want} missing from\n{show}");
    }
}

#[tokio::test]
async fn a_campaign_with_odd_values_written_by_another_program_still_lists() {
    let f = Fixture::new().await;
    f.exec("INSERT INTO campaigns (name, agent_id, window_start) VALUES ('odd', 'not-a-number', '9am')").await;
    f.exec("INSERT INTO campaigns (name, schedule) VALUES ('typo', 'whenever')")
        .await;
    let list = f.ok(&["campaigns", "list"]);
    assert!(
        list.contains("not-a-number") && list.contains("9am-20:00"),
        "{list}"
    );
    assert!(f.ok(&["campaigns", "show", "odd"]).contains("not-a-number"));
    let show = f.ok(&["campaigns", "show", "typo"]);
    assert!(
        show.contains("problem: campaign \"typo\" column schedule"),
        "{show}"
    );
    let status: Value = serde_json::from_str(&f.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["campaigns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn dnc_add_normalises_the_number_and_suppresses_a_waiting_contact() {
    let f = Fixture::seeded().await;
    let out = f.ok(&[
        "dnc",
        "add",
        "(415) 555-0102",
        "--region",
        "US",
        "--reason",
        "asked",
    ]);
    assert!(out.contains("+14155550102"), "{out}");
    assert!(out.contains("waiting contacts suppressed: 1"), "{out}");
    assert_eq!(
        f.scalar("SELECT phone_number || ' ' || reason FROM dnc")
            .await,
        "+14155550102 asked"
    );
    assert_eq!(f.contact_state("+14155550102").await, "suppressed");
    assert_eq!(f.contact_state("+14155550101").await, "pending");
    assert!(f.ok(&["dnc", "list"]).contains("+14155550102"));

    f.ok(&["dnc", "remove", "+14155550102"]);
    assert_eq!(f.scalar("SELECT COUNT(*) || '' FROM dnc").await, "0");
}

#[tokio::test]
async fn dnc_add_with_no_valid_number_exits_65_and_adds_nothing() {
    let f = Fixture::seeded().await;
    let out = f.run(&["dnc", "add", "call me", "4155550101"]);
    assert_eq!(out.status.code(), Some(65));
    let err = text(&out.stderr);
    assert!(
        err.contains(r#""call me" is not a phone number"#) && err.contains("no country code"),
        "{err}"
    );
    assert_eq!(f.scalar("SELECT COUNT(*) || '' FROM dnc").await, "0");
}

/// A number with a digit too many is refused, not stored next to the
/// right one where it would match no contact.
#[tokio::test]
async fn dnc_add_rejects_a_number_with_trailing_digits() {
    let f = Fixture::seeded().await;
    let out = f.run(&["dnc", "add", "+3161234567800", "+31612345678"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains(r#""+3161234567800" is not a valid number"#),
        "{err}"
    );
    assert_eq!(
        f.scalar("SELECT group_concat(phone_number, ' ') FROM dnc")
            .await,
        "+31612345678"
    );
    let out = f.run(&["dnc", "add", "+14155550101999"]);
    assert_eq!(out.status.code(), Some(65));
}

#[tokio::test]
async fn dnc_import_reports_a_bad_line_by_its_number_and_adds_the_rest() {
    let f = Fixture::seeded().await;
    let file = f.dir.path().join("dnc.txt");
    std::fs::write(
        &file,
        "# never call these\n+14155550101\n\nnot a number\n+44 20 7946 0958  # London\n",
    )
    .unwrap();
    let out = f.run(&["dnc", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(r#"line 4: "not a number" is not a phone number"#),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("valid: 2 (2 new on the list"),
        "{}",
        text(&out.stdout)
    );
    let listed = f
        .scalar(
            "SELECT group_concat(phone_number, ' ') FROM (SELECT phone_number FROM dnc ORDER BY 1)",
        )
        .await;
    assert_eq!(listed, "+14155550101 +442079460958");
    assert_eq!(f.contact_state("+14155550101").await, "suppressed");
}

#[tokio::test]
async fn dnc_import_reads_a_csv_by_its_phone_column() {
    let f = Fixture::seeded().await;
    let file = f.dir.path().join("dnc.csv");
    std::fs::write(&file, "Name;Phone Number\nAnn;+1 415 555 0105\nBob;oops\n").unwrap();
    let out = f.run(&["dnc", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("line 3:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        f.scalar("SELECT group_concat(phone_number) FROM dnc").await,
        "+14155550105"
    );
    assert_eq!(f.contact_state("+14155550105").await, "suppressed");
}

#[tokio::test]
async fn dnc_import_of_a_missing_file_exits_66() {
    let f = Fixture::seeded().await;
    assert_eq!(
        f.run(&["dnc", "import", "no-such-file.txt"]).status.code(),
        Some(66)
    );
}

fn csv_rows(data: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(data.as_bytes());
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .zip(rec.unwrap().iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn csv_export_neutralises_formulas_but_keeps_e164_numbers() {
    let f = Fixture::seeded().await;
    let rows = csv_rows(&f.ok(&["export", "--campaign", "spring"]));
    assert_eq!(rows.len(), 8);
    let done = rows
        .iter()
        .find(|r| r["phone_number"] == "+14155550104")
        .unwrap();
    assert_eq!(done["context.note"], "'=1+2");
    assert_eq!(done["context.callback"], "+14155552671");
    assert_eq!(done["outcome"], "completed");
    assert_eq!(done["duration_secs"], "42.5");
    assert_eq!(done["transcript"], "Hello, world");
    assert_eq!(done["cost"], "0.25");
    let exhausted = rows
        .iter()
        .find(|r| r["phone_number"] == "+14155550106")
        .unwrap();
    assert_eq!(
        (
            exhausted["outcome"].as_str(),
            exhausted["total_cost"].as_str()
        ),
        ("failed", "0.03")
    );
    let invalid = rows.iter().find(|r| r["state"] == "invalid").unwrap();
    assert_eq!(invalid["invalid_reason"], "not a phone number");
}

#[tokio::test]
async fn jsonl_export_is_one_json_object_per_contact_with_its_context_embedded() {
    let f = Fixture::seeded().await;
    let out = f.ok(&["export", "--format", "jsonl"]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 9, "every campaign without --campaign");
    let done = rows
        .iter()
        .find(|r| r["phone_number"] == "+14155550104")
        .unwrap();
    assert_eq!(
        done["call_context"]["note"], "=1+2",
        "JSONL is data: nothing neutralised"
    );
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["duration_secs"], 42.5);
    assert_eq!(
        rows.iter()
            .find(|r| r["phone_number"] == "+14155550101")
            .unwrap()["outcome"],
        Value::Null
    );
}

#[tokio::test]
async fn export_output_writes_the_file_and_leaves_no_temporary_file() {
    let f = Fixture::seeded().await;
    let target = f.dir.path().join("out").join("contacts.csv");
    std::fs::create_dir(target.parent().unwrap()).unwrap();
    std::fs::write(&target, "old contents").unwrap();
    let out = f.ok(&["export", "--output", target.to_str().unwrap()]);
    assert!(out.contains("exported 9 contacts"), "{out}");
    assert_eq!(
        csv_rows(&std::fs::read_to_string(&target).unwrap()).len(),
        9
    );
    let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("contacts.csv")]);
}

#[tokio::test]
async fn an_export_larger_than_one_page_has_every_contact_once() {
    let f = Fixture::new().await;
    f.exec("INSERT INTO campaigns (id, name) VALUES (1, 'big')")
        .await;
    f.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1234) \
         INSERT INTO contacts (campaign_id, phone_number) SELECT 1, '+1415555' || printf('%04d', i) FROM n",
    )
    .await;
    let out = f.ok(&["export", "--format", "jsonl"]);
    let phones: std::collections::BTreeSet<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["phone_number"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!((out.lines().count(), phones.len()), (1234, 1234));
}

/// A Florida number called three times in the last 24 hours may not be
/// called a fourth time; `explain` says so, with its zone, region and rules.
#[tokio::test]
async fn explain_names_the_zone_the_region_and_a_reached_florida_limit() {
    let f = Fixture::new().await;
    let recent = |mins: i64| to_db_text(Utc::now() - chrono::Duration::minutes(mins));
    f.exec(&format!(
        "INSERT INTO campaigns (id, name, agent_id, window_start, window_end) \
             VALUES (1, 'spring', 77, '00:00', '24:00');
         INSERT INTO contacts (id, campaign_id, phone_number, call_context, state, attempts) VALUES
             (1, 1, '+13055550123', '{{}}', 'retry_wait', 3),
             (2, 1, '+12125550123', '{{}}', 'retry_wait', 1);
         INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, outcome, sent_at) VALUES
             (1, 1, 1, 'accepted', 77, '+13055550123', 'no_answer', '{}'),
             (1, 1, 2, 'accepted', 77, '+13055550123', 'busy', '{}'),
             (1, 1, 3, 'uncertain', 77, '+13055550123', NULL, '{}'),
             (2, 1, 1, 'not_placed', 77, '+12125550123', NULL, '{}');",
        recent(300),
        recent(200),
        recent(100),
        recent(50)
    ))
    .await;
    let out = f.ok(&[
        "explain",
        "--campaign",
        "spring",
        "--json",
        "+1 305 555 0123",
        "+12125550123",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let fl = &v[0];
    assert_eq!(fl["number"], "+13055550123");
    assert_eq!(fl["zones"][0]["zone"], "America/New_York");
    assert_eq!(fl["zone_source"], "number");
    assert_eq!(fl["regions"][0], "US-FL");
    assert_eq!(fl["calls_last_24h"], 3);
    assert_eq!(fl["daily_limit"], 3);
    assert_eq!(fl["live_attempts"], 1);
    assert_eq!(fl["callable_now"], false);
    let reasons = fl["reasons"].to_string();
    assert!(reasons.contains("reach the limit of 3"), "{reasons}");
    assert!(reasons.contains("still live"), "{reasons}");
    let rules: Vec<&str> = fl["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["campaign_window", "quiet_hours", "region"]);
    // New York: a not-placed attempt is no call, and no region limit
    // applies: the global dispatch.max_calls_per_number_per_day (3) does.
    let ny = &v[1];
    assert_eq!(
        (ny["calls_last_24h"].as_i64(), ny["daily_limit"].as_u64()),
        (Some(0), Some(3))
    );
    let text = f.ok(&["explain", "--campaign", "spring", "+13055550123"]);
    assert!(text.contains("region: US-FL (Florida)"), "{text}");
    assert!(text.contains("may be called now: no"), "{text}");
}

#[test]
fn explain_refuses_a_number_it_cannot_read_with_status_65() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dialerd"))
        .args(["explain", "not-a-number"])
        .env_remove("DIALERD_CONFIG")
        .env("DIALERD_DATABASE__PATH", dir.path().join("d.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(text(&out.stderr).contains("not-a-number"));
}
