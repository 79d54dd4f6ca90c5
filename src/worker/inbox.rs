//! The inbox worker: one scan of `inbox.dir` a step, importing each settled
//! CSV file as a campaign (see [`InboxWatcher`]).

use std::time::Duration;

use tokio::sync::watch;

use super::{Outcome, Worker};
use crate::config::{CampaignDefaults, InboxSettings};
use crate::import::{InboxOutcome, InboxWatcher};
use crate::store::Store;

/// Imports CSV files dropped into the inbox.
#[derive(Debug)]
pub struct InboxWorker {
    store: Store,
    watcher: InboxWatcher,
    settings: watch::Receiver<InboxSettings>,
    defaults: watch::Receiver<CampaignDefaults>,
    /// The last scan error: one failing the same way every poll is logged
    /// once, not every two seconds.
    last_error: Option<String>,
}

impl InboxWorker {
    /// A worker for the configured inbox, or `None` when `inbox.dir` is not
    /// set. The directory and the settle time are read once: they take
    /// effect after a restart.
    pub fn new(
        store: Store,
        settings: watch::Receiver<InboxSettings>,
        defaults: watch::Receiver<CampaignDefaults>,
    ) -> Option<Self> {
        let (dir, settle) = {
            let s = settings.borrow();
            (s.dir.clone()?, s.settle)
        };
        tracing::info!(dir = %dir.display(), "watching the inbox for CSV campaigns");
        Some(Self {
            store,
            watcher: InboxWatcher::new(dir, settle),
            settings,
            defaults,
            last_error: None,
        })
    }

    fn report(outcome: InboxOutcome) {
        match outcome {
            InboxOutcome::Imported { file, report, .. } => {
                tracing::info!(file = %file.display(), summary = %report.summary(), "inbox file imported")
            }
            InboxOutcome::Failed { file, error, .. } => {
                tracing::error!(file = %file.display(), %error, "inbox file refused; moved to failed/")
            }
            InboxOutcome::Deferred { file, error } => {
                tracing::warn!(file = %file.display(), %error, "inbox file left for the next scan")
            }
        }
    }
}

impl Worker for InboxWorker {
    fn name(&self) -> &'static str {
        "inbox"
    }

    fn interval(&self) -> Duration {
        self.settings.borrow().poll_interval
    }

    async fn step(&mut self) -> Outcome {
        let defaults = self.defaults.borrow().clone();
        match self.watcher.scan_once(&self.store, &defaults).await {
            Ok(outcomes) => {
                if self.last_error.take().is_some() {
                    tracing::info!("the inbox can be scanned again");
                }
                outcomes.into_iter().for_each(Self::report);
            }
            Err(e) => {
                let error = format!("{e:#}");
                if self.last_error.as_deref() != Some(error.as_str()) {
                    tracing::error!(%error, "cannot scan the inbox; retrying every poll, logged again if the error changes");
                    self.last_error = Some(error);
                }
            }
        }
        Outcome::Idle
    }
}
