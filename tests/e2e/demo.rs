//! `dialerd demo`, the README's first command: through the real binary, on a
//! fresh directory, with no configuration and no key; and the sample
//! campaign it bundles.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dialerd::phone::PhoneNumber;

use crate::harness::{BIN, sql_i64};
const SAMPLE: &str = include_str!("../../examples/campaign.csv");

/// Runs `dialerd ARGS` with an empty environment (no config, no key) in
/// `cwd`, killing it after `limit`; returns (exit code, stdout, stderr, time).
fn run(cwd: &Path, args: &[&str], limit: Duration) -> (Option<i32>, String, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .env_clear()
        .current_dir(cwd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`dialerd {}` still running after {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code(),
        out.join().unwrap(),
        err.join().unwrap(),
        started.elapsed(),
    )
}

#[test]
fn the_demo_runs_end_to_end_and_leaves_every_contact_final() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err, took) = run(
        tmp.path(),
        &["demo", "--dir", "d"],
        Duration::from_secs(120),
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    eprintln!("demo took {took:?}");

    // The import report shows the deliberate reject and duplicate.
    assert!(err.contains("imported 36 of 38 rows"), "{err}");
    assert!(err.contains("1 duplicate, 1 rejected"), "{err}");
    assert!(err.contains("line 38:"), "the reject names its line: {err}");
    assert!(err.contains("dialed 36/36"), "a progress line: {err}");
    assert!(
        err.contains("compliance.quiet_hours = \"off\""),
        "the demo says it runs without quiet hours: {err}"
    );

    // The table: a header and one row per contact, then where to look.
    assert!(
        out.contains("contact") && out.contains("outcome") && out.contains("transcript"),
        "{out}"
    );
    for name in [
        "Ava Thompson",
        "Léa Dubois",
        "Charlotte Nguyen",
        "Aroha Ngata",
    ] {
        assert!(out.contains(name), "{name} missing from the table:\n{out}");
    }
    let rows = out.lines().filter(|l| l.contains(" +")).count();
    assert_eq!(rows, 36, "one table row per contact:\n{out}");
    assert!(out.contains("sqlite3"), "{out}");
    assert!(out.contains("campaign_progress"), "{out}");

    let db = tmp.path().join("d/dialerd.db");
    assert!(db.is_file());
    assert!(
        tmp.path().join("d/campaign.csv").is_file(),
        "the sample is written beside the database"
    );
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM contacts"), 36);
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM contacts WHERE state NOT IN ('done', 'exhausted', 'suppressed', 'invalid', 'cancelled')"
        ),
        0,
        "every contact is final"
    );
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE state IN ('sending', 'uncertain') OR (state = 'accepted' AND outcome IS NULL)"
        ),
        0,
        "no attempt is left open"
    );
    // Never more calls to a person than the campaign's three attempts.
    assert_eq!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM (SELECT contact_id FROM attempts WHERE state = 'accepted' \
             GROUP BY contact_id HAVING COUNT(*) > 3)"
        ),
        0
    );
    assert_eq!(sql_i64(&db, "SELECT COUNT(*) FROM import_rejects"), 1);
    assert!(
        sql_i64(
            &db,
            "SELECT COUNT(*) FROM attempts WHERE outcome = 'completed'"
        ) > 0
    );
}

#[test]
fn the_demo_refuses_to_delete_a_directory_it_did_not_make() {
    let tmp = tempfile::tempdir().unwrap();
    let precious = tmp.path().join("mine/notes.txt");
    std::fs::create_dir_all(precious.parent().unwrap()).unwrap();
    std::fs::write(&precious, "keep me").unwrap();
    let (code, _, err, _) = run(
        tmp.path(),
        &["demo", "--dir", "mine"],
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("refusing to delete"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
}

#[test]
fn every_sample_number_is_valid_but_the_deliberate_reject() {
    let mut csv = csv::Reader::from_reader(SAMPLE.as_bytes());
    let headers = csv.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (phone, tz, last) = (col("phone_number"), col("timezone"), col("last_name"));
    let mut invalid = Vec::new();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut countries = HashSet::new();
    for row in csv.records() {
        let row = row.unwrap();
        match PhoneNumber::parse(&row[phone], None) {
            Ok(n) => {
                let code = ["+1", "+44", "+33", "+49", "+91", "+81", "+61", "+55", "+64"]
                    .into_iter()
                    .find(|c| n.as_str().starts_with(c));
                countries.insert(code.unwrap_or("other"));
                if !seen.insert(n.as_str().to_string()) {
                    duplicates += 1;
                }
            }
            Err(e) => invalid.push(format!("{}: {e}", &row[last])),
        }
        if !row[tz].is_empty() {
            assert!(
                row[tz].parse::<chrono_tz::Tz>().is_ok(),
                "bad zone {}",
                &row[tz]
            );
        }
        if row[phone].starts_with("+61") {
            assert!(
                !row[tz].is_empty(),
                "Australian rows need a timezone: {:?}",
                &row[phone]
            );
        }
    }
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    assert!(invalid[0].starts_with("Typo:"), "{invalid:?}");
    assert_eq!(duplicates, 1);
    assert_eq!(seen.len(), 36);
    assert!(countries.len() >= 8, "several countries: {countries:?}");
}
