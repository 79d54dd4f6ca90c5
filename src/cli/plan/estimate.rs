//! When a campaign could finish: every contact still to be called gets one
//! call, in the order they come due, at `dispatch.rate_per_second`, each only
//! while all its calling-hours rules are open in all its zones, and after an
//! idle spell only at the next sweep of the campaign's schedule. A model,
//! not a promise: retries, other campaigns sharing the rate, the live-call
//! cap and the API's own pace all make it later.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::to_db_text;
use crate::engine::EngineConfig;
use crate::engine::policy;
use crate::store::CampaignRules;

/// The estimate (part of the `--json` form).
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Contacts still to be called at least once.
    pub calls_left: u64,
    pub rate_per_second: f64,
    /// When the last of those calls could be placed; `None`: never (blocked,
    /// or nothing to call).
    pub finish_at: Option<String>,
    /// Of `calls_left`, contacts whose calling hours never open in all their
    /// zones at once when their turn comes (left out of `finish_at`).
    pub never_open: u64,
    /// What the estimate assumes.
    pub assumes: String,
}

/// A contact still to be called and when it may first be.
pub(super) struct Callee<'a> {
    pub number: &'a str,
    pub timezone: Option<&'a str>,
    pub ready: DateTime<Utc>,
}

/// The estimate for `callees`, the first sweep at `first_sweep`.
pub(super) fn estimate(
    rules: &CampaignRules,
    cfg: &EngineConfig,
    first_sweep: Option<DateTime<Utc>>,
    blocked: bool,
    callees: &[Callee<'_>],
) -> Estimate {
    let assumes = "one call per contact (each retry adds its delay), the whole dispatch rate \
                   for this campaign, and no live-call cap"
        .to_string();
    let mut out = Estimate {
        calls_left: callees.len() as u64,
        rate_per_second: cfg.rate_per_second,
        finish_at: None,
        never_open: 0,
        assumes,
    };
    let Some(first) = first_sweep.filter(|_| !blocked && !callees.is_empty()) else {
        return out;
    };
    let (last, never) = simulate(rules, cfg, first, callees);
    out.finish_at = last.map(to_db_text);
    out.never_open = never;
    out
}

/// Places the calls one by one; returns the last call's time and how many
/// contacts never had their hours open.
fn simulate(
    rules: &CampaignRules,
    cfg: &EngineConfig,
    first: DateTime<Utc>,
    callees: &[Callee<'_>],
) -> (Option<DateTime<Utc>>, u64) {
    let step = chrono::Duration::microseconds((1e6 / cfg.rate_per_second.max(1e-6)) as i64);
    let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, usize)>> = callees
        .iter()
        .enumerate()
        .map(|(i, c)| Reverse((c.ready.max(first), i)))
        .collect();
    let (mut t, mut last, mut never) = (first, None, 0u64);
    // Each contact is put back at most once per day its hours stay shut.
    let mut budget = callees.len().saturating_mul(8).saturating_add(64);
    while let Some(Reverse((ready, i))) = heap.pop() {
        budget = budget.saturating_sub(1);
        if ready > t {
            // Idle until then: the next sweep at or after it picks it up.
            let before = crate::clock::minus(ready, chrono::Duration::seconds(1));
            let sweep = rules.schedule.next_after(before, rules.timezone);
            t = sweep.unwrap_or(ready).max(ready);
        }
        let c = &callees[i];
        let Ok(zones) = policy::contact_zones(c.timezone, c.number, rules.timezone) else {
            never += 1;
            continue;
        };
        let hours = policy::hours_rules(rules.window, &cfg.compliance, c.number);
        match policy::first_closed(&hours, zones.zones(), t) {
            None => {
                last = Some(t);
                t = t.checked_add_signed(step).unwrap_or(t);
            }
            Some(_) => match policy::next_open_all(&hours, zones.zones(), t) {
                Some(open) if budget > 0 => heap.push(Reverse((open, i))),
                _ => never += 1,
            },
        }
    }
    (last, never)
}
