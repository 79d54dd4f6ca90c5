//! The daemon's workers under their one loop, on the manual clock: the
//! scheduler sleeps exactly until the next fire time, not a poll interval.

use std::sync::Arc;
use std::time::Duration;

use dialerd::config::DaemonSettings;
use dialerd::worker::{Liveness, Scheduler, run_until_stopped};
use tokio::sync::watch;

use crate::harness::world::*;

/// Yields until `cond` holds for the campaign row, under a real-time deadline.
async fn until_row(w: &World, id: i64, cond: impl Fn(&dialerd::store::Campaign) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if cond(&w.campaign_row(id).await) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the campaign row never changed"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn the_scheduler_worker_sleeps_until_the_next_fire_time_on_the_clock_and_then_sweeps() {
    within(async {
        let w = World::manual_at(at("2026-11-25T08:00:30Z"), &[], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                schedule: "0 */5 * * * *".into(),
                ..Default::default()
            })
            .await;
        // A refresh far longer than the wait: only the fire time can wake it.
        let (_settings_tx, settings) = watch::channel(DaemonSettings {
            shutdown_grace: Duration::from_secs(20),
            heartbeat: Duration::from_secs(5),
            campaign_refresh: Duration::from_secs(3600),
        });
        let (stop_tx, stop) = watch::channel(false);
        let clock = w.clock.shared();
        let scheduler = Scheduler::new(
            w.engine.clone(),
            clock.clone(),
            settings,
            Arc::new(Liveness::default()),
        );
        let task = tokio::spawn(run_until_stopped(scheduler, clock, stop));
        until_row(&w, c, |r| {
            r.next_sweep_at.as_deref() == Some("2026-11-25T08:05:00Z")
        })
        .await;
        w.clock.manual().advance(Duration::from_secs(269));
        for _ in 0..200 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            w.campaign_row(c).await.last_sweep_at,
            None,
            "swept before its fire time"
        );
        w.clock.manual().advance(Duration::from_secs(1));
        until_row(&w, c, |r| {
            r.last_sweep_at.as_deref() == Some("2026-11-25T08:05:00Z")
                && r.next_sweep_at.as_deref() == Some("2026-11-25T08:10:00Z")
        })
        .await;
        stop_tx.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the scheduler's loop ends at the stop signal")
            .unwrap();
    })
    .await
}
