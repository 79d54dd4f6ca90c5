//! The one harness every test binary shares (`tests/fast`, `tests/e2e`,
//! `tests/harnesses` each include it with `#[path]`):
//!
//! - here: the real `dialerd` binary as child processes that are always
//!   killed (a [`ChildGuard`]), a campaign written by SQL before the first
//!   start, a separate reader process polling the public views, the
//!   end-of-run audit that compares the simulator's journal (every call
//!   really placed) with the database (every attempt the daemon recorded),
//!   the rows tests read, and polling with a deadline ([`wait_until`]);
//! - [`world`]: the in-process world (a database, the simulator and an
//!   engine on one test clock) and its driver.
//!
//! Knobs come from the environment so the scripts in `scripts/` can run the
//! same tests for longer: see [`env_or`].

#![allow(dead_code)]

pub mod world;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dialerd::clock::SystemClock;
use dialerd::phone::PhoneNumber;
use dialerd::sim::JournalEntry;
use dialerd::store::Store;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_dialerd");

/// A number from the environment, else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A single-threaded runtime for the few async library calls (opening the
/// store, the final audit); the harness itself is plain threads and processes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a
/// failing assertion never leaves a daemon or a simulator behind.
pub struct ChildGuard {
    child: Option<Child>,
    name: String,
}

impl ChildGuard {
    /// Spawns `cmd`, naming it `name` in messages.
    pub fn spawn(name: &str, cmd: &mut Command) -> ChildGuard {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        ChildGuard {
            child: Some(child),
            name: name.to_string(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGKILL (what `Child::kill` sends), then reap.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }

    /// SIGTERM, then wait up to `grace` before SIGKILL.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        self.wait_timeout(grace).or_else(|| self.kill())
    }

    /// Waits until the process exits, up to `limit`; `None` on timeout (the
    /// process keeps running; the guard still kills it when dropped).
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(st) = self.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(POLL_TICK);
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("(killed {} on the way out)", self.name);
            }
        }
    }
}

/// A `dialerd simulate` process.
pub struct Sim {
    pub guard: ChildGuard,
    /// `http://127.0.0.1:PORT/api/v1`.
    pub base_url: String,
    pub journal: PathBuf,
    stderr: Arc<Mutex<String>>,
}

impl Sim {
    /// Starts the simulator on a free loopback port with `--journal` in `dir`
    /// and the extra `args`; waits for the line that names its address.
    pub fn start(dir: &Path, args: &[String]) -> Sim {
        let journal = dir.join("journal.jsonl");
        let mut cmd = Command::new(BIN);
        cmd.args(["simulate", "--listen", "127.0.0.1:0", "--journal"])
            .arg(&journal)
            .args(args)
            .env("DIALERD_LOG__LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn("dialerd simulate", &mut cmd);
        let pipe = guard
            .child
            .as_mut()
            .and_then(|c| c.stderr.take())
            .expect("the simulator's stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let prefix = "OmniDimension-compatible API at ";
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(rest) = line.split(prefix).nth(1) {
                    let url = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(url);
                }
                let mut s = sink.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let base_url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "the simulator did not print its address; stderr:\n{}",
                    stderr.lock().unwrap_or_else(|p| p.into_inner())
                )
            });
        Sim {
            guard,
            base_url,
            journal,
            stderr,
        }
    }

    /// Stops the simulator (SIGTERM: withheld answers are released) and
    /// returns every journal line.
    pub fn stop(mut self) -> Vec<JournalEntry> {
        self.guard.terminate(Duration::from_secs(10));
        read_journal(&self.journal)
    }

    /// What the simulator printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Reads a journal file, one [`JournalEntry`] per line.
pub fn read_journal(path: &Path) -> Vec<JournalEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("journal line {} is not an entry ({e}): {l}", i + 1))
        })
        .collect()
}

/// Lines in the journal file so far (it is flushed per line).
pub fn journal_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// `dialerd run` against `db` and the simulator at `base_url`, configured
/// only by environment variables (`env` adds or overrides), with stdout and
/// stderr appended to `log`.
pub fn daemon_command(
    db: &Path,
    base_url: &str,
    env: &[(&str, String)],
    log: &Path,
    until_idle: bool,
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("run");
    if until_idle {
        cmd.arg("--until-idle");
    }
    // Quiet hours would make these runs depend on the wall clock's hour;
    // they are tested through the test clock instead.
    let defaults: [(&str, &str); 12] = [
        ("DIALERD_COMPLIANCE__QUIET_HOURS", "off"),
        ("DIALERD_API_KEY", "sim-key"),
        ("DIALERD_PROVIDER__REQUEST_TIMEOUT_MS", "500"),
        ("DIALERD_DISPATCH__RATE_PER_SECOND", "200"),
        ("DIALERD_DISPATCH__BURST", "20"),
        ("DIALERD_DISPATCH__MAX_IN_FLIGHT", "16"),
        ("DIALERD_RECONCILE__POLL_INTERVAL_SECS", "0.3"),
        ("DIALERD_RECONCILE__UNCERTAIN_GRACE_SECS", "3"),
        ("DIALERD_DAEMON__CAMPAIGN_REFRESH_SECS", "0.2"),
        ("DIALERD_LOG__LEVEL", "warn"),
        ("DIALERD_DAEMON__SHUTDOWN_GRACE_SECS", "5"),
        ("DIALERD_DISPATCH__RETRY_MAX_DELAY_SECS", "2"),
    ];
    // Nothing from the developer's own environment or config may leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("DIALERD_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("DIALERD_DATABASE__PATH", db)
        .env("DIALERD_PROVIDER__BASE_URL", base_url);
    for (k, v) in defaults {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .expect("the daemon's log file");
    let err = out.try_clone().expect("the daemon's log file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    cmd
}

/// The last `n` lines of a text file (for failure messages).
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last `n` lines of `text` (for failure messages).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How often [`wait_until`] looks again: a polling tick, not a wait for
/// anything to happen; the deadline is what bounds the wait.
pub const POLL_TICK: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL_TICK`] until it holds or `limit` has passed;
/// returns whether it held. A slow machine makes this slower, never wrong.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(POLL_TICK);
    }
}

/// [`wait_until`] for async code: polls `cond` every [`POLL_TICK`] of real
/// time until it holds or `limit` has passed.
pub async fn wait_until_async<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(POLL_TICK).await;
    }
}

/// One integer from the database at `db`, read by a separate connection
/// (another reader, as an operator's would be) that waits out a writer.
pub fn sql_i64(db: &Path, sql: &str) -> i64 {
    runtime().block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .busy_timeout(Duration::from_secs(5));
        let pool = sqlx::SqlitePool::connect_with(opts)
            .await
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", db.display()));
        let v: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pool.close().await;
        v
    })
}

/// `n` distinct numbers that `PhoneNumber::parse` accepts unchanged as E.164
/// (so the database, the request and the journal all spell them alike).
pub fn valid_numbers(n: usize) -> Vec<String> {
    const AREAS: [u32; 10] = [212, 312, 415, 617, 646, 702, 713, 206, 303, 404];
    let mut out = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    'outer: for exchange in 201..=989u32 {
        if exchange % 100 == 11 || exchange == 555 {
            continue;
        }
        for area in AREAS {
            for line in (1000..10_000u32).step_by(97) {
                if out.len() == n {
                    break 'outer;
                }
                let candidate = format!("+1{area}{exchange}{line:04}");
                let ok =
                    PhoneNumber::parse(&candidate, None).is_ok_and(|p| p.as_str() == candidate);
                if ok && seen.insert(candidate.clone()) {
                    out.push(candidate);
                }
            }
        }
    }
    assert_eq!(out.len(), n, "could not make {n} valid numbers");
    out
}

/// The campaign every harness uses.
pub struct CampaignSpec {
    pub name: &'static str,
    pub agent_id: i64,
    pub max_attempts: i64,
    pub retry_delay_secs: i64,
    pub contacts: usize,
}

/// Creates the database (the daemon's own migrations, through the library)
/// and inserts the campaign and its contacts by SQL, as another program
/// would, before the first start. Returns the contacts' numbers.
pub fn create_campaign_db(db: &Path, spec: &CampaignSpec) -> Vec<String> {
    let numbers = valid_numbers(spec.contacts);
    runtime().block_on(async {
        let store = Store::open(db, Arc::new(SystemClock))
            .await
            .expect("create the database");
        let pool = store.pool();
        let mut tx = pool.begin().await.expect("begin");
        sqlx::query(
            "INSERT INTO campaigns (name, agent_id, schedule, window_start, window_end, max_attempts, retry_delay_secs) \
             VALUES (?, ?, '* * * * * *', '00:00', '24:00', ?, ?)",
        )
        .bind(spec.name)
        .bind(spec.agent_id)
        .bind(spec.max_attempts)
        .bind(spec.retry_delay_secs)
        .execute(&mut *tx)
        .await
        .expect("insert the campaign");
        for (i, n) in numbers.iter().enumerate() {
            sqlx::query(
                "INSERT INTO contacts (campaign_id, phone_number, call_context, validated) \
                 VALUES ((SELECT id FROM campaigns WHERE name = ?), ?, ?, 1)",
            )
            .bind(spec.name)
            .bind(n)
            .bind(format!(r#"{{"row": "{i}"}}"#))
            .execute(&mut *tx)
            .await
            .expect("insert a contact");
        }
        tx.commit().await.expect("commit");
        store.close().await;
    });
    numbers
}

/// What the reader process saw.
#[derive(Debug, Default)]
pub struct ReaderReport {
    /// How the views were read: `sqlite3`, `dialerd status --json`, or why not at all.
    pub mode: String,
    pub polls: u64,
    /// Each failed poll: exit status and stderr.
    pub errors: Vec<String>,
}

/// A separate process reading the public views in a loop while the daemon
/// runs and is killed, as an operator's dashboard would.
pub struct Reader {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<ReaderReport>>,
}

impl Reader {
    /// Polls `db` every `every` until stopped: with the `sqlite3` command-line
    /// shell when it is installed, else with `dialerd status --json`. The
    /// shell gets a busy timeout, as every reader of a live database should:
    /// WAL readers never wait for writers, but they do wait (SQLITE_BUSY
    /// without a timeout) while a connection rebuilds the WAL index after a
    /// crash, or checkpoints and removes the WAL as the last one closes.
    pub fn start(db: &Path, every: Duration) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let db = db.to_path_buf();
        let handle = std::thread::spawn(move || {
            let sqlite3 = Command::new("sqlite3")
                .arg("-version")
                .output()
                .is_ok_and(|o| o.status.success());
            let mut report = ReaderReport {
                mode: if sqlite3 {
                    "sqlite3".into()
                } else {
                    "dialerd status --json".into()
                },
                ..ReaderReport::default()
            };
            while !flag.load(Ordering::SeqCst) {
                let out = if sqlite3 {
                    Command::new("sqlite3")
                        .args(["-cmd", ".timeout 5000"])
                        .arg(&db)
                        .arg("SELECT * FROM campaign_progress; SELECT COUNT(*) FROM contact_outcomes;")
                        .stdin(Stdio::null())
                        .output()
                } else {
                    Command::new(BIN)
                        .args(["status", "--json"])
                        .env("DIALERD_DATABASE__PATH", &db)
                        .stdin(Stdio::null())
                        .output()
                };
                report.polls += 1;
                match out {
                    Ok(o) => {
                        let stderr = String::from_utf8_lossy(&o.stderr).trim().to_string();
                        if !sqlite3 && stderr.contains("not available yet") {
                            report.mode =
                                "none: sqlite3 is not installed and `dialerd status` is not implemented yet".into();
                            break;
                        }
                        if !o.status.success() || !stderr.is_empty() {
                            report.errors.push(format!("{}: {stderr}", o.status));
                        }
                    }
                    Err(e) => report.errors.push(format!("cannot run the reader: {e}")),
                }
                std::thread::sleep(every);
            }
            report
        });
        Reader {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops polling and returns what was seen.
    pub fn finish(mut self) -> ReaderReport {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().expect("the reader thread"))
            .unwrap_or_default()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// An attempt row as the tests and the audit read it ([`ATTEMPT_COLUMNS`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub contact_id: i64,
    pub attempt_no: i64,
    pub state: String,
    pub to_number: String,
    pub request_id: Option<String>,
    pub call_log_id: Option<i64>,
    pub outcome: Option<String>,
    pub error: Option<String>,
}

/// The columns of [`AttemptRow`], for `SELECT {ATTEMPT_COLUMNS} FROM attempts`.
pub const ATTEMPT_COLUMNS: &str =
    "id, contact_id, attempt_no, state, to_number, request_id, call_log_id, outcome, error";

/// A contact row as the tests and the audit read it ([`CONTACT_COLUMNS`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    pub id: i64,
    pub phone_number: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub invalid_reason: Option<String>,
    pub validated: i64,
}

/// The columns of [`ContactRow`], for `SELECT {CONTACT_COLUMNS} FROM contacts`.
pub const CONTACT_COLUMNS: &str =
    "id, phone_number, state, attempts, next_attempt_at, invalid_reason, validated";

/// The audit's figures.
#[derive(Debug, Default)]
pub struct Audit {
    pub contacts: usize,
    pub dispatch_requests: usize,
    pub calls_placed: usize,
    pub journal_results: BTreeMap<String, usize>,
    pub attempts: usize,
    pub attempt_states: BTreeMap<String, usize>,
    pub outcomes: BTreeMap<String, usize>,
    pub contact_states: BTreeMap<String, usize>,
    /// Attempts that became uncertain (one by one, or recovered at a start).
    pub uncertain_seen: i64,
    /// Of those, left `sending` by a kill and recovered at the next start.
    pub recovered_at_start: i64,
    pub uncertain_linked: i64,
    pub uncertain_not_placed: i64,
    pub most_calls_to_one_number: usize,
    /// Every broken promise, in words; empty when all held.
    pub violations: Vec<String>,
}

impl std::fmt::Display for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  contacts {}; dispatch requests {}; calls placed {} (most to one number: {})",
            self.contacts, self.dispatch_requests, self.calls_placed, self.most_calls_to_one_number
        )?;
        writeln!(f, "  journal results {:?}", self.journal_results)?;
        writeln!(
            f,
            "  attempts {} {:?}; outcomes {:?}",
            self.attempts, self.attempt_states, self.outcomes
        )?;
        writeln!(f, "  contact states {:?}", self.contact_states)?;
        write!(
            f,
            "  uncertain attempts: seen {} ({} left `sending` by a stop), linked {}, not placed {}",
            self.uncertain_seen,
            self.recovered_at_start,
            self.uncertain_linked,
            self.uncertain_not_placed
        )
    }
}

/// Compares the journal with the database after the daemon has stopped:
///
/// - every journal entry is for a contact of the campaign, and no number got
///   more placed calls than `max_attempts`;
/// - per number, placed calls in the journal == that contact's `accepted`
///   attempts (an outcome is only ever written on an accepted attempt), and
///   the placed calls' request ids are exactly the accepted attempts' ones;
/// - no attempt is left `sending` or `uncertain`, none accepted without an
///   outcome, and `contacts.attempts` equals its accepted attempts;
/// - every contact is final (`done` or `exhausted`).
pub fn audit(db: &Path, journal: &[JournalEntry], max_attempts: i64) -> Audit {
    let (contacts, attempts, events) = runtime().block_on(async {
        let store = Store::open(db, Arc::new(SystemClock))
            .await
            .expect("open the database for the audit");
        let pool = store.pool();
        let contacts: Vec<ContactRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        )))
        .fetch_all(pool)
        .await
        .expect("read contacts");
        let attempts: Vec<AttemptRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts ORDER BY id"
        )))
        .fetch_all(pool)
        .await
        .expect("read attempts");
        let events: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT kind, detail FROM events ORDER BY id")
                .fetch_all(pool)
                .await
                .expect("read events");
        store.close().await;
        (contacts, attempts, events)
    });
    let mut a = Audit {
        contacts: contacts.len(),
        dispatch_requests: journal.len(),
        attempts: attempts.len(),
        ..Audit::default()
    };
    let mut v = Vec::new();

    for e in journal {
        *a.journal_results
            .entry(e.result.as_str().to_string())
            .or_default() += 1;
    }
    let by_number: HashMap<&str, &ContactRow> = contacts
        .iter()
        .map(|c| (c.phone_number.as_str(), c))
        .collect();
    let mut placed: HashMap<&str, Vec<String>> = HashMap::new();
    for e in journal {
        let Some(to) = e.to_number.as_deref() else {
            v.push(format!("a journal entry without a number: {e:?}"));
            continue;
        };
        if !by_number.contains_key(to) {
            v.push(format!(
                "a request to {to}, which is no contact of the campaign"
            ));
        }
        if e.placed {
            a.calls_placed += 1;
            let rid = e.request_id.map(|r| r.to_string()).unwrap_or_default();
            placed.entry(to).or_default().push(rid);
        }
    }
    a.most_calls_to_one_number = placed.values().map(Vec::len).max().unwrap_or(0);

    let mut accepted: HashMap<i64, Vec<&AttemptRow>> = HashMap::new();
    for t in &attempts {
        *a.attempt_states.entry(t.state.clone()).or_default() += 1;
        if let Some(o) = &t.outcome {
            *a.outcomes.entry(o.clone()).or_default() += 1;
        }
        match t.state.as_str() {
            "sending" | "uncertain" => v.push(format!(
                "attempt {} (contact {}, #{}) is left {}",
                t.id, t.contact_id, t.attempt_no, t.state
            )),
            "accepted" if t.outcome.is_none() => v.push(format!(
                "attempt {} (contact {}) was accepted but has no outcome",
                t.id, t.contact_id
            )),
            _ => {}
        }
        if t.outcome.is_some() && t.state != "accepted" {
            v.push(format!(
                "attempt {} has outcome {:?} in state {}",
                t.id, t.outcome, t.state
            ));
        }
        if t.state == "accepted" {
            accepted.entry(t.contact_id).or_default().push(t);
        }
    }

    for c in &contacts {
        *a.contact_states.entry(c.state.clone()).or_default() += 1;
        if !matches!(c.state.as_str(), "done" | "exhausted") {
            v.push(format!(
                "contact {} ({}) ends in state {}",
                c.id, c.phone_number, c.state
            ));
        }
        let calls = placed
            .get(c.phone_number.as_str())
            .cloned()
            .unwrap_or_default();
        let ours = accepted.get(&c.id).cloned().unwrap_or_default();
        if calls.len() as i64 > max_attempts {
            v.push(format!(
                "{} was called {} times (max_attempts {max_attempts})",
                c.phone_number,
                calls.len()
            ));
        }
        if calls.len() != ours.len() {
            v.push(format!(
                "{}: {} calls placed (request ids {:?}) but {} accepted attempts ({:?})",
                c.phone_number,
                calls.len(),
                calls,
                ours.len(),
                ours.iter()
                    .map(|t| (t.id, t.request_id.clone(), t.error.clone()))
                    .collect::<Vec<_>>()
            ));
        } else {
            let mut want: Vec<String> = calls;
            let mut got: Vec<String> = ours
                .iter()
                .map(|t| t.request_id.clone().unwrap_or_default())
                .collect();
            want.sort();
            got.sort();
            if want != got {
                v.push(format!(
                    "{}: placed request ids {want:?} but the attempts carry {got:?}",
                    c.phone_number
                ));
            }
        }
        if c.attempts != ours.len() as i64 {
            v.push(format!(
                "contact {} counts {} attempts but has {} accepted ones",
                c.id,
                c.attempts,
                ours.len()
            ));
        }
    }

    for (kind, detail) in &events {
        match kind.as_str() {
            "attempt_uncertain" => a.uncertain_seen += 1,
            "recovered_sending" => {
                let n = detail
                    .as_deref()
                    .and_then(|d| d.split_whitespace().next())
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(1);
                a.uncertain_seen += n;
                a.recovered_at_start += n;
            }
            "uncertain_linked" => a.uncertain_linked += 1,
            "uncertain_not_placed" => a.uncertain_not_placed += 1,
            _ => {}
        }
    }
    a.violations = v;
    a
}

/// Panics with every violation (the first 40), after the summary.
pub fn assert_no_violations(what: &str, audit: &Audit, extra: &str) {
    if audit.violations.is_empty() {
        return;
    }
    let shown: Vec<&String> = audit.violations.iter().take(40).collect();
    panic!(
        "{what}: {} broken promises\n{audit}\n{extra}\n{}",
        audit.violations.len(),
        shown
            .iter()
            .map(|s| format!("  - {s}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
