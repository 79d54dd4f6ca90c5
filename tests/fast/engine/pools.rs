//! Caller-number pools and the spend cap, against the simulator on loopback
//! on a manual clock: which `from_number_id` each request carried is read
//! from the simulator's journal (what the server received), never from our
//! own rows alone.

use std::collections::BTreeMap;

use dialerd::store::{PoolPick, Store};

use crate::harness::world::*;

/// Placed calls per `from_number_id`, as the simulator received them.
fn placed_per_caller(w: &World) -> BTreeMap<Option<i64>, usize> {
    let mut out = BTreeMap::new();
    for e in w.journal().into_iter().filter(|e| e.placed) {
        *out.entry(e.from_number_id).or_insert(0) += 1;
    }
    out
}

/// A campaign (all day, one attempt per contact) using caller pool `pool`.
async fn pooled_campaign(w: &World, name: &str, pool: &str) -> i64 {
    let id = w
        .campaign(CampaignSpec {
            name: name.into(),
            max_attempts: 1,
            ..Default::default()
        })
        .await;
    w.sql(&format!(
        "UPDATE campaigns SET caller_pool = '{pool}' WHERE id = {id}"
    ))
    .await;
    id
}

async fn add_number(store: &Store, id: i64, number: &str, pool: &str, cap: Option<u32>) {
    store
        .add_caller_number(id, number, pool, cap)
        .await
        .unwrap();
}

async fn scalar(w: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_rotate_evenly_across_the_three_numbers_of_a_pool() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        for id in 1..=3 {
            add_number(&w.store, id, &format!("+1650555010{id}"), "main", None).await;
        }
        let c = pooled_campaign(&w, "rotation", "main").await;
        w.add_uk_contacts(c, 31).await;
        w.run_to_idle(100).await;
        w.assert_every_contact_ends_in(&["done"]).await;
        let per = placed_per_caller(&w);
        assert_eq!(
            per.get(&None),
            None,
            "a call went out without a caller number: {per:?}"
        );
        let counts: Vec<usize> = (1..=3)
            .map(|id| per.get(&Some(id)).copied().unwrap_or(0))
            .collect();
        assert_eq!(counts.iter().sum::<usize>(), 31, "{per:?}");
        let spread = counts.iter().max().unwrap() - counts.iter().min().unwrap();
        assert!(spread <= 1, "rotation is uneven: {counts:?}");
        // Each attempt records the number its request carried.
        let recorded = scalar(
            &w,
            "SELECT COUNT(*) FROM attempts WHERE from_number_id IN (1, 2, 3)",
        )
        .await;
        assert_eq!(recorded, 31);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_never_places_more_calls_in_24_hours_than_its_daily_cap() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        add_number(&w.store, 1, "+16505550101", "capped", Some(3)).await;
        add_number(&w.store, 2, "+16505550102", "capped", Some(3)).await;
        let c = pooled_campaign(&w, "capped", "capped").await;
        w.add_uk_contacts(c, 10).await;
        let start = w.clock.now();
        w.sweep(c).await;
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        let per = placed_per_caller(&w);
        assert_eq!(
            per,
            BTreeMap::from([(Some(1), 3), (Some(2), 3)]),
            "the caps of 3 did not hold"
        );
        // The other four wait, visibly, for a number to free up a day later.
        let held = scalar(&w, "SELECT held_pool FROM campaign_progress").await;
        assert_eq!(held, 4);
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT next_attempt_at FROM contacts WHERE hold_reason = 'pool' AND state = 'pending'",
        )
        .fetch_all(w.store.pool())
        .await
        .unwrap();
        for d in &due {
            let at = dialerd::clock::from_db_text(d).unwrap();
            assert!(
                at >= start + chrono::Duration::hours(24),
                "held only until {d}"
            );
        }
        // A sweep before then dials nobody.
        w.sweep(c).await;
        assert_eq!(placed_per_caller(&w).values().sum::<usize>(), 6);
        // A day later the rest go out, still within the caps.
        w.run_to_idle(100).await;
        w.assert_every_contact_ends_in(&["done"]).await;
        let per = placed_per_caller(&w);
        assert_eq!(per.values().sum::<usize>(), 10);
        assert!(per.values().all(|n| *n <= 6), "{per:?}");
    })
    .await
}

/// Twenty tries picking at once from two numbers with three calls a day
/// each: exactly six get a number, three from each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tries_picking_at_once_never_overshoot_a_numbers_daily_cap() {
    within(async {
        let w = World::manual_now(&[], |_| {}).await;
        add_number(&w.store, 1, "+16505550101", "race", Some(3)).await;
        add_number(&w.store, 2, "+16505550102", "race", Some(3)).await;
        let c = pooled_campaign(&w, "race", "race").await;
        let numbers = w.add_uk_contacts(c, 20).await;
        let now = dialerd::clock::to_db_text_ms(w.clock.now());
        for (i, n) in numbers.iter().enumerate() {
            w.sql(&format!(
                "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                 VALUES ({}, {c}, 1, 'sending', {AGENT}, '{n}', '{now}')",
                i + 1
            ))
            .await;
        }
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM attempts ORDER BY id")
            .fetch_all(w.store.pool())
            .await
            .unwrap();
        let mut picks = tokio::task::JoinSet::new();
        for id in ids {
            let store = w.store.clone();
            let at = w.clock.now();
            picks.spawn(async move {
                store
                    .pick_caller_number(id, at, |pool| {
                        dialerd::engine::limits::pick_number(pool, "+442079460000")
                    })
                    .await
                    .unwrap()
            });
        }
        let mut per: BTreeMap<i64, usize> = BTreeMap::new();
        let mut none_free = 0;
        while let Some(pick) = picks.join_next().await {
            match pick.unwrap() {
                PoolPick::Picked(id) => *per.entry(id).or_insert(0) += 1,
                PoolPick::NoneFree(_) => none_free += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(per, BTreeMap::from([(1, 3), (2, 3)]));
        assert_eq!(none_free, 14);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_presence_picks_the_number_with_the_callees_area_code() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        add_number(&w.store, 10, "+12125550100", "local", None).await;
        add_number(&w.store, 20, "+14155550100", "local", None).await;
        add_number(&w.store, 30, "+16175550100", "local", None).await;
        let c = pooled_campaign(&w, "local", "local").await;
        let callees: Vec<(String, i64)> = (0..4)
            .flat_map(|i| {
                [
                    (format!("+1212555012{i}"), 10),
                    (format!("+1415555012{i}"), 20),
                    (format!("+1617555012{i}"), 30),
                ]
            })
            .collect();
        for (n, _) in &callees {
            w.insert_contact(c, n, Some("America/New_York"), true).await;
        }
        w.run_to_idle(100).await;
        w.assert_every_contact_ends_in(&["done"]).await;
        let journal = w.journal();
        for (n, want) in &callees {
            let got: Vec<Option<i64>> = journal
                .iter()
                .filter(|e| e.placed && e.to_number.as_deref() == Some(n))
                .map(|e| e.from_number_id)
                .collect();
            assert_eq!(got, vec![Some(*want)], "{n} was called from {got:?}");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_number_is_never_used() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        for id in 1..=3 {
            add_number(&w.store, id, &format!("+1650555010{id}"), "main", None).await;
        }
        assert!(w.store.set_caller_number_active(2, false).await.unwrap());
        let c = pooled_campaign(&w, "disabled", "main").await;
        w.add_uk_contacts(c, 12).await;
        w.run_to_idle(100).await;
        w.assert_every_contact_ends_in(&["done"]).await;
        let per = placed_per_caller(&w);
        assert_eq!(per, BTreeMap::from([(Some(1), 6), (Some(3), 6)]), "{per:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_pool_dials_nobody_and_holds_its_contacts_visibly() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        // One number, in another pool; and one of this pool, disabled.
        add_number(&w.store, 1, "+16505550101", "other", None).await;
        add_number(&w.store, 2, "+16505550102", "empty", None).await;
        w.store.set_caller_number_active(2, false).await.unwrap();
        let c = pooled_campaign(&w, "empty", "empty").await;
        w.add_uk_contacts(c, 5).await;
        for _ in 0..3 {
            w.sweep(c).await;
            w.clock.manual().advance(std::time::Duration::from_secs(301));
        }
        assert_eq!(w.sim.stats().dispatch_requests, 0, "a request went out");
        assert_eq!(scalar(&w, "SELECT held_pool FROM campaign_progress").await, 5);
        assert_eq!(
            scalar(&w, "SELECT COUNT(*) FROM contact_outcomes WHERE hold_reason = 'pool' AND state = 'pending'").await,
            5
        );
        // Enabling the number lets the calls go out from it.
        w.store.set_caller_number_active(2, true).await.unwrap();
        w.run_to_idle(100).await;
        assert_eq!(placed_per_caller(&w), BTreeMap::from([(Some(2), 5)]));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_without_a_pool_keeps_its_fixed_from_number_id() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        add_number(&w.store, 1, "+16505550101", "main", None).await;
        let c = w.default_campaign().await;
        w.sql(&format!(
            "UPDATE campaigns SET from_number_id = 77 WHERE id = {c}"
        ))
        .await;
        w.add_uk_contacts(c, 3).await;
        w.run_to_idle(100).await;
        assert_eq!(placed_per_caller(&w), BTreeMap::from([(Some(77), 3)]));
    })
    .await
}

/// Every call costs exactly 1.00 at the simulator.
const ONE_PER_CALL: [&str; 6] = [
    "--outcomes",
    "completed=100",
    "--cost-per-call",
    "1.0",
    "--cost-per-min",
    "0",
];

async fn campaign_status(w: &World, c: i64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, status_reason FROM campaigns WHERE id = ?")
        .bind(c)
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_with_an_estimate_places_no_call_past_its_spend_cap() {
    within(async {
        let w = World::manual_now(&ONE_PER_CALL, |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                name: "budget".into(),
                max_attempts: 1,
                ..Default::default()
            })
            .await;
        w.sql(&format!(
            "UPDATE campaigns SET max_cost = 5, cost_estimate = 1.0 WHERE id = {c}"
        ))
        .await;
        w.add_uk_contacts(c, 20).await;
        w.sweep(c).await;
        assert_eq!(
            w.sim.stats().calls_placed,
            5,
            "the budget had room for five calls"
        );
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        let (status, reason) = campaign_status(&w, c).await;
        assert_eq!(status, "paused");
        let reason = reason.unwrap();
        assert!(
            reason.starts_with("spend cap reached: 5.00 of 5.00"),
            "{reason}"
        );
        assert_eq!(
            scalar(&w, "SELECT CAST(spent AS INTEGER) FROM campaign_progress").await,
            5
        );
        // The running total the cap reads agrees with the attempts.
        let agrees = "SELECT (SELECT spent FROM campaign_spend) = (SELECT SUM(cost) FROM attempts)";
        assert_eq!(scalar(&w, agrees).await, 1);
        // Nothing more is placed, however often the sweeps come.
        for _ in 0..3 {
            w.sweep(c).await;
        }
        assert_eq!(w.sim.stats().dispatch_requests, 5);
        assert_eq!(
            scalar(&w, "SELECT pending FROM campaign_progress").await,
            15
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_pauses_within_one_reconcile_round_of_reaching_its_cap() {
    within(async {
        let w = World::manual_now(&ONE_PER_CALL, |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                name: "no-estimate".into(),
                max_attempts: 1,
                ..Default::default()
            })
            .await;
        // No estimate anywhere: only reconciled cost counts.
        w.sql(&format!("UPDATE campaigns SET max_cost = 3 WHERE id = {c}"))
            .await;
        w.add_uk_contacts(c, 3).await;
        // A fourth contact, due tomorrow, keeps the campaign from completing.
        w.add_contacts(c, &[uk(99)]).await;
        w.sql(&format!(
            "UPDATE contacts SET next_attempt_at = '{}' WHERE phone_number = '{}'",
            dialerd::clock::to_db_text(w.clock.now() + chrono::Duration::days(1)),
            uk(99)
        ))
        .await;
        w.sweep(c).await;
        assert_eq!(campaign_status(&w, c).await.0, "active");
        w.settle_calls().await;
        w.engine.reconcile_once().await.unwrap();
        let (status, reason) = campaign_status(&w, c).await;
        assert_eq!(
            status, "paused",
            "not paused by the reconcile round that reached the cap"
        );
        assert!(
            reason
                .unwrap()
                .starts_with("spend cap reached: 3.00 of 3.00")
        );
        // Contacts added later are not dialed.
        let more: Vec<String> = (100..105).map(uk).collect();
        w.add_contacts(c, &more).await;
        w.sweep(c).await;
        assert_eq!(w.sim.stats().dispatch_requests, 3);
        // Raised and resumed, it dials again.
        w.store.set_campaign_max_cost(c, Some(100.0)).await.unwrap();
        w.store
            .set_campaign_status(c, dialerd::domain::CampaignStatus::Active, None)
            .await
            .unwrap();
        w.run_to_idle(100).await;
        assert_eq!(w.sim.stats().calls_placed, 9);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_try_after_the_cap_was_reached_is_not_sent_and_the_contact_is_held() {
    within(async {
        let w = World::manual_now(&ONE_PER_CALL, |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                name: "dial-time".into(),
                max_attempts: 1,
                ..Default::default()
            })
            .await;
        w.sql(&format!("UPDATE campaigns SET max_cost = 2 WHERE id = {c}"))
            .await;
        let numbers = w.add_uk_contacts(c, 3).await;
        // Two reconciled calls of another contact's history reach the cap
        // between the claim and the try: a trigger writes them when the
        // first attempt is claimed.
        w.sql(&format!(
            "CREATE TRIGGER test_spend_meanwhile AFTER INSERT ON attempts WHEN NEW.id = 1 BEGIN \
               INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at, outcome, cost) \
               VALUES (3, {c}, 9, 'accepted', {AGENT}, '{}', NEW.sent_at, 'completed', 2.0); END",
            numbers[2]
        ))
        .await;
        w.sweep(c).await;
        assert_eq!(w.sim.stats().dispatch_requests, 0, "a call went out past the cap");
        let held = scalar(
            &w,
            "SELECT COUNT(*) FROM contacts WHERE hold_reason = 'spend_cap' AND state = 'pending'",
        )
        .await;
        assert!(held >= 1, "no contact held for the spend cap");
        assert_eq!(campaign_status(&w, c).await.0, "paused");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_of_a_contact_goes_out_from_another_number_of_the_pool() {
    within(async {
        let w = World::manual_now(&["--outcomes", "no_answer=100"], |_| {}).await;
        add_number(&w.store, 1, "+16505550101", "main", None).await;
        add_number(&w.store, 2, "+16505550102", "main", None).await;
        let c = w
            .campaign(CampaignSpec {
                name: "retry".into(),
                max_attempts: 2,
                ..Default::default()
            })
            .await;
        w.sql(&format!(
            "UPDATE campaigns SET caller_pool = 'main' WHERE id = {c}"
        ))
        .await;
        w.add_uk_contacts(c, 1).await;
        w.run_to_idle(100).await;
        let from: Vec<Option<i64>> = w
            .journal()
            .iter()
            .filter(|e| e.placed)
            .map(|e| e.from_number_id)
            .collect();
        assert_eq!(from, vec![Some(1), Some(2)], "the retry reused the number");
    })
    .await
}

/// Due contacts by reason in a plan, as `plan --json` lists them.
fn planned_holds(p: &dialerd::cli::plan::Plan) -> BTreeMap<String, u64> {
    p.held
        .iter()
        .filter(|g| g.due_now)
        .map(|g| (g.reason.clone(), g.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_counts_what_the_pool_and_the_spend_cap_leave_as_the_sweep_does() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=100"], |_| {}).await;
        add_number(&w.store, 1, "+16505550101", "capped", Some(3)).await;
        add_number(&w.store, 2, "+16505550102", "capped", Some(3)).await;
        let c = pooled_campaign(&w, "capped", "capped").await;
        w.add_uk_contacts(c, 10).await;
        let p = dialerd::cli::plan::build(&w.store, &w.cfg, "capped")
            .await
            .unwrap();
        assert_eq!(p.callable_now, 6, "{p:?}");
        assert_eq!(planned_holds(&p).get("pool"), Some(&4), "{p:?}");
        w.sweep(c).await;
        w.settle_calls().await;
        assert_eq!(placed_per_caller(&w).values().sum::<usize>(), 6);
        assert_eq!(
            scalar(&w, "SELECT held_pool FROM campaign_progress").await,
            4
        );

        // A spend cap already reached: plan dials nobody and says why.
        w.engine.reconcile_once().await.unwrap();
        w.sql(&format!(
            "UPDATE campaigns SET max_cost = 0.0001 WHERE id = {c}"
        ))
        .await;
        let p = dialerd::cli::plan::build(&w.store, &w.cfg, "capped")
            .await
            .unwrap();
        assert_eq!(p.callable_now, 0, "{p:?}");
        let why = p.blocked.clone().unwrap_or_default();
        assert!(why.contains("spend cap reached"), "{why}");
    })
    .await
}
