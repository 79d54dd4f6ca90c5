//! The webhook [`Deliverer`] as a worker: its own step already reports
//! whether it sent, found nothing, or waits for a retry.

use std::time::Duration;

use super::{Outcome, Worker};
use crate::webhooks::{Deliverer, Step};

impl Worker for Deliverer {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    fn interval(&self) -> Duration {
        self.settings().poll_interval
    }

    /// All of a delivery's state is in the database: a step cut short sends
    /// again, with the same delivery id, after the restart.
    fn abandon_on_stop(&self) -> bool {
        true
    }

    async fn step(&mut self) -> Outcome {
        match Deliverer::step(self).await {
            Ok(Step::Worked(_)) => Outcome::Worked,
            Ok(Step::Idle) => Outcome::Idle,
            // New events may come in meanwhile: the interval caps the wait.
            Ok(Step::Backoff(d)) => Outcome::Backoff(d),
            Err(e) => {
                tracing::warn!(error = %e, "webhook step failed; will retry");
                Outcome::Idle
            }
        }
    }
}
