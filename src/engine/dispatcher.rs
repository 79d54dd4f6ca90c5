//! A sweep of one campaign: claim due contacts in small batches (each batch one
//! transaction that commits its `sending` attempt rows), then send each
//! request through the global rate limit and the in-flight bound, retrying
//! only what the server certainly did not act on.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::dialcheck::{DialRead, Seen};
use super::pooling::DialLimits;
use super::{Engine, policy, retry};
use chrono::{DateTime, Utc};

use crate::domain::{CampaignStatus, HoldReason};
use crate::provider::{DispatchRequest, ErrorKind, ProviderError};
use crate::store::{
    AttemptResult, Campaign, CampaignRules, ClaimDecision, Claimed, GuardFacts, Release, SendResult,
};

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
    /// Of the attempts dispatched, those the dial-time check refused or
    /// released unsent (also counted in `failed`).
    pub refused: u64,
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
        let Some((rules, agent)) = self.prepare_sweep(c).await? else {
            return Ok(report);
        };
        let cfg = self.config();
        let mut tasks = JoinSet::new();
        // How many due contacts to read at once: grows while whole reads are
        // only put off (a closed window over a big campaign), so deferring a
        // million contacts takes thousands of commits, not tens of thousands.
        let mut read = READ_MIN;
        while self.may_claim() {
            let Some(permits) = self.take_permits(c).await? else {
                break;
            };
            let now = self.clock.now();
            let Some(mut room) = self.round_limits(c, now).await? else {
                break;
            };
            let deadline = after(now, self.config().max_claim_wait);
            let mut dial_slots = permits.len();
            let mut zones = HashMap::new();
            let mut round = self
                .store
                .claim_due(c.id, now, (permits.len() as i64).max(read), |d| {
                    let (decision, z) =
                        policy::decide_in(d, None, &rules, &cfg.compliance, agent, now);
                    if matches!(decision, ClaimDecision::Dial { .. }) {
                        if dial_slots == 0 {
                            return None;
                        }
                        // The caller pool and the spend cap have their say.
                        if let Some(instead) = room.admit() {
                            return instead;
                        }
                        dial_slots -= 1;
                        if let Some(z) = z {
                            zones.insert(d.id, z);
                        }
                    }
                    Some(decision)
                })
                .await?;
            for claim in &mut round.claimed {
                claim.zones = zones.remove(&claim.contact_id);
            }
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
            if round.wanted_dial && round.claimed.is_empty() {
                // The campaign or dispatching was paused meanwhile: stop; the
                // next fire looks again.
                break;
            }
            self.spawn_sends(c, round.claimed, permits, deadline, &mut tasks);
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

    /// The campaign's rules (with the configured per-number cap) and agent,
    /// or `None` when it cannot be swept: its settings are unreadable or it
    /// has no agent id (it is paused with the reason).
    async fn prepare_sweep(
        &self,
        c: &Campaign,
    ) -> anyhow::Result<Option<(CampaignRules, Option<i64>)>> {
        let Some(mut rules) = self.rules_or_pause(c).await? else {
            return Ok(None);
        };
        let cfg = self.config();
        rules.max_calls_per_number_per_day = cfg.max_calls_per_number_per_day;
        let agent = c.agent_id.or(cfg.defaults.agent_id);
        if agent.is_none() {
            let reason = "no agent_id: set the campaign's agent_id (or campaign_defaults.agent_id), then resume it";
            self.store
                .set_campaign_status(c.id, CampaignStatus::Paused, Some(reason))
                .await?;
            tracing::error!(campaign = %c.name, reason, "campaign paused");
            return Ok(None);
        }
        self.validate_direct_inserts(c, rules.region).await?;
        Ok(Some((rules, agent)))
    }

    /// Whether a sweep may claim another round now: not stopping, not
    /// paused by a rejected key, the database writable, and the API's
    /// `Retry-After` gate not shut past `dispatch.max_claim_wait_secs`
    /// (nothing claimed now could be sent in time: the contacts stay due,
    /// and a sweep after the gate opens takes them).
    fn may_claim(&self) -> bool {
        !(self.stopping()
            || self.auth_paused.load(Ordering::SeqCst)
            || self.storage_fault().is_some()
            || self.gate_closed_past_claim_wait())
    }

    /// Sends each claimed attempt on its own task, with its request slot.
    fn spawn_sends(
        self: &Arc<Self>,
        c: &Campaign,
        claimed: Vec<Claimed>,
        permits: Vec<OwnedSemaphorePermit>,
        deadline: DateTime<Utc>,
        tasks: &mut JoinSet<SendResult>,
    ) {
        let limits = DialLimits::of(c);
        for (claim, permit) in claimed.into_iter().zip(permits) {
            let engine = self.clone();
            let span = tracing::info_span!("attempt", campaign = %c.name, contact = claim.contact_id, attempt = claim.attempt_id);
            tasks.spawn(
                async move {
                    engine
                        .send_and_record(claim, limits, permit, deadline)
                        .await
                }
                .instrument(span),
            );
        }
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

    /// Sends one claimed attempt (unless it must be released) and records
    /// the result. `deadline`: the claim is released unsent if it has not
    /// been sent by then.
    async fn send_and_record(
        self: Arc<Self>,
        claim: Claimed,
        limits: DialLimits,
        permit: OwnedSemaphorePermit,
        deadline: DateTime<Utc>,
    ) -> SendResult {
        let mut shutdown = self.shutdown.clone();
        let slot = match self.free_slot(deadline) {
            Some(slot) => Ok(slot),
            None => tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => Err(SendResult::NotSent {
                    error: "not sent: the daemon is stopping".into(),
                    retry_at: self.clock.now(),
                }),
                _ = self.clock.sleep_until(deadline) => Err(self.release(
                    "no request slot came free",
                    after(self.clock.now(), self.config().max_claim_wait),
                )),
                slot = self.in_flight.sem().acquire_owned() => slot.map_err(|_| SendResult::NotSent {
                    error: "not sent: the daemon is stopping".into(),
                    retry_at: self.clock.now(),
                }),
            },
        };
        let (result, tries): (SendResult, Tries) = match slot {
            Ok(slot) => {
                metrics::gauge!("dialerd_attempts_in_flight").increment(1.0);
                let sent = self.send(&claim, limits, deadline).await;
                metrics::gauge!("dialerd_attempts_in_flight").decrement(1.0);
                drop(slot);
                sent
            }
            Err(unsent) => (unsent, Tries::default()),
        };
        drop(permit);
        metrics::counter!("dialerd_dispatches_total", "result" => result_label(&result))
            .increment(1);
        if tries.count > 0 {
            self.sent_total.fetch_add(1, Ordering::Relaxed);
        }
        self.note_rejections(claim.campaign_id, &result).await;
        let record = AttemptResult {
            attempt_id: claim.attempt_id,
            contact_id: claim.contact_id,
            tries: tries.count,
            first_try_at: tries.first,
            last_try_at: tries.last,
            result: result.clone(),
        };
        if !self.writer.write(record).await {
            tracing::error!(
                "result not recorded; the attempt will be treated as uncertain at the next start"
            );
        }
        result
    }

    /// A request slot taken at once, when one is free, the daemon is not
    /// stopping and `deadline` has not passed: what the wait in
    /// [`Self::send_and_record`] would give first, without arming its timer.
    fn free_slot(&self, deadline: DateTime<Utc>) -> Option<OwnedSemaphorePermit> {
        if self.stopping() || self.clock.now() >= deadline {
            return None;
        }
        self.in_flight.sem().try_acquire_owned().ok()
    }

    /// Sends one attempt's request, retrying safe failures inside the
    /// attempt. Before every try: the Retry-After gate and the rate, the
    /// spend cap and the caller-number pick, then, last, the dial-time check
    /// on the database as it is at that instant; a try that
    /// cannot go out by `deadline` is not made, and the claim is released.
    async fn send(
        &self,
        claim: &Claimed,
        limits: DialLimits,
        deadline: DateTime<Utc>,
    ) -> (SendResult, Tries) {
        let cfg = self.config();
        let mut req = DispatchRequest {
            agent_id: claim.agent_id,
            to_number: claim.to_number.clone(),
            call_context: context_object(&claim.call_context),
            from_number_id: limits.from_number_id,
        };
        let mut picked = false;
        let mut delays = retry::backoff(
            cfg.retry_min_delay,
            cfg.retry_max_delay,
            cfg.retry_max_tries,
        );
        let mut tries = Tries::default();
        let mut shutdown = self.shutdown.clone();
        // The same for every try of this attempt, and unique to it (the number
        // keeps keys of two installations on one account apart).
        let key = format!(
            "dialerd-{}-{}",
            claim.attempt_id,
            claim.to_number.trim_start_matches('+')
        );
        loop {
            if let Err(unsent) = self
                .ready_to_try(claim, deadline, limits, &mut req, &mut picked)
                .await
            {
                return (unsent, tries);
            }
            tries.sent(self.clock.now());
            let err = match self.client().dispatch_with_key(&req, Some(&key)).await {
                Ok(acc) => {
                    tracing::info!(request_id = %acc.request_id, tries = tries.count, "dispatch accepted");
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
            let wait = match self
                .after_failure(&err, &mut delays, tries.count, deadline)
                .await
            {
                Ok(wait) => wait,
                Err(result) => return (result, tries),
            };
            tracing::debug!(error = %err, ?wait, tries = tries.count, "safe to retry; waiting");
            tokio::select! {
                _ = self.clock.sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return (SendResult::NotSent {
                    error: format!("not sent: the daemon is stopping (last try: {err})"),
                    retry_at: self.clock.now(),
                }, tries),
            }
        }
    }

    /// Whether the next try may go out now: the daemon not stopping, the
    /// API key not refused, the Retry-After gate and the rate passed before
    /// `deadline`, and the dial-time check passed on the database as it is
    /// now. `Err`: what to record instead, nothing sent.
    async fn ready_to_try(
        &self,
        claim: &Claimed,
        deadline: DateTime<Utc>,
        limits: DialLimits,
        req: &mut DispatchRequest,
        picked: &mut bool,
    ) -> Result<(), SendResult> {
        let not_sent = |why: &str| SendResult::NotSent {
            error: format!("not sent: {why}"),
            retry_at: self.clock.now(),
        };
        if self.stopping() {
            return Err(not_sent("the daemon is stopping"));
        }
        if self.auth_paused.load(Ordering::SeqCst) {
            return Err(not_sent("dispatching is paused (the API refused the key)"));
        }
        if let Some(f) = self.storage_fault() {
            let why = format!("the database cannot be written ({})", f.error);
            return Err(not_sent(&why));
        }
        let mut shutdown = self.shutdown.clone();
        loop {
            tokio::select! {
                turn = self.turn_before(deadline) => turn?,
                _ = shutdown.wait_for(|s| *s) => return Err(not_sent("the daemon is stopping")),
            }
            // The spend cap and the caller-number pick may wait for the write
            // lock: they come before the dial-time check, so that the check
            // (DNC, hours, pause) stays the last read before the request.
            self.limits_at_dial(claim, limits, req, picked).await?;
            match self.dial_check(claim).await {
                Ok(None) => {}
                Ok(Some((error, release))) => {
                    tracing::info!(%error, "refused at the instant of dialing; nothing sent");
                    metrics::counter!("dialerd_dial_time_refusals_total").increment(1);
                    return Err(SendResult::Refused { error, release });
                }
                Err(e) => {
                    // Unverified is not allowed: nothing goes out.
                    tracing::error!(error = %e, "the dial-time check cannot read the database; not sent");
                    let why = format!("the dial-time check could not read the database ({e})");
                    return Err(not_sent(&why));
                }
            }
            // A 429 that arrived during the check closed the gate again:
            // wait for it (and check again) rather than send into it.
            if self.gate.closed_until(self.clock.now()).is_none() {
                return Ok(());
            }
        }
    }

    /// What follows a failed try: `Ok(wait)` before the next try, or
    /// `Err(result)` to record (a definite answer, an ambiguous one, or a
    /// safe failure whose next try could not go out by `deadline`).
    async fn after_failure(
        &self,
        err: &ProviderError,
        delays: &mut impl Iterator<Item = Duration>,
        tries: u32,
        deadline: DateTime<Utc>,
    ) -> Result<Duration, SendResult> {
        match err.kind() {
            ErrorKind::Ambiguous => {
                tracing::warn!(error = %err, "dispatch outcome uncertain; left to the reconciler, never retried blindly");
                return Err(SendResult::Uncertain {
                    error: err.to_string(),
                });
            }
            ErrorKind::Permanent => {
                tracing::warn!(error = %err, "dispatch rejected");
                return Err(SendResult::Rejected {
                    error: err.to_string(),
                });
            }
            ErrorKind::Unauthorized => {
                self.pause_for_auth(err).await;
                return Err(SendResult::Unauthorized {
                    error: err.to_string(),
                });
            }
            ErrorKind::Retryable | ErrorKind::RateLimited => {}
        }
        let now = self.clock.now();
        // A Retry-After is honoured for every worker, up to a day.
        let retry_after = err.retry_after().map(|ra| ra.min(MAX_RETRY_AFTER));
        if let Some(ra) = retry_after {
            self.gate.hold_until(after(now, ra));
        }
        let Some(backoff) = delays.next() else {
            tracing::warn!(error = %err, tries, "dispatch not sent after every safe retry");
            return Err(SendResult::NotSent {
                error: format!("not sent after {tries} tries: {err}"),
                retry_at: after(now, self.config().retry_max_delay),
            });
        };
        let wait = backoff.max(retry_after.unwrap_or(Duration::ZERO));
        let next_try = after(now, wait);
        if next_try > deadline {
            // Longer than a claim may wait: hand the contact back, due when
            // the server allows, rather than hold the claim that long.
            tracing::warn!(error = %err, ?wait, "the next try could not go out within dispatch.max_claim_wait_secs; released");
            return Err(self.release(
                &format!(
                    "{err}; the next try would wait {}s",
                    wait.as_secs_f64().ceil()
                ),
                next_try,
            ));
        }
        Ok(wait)
    }

    /// Waits for the Retry-After gate and a cell of the rate, but not past
    /// `deadline`. `Err`: the claim is released instead, due when the gate
    /// opens (at once when the gate is open but the wait ran out).
    async fn turn_before(&self, deadline: DateTime<Utc>) -> Result<(), SendResult> {
        let now = self.clock.now();
        if let Some(open) = self.gate.closed_until(now).filter(|t| *t > deadline) {
            return Err(self.release("the API asked to wait (Retry-After)", open));
        }
        // The gate open and a cell of the rate free now: what the wait below
        // would give first, without arming its timer.
        if now < deadline && self.gate.closed_until(now).is_none() && self.limiter().check().is_ok()
        {
            return Ok(());
        }
        tokio::select! {
            biased;
            _ = self.clock.sleep_until(deadline) => {
                let now = self.clock.now();
                let due = self.gate.closed_until(now).unwrap_or(now);
                Err(self.release("held by the rate limit or the Retry-After gate", due))
            }
            _ = self.wait_for_turn() => Ok(()),
        }
    }

    /// Whether the Retry-After gate stays closed longer than a claim may
    /// wait, so that nothing claimed now could be sent in time.
    fn gate_closed_past_claim_wait(&self) -> bool {
        let now = self.clock.now();
        self.gate
            .closed_until(now)
            .is_some_and(|open| open > after(now, self.config().max_claim_wait))
    }

    /// A claim released unsent: the attempt ends `not_placed`, the contact
    /// is due again at `due`, its attempt not spent.
    fn release(&self, why: &str, due: DateTime<Utc>) -> SendResult {
        let wait = self.config().max_claim_wait.as_secs();
        SendResult::Refused {
            error: format!(
                "not sent within dispatch.max_claim_wait_secs ({wait}s) of the claim: {why}; due again at {}",
                crate::clock::to_db_text(due)
            ),
            release: Release::HandBack {
                due: Some(due),
                reason: HoldReason::ServerWait,
            },
        }
    }

    /// The dial-time rule for one try of `claim`: the claim's policy on the
    /// database state of this instant. `Ok(None)`: send.
    async fn dial_check(&self, claim: &Claimed) -> anyhow::Result<Option<(String, Release)>> {
        let read = match self.guard_now(claim) {
            Some(true) if self.still_sendable(claim) => return Ok(None),
            // Changed since the claim, refused on the claim's reading, or its
            // rules not at hand: the refusal's reason and release come from
            // the state of now.
            Some(_) => self.dial_reader.read(claim.attempt_id, None).await?,
            None => {
                let guard = claim.guard.as_ref().map(|g| Seen {
                    stamp: g.stamp,
                    facts: GuardFacts::of(claim),
                });
                match self.dial_reader.read(claim.attempt_id, guard).await? {
                    DialRead::Unchanged if self.still_sendable(claim) => return Ok(None),
                    DialRead::Unchanged => self.dial_reader.read(claim.attempt_id, None).await?,
                    read => read,
                }
            }
        };
        let DialRead::State(state) = read else {
            anyhow::bail!("the dial-time reader vouched for an attempt it was asked to read");
        };
        let Some(state) = state else {
            return Ok(Some((
                "not sent: the attempt or its contact is gone".into(),
                Release::Untouched,
            )));
        };
        let cfg = self.config();
        let cap = cfg.max_calls_per_number_per_day;
        let rules = match self.dial_rules.get(&self.store, &state, cap).await? {
            Ok(rules) => rules,
            Err(reason) => {
                let release = Release::HandBack {
                    due: None,
                    reason: HoldReason::Paused,
                };
                return Ok(Some((format!("not sent: {reason}"), release)));
            }
        };
        let agent = Some(claim.agent_id);
        Ok(policy::decide_at_dial(
            &state,
            &rules,
            &cfg.compliance,
            agent,
            self.clock.now(),
        ))
    }

    /// Whether the dial guard is where `claim` saw it and its attempt still
    /// `sending` as claimed, read now on this thread through the guard's own
    /// connection; `None` when that read cannot be made (no guard noted at
    /// the claim, no such connection, an error): then the batched reader
    /// answers, through the pool.
    fn guard_now(&self, claim: &Claimed) -> Option<bool> {
        let seen = claim.guard.as_ref()?;
        let row = self.store.dial_guard_now(claim.attempt_id)?;
        Some(row.stamp == Some(seen.stamp) && row.attempt == Some(GuardFacts::of(claim)))
    }

    /// The dial-time rule on the claim's own reading, for a try that found
    /// the dial guard where the claim left it (so the campaign, the pause,
    /// the contact, the DNC list and the number's other attempts are as the
    /// claim read them): whether the policy lets it be dialed now, with the
    /// rules of now (the windows, quiet hours and region hours move with
    /// the clock). `false` also when the campaign's rules are not cached.
    fn still_sendable(&self, claim: &Claimed) -> bool {
        let Some(guard) = &claim.guard else {
            return false;
        };
        let cfg = self.config();
        let cap = cfg.max_calls_per_number_per_day;
        let Some(rules) = self
            .dial_rules
            .cached_key(claim.campaign_id, &guard.rules_key, cap)
        else {
            return false;
        };
        let agent = Some(claim.agent_id);
        // The claim's zones hold while the contact's timezone column and
        // number do (the guard says they do); a campaign's zone is taken
        // from the rules of now instead.
        let zones = claim
            .zones
            .as_ref()
            .filter(|z| z.source != crate::phone::zones::ZoneSource::Campaign);
        let (decision, _) = policy::decide_in(
            &claim.reading,
            zones,
            &rules,
            &cfg.compliance,
            agent,
            self.clock.now(),
        );
        matches!(decision, ClaimDecision::Dial { .. })
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

/// The HTTP tries of one attempt: how many, and when the first and the last
/// request were handed to the HTTP client.
#[derive(Debug, Clone, Copy, Default)]
struct Tries {
    count: u32,
    first: Option<chrono::DateTime<chrono::Utc>>,
    last: Option<chrono::DateTime<chrono::Utc>>,
}

impl Tries {
    /// Notes a try handed over at `at`.
    fn sent(&mut self, at: chrono::DateTime<chrono::Utc>) {
        self.count += 1;
        self.first.get_or_insert(at);
        self.last = Some(at);
    }
}

fn result_label(r: &SendResult) -> &'static str {
    match r {
        SendResult::Accepted { .. } => "accepted",
        SendResult::Uncertain { .. } => "uncertain",
        SendResult::Rejected { .. } => "rejected",
        SendResult::Unauthorized { .. } => "unauthorized",
        SendResult::NotSent { .. } => "not_sent",
        SendResult::Refused { .. } => "refused",
    }
}

fn tally(report: &mut SweepReport, done: Result<SendResult, tokio::task::JoinError>) {
    report.dispatched += 1;
    match done {
        Ok(SendResult::Accepted { .. }) => report.accepted += 1,
        Ok(SendResult::Uncertain { .. }) => report.uncertain += 1,
        Ok(SendResult::Refused { .. }) => {
            report.refused += 1;
            report.failed += 1;
        }
        Ok(_) => report.failed += 1,
        Err(e) => {
            // A panicking send leaves its attempt `sending`: recovered as uncertain.
            tracing::error!(error = %e, "a dispatch task failed");
            report.failed += 1;
        }
    }
}
