//! The fault soak: every simulator fault at once (429, 500 before and after
//! placing the call, withheld answers, dropped connections, 200 with a body
//! that is not JSON) plus a server-side rate limit below the daemon's own
//! rate, over a campaign of many contacts, with one `run --until-idle`.
//! Nothing may be dialed twice, nothing lost (the journal-versus-database
//! audit of `tests/harness`), every contact must end final, and no request
//! may ignore a `Retry-After`.
//!
//! Short version (CI): 1,000 contacts. Long version: `scripts/soak.sh
//! [CONTACTS]`, which sets the knobs below:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DIALERD_SOAK_CONTACTS` | 1000 | contacts in the campaign |
//! | `DIALERD_SOAK_SEED` | 7 | the simulator's seed |
//! | `DIALERD_SOAK_IDLE_SECS` | 240 | bound on the `--until-idle` run |
//! | `DIALERD_SOAK_IN_FLIGHT_MS` | 100 | ε of the Retry-After rule below |
//! | `DIALERD_SOAK_RATE`, `DIALERD_SOAK_BURST` | 80, 10 | the daemon's dispatch rate and burst |
//!
//! ## The Retry-After rule checked
//! The simulator answers every 429 (`rate_limited` past `--rate-limit`, and
//! `fault_429`) with `Retry-After: 1` (src/sim/handlers.rs). The journal
//! records when each request *arrived* (`at`, server clock, milliseconds);
//! the daemon runs on the same host and clock. For a 429 that arrived at T,
//! the daemon received the answer at some R ≥ T and must send nothing after R
//! until R + 1 s. A request that arrived at A was sent at some S ≤ A. So:
//!
//! - any arrival A with A ≥ T + 1 s − 5 ms is allowed (5 ms: the journal's
//!   millisecond truncation on both ends);
//! - an arrival in (T, T + ε] may have been sent before R, i.e. already in
//!   flight when the 429 came back: allowed, and counted as "in flight";
//! - an arrival in (T + ε, T + 1 s − 5 ms) is a violation: it was sent after
//!   the 429 answer reached the daemon (S ≥ A − ε/2 > T + ε/2 ≥ R when one-way
//!   delays stay under ε/2) and before the Retry-After expired.
//!
//! ε bounds the round trip from the simulator's clock reading to the daemon
//! reading the answer, plus the send-to-arrival delay of the other request,
//! on a loaded 2-core machine: 100 ms by default (a loopback request's
//! usual round trip here is under 5 ms). The figures printed show how the
//! arrivals after each 429 are distributed, so the choice can be checked.

use std::time::{Duration, Instant};

use crate::harness::{
    CampaignSpec, ChildGuard, Reader, Sim, assert_no_violations, audit, create_campaign_db,
    daemon_command, env_or, tail,
};
use chrono::{DateTime, Utc};
use dialerd::sim::{DispatchResult, JournalEntry};

/// What the Retry-After check found.
#[derive(Debug, Default)]
struct RetryAfterCheck {
    answers_429: usize,
    /// Arrivals within ε after a 429: sent before its answer was read.
    in_flight: usize,
    /// Arrivals inside a Retry-After window that cannot have been in flight.
    violations: Vec<String>,
    /// Arrivals after a 429 and before T + 1 s, by 50 ms bucket of their offset.
    offsets_ms: [usize; 20],
}

fn at(e: &JournalEntry) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&e.at)
        .unwrap_or_else(|err| panic!("journal time {:?}: {err}", e.at))
        .with_timezone(&Utc)
}

/// Applies the rule of the module documentation to the journal.
fn check_retry_after(
    journal: &[JournalEntry],
    retry_after: Duration,
    epsilon: Duration,
) -> RetryAfterCheck {
    let mut times: Vec<(DateTime<Utc>, &JournalEntry)> =
        journal.iter().map(|e| (at(e), e)).collect();
    times.sort_by_key(|(t, _)| *t);
    let ra = chrono::Duration::from_std(retry_after).unwrap_or_default();
    let eps = chrono::Duration::from_std(epsilon).unwrap_or_default();
    let slack = chrono::Duration::milliseconds(5);
    let mut out = RetryAfterCheck::default();
    for (i, (t, e)) in times.iter().enumerate() {
        if !matches!(
            e.result,
            DispatchResult::RateLimited | DispatchResult::Fault429
        ) {
            continue;
        }
        out.answers_429 += 1;
        // Arrivals in the same millisecond as the 429 but recorded before it
        // were certainly sent before it: start after this entry.
        for (u, f) in &times[i + 1..] {
            let offset = *u - *t;
            if offset >= ra - slack {
                break;
            }
            let bucket = (offset.num_milliseconds().max(0) / 50).min(19) as usize;
            out.offsets_ms[bucket] += 1;
            if offset <= eps {
                out.in_flight += 1;
            } else {
                out.violations.push(format!(
                    "a request to {:?} ({}) arrived {} ms after a {} at {}",
                    f.to_number,
                    f.result.as_str(),
                    offset.num_milliseconds(),
                    e.result.as_str(),
                    e.at
                ));
            }
        }
    }
    out
}

#[test]
fn under_every_fault_at_once_nothing_is_dialed_twice_or_lost_and_retry_after_holds() {
    let contacts: usize = env_or("DIALERD_SOAK_CONTACTS", 1000);
    let seed: u64 = env_or("DIALERD_SOAK_SEED", 7);
    let idle_limit = Duration::from_secs(env_or("DIALERD_SOAK_IDLE_SECS", 240));
    let epsilon = Duration::from_millis(env_or("DIALERD_SOAK_IN_FLIGHT_MS", 100));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("dialerd.db");
    let log = dir.path().join("daemon.log");
    let spec = CampaignSpec {
        name: "soak",
        agent_id: 11,
        max_attempts: 3,
        retry_delay_secs: 1,
        contacts,
    };
    create_campaign_db(&db, &spec);
    let sim = Sim::start(
        dir.path(),
        &[
            "--fault-429",
            "0.05",
            "--fault-500",
            "0.05",
            "--fault-500-placed",
            "0.05",
            "--fault-timeout",
            "0.03",
            "--fault-drop",
            "0.05",
            "--fault-garbage",
            "0.05",
            "--rate-limit",
            "50",
            "--call-secs",
            "0.2-0.6",
            // Mostly completed (fewer redials keep the CI version short),
            // every outcome present.
            "--outcomes",
            "completed=80,no_answer=10,busy=5,failed=3,voicemail=2",
            "--seed",
            &seed.to_string(),
        ]
        .map(String::from),
    );
    let reader = Reader::start(&db, Duration::from_millis(200));
    let started = Instant::now();
    // The daemon's rate is above the server's limit, so 429s are certain.
    let env = [
        (
            "DIALERD_DISPATCH__RATE_PER_SECOND",
            env_or("DIALERD_SOAK_RATE", 80.0f64).to_string(),
        ),
        (
            "DIALERD_DISPATCH__BURST",
            env_or("DIALERD_SOAK_BURST", 10u32).to_string(),
        ),
    ];
    let mut daemon = ChildGuard::spawn(
        "dialerd run --until-idle",
        &mut daemon_command(&db, &sim.base_url, &env, &log, true),
    );
    let status = daemon.wait_timeout(idle_limit);
    let elapsed = started.elapsed();
    let reader = reader.finish();
    let journal = sim.stop();
    let a = audit(&db, &journal, spec.max_attempts);
    let status = status.unwrap_or_else(|| {
        panic!(
            "`run --until-idle` did not finish within {idle_limit:?}\n{a}\n{}\nviolations so far: {:#?}",
            tail(&log, 30),
            a.violations.iter().take(20).collect::<Vec<_>>()
        )
    });
    assert!(
        status.success(),
        "`run --until-idle` exited {status}\n{}",
        tail(&log, 30)
    );

    let ra = check_retry_after(&journal, Duration::from_secs(1), epsilon);
    let secs = elapsed.as_secs_f64();
    let summary = format!(
        "fault soak: seed {seed}, {contacts} contacts in {secs:.1}s: {:.1} requests/s, {:.1} calls placed/s, {:.1} contacts finished/s\n{a}\n  \
         429 answers {}: arrivals within ε={}ms {}, Retry-After violations {}; arrivals after a 429 by 50 ms bucket {:?}\n  \
         reader: {} polls via {}, {} errors",
        a.dispatch_requests as f64 / secs,
        a.calls_placed as f64 / secs,
        a.contacts as f64 / secs,
        ra.answers_429,
        epsilon.as_millis(),
        ra.in_flight,
        ra.violations.len(),
        ra.offsets_ms,
        reader.polls,
        reader.mode,
        reader.errors.len(),
    );
    println!("{summary}");
    assert_no_violations("fault soak", &a, &format!("{summary}\n{}", tail(&log, 20)));
    assert!(
        ra.violations.is_empty(),
        "{} requests ignored a Retry-After:\n{}\n{summary}",
        ra.violations.len(),
        ra.violations
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        reader.errors.is_empty(),
        "the reader process got errors: {:?}",
        &reader.errors[..reader.errors.len().min(10)]
    );
    for r in [
        "rate_limited",
        "fault_429",
        "fault_500",
        "fault_500_placed",
        "fault_timeout",
        "fault_drop",
        "fault_garbage",
    ] {
        assert!(
            a.journal_results.contains_key(r),
            "the soak never exercised {r}: {summary}"
        );
    }
}
