//! Import throughput and memory on a 1,000,000-row CSV
//! (`cargo bench --bench import_1m`; `harness = false`).
//!
//! Generates the file (a UK mobile number plus three context columns, every
//! number valid and distinct), then measures:
//! 1. the library API (`import_file`) in this process, into a fresh database;
//! 2. the real binary (`dialerd import`) in a child process under
//!    `/usr/bin/time -v`, for its peak RSS (the daemon binary is what runs in
//!    production);
//! 3. `sqlite3 -cmd '.mode csv' x.db '.import big.csv raw'` on the same file,
//!    the floor a raw, unvalidated import into an index-free table sets;
//! 4. for context, sqlite3 alone moving those raw rows into dialerd's own
//!    schema, every migration applied (`INSERT INTO contacts ... SELECT ...
//!    FROM raw`, one statement): the cost of the table's indexes and checks,
//!    which no importer can avoid.
//!
//! Targets: within 3x of sqlite3's rows/s, peak RSS under 100 MiB.
//! `IMPORT_BENCH_ROWS` changes the row count, `IMPORT_BENCH_RUNS` (default
//! 3) how many times each is measured; medians are reported.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialerd::clock::SystemClock;
use dialerd::config::Settings;
use dialerd::import::{CampaignOverrides, ImportRequest, SqliteSelect, import_file};
use dialerd::phone::PhoneNumber;
use dialerd::store::Store;

fn main() {
    let rows: u64 = std::env::var("IMPORT_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = std::env::var("IMPORT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("big.csv");
    let t = Instant::now();
    write_csv(&csv, rows);
    let size = std::fs::metadata(&csv).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {rows} rows ({:.1} MiB) in {:.2?}",
        size as f64 / 1048576.0,
        t.elapsed()
    );

    // Each measurement is taken `runs` times, interleaved, into fresh
    // databases; the medians are reported (a 2-core machine is noisy).
    let (mut libs, mut bins, mut sqlites, mut floors, mut rss_kib) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), None);
    for run in 0..runs {
        let d = dir.path().join(format!("run{run}"));
        std::fs::create_dir_all(&d).expect("run dir");
        libs.push(bench_library(&d, &csv, rows));
        let (bin, rss) = bench_binary(&d, &csv);
        bins.push(bin);
        rss_kib = rss_kib.max(rss);
        sqlites.extend(bench_sqlite3(&d, &csv));
        floors.extend(bench_schema_floor(&d));
        let _ = std::fs::remove_dir_all(&d);
    }
    let lib = median(&mut libs);
    let bin = median(&mut bins);
    let sqlite = (!sqlites.is_empty()).then(|| median(&mut sqlites));
    let schema = (!floors.is_empty()).then(|| median(&mut floors));

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!();
    println!(
        "medians of {runs} runs; every run: library {libs:.2?}, binary {bins:.2?}, sqlite3 {sqlites:.2?}, schema {floors:.2?}"
    );
    println!(
        "library import_file : {:>10.0} rows/s ({:.2?})",
        rate(lib),
        lib
    );
    println!(
        "dialerd import (bin): {:>10.0} rows/s ({:.2?})",
        rate(bin),
        bin
    );
    match sqlite {
        Some(s) => {
            println!("sqlite3 .import     : {:>10.0} rows/s ({:.2?})", rate(s), s);
            println!(
                "ratio sqlite3/dialerd: {:.2}x (library), {:.2}x (binary); target <= 3x",
                rate(s) / rate(lib),
                rate(s) / rate(bin)
            );
        }
        None => println!("sqlite3 .import     : not available"),
    }
    if let Some(f) = schema {
        println!(
            "sqlite3 INSERT..SELECT into dialerd's schema: {:>10.0} rows/s ({:.2?})",
            rate(f),
            f
        );
    }
    match rss_kib {
        Some(k) => println!(
            "peak RSS of dialerd import: {:.1} MiB; target < 100 MiB",
            k as f64 / 1024.0
        ),
        None => println!("peak RSS of dialerd import: unknown (no /usr/bin/time)"),
    }
}

/// The middle value (sorts `v`).
fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `+44 7400 000000` upwards: UK mobiles, valid and distinct (a second
/// block beyond a million rows).
fn number(i: u64) -> String {
    if i < 1_000_000 {
        format!("+447400{i:06}")
    } else {
        format!("+447401{:06}", i - 1_000_000)
    }
}

fn write_csv(path: &Path, rows: u64) {
    for i in (0..rows.min(2_000_000)).step_by(997) {
        let n = number(i);
        assert!(PhoneNumber::parse(&n, None).is_ok(), "{n} must be valid");
    }
    let mut w = BufWriter::new(std::fs::File::create(path).expect("create csv"));
    writeln!(w, "phone,first_name,plan,notes").expect("write");
    for i in 0..rows {
        writeln!(
            w,
            "{},Customer {i},plan-{},renewal due {}",
            number(i),
            i % 7,
            2026 + i % 3
        )
        .expect("write");
    }
    w.flush().expect("flush");
}

fn defaults() -> dialerd::config::CampaignDefaults {
    let env = std::collections::HashMap::new();
    Settings::load_with_env(None, &env)
        .expect("default settings")
        .campaign_defaults
}

fn bench_library(dir: &Path, csv: &Path, rows: u64) -> Duration {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(&dir.join("lib.db"), Arc::new(SystemClock))
            .await
            .expect("open store");
        let req = ImportRequest {
            path: csv.to_path_buf(),
            campaign: "bench".into(),
            overrides: CampaignOverrides::default(),
            select: SqliteSelect::Auto,
            dry_run: false,
        };
        let t = Instant::now();
        let report = import_file(&store, &defaults(), &req)
            .await
            .expect("import");
        let took = t.elapsed();
        assert_eq!(report.counts.imported, rows, "{}", report.summary());
        println!("library: {}", report.summary());
        store.close().await;
        took
    })
}

fn binary() -> PathBuf {
    option_env!("CARGO_BIN_EXE_dialerd")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DIALERD_BIN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/release/dialerd"))
}

fn bench_binary(dir: &Path, csv: &Path) -> (Duration, Option<u64>) {
    let timer = Path::new("/usr/bin/time");
    let mut cmd = if timer.exists() {
        let mut c = Command::new(timer);
        c.arg("-v").arg(binary());
        c
    } else {
        Command::new(binary())
    };
    cmd.arg("import")
        .arg(csv)
        .args(["--campaign", "bench"])
        .env("DIALERD_DATABASE__PATH", dir.join("bin.db"))
        .env_remove("DIALERD_CONFIG");
    let t = Instant::now();
    let out = cmd.output().expect("run dialerd import");
    let took = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dialerd import failed: {stderr}");
    println!("binary: {}", String::from_utf8_lossy(&out.stdout).trim());
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok());
    (took, rss)
}

fn bench_sqlite3(dir: &Path, csv: &Path) -> Option<Duration> {
    let db = dir.join("raw.db");
    let t = Instant::now();
    let out = Command::new("sqlite3")
        .args(["-cmd", ".mode csv"])
        .arg(&db)
        .arg(format!(".import {} raw", csv.display()))
        .output()
        .ok()?;
    let took = t.elapsed();
    out.status.success().then_some(took)
}

/// sqlite3 alone: the raw rows of `raw.db` into dialerd's schema (every
/// migration, applied by `Store::open`), in one statement.
fn bench_schema_floor(dir: &Path) -> Option<Duration> {
    let db = dir.join("floor.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let store = Store::open(&db, Arc::new(SystemClock)).await.ok()?;
        sqlx::query("INSERT INTO campaigns (name) VALUES ('floor')")
            .execute(store.pool())
            .await
            .ok()?;
        store.close().await;
        Some(())
    })?;
    let raw = dir.join("raw.db");
    let t = Instant::now();
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(
            format!(
                "PRAGMA synchronous = NORMAL; ATTACH '{}' AS r; \
                 INSERT INTO contacts (campaign_id, phone_number, call_context, state, validated, source_line, created_at, updated_at) \
                 SELECT 1, phone, json_object('first_name', first_name, 'plan', plan, 'notes', notes), 'pending', 1, rowid + 1, \
                 '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM r.raw WHERE true ON CONFLICT DO NOTHING",
                raw.display()
            ),
        )
        .output()
        .ok()?;
    let took = t.elapsed();
    out.status.success().then_some(took)
}
