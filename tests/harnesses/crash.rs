//! The crash harness: `dialerd run` is killed with SIGKILL at seeded random
//! instants while it dials a campaign through a faulty simulator (timeouts
//! after placing the call, dropped connections before placing it), restarted
//! each time, and finally run with `--until-idle`. Meanwhile a separate
//! process reads the public views and must never get an error. At the end the
//! simulator's journal (every call really placed) must agree with the
//! database: nobody called twice by accident, no outcome lost.
//!
//! Each kill comes 50-800 ms (seeded) after the daemon's start in odd rounds,
//! and after the first request of that life reaches the simulator in even
//! rounds, so that both start-up/recovery and mid-dispatch are hit; the
//! summary says how many kills landed while requests were being sent.
//!
//! Short version (CI): 8 kills over 200 contacts. Long version:
//! `scripts/crash-harness.sh [ROUNDS]`, which sets the knobs below:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DIALERD_CRASH_KILLS` | 8 | SIGKILLs before the final `--until-idle` run |
//! | `DIALERD_CRASH_CONTACTS` | 200 | contacts in the campaign |
//! | `DIALERD_CRASH_SEED` | 20261125 | seeds the kill instants and the simulator |
//! | `DIALERD_CRASH_IDLE_SECS` | 120 | bound on the final `--until-idle` run |

use std::time::{Duration, Instant};

use crate::harness::{
    Audit, CampaignSpec, ChildGuard, Reader, Sim, assert_no_violations, audit, create_campaign_db,
    daemon_command, env_or, journal_lines, tail,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn a_daemon_killed_at_random_instants_never_calls_anyone_twice_nor_loses_an_outcome() {
    let kills: u32 = env_or("DIALERD_CRASH_KILLS", 8);
    let contacts: usize = env_or("DIALERD_CRASH_CONTACTS", 200);
    let seed: u64 = env_or("DIALERD_CRASH_SEED", 20_261_125);
    let idle_limit = Duration::from_secs(env_or("DIALERD_CRASH_IDLE_SECS", 120));
    let started = Instant::now();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("dialerd.db");
    let log = dir.path().join("daemon.log");
    let spec = CampaignSpec {
        name: "crash",
        agent_id: 7,
        max_attempts: 3,
        retry_delay_secs: 1,
        contacts,
    };
    create_campaign_db(&db, &spec);
    let sim = Sim::start(
        dir.path(),
        &[
            "--fault-timeout",
            "0.1",
            "--fault-drop",
            "0.1",
            "--call-secs",
            "0.2-0.6",
            "--outcomes",
            "completed=60,no_answer=25,busy=15",
            "--seed",
            &seed.to_string(),
        ]
        .map(String::from),
    );
    let reader = Reader::start(&db, Duration::from_millis(25));
    let mut rng = StdRng::seed_from_u64(seed);

    let mut early_exits = Vec::new();
    // Kills that landed while the daemon was sending (requests reached the
    // simulator during that life): the others only test a quiet restart.
    let mut busy_kills = 0u32;
    let mut lives: Vec<Duration> = Vec::new();
    for round in 1..=kills {
        let before = journal_lines(&sim.journal);
        let spawned = Instant::now();
        let mut daemon = ChildGuard::spawn(
            "dialerd run",
            &mut daemon_command(&db, &sim.base_url, &[], &log, false),
        );
        // Odd rounds count the delay from the start (crashes during start-up
        // and recovery); even rounds from the first request of this life to
        // reach the simulator (crashes mid-dispatch; a debug build on a
        // loaded machine can take longer than 800 ms to send its first one),
        // or from 3 s after the start when this life sends nothing.
        let after = Duration::from_millis(rng.random_range(50..=800));
        if round % 2 == 0 {
            let bound = spawned + Duration::from_secs(3);
            while Instant::now() < bound
                && journal_lines(&sim.journal) == before
                && daemon.try_wait().is_none()
            {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(after);
        if let Some(status) = daemon.try_wait() {
            // A daemon that stopped by itself was not killed: say why.
            early_exits.push(format!("round {round}: exited {status} before the kill"));
            continue;
        }
        daemon.kill();
        lives.push(spawned.elapsed());
        if journal_lines(&sim.journal) > before {
            busy_kills += 1;
        }
    }
    assert!(
        early_exits.is_empty(),
        "the daemon stopped on its own: {early_exits:?}\n{}",
        tail(&log, 30)
    );

    let mut last = ChildGuard::spawn(
        "dialerd run --until-idle",
        &mut daemon_command(&db, &sim.base_url, &[], &log, true),
    );
    let status = last.wait_timeout(idle_limit);
    let reader = reader.finish();
    let sim_stderr = sim.stderr();
    let journal = sim.stop();
    let status = status.unwrap_or_else(|| {
        let a = audit(&db, &journal, spec.max_attempts);
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

    let a: Audit = audit(&db, &journal, spec.max_attempts);
    let summary = format!(
        "crash harness: seed {seed}, {kills} kills ({busy_kills} while requests were reaching the API; lives {:.2}-{:.2}s), {:.1}s\n{a}\n  reader: {} polls via {}, {} errors",
        lives.iter().min().unwrap_or(&Duration::ZERO).as_secs_f64(),
        lives.iter().max().unwrap_or(&Duration::ZERO).as_secs_f64(),
        started.elapsed().as_secs_f64(),
        reader.polls,
        reader.mode,
        reader.errors.len()
    );
    println!("{summary}");
    assert_no_violations(
        "crash harness",
        &a,
        &format!(
            "{summary}\ndaemon log tail:\n{}\nsimulator stderr:\n{sim_stderr}",
            tail(&log, 20)
        ),
    );
    assert!(
        reader.errors.is_empty(),
        "the reader process got errors while the daemon ran and was killed ({} of {} polls):\n{}",
        reader.errors.len(),
        reader.polls,
        reader
            .errors
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        a.calls_placed > 0,
        "no call was placed at all: the harness tested nothing\n{summary}"
    );
}
