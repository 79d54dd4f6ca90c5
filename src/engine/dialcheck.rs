//! The reads of the dial-time check, batched: every try about to be sent
//! asks for its attempt's state as of now, and one task answers whatever
//! has queued up, so the check costs one read per batch of tries rather
//! than one per try, and never answers from a snapshot older than the
//! question.
//!
//! The read comes in two parts. First the dial guard (migration 12): its
//! stamp, and which of the attempts are still `sending` (with their contact
//! and number). A try whose claim saw the same stamp, and whose attempt is
//! still `sending` as claimed, is answered [`DialRead::Unchanged`]: nothing
//! the check reads has changed since the claim read it in its transaction.
//! The others
//! get the whole state ([`crate::store::Store::dial_states`]), read after
//! the guard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::clock::SharedClock;
use crate::store::{CampaignRules, DialState, GuardFacts, GuardReading, Store};

/// Most attempts read in one statement.
const MAX_BATCH: usize = 256;

/// Times the reader yields to other tasks before a read, gathering the
/// questions they ask meanwhile (microseconds, not a timer).
const COALESCE_YIELDS: usize = 2;

/// What the reader answers a try.
#[derive(Debug)]
pub(crate) enum DialRead {
    /// The attempt is still `sending` and the dial guard has not moved
    /// since its claim: the claim's reading of the contact, the campaign
    /// and the DNC list still holds.
    Unchanged,
    /// The state read now; `None` when the attempt (or its contact) is gone.
    State(Option<Box<DialState>>),
}

/// What a claim left of an attempt, for the guard: the stamp, and the
/// attempt's and its contact's facts.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub stamp: i64,
    pub facts: GuardFacts,
}

/// An attempt, what its claim saw (`None`: read the whole state), and
/// where to answer.
type Job = (i64, Option<Seen>, oneshot::Sender<Result<DialRead, String>>);

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

    /// The state of attempt `attempt_id`, read after this call began:
    /// [`DialRead::Unchanged`] when `guard` (what its claim saw) still
    /// holds: the dial guard's stamp is the same, and the attempt still
    /// `sending`, of the same contact and to the same number.
    pub(crate) async fn read(
        &self,
        attempt_id: i64,
        guard: Option<Seen>,
    ) -> anyhow::Result<DialRead> {
        let (ack, answer) = oneshot::channel();
        self.tx
            .send((attempt_id, guard, ack))
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
        answer(&store, &clock, &mut jobs).await;
    }
}

/// Answers `jobs` (and empties it): the guard first, then the whole state
/// of the attempts it does not vouch for.
async fn answer(store: &Store, clock: &SharedClock, jobs: &mut Vec<Job>) {
    let guarded: Vec<i64> = jobs
        .iter()
        .filter(|(_, guard, _)| guard.is_some())
        .map(|(id, _, _)| *id)
        .collect();
    let reading = if guarded.is_empty() {
        Ok(GuardReading::default())
    } else {
        store.dial_guard(&guarded).await
    };
    let reading = match reading {
        Ok(r) => r,
        Err(e) => return fail(jobs, &e),
    };
    let mut rest = Vec::with_capacity(jobs.len());
    for (id, guard, ack) in jobs.drain(..) {
        let unchanged = guard
            .as_ref()
            .is_some_and(|g| reading.unchanged_as(id, Some(g.stamp), &g.facts));
        if unchanged {
            let _ = ack.send(Ok(DialRead::Unchanged));
        } else {
            rest.push((id, guard, ack));
        }
    }
    if rest.is_empty() {
        return;
    }
    let ids: Vec<i64> = rest.iter().map(|(id, _, _)| *id).collect();
    match store.dial_states(&ids, clock.now()).await {
        Ok(mut states) => {
            for (id, _, ack) in rest {
                let _ = ack.send(Ok(DialRead::State(states.remove(&id).map(Box::new))));
            }
        }
        Err(e) => fail(&mut rest, &e),
    }
}

/// Answers every job with the error.
fn fail(jobs: &mut Vec<Job>, e: &sqlx::Error) {
    let e = e.to_string();
    for (_, _, ack) in jobs.drain(..) {
        let _ = ack.send(Err(e.clone()));
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
        let Some((row, key)) = store.campaign_with_rules_key(state.campaign_id).await? else {
            return Ok(Err("the campaign is gone".into()));
        };
        let mut rules = match row.rules() {
            Ok(r) => r,
            Err(reason) => return Ok(Err(reason)),
        };
        rules.max_calls_per_number_per_day = cap;
        let rules = Arc::new(rules);
        // Kept under the key of the row they were parsed from (which may be
        // newer than `state`'s), never under another version's.
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(state.campaign_id, (key, rules.clone()));
        Ok(Ok(rules))
    }

    fn cached(&self, state: &DialState, cap: u32) -> Option<Arc<CampaignRules>> {
        self.cached_key(state.campaign_id, &state.rules_key, cap)
    }

    /// The rules of campaign `campaign_id` parsed from the rule columns
    /// `key` (as the dial-time read quotes them), with the cap `cap`, if
    /// they are cached.
    pub(crate) fn cached_key(
        &self,
        campaign_id: i64,
        key: &str,
        cap: u32,
    ) -> Option<Arc<CampaignRules>> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&campaign_id)
            .filter(|(k, r)| k == key && r.max_calls_per_number_per_day == cap)
            .map(|(_, r)| r.clone())
    }
}
