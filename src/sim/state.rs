//! The simulator's shared state: the seeded random source, the placed calls in
//! insertion order, the rate-limit window and the counters.
//!
//! A call's status is computed on read from its dispatch instant and its
//! drawn length, both on the simulator's clock, so no task runs per call and
//! a test moves calls along by moving its clock.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::journal::{DispatchResult, Journal};
use super::options::SimOptions;
use crate::domain::Outcome;

/// The first call log id; ids follow insertion order.
const FIRST_LOG_ID: i64 = 7_400_001;
/// The first `requestId`; request ids follow insertion order.
const FIRST_REQUEST_ID: i64 = 3_200_001;

/// A placed call.
#[derive(Debug)]
pub(crate) struct SimCall {
    pub id: i64,
    pub request_id: i64,
    pub agent_id: i64,
    pub to_number: String,
    pub from_number_id: Option<i64>,
    pub call_context: Map<String, Value>,
    /// When the request arrived, on the simulator's clock; progress counts from here.
    pub dispatched_at: DateTime<Utc>,
    /// Time from dispatch to the final status.
    pub final_after: Duration,
    pub outcome: Outcome,
    /// Length of the conversation reported in the log (answered calls).
    pub talk_secs: u32,
    /// A draw that picks wording variants.
    pub variant: u32,
    /// The callee asked not to be called again (`--opt-out`; completed calls only).
    pub opted_out: bool,
    /// How its `time_of_call` is written.
    pub time_style: super::options::TimeStyle,
    /// `--cost-per-min` and `--cost-per-call`.
    pub rates: (f64, f64),
    /// The `requestId` its dispatch answer carried (an earlier call's under
    /// `--repeat-request-ids`).
    pub answered_request_id: i64,
}

/// Where a call stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    Ringing,
    InProgress,
    Final,
}

impl SimCall {
    pub(crate) fn phase(&self, now: DateTime<Utc>) -> Phase {
        // A clock set back before the dispatch reads as no time elapsed.
        let elapsed = (now - self.dispatched_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        if elapsed >= self.final_after {
            Phase::Final
        } else if elapsed < self.final_after / 3 {
            Phase::Queued
        } else if elapsed < self.final_after * 2 / 3 {
            Phase::Ringing
        } else {
            Phase::InProgress
        }
    }

    /// The `call_status` text at `now`. A voicemail is `completed` with
    /// `is_voicemail: true`, as the real API reports answering machines.
    pub(crate) fn status_text(&self, now: DateTime<Utc>) -> &'static str {
        match self.phase(now) {
            Phase::Queued => "queued",
            Phase::Ringing => "ringing",
            Phase::InProgress => "in-progress",
            Phase::Final => match self.outcome {
                Outcome::Completed | Outcome::Voicemail | Outcome::Unknown => "completed",
                Outcome::NoAnswer => "no-answer",
                Outcome::Busy => "busy",
                Outcome::Failed => "failed",
                Outcome::Cancelled => "cancelled",
            },
        }
    }

    /// Whether the `call_status` filter `wanted` (already through
    /// [`normalise_filter`]) matches at `now`. `voicemail` matches voicemails,
    /// which are otherwise `completed`.
    pub(crate) fn status_matches(&self, wanted: &str, now: DateTime<Utc>) -> bool {
        if wanted == "voicemail" {
            return self.outcome == Outcome::Voicemail && self.phase(now) == Phase::Final;
        }
        self.status_text(now) == wanted
    }
}

/// A `call_status` filter in the spelling of [`SimCall::status_text`]: lower
/// case, `_` and spaces as `-`.
pub(crate) fn normalise_filter(wanted: &str) -> String {
    wanted.trim().to_ascii_lowercase().replace(['_', ' '], "-")
}

/// A dispatch request that passed auth and validation.
pub(crate) struct NewCall {
    pub agent_id: i64,
    pub to_number: String,
    pub from_number_id: Option<i64>,
    pub call_context: Map<String, Value>,
    pub received_at: DateTime<Utc>,
}

/// What the draws decided for a dispatch request.
pub(crate) enum Decision {
    /// Not placed: the answer is this error.
    NotPlaced(DispatchResult),
    /// Placed; the answer is `result` (dispatched or one of the placed faults).
    Placed(Arc<SimCall>, DispatchResult),
}

/// Counters served at `/_sim/stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Every `POST /calls/dispatch` received, whatever its fate.
    pub dispatch_requests: u64,
    /// Calls placed (call logs created).
    pub calls_placed: u64,
    /// `GET /calls/logs` requests.
    pub log_list_requests: u64,
    /// `GET /calls/logs/{id}` requests.
    pub log_get_requests: u64,
    /// Dispatch requests by journal result (`dispatched`, `fault_500`, ...).
    pub results: BTreeMap<String, u64>,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub dispatch_requests: AtomicU64,
    /// Dispatch requests received whose answer is not yet written.
    pub dispatches_in_progress: AtomicU64,
    pub calls_placed: AtomicU64,
    pub log_list_requests: AtomicU64,
    pub log_get_requests: AtomicU64,
    pub results: [AtomicU64; DispatchResult::ALL.len()],
}

/// Everything the handlers share.
pub(crate) struct SimState {
    pub opts: SimOptions,
    /// The clock everything the API shows is read on: `time_of_call`, call
    /// progress and the journal. What stands for the server's capacity and
    /// the network stays on real time: `--rate-limit`'s one-second window,
    /// `--latency-ms`, and the `--fault-timeout` hold, which must outlast the
    /// client's own (real-time) timeout.
    pub clock: crate::clock::SharedClock,
    pub counters: Counters,
    pub journal: Journal,
    /// Turns true at shutdown; withheld answers stop waiting.
    pub stopping: watch::Sender<bool>,
    // A std Mutex, not a tokio one: nothing awaits while it is held.
    inner: Mutex<Inner>,
}

struct Inner {
    rng: StdRng,
    /// The newest `--max-calls` calls, oldest first.
    calls: VecDeque<Arc<SimCall>>,
    /// Calls placed and since forgotten: `calls[i]` is call number `forgotten + i`.
    forgotten: usize,
    window_start: Option<Instant>,
    window_count: u32,
}

impl SimState {
    pub(crate) fn new(
        opts: SimOptions,
        clock: crate::clock::SharedClock,
    ) -> anyhow::Result<Arc<SimState>> {
        let keep = usize::try_from(opts.max_calls).unwrap_or(usize::MAX);
        let journal = Journal::open(opts.journal.as_deref(), keep)?;
        Ok(Arc::new(SimState {
            counters: Counters::default(),
            journal,
            stopping: watch::channel(false).0,
            inner: Mutex::new(Inner {
                rng: StdRng::seed_from_u64(opts.seed),
                calls: VecDeque::new(),
                forgotten: 0,
                window_start: None,
                window_count: 0,
            }),
            opts,
            clock,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Draws the fate of a valid dispatch request, in the documented order,
    /// and records the call when it is placed.
    pub(crate) fn decide(&self, req: NewCall) -> Decision {
        let o = &self.opts;
        let mut inner = self.lock();
        if o.rate_limit > 0 && inner.over_rate_limit(o.rate_limit, Instant::now()) {
            return Decision::NotPlaced(DispatchResult::RateLimited);
        }
        for (p, result) in [
            (o.fault_429, DispatchResult::Fault429),
            (o.fault_drop, DispatchResult::FaultDrop),
            (o.fault_500, DispatchResult::Fault500),
        ] {
            if inner.chance(p) {
                return Decision::NotPlaced(result);
            }
        }
        let outcome = o.outcomes.pick(inner.rng.random::<f64>());
        let final_after = Duration::from_secs_f64(o.call_secs.at(inner.rng.random::<f64>()));
        let talk_secs = match outcome {
            Outcome::Completed => inner.rng.random_range(15..=240),
            Outcome::Voicemail => inner.rng.random_range(8..=40),
            _ => 0,
        };
        let variant = inner.rng.random::<u32>();
        // Drawn only with --opt-out set, so other runs keep their sequence.
        let opted_out = outcome == Outcome::Completed && inner.chance(o.opt_out);
        let mut result = DispatchResult::Dispatched;
        for (p, fault) in [
            (o.fault_500_placed, DispatchResult::Fault500Placed),
            (o.fault_timeout, DispatchResult::FaultTimeout),
            (o.fault_garbage, DispatchResult::FaultGarbage),
        ] {
            if inner.chance(p) {
                result = fault;
                break;
            }
        }
        let index = (inner.forgotten + inner.calls.len()) as i64;
        let answered_request_id = if index > 0 && inner.chance(o.repeat_request_ids) {
            FIRST_REQUEST_ID + inner.rng.random_range(0..index)
        } else {
            FIRST_REQUEST_ID + index
        };
        let call = Arc::new(SimCall {
            id: FIRST_LOG_ID + index,
            request_id: FIRST_REQUEST_ID + index,
            agent_id: req.agent_id,
            to_number: req.to_number,
            from_number_id: req.from_number_id,
            call_context: req.call_context,
            dispatched_at: req.received_at,
            final_after,
            outcome,
            talk_secs,
            variant,
            opted_out,
            time_style: super::options::TimeStyle::of(o),
            rates: (o.cost_per_min, o.cost_per_call),
            answered_request_id,
        });
        inner.calls.push_back(call.clone());
        if inner.calls.len() as u64 > o.max_calls {
            inner.calls.pop_front();
            inner.forgotten += 1;
        }
        Decision::Placed(call, result)
    }

    /// One page of calls newest first, filtered, and the size of the filtered set.
    /// Unfiltered pages are sliced directly; filtered ones scan once, newest first.
    pub(crate) fn list(
        &self,
        agent_id: Option<i64>,
        status: Option<&str>,
        page: usize,
        size: usize,
        now: DateTime<Utc>,
    ) -> (Vec<Arc<SimCall>>, usize) {
        let status = status.map(normalise_filter);
        let inner = self.lock();
        let skip = page.saturating_sub(1).saturating_mul(size);
        let listed = |call: &SimCall| !self.opts.log_after_end || call.phase(now) == Phase::Final;
        if agent_id.is_none() && status.is_none() && !self.opts.log_after_end {
            let page = inner
                .calls
                .iter()
                .rev()
                .skip(skip)
                .take(size)
                .cloned()
                .collect();
            return (page, inner.calls.len());
        }
        let mut total = 0usize;
        let mut out = Vec::new();
        for call in inner.calls.iter().rev() {
            let keep = listed(call)
                && agent_id.is_none_or(|a| call.agent_id == a)
                && status
                    .as_deref()
                    .is_none_or(|s| call.status_matches(s, now));
            if keep {
                if total >= skip && out.len() < size {
                    out.push(call.clone());
                }
                total += 1;
            }
        }
        (out, total)
    }

    /// The call with log id `id`.
    pub(crate) fn get(&self, id: i64) -> Option<Arc<SimCall>> {
        let index = usize::try_from(id.checked_sub(FIRST_LOG_ID)?).ok()?;
        let inner = self.lock();
        inner
            .calls
            .get(index.checked_sub(inner.forgotten)?)
            .cloned()
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> SimStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SimStats {
            dispatch_requests: get(&c.dispatch_requests),
            calls_placed: get(&c.calls_placed),
            log_list_requests: get(&c.log_list_requests),
            log_get_requests: get(&c.log_get_requests),
            results: DispatchResult::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), get(&c.results[*r as usize])))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

impl Inner {
    /// True with probability `p`; draws nothing when `p` is 0, so enabling no
    /// fault leaves the outcome sequence of a seed unchanged.
    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random::<f64>() < p
    }

    /// Counts a request in the current one-second window; true past `limit`.
    fn over_rate_limit(&mut self, limit: u32, now: Instant) -> bool {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(1));
        if fresh {
            self.window_start = Some(now);
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(1);
        self.window_count > limit
    }
}
