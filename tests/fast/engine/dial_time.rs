//! The dial-time rule, on a manual clock: every try of every request is
//! decided on the database as it is at that instant (DNC, pause, cancel,
//! window), a claim not sent within `max_claim_wait` is released unsent,
//! one number has one live attempt across campaigns, and the per-number cap
//! holds across campaigns. Requests are counted where they arrive: a
//! scripted API (wiremock) or the simulator's journal.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use dialerd::clock::{from_db_text, to_db_text};
use dialerd::domain::CampaignStatus;
use dialerd::phone::PhoneNumber;
use wiremock::ResponseTemplate;

use super::recording_api::{RecordingApi, spawn_sweep, too_many, until};
use crate::harness::world::*;

/// An API that answers the scripted responses first, in order, then
/// accepts every call.
async fn scripted(script: Vec<ResponseTemplate>) -> RecordingApi {
    let script = Mutex::new(VecDeque::from(script));
    RecordingApi::start(Box::new(move |_, _| script.lock().unwrap().pop_front())).await
}

async fn count(w: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

async fn hold_reason(w: &World, number: &str) -> Option<String> {
    sqlx::query_scalar("SELECT hold_reason FROM contacts WHERE phone_number = ?")
        .bind(number)
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

async fn attempt_errors(w: &World, number: &str) -> Vec<String> {
    w.attempts()
        .await
        .into_iter()
        .filter(|a| a.to_number == number)
        .map(|a| format!("{} {}", a.state, a.error.unwrap_or_default()))
        .collect()
}

/// Claims are held at the Retry-After gate; meanwhile numbers go on the DNC
/// list, a campaign is paused, another cancelled, and a window closes. When
/// the gate opens, not one request goes out for any of them; each attempt
/// ends not_placed with the reason, and its contact goes where the reason
/// says without spending an attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_made_while_claims_wait_out_a_retry_after_stop_every_request_they_forbid() {
    within(async {
        // January: London is on UTC. The window closes at 10:00, one
        // second before the gate opens, within the claims' 5 s.
        let w = World::manual_at(at("2026-01-15T09:59:57Z"), &[], |_| {}).await;
        let api = scripted(vec![too_many(4)]).await;
        api.serve(&w);
        let spec = |name: &str, window: &str| CampaignSpec {
            name: name.into(),
            window: window.into(),
            ..Default::default()
        };
        let trigger = w.campaign(spec("trigger", "00:00-24:00")).await;
        let dnc = w.campaign(spec("dnc", "00:00-24:00")).await;
        let paused = w.campaign(spec("paused", "00:00-24:00")).await;
        let cancelled = w.campaign(spec("cancelled", "00:00-24:00")).await;
        let closing = w.campaign(spec("closing", "00:00-10:00")).await;
        let control = w.campaign(spec("control", "00:00-24:00")).await;
        let n: Vec<String> = (0..7).map(uk).collect();
        w.add_contacts(trigger, &n[0..1]).await;
        w.add_contacts(dnc, &n[1..3]).await;
        w.add_contacts(paused, &n[3..4]).await;
        w.add_contacts(cancelled, &n[4..5]).await;
        w.add_contacts(closing, &n[5..6]).await;
        w.add_contacts(control, &n[6..7]).await;

        // The first request is answered 429 Retry-After: 4.
        let first = spawn_sweep(&w, trigger);
        until("the gate closes", || async {
            w.engine.dispatch_held_until().is_some()
        })
        .await;
        let others: Vec<_> = [dnc, paused, cancelled, closing, control]
            .into_iter()
            .map(|c| spawn_sweep(&w, c))
            .collect();
        until("every contact is claimed and waiting", || async {
            count(&w, "SELECT COUNT(*) FROM attempts WHERE state = 'sending'").await == 7
        })
        .await;
        assert_eq!(api.total(), 1, "only the first request went out");

        // During the hold.
        let dnc_numbers: Vec<PhoneNumber> = n[1..3]
            .iter()
            .map(|s| PhoneNumber::parse(s, None).unwrap())
            .collect();
        w.store.dnc_add(&dnc_numbers, Some("asked")).await.unwrap();
        w.store
            .set_campaign_status(paused, CampaignStatus::Paused, Some("operator"))
            .await
            .unwrap();
        w.store
            .set_campaign_status(cancelled, CampaignStatus::Cancelled, Some("operator"))
            .await
            .unwrap();
        w.clock.manual().advance(Duration::from_secs(4));
        first.await.unwrap();
        for s in others {
            s.await.unwrap();
        }

        assert_eq!(api.for_number(&n[0]), 2, "the 429'd call is retried once");
        assert_eq!(api.for_number(&n[6]), 1, "the control is called");
        for number in &n[1..6] {
            assert_eq!(api.for_number(number), 0, "{number} was called");
        }
        let contact = |i: usize| w.contact(&n[i]);
        for i in [1, 2] {
            let c = contact(i).await;
            assert_eq!((c.state.as_str(), c.attempts), ("suppressed", 0));
            let errors = attempt_errors(&w, &n[i]).await;
            assert!(
                errors[0]
                    .starts_with("not_placed not sent: on the DNC list since 2026-01-15T09:59:57Z"),
                "{errors:?}"
            );
        }
        let c = contact(3).await;
        assert_eq!((c.state.as_str(), c.attempts), ("pending", 0));
        assert_eq!(hold_reason(&w, &n[3]).await.as_deref(), Some("paused"));
        assert!(attempt_errors(&w, &n[3]).await[0].contains("not sent: campaign paused"));
        let c = contact(4).await;
        assert_eq!((c.state.as_str(), c.attempts), ("cancelled", 0));
        let c = contact(5).await;
        assert_eq!((c.state.as_str(), c.attempts), ("pending", 0));
        assert_eq!(c.next_attempt_at.as_deref(), Some("2026-01-16T00:00:00Z"));
        assert_eq!(hold_reason(&w, &n[5]).await.as_deref(), Some("window"));
        let errors = attempt_errors(&w, &n[5]).await;
        assert!(
            errors[0].contains(
                "not sent: outside calling hours: the campaign window 00:00-10:00 in Europe/London"
            ),
            "{errors:?}"
        );
    })
    .await
}

/// A Retry-After longer than `max_claim_wait` sends nothing more: the
/// claimed contacts are handed back, due when the server allows, without
/// spending an attempt; then each is sent exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_held_longer_than_max_claim_wait_is_released_and_later_sent_exactly_once() {
    within(async {
        let start = at("2026-01-15T12:00:00Z");
        let w = World::manual_at(start, &[], |cfg| cfg.max_in_flight = 1).await;
        let api = scripted(vec![too_many(60)]).await;
        api.serve(&w);
        let c = w.default_campaign().await;
        let numbers = w.add_uk_contacts(c, 3).await;
        let report = w.sweep(c).await;
        assert_eq!((report.dispatched, report.refused), (3, 3), "{report:?}");
        assert_eq!(api.total(), 1, "nothing sent after the 429");
        let due = to_db_text(start + chrono::Duration::seconds(60));
        for n in &numbers {
            let contact = w.contact(n).await;
            assert_eq!(
                (contact.state.as_str(), contact.attempts),
                ("pending", 0),
                "{n}"
            );
            assert_eq!(
                contact.next_attempt_at.as_deref(),
                Some(due.as_str()),
                "{n}"
            );
            assert_eq!(hold_reason(&w, n).await.as_deref(), Some("server_wait"));
            let errors = attempt_errors(&w, n).await;
            assert!(errors[0].contains("max_claim_wait_secs (5s)"), "{errors:?}");
        }
        // Nothing is claimed while the gate stays shut beyond a claim's wait.
        w.clock.manual().advance(Duration::from_secs(30));
        w.sweep(c).await;
        assert_eq!(api.total(), 1);
        w.clock.manual().advance(Duration::from_secs(30));
        let report = w.sweep(c).await;
        assert_eq!(report.accepted, 3, "{report:?}");
        // The one whose request met the 429 twice, the others once.
        let mut per_number: Vec<usize> = numbers.iter().map(|n| api.for_number(n)).collect();
        per_number.sort();
        assert_eq!(per_number, vec![1, 1, 2]);
        for n in &numbers {
            assert_eq!(w.contact(n).await.attempts, 1, "{n}");
            assert_eq!(hold_reason(&w, n).await, None);
        }
        w.sweep(c).await;
        assert_eq!(api.total(), 4, "each sent exactly once");
    })
    .await
}

/// A claim waiting for a request slot (the pool full with a slow request)
/// is released once it has waited `max_claim_wait`, and sent later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_waiting_for_a_full_pool_is_released_after_max_claim_wait() {
    within(async {
        let w =
            World::manual_at(at("2026-01-15T12:00:00Z"), &[], |cfg| cfg.max_in_flight = 1).await;
        let slow = ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"success": true, "requestId": 1}))
            .set_delay(Duration::from_millis(250));
        let api = scripted(vec![slow]).await;
        api.serve(&w);
        let c = w.default_campaign().await;
        let numbers = w.add_uk_contacts(c, 2).await;
        let sweep = spawn_sweep(&w, c);
        until("the first request is on the wire", || async {
            api.total() == 1
        })
        .await;
        w.clock.manual().advance(Duration::from_secs(6));
        let report = sweep.await.unwrap();
        assert_eq!((report.accepted, report.refused), (1, 1), "{report:?}");
        // Whichever got the slot second waited for it, and was released.
        let second = numbers
            .iter()
            .find(|n| api.for_number(n) == 0)
            .expect("one request only");
        let waiting = w.contact(second).await;
        assert_eq!((waiting.state.as_str(), waiting.attempts), ("pending", 0));
        assert!(attempt_errors(&w, second).await[0].contains("no request slot came free"));
        w.clock.manual().advance(Duration::from_secs(6));
        w.sweep(c).await;
        assert_eq!(api.for_number(second), 1);
        assert_eq!(api.total(), 2);
    })
    .await
}

/// A trigger that makes a second live attempt to a number impossible to
/// write: any claim that breaks the rule fails the sweep at once.
const ONE_LIVE_ATTEMPT: &str = "CREATE TRIGGER test_one_live_attempt BEFORE INSERT ON attempts \
     WHEN EXISTS (SELECT 1 FROM attempts a WHERE a.to_number = NEW.to_number AND a.outcome IS NULL \
                  AND a.state IN ('sending', 'accepted', 'uncertain')) \
     BEGIN SELECT RAISE(ABORT, 'a second live attempt to one number'); END";

/// One number in two campaigns on one agent, under faults that leave
/// attempts uncertain (placed then 500, timeouts): never two live attempts
/// to one number, and each campaign's call placed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_number_in_two_campaigns_never_has_two_live_attempts_under_ambiguous_faults() {
    within(async {
        let w = World::manual_now(
            &[
                "--outcomes",
                "completed=100",
                "--fault-500-placed",
                "0.3",
                "--fault-timeout",
                "0.2",
            ],
            |_| {},
        )
        .await;
        w.sql(ONE_LIVE_ATTEMPT).await;
        let spec = |name: &str| CampaignSpec {
            name: name.into(),
            ..Default::default()
        };
        let a = w.campaign(spec("a")).await;
        let b = w.campaign(spec("b")).await;
        let numbers: Vec<String> = (0..8).map(uk).collect();
        w.add_contacts(a, &numbers).await;
        w.add_contacts(b, &numbers).await;
        w.run_to_idle(400).await;
        w.assert_every_contact_ends_in(&["done"]).await;
        let placed = w.placed_per_number();
        for n in &numbers {
            assert_eq!(placed.get(n), Some(&2), "{n}: one call per campaign");
        }
        w.assert_every_placed_call_is_known_once(2).await;
        let waited: i64 = count(
            &w,
            "SELECT COUNT(*) FROM attempts a JOIN attempts b ON a.to_number = b.to_number AND a.id < b.id \
             WHERE b.sent_at < a.finished_at",
        )
        .await;
        assert_eq!(waited, 0, "an attempt began before the number's previous one ended");
    })
    .await
}

/// The per-number cap counts calls of every campaign: the fourth campaign's
/// contact with the same number waits until the first call is 24 h old.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_fourth_call_of_the_day_to_a_number_is_refused_across_campaigns() {
    within(async {
        let start = at("2026-01-15T12:00:00Z");
        let w = World::manual_at(start, &["--outcomes", "completed=100"], |_| {}).await;
        let number = uk(42);
        let mut campaigns = Vec::new();
        for i in 0..4 {
            let c = w
                .campaign(CampaignSpec {
                    name: format!("c{i}"),
                    ..Default::default()
                })
                .await;
            w.add_contacts(c, std::slice::from_ref(&number)).await;
            campaigns.push(c);
        }
        let mut first_call = None;
        for (i, c) in campaigns.iter().enumerate() {
            w.sweep(*c).await;
            first_call.get_or_insert_with(|| w.clock.now());
            w.settle_calls().await;
            w.engine.reconcile_once().await.unwrap();
            assert!(
                w.placed_per_number().get(&number).copied().unwrap_or(0) <= 3,
                "after campaign {i}"
            );
            w.clock.manual().advance(Duration::from_secs(120));
        }
        assert_eq!(w.placed_per_number().get(&number), Some(&3));
        let held = w
            .contacts()
            .await
            .into_iter()
            .find(|c| c.state == "pending")
            .expect("the fourth contact waits");
        assert_eq!(held.attempts, 0);
        let lifts = first_call.unwrap() + chrono::Duration::hours(24);
        assert_eq!(
            held.next_attempt_at.as_deref().and_then(from_db_text),
            Some(lifts),
            "the cap lifts when the oldest call is 24 h old"
        );
        let reason: Option<String> =
            sqlx::query_scalar("SELECT hold_reason FROM contacts WHERE id = ?")
                .bind(held.id)
                .fetch_one(w.store.pool())
                .await
                .unwrap();
        assert_eq!(reason.as_deref(), Some("cap"));
        let progress: i64 = count(&w, "SELECT SUM(held_cap) FROM campaign_progress").await;
        assert_eq!(progress, 1, "campaign_progress counts the capped contact");
        w.clock.manual().set(lifts - chrono::Duration::seconds(1));
        w.sweep_all().await;
        assert_eq!(w.placed_per_number().get(&number), Some(&3));
        w.clock.manual().set(lifts);
        w.sweep_all().await;
        assert_eq!(w.placed_per_number().get(&number), Some(&4));
    })
    .await
}
