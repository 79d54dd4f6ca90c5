//! The heartbeat worker: writes the daemon row's heartbeat and status line,
//! and pets the systemd watchdog unless this process is wedged (a scheduler
//! step that never ends, or connections that cannot write a writable
//! database), so that systemd restarts it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::{Outcome, Worker};
use crate::clock::SharedClock;
use crate::config::DaemonSettings;
use crate::engine::Engine;

/// Beats in a row on which the database was writable but the pool was not:
/// one can be a race with space coming and going, three are a wedge.
const WEDGED_BEATS: u32 = 3;

/// When the scheduler's current step began; `None` between steps. The
/// heartbeat reads it to tell a slow step from a wedged daemon.
#[derive(Debug, Default)]
pub struct Liveness {
    // A std Mutex: nothing awaits while it is held.
    scheduler_step: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl Liveness {
    /// Marks a scheduler step as started at `started`, or finished (`None`).
    pub fn step(&self, started: Option<DateTime<Utc>>) {
        *self
            .scheduler_step
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = started;
    }

    /// How long the unfinished scheduler step has run, if one has run longer
    /// than `limit` at `now`.
    pub fn stalled(&self, now: DateTime<Utc>, limit: Duration) -> Option<TimeDelta> {
        let started = (*self
            .scheduler_step
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        let ran = now - started;
        (ran.to_std().unwrap_or_default() > limit).then_some(ran)
    }
}

/// Writes the heartbeat and pets the watchdog.
#[derive(Debug)]
pub struct Heartbeat {
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: watch::Receiver<DaemonSettings>,
    liveness: Arc<Liveness>,
    /// Consecutive beats that found this process's connections wedged.
    wedged: u32,
}

impl Heartbeat {
    /// A heartbeat for `engine`, watching the scheduler through `liveness`.
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
            wedged: 0,
        }
    }

    /// Writes the heartbeat; when that fails, probes the database through a
    /// connection of its own. Returns whether the watchdog may be petted: yes
    /// when the write went through, or when the database itself cannot be
    /// written (the daemon waits for it by choice, dispatching nothing, and
    /// goes on by itself once it can); no when the database is writable and
    /// only this process's connections fail, which a restart cures.
    async fn beat(&self) -> bool {
        let engine = &self.engine;
        let written = engine.store().heartbeat(&engine.status_line()).await;
        let Err(error) = written else {
            engine.note_storage(Ok(()));
            return true;
        };
        match engine.store().probe_write().await {
            Err(probe) => {
                engine.note_storage(Err(probe.to_string()));
                true
            }
            Ok(()) => {
                tracing::error!(%error, "the database is writable, but this process's connections cannot write it; after three such heartbeats the watchdog is no longer petted, so systemd restarts dialerd");
                false
            }
        }
    }
}

impl Worker for Heartbeat {
    fn name(&self) -> &'static str {
        "heartbeat"
    }

    fn interval(&self) -> Duration {
        crate::ops::watchdog_interval(self.settings.borrow().heartbeat)
    }

    async fn step(&mut self) -> Outcome {
        self.wedged = if self.beat().await {
            0
        } else {
            self.wedged + 1
        };
        let mut pet = self.wedged < WEDGED_BEATS;
        if let Some(ran) = self
            .liveness
            .stalled(self.clock.now(), crate::ops::stall_limit())
        {
            tracing::error!(
                running_secs = ran.num_seconds(),
                "a scheduler step has not finished; the watchdog is no longer petted, so systemd restarts dialerd"
            );
            pet = false;
        }
        crate::ops::notify_status(&self.engine.status_line(), pet);
        Outcome::Idle
    }
}
