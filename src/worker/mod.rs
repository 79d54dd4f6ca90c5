//! The daemon's background workers, one struct per activity, each owning its
//! state and exposing a single [`Worker::step`]; [`run_until_stopped`] is the
//! one loop around all of them and owns the sleep (on the clock abstraction,
//! so tests drive it with a manual clock) and the shutdown signal.
//!
//! - [`Scheduler`]: starts each campaign's sweeps on its cron schedule (the
//!   sweeps dispatch through the engine's rate-limited pool).
//! - [`ReconcileWorker`]: reads call logs back into the database.
//! - [`InboxWorker`]: imports CSV files dropped into `inbox.dir`.
//! - [`Heartbeat`]: writes the heartbeat and pets (or stops petting) the
//!   systemd watchdog.
//! - [`IdleWatch`]: ends `run --until-idle` once nothing is left to do.
//! - the webhook [`Deliverer`](crate::webhooks::Deliverer), run by the
//!   webhook service.
//!
//! Each worker reads its own typed section of the configuration through a
//! [`SettingsFeed`] receiver, so a reload reaches it at its next step.

mod heartbeat;
mod idle;
mod inbox;
mod reconcile;
mod scheduler;
mod settings;
mod webhooks;

use std::time::Duration;

use tokio::sync::watch;

use crate::clock::SharedClock;

pub use heartbeat::{Heartbeat, Liveness};
pub use idle::IdleWatch;
pub use inbox::InboxWorker;
pub use reconcile::ReconcileWorker;
pub use scheduler::Scheduler;
pub use settings::SettingsFeed;

/// What one step did, which decides how long the loop waits before the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Work was done and more may be waiting: step again at once.
    Worked,
    /// Nothing (more) to do: wait the worker's interval.
    Idle,
    /// Wait this long (capped at the worker's interval, so new work and a
    /// reloaded interval are still seen in time).
    Backoff(Duration),
}

/// One background activity of the daemon.
pub trait Worker: Send + 'static {
    /// The worker's name, for logs.
    fn name(&self) -> &'static str;

    /// The longest wait between two steps; read after every step, so a
    /// reloaded configuration applies from the next wait on.
    fn interval(&self) -> Duration;

    /// Whether a step in progress may be dropped when the daemon stops.
    /// Only for workers whose every step is safe to cut anywhere (what it
    /// had not recorded is redone after the restart).
    fn abandon_on_stop(&self) -> bool {
        false
    }

    /// Does one round of the worker's job. Errors are the worker's to log
    /// (it knows what they mean for an operator); it then returns the wait
    /// it wants before trying again.
    fn step(&mut self) -> impl Future<Output = Outcome> + Send;
}

/// How long to wait after a step that ended in `outcome`.
pub fn wait_after(outcome: Outcome, interval: Duration) -> Duration {
    match outcome {
        Outcome::Worked => Duration::ZERO,
        Outcome::Idle => interval,
        Outcome::Backoff(d) => d.min(interval),
    }
}

/// Steps `worker` until `stop` turns true, sleeping on `clock` between
/// steps as each [`Outcome`] asks. Returns when stopped: the task that runs
/// it finishing is how the daemon learns the worker is done.
pub async fn run_until_stopped<W: Worker>(
    mut worker: W,
    clock: SharedClock,
    mut stop: watch::Receiver<bool>,
) {
    tracing::debug!(worker = worker.name(), "worker started");
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = if worker.abandon_on_stop() {
            tokio::select! {
                o = worker.step() => o,
                _ = stop.wait_for(|s| *s) => break,
            }
        } else {
            worker.step().await
        };
        let wait = wait_after(outcome, worker.interval());
        if wait.is_zero() {
            // Let other tasks (and the stop signal) in between busy steps.
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = clock.sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    tracing::debug!(worker = worker.name(), "worker stopped");
}

#[cfg(test)]
mod tests;
