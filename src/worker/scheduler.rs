//! The scheduler worker: one [`Engine::tick`] a step, which starts the sweeps
//! whose cron time has come; it sleeps until the earliest next fire time, or
//! `daemon.campaign_refresh_secs` at most (a new or changed campaign is seen
//! within that).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Liveness, Outcome, Worker};
use crate::clock::SharedClock;
use crate::config::DaemonSettings;
use crate::engine::Engine;

/// Starts sweeps on each campaign's schedule.
#[derive(Debug)]
pub struct Scheduler {
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: watch::Receiver<DaemonSettings>,
    liveness: Arc<Liveness>,
}

impl Scheduler {
    /// A scheduler over `engine`; it marks each step in `liveness` so the
    /// heartbeat can tell a slow step from a wedged one.
    pub fn new(
        engine: Arc<Engine>,
        clock: SharedClock,
        settings: watch::Receiver<DaemonSettings>,
        liveness: Arc<Liveness>,
    ) -> Self {
        Self {
            engine,
            clock,
            settings,
            liveness,
        }
    }
}

impl Worker for Scheduler {
    fn name(&self) -> &'static str {
        "scheduler"
    }

    fn interval(&self) -> Duration {
        self.settings.borrow().campaign_refresh
    }

    async fn step(&mut self) -> Outcome {
        self.liveness.step(Some(self.clock.now()));
        let ticked = self.engine.tick().await;
        self.liveness.step(None);
        match ticked {
            Ok((_, Some(next))) => {
                Outcome::Backoff((next - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
            }
            Ok((_, None)) => Outcome::Idle,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "scheduler step failed");
                Outcome::Idle
            }
        }
    }
}
