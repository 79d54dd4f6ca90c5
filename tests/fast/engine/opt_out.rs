//! Opt-out to DNC, against the simulator on loopback: a callee who asks not
//! to be called again (an extracted variable, or a phrase in what they said)
//! puts the number on the do-not-call list in the transaction that records
//! the outcome, with the attempt; every other campaign then leaves the
//! number alone; an operator's entry is never rewritten.

use crate::harness::world::*;

/// A DNC row as the tests read it.
#[derive(Debug, sqlx::FromRow)]
struct DncRow {
    phone_number: String,
    reason: Option<String>,
    source: String,
    attempt_id: Option<i64>,
}

async fn dnc_rows(w: &World) -> Vec<DncRow> {
    sqlx::query_as("SELECT phone_number, reason, source, attempt_id FROM dnc ORDER BY phone_number")
        .fetch_all(w.store.pool())
        .await
        .unwrap()
}

async fn opt_out_events(w: &World) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT attempt_id, detail FROM events WHERE kind = 'dnc_opt_out' ORDER BY id")
        .fetch_all(w.store.pool())
        .await
        .unwrap()
}

/// The state and hold reason of each contact of `campaign`.
async fn states_in(w: &World, campaign: i64) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT phone_number, state, hold_reason FROM contacts WHERE campaign_id = ? ORDER BY id",
    )
    .bind(campaign)
    .fetch_all(w.store.pool())
    .await
    .unwrap()
}

/// Dials three numbers in campaign `first` (another campaign, `waiting`,
/// holds the same numbers) until idle.
async fn dial_three(w: &World) -> (i64, i64, Vec<String>) {
    let first = w
        .campaign(CampaignSpec {
            name: "first".into(),
            max_attempts: 1,
            ..Default::default()
        })
        .await;
    let numbers = w.add_uk_contacts(first, 3).await;
    // The second campaign's sweep runs while the first's calls are live,
    // so its contacts wait (one live attempt per number) until the outcome.
    let waiting = w
        .campaign(CampaignSpec {
            name: "waiting".into(),
            ..Default::default()
        })
        .await;
    w.add_contacts(waiting, &numbers).await;
    w.run_to_idle(40).await;
    (first, waiting, numbers)
}

/// Checks that every number is on the list as an opt-out of the attempt
/// that reached it, and that every campaign left it alone after that.
async fn assert_opted_out(w: &World, first: i64, waiting: i64, numbers: &[String]) {
    let attempts = w.attempts().await;
    let rows = dnc_rows(w).await;
    assert_eq!(rows.len(), numbers.len(), "{rows:?}");
    for row in &rows {
        assert_eq!(row.source, "opt-out", "{row:?}");
        let attempt = attempts
            .iter()
            .find(|a| Some(a.id) == row.attempt_id)
            .unwrap_or_else(|| panic!("{row:?} names no attempt"));
        assert_eq!(attempt.to_number, row.phone_number);
        assert_eq!(attempt.outcome.as_deref(), Some("completed"));
        assert!(
            row.reason.as_deref().unwrap_or("").starts_with("opt-out"),
            "{row:?}"
        );
    }
    assert_eq!(opt_out_events(w).await.len(), numbers.len());
    // One call per number: the waiting campaign never dialed them.
    assert!(
        w.placed_per_number().values().all(|n| *n == 1),
        "{:?}",
        w.placed_per_number()
    );
    assert_eq!(w.journal().len(), numbers.len());
    for (_, state, _) in states_in(w, first).await {
        assert_eq!(state, "done");
    }
    for (n, state, hold) in states_in(w, waiting).await {
        assert_eq!(
            (state.as_str(), hold.as_deref()),
            ("suppressed", Some("dnc")),
            "{n}"
        );
    }
    // A campaign imported later suppresses them too, and dials nobody.
    let later = w
        .campaign(CampaignSpec {
            name: "later".into(),
            ..Default::default()
        })
        .await;
    w.add_contacts(later, numbers).await;
    w.run_to_idle(10).await;
    assert_eq!(
        w.journal().len(),
        numbers.len(),
        "a later campaign dialed an opted-out number"
    );
    for (n, state, _) in states_in(w, later).await {
        assert_eq!(state, "suppressed", "{n}");
    }
}

#[tokio::test]
async fn an_opt_out_variable_puts_the_number_on_dnc_and_every_other_campaign_suppresses_it() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1", "--opt-out", "1"], |_| {}).await;
        // Webhooks on for this event: the outbox gets it with the opt-out.
        w.sql("INSERT INTO webhook_subscriptions (event) VALUES ('dnc.opt_out')")
            .await;
        let (first, waiting, numbers) = dial_three(&w).await;
        assert_opted_out(&w, first, waiting, &numbers).await;
        let events: Vec<(String,)> =
            sqlx::query_as("SELECT payload FROM webhook_outbox WHERE event = 'dnc.opt_out'")
                .fetch_all(w.store.pool())
                .await
                .unwrap();
        assert_eq!(events.len(), numbers.len());
        for row in dnc_rows(&w).await {
            let sent = events.iter().any(|(p,)| {
                let p: serde_json::Value = serde_json::from_str(p).unwrap();
                p["phone_number"] == row.phone_number.as_str()
                    && p["attempt"]["id"] == row.attempt_id.unwrap()
            });
            assert!(sent, "no dnc.opt_out event for {row:?}");
            assert!(row.reason.unwrap().contains("extracted variable opt_out"));
        }
    })
    .await;
}

#[tokio::test]
async fn a_phrase_in_the_callees_words_alone_puts_the_number_on_dnc() {
    within(async {
        // The variable is not looked at: only the transcript can opt out.
        let w = World::manual_now(&["--outcomes", "completed=1", "--opt-out", "1"], |cfg| {
            cfg.compliance.opt_out.variable = None;
        })
        .await;
        let (first, waiting, numbers) = dial_three(&w).await;
        assert_opted_out(&w, first, waiting, &numbers).await;
        for row in dnc_rows(&w).await {
            assert!(row.reason.unwrap().contains("the callee said"));
        }
    })
    .await;
}

#[tokio::test]
async fn a_completed_call_without_an_opt_out_puts_nothing_on_dnc() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
        let (_, waiting, numbers) = dial_three(&w).await;
        assert!(dnc_rows(&w).await.is_empty());
        assert!(opt_out_events(&w).await.is_empty());
        // The waiting campaign called each number once its first call ended.
        assert_eq!(w.journal().len(), 2 * numbers.len());
        for (n, state, _) in states_in(&w, waiting).await {
            assert_eq!(state, "done", "{n}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_opt_out_never_rewrites_an_operators_dnc_entry() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1", "--opt-out", "1"], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                max_attempts: 1,
                ..Default::default()
            })
            .await;
        let numbers = w.add_uk_contacts(c, 1).await;
        w.sweep_all().await;
        assert_eq!(w.journal().len(), 1);
        // The operator lists the number while its call is under way.
        let n = dialerd::phone::PhoneNumber::parse(&numbers[0], None).unwrap();
        w.store
            .dnc_add(&[n], Some("asked by letter"))
            .await
            .unwrap();
        w.run_to_idle(20).await;
        let rows = dnc_rows(&w).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].source, "operator");
        assert_eq!(rows[0].reason.as_deref(), Some("asked by letter"));
        assert_eq!(rows[0].attempt_id, None);
        let events = opt_out_events(&w).await;
        assert_eq!(events.len(), 1, "the opt-out is still recorded");
        assert!(
            events[0].1.contains("already on the DNC list"),
            "{events:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn an_attempt_claimed_before_the_opt_out_is_refused_at_the_instant_of_dialing() {
    use dialerd::domain::ContactState;
    use dialerd::engine::policy;
    use dialerd::store::{ClaimDecision, Release};
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1", "--opt-out", "1"], |_| {}).await;
        let first = w
            .campaign(CampaignSpec {
                name: "first".into(),
                max_attempts: 1,
                ..Default::default()
            })
            .await;
        let numbers = w.add_uk_contacts(first, 1).await;
        w.sweep_all().await;
        // Another campaign's contact of the same number, claimed (its
        // `sending` row committed) before the first call's outcome is in.
        let second = w
            .campaign(CampaignSpec {
                name: "second".into(),
                ..Default::default()
            })
            .await;
        w.add_contacts(second, &numbers).await;
        let now = w.clock.now();
        let round = w
            .store
            .claim_due(second, now, 10, |_| {
                Some(ClaimDecision::Dial { agent_id: AGENT })
            })
            .await
            .unwrap();
        let claimed = round.claimed[0].attempt_id;
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        assert_eq!(dnc_rows(&w).await.len(), 1, "the first call opted out");

        let states = w
            .store
            .dial_states(&[claimed], w.clock.now())
            .await
            .unwrap();
        let campaign = w.campaign_row(second).await;
        let rules = campaign.rules().unwrap();
        let refusal = policy::decide_at_dial(
            &states[&claimed],
            &rules,
            &w.cfg.compliance,
            Some(AGENT),
            w.clock.now(),
        );
        let (why, release) = refusal.expect("the dial-time check refuses the send");
        assert!(why.contains("DNC"), "{why}");
        assert!(
            matches!(
                release,
                Release::Close {
                    state: ContactState::Suppressed,
                    ..
                }
            ),
            "{release:?}"
        );
    })
    .await;
}
