//! The real `dialerd` binary with webhooks on, against the simulator and a
//! receiver on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialerd::clock::SystemClock;
use dialerd::store::Store;
use dialerd::webhooks::{Secret, verify};

use super::SECRET;
use super::receiver::{Mode, Receiver};
use crate::harness::{
    BIN, CampaignSpec, ChildGuard, Sim, create_campaign_db, daemon_command, runtime, tail,
    wait_until,
};

fn spec(name: &'static str, contacts: usize) -> CampaignSpec {
    CampaignSpec {
        name,
        agent_id: 7,
        max_attempts: 2,
        retry_delay_secs: 1,
        contacts,
    }
}

fn sim(dir: &Path) -> Sim {
    Sim::start(
        dir,
        &[
            "--call-secs",
            "0.1-0.3",
            "--outcomes",
            "completed=60,no_answer=25,busy=15",
            "--seed",
            "19",
        ]
        .map(String::from),
    )
}

/// The environment that turns webhooks on, sending to `url`.
fn webhook_env(dir: &Path, url: &str, extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let secret = dir.join("webhook_secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut env = vec![
        ("DIALERD_WEBHOOKS__URL", url.to_string()),
        (
            "DIALERD_WEBHOOKS__SECRET_FILE",
            secret.display().to_string(),
        ),
        ("DIALERD_WEBHOOKS__POLL_INTERVAL_SECS", "0.1".to_string()),
    ];
    for (k, v) in extra {
        let key: &'static str = Box::leak(k.to_string().into_boxed_str());
        env.push((key, v.to_string()));
    }
    env
}

/// Outbox ids, and how many rows are still undelivered.
fn outbox(db: &Path) -> (Vec<i64>, i64, BTreeMap<String, i64>) {
    runtime().block_on(async {
        let store = Store::open(db, Arc::new(SystemClock)).await.unwrap();
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM webhook_outbox ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let undelivered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL")
                .fetch_one(store.pool())
                .await
                .unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT 'attempt.outcome', COUNT(*) FROM attempts WHERE outcome IS NOT NULL \
             UNION ALL SELECT 'contact.final', COUNT(*) FROM contacts \
               WHERE state IN ('done', 'exhausted', 'suppressed', 'invalid', 'cancelled')",
        )
        .fetch_all(store.pool())
        .await
        .unwrap();
        store.close().await;
        (ids, undelivered, rows.into_iter().collect())
    })
}

fn run_until_idle(db: &Path, sim: &Sim, env: &[(&str, String)], log: &Path) {
    let mut daemon = ChildGuard::spawn(
        "dialerd run --until-idle",
        &mut daemon_command(db, &sim.base_url, env, log, true),
    );
    let status = daemon
        .wait_timeout(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("run --until-idle did not finish; log:\n{}", tail(log, 30)));
    assert!(status.success(), "daemon failed; log:\n{}", tail(log, 30));
}

#[test]
fn every_final_outcome_of_a_campaign_arrives_exactly_once_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let log = dir.path().join("daemon.log");
    create_campaign_db(&db, &spec("hooks", 30));
    let sim = sim(dir.path());
    let receiver = Receiver::start();
    let env = webhook_env(dir.path(), &receiver.url, &[]);
    run_until_idle(&db, &sim, &env, &log);

    let (ids, undelivered, changes) = outbox(&db);
    assert_eq!(undelivered, 0, "run --until-idle waited for every delivery");
    let got = receiver.got();
    let mut count: BTreeMap<i64, usize> = BTreeMap::new();
    let mut events: BTreeMap<String, i64> = BTreeMap::new();
    let secret = Secret::new(SECRET).unwrap();
    for r in &got {
        *count.entry(r.delivery).or_default() += 1;
        *events.entry(r.event.clone()).or_default() += 1;
        assert!(verify(&secret, &r.timestamp, &r.body, &r.signature));
        assert!(!verify(
            &Secret::new("wrong").unwrap(),
            &r.timestamp,
            &r.body,
            &r.signature
        ));
    }
    assert_eq!(count.keys().copied().collect::<Vec<_>>(), ids);
    assert!(
        count.values().all(|&n| n == 1),
        "exactly once each: {count:?}"
    );
    assert_eq!(
        events.get("attempt.outcome"),
        changes.get("attempt.outcome")
    );
    assert_eq!(events.get("contact.final"), Some(&30));
    assert_eq!(changes.get("contact.final"), Some(&30));
}

#[test]
fn a_daemon_killed_during_delivery_loses_no_event_and_resends_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("dialerd.db");
    let log = dir.path().join("daemon.log");
    create_campaign_db(&db, &spec("kills", 30));
    let sim = sim(dir.path());
    let receiver = Receiver::start();
    // 300 ms an answer, two at a time: delivery lags the calls, so kills land in it.
    receiver.set(Mode::Slow);
    let env = webhook_env(
        dir.path(),
        &receiver.url,
        &[("DIALERD_WEBHOOKS__MAX_IN_FLIGHT", "2")],
    );
    let mut kills_during_delivery = 0;
    for life in 0..4usize {
        let before = receiver.got().len();
        let mut daemon = ChildGuard::spawn(
            "dialerd run",
            &mut daemon_command(&db, &sim.base_url, &env, &log, false),
        );
        // Each life is killed once it has delivered `life + 1` events, so the
        // kills land at different stages of delivery whatever the machine's
        // speed (a fixed lifetime could end before the first delivery).
        let delivering = wait_until(Duration::from_secs(60), || {
            receiver.got().len() > before + life
        });
        daemon.kill();
        assert!(
            delivering,
            "life {life}: nothing delivered within 60 s\n{}",
            tail(&log, 30)
        );
        if outbox(&db).1 > 0 {
            kills_during_delivery += 1;
        }
    }
    assert!(
        kills_during_delivery >= 2,
        "kills should land while events are still to be delivered"
    );
    receiver.set(Mode::Ok);
    run_until_idle(&db, &sim, &env, &log);

    let (ids, undelivered, _) = outbox(&db);
    assert_eq!(undelivered, 0);
    let mut bodies: BTreeMap<i64, BTreeSet<Vec<u8>>> = BTreeMap::new();
    let mut received = 0;
    for r in receiver.delivered() {
        received += 1;
        bodies.entry(r.delivery).or_default().insert(r.body.clone());
    }
    assert_eq!(
        bodies.keys().copied().collect::<Vec<_>>(),
        ids,
        "nothing lost"
    );
    assert!(
        bodies.values().all(|b| b.len() == 1),
        "a duplicate carries the same delivery id and the same body"
    );
    eprintln!(
        "{} events, {} deliveries ({} duplicates), {kills_during_delivery} kills during delivery",
        ids.len(),
        received,
        received - ids.len()
    );
}

/// Seconds until every contact of `db` is final, polling; `None` past `limit`.
fn seconds_until_final(db: &Path, contacts: i64, limit: Duration) -> Option<f64> {
    let start = Instant::now();
    while start.elapsed() < limit {
        let done = Command::new("sqlite3")
            .arg(db)
            .arg(".timeout 2000")
            .arg(
                "SELECT COUNT(*) FROM contacts WHERE state IN ('done','exhausted','suppressed','invalid','cancelled')",
            )
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<i64>().ok());
        if done == Some(contacts) {
            return Some(start.elapsed().as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_hanging_receiver_does_not_slow_dispatching() {
    let contacts = 40;
    let mut took = Vec::new();
    let mut hung_requests = 0;
    for hooks in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("dialerd.db");
        let log = dir.path().join("daemon.log");
        create_campaign_db(&db, &spec("hang", contacts));
        let sim = sim(dir.path());
        let receiver = Receiver::start();
        receiver.set(Mode::Hang);
        let env = if hooks {
            webhook_env(
                dir.path(),
                &receiver.url,
                &[("DIALERD_WEBHOOKS__TIMEOUT_MS", "600000")],
            )
        } else {
            Vec::new()
        };
        let _daemon = ChildGuard::spawn(
            "dialerd run",
            &mut daemon_command(&db, &sim.base_url, &env, &log, false),
        );
        let secs = seconds_until_final(&db, contacts as i64, Duration::from_secs(90))
            .unwrap_or_else(|| panic!("the campaign did not finish; log:\n{}", tail(&log, 30)));
        took.push(secs);
        if hooks {
            let (ids, undelivered, _) = outbox(&db);
            assert_eq!(
                undelivered as usize,
                ids.len(),
                "nothing answered, nothing delivered"
            );
            hung_requests = ids.len();
        }
    }
    eprintln!(
        "all {contacts} contacts final: {:.1} s without webhooks, {:.1} s with a hanging receiver",
        took[0], took[1]
    );
    assert!(hung_requests > 0);
    assert!(
        took[1] <= took[0] * 1.5 + 3.0,
        "dispatching slowed: {:.1} s vs {:.1} s",
        took[1],
        took[0]
    );
}

#[test]
fn webhooks_test_sends_a_signed_event_and_prints_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let env = webhook_env(dir.path(), &receiver.url, &[]);
    let run = || {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("DIALERD_DATABASE__PATH", dir.path().join("d.db"))
            .args(["webhooks", "test"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let ok = run();
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("delivered: HTTP 200"), "{out}");
    assert!(!out.contains(SECRET));
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, "webhook.test");
    assert!(verify(
        &Secret::new(SECRET).unwrap(),
        &got[0].timestamp,
        &got[0].body,
        &got[0].signature
    ));

    receiver.set(Mode::Unavailable);
    let failed = run();
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("not delivered: HTTP 503"));
}
