//! `dialerd plan` against the engine on the same database and the same test
//! clock: the contacts it counts callable are exactly the requests the next
//! sweep sends, the reasons it gives for the others are the hold reasons
//! (or final states) the sweep records, and planning writes nothing.

use std::collections::BTreeMap;

use dialerd::cli::plan::{self, Plan};

use crate::harness::world::*;

/// A Miami number (Florida's rules apply by its area code).
const MIAMI: &str = "+13055550123";
/// A San Francisco number (America/Los_Angeles).
const SAN_FRANCISCO: &str = "+14155552671";

/// Every contact row of `campaign`, as text, to compare before and after.
async fn snapshot(w: &World) -> Vec<(i64, String, Option<String>, Option<String>, i64)> {
    sqlx::query_as(
        "SELECT id, state, hold_reason, next_attempt_at, attempts FROM contacts ORDER BY id",
    )
    .fetch_all(w.store.pool())
    .await
    .unwrap()
}

/// Adds an attempt to `number` in campaign `other` (its own contact), sent
/// at `sent_at`, with `outcome` (NULL: still live).
async fn past_attempt(
    w: &World,
    other: i64,
    number: &str,
    no: i64,
    sent_at: &str,
    outcome: Option<&str>,
) {
    let contact: i64 =
        sqlx::query_scalar("SELECT id FROM contacts WHERE campaign_id = ? AND phone_number = ?")
            .bind(other)
            .bind(number)
            .fetch_one(w.store.pool())
            .await
            .unwrap();
    sqlx::query(
        "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at, outcome) \
         VALUES (?, ?, ?, 'accepted', 7, ?, ?, ?)",
    )
    .bind(contact)
    .bind(other)
    .bind(no)
    .bind(number)
    .bind(sent_at)
    .bind(outcome)
    .execute(w.store.pool())
    .await
    .unwrap();
}

/// A campaign with one contact for each reason a sweep can have, at 12:30
/// UTC on 1 July under the shipped compliance rules.
async fn mixed_campaign(w: &World) -> i64 {
    let c = w
        .campaign(CampaignSpec {
            name: "plan".into(),
            window: "07:00-22:00".into(),
            ..Default::default()
        })
        .await;
    let other = w
        .campaign(CampaignSpec {
            name: "other".into(),
            ..Default::default()
        })
        .await;
    // uk(3), uk(4): London, 13:30 local: callable.
    w.add_uk_contacts(c, 5).await;
    w.add_contacts(c, &[SAN_FRANCISCO.to_string()]).await; // 05:30 local: window
    w.insert_contact(c, &uk(5), Some("America/Bogota"), true)
        .await; // 07:30: quiet hours
    w.insert_contact(c, MIAMI, Some("Asia/Shanghai"), true)
        .await; // 20:30: Florida's 08-20
    w.insert_contact(c, &uk(6), Some("Mars/Olympus_Mons"), true)
        .await; // invalid
    w.add_contacts(c, &[uk(7), uk(8)]).await;
    w.sql("UPDATE contacts SET attempts = 3 WHERE phone_number = '+442079460007'")
        .await; // no attempts left
    w.sql(
        "UPDATE contacts SET state = 'retry_wait', attempts = 1, next_attempt_at = '2026-07-02T09:00:00Z' \
         WHERE phone_number = '+442079460008'",
    )
    .await; // not due yet
    // uk(0) on the list by an operator's own SQL (so the contact is still pending).
    w.sql("INSERT INTO dnc (phone_number, reason, added_at) VALUES ('+442079460000', 'letter', '2026-06-01T00:00:00Z')")
        .await;
    // uk(1): three calls in the last 24 h from another campaign: the cap.
    // uk(2): a live call from another campaign.
    w.add_contacts(other, &[uk(1), uk(2)]).await;
    for (no, at) in [
        (1, "2026-06-30T18:00:00.000Z"),
        (2, "2026-07-01T08:00:00.000Z"),
        (3, "2026-07-01T11:00:00.000Z"),
    ] {
        past_attempt(w, other, &uk(1), no, at, Some("no_answer")).await;
    }
    past_attempt(w, other, &uk(2), 1, "2026-07-01T12:29:00.000Z", None).await;
    w.sql(&format!(
        "UPDATE contacts SET state = 'done' WHERE campaign_id = {other}"
    ))
    .await;
    c
}

/// What the sweep recorded for each reason the plan gave for due contacts.
async fn recorded(w: &World, campaign: i64) -> BTreeMap<String, u64> {
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT state, hold_reason FROM contacts WHERE campaign_id = ? AND next_attempt_at IS NOT '2026-07-02T09:00:00Z'")
            .bind(campaign)
            .fetch_all(w.store.pool())
            .await
            .unwrap();
    let mut out = BTreeMap::new();
    for (state, hold) in rows {
        let key = match (state.as_str(), hold) {
            ("suppressed", _) => "dnc".to_string(),
            ("invalid", _) => "invalid".to_string(),
            ("exhausted", _) => "no_attempts_left".to_string(),
            ("in_progress" | "done", _) => continue,
            (_, Some(h)) => h,
            (s, None) => format!("{s} without a reason"),
        };
        *out.entry(key).or_insert(0) += 1;
    }
    out
}

fn planned(p: &Plan) -> BTreeMap<String, u64> {
    p.held
        .iter()
        .filter(|g| g.due_now)
        .map(|g| (g.reason.clone(), g.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_agrees_with_the_sweep_that_follows_on_the_same_database_and_clock() {
    within(async {
        let w = World::manual_at(
            at("2026-07-01T12:30:00Z"),
            &["--outcomes", "completed=1"],
            |cfg| {
                cfg.compliance = dialerd::config::Compliance::default();
            },
        )
        .await;
        let c = mixed_campaign(&w).await;
        let before = snapshot(&w).await;
        let p = plan::build(&w.store, &w.cfg, "plan").await.unwrap();
        assert_eq!(snapshot(&w).await, before, "plan wrote to the database");
        // What the sweep at the same instant does.
        w.sweep(c).await;
        assert_eq!(w.journal().len() as u64, p.callable_now, "requests sent");
        assert_eq!(
            recorded(&w, c).await,
            planned(&p),
            "hold reasons recorded by the sweep"
        );
        // And the plan itself: every reason was exercised.
        assert_eq!(p.callable_now, 2, "{p:#?}");
        let expected: BTreeMap<String, u64> = [
            ("cap", 1),
            ("dnc", 1),
            ("invalid", 1),
            ("live_attempt", 1),
            ("no_attempts_left", 1),
            ("quiet_hours", 1),
            ("region", 1),
            ("window", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(planned(&p), expected, "{p:#?}");
        let waiting: Vec<_> = p.held.iter().filter(|g| !g.due_now).collect();
        assert_eq!(waiting.len(), 1);
        assert_eq!(
            (waiting[0].reason.as_str(), waiting[0].count),
            ("retry_delay", 1)
        );
        assert_eq!(
            waiting[0].earliest_at.as_deref(),
            Some("2026-07-02T09:00:00Z")
        );
        assert_eq!(p.next_sweep_at.as_deref(), Some("2026-07-01T12:30:01Z"));
        let window = p.held.iter().find(|g| g.reason == "window").unwrap();
        assert!(
            window
                .detail
                .keys()
                .any(|d| d.contains("America/Los_Angeles")),
            "{window:?}"
        );
        // 15:00 UTC is 08:00 in San Francisco: the campaign window opens at
        // 07:00, and quiet hours an hour later.
        assert_eq!(window.earliest_at.as_deref(), Some("2026-07-01T15:00:00Z"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_of_a_paused_campaign_counts_nobody_callable_and_says_why() {
    within(async {
        let w = World::manual_at(at("2026-07-01T12:30:00Z"), &[], |_| {}).await;
        let c = w.default_campaign().await;
        w.add_uk_contacts(c, 3).await;
        w.sql("UPDATE campaigns SET status = 'paused', status_reason = 'by the operator'")
            .await;
        let p = plan::build(&w.store, &w.cfg, "campaign").await.unwrap();
        assert_eq!(p.callable_now, 0);
        assert!(
            p.blocked
                .as_deref()
                .unwrap()
                .contains("paused: by the operator"),
            "{p:?}"
        );
        assert_eq!(planned(&p).get("paused"), Some(&3));
        assert_eq!(p.estimate.finish_at, None);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_estimate_spreads_calls_at_the_rate_and_waits_for_the_window() {
    within(async {
        // 19:59:58 in London: two calls fit before 20:00, the rest wait for 09:00.
        let w = World::manual_at(at("2026-07-01T18:59:58Z"), &[], |cfg| {
            cfg.rate_per_second = 1.0
        })
        .await;
        let c = w
            .campaign(CampaignSpec {
                timezone: "Europe/London".into(),
                window: "09:00-20:00".into(),
                ..Default::default()
            })
            .await;
        w.add_uk_contacts(c, 4).await;
        w.sql("UPDATE campaigns SET next_sweep_at = '2026-07-01T18:59:00Z'")
            .await;
        let p = plan::build(&w.store, &w.cfg, "campaign").await.unwrap();
        assert_eq!(p.callable_now, 4);
        assert_eq!(p.next_sweep_at.as_deref(), Some("2026-07-01T18:59:58Z"));
        assert_eq!(p.estimate.calls_left, 4);
        // 08:00 UTC is 09:00 in London; the next two go at one a second.
        assert_eq!(
            p.estimate.finish_at.as_deref(),
            Some("2026-07-02T08:00:01Z"),
            "{:?}",
            p.estimate
        );
    })
    .await
}

/// The real binary, end to end: `dialerd plan --json`, then `dialerd run
/// --until-idle` against the simulator on the same database.
mod binary {
    use std::process::Command;
    use std::time::Duration;

    use crate::harness::{
        self, BIN, CampaignSpec, Sim, create_campaign_db, daemon_command, read_journal,
    };

    fn sql(db: &std::path::Path, text: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(db)
            .arg(text)
            .output()
            .expect("sqlite3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn plan_counts_exactly_what_a_following_run_until_idle_dials_and_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("d.db");
        let spec = CampaignSpec {
            name: "e2e",
            agent_id: 7,
            max_attempts: 1,
            retry_delay_secs: 0,
            contacts: 6,
        };
        let numbers = create_campaign_db(&db, &spec);
        // One on the list by an operator's SQL, one with a zone that is no
        // place, one with its attempts used up; three callable.
        sql(
            &db,
            &format!(
                "INSERT INTO dnc (phone_number, reason, added_at) VALUES ('{}', 'x', '2026-01-01T00:00:00Z')",
                numbers[0]
            ),
        );
        sql(
            &db,
            &format!(
                "UPDATE contacts SET timezone = 'Mars/Olympus_Mons' WHERE phone_number = '{}'",
                numbers[1]
            ),
        );
        sql(
            &db,
            &format!(
                "UPDATE contacts SET attempts = 1 WHERE phone_number = '{}'",
                numbers[2]
            ),
        );

        let mut plan = Command::new(BIN);
        for (k, _) in std::env::vars() {
            if k.starts_with("DIALERD_") {
                plan.env_remove(k);
            }
        }
        let out = plan
            .args(["plan", "e2e", "--json"])
            .env("DIALERD_DATABASE__PATH", &db)
            .env("DIALERD_COMPLIANCE__QUIET_HOURS", "off")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let held = |reason: &str| {
            p["held"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["reason"] == reason)
                .map_or(0, |g| g["count"].as_u64().unwrap())
        };

        let sim = Sim::start(
            dir.path(),
            &[
                "--outcomes".into(),
                "completed=1".into(),
                "--call-secs".into(),
                "0.1-0.2".into(),
            ],
        );
        let log = dir.path().join("daemon.log");
        let mut run = harness::ChildGuard::spawn(
            "dialerd run --until-idle",
            &mut daemon_command(&db, &sim.base_url, &[], &log, true),
        );
        let status = run
            .wait_timeout(Duration::from_secs(60))
            .expect("run --until-idle ends");
        assert!(status.success(), "{}", harness::tail(&log, 20));
        let journal = read_journal(&sim.journal);

        assert_eq!(
            p["callable_now"].as_u64(),
            Some(journal.len() as u64),
            "{p:#}"
        );
        let count = |state: &str| {
            sql(
                &db,
                &format!("SELECT COUNT(*) FROM contacts WHERE state = '{state}'"),
            )
            .parse::<u64>()
            .unwrap()
        };
        assert_eq!(held("dnc"), count("suppressed"));
        assert_eq!(held("invalid"), count("invalid"));
        assert_eq!(held("no_attempts_left"), count("exhausted"));
        assert_eq!(
            (
                p["callable_now"].as_u64(),
                held("dnc"),
                held("invalid"),
                held("no_attempts_left")
            ),
            (Some(3), 1, 1, 1)
        );
    }
}
