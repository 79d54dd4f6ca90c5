//! The daemon's footprint: the real binary (`dialerd run`, the one cargo
//! builds for this bench) as a child process, measured from
//! `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS, VmHWM).
//! The simulator runs in this process and serves as the base URL.
//!
//! `cargo bench --bench daemon_footprint` (`harness = false`). Cases, each a
//! greppable `footprint_*` line:
//!
//! 1. `footprint_idle_empty`: an empty database, idle for
//!    `FOOTPRINT_IDLE_SECS` (default 60) after start-up: CPU seconds over the
//!    idle period, RSS at its end, peak RSS (VmHWM).
//! 2. `footprint_defer_sweep`: `FOOTPRINT_CONTACTS` (default 1,000,000)
//!    validated contacts inserted by SQL (100,000 per transaction) into one
//!    active campaign whose calling window (UTC, one hour, starting two hours
//!    from now) is closed, with its first sweep due at start-up. The sweep
//!    defers every contact (one `UPDATE` per contact): the time from the
//!    daemon's start to the "sweep finished" log line, CPU seconds, peak RSS;
//!    then RSS after `FOOTPRINT_AFTER_SECS` (default 10) of idling.
//! 3. `footprint_paused`: the same contacts, the campaign paused: nothing is
//!    touched; RSS and CPU after `FOOTPRINT_AFTER_SECS` of idling.
//!
//! `FOOTPRINT_SKIP` (comma list of `idle`, `defer`, `paused`) skips cases.
//! The daemon runs with the default configuration (log level info) plus
//! `DIALERD_DATABASE__PATH`, `DIALERD_PROVIDER__BASE_URL` and `DIALERD_API_KEY`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Timelike, Utc};
use dialerd::clock::{SharedClock, SystemClock};
use dialerd::sim::{self, SimOptions};
use dialerd::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_dialerd");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",")
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in seconds.
fn cpu_secs(pid: u32, tck: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name in parentheses; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("stat format")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f[11].parse()?;
    let stime: f64 = f[12].parse()?;
    Ok((utime + stime) / tck)
}

/// (VmRSS, VmHWM) of `pid`, in MiB.
fn rss_mib(pid: u32) -> anyhow::Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

struct Daemon {
    child: Child,
    log: PathBuf,
    started: Instant,
}

impl Daemon {
    fn start(db: &Path, base_url: &str, dir: &Path, name: &str) -> anyhow::Result<Daemon> {
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log)?;
        let child = Command::new(BIN)
            .arg("run")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DIALERD_DATABASE__PATH", db)
            .env("DIALERD_PROVIDER__BASE_URL", base_url)
            .env("DIALERD_API_KEY", "sim-key")
            // The campaigns' own windows decide, whatever the hour of the run.
            .env("DIALERD_COMPLIANCE__QUIET_HOURS", "off")
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {BIN}"))?;
        Ok(Daemon {
            child,
            log,
            started: Instant::now(),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_has(&self, needle: &str) -> bool {
        File::open(&self.log)
            .map(|f| {
                BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .any(|l| l.contains(needle))
            })
            .unwrap_or(false)
    }

    /// Waits for `needle` in the log, sampling the peak RSS meanwhile.
    fn wait_for(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_has(needle) {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "dialerd exited ({status}) before logging {needle:?}; log: {}",
                    self.tail()
                );
            }
            if Instant::now() >= deadline {
                bail!("no {needle:?} within {timeout:?}; log: {}", self.tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.wait()?;
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let idle_secs: u64 = env_or("FOOTPRINT_IDLE_SECS", 60);
    let after_secs: u64 = env_or("FOOTPRINT_AFTER_SECS", 10);
    let contacts: u64 = env_or("FOOTPRINT_CONTACTS", 1_000_000);
    let skip = std::env::var("FOOTPRINT_SKIP").unwrap_or_default();
    let tck = clk_tck();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sim = rt.block_on(sim::spawn(SimOptions::default()))?;
    let base = sim.base_url();
    println!("footprint_binary path={BIN}");

    if !skip.contains("idle") {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("dialerd.db");
        let load = loadavg();
        let mut d = Daemon::start(&db, &base, dir.path(), "idle")?;
        let ready = d.wait_for("dialerd running", Duration::from_secs(60))?;
        std::thread::sleep(Duration::from_secs(2));
        let (cpu0, rss0) = (cpu_secs(d.pid(), tck)?, rss_mib(d.pid())?.0);
        std::thread::sleep(Duration::from_secs(idle_secs));
        let cpu1 = cpu_secs(d.pid(), tck)?;
        let (rss, hwm) = rss_mib(d.pid())?;
        println!(
            "footprint_idle_empty idle_secs={idle_secs} startup_secs={:.3} cpu_start_secs={cpu0:.2} idle_cpu_secs={:.3} idle_cpu_pct={:.4} rss_start_mib={rss0:.1} rss_idle_mib={rss:.1} peak_rss_mib={hwm:.1} loadavg={load}",
            ready.as_secs_f64(),
            cpu1 - cpu0,
            (cpu1 - cpu0) / idle_secs as f64 * 100.0,
        );
        d.stop()?;
    }

    for (case, paused) in [("defer", false), ("paused", true)] {
        if skip.contains(case) {
            continue;
        }
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("dialerd.db");
        let t = Instant::now();
        rt.block_on(seed(&db, contacts, paused))?;
        let seed_secs = t.elapsed().as_secs_f64();
        let db_mib = std::fs::metadata(&db)
            .map(|m| m.len() as f64 / 1048576.0)
            .unwrap_or(f64::NAN);
        let load = loadavg();
        let mut d = Daemon::start(&db, &base, dir.path(), case)?;
        let ready = d.wait_for("dialerd running", Duration::from_secs(120))?;
        if paused {
            std::thread::sleep(Duration::from_secs(2));
            let (cpu0, _) = (cpu_secs(d.pid(), tck)?, ());
            std::thread::sleep(Duration::from_secs(after_secs));
            let cpu1 = cpu_secs(d.pid(), tck)?;
            let (rss, hwm) = rss_mib(d.pid())?;
            println!(
                "footprint_paused contacts={contacts} db_mib={db_mib:.0} seed_secs={seed_secs:.1} startup_secs={:.3} cpu_start_secs={cpu0:.2} idle_secs={after_secs} idle_cpu_secs={:.3} rss_idle_mib={rss:.1} peak_rss_mib={hwm:.1} loadavg={load}",
                ready.as_secs_f64(),
                cpu1 - cpu0,
            );
        } else {
            let done = d.wait_for("sweep finished", Duration::from_secs(3600))?;
            let cpu_sweep = cpu_secs(d.pid(), tck)?;
            let (rss_sweep, hwm_sweep) = rss_mib(d.pid())?;
            let deferred = rt.block_on(count_deferred(&db))?;
            std::thread::sleep(Duration::from_secs(after_secs));
            let cpu1 = cpu_secs(d.pid(), tck)?;
            let (rss, hwm) = rss_mib(d.pid())?;
            println!(
                "footprint_defer_sweep contacts={contacts} deferred={deferred} db_mib={db_mib:.0} seed_secs={seed_secs:.1} startup_secs={:.3} sweep_done_secs={:.2} contacts_per_s={:.0} cpu_to_sweep_end_secs={cpu_sweep:.2} rss_at_sweep_end_mib={rss_sweep:.1} peak_rss_mib={hwm_sweep:.1} idle_secs={after_secs} idle_cpu_secs={:.3} rss_idle_mib={rss:.1} peak_rss_end_mib={hwm:.1} loadavg={load} loadavg_end={}",
                ready.as_secs_f64(),
                done.as_secs_f64(),
                contacts as f64 / done.as_secs_f64(),
                cpu1 - cpu_sweep,
                loadavg(),
            );
        }
        d.stop()?;
    }
    rt.block_on(sim.shutdown())?;
    Ok(())
}

/// A database with one campaign of `n` validated contacts (time zone UTC),
/// its window closed now, its first sweep due now (or the campaign paused).
async fn seed(db: &Path, n: u64, paused: bool) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(db, clock).await?;
    let now = Utc::now();
    let start = (now.hour() + 2) % 24;
    let end = (start + 1) % 24;
    let due = (now - chrono::Duration::seconds(5))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, agent_id, timezone, window_start, window_end, status, next_sweep_at) \
         VALUES ('footprint', 7, 'UTC', printf('%02d:00', ?), printf('%02d:00', ?), ?, ?) RETURNING id",
    )
    .bind(start)
    .bind(end)
    .bind(if paused { "paused" } else { "active" })
    .bind(due)
    .fetch_one(store.pool())
    .await?;
    const CHUNK: u64 = 100_000;
    let mut from = 0u64;
    while from < n {
        let to = (from + CHUNK).min(n);
        sqlx::query(
            "WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1) \
             INSERT INTO contacts (campaign_id, phone_number, call_context, timezone, validated) \
             SELECT ?, printf('+1415%07d', i), json_object('name', 'Ann', 'i', i), 'UTC', 1 FROM s",
        )
        .bind(from as i64)
        .bind(to as i64)
        .bind(id)
        .execute(store.pool())
        .await?;
        from = to;
    }
    store.close().await;
    Ok(())
}

async fn count_deferred(db: &Path) -> anyhow::Result<i64> {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await?;
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE next_attempt_at IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    pool.close().await;
    Ok(n)
}
