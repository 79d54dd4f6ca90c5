//! The never-dial-twice rule against a hostile API: every fault the simulator
//! can inject, alone and together; the do-not-call list; paused, cancelled
//! and resumed campaigns; a refused key; uncertain requests resolved by the
//! reconciler; and recovery of requests a crash left `sending`.

use dialerd::domain::CampaignStatus;
use dialerd::phone::PhoneNumber;
use dialerd::provider::DispatchRequest;
use dialerd::sim::{self, DispatchResult};
use dialerd::store::ClaimDecision;

use crate::harness::world::*;

const CONTACTS: usize = 40;
const MAX_ATTEMPTS: u32 = 3;

/// Runs a campaign (3 attempts, mixed outcomes) to the end against
/// a simulator started with `faults`, and checks the safety rule: every
/// contact finishes, every call the simulator placed is an `accepted`
/// attempt with its request id and the simulator's outcome, and no number
/// is called more often than planned.
async fn no_call_is_lost_or_repeated_under(
    world: World,
    contacts: usize,
    expected: &[DispatchResult],
) {
    let w = world;
    let c = w
        .campaign(CampaignSpec {
            max_attempts: MAX_ATTEMPTS,
            retry_delay_secs: 1,
            ..Default::default()
        })
        .await;
    w.add_uk_contacts(c, contacts).await;
    w.run_to_idle(400).await;

    let journal = w.journal();
    for fault in expected {
        assert!(
            journal.iter().any(|e| e.result == *fault),
            "the simulator never injected {fault:?}; the test proves nothing"
        );
    }
    w.assert_every_contact_ends_in(&["done", "exhausted"]).await;
    w.assert_every_placed_call_is_known_once(MAX_ATTEMPTS as usize)
        .await;
    w.assert_outcomes_match_the_simulator().await;
    assert_each_contact_got_its_planned_attempts(&w).await;
}

/// A contact's `attempts` counts its placed calls; `done` ends on a completed
/// call, `exhausted` only after every planned call.
async fn assert_each_contact_got_its_planned_attempts(w: &World) {
    let attempts = w.attempts().await;
    for c in w.contacts().await {
        let placed: Vec<_> = attempts
            .iter()
            .filter(|a| a.contact_id == c.id && a.state == "accepted")
            .collect();
        assert_eq!(
            c.attempts,
            placed.len() as i64,
            "contact {} counts {} attempts but {} calls were placed",
            c.phone_number,
            c.attempts,
            placed.len()
        );
        let completed = placed
            .iter()
            .filter(|a| a.outcome.as_deref() == Some("completed"))
            .count();
        match c.state.as_str() {
            "done" => {
                assert_eq!(
                    completed, 1,
                    "{} is done with {completed} completed calls",
                    c.phone_number
                );
                assert_eq!(
                    placed.last().unwrap().outcome.as_deref(),
                    Some("completed"),
                    "{}: a call after the completed one",
                    c.phone_number
                );
            }
            "exhausted" => {
                assert_eq!(
                    completed, 0,
                    "{} is exhausted after a completed call",
                    c.phone_number
                );
                assert_eq!(
                    placed.len(),
                    MAX_ATTEMPTS as usize,
                    "{} is exhausted after {} calls",
                    c.phone_number,
                    placed.len()
                );
            }
            other => panic!("{} ended {other}", c.phone_number),
        }
    }
}

fn args<'a>(faults: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "--seed",
        "11",
        "--outcomes",
        "completed=50,no_answer=30,busy=20",
    ];
    a.extend_from_slice(faults);
    a
}

async fn manual(faults: &[&str]) -> World {
    World::manual_now(&args(faults), |_| {}).await
}

const ALL_FAULTS: [&str; 14] = [
    "--fault-429",
    "0.3",
    "--fault-500",
    "0.3",
    "--fault-500-placed",
    "0.3",
    "--fault-timeout",
    "0.3",
    "--fault-drop",
    "0.3",
    "--fault-garbage",
    "0.3",
    "--rate-limit",
    "25",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_429_faults() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-429", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::Fault429],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_500s_before_placing() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-500", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::Fault500],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_500s_after_placing() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-500-placed", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::Fault500Placed],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_timeouts_after_placing() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-timeout", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::FaultTimeout],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_dropped_connections() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-drop", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::FaultDrop],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_unreadable_answers() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--fault-garbage", "0.3"]).await,
        CONTACTS,
        &[DispatchResult::FaultGarbage],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_the_api_rate_limit() {
    within(no_call_is_lost_or_repeated_under(
        manual(&["--rate-limit", "20"]).await,
        CONTACTS,
        &[DispatchResult::RateLimited],
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_every_fault_at_once() {
    let expected = [
        DispatchResult::Fault429,
        DispatchResult::Fault500,
        DispatchResult::Fault500Placed,
        DispatchResult::FaultTimeout,
        DispatchResult::FaultDrop,
        DispatchResult::FaultGarbage,
        DispatchResult::RateLimited,
    ];
    within(no_call_is_lost_or_repeated_under(
        manual(&ALL_FAULTS).await,
        CONTACTS,
        &expected,
    ))
    .await
}

/// The same on the system clock, so `Retry-After` and the uncertain grace
/// are waited for in real time, as in production (fewer contacts and fewer
/// 429s: each holds every sender for a real second).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_call_is_lost_or_repeated_under_every_fault_at_once_in_real_time() {
    let expected = [
        DispatchResult::Fault429,
        DispatchResult::FaultTimeout,
        DispatchResult::FaultDrop,
    ];
    within(async {
        let faults = [
            "--fault-429",
            "0.1",
            "--fault-500",
            "0.2",
            "--fault-500-placed",
            "0.2",
            "--fault-timeout",
            "0.2",
            "--fault-drop",
            "0.2",
            "--fault-garbage",
            "0.2",
            "--rate-limit",
            "25",
        ];
        let w = World::new(&args(&faults), |_| {}).await;
        no_call_is_lost_or_repeated_under(w, 15, &expected).await
    })
    .await
}

fn phone(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n, None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dnc_number_is_never_dialed() {
    within(async {
        let w = World::manual_now(&["--outcomes", "busy=1"], |_| {}).await;
        let c = w.campaign(CampaignSpec { max_attempts: 3, retry_delay_secs: 60, ..Default::default() }).await;
        let numbers = w.add_uk_contacts(c, 8).await;
        let (listed, listed_by_other_program, later, after_a_call) = (&numbers[0], &numbers[1], &numbers[2], &numbers[3]);
        // Not due before the second sweep.
        w.sql(&format!(
            "UPDATE contacts SET next_attempt_at = '{}' WHERE phone_number = '{later}'",
            dialerd::clock::to_db_text(w.clock.now() + chrono::Duration::minutes(30))
        ))
        .await;
        w.store.dnc_add(&[phone(listed)], Some("asked")).await.unwrap();
        // Another program writes the dnc table directly: the contact is still
        // pending, and only the sweep can notice.
        w.sql(&format!("INSERT INTO dnc (phone_number, reason) VALUES ('{listed_by_other_program}', 'web form')")).await;
        assert_eq!(w.contact(listed_by_other_program).await.state, "pending");

        w.sweep(c).await;
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(w.contact(after_a_call).await.state, "retry_wait");
        w.store.dnc_add(&[phone(later), phone(after_a_call)], Some("asked between sweeps")).await.unwrap();
        w.run_to_idle(50).await;

        let placed = w.placed_per_number();
        let requested: Vec<_> = w.journal().into_iter().filter_map(|e| e.to_number).collect();
        for n in [listed, listed_by_other_program, later] {
            assert!(!requested.contains(n), "{n} is on the do-not-call list but was dialed");
            assert_eq!(w.contact(n).await.state, "suppressed", "{n}");
        }
        assert_eq!(placed.get(after_a_call), Some(&1), "{after_a_call} was dialed again after joining the list");
        assert_eq!(w.contact(after_a_call).await.state, "suppressed");
        for n in &numbers[4..] {
            assert_eq!(placed.get(n), Some(&3), "{n} is not listed and gets its 3 attempts");
        }
    })
    .await
}

/// Pauses or cancels a campaign whose row a sweep already read, then sweeps
/// with that stale row and with a fresh one.
async fn sweep_after_status(status: CampaignStatus) -> (World, i64) {
    let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
    let c = w.default_campaign().await;
    w.add_uk_contacts(c, 10).await;
    let planned = w.campaign_row(c).await;
    w.store
        .set_campaign_status(c, status, Some("operator"))
        .await
        .unwrap();
    w.driven(w.engine.sweep_campaign(&planned)).await.unwrap();
    w.sweep(c).await;
    (w, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_campaign_dials_nobody() {
    within(async {
        let (w, _) = sweep_after_status(CampaignStatus::Paused).await;
        assert!(
            w.journal().is_empty(),
            "requests sent for a paused campaign: {:?}",
            w.journal()
        );
        assert!(w.attempts().await.is_empty());
        for c in w.contacts().await {
            assert_eq!(
                (c.state.as_str(), c.attempts),
                ("pending", 0),
                "{}",
                c.phone_number
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_campaign_dials_nobody() {
    within(async {
        let (w, _) = sweep_after_status(CampaignStatus::Cancelled).await;
        assert!(
            w.journal().is_empty(),
            "requests sent for a cancelled campaign: {:?}",
            w.journal()
        );
        assert!(w.attempts().await.is_empty());
        w.assert_every_contact_ends_in(&["cancelled"]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resuming_a_paused_campaign_dials_its_contacts() {
    within(async {
        let (w, c) = sweep_after_status(CampaignStatus::Paused).await;
        assert!(w.journal().is_empty());
        w.store
            .set_campaign_status(c, CampaignStatus::Active, None)
            .await
            .unwrap();
        w.run_to_idle(50).await;
        let placed = w.placed_per_number();
        assert_eq!(placed.len(), 10, "every contact is dialed after the resume");
        assert!(placed.values().all(|n| *n == 1), "{placed:?}");
        w.assert_every_contact_ends_in(&["done"]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_401_stops_all_dispatching() {
    within(async {
        let w = World::manual_now(&["--api-key", "other"], |_| {}).await;
        let c = w.default_campaign().await;
        w.add_uk_contacts(c, CONTACTS).await;
        w.sweep(c).await;

        let journal = w.journal();
        assert!(!journal.is_empty());
        assert!(
            journal.len() <= w.cfg.max_in_flight as usize,
            "{} requests sent with a refused key; at most the {} in flight may be",
            journal.len(),
            w.cfg.max_in_flight
        );
        assert!(
            journal
                .iter()
                .all(|e| e.result == DispatchResult::Unauthorized && !e.placed)
        );
        assert!(
            w.store.dispatch_paused().await.unwrap().is_some(),
            "the pause is recorded for every campaign"
        );
        for c in w.contacts().await {
            assert_eq!(
                (c.state.as_str(), c.attempts),
                ("pending", 0),
                "{} is handed back untouched",
                c.phone_number
            );
        }
        assert!(
            w.attempts()
                .await
                .iter()
                .all(|a| a.state == "rejected" || a.state == "not_placed")
        );

        w.sweep(c).await;
        assert_eq!(
            w.journal().len(),
            journal.len(),
            "a second sweep sent requests"
        );
        // A restarted engine reads the pause from the database.
        w.sweep_with_a_new_engine(c).await;
        w.sweep(c).await;
        assert_eq!(
            w.journal().len(),
            journal.len(),
            "a restarted engine sent requests while dispatching is paused"
        );
    })
    .await
}

impl World {
    async fn sweep_with_a_new_engine(&self, campaign_id: i64) {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let engine = dialerd::engine::Engine::new(
            self.store.clone(),
            self.client.clone(),
            self.clock.shared(),
            self.cfg.clone(),
            rx,
        );
        let c = self.campaign_row(campaign_id).await;
        self.driven(engine.sweep_campaign(&c)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uncertain_attempts_are_linked_not_redialed() {
    within(async {
        let w = World::manual_now(
            &["--fault-500-placed", "1.0", "--outcomes", "completed=1"],
            |_| {},
        )
        .await;
        let c = w.default_campaign().await;
        let numbers = w.add_uk_contacts(c, 10).await;
        w.sweep(c).await;
        let attempts = w.attempts().await;
        assert_eq!(attempts.len(), 10);
        assert!(
            attempts.iter().all(|a| a.state == "uncertain"),
            "{attempts:?}"
        );

        w.engine.reconcile_once().await.unwrap();
        let journal = w.journal();
        for a in w.attempts().await {
            assert_eq!(a.state, "accepted", "attempt {} to {}", a.id, a.to_number);
            assert!(
                a.call_log_id.is_some(),
                "attempt {} is not linked to its call log",
                a.id
            );
            let placed = journal
                .iter()
                .find(|e| e.placed && e.to_number.as_deref() == Some(&a.to_number))
                .unwrap();
            assert_eq!(
                a.request_id,
                placed.request_id.map(|r| r.to_string()),
                "{} linked to the wrong call",
                a.to_number
            );
        }
        w.run_to_idle(50).await;
        assert_eq!(w.journal().len(), 10, "a request was sent again");
        for n in &numbers {
            assert_eq!(w.placed_per_number().get(n), Some(&1), "{n}");
        }
        w.assert_every_contact_ends_in(&["done"]).await;
        w.assert_outcomes_match_the_simulator().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_uncertain_attempt_that_never_reached_the_api_becomes_not_placed_and_is_redialed_once() {
    within(async {
        // Every request gets a 500 before a call is placed: ambiguous to the client.
        let w =
            World::manual_now(&["--fault-500", "1.0", "--outcomes", "completed=1"], |_| {}).await;
        let c = w.default_campaign().await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        w.sweep(c).await;
        assert_eq!(w.attempts().await[0].state, "uncertain");

        // Within the grace period it stays uncertain and nobody is redialed.
        w.engine.reconcile_once().await.unwrap();
        w.sweep(c).await;
        assert_eq!(w.attempts().await[0].state, "uncertain");
        assert_eq!(
            w.journal().len(),
            1,
            "an uncertain contact was dialed again"
        );

        w.clock
            .manual()
            .advance(w.cfg.uncertain_grace + std::time::Duration::from_secs(1));
        w.engine.reconcile_once().await.unwrap();
        let a = &w.attempts().await[0];
        assert_eq!(a.state, "not_placed");
        let contact = w.contact(&number).await;
        assert_eq!(
            (contact.state.as_str(), contact.attempts),
            ("pending", 0),
            "the contact is due again with its attempt back"
        );

        // The API recovers (the same API: its logs show no call to this number).
        let healthy = sim::spawn_with_clock(
            sim_options(&["--outcomes", "completed=1"]),
            w.clock.shared(),
        )
        .await
        .unwrap();
        w.engine.set_client(client_for(&healthy, w.clock.shared()));
        w.sweep(c).await;
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        w.sweep(c).await;

        assert!(
            w.journal().iter().all(|e| !e.placed),
            "the failing API placed nothing"
        );
        let placed = placed_per_number(&healthy.journal());
        assert_eq!(
            placed.get(&number),
            Some(&1),
            "dialed again, and exactly once"
        );
        assert_eq!(healthy.journal().len(), 1);
        let contact = w.contact(&number).await;
        assert_eq!((contact.state.as_str(), contact.attempts), ("done", 1));
    })
    .await
}

/// Claims `number`'s contact (commits its `sending` attempt) without sending.
async fn claim_without_sending(w: &World, campaign_id: i64) -> dialerd::store::Claimed {
    let round = w
        .store
        .claim_due(campaign_id, w.clock.now(), 10, |_| {
            Some(ClaimDecision::Dial { agent_id: AGENT })
        })
        .await
        .unwrap();
    assert_eq!(round.read, 1);
    let mut claimed = round.claimed;
    assert_eq!(w.attempts().await[0].state, "sending");
    claimed.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn startup_recovery_turns_sending_into_uncertain() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
        let c = w.default_campaign().await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        claim_without_sending(&w, c).await;

        assert_eq!(
            w.store.recover_sending("daemon restarted").await.unwrap(),
            1
        );
        let a = &w.attempts().await[0];
        assert_eq!(a.state, "uncertain");
        assert!(
            a.error
                .as_deref()
                .is_some_and(|e| e.contains("daemon restarted")),
            "the reason is kept: {:?}",
            a.error
        );
        w.engine.reconcile_once().await.unwrap();
        w.sweep(c).await;
        assert_eq!(
            w.attempts().await[0].state,
            "uncertain",
            "resolved before the grace period ended"
        );
        assert!(w.journal().is_empty(), "an uncertain contact was dialed");

        w.clock
            .manual()
            .advance(w.cfg.uncertain_grace + std::time::Duration::from_secs(1));
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(
            w.attempts().await[0].state,
            "not_placed",
            "the number never appeared in the logs"
        );
        w.run_to_idle(20).await;
        assert_eq!(w.placed_per_number().get(&number), Some(&1));
        assert_eq!(w.contact(&number).await.state, "done");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn startup_recovery_links_a_call_placed_just_before_the_crash() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
        let c = w.default_campaign().await;
        let number = w.add_uk_contacts(c, 1).await.remove(0);
        let claim = claim_without_sending(&w, c).await;
        // The request reached the API; the process died before recording the answer.
        let req = DispatchRequest {
            agent_id: AGENT,
            to_number: claim.to_number.clone(),
            call_context: Default::default(),
            from_number_id: None,
        };
        let accepted = w.client.dispatch(&req).await.unwrap();

        assert_eq!(w.store.recover_sending("restart").await.unwrap(), 1);
        w.engine.reconcile_once().await.unwrap();
        let a = &w.attempts().await[0];
        assert_eq!(a.state, "accepted");
        assert_eq!(a.request_id.as_deref(), Some(accepted.request_id.as_str()));
        w.clock.manual().advance(w.cfg.uncertain_grace * 4);
        w.run_to_idle(20).await;
        assert_eq!(
            w.journal().len(),
            1,
            "the number was dialed again after the restart"
        );
        assert_eq!(w.placed_per_number().get(&number), Some(&1));
        assert_eq!(w.contact(&number).await.state, "done");
    })
    .await
}

/// With pages far smaller than the number of calls (3 logs a page, 2 pages a
/// round: every round's head scan sees 6 logs), accepted calls deeper in the
/// logs and uncertain attempts still get resolved: the scan resumes where the
/// last round stopped instead of starting over at page 1 for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_deeper_than_one_rounds_page_limit_are_still_reconciled() {
    let expected = [
        DispatchResult::Fault500Placed,
        DispatchResult::Fault500,
        DispatchResult::FaultTimeout,
    ];
    let world = World::manual_now(&args(&ALL_FAULTS), |cfg| {
        cfg.page_size = 3;
        cfg.max_pages_per_poll = 2;
    })
    .await;
    within(no_call_is_lost_or_repeated_under(
        world, CONTACTS, &expected,
    ))
    .await
}
