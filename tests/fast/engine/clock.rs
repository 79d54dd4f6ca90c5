//! Behaviour governed by the clock, run on a manual clock so days pass in
//! milliseconds: calling windows across a daylight-saving change and across
//! midnight, cron fire times in the campaign's zone, retry delays, and the
//! outcome timeout. Nothing here sleeps on time the clock governs; the only
//! real waits are for the simulator's calls, which run in real time.

use std::time::Duration;

use chrono::{SubsecRound, Utc};
use dialerd::clock::to_db_text;

use crate::harness::world::*;

/// On the night before `opening` (a UTC instant), a New York campaign with
/// a 09:00-20:00 window defers its contacts to `opening` and dials them there.
async fn the_new_york_window_opens_at(night: &str, opening: &str) {
    let w = World::manual_at(at(night), &[], |_| {}).await;
    let c = w
        .campaign(CampaignSpec {
            timezone: "America/New_York".into(),
            window: "09:00-20:00".into(),
            ..Default::default()
        })
        .await;
    let numbers: Vec<String> = (0..3).map(zoneless).collect();
    w.add_contacts(c, &numbers).await;
    let report = w.sweep(c).await;
    assert_eq!(report.deferred, 3, "at {night}");
    assert!(w.journal().is_empty(), "dialed at night ({night})");
    for contact in w.contacts().await {
        assert_eq!(
            contact.next_attempt_at.as_deref(),
            Some(opening),
            "deferred from {night}"
        );
    }
    w.clock
        .manual()
        .set(at(opening) - chrono::Duration::seconds(1));
    w.sweep(c).await;
    assert!(w.journal().is_empty(), "dialed a second before {opening}");
    w.clock.manual().set(at(opening));
    w.sweep(c).await;
    assert_eq!(w.journal().len(), 3, "not dialed at {opening}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_window_opens_at_9am_new_york_on_both_sides_of_the_dst_change() {
    within(async {
        // Saturday 7 March 2026: EST, UTC-5.
        the_new_york_window_opens_at("2026-03-07T06:00:00Z", "2026-03-07T14:00:00Z").await;
        // Sunday 8 March: clocks go forward at 02:00; 09:00 is EDT.
        the_new_york_window_opens_at("2026-03-08T06:00:00Z", "2026-03-08T13:00:00Z").await;
        // Monday 9 March: EDT, UTC-4.
        the_new_york_window_opens_at("2026-03-09T06:00:00Z", "2026-03-09T13:00:00Z").await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_that_wraps_midnight_dials_late_evening_and_early_morning_only() {
    within(async {
        let w = World::manual_at(at("2026-11-25T12:00:00Z"), &[], |_| {}).await;
        // (instant, dialed?, deferred to)
        let cases = [
            ("2026-11-25T12:00:00Z", false, "2026-11-25T21:00:00Z"),
            ("2026-11-25T20:59:00Z", false, "2026-11-25T21:00:00Z"),
            ("2026-11-25T21:00:00Z", true, ""),
            ("2026-11-25T23:30:00Z", true, ""),
            ("2026-11-26T00:30:00Z", true, ""),
            ("2026-11-26T01:59:00Z", true, ""),
            ("2026-11-26T02:00:00Z", false, "2026-11-26T21:00:00Z"),
            ("2026-11-26T05:00:00Z", false, "2026-11-26T21:00:00Z"),
        ];
        for (i, (instant, open, deferred_to)) in cases.into_iter().enumerate() {
            w.clock.manual().set(at(instant));
            let c = w
                .campaign(CampaignSpec {
                    name: format!("late-{i}"),
                    window: "21:00-02:00".into(),
                    ..Default::default()
                })
                .await;
            let number = zoneless(i);
            w.add_contacts(c, std::slice::from_ref(&number)).await;
            w.sweep(c).await;
            let dialed = w
                .journal()
                .iter()
                .any(|e| e.to_number.as_deref() == Some(&number));
            assert_eq!(
                dialed,
                open,
                "at {instant} the 21:00-02:00 window is {}",
                if open { "open" } else { "closed" }
            );
            if !open {
                assert_eq!(
                    w.contact(&number).await.next_attempt_at.as_deref(),
                    Some(deferred_to),
                    "deferred from {instant}"
                );
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_fires_in_the_campaign_zone() {
    within(async {
        // 03:00 UTC is noon in Tokyo; the next 09:00 there is 00:00 UTC tomorrow.
        let w = World::manual_at(at("2026-11-25T03:00:00Z"), &[], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                schedule: "0 0 9 * * *".into(),
                timezone: "Asia/Tokyo".into(),
                ..Default::default()
            })
            .await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        let (started, earliest) = w.engine.tick().await.unwrap();
        assert!(
            started.is_empty(),
            "a new campaign waits for its first fire time"
        );
        assert_eq!(earliest, Some(at("2026-11-26T00:00:00Z")));
        assert_eq!(
            w.campaign_row(c).await.next_sweep_at.as_deref(),
            Some("2026-11-26T00:00:00Z")
        );

        w.clock.manual().set(at("2026-11-25T23:59:59Z"));
        let (started, _) = w.engine.tick().await.unwrap();
        assert!(started.is_empty(), "fired a second early");
        assert_eq!(
            w.campaign_row(c).await.next_sweep_at.as_deref(),
            Some("2026-11-26T00:00:00Z")
        );

        w.clock.manual().set(at("2026-11-26T00:00:00Z"));
        let (started, earliest) = w.engine.tick().await.unwrap();
        assert_eq!(started, vec![c], "the fire time came");
        assert_eq!(earliest, Some(at("2026-11-27T00:00:00Z")));
        let row = w.campaign_row(c).await;
        assert_eq!(
            row.next_sweep_at.as_deref(),
            Some("2026-11-27T00:00:00Z"),
            "the next fire is a day on"
        );
        assert_eq!(row.last_sweep_at.as_deref(), Some("2026-11-26T00:00:00Z"));
        for _ in 0..200 {
            if w.engine.sweeps_running() == 0 && !w.journal().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(w.engine.sweeps_running(), 0, "the sweep did not finish");
        assert_eq!(
            placed_per_number(&w.journal()).get(&number),
            Some(&1),
            "the sweep dialed the contact"
        );

        let (started, _) = w.engine.tick().await.unwrap();
        assert!(
            started.is_empty(),
            "the same fire time started a second sweep"
        );
    })
    .await
}

/// A manual clock near the real time, never moved but by the test.
async fn still_world(
    sim_args: &[&str],
    tweak: impl FnOnce(&mut dialerd::engine::EngineConfig),
) -> World {
    World::manual_at(
        Utc::now().trunc_subsecs(0) - chrono::Duration::minutes(5),
        sim_args,
        tweak,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_delay_and_max_attempts_come_from_the_campaign() {
    within(async {
        let w = still_world(&["--outcomes", "busy=1"], |cfg| {
            // The engine's defaults differ from the campaign's: the campaign wins.
            cfg.defaults.max_attempts = 5;
            cfg.defaults.retry_delay_secs = 3600;
        })
        .await;
        let c = w
            .campaign(CampaignSpec {
                max_attempts: 3,
                retry_delay_secs: 600,
                ..Default::default()
            })
            .await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        for call in 1..=3usize {
            w.sweep(c).await;
            assert_eq!(w.journal().len(), call, "call {call} was not placed");
            w.settle_calls().await;
            let now = w.clock.now();
            w.engine.reconcile_once().await.unwrap();
            let contact = w.contact(&number).await;
            assert_eq!(contact.attempts, call as i64);
            if call == 3 {
                assert_eq!(contact.state, "exhausted", "after the third busy call");
                break;
            }
            let next = now + chrono::Duration::seconds(600);
            assert_eq!(contact.state, "retry_wait", "after busy call {call}");
            assert_eq!(
                contact.next_attempt_at.as_deref(),
                Some(to_db_text(next).as_str())
            );
            w.sweep(c).await;
            w.clock.manual().set(next - chrono::Duration::seconds(1));
            w.sweep(c).await;
            assert_eq!(
                w.journal().len(),
                call,
                "redialed before the campaign's retry delay"
            );
            w.clock.manual().set(next);
        }
        w.clock.manual().advance(Duration::from_secs(86_400));
        w.sweep(c).await;
        assert_eq!(
            placed_per_number(&w.journal()).get(&number),
            Some(&3),
            "exactly the campaign's 3 attempts"
        );
        let numbers: Vec<i64> = w.attempts().await.iter().map(|a| a.attempt_no).collect();
        assert_eq!(numbers, vec![1, 2, 3]);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepted_call_with_no_final_log_becomes_unknown_after_the_timeout_and_is_not_redialed()
{
    within(async {
        let w = still_world(&["--call-secs", "100000-100000"], |_| {}).await;
        let c = w.default_campaign().await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        w.sweep(c).await;
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(w.attempts().await[0].outcome, None);

        w.clock
            .manual()
            .advance(w.cfg.outcome_timeout - Duration::from_secs(1));
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(w.attempts().await[0].outcome, None, "timed out early");
        assert_eq!(w.contact(&number).await.state, "in_progress");

        w.clock.manual().advance(Duration::from_secs(2));
        w.engine.reconcile_once().await.unwrap();
        let a = &w.attempts().await[0];
        assert_eq!(
            (a.state.as_str(), a.outcome.as_deref()),
            ("accepted", Some("unknown"))
        );
        assert_eq!(
            w.contact(&number).await.state,
            "exhausted",
            "an unknown call may have reached the person"
        );

        for _ in 0..3 {
            w.clock.manual().advance(Duration::from_secs(86_400));
            w.sweep(c).await;
            w.engine.reconcile_once().await.unwrap();
        }
        assert_eq!(w.journal().len(), 1, "redialed after an unknown outcome");
        assert!(!w.store.has_open_work().await.unwrap());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accepted_call_whose_log_never_appears_becomes_unknown_after_the_timeout() {
    within(async {
        let w = still_world(&["--call-secs", "100000-100000"], |_| {}).await;
        let c = w.default_campaign().await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        w.sweep(c).await;
        // From now on the API's logs never mention the call.
        let forgetful = dialerd::sim::spawn(sim_options(&[])).await.unwrap();
        w.engine
            .set_client(client_for(&forgetful, w.clock.shared()));

        w.clock
            .manual()
            .advance(w.cfg.outcome_timeout - Duration::from_secs(1));
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(w.attempts().await[0].outcome, None, "timed out early");
        w.clock.manual().advance(Duration::from_secs(2));
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(w.attempts().await[0].outcome.as_deref(), Some("unknown"));
        assert_eq!(w.contact(&number).await.state, "exhausted");
        w.clock.manual().advance(Duration::from_secs(86_400));
        w.sweep(c).await;
        assert_eq!(
            w.journal().len() + forgetful.journal().len(),
            1,
            "redialed after an unknown outcome"
        );
    })
    .await
}
