//! End to end through the real binary: a CSV campaign is imported (by
//! command, or dropped into the inbox), dialed through the simulator and
//! reconciled, and the database tells what happened to every contact.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::BIN;

/// The simulator as a child process, killed on drop.
struct Sim {
    child: Child,
    base_url: String,
}

impl Sim {
    fn start(journal: &Path, extra: &[&str]) -> Sim {
        let mut child = Command::new(BIN)
            .args([
                "simulate",
                "--listen",
                "127.0.0.1:0",
                "--seed",
                "7",
                "--call-secs",
                "0.1-0.4",
            ])
            .arg("--journal")
            .arg(journal)
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Sim { child, base_url }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dialerd(dir: &Path, sim: &Sim) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("DIALERD_DATABASE__PATH", dir.join("d.db"))
        .env("DIALERD_PROVIDER__BASE_URL", &sim.base_url)
        .env("DIALERD_API_KEY", "sim-key")
        .env("DIALERD_DISPATCH__RATE_PER_SECOND", "50")
        .env("DIALERD_DISPATCH__BURST", "10")
        .env("DIALERD_RECONCILE__POLL_INTERVAL_SECS", "0.3")
        .env("DIALERD_DAEMON__CAMPAIGN_REFRESH_SECS", "0.2")
        .env("DIALERD_CAMPAIGN_DEFAULTS__AGENT_ID", "11")
        .env("DIALERD_CAMPAIGN_DEFAULTS__SCHEDULE", "* * * * * *")
        .env("DIALERD_CAMPAIGN_DEFAULTS__WINDOW", "00:00-24:00")
        // Runs at any wall-clock hour; quiet hours are tested on the test clock.
        .env("DIALERD_COMPLIANCE__QUIET_HOURS", "off")
        .env("DIALERD_CAMPAIGN_DEFAULTS__RETRY_DELAY_SECS", "1")
        .env("DIALERD_LOG__LEVEL", "warn");
    cmd
}

fn run_until_idle(mut cmd: Command) {
    let mut child = cmd.args(["run", "--until-idle"]).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "run --until-idle exited with {status}");
            return;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("run --until-idle did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Contacts `done`, read without opening the store (which would migrate);
/// `None` while the schema is not there yet or the file is busy.
fn done_contacts(db: &Path) -> Option<i64> {
    let rt = tokio::runtime::Runtime::new().ok()?;
    rt.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = sqlx::SqlitePool::connect_with(opts).await.ok()?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE state = 'done'")
            .fetch_one(&pool)
            .await
            .ok();
        pool.close().await;
        n
    })
}

fn sql(db: &Path, q: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store =
            dialerd::store::Store::open(db, std::sync::Arc::new(dialerd::clock::SystemClock))
                .await
                .unwrap();
        let rows: Vec<sqlx::sqlite::SqliteRow> = sqlx::query(sqlx::AssertSqlSafe(q.to_string()))
            .fetch_all(store.pool())
            .await
            .unwrap();
        use sqlx::{Row, ValueRef};
        rows.iter()
            .map(|r| {
                (0..r.columns().len())
                    .map(|i| {
                        let raw = r.try_get_raw(i).unwrap();
                        if raw.is_null() {
                            String::new()
                        } else {
                            r.try_get::<String, _>(i)
                                .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .unwrap_or_default()
                        }
                    })
                    .collect()
            })
            .collect()
    })
}

/// Placed calls per number, from the simulator's journal.
fn placed_per_number(journal: &Path) -> std::collections::HashMap<String, usize> {
    let mut map = std::collections::HashMap::new();
    for line in std::fs::read_to_string(journal).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["placed"] == true {
            *map.entry(v["to_number"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
    }
    map
}

const CSV: &str = "Phone Number;First Name;Plan\n\
+14155552671;Ann;gold\n\
+442079460958;Bob;silver\n\
(212) 555-0187;Cy;bronze\n\
not a number;Dee;gold\n\
+33142685300;Eve;gold\n";

#[test]
fn an_imported_csv_is_dialed_and_every_outcome_is_reconciled_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let sim = Sim::start(
        &journal,
        &["--outcomes", "completed=70,no_answer=20,busy=10"],
    );
    let csv = dir.path().join("spring.csv");
    std::fs::write(&csv, CSV).unwrap();
    let out = dialerd(dir.path(), &sim)
        .args(["import"])
        .arg(&csv)
        .args(["--campaign", "spring", "--region", "US"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("line 5"),
        "the reject is reported with its line: {printed}"
    );

    run_until_idle(dialerd(dir.path(), &sim));

    let db = dir.path().join("d.db");
    let rows = sql(
        &db,
        "SELECT phone_number, state, attempts, \
           (SELECT COUNT(*) FROM attempts a WHERE a.contact_id = c.id AND a.state = 'accepted'), \
           (SELECT COUNT(*) FROM attempts a WHERE a.contact_id = c.id AND a.state = 'accepted' AND a.outcome IS NULL) \
         FROM contacts c ORDER BY id",
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let placed = placed_per_number(&journal);
    for r in &rows {
        assert!(
            ["done", "exhausted"].contains(&r[1].as_str()),
            "every contact is final: {r:?}"
        );
        let accepted: usize = r[3].parse().unwrap();
        assert_eq!(
            placed.get(&r[0]).copied().unwrap_or(0),
            accepted,
            "the database knows every placed call: {r:?}"
        );
        assert!(accepted <= 3, "never more calls than max_attempts: {r:?}");
        assert_eq!(
            r[4], "0",
            "no accepted call is left without an outcome: {r:?}"
        );
    }
    assert!(
        rows.iter().any(|r| r[0] == "+12125550187"),
        "national number normalised with --region"
    );
    let done = sql(
        &db,
        "SELECT transcript FROM contact_outcomes WHERE outcome = 'completed'",
    );
    assert!(!done.is_empty());
    for t in done {
        assert!(
            !t[0].contains("<br"),
            "transcripts are clean text: {}",
            t[0]
        );
    }
    let progress = sql(
        &db,
        "SELECT status, contacts, invalid FROM campaign_progress",
    );
    assert_eq!(
        progress,
        vec![vec!["completed".to_string(), "4".into(), "0".into()]]
    );
}

#[test]
fn a_csv_dropped_into_the_inbox_is_imported_and_dialed_by_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    let journal = dir.path().join("journal.jsonl");
    let sim = Sim::start(&journal, &["--outcomes", "completed=1"]);
    std::fs::write(
        inbox.join("drop.csv"),
        "phone,name\n+14155552671,Ann\n+442079460958,Bob\n",
    )
    .unwrap();
    let mut cmd = dialerd(dir.path(), &sim);
    cmd.env("DIALERD_INBOX__DIR", &inbox)
        .env("DIALERD_INBOX__POLL_INTERVAL_SECS", "0.1")
        .env("DIALERD_INBOX__SETTLE_SECS", "0.2");
    // Not idle until the inbox file has been imported: start the daemon
    // without --until-idle and stop it once both calls are reconciled.
    let mut child = cmd.arg("run").spawn().unwrap();
    let db = dir.path().join("d.db");
    let start = Instant::now();
    let finished = loop {
        // Read only, never migrating: the daemon may be migrating the
        // database this very moment, and two migrators race.
        if db.exists() && done_contacts(&db) == Some(2) {
            break true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(finished, "the dropped campaign was not dialed to the end");
    assert!(
        status.success(),
        "SIGTERM ends the daemon cleanly: {status}"
    );
    assert!(
        inbox.join("done").join("drop.csv").exists(),
        "the file moved to done/"
    );
    let campaigns = sql(&db, "SELECT name FROM campaigns");
    assert_eq!(
        campaigns,
        vec![vec!["drop".to_string()]],
        "the campaign is named after the file"
    );
    assert_eq!(placed_per_number(&journal).values().sum::<usize>(), 2);
}
