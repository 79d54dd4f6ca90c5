//! The reads of the dial-time check, batched: every try about to be sent
//! asks for its attempt's state as of now, and one task answers whatever
//! has queued up with one statement, so the check costs one read per batch
//! of tries rather than one per try, and never answers from a snapshot
//! older than the question.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::SharedClock;
use crate::store::{Campaign, CampaignRules, DialState, Store};

/// Most attempts read in one statement.
const MAX_BATCH: usize = 256;

/// Times the reader yields to other tasks before a read, gathering the
/// questions they ask meanwhile (microseconds, not a timer).
const COALESCE_YIELDS: usize = 2;

type Job = (i64, oneshot::Sender<Result<Option<DialState>, String>>);

/// A handle on the reading task.
#[derive(Debug, Clone)]
pub(crate) struct DialReader {
    tx: mpsc::UnboundedSender<Job>,
}

impl DialReader {
    /// Starts the reading task.
    pub(crate) fn spawn(store: Store, clock: SharedClock) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, clock, rx));
        Self { tx }
    }

    /// The state of attempt `attempt_id`, read after this call began;
    /// `None` when the attempt is gone.
    pub(crate) async fn read(&self, attempt_id: i64) -> anyhow::Result<Option<DialState>> {
        let (ack, answer) = oneshot::channel();
        self.tx
            .send((attempt_id, ack))
            .map_err(|_| anyhow::anyhow!("the dial-time reader has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the dial-time reader has stopped"))?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

async fn run(store: Store, clock: SharedClock, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Each read is a round trip to SQLite's thread; let the tries that
        // are about to ask (the rest of a claimed batch) join this one.
        for _ in 0..COALESCE_YIELDS {
            tokio::task::yield_now().await;
            if jobs.len() < MAX_BATCH {
                while let Ok(job) = rx.try_recv() {
                    jobs.push(job);
                    if jobs.len() >= MAX_BATCH {
                        break;
                    }
                }
            }
        }
        let ids: Vec<i64> = jobs.iter().map(|(id, _)| *id).collect();
        match store.dial_states(&ids, clock.now()).await {
            Ok(mut states) => {
                for (id, ack) in jobs.drain(..) {
                    let _ = ack.send(Ok(states.remove(&id)));
                }
            }
            Err(e) => {
                let e = e.to_string();
                for (_, ack) in jobs.drain(..) {
                    let _ = ack.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Campaign rules parsed once per version of the campaign's rule columns
/// (and of the per-number cap), so a try does not parse a cron expression.
#[derive(Debug, Default)]
pub(crate) struct RulesCache {
    // A std Mutex: nothing awaits while it is held.
    map: Mutex<HashMap<i64, (String, Arc<CampaignRules>)>>,
}

impl RulesCache {
    /// The rules of the campaign in `state`, with the cap `cap`; `Err` with
    /// the reason when its settings cannot be read.
    pub(crate) async fn get(
        &self,
        store: &Store,
        state: &DialState,
        cap: u32,
    ) -> anyhow::Result<Result<Arc<CampaignRules>, String>> {
        if let Some(rules) = self.cached(state, cap) {
            return Ok(Ok(rules));
        }
        let Some(row): Option<Campaign> = store.campaign(state.campaign_id).await? else {
            return Ok(Err("the campaign is gone".into()));
        };
        let mut rules = match row.rules() {
            Ok(r) => r,
            Err(reason) => return Ok(Err(reason)),
        };
        rules.max_calls_per_number_per_day = cap;
        let rules = Arc::new(rules);
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(state.campaign_id, (state.rules_key.clone(), rules.clone()));
        Ok(Ok(rules))
    }

    fn cached(&self, state: &DialState, cap: u32) -> Option<Arc<CampaignRules>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&state.campaign_id)
            .filter(|(key, r)| *key == state.rules_key && r.max_calls_per_number_per_day == cap)
            .map(|(_, r)| r.clone())
    }
}
