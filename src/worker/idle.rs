//! `run --until-idle`: asks the daemon to stop once every contact is final,
//! no call is outstanding, no sweep or request is running and no webhook
//! event is left to deliver.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Outcome, Worker};
use crate::clock::SharedClock;
use crate::engine::Engine;
use crate::webhooks::WebhookSettings;

/// How often the idle check runs.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Stops the daemon once nothing is left to do.
#[derive(Debug)]
pub struct IdleWatch {
    engine: Arc<Engine>,
    clock: SharedClock,
    webhooks: watch::Receiver<Option<WebhookSettings>>,
    stop: watch::Sender<bool>,
    /// The first check waits a period, like every later one: work imported
    /// just before the start has a moment to be seen.
    started: bool,
}

impl IdleWatch {
    /// A watch that sends `true` on `stop` when `engine` has nothing left to do.
    pub fn new(
        engine: Arc<Engine>,
        clock: SharedClock,
        webhooks: watch::Receiver<Option<WebhookSettings>>,
        stop: watch::Sender<bool>,
    ) -> Self {
        Self {
            engine,
            clock,
            webhooks,
            stop,
            started: false,
        }
    }

    /// Whether anything is left to do; errors count as "yes" (checked again).
    async fn busy(&self) -> bool {
        let engine = &self.engine;
        if engine.sweeps_running() > 0 || engine.requests_in_flight() > 0 {
            return true;
        }
        match engine.store().has_open_work().await {
            Ok(false) => {}
            Ok(true) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check for open work");
                return true;
            }
        }
        let hooks = self.webhooks.borrow().clone();
        match crate::webhooks::waiting(engine.store(), hooks.as_ref(), &self.clock).await {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check for undelivered webhook events");
                true
            }
        }
    }
}

impl Worker for IdleWatch {
    fn name(&self) -> &'static str {
        "idle watch"
    }

    fn interval(&self) -> Duration {
        CHECK_EVERY
    }

    async fn step(&mut self) -> Outcome {
        if !std::mem::replace(&mut self.started, true) || self.busy().await {
            return Outcome::Idle;
        }
        tracing::info!("nothing left to do: every contact is final and no call is outstanding");
        self.stop.send_replace(true);
        Outcome::Idle
    }
}
