use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use tokio::sync::{Notify, watch};

use super::*;
use crate::clock::ManualClock;

/// A worker that counts its steps and answers with a scripted outcome.
#[derive(Debug)]
struct Counting {
    steps: Arc<AtomicUsize>,
    outcome: Outcome,
    /// Steps after the first this many answer `Idle`.
    busy_steps: usize,
    interval: Duration,
    /// When set, each step waits for it (a step "in progress").
    hold: Option<Arc<Notify>>,
    abandon: bool,
}

impl Counting {
    fn new(outcome: Outcome, interval: Duration) -> (Self, Arc<AtomicUsize>) {
        let steps = Arc::new(AtomicUsize::new(0));
        let w = Self {
            steps: steps.clone(),
            outcome,
            busy_steps: usize::MAX,
            interval,
            hold: None,
            abandon: false,
        };
        (w, steps)
    }
}

impl Worker for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn abandon_on_stop(&self) -> bool {
        self.abandon
    }

    async fn step(&mut self) -> Outcome {
        if let Some(hold) = &self.hold {
            hold.notified().await;
        }
        let n = self.steps.fetch_add(1, Ordering::SeqCst);
        if n < self.busy_steps {
            self.outcome
        } else {
            Outcome::Idle
        }
    }
}

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap())
}

/// Yields until `cond` holds, failing after a generous real-time deadline.
async fn until(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition never held"
        );
        tokio::task::yield_now().await;
    }
}

/// Yields enough for a woken task to run its next step if it were due.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn the_wait_after_a_step_follows_its_outcome_and_never_exceeds_the_interval() {
    let every = Duration::from_secs(30);
    assert_eq!(wait_after(Outcome::Worked, every), Duration::ZERO);
    assert_eq!(wait_after(Outcome::Idle, every), every);
    assert_eq!(
        wait_after(Outcome::Backoff(Duration::from_secs(5)), every),
        Duration::from_secs(5)
    );
    assert_eq!(
        wait_after(Outcome::Backoff(Duration::from_secs(3600)), every),
        every
    );
}

#[tokio::test]
async fn an_idle_worker_steps_again_only_when_the_clock_passes_its_interval() {
    let clock = clock();
    let (stop_tx, stop) = watch::channel(false);
    let (worker, steps) = Counting::new(Outcome::Idle, Duration::from_secs(60));
    let task = tokio::spawn(run_until_stopped(worker, Arc::new(clock.clone()), stop));
    until(|| steps.load(Ordering::SeqCst) == 1).await;
    clock.advance(Duration::from_secs(59));
    settle().await;
    assert_eq!(steps.load(Ordering::SeqCst), 1, "woke before its interval");
    clock.advance(Duration::from_secs(1));
    until(|| steps.load(Ordering::SeqCst) == 2).await;
    stop_tx.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop ends at the stop signal")
        .unwrap();
}

#[tokio::test]
async fn a_worker_that_worked_steps_again_without_waiting_for_the_clock() {
    let clock = clock();
    let (_stop_tx, stop) = watch::channel(false);
    let (mut worker, steps) = Counting::new(Outcome::Worked, Duration::from_secs(3600));
    worker.busy_steps = 3;
    tokio::spawn(run_until_stopped(worker, Arc::new(clock.clone()), stop));
    // Three busy steps, then the idle one, all at the same instant.
    until(|| steps.load(Ordering::SeqCst) == 4).await;
    settle().await;
    assert_eq!(steps.load(Ordering::SeqCst), 4, "stepped on while idle");
}

#[tokio::test]
async fn a_backoff_shorter_than_the_interval_is_the_wait() {
    let clock = clock();
    let (_stop_tx, stop) = watch::channel(false);
    let (mut worker, steps) = Counting::new(
        Outcome::Backoff(Duration::from_secs(10)),
        Duration::from_secs(60),
    );
    worker.busy_steps = 1;
    tokio::spawn(run_until_stopped(worker, Arc::new(clock.clone()), stop));
    until(|| steps.load(Ordering::SeqCst) == 1).await;
    clock.advance(Duration::from_secs(10));
    until(|| steps.load(Ordering::SeqCst) == 2).await;
}

#[tokio::test]
async fn a_step_in_progress_finishes_before_the_loop_stops_unless_it_may_be_abandoned() {
    for abandon in [false, true] {
        let clock = clock();
        let (stop_tx, stop) = watch::channel(false);
        let (mut worker, steps) = Counting::new(Outcome::Idle, Duration::from_secs(60));
        let hold = Arc::new(Notify::new());
        worker.hold = Some(hold.clone());
        worker.abandon = abandon;
        let task = tokio::spawn(run_until_stopped(worker, Arc::new(clock), stop));
        settle().await;
        stop_tx.send_replace(true);
        settle().await;
        assert_eq!(task.is_finished(), abandon, "abandon_on_stop = {abandon}");
        hold.notify_one();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the loop ends once the step is done")
            .unwrap();
        let expected = usize::from(!abandon);
        assert_eq!(steps.load(Ordering::SeqCst), expected);
    }
}

#[test]
fn a_scheduler_step_counts_as_stalled_only_past_the_limit_and_only_while_unfinished() {
    let live = Liveness::default();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let limit = Duration::from_secs(15);
    assert_eq!(live.stalled(t0, limit), None, "no step running");
    live.step(Some(t0));
    assert_eq!(
        live.stalled(t0 + chrono::Duration::seconds(15), limit),
        None
    );
    assert_eq!(
        live.stalled(t0 + chrono::Duration::seconds(16), limit),
        Some(chrono::Duration::seconds(16))
    );
    live.step(None);
    assert_eq!(
        live.stalled(t0 + chrono::Duration::seconds(60), limit),
        None
    );
}

#[test]
fn a_reload_reaches_every_workers_section_through_the_feed() {
    let load = |vars: &[(&str, &str)]| {
        let env = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crate::config::Settings::load_with_env(None, &env).unwrap()
    };
    let feed = SettingsFeed::new(&load(&[]));
    let (daemon, reconcile, inbox) = (feed.daemon(), feed.reconcile(), feed.inbox());
    assert_eq!(daemon.borrow().campaign_refresh, Duration::from_secs(2));
    feed.publish(&load(&[
        ("DIALERD_DAEMON__CAMPAIGN_REFRESH_SECS", "0.5"),
        ("DIALERD_RECONCILE__POLL_INTERVAL_SECS", "7"),
        ("DIALERD_INBOX__POLL_INTERVAL_SECS", "3"),
    ]));
    assert_eq!(daemon.borrow().campaign_refresh, Duration::from_millis(500));
    assert_eq!(reconcile.borrow().poll_interval, Duration::from_secs(7));
    assert_eq!(inbox.borrow().poll_interval, Duration::from_secs(3));
}
