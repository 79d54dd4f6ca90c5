//! A sweep of one campaign: claim due contacts in small batches (each batch one
//! transaction that commits its `sending` attempt rows), then send each
//! request through the global rate limit and the in-flight bound, retrying
//! only what the server certainly did not act on.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{Engine, policy, retry};
use crate::domain::CampaignStatus;
use crate::provider::{DispatchRequest, ErrorKind, ProviderError};
use crate::store::{AttemptResult, Campaign, ClaimDecision, Claimed, SendResult};

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Attempts committed and sent.
    pub dispatched: u64,
    /// Of those, accepted by the API.
    pub accepted: u64,
    /// Of those, uncertain (left to the reconciler).
    pub uncertain: u64,
    /// Of those, rejected or not sent.
    pub failed: u64,
    /// Contacts put off until their calling window opens.
    pub deferred: u64,
    /// Contacts found on the do-not-call list.
    pub suppressed: u64,
}

/// Consecutive rejections after which a campaign is paused: a wrong agent id
/// or a malformed context rejects every contact, and must not burn the list.
const REJECTIONS_BEFORE_PAUSE: u32 = 5;

/// Due contacts read per step, at least and at most.
const READ_MIN: i64 = 32;
const READ_MAX: i64 = 2048;

/// The longest Retry-After honoured; a larger (or absurd) value is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

use crate::clock::plus as after;

impl Engine {
    /// Sweeps campaign `c`: dispatches every contact that is due now, until
    /// none is left, the campaign is paused, or shutdown. Returns once every
    /// request it sent has its result recorded.
    pub async fn sweep_campaign(self: &Arc<Self>, c: &Campaign) -> anyhow::Result<SweepReport> {
        let mut report = SweepReport::default();
        let Some(rules) = self.rules_or_pause(c).await? else {
            return Ok(report);
        };
        let cfg = self.config();
        let agent = c.agent_id.or(cfg.defaults.agent_id);
        if agent.is_none() {
            let reason = "no agent_id: set the campaign's agent_id (or campaign_defaults.agent_id), then resume it";
            self.store
                .set_campaign_status(c.id, CampaignStatus::Paused, Some(reason))
                .await?;
            tracing::error!(campaign = %c.name, reason, "campaign paused");
            return Ok(report);
        }
        self.validate_direct_inserts(c, rules.region).await?;
        let mut tasks = JoinSet::new();
        // How many due contacts to read at once: grows while whole reads are
        // only put off (a closed window over a big campaign), so deferring a
        // million contacts takes thousands of commits, not tens of thousands.
        let mut read = READ_MIN;
        loop {
            if self.stopping()
                || self.auth_paused.load(Ordering::SeqCst)
                || self.storage_fault().is_some()
            {
                break;
            }
            let Some(permits) = self.take_permits(c).await? else {
                break;
            };
            let now = self.clock.now();
            let mut dial_slots = permits.len();
            let round = self
                .store
                .claim_due(c.id, now, (permits.len() as i64).max(read), |d| {
                    let decision = policy::decide(d, &rules, agent, now);
                    if matches!(decision, ClaimDecision::Dial { .. }) {
                        if dial_slots == 0 {
                            return None;
                        }
                        dial_slots -= 1;
                    }
                    Some(decision)
                })
                .await?;
            if round.read == 0 {
                break;
            }
            report.deferred += round.deferred;
            report.suppressed += round.suppressed;
            read = if round.wanted_dial {
                READ_MIN
            } else {
                (read * 4).min(READ_MAX)
            };
            let claimed = round.claimed;
            if round.wanted_dial && claimed.is_empty() {
                // The campaign or dispatching was paused meanwhile: stop; the
                // next fire looks again.
                break;
            }
            for (claim, permit) in claimed.into_iter().zip(permits) {
                let engine = self.clone();
                let from = c.from_number_id;
                let span = tracing::info_span!("attempt", campaign = %c.name, contact = claim.contact_id, attempt = claim.attempt_id);
                tasks.spawn(
                    async move { engine.send_and_record(claim, from, permit).await }
                        .instrument(span),
                );
            }
            // Reap finished sends as we go, so a long sweep does not accumulate them.
            while let Some(done) = tasks.try_join_next() {
                tally(&mut report, done);
            }
        }
        while let Some(done) = tasks.join_next().await {
            tally(&mut report, done);
        }
        Ok(report)
    }

    /// Waits for room to claim a batch (and for live-call room), and takes
    /// it: a claim batch's worth of the claim budget, so contacts are claimed
    /// in batches (one commit each) while the previous batch is being sent.
    async fn take_permits(
        &self,
        c: &Campaign,
    ) -> anyhow::Result<Option<Vec<OwnedSemaphorePermit>>> {
        let cfg = self.config();
        let cap = c
            .max_live_calls
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(cfg.max_live_calls_per_campaign);
        let mut want = cfg.claim_size().min(self.claimed.size()).max(1);
        if cap > 0 {
            let live = self.store.live_calls(c.id).await?;
            let room = i64::from(cap) - live;
            if room <= 0 {
                return Ok(None);
            }
            want = want.min(room as usize);
        }
        let mut shutdown = self.shutdown.clone();
        let n = u32::try_from(want).unwrap_or(1);
        let batch = tokio::select! {
            p = self.claimed.sem().acquire_many_owned(n) => p?,
            _ = shutdown.wait_for(|s| *s) => return Ok(None),
        };
        let mut batch = batch;
        let mut permits = Vec::with_capacity(want);
        while permits.len() + 1 < want {
            match batch.split(1) {
                Some(p) => permits.push(p),
                None => break,
            }
        }
        permits.push(batch);
        Ok(Some(permits))
    }

    async fn send_and_record(
        self: Arc<Self>,
        claim: Claimed,
        from_number_id: Option<i64>,
        permit: OwnedSemaphorePermit,
    ) -> SendResult {
        let mut shutdown = self.shutdown.clone();
        let slot = tokio::select! {
            slot = self.in_flight.sem().acquire_owned() => slot.ok(),
            _ = shutdown.wait_for(|s| *s) => None,
        };
        let (result, tries) = match slot {
            Some(slot) => {
                metrics::gauge!("dialerd_attempts_in_flight").increment(1.0);
                let sent = self.send(&claim, from_number_id).await;
                metrics::gauge!("dialerd_attempts_in_flight").decrement(1.0);
                drop(slot);
                sent
            }
            None => (
                SendResult::NotSent {
                    error: "not sent: the daemon is stopping".into(),
                    retry_at: self.clock.now(),
                },
                0,
            ),
        };
        drop(permit);
        metrics::counter!("dialerd_dispatches_total", "result" => result_label(&result))
            .increment(1);
        if tries > 0 {
            self.sent_total.fetch_add(1, Ordering::Relaxed);
        }
        self.note_rejections(claim.campaign_id, &result).await;
        let record = AttemptResult {
            attempt_id: claim.attempt_id,
            contact_id: claim.contact_id,
            tries,
            result: result.clone(),
        };
        if !self.writer.write(record).await {
            tracing::error!(
                "result not recorded; the attempt will be treated as uncertain at the next start"
            );
        }
        result
    }

    /// Sends one attempt's request, retrying safe failures inside the attempt.
    async fn send(&self, claim: &Claimed, from_number_id: Option<i64>) -> (SendResult, u32) {
        let cfg = self.config();
        let req = DispatchRequest {
            agent_id: claim.agent_id,
            to_number: claim.to_number.clone(),
            call_context: context_object(&claim.call_context),
            from_number_id,
        };
        let mut delays = retry::backoff(
            cfg.retry_min_delay,
            cfg.retry_max_delay,
            cfg.retry_max_tries,
        );
        let mut tries = 0u32;
        let mut shutdown = self.shutdown.clone();
        // The same for every try of this attempt, and unique to it (the number
        // keeps keys of two installations on one account apart).
        let key = format!(
            "dialerd-{}-{}",
            claim.attempt_id,
            claim.to_number.trim_start_matches('+')
        );
        loop {
            // Before each try: still allowed to send? Then the Retry-After gate and the rate.
            let not_sent = |why: String| SendResult::NotSent {
                error: why,
                retry_at: self.clock.now(),
            };
            if self.stopping() {
                return (not_sent("not sent: the daemon is stopping".into()), tries);
            }
            if self.auth_paused.load(Ordering::SeqCst) {
                return (
                    not_sent("not sent: dispatching is paused (the API refused the key)".into()),
                    tries,
                );
            }
            if let Some(f) = self.storage_fault() {
                return (
                    not_sent(format!(
                        "not sent: the database cannot be written ({})",
                        f.error
                    )),
                    tries,
                );
            }
            tokio::select! {
                _ = self.wait_for_turn() => {}
                _ = shutdown.wait_for(|s| *s) => return (not_sent("not sent: the daemon is stopping".into()), tries),
            }
            tries += 1;
            let err = match self.client().dispatch_with_key(&req, Some(&key)).await {
                Ok(acc) => {
                    tracing::info!(request_id = %acc.request_id, tries, "dispatch accepted");
                    return (
                        SendResult::Accepted {
                            request_id: acc.request_id,
                            raw_response: acc.raw.to_string(),
                        },
                        tries,
                    );
                }
                Err(e) => e,
            };
            match err.kind() {
                ErrorKind::Ambiguous => {
                    tracing::warn!(error = %err, "dispatch outcome uncertain; left to the reconciler, never retried blindly");
                    return (
                        SendResult::Uncertain {
                            error: err.to_string(),
                        },
                        tries,
                    );
                }
                ErrorKind::Permanent => {
                    tracing::warn!(error = %err, "dispatch rejected");
                    return (
                        SendResult::Rejected {
                            error: err.to_string(),
                        },
                        tries,
                    );
                }
                ErrorKind::Unauthorized => {
                    self.pause_for_auth(&err).await;
                    return (
                        SendResult::Unauthorized {
                            error: err.to_string(),
                        },
                        tries,
                    );
                }
                ErrorKind::Retryable | ErrorKind::RateLimited => {}
            }
            let now = self.clock.now();
            // A Retry-After is honoured for every worker, up to a day.
            let retry_after = err.retry_after().map(|ra| ra.min(MAX_RETRY_AFTER));
            if let Some(ra) = retry_after {
                self.gate.hold_until(after(now, ra));
            }
            if let Some(ra) = retry_after.filter(|ra| *ra > cfg.retry_max_delay) {
                // Longer than this attempt may wait: hand the contact back, due
                // when the server allows, rather than hold a slot that long.
                tracing::warn!(error = %err, ?ra, "the API asked to wait longer than dispatch.retry_max_delay_secs; not sent");
                return (
                    SendResult::NotSent {
                        error: format!("not sent: {err}"),
                        retry_at: after(now, ra),
                    },
                    tries,
                );
            }
            let Some(backoff) = delays.next() else {
                tracing::warn!(error = %err, tries, "dispatch not sent after every safe retry");
                let retry_at = after(now, cfg.retry_max_delay);
                return (
                    SendResult::NotSent {
                        error: format!("not sent after {tries} tries: {err}"),
                        retry_at,
                    },
                    tries,
                );
            };
            let wait = backoff.max(retry_after.unwrap_or(Duration::ZERO));
            tracing::debug!(error = %err, ?wait, tries, "safe to retry; waiting");
            tokio::select! {
                _ = self.clock.sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return (not_sent(format!("not sent: the daemon is stopping (last try: {err})")), tries),
            }
        }
    }

    /// Waits until the Retry-After gate is open and a cell of the rate is
    /// taken. A 429 that arrives while this request waits for the rate closes
    /// the gate again, so the gate is checked once more after the rate.
    async fn wait_for_turn(&self) {
        loop {
            self.gate.wait(self.clock.as_ref()).await;
            self.wait_for_rate().await;
            if self.gate.closed_until(self.clock.now()).is_none() {
                return;
            }
        }
    }

    /// The campaign's parsed rules; a campaign whose settings cannot be read
    /// (a row inserted by hand with a typo) is paused with the reason instead.
    pub(super) async fn rules_or_pause(
        &self,
        c: &Campaign,
    ) -> anyhow::Result<Option<crate::store::CampaignRules>> {
        match c.rules() {
            Ok(r) => Ok(Some(r)),
            Err(reason) => {
                self.store
                    .set_campaign_status(c.id, CampaignStatus::Paused, Some(&reason))
                    .await?;
                tracing::error!(campaign = %c.name, %reason, "campaign paused: its settings are invalid");
                Ok(None)
            }
        }
    }

    /// Takes one cell of the global rate. A waiter picks up a reloaded rate
    /// at once instead of finishing its wait at the old one.
    async fn wait_for_rate(&self) {
        loop {
            let limiter = self.limiter();
            if limiter.check().is_ok() {
                return;
            }
            metrics::counter!("dialerd_rate_limiter_waits_total").increment(1);
            let reconfigured = self.reconfigured.notified();
            tokio::select! {
                _ = limiter.until_ready() => return,
                _ = reconfigured => {}
            }
        }
    }

    /// A 401/403: stop dispatching for everyone, loudly, until an operator acts.
    async fn pause_for_auth(&self, err: &ProviderError) {
        if self.auth_paused.swap(true, Ordering::SeqCst) {
            return;
        }
        let reason = format!("the API refused the key: {err}");
        tracing::error!(%reason, "DISPATCH PAUSED for every campaign; fix the key, then run `dialerd dispatch resume`");
        let key = self.client().key_fingerprint();
        if let Err(e) = self.store.pause_dispatch_for_key(&reason, Some(&key)).await {
            tracing::error!(error = %e, "cannot record the dispatch pause");
        }
    }

    async fn note_rejections(&self, campaign_id: i64, result: &SendResult) {
        let count = {
            let mut map = self.rejections.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(campaign_id).or_insert(0);
            match result {
                SendResult::Rejected { .. } => *n += 1,
                SendResult::Accepted { .. } | SendResult::Uncertain { .. } => *n = 0,
                _ => {}
            }
            let count = *n;
            if count >= REJECTIONS_BEFORE_PAUSE {
                *n = 0;
            }
            count
        };
        if count >= REJECTIONS_BEFORE_PAUSE
            && let SendResult::Rejected { error } = result
        {
            let reason = format!(
                "{count} requests in a row rejected by the API (last: {error}); check agent_id and from_number_id, then resume"
            );
            tracing::error!(campaign_id, %reason, "campaign paused");
            if let Err(e) = self
                .store
                .set_campaign_status(campaign_id, CampaignStatus::Paused, Some(&reason))
                .await
            {
                tracing::error!(error = %e, "cannot pause the campaign");
            }
        }
    }

    /// Validates contacts that another program inserted before their first dial.
    async fn validate_direct_inserts(
        &self,
        c: &Campaign,
        region: Option<phonenumber::country::Id>,
    ) -> anyhow::Result<()> {
        loop {
            let rows = self.store.unvalidated_contacts(c.id, 500).await?;
            if rows.is_empty() {
                return Ok(());
            }
            let results: Vec<_> = rows
                .iter()
                .map(|r| {
                    (
                        r.id,
                        crate::import::validate_direct(
                            &r.phone_number,
                            r.timezone.as_deref(),
                            region,
                        ),
                    )
                })
                .collect();
            self.store.store_validations(&results).await?;
        }
    }
}

/// The contact's context as a JSON object (a non-object is wrapped, never dropped).
fn context_object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        Ok(Value::Null) | Err(_) if text.trim().is_empty() => Map::new(),
        Ok(other) => Map::from_iter([("context".to_string(), other)]),
        Err(_) => Map::from_iter([("context".to_string(), Value::String(text.to_string()))]),
    }
}

fn result_label(r: &SendResult) -> &'static str {
    match r {
        SendResult::Accepted { .. } => "accepted",
        SendResult::Uncertain { .. } => "uncertain",
        SendResult::Rejected { .. } => "rejected",
        SendResult::Unauthorized { .. } => "unauthorized",
        SendResult::NotSent { .. } => "not_sent",
    }
}

fn tally(report: &mut SweepReport, done: Result<SendResult, tokio::task::JoinError>) {
    report.dispatched += 1;
    match done {
        Ok(SendResult::Accepted { .. }) => report.accepted += 1,
        Ok(SendResult::Uncertain { .. }) => report.uncertain += 1,
        Ok(_) => report.failed += 1,
        Err(e) => {
            // A panicking send leaves its attempt `sending`: recovered as uncertain.
            tracing::error!(error = %e, "a dispatch task failed");
            report.failed += 1;
        }
    }
}
