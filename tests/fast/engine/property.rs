//! The never-dial-twice rule as a property: whatever the faults, and wherever
//! the engine crashes (a sweep or a reconcile round cut off mid-request), a
//! restart on the same database and the same API never calls a contact more
//! often than planned, and every call placed is known to the database.

use std::time::Duration;

use proptest::prelude::*;

use crate::harness::world::*;

impl World {
    async fn attempts_sending(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE state = 'sending'")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }
}

const CONTACTS: usize = 8;
const MAX_ATTEMPTS: u32 = 2;

/// Steps the engine `steps` times (sweep, reconcile, sweep, ...), crashes it
/// in the middle of the next step, restarts it, and runs on to the end.
async fn crash_and_recover(seed: u64, faults: [f64; 6], steps: usize, in_sweep: bool, cut_ms: u64) {
    let names = [
        "--fault-429",
        "--fault-500",
        "--fault-500-placed",
        "--fault-timeout",
        "--fault-drop",
        "--fault-garbage",
    ];
    let seed = seed.to_string();
    let values: Vec<String> = faults.iter().map(|p| format!("{p:.3}")).collect();
    let mut args = vec![
        "--seed",
        seed.as_str(),
        "--latency-ms",
        "8",
        "--call-secs",
        "0.02-0.08",
        "--outcomes",
        "completed=40,no_answer=30,busy=30",
    ];
    for (name, value) in names.iter().zip(&values) {
        args.extend([*name, value.as_str()]);
    }
    let mut w = World::manual_now(&args, |_| {}).await;
    let c = w
        .campaign(CampaignSpec {
            max_attempts: MAX_ATTEMPTS,
            retry_delay_secs: 1,
            ..Default::default()
        })
        .await;
    w.add_uk_contacts(c, CONTACTS).await;

    for step in 0..steps {
        if step % 2 == 0 {
            w.sweep_all().await;
            w.settle_calls().await;
        } else {
            w.engine.reconcile_once().await.unwrap();
            w.advance_when_nothing_is_due().await;
        }
    }
    // The crash: a sweep is cut off `cut_ms` after it committed its first
    // `sending` attempt (the simulator answers after 8 ms, so requests are
    // on the wire), or a reconcile round `cut_ms` after it started.
    let cut = Duration::from_millis(cut_ms);
    if in_sweep {
        let sweep = w.sweep_all();
        tokio::pin!(sweep);
        let mut deadline = None;
        loop {
            tokio::select! {
                _ = &mut sweep => break,
                _ = tokio::time::sleep(Duration::from_micros(300)) => {
                    let now = std::time::Instant::now();
                    if deadline.is_none() && w.attempts_sending().await > 0 {
                        deadline = Some(now + cut);
                    }
                    if deadline.is_some_and(|d| now >= d) {
                        break;
                    }
                }
            }
        }
    } else {
        let _ = tokio::time::timeout(cut, w.engine.reconcile_once()).await;
    }
    w.restart().await;
    w.run_to_idle(300).await;

    w.assert_every_contact_ends_in(&["done", "exhausted"]).await;
    w.assert_every_placed_call_is_known_once(MAX_ATTEMPTS as usize)
        .await;
    assert!(
        w.attempts()
            .await
            .iter()
            .all(|a| a.state != "sending" && a.state != "uncertain")
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_crash_at_any_point_never_makes_the_engine_call_a_contact_more_than_planned(
        seed in 0u64..100_000,
        faults in prop::array::uniform6(0.0f64..=0.5),
        steps in 0usize..6,
        in_sweep in prop::bool::weighted(0.75),
        cut_ms in 0u64..10,
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(within(crash_and_recover(seed, faults, steps, in_sweep, cut_ms)));
    }
}
