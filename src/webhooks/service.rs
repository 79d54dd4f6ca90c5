//! The daemon's side of webhooks: at start and on every reload the
//! subscription list the triggers read is rewritten from the configuration
//! (emptied when webhooks are off) and the [`Deliverer`] is (re)started in a
//! task of its own.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Deliverer, WebhookSettings};
use crate::clock::SharedClock;
use crate::store::Store;

/// The running webhook worker, if webhooks are on.
#[derive(Debug)]
pub struct WebhookService {
    store: Store,
    clock: SharedClock,
    stop: watch::Receiver<bool>,
    task: Option<JoinHandle<()>>,
}

impl WebhookService {
    /// Applies `settings` (see [`WebhookService::apply`]); the worker stops
    /// when `stop` turns true.
    pub async fn start(
        store: Store,
        clock: SharedClock,
        settings: Option<&WebhookSettings>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let mut service = Self {
            store,
            clock,
            stop,
            task: None,
        };
        service.apply(settings).await?;
        Ok(service)
    }

    /// Subscribes the triggers to exactly the configured events (none when
    /// webhooks are off) and replaces the worker. A worker stopped in the
    /// middle of a request leaves its event undelivered: the next one sends it.
    pub async fn apply(&mut self, settings: Option<&WebhookSettings>) -> anyhow::Result<()> {
        let events: Vec<&str> = settings.map(|s| s.events.clone()).unwrap_or_default();
        self.store.webhook_set_subscriptions(&events).await?;
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(s) = settings {
            let deliverer = Deliverer::new(self.store.clone(), self.clock.clone(), s.clone())?;
            self.task = Some(tokio::spawn(deliverer.run(self.stop.clone())));
        } else {
            let left = self.store.webhook_summary().await?;
            if left.pending + left.retrying > 0 {
                tracing::warn!(
                    undelivered = left.pending + left.retrying,
                    "webhooks are off (no webhooks.url) but events are still undelivered; \
                     they are kept and sent once webhooks are on again"
                );
            }
        }
        Ok(())
    }

    /// Waits (up to `grace`) for the worker to notice the stop signal.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

/// Events the daemon must still try to deliver (for `run --until-idle`):
/// none when webhooks are off, else those within `webhooks.max_age_secs`.
pub async fn waiting(
    store: &Store,
    settings: Option<&WebhookSettings>,
    clock: &SharedClock,
) -> sqlx::Result<i64> {
    let Some(s) = settings else { return Ok(0) };
    let age = chrono::Duration::from_std(s.max_age).unwrap_or(chrono::TimeDelta::MAX);
    store
        .webhook_waiting(crate::clock::minus(clock.now(), age))
        .await
}
