//! The reconciler worker: one [`Engine::reconcile_once`] round a step, every
//! `reconcile.poll_interval_secs`. A round already pages through everything
//! new, so it is never repeated at once: the API's rate is shared with dispatch.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Outcome, Worker};
use crate::config::ReconcileSettings;
use crate::engine::Engine;

/// Reads call logs back into the database.
#[derive(Debug)]
pub struct ReconcileWorker {
    engine: Arc<Engine>,
    settings: watch::Receiver<ReconcileSettings>,
}

impl ReconcileWorker {
    /// A worker reconciling through `engine`'s [`Reconciler`](crate::engine::Reconciler).
    pub fn new(engine: Arc<Engine>, settings: watch::Receiver<ReconcileSettings>) -> Self {
        Self { engine, settings }
    }
}

impl Worker for ReconcileWorker {
    fn name(&self) -> &'static str {
        "reconciler"
    }

    fn interval(&self) -> Duration {
        self.settings.borrow().poll_interval
    }

    async fn step(&mut self) -> Outcome {
        match self.engine.reconcile_once().await {
            Ok(r) if r.finalised + r.linked + r.not_placed + r.timed_out > 0 => {
                tracing::info!(?r, "reconciled")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reconcile round failed; will retry")
            }
        }
        Outcome::Idle
    }
}
