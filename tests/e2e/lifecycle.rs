//! The daemon's life cycle as systemd and an operator see it, through the
//! real binary (`dialerd run`) against the real simulator (`dialerd
//! simulate` on a free loopback port), configured the way the unit does it:
//! environment variables and, for reloads, a `--config` file. Also the unit
//! file itself (`systemd-analyze verify` and `security`) and the Prometheus
//! endpoint.
//!
//! Every wait is bounded; the file runs in well under a minute on two cores.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dialerd::sim::JournalEntry;

/// The binary under test.
use crate::harness::{BIN, last_lines, read_journal, sql_i64, wait_until};
/// `daemon.shutdown_grace_secs` in these tests.
const GRACE_SECS: u64 = 5;

// ---------------------------------------------------------------- helpers

/// A child process whose output is collected by two threads; killed when dropped.
struct Proc {
    child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start dialerd");
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Self { child, out, err }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Sends `sig` (`TERM`, `HUP`, `KILL`) with kill(1).
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("kill(1)")
            .success();
        assert!(ok, "kill -{sig} {} failed", self.pid());
    }

    /// Waits for the process to exit, at most `limit`.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits until stderr contains `needle`; false on timeout or exit.
    fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.stderr().contains(needle) {
                return true;
            }
            if !self.running() {
                std::thread::sleep(Duration::from_millis(50));
                return self.stderr().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the process with SIGTERM and returns its status.
    fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait(Duration::from_secs(GRACE_SECS + 5))
            .unwrap_or_else(|| {
                panic!(
                    "no exit after SIGTERM; stderr:\n{}",
                    last_lines(&self.stderr(), 30)
                )
            })
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    buf
}

/// `dialerd simulate` on a free loopback port; returns it and its base URL,
/// read from the line it prints on start-up.
fn simulate(args: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args(["simulate", "--listen", "127.0.0.1:0"])
        .args(args);
    let mut sim = Proc::spawn(cmd);
    const MARK: &str = "OmniDimension-compatible API at ";
    // The whole line, not just its start: the output arrives in chunks.
    let line_done = |err: &str| err.find(MARK).is_some_and(|i| err[i..].contains('\n'));
    assert!(
        wait_until(Duration::from_secs(10), || line_done(&sim.stderr())),
        "the simulator did not start:\n{}",
        sim.stderr()
    );
    assert!(sim.running());
    let err = sim.stderr();
    let rest = &err[err.find(MARK).unwrap() + MARK.len()..];
    let url = rest.split_whitespace().next().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api/v1"),
        "{url}"
    );
    (sim, url)
}

/// A scratch directory with a database path and the environment of a daemon
/// pointed at a simulator (fast polling, short grace).
struct Setup {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Setup {
    fn new(base_url: &str, key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("dialerd.db");
        let env = [
            ("DIALERD_DATABASE__PATH", db.to_str().unwrap()),
            ("DIALERD_PROVIDER__BASE_URL", base_url),
            ("DIALERD_API_KEY", key),
            ("DIALERD_PROVIDER__REQUEST_TIMEOUT_MS", "3000"),
            ("DIALERD_RECONCILE__POLL_INTERVAL_SECS", "0.5"),
            ("DIALERD_DAEMON__HEARTBEAT_SECS", "1"),
            ("DIALERD_DAEMON__CAMPAIGN_REFRESH_SECS", "0.5"),
            (
                "DIALERD_DAEMON__SHUTDOWN_GRACE_SECS",
                &GRACE_SECS.to_string(),
            ),
            ("DIALERD_LOG__LEVEL", "info"),
            // Quiet hours would make these runs depend on the hour they run
            // at; they are tested through the test clock instead.
            ("DIALERD_COMPLIANCE__QUIET_HOURS", "off"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        Self { dir, env }
    }

    /// Adds or replaces a variable.
    fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("dialerd.db")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `dialerd ARGS` with exactly this environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args);
        cmd
    }

    /// Starts `dialerd ARGS` and waits until it says it runs.
    fn start(&self, args: &[&str]) -> Proc {
        let mut p = Proc::spawn(self.command(args));
        assert!(
            p.wait_for_stderr("dialerd running", Duration::from_secs(15)),
            "the daemon did not start:\n{}",
            last_lines(&p.stderr(), 30)
        );
        p
    }

    /// Imports campaign `name` of `n` contacts (fictional US numbers), dialed
    /// once each, swept every second, all day.
    fn campaign(&self, name: &str, n: usize) {
        assert!(n <= 600, "only 600 distinct test numbers");
        let mut csv = String::from("phone_number,first_name\n");
        for i in 0..n {
            let area = ["212", "415", "312", "617", "305", "206"][i / 100];
            csv.push_str(&format!("+1{area}55501{:02},Person {i}\n", i % 100));
        }
        let file = self.path(&format!("{name}.csv"));
        std::fs::write(&file, csv).unwrap();
        let out = self
            .command(&[
                "import",
                file.to_str().unwrap(),
                "--campaign",
                name,
                "--agent-id",
                "1",
                "--schedule",
                "*/1 * * * * *",
                "--window",
                "00:00-24:00",
                "--max-attempts",
                "1",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs one async database call on a throwaway runtime.
fn block_on<T>(f: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn journal_time(e: &JournalEntry) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&e.at)
        .unwrap()
        .with_timezone(&Utc)
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ------------------------------------------------------------------ tests

#[test]
fn the_unit_file_verifies_and_is_hardened() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/dialerd.service");
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!(
            "systemd-analyze is not installed ({other:?}), so the unit file cannot be checked: \
             apt-get install -y systemd"
        ),
    }
    // The sandbox: exposure at most 2.0 ("--threshold" is in tenths).
    let sec = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&sec.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for dialerd.service:"))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}\n{}",
                String::from_utf8_lossy(&sec.stderr)
            )
        });
    assert!(score <= 2.0, "exposure {score} is above 2.0:\n{text}");
    assert!(
        sec.status.success(),
        "systemd-analyze security failed:\n{text}"
    );

    // verify: a copy whose ExecStart is the binary just built (the installed
    // path does not exist here, and verify checks that it is executable).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("dialerd.service");
    let body = std::fs::read_to_string(&unit).unwrap();
    assert!(
        body.contains("ExecStart=/usr/local/bin/dialerd "),
        "ExecStart changed; update this test"
    );
    std::fs::write(
        &copy,
        body.replace(
            "ExecStart=/usr/local/bin/dialerd ",
            &format!("ExecStart={BIN} "),
        ),
    )
    .unwrap();
    let v = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.success(),
        "systemd-analyze verify failed:\n{complaints}"
    );
    assert!(
        !complaints.contains("dialerd.service"),
        "systemd-analyze verify complains about the unit:\n{complaints}"
    );
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(body.lines().any(|l| l == line), "the unit lost {line}");
    }
}

#[test]
fn sigterm_mid_campaign_exits_zero_quickly_and_leaves_nothing_sending() {
    let (_sim, url) = simulate(&["--latency-ms", "200", "--call-secs", "5-10"]);
    let mut s = Setup::new(&url, "sim-key");
    s.set("DIALERD_DISPATCH__RATE_PER_SECOND", "20");
    s.campaign("big", 300);
    let mut d = s.start(&["run"]);
    let db = s.db();
    assert!(
        wait_until(Duration::from_secs(10), || sql_i64(
            &db,
            "SELECT COUNT(*) FROM attempts"
        ) > 0),
        "nothing was dispatched:\n{}",
        last_lines(&d.stderr(), 30)
    );
    // Mid-campaign: some attempts made, calls and requests under way.
    assert!(
        wait_until(Duration::from_secs(30), || sql_i64(
            &db,
            "SELECT COUNT(*) FROM attempts"
        ) >= 20),
        "the campaign did not get going:\n{}",
        last_lines(&d.stderr(), 30)
    );
    let sent = Instant::now();
    d.signal("TERM");
    let status = d
        .wait(Duration::from_secs(GRACE_SECS + 2))
        .unwrap_or_else(|| {
            panic!(
                "still running {} s after SIGTERM:\n{}",
                GRACE_SECS + 2,
                last_lines(&d.stderr(), 30)
            )
        });
    let took = sent.elapsed();
    assert!(
        status.success(),
        "exit status {status:?} after SIGTERM:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(took <= Duration::from_secs(GRACE_SECS + 2), "took {took:?}");
    let attempts = sql_i64(&db, "SELECT COUNT(*) FROM attempts");
    assert!(
        attempts < 300,
        "the campaign was over before SIGTERM ({attempts} attempts); nothing was tested"
    );
    assert_eq!(
        sql_i64(&db, "SELECT COUNT(*) FROM attempts WHERE state = 'sending'"),
        0
    );
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM daemon WHERE stopped_at IS NOT NULL"
        ),
        1
    );
}

#[test]
fn sighup_reloads_the_rate_without_dropping_work() {
    let dir = tempfile::tempdir().unwrap();
    let journal_file = dir.path().join("journal.jsonl");
    let (_sim, url) = simulate(&[
        "--outcomes",
        "completed=1",
        "--call-secs",
        "0.5-1",
        "--journal",
        journal_file.to_str().unwrap(),
    ]);
    let s = Setup::new(&url, "sim-key");
    let n = 40;
    s.campaign("reload", n);
    let config = s.path("dialerd.toml");
    std::fs::write(&config, "[dispatch]\nrate_per_second = 1.0\nburst = 1\n").unwrap();
    let mut d = s.start(&["--config", config.to_str().unwrap(), "run"]);
    assert!(wait_until(Duration::from_secs(10), || !read_journal(
        &journal_file
    )
    .is_empty()));
    // A few dispatches at the old rate, however slow the machine.
    assert!(wait_until(Duration::from_secs(20), || read_journal(
        &journal_file
    )
    .len()
        >= 3));

    std::fs::write(&config, "[dispatch]\nrate_per_second = 50.0\nburst = 1\n").unwrap();
    let reload_at = Utc::now();
    d.signal("HUP");
    assert!(
        d.wait_for_stderr("configuration reloaded", Duration::from_secs(5)),
        "no reload:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(
        wait_until(Duration::from_secs(15), || read_journal(&journal_file)
            .len()
            >= n),
        "only {} of {n} dispatched after the reload:\n{}",
        read_journal(&journal_file).len(),
        last_lines(&d.stderr(), 30)
    );
    // Let the last results be written, then stop.
    let db = s.db();
    assert!(wait_until(Duration::from_secs(10), || sql_i64(
        &db,
        "SELECT COUNT(*) FROM attempts WHERE state = 'sending'"
    ) == 0));
    assert!(d.stop().success());

    let entries = read_journal(&journal_file);
    let before: Vec<_> = entries
        .iter()
        .filter(|e| journal_time(e) < reload_at)
        .collect();
    let after: Vec<_> = entries
        .iter()
        .filter(|e| journal_time(e) >= reload_at)
        .collect();
    // About one a second for ~3-4 s before the reload...
    assert!(
        (1..=6).contains(&before.len()),
        "{} dispatches at 1/s before the reload",
        before.len()
    );
    // ...and many more within two seconds of it. (Not all: requests already
    // waiting on the old limiter when the reload came still wait their turn
    // at the old rate, up to dispatch.max_in_flight of them.)
    let offsets: Vec<f64> = after
        .iter()
        .map(|e| (journal_time(e) - reload_at).num_milliseconds() as f64 / 1000.0)
        .collect();
    let quick = offsets.iter().filter(|&&t| t <= 2.0).count();
    assert!(
        quick >= 15,
        "only {quick} dispatches within 2 s of raising the rate from 1/s to 50/s (seconds after the reload: {offsets:?})"
    );
    // Nothing lost, nothing twice.
    assert!(
        entries.iter().all(|e| e.placed),
        "every request placed its call"
    );
    let numbers: HashSet<&str> = entries
        .iter()
        .filter_map(|e| e.to_number.as_deref())
        .collect();
    assert_eq!(entries.len(), n, "dispatch requests received");
    assert_eq!(numbers.len(), n, "distinct numbers dialed");
    // One request per contact. A claim that waited past
    // dispatch.max_claim_wait_secs for its rate cell (a slow machine at
    // 1/s) is released unsent, as `not_placed` with "not sent: ...", and
    // claimed again later: an extra row, never an extra call.
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE state <> 'not_placed' OR error NOT LIKE 'not sent:%'"
        ),
        n as i64
    );
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(DISTINCT contact_id) FROM attempts WHERE state = 'accepted'"
        ),
        n as i64
    );
}

#[test]
fn a_bad_config_on_reload_is_refused_and_the_old_one_kept() {
    let (_sim, url) = simulate(&[]);
    let mut s = Setup::new(&url, "sim-key");
    s.set("DIALERD_DAEMON__HEARTBEAT_SECS", "1");
    let config = s.path("dialerd.toml");
    std::fs::write(&config, "[dispatch]\nrate_per_second = 2.0\n").unwrap();
    let mut d = s.start(&["--config", config.to_str().unwrap(), "run"]);

    for bad in [
        "[dispatch\nrate_per_second = = 3\n",
        "[dispatch]\nrate_per_second = -1.0\n",
    ] {
        let refusals = d.stderr().matches("reload refused").count();
        std::fs::write(&config, bad).unwrap();
        d.signal("HUP");
        assert!(
            wait_until(Duration::from_secs(5), || d
                .stderr()
                .matches("reload refused")
                .count()
                > refusals),
            "no refusal for {bad:?}:\n{}",
            last_lines(&d.stderr(), 30)
        );
    }
    // Still alive after the refusals: a heartbeat written after them.
    let refused_at = dialerd::clock::to_db_text(Utc::now());
    let db = s.db();
    let beat = format!("SELECT COUNT(*) FROM daemon WHERE heartbeat_at > '{refused_at}'");
    assert!(
        wait_until(Duration::from_secs(15), || sql_i64(&db, &beat) > 0),
        "no heartbeat after the refusals:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(
        d.running(),
        "the daemon died on a bad reload:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(
        d.stderr().contains("rate_per_second"),
        "the refusal should name the key:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(!d.stderr().contains("configuration reloaded"));
    assert!(d.stop().success());
}

#[test]
fn a_second_daemon_on_the_same_database_refuses_to_start() {
    let (_sim, url) = simulate(&[]);
    let s = Setup::new(&url, "sim-key");
    let mut first = s.start(&["run"]);
    let mut second = Proc::spawn(s.command(&["run"]));
    let status = second
        .wait(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the second daemon kept running:\n{}", second.stderr()));
    assert!(!status.success());
    let err = second.stderr();
    assert!(err.contains("already running"), "{err}");
    assert!(
        err.contains("dialerd.db.lock"),
        "the message should name the lock file: {err}"
    );
    assert!(
        err.contains(&format!("pid {}", first.pid())),
        "the message should name the holder: {err}"
    );
    assert!(first.running(), "the first daemon must be unaffected");
    assert!(first.stop().success());
}

/// Runs a second daemon on `other`, a path that reaches the first
/// daemon's database another way, and checks that it refuses to start.
fn a_second_path_is_refused(s: &Setup, other: &std::path::Path) {
    let mut first = s.start(&["run"]);
    let mut cmd = s.command(&["run"]);
    cmd.env("DIALERD_DATABASE__PATH", other);
    let mut second = Proc::spawn(cmd);
    let status = second.wait(Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "a second daemon ran on {} beside the first:\n{}",
            other.display(),
            second.stderr()
        )
    });
    assert!(!status.success());
    let err = second.stderr();
    assert!(err.contains("already running"), "{err}");
    assert!(
        err.contains(&format!("pid {}", first.pid())),
        "the message should name the holder: {err}"
    );
    assert!(first.running(), "the first daemon must be unaffected");
    assert!(first.stop().success());
}

#[test]
fn a_symlinked_database_path_is_refused_by_a_running_daemons_lock() {
    let (_sim, url) = simulate(&[]);
    let s = Setup::new(&url, "sim-key");
    let link = s.path("b.db");
    std::os::unix::fs::symlink(s.db(), &link).unwrap();
    a_second_path_is_refused(&s, &link);
}

#[test]
fn a_hard_linked_or_dotted_database_path_is_refused_by_a_running_daemons_lock() {
    let (_sim, url) = simulate(&[]);
    let s = Setup::new(&url, "sim-key");
    // The daemon's database must exist to be hard-linked.
    let mut first = s.start(&["run"]);
    assert!(first.stop().success());
    let hard = s.path("hard.db");
    std::fs::hard_link(s.db(), &hard).unwrap();
    a_second_path_is_refused(&s, &hard);
    std::fs::create_dir(s.path("sub")).unwrap();
    a_second_path_is_refused(&s, &s.path("sub/../dialerd.db"));
}

#[test]
fn a_restart_after_kill_9_is_not_blocked() {
    let (_sim, url) = simulate(&["--latency-ms", "300"]);
    let mut s = Setup::new(&url, "sim-key");
    s.set("DIALERD_DISPATCH__RATE_PER_SECOND", "20");
    s.campaign("k9", 50);
    let mut first = s.start(&["run"]);
    let db = s.db();
    assert!(wait_until(Duration::from_secs(10), || sql_i64(
        &db,
        "SELECT COUNT(*) FROM attempts"
    ) > 0));
    first.signal("KILL");
    assert!(first.wait(Duration::from_secs(5)).is_some());
    assert!(
        s.path("dialerd.db.lock").exists(),
        "the lock file stays behind; only the lock itself goes"
    );

    let mut again = s.start(&["run"]);
    assert!(again.running());
    assert!(
        again.stop().success(),
        "{}",
        last_lines(&again.stderr(), 30)
    );
    assert_eq!(
        sql_i64(&db, "SELECT COUNT(*) FROM attempts WHERE state = 'sending'"),
        0
    );
}

#[test]
fn the_api_key_never_appears_in_logs_at_trace_level() {
    const KEY: &str = "sk-canary-5b1f0e7d93c2a846";
    let (_sim, url) = simulate(&[
        "--api-key",
        KEY,
        "--outcomes",
        "completed=1",
        "--call-secs",
        "0.2-0.5",
    ]);
    let mut s = Setup::new(&url, KEY);
    s.set("RUST_LOG", "trace")
        .set("DIALERD_DISPATCH__RATE_PER_SECOND", "20");
    s.campaign("canary", 5);
    let mut d = Proc::spawn(s.command(&["run", "--until-idle"]));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.pid())).unwrap_or_default();
    let status = d
        .wait(Duration::from_secs(30))
        .expect("run --until-idle did not finish");
    assert!(status.success(), "{}", last_lines(&d.stderr(), 30));
    assert_eq!(
        sql_i64(
            &s.db(),
            "SELECT COUNT(*) FROM attempts WHERE outcome = 'completed'"
        ),
        5
    );
    assert!(
        d.stderr().lines().count() > 50,
        "expected a trace-level log"
    );

    let check = s.command(&["check-config"]).output().unwrap();
    assert!(check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("[redacted]"));
    let places = [
        ("stderr", d.stderr().into_bytes()),
        ("stdout", d.stdout().into_bytes()),
        ("/proc/PID/cmdline", cmdline),
        ("check-config", [check.stdout, check.stderr].concat()),
    ];
    assert_key_absent(KEY, &places, s.dir.path());
}

#[test]
fn a_rejected_api_key_is_not_echoed_in_errors() {
    const KEY: &str = "sk-wrong-canary-0c4e9a1b77f3";
    let (_sim, url) = simulate(&["--api-key", "the-right-key"]);
    let mut s = Setup::new(&url, KEY);
    s.set("RUST_LOG", "trace")
        .set("DIALERD_DISPATCH__RATE_PER_SECOND", "20");
    s.campaign("wrong", 5);
    let mut d = s.start(&["run"]);
    let db = s.db();
    assert!(
        wait_until(Duration::from_secs(15), || sql_i64(
            &db,
            "SELECT COUNT(*) FROM daemon WHERE dispatch_paused IS NOT NULL"
        ) == 1),
        "a 401 should pause dispatching:\n{}",
        last_lines(&d.stderr(), 30)
    );
    assert!(d.stop().success());
    assert!(d.stderr().contains("401") || d.stderr().to_lowercase().contains("unauthori"));
    let places = [
        ("stderr", d.stderr().into_bytes()),
        ("stdout", d.stdout().into_bytes()),
    ];
    assert_key_absent(KEY, &places, s.dir.path());
}

/// Fails if `key` is in any of `places` or in any database file in `dir`.
fn assert_key_absent(key: &str, places: &[(&str, Vec<u8>)], dir: &Path) {
    let found = |bytes: &[u8]| bytes.windows(key.len()).any(|w| w == key.as_bytes());
    for (what, bytes) in places {
        assert!(!found(bytes), "the API key appears in {what}");
    }
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("dialerd.db") {
            files += 1;
            assert!(
                !found(&std::fs::read(&path).unwrap()),
                "the API key appears in {name}"
            );
        }
    }
    assert!(files >= 1, "no database files to check");
}

#[test]
fn status_shows_a_running_daemon_and_its_last_heartbeat() {
    let (_sim, url) = simulate(&[]);
    let s = Setup::new(&url, "sim-key");
    let mut d = s.start(&["run"]);
    // Until the daemon has written its first heartbeat.
    assert!(
        wait_until(Duration::from_secs(15), || s
            .command(&["status"])
            .output()
            .is_ok_and(
                |o| String::from_utf8_lossy(&o.stdout).contains("last seen")
            )),
        "no heartbeat:\n{}",
        last_lines(&d.stderr(), 30)
    );
    let out = s.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("daemon: running (pid {}", d.pid())),
        "{text}"
    );
    assert!(text.contains("last seen"), "{text}");
    let json = s.command(&["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["daemon"]["state"], "running", "{v}");
    let db = s.db();
    let fresh = "SELECT COUNT(*) FROM daemon WHERE heartbeat_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-3 seconds')";
    assert_eq!(sql_i64(&db, fresh), 1, "the heartbeat is more than 3 s old");

    assert!(d.stop().success());
    let out = s.command(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stopped cleanly"), "{text}");
}

#[test]
fn the_metrics_endpoint_serves_dispatch_counts() {
    let (_sim, url) = simulate(&["--call-secs", "0.2-0.5"]);
    let mut s = Setup::new(&url, "sim-key");
    let addr = format!("127.0.0.1:{}", free_port());
    s.set("DIALERD_METRICS__LISTEN", &addr)
        .set("DIALERD_DISPATCH__RATE_PER_SECOND", "20");
    s.campaign("metrics", 5);
    let mut d = s.start(&["run"]);
    let db = s.db();
    assert!(wait_until(Duration::from_secs(10), || sql_i64(
        &db,
        "SELECT COUNT(*) FROM attempts WHERE state = 'accepted'"
    ) >= 1));
    let scrape = || {
        block_on(async {
            let resp = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
            resp.text().await.ok()
        })
        .unwrap_or_default()
    };
    let mut body = String::new();
    let ok = wait_until(Duration::from_secs(10), || {
        body = scrape();
        body.contains("dialerd_dispatches_total{result=\"accepted\"}")
    });
    assert!(ok, "no dispatch count at http://{addr}/metrics:\n{body}");
    assert!(body.contains("# HELP dialerd_dispatches_total"), "{body}");
    assert!(
        body.contains("dialerd_reconcile_list_requests_total"),
        "{body}"
    );
    assert!(d.stop().success());
}
