//! The scheduler: each active campaign's cron schedule (in its own time zone)
//! starts a sweep at every fire time. The next fire time lives in the
//! campaign row (`next_sweep_at`), so a restart neither loses nor repeats a
//! fire, and a fire missed while the daemon was down runs once at start-up:
//! harmless, since a sweep only dispatches what is due.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Engine;
use crate::domain::CampaignStatus;
use crate::store::Campaign;

impl Engine {
    /// One scheduler step at the clock's now: starts a sweep (as its own task)
    /// for every active campaign whose fire time has come and that has no sweep
    /// running, records its next fire time, and returns the campaigns started
    /// and the earliest next fire time of all.
    pub async fn tick(self: &Arc<Self>) -> anyhow::Result<(Vec<i64>, Option<DateTime<Utc>>)> {
        let now = self.clock.now();
        let mut started = Vec::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        if self.stopping() {
            return Ok((started, None));
        }
        // A call whose result cannot be recorded must not be placed.
        if self.storage_fault().is_some() {
            return Ok((started, None));
        }
        if self.store.dispatch_paused().await?.is_some() {
            return Ok((started, None));
        }
        // An operator cleared the pause (`dialerd dispatch resume`).
        if self
            .auth_paused
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            tracing::info!("dispatching resumed");
        }
        for id in self.store.reopen_campaigns_with_work().await? {
            tracing::info!(
                campaign_id = id,
                "completed campaign has new contacts; active again"
            );
        }
        for c in self.store.campaigns().await? {
            if c.status() != CampaignStatus::Active {
                continue;
            }
            let Some(rules) = self.rules_or_pause(&c).await? else {
                continue;
            };
            let due_at = c
                .next_sweep_at
                .as_deref()
                .and_then(crate::clock::from_db_text);
            let next_after_now = rules.schedule.next_after(now, rules.timezone);
            match due_at {
                // A new campaign (or one whose schedule changed): wait for its first fire.
                None => self.store.record_next_sweep(c.id, next_after_now).await?,
                Some(t) if t <= now => {
                    if self.start_sweep(c.clone()) {
                        self.store.record_sweep(c.id, next_after_now).await?;
                        started.push(c.id);
                    }
                }
                // The schedule was changed to fire sooner than the stored time.
                Some(t) if next_after_now.is_some_and(|n| n < t) => {
                    self.store.record_next_sweep(c.id, next_after_now).await?;
                }
                Some(_) => {}
            }
            let next = match due_at {
                Some(t) if t > now => Some(next_after_now.map_or(t, |n| n.min(t))),
                _ => next_after_now,
            };
            earliest = match (earliest, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok((started, earliest))
    }

    /// Spawns a sweep of `c` unless one is running; true when it started.
    fn start_sweep(self: &Arc<Self>, c: Campaign) -> bool {
        let Some(done) = self.sweep_token() else {
            return false;
        };
        {
            let mut running = self.sweeping.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(c.id) {
                tracing::debug!(campaign = %c.name, "previous sweep still running; this fire is skipped");
                return false;
            }
        }
        let engine = self.clone();
        tokio::spawn(async move {
            // Removed from `sweeping` even if the sweep panics, so a bug hit
            // by one contact cannot stop every later fire of the campaign.
            let _running = Sweeping {
                engine: engine.clone(),
                campaign_id: c.id,
                _done: done,
            };
            let result = engine.sweep_campaign(&c).await;
            match result {
                Ok(r) if r.dispatched > 0 || r.deferred > 0 => {
                    tracing::info!(campaign = %c.name, ?r, "sweep finished")
                }
                Ok(_) => tracing::debug!(campaign = %c.name, "sweep found nothing due"),
                Err(e) => {
                    tracing::error!(campaign = %c.name, error = %format!("{e:#}"), "sweep failed")
                }
            }
        });
        true
    }
}

/// Marks a campaign's sweep as running until dropped; dropping it also
/// drops the sweep's completion sender (see [`Engine::sweeps_finished`]).
struct Sweeping {
    engine: Arc<Engine>,
    campaign_id: i64,
    _done: tokio::sync::mpsc::Sender<()>,
}

impl Drop for Sweeping {
    fn drop(&mut self) {
        self.engine
            .sweeping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.campaign_id);
    }
}
