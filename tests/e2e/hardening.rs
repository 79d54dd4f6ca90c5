//! What a live systemd run and a security review asked of the real binary:
//! a database on a filesystem that fills up, journald priorities, a closed
//! pipe, private files, and an inbox that holds symlinks. Every wait is
//! bounded.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
use crate::harness::{BIN, wait_until};

/// A child process whose stderr is collected; killed when dropped.
struct Proc {
    child: Child,
    err: Arc<Mutex<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start dialerd");
        let err = collect(child.stderr.take().unwrap());
        Self { child, err }
    }

    fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// SIGTERM, then waits for the exit.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(50));
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no exit after SIGTERM:\n{}", self.stderr());
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

/// `dialerd ARGS` with only the given environment, against a database in
/// `dir` and an API on a loopback port nobody listens on.
fn dialerd(dir: &Path, db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir)
        .env("DIALERD_DATABASE__PATH", db)
        .env("DIALERD_PROVIDER__BASE_URL", "http://127.0.0.1:9/api/v1")
        .env("DIALERD_API_KEY", "sim-key-local")
        .env("DIALERD_DAEMON__HEARTBEAT_SECS", "1")
        .env("DIALERD_DAEMON__CAMPAIGN_REFRESH_SECS", "0.5")
        .env("DIALERD_INBOX__POLL_INTERVAL_SECS", "0.2")
        .env("DIALERD_INBOX__SETTLE_SECS", "0")
        // Quiet hours would make these runs depend on the hour they run at
        // (their London numbers are callable 08:00-21:00 UTC); the hours are
        // tested through the test clock instead.
        .env("DIALERD_COMPLIANCE__QUIET_HOURS", "off")
        .args(args);
    cmd
}

/// A systemd notification socket: what the daemon sends with sd_notify.
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl Notify {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Self {
            sock,
            path,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one satisfies `cond` (true) or `limit` passes.
    fn until(&mut self, limit: Duration, cond: impl Fn(&str) -> bool) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = cond(&msg);
                self.seen.push(msg);
                if hit {
                    return true;
                }
            }
        }
        false
    }
}

/// A tmpfs mounted for one test, unmounted when dropped; `None` where the
/// test cannot mount one (not root).
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Self {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Fills the filesystem holding `dir`; returns the filler to delete.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0x5au8; 16 * 1024];
    while f.write_all(&block).is_ok() {}
    let _ = f.flush();
    path
}

fn status_text(dir: &Path, db: &Path) -> String {
    let out = dialerd(dir, db, &["status"]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------- storage

#[test]
fn a_full_disk_stops_dispatch_visibly_and_the_daemon_goes_on_by_itself_when_space_returns() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = SmallFs::mount(&tmp.path().join("small"), "4m") else {
        eprintln!(
            "cannot mount a tmpfs (not root?): the store's injected SQLITE_FULL test covers this"
        );
        return;
    };
    let db = fs.dir.join("dialerd.db");
    let mut notify = Notify::bind(tmp.path());
    let mut cmd = dialerd(tmp.path(), &db, &["run"]);
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "6000000");
    let mut daemon = Proc::spawn(cmd);
    assert!(
        notify.until(Duration::from_secs(20), |m| m.contains("READY=1")),
        "no READY=1:\n{}",
        daemon.stderr()
    );

    let filler = fill(&fs.dir);
    let unwritable = |m: &str| m.contains("STATUS=DATABASE NOT WRITABLE");
    assert!(
        notify.until(Duration::from_secs(20), unwritable),
        "STATUS= never said the database cannot be written; sent: {:?}\n{}",
        notify.seen,
        daemon.stderr()
    );
    // The log line and STATUS= are written by different paths: the line
    // may reach the pipe a moment after the notification.
    assert!(
        wait_until(Duration::from_secs(10), || daemon
            .stderr()
            .contains("DATABASE NOT WRITABLE")),
        "the log never said the database cannot be written:\n{}",
        daemon.stderr()
    );
    // Waiting for space is a choice, not a wedge: the watchdog is still petted.
    notify.seen.clear();
    assert!(
        notify.until(Duration::from_secs(5), |m| m.contains("WATCHDOG=1")
            && unwritable(m)),
        "the watchdog was not petted while waiting for space: {:?}",
        notify.seen
    );
    // Once the heartbeat is older than three periods, `status` says why.
    assert!(
        wait_until(Duration::from_secs(30), || status_text(tmp.path(), &db)
            .contains("NOT WRITING THE DATABASE")),
        "{}",
        status_text(tmp.path(), &db)
    );

    std::fs::remove_file(filler).unwrap();
    assert!(
        notify.until(Duration::from_secs(20), |m| m.contains("STATUS=")
            && !unwritable(m)
            && m.contains("WATCHDOG=1")),
        "the daemon did not go on by itself: {:?}\n{}",
        notify.seen,
        daemon.stderr()
    );
    assert!(
        wait_until(Duration::from_secs(10), || status_text(tmp.path(), &db)
            .contains("daemon: running")),
        "{}",
        status_text(tmp.path(), &db)
    );
    assert!(
        daemon.stderr().contains("writable again"),
        "{}",
        daemon.stderr()
    );
    assert!(
        !daemon.stderr().contains("transaction depth"),
        "{}",
        daemon.stderr()
    );
    daemon.stop();
}

// ---------------------------------------------------------------- journald

/// Runs the daemon on a database whose dispatching is paused (an error at
/// start-up) with stderr a pipe; `journal` sets `$JOURNAL_STREAM` to that
/// pipe's device and inode, as systemd does for the journal's stream.
fn daemon_lines(journal: bool) -> Vec<String> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    assert!(
        dialerd(dir.path(), &db, &["status"])
            .status()
            .unwrap()
            .success()
    );
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE daemon SET dispatch_paused = 'the API refused the key' WHERE id = 1")
        .status()
        .expect("sqlite3");
    assert!(out.success());
    let (reader, writer) = std::io::pipe().unwrap();
    let meta = std::fs::File::from(writer.as_fd().try_clone_to_owned().unwrap())
        .metadata()
        .unwrap();
    let mut cmd = dialerd(dir.path(), &db, &["run"]);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer);
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let err = collect(reader);
    assert!(
        wait_until(Duration::from_secs(15), || err
            .lock()
            .unwrap()
            .contains("dialerd running")),
        "{}",
        err.lock().unwrap()
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    // The collector drops its handle on the buffer once it has read to the
    // end of the pipe: every line the daemon wrote is in.
    assert!(
        wait_until(Duration::from_secs(10), || Arc::strong_count(&err) == 1),
        "the daemon's stderr did not close"
    );
    let text = err.lock().unwrap().clone();
    text.lines().map(str::to_string).collect()
}

#[test]
fn on_the_journal_stream_each_line_carries_its_priority_and_no_timestamp_of_its_own() {
    let lines = daemon_lines(true);
    let paused = lines
        .iter()
        .find(|l| l.contains("DISPATCH IS PAUSED"))
        .unwrap_or_else(|| panic!("no pause line in {lines:#?}"));
    assert!(
        paused.starts_with("<3>"),
        "an error is not priority 3: {paused}"
    );
    let running = lines
        .iter()
        .find(|l| l.contains("dialerd running"))
        .unwrap();
    assert!(
        running.starts_with("<6>"),
        "info is not priority 6: {running}"
    );
    for line in &lines {
        assert!(
            line.starts_with('<') && line[1..].starts_with(|c: char| c.is_ascii_digit()),
            "a line without a priority: {line}"
        );
        assert!(
            !line.contains(&chrono::Utc::now().format("%Y-%m-%dT").to_string()),
            "journald stamps lines itself; a second timestamp: {line}"
        );
    }
}

#[test]
fn off_the_journal_stream_lines_keep_their_timestamp_and_no_priority_prefix() {
    let lines = daemon_lines(false);
    let paused = lines
        .iter()
        .find(|l| l.contains("DISPATCH IS PAUSED"))
        .unwrap_or_else(|| panic!("no pause line in {lines:#?}"));
    assert!(!paused.starts_with('<'), "{paused}");
    assert!(paused.contains("ERROR"), "{paused}");
    assert!(
        paused.starts_with(&chrono::Utc::now().format("%Y-").to_string()),
        "{paused}"
    );
}

// ---------------------------------------------------------------- closed pipe

#[test]
fn every_command_exits_quietly_when_its_reader_has_gone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let csv = dir.path().join("people.csv");
    let mut text = String::from("phone_number,name\n");
    for i in 0..300 {
        text.push_str(&format!("+44207946{i:04},Person {i}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let csv = csv.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["import", csv, "--campaign", "piped", "--agent-id", "1"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["campaigns", "list"],
        vec!["campaigns", "show", "piped"],
        vec!["campaigns", "pause", "piped"],
        vec!["dnc", "add", "+442079460001", "+442079460002"],
        vec!["dnc", "list"],
        vec!["export"],
        vec!["export", "--format", "jsonl"],
        vec!["check-config"],
        vec!["dispatch", "resume"],
        vec!["explain", "+13055550123", "+442079460958"],
        vec!["explain", "--json", "+13055550123"],
        vec!["plan", "piped"],
        vec!["plan", "--json", "piped"],
        vec!["numbers", "add", "1", "+442079460999", "--pool", "main"],
        vec!["numbers", "list"],
        vec!["numbers", "list", "--json"],
        vec!["--help"],
        vec!["--version"],
    ];
    for args in commands {
        // The reading end is closed before the command starts: its first
        // write meets a closed pipe, every time.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = dialerd(dir.path(), &db, &args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(0) && err.trim().is_empty(),
            "dialerd {} | (closed): {:?}\n{err}",
            args.join(" "),
            out.status
        );
    }
}

// ---------------------------------------------------------------- private files

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `dialerd ARGS` under `umask 000`, the most permissive an operator's shell could have.
fn under_umask_0(mut cmd: Command) -> Command {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(prog)
        .args(args);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    sh.env("PATH", "/usr/bin:/bin");
    if let Some(d) = cmd.get_current_dir() {
        sh.current_dir(d);
    }
    cmd = sh;
    cmd
}

#[test]
fn the_database_its_wal_shm_lock_and_exports_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let mut daemon = Proc::spawn(under_umask_0(dialerd(dir.path(), &db, &["run"])));
    assert!(
        wait_until(Duration::from_secs(15), || daemon
            .stderr()
            .contains("dialerd running")),
        "{}",
        daemon.stderr()
    );
    let mut files = vec![db.clone()];
    for suffix in ["-wal", "-shm", ".lock"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for f in &files {
        assert_eq!(mode(f), 0o600, "{} is not private", f.display());
    }
    daemon.stop();
    let export = dir.path().join("out.csv");
    let out = under_umask_0(dialerd(
        dir.path(),
        &db,
        &["export", "--output", export.to_str().unwrap()],
    ))
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&export), 0o600);
}

#[test]
fn an_api_key_file_others_can_read_gets_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let key = dir.path().join("api_key");
    std::fs::write(&key, "sim-key-local\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = |key: &Path| {
        let out = dialerd(dir.path(), &db, &["check-config"])
            .env_remove("DIALERD_API_KEY")
            .env("DIALERD_PROVIDER__API_KEY_FILE", key)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(&key);
    assert!(err.contains("readable by every user"), "{err}");
    assert!(!err.contains("sim-key-local"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = check(&key);
    assert!(!err.contains("readable by every user"), "{err}");
}

// ---------------------------------------------------------------- key rotation

/// `dialerd simulate` on a free loopback port with `args`; returns it and its base URL.
fn simulate(args: &[&str]) -> (Proc, String) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .args([
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--call-secs",
            "0.1-0.2",
        ])
        .args(args);
    let sim = Proc::spawn(cmd);
    const MARK: &str = "OmniDimension-compatible API at ";
    assert!(
        wait_until(Duration::from_secs(10), || sim
            .stderr()
            .find(MARK)
            .is_some_and(|i| sim.stderr()[i..].contains('\n'))),
        "the simulator did not start:\n{}",
        sim.stderr()
    );
    let err = sim.stderr();
    let rest = &err[err.find(MARK).unwrap() + MARK.len()..];
    (sim, rest.split_whitespace().next().unwrap().to_string())
}

/// Imports three contacts dialed once each, all day, swept every second.
fn import_campaign(dir: &Path, db: &Path) {
    let csv = dir.join("rotate.csv");
    std::fs::write(
        &csv,
        "phone_number\n+442079460101\n+442079460102\n+442079460103\n",
    )
    .unwrap();
    let out = dialerd(
        dir,
        db,
        &[
            "import",
            csv.to_str().unwrap(),
            "--campaign",
            "rotate",
            "--agent-id",
            "1",
            "--schedule",
            "*/1 * * * * *",
            "--window",
            "00:00-24:00",
            "--max-attempts",
            "1",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sql_text(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 5000")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        eprintln!("sqlite3: {}", String::from_utf8_lossy(&out.stderr));
    }
    text
}

/// A daemon run with the key in `key_file`, until `needle` shows in its log.
fn run_until(dir: &Path, db: &Path, url: &str, key_file: &Path, needle: &str) -> Proc {
    let mut cmd = dialerd(dir, db, &["run"]);
    cmd.env_remove("DIALERD_API_KEY")
        .env("DIALERD_PROVIDER__API_KEY_FILE", key_file)
        .env("DIALERD_PROVIDER__BASE_URL", url)
        .env("DIALERD_RECONCILE__POLL_INTERVAL_SECS", "0.3");
    let p = Proc::spawn(cmd);
    assert!(
        wait_until(Duration::from_secs(20), || p.stderr().contains(needle)),
        "no {needle:?} in:\n{}",
        p.stderr()
    );
    p
}

#[test]
fn a_pause_caused_by_a_refused_key_clears_itself_once_the_key_changes_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let (_sim, url) = simulate(&["--api-key", "the-good-key-0001"]);
    import_campaign(dir.path(), &db);
    let key = dir.path().join("api_key");
    std::fs::write(&key, "a-revoked-key-0002\n").unwrap();

    let mut first = run_until(dir.path(), &db, &url, &key, "DISPATCH PAUSED");
    first.stop();
    let paused_by = sql_text(&db, "SELECT dispatch_paused_key FROM daemon");
    assert!(paused_by.starts_with("sha256:"), "{paused_by:?}");
    assert!(!paused_by.contains("revoked"), "{paused_by:?}");

    // The same bad key again: the pause holds, nothing is dialed.
    let mut same = run_until(dir.path(), &db, &url, &key, "DISPATCH IS PAUSED");
    std::thread::sleep(Duration::from_secs(2));
    same.stop();
    assert!(
        !same.stderr().contains("dispatching resumed"),
        "{}",
        same.stderr()
    );
    assert_eq!(
        sql_text(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE state = 'accepted'"
        ),
        "0"
    );

    // A restart with the replaced key needs no `dispatch resume`.
    std::fs::write(&key, "the-good-key-0001\n").unwrap();
    let mut fixed = run_until(dir.path(), &db, &url, &key, "dispatching resumed");
    assert!(
        wait_until(Duration::from_secs(20), || sql_text(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE state = 'accepted'"
        ) == "3"),
        "the campaign was not dialed after the key changed:\n{}",
        fixed.stderr()
    );
    fixed.stop();
    assert_eq!(
        sql_text(
            &db,
            "SELECT COUNT(*) FROM daemon WHERE dispatch_paused IS NULL"
        ),
        "1"
    );
}

#[test]
fn a_reload_reads_the_api_key_file_afresh_and_clears_the_pause_the_old_key_caused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let (_sim, url) = simulate(&["--api-key", "the-good-key-0001"]);
    import_campaign(dir.path(), &db);
    let key = dir.path().join("api_key");
    std::fs::write(&key, "a-revoked-key-0002\n").unwrap();
    let mut daemon = run_until(dir.path(), &db, &url, &key, "DISPATCH PAUSED");
    std::fs::write(&key, "the-good-key-0001\n").unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status();
    assert!(
        wait_until(Duration::from_secs(20), || sql_text(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE state = 'accepted'"
        ) == "3"),
        "the campaign was not dialed after the reload:\n{}",
        daemon.stderr()
    );
    daemon.stop();
}

// ---------------------------------------------------------------- the unit

/// The unit's `key=value` lines of section `[name]`.
fn unit_section(body: &str, name: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in body.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{name}]");
        } else if inside
            && !line.starts_with('#')
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out
}

#[test]
fn the_unit_stops_on_a_configuration_error_limits_restarts_and_owns_its_inbox() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/dialerd.service");
    let body = std::fs::read_to_string(&unit).unwrap();
    let service = unit_section(&body, "Service");
    let get = |section: &[(String, String)], key: &str| -> Vec<String> {
        section
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    assert_eq!(get(&service, "RestartPreventExitStatus"), ["78"]);
    assert_eq!(get(&service, "Restart"), ["on-failure"]);
    let state = get(&service, "StateDirectory").join(" ");
    assert!(
        state.split_whitespace().any(|d| d == "dialerd/inbox"),
        "{state}"
    );
    let unit_part = unit_section(&body, "Unit");
    let burst: u32 = get(&unit_part, "StartLimitBurst")[0].parse().unwrap();
    let interval: u32 = get(&unit_part, "StartLimitIntervalSec")[0].parse().unwrap();
    let restart_sec: u32 = get(&service, "RestartSec")[0].parse().unwrap();
    // The limit must be reachable: `burst` restarts fit in the interval.
    assert!(
        burst >= 2 && burst * restart_sec < interval,
        "{burst} x {restart_sec}s in {interval}s"
    );

    // What systemd itself says of these directives.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("dialerd.service");
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
        .expect("systemd-analyze (apt-get install -y systemd)");
    let complaints = String::from_utf8_lossy(&v.stderr);
    assert!(v.status.success(), "{complaints}");
    assert!(!complaints.contains("dialerd.service"), "{complaints}");

    // And the binary keeps its side: a configuration error is exit 78.
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("d.db");
    let no_key = dialerd(tmp.path(), &db, &["run"])
        .env_remove("DIALERD_API_KEY")
        .output()
        .unwrap();
    assert_eq!(
        no_key.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&no_key.stderr)
    );
    let bad = dialerd(tmp.path(), &db, &["run"])
        .env("DIALERD_DISPATCH__RATE_PER_SECOND", "0")
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn check_config_without_a_key_says_how_to_check_the_services_real_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let out = dialerd(dir.path(), &db, &["check-config"])
        .env_remove("DIALERD_API_KEY")
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in [
        "systemd-run --pipe --wait",
        "LoadCredential=api_key:/etc/dialerd/api_key",
        "DIALERD_DATABASE__PATH=/var/lib/dialerd/dialerd.db",
        "check-config",
    ] {
        assert!(err.contains(part), "{part:?} missing from:\n{err}");
    }
    // The same words as the unit's own comment, so the two never drift apart.
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/dialerd.service"),
    )
    .unwrap();
    assert!(unit.contains("--property=LoadCredential=api_key:/etc/dialerd/api_key"));
    assert!(
        unit.contains("--property=Environment=DIALERD_DATABASE__PATH=/var/lib/dialerd/dialerd.db")
    );
}
