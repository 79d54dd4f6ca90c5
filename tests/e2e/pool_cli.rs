//! The operator's side of caller pools and the spend cap, through the real
//! binary: `numbers add|list|disable|enable`, `import --caller-pool
//! --max-cost`, and `campaigns resume` at a reached cap.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A temporary directory with a database path for the binary.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("dialerd.db")
    }

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

    /// Runs `dialerd ARGS`, expecting exit status `code`; returns stdout and stderr.
    fn expect(&self, code: i32, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "dialerd {args:?}: {stdout}{stderr}"
        );
        (stdout, stderr)
    }

    fn sql(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.db())
            .arg(sql)
            .output()
            .expect("sqlite3 is installed");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn numbers_are_added_normalised_listed_and_taken_out_of_rotation() {
    let c = Cli::new();
    let (out, _) = c.expect(
        0,
        &[
            "numbers",
            "add",
            "101",
            "(212) 555-0100",
            "--pool",
            "east",
            "--max-per-day",
            "50",
            "--region",
            "US",
        ],
    );
    assert!(
        out.contains("+12125550100") && out.contains("\"east\""),
        "{out}"
    );
    c.expect(
        0,
        &["numbers", "add", "102", "+14155550100", "--pool", "west"],
    );
    // The id is the API's from_number_id: taken once.
    let (_, err) = c.expect(
        1,
        &["numbers", "add", "101", "+14155550101", "--pool", "west"],
    );
    assert!(err.contains("already exists"), "{err}");
    // A number that is not one is refused as bad data, naming it.
    let (_, err) = c.expect(65, &["numbers", "add", "103", "+1 123", "--pool", "west"]);
    assert!(err.contains("+1 123"), "{err}");
    c.expect(64, &["numbers", "add", "104", "+14155550104"]);
    c.expect(0, &["numbers", "disable", "101"]);
    let (list, _) = c.expect(0, &["numbers", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(rows[0]["id"], 101);
    assert_eq!(rows[0]["active"], false);
    assert_eq!(rows[0]["max_calls_per_day"], 50);
    assert_eq!(rows[1]["pool"], "west");
    c.expect(0, &["numbers", "enable", "101"]);
    assert_eq!(
        c.sql("SELECT active FROM caller_numbers WHERE id = 101"),
        "1"
    );
    let (_, err) = c.expect(1, &["numbers", "disable", "999"]);
    assert!(err.contains("no caller number 999"), "{err}");
    let (table, _) = c.expect(0, &["numbers", "list"]);
    assert!(
        table.contains("CALLS 24H") && table.contains("+14155550100"),
        "{table}"
    );
}

#[test]
fn an_import_sets_the_pool_and_the_cap_and_resume_refuses_while_the_cap_is_reached() {
    let c = Cli::new();
    let csv = c.dir.path().join("leads.csv");
    std::fs::write(&csv, "phone_number\n+442079460001\n+442079460002\n").unwrap();
    let csv = csv.to_str().unwrap();
    c.expect(
        64,
        &["import", csv, "--campaign", "spring", "--max-cost", "lots"],
    );
    c.expect(
        0,
        &[
            "import",
            csv,
            "--campaign",
            "spring",
            "--agent-id",
            "7",
            "--caller-pool",
            "east",
            "--max-cost",
            "2.50",
        ],
    );
    assert_eq!(
        c.sql("SELECT caller_pool || ' ' || max_cost FROM campaigns WHERE name = 'spring'"),
        "east 2.5"
    );
    // Spent 3.00 of 2.50, paused by the daemon.
    c.sql(
        "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at, outcome, cost) \
         VALUES (1, 1, 1, 'accepted', 7, '+442079460001', '2026-01-01T00:00:00Z', 'completed', 3.0); \
         UPDATE campaigns SET status = 'paused', status_reason = 'spend cap reached: 3.00 of 2.50'",
    );
    let (_, err) = c.expect(1, &["campaigns", "resume", "spring"]);
    assert!(
        err.contains("spend cap reached: 3.00 of 2.50") && err.contains("--max-cost"),
        "{err}"
    );
    assert_eq!(c.sql("SELECT status FROM campaigns"), "paused");
    let (out, _) = c.expect(0, &["campaigns", "resume", "spring", "--max-cost", "10"]);
    assert!(out.contains("max_cost set to 10.00"), "{out}");
    assert_eq!(
        c.sql("SELECT status || ' ' || max_cost FROM campaigns"),
        "active 10.0"
    );
    let (status, _) = c.expect(0, &["status"]);
    assert!(
        status.contains("spring: spent 3.00, committed 3.00")
            && status.contains("of max_cost 10.00"),
        "{status}"
    );
}
