//! Campaign-wide limits on dialing, decided on plain data the store reads
//! ([`PoolState`], [`SpendState`]): which number of a campaign's caller pool
//! a call goes out from ([`pick_number`]), how many calls a pool still has
//! room for and when it frees up, and the spend cap ([`cap_reached`],
//! [`spend_room`]). Pure functions: the dispatcher applies them when it
//! claims and again at the instant of each try, and a planner can ask the
//! same questions without dialing.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::phone::PhoneNumber;
use crate::store::{PoolNumber, PoolState, SpendState};

/// How long contacts of a pool without any number that could free up (no
/// active number, or all of them disabled) wait before the pool is looked
/// at again: an operator adding or enabling a number is seen this soon.
pub const POOL_RECHECK: Duration = Duration::from_secs(300);

/// Whether `n` may place another call now (under its own daily cap).
pub fn is_free(n: &PoolNumber) -> bool {
    n.max_calls_per_day == 0 || n.calls_24h < i64::from(n.max_calls_per_day)
}

/// Calls the pool may still place now, across its active numbers, less the
/// attempts already claimed for it and not yet given a number;
/// `None`: no limit (an active number without a cap).
pub fn free_calls(state: &PoolState) -> Option<u64> {
    let mut free: u64 = 0;
    for n in &state.numbers {
        if n.max_calls_per_day == 0 {
            return None;
        }
        let left = i64::from(n.max_calls_per_day) - n.calls_24h;
        free += u64::try_from(left).unwrap_or(0);
    }
    Some(free.saturating_sub(state.unpicked))
}

/// How well caller number `caller` presents to `callee`: 2 for the same
/// NANP area code, 1 for the same country, else 0 (local presence).
pub fn local_presence(caller: &str, callee: &str) -> u8 {
    let nanp_area = |n: &str| {
        n.strip_prefix("+1")
            .filter(|rest| rest.len() == 10 && rest.bytes().all(|b| b.is_ascii_digit()))
            .map(|rest| rest[..3].to_string())
    };
    if let (Some(a), Some(b)) = (nanp_area(caller), nanp_area(callee))
        && a == b
    {
        return 2;
    }
    let region = |n: &str| PhoneNumber::from_e164_unchecked(n.to_string()).region();
    match (region(caller), region(callee)) {
        (Some(a), Some(b)) if a == b => 1,
        _ => 0,
    }
}

/// The number a call to `callee` goes out from: a free active number,
/// preferring local presence (same area code, then same country), then the
/// one least used in the rolling 24 h, then the lowest id (so rotation is
/// even and the choice repeatable). `None`: no number is free.
pub fn pick_number(state: &PoolState, callee: &str) -> Option<i64> {
    state
        .numbers
        .iter()
        .filter(|n| is_free(n))
        .max_by(|a, b| {
            local_presence(&a.phone_number, callee)
                .cmp(&local_presence(&b.phone_number, callee))
                .then(b.calls_24h.cmp(&a.calls_24h))
                .then(b.id.cmp(&a.id))
        })
        .map(|n| n.id)
}

/// When a number of a pool whose numbers are (or are about to be) all at
/// their caps next frees up: the earliest instant the oldest counted call
/// of a capped number leaves its 24 h (a number without calls yet takes
/// its first now); without an active number, [`POOL_RECHECK`] from `now`.
pub fn pool_frees_at(state: &PoolState, now: DateTime<Utc>) -> DateTime<Utc> {
    let day = chrono::Duration::hours(24);
    state
        .numbers
        .iter()
        .filter(|n| n.max_calls_per_day > 0)
        .map(|n| n.oldest_24h.unwrap_or(now).max(now - day) + day)
        .min()
        .unwrap_or_else(|| crate::clock::plus(now, POOL_RECHECK))
}

/// Why a pool has no number free, for the attempt's error and the log.
pub fn pool_hold_text(state: &PoolState, now: DateTime<Utc>) -> String {
    let until = crate::clock::to_db_text(pool_frees_at(state, now));
    if state.numbers.is_empty() {
        return format!(
            "caller pool {:?} has no active number ({} disabled); looked at again at {until}",
            state.pool, state.disabled
        );
    }
    format!(
        "every active number of caller pool {:?} ({}) reached its daily cap; the first frees up at {until}",
        state.pool,
        state.numbers.len()
    )
}

/// The cost assumed for one call awaiting its outcome: the campaign's mean
/// reconciled cost, else its `cost_estimate`, else `default`
/// (`campaign_defaults.cost_estimate`); `None`: nothing is assumed.
pub fn per_call_estimate(s: &SpendState, default: Option<f64>) -> Option<f64> {
    if s.costed_calls > 0 {
        return Some(s.spent / s.costed_calls as f64);
    }
    s.cost_estimate.or(default)
}

/// Reconciled cost plus the estimate for calls awaiting their outcome
/// (with `claimed`, also the attempts claimed and about to be sent).
pub fn committed_cost(s: &SpendState, default: Option<f64>, claimed: bool) -> f64 {
    let open = s.awaiting + if claimed { s.sending } else { 0 };
    s.spent + open as f64 * per_call_estimate(s, default).unwrap_or(0.0)
}

/// `Some(reason)` once the committed cost has reached the campaign's cap.
pub fn cap_reached(s: &SpendState, default: Option<f64>, claimed: bool) -> Option<String> {
    let max = s.max_cost?;
    let committed = committed_cost(s, default, claimed);
    (committed >= max).then(|| {
        let open = s.awaiting + if claimed { s.sending } else { 0 };
        let each = per_call_estimate(s, default)
            .map_or_else(|| "not estimated".to_string(), |e| format!("{e:.2} each"));
        let calls = if open == 1 {
            "1 call awaiting its outcome".to_string()
        } else {
            format!("{open} calls awaiting their outcome")
        };
        format!(
            "spend cap reached: {committed:.2} of {max:.2} (spent {:.2}; {calls}, {each})",
            s.spent
        )
    })
}

/// Calls that may still be claimed before the cap is reached, counting the
/// attempts already claimed: `None` without a cap or without an estimate
/// (then only reconciled cost stops the campaign).
pub fn spend_room(s: &SpendState, default: Option<f64>) -> Option<u64> {
    let max = s.max_cost?;
    let committed = committed_cost(s, default, true);
    if committed >= max {
        return Some(0);
    }
    let each = per_call_estimate(s, default).filter(|e| *e > 0.0)?;
    // A call may go out while the committed cost is below the cap.
    Some(((max - committed) / each).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(id: i64, phone: &str, cap: u32, calls: i64) -> PoolNumber {
        PoolNumber {
            id,
            phone_number: phone.into(),
            max_calls_per_day: cap,
            calls_24h: calls,
            oldest_24h: None,
        }
    }

    fn pool(numbers: Vec<PoolNumber>) -> PoolState {
        PoolState {
            pool: "p".into(),
            numbers,
            disabled: 0,
            unpicked: 0,
        }
    }

    #[test]
    fn the_same_area_code_wins_over_a_less_used_number() {
        let p = pool(vec![
            number(1, "+14155550100", 0, 0),
            number(2, "+12125550100", 0, 5),
            number(3, "+442079460000", 0, 0),
        ]);
        assert_eq!(pick_number(&p, "+12125550199"), Some(2));
        // No area code matches: the same country, least used first.
        assert_eq!(pick_number(&p, "+13105550199"), Some(1));
        assert_eq!(pick_number(&p, "+442079460999"), Some(3));
    }

    #[test]
    fn a_number_at_its_cap_is_never_picked() {
        let p = pool(vec![number(1, "+12125550100", 2, 2)]);
        assert_eq!(pick_number(&p, "+12125550199"), None);
        assert_eq!(free_calls(&p), Some(0));
    }

    #[test]
    fn the_mean_cost_replaces_the_configured_estimate_once_known() {
        let mut s = SpendState {
            max_cost: Some(10.0),
            awaiting: 2,
            ..SpendState::default()
        };
        assert_eq!(per_call_estimate(&s, Some(1.5)), Some(1.5));
        assert_eq!(committed_cost(&s, Some(1.5), false), 3.0);
        s.spent = 4.0;
        s.costed_calls = 2;
        assert_eq!(committed_cost(&s, Some(1.5), false), 8.0);
        assert_eq!(spend_room(&s, None), Some(1));
        s.spent = 6.0;
        let why = cap_reached(&s, None, false).unwrap();
        assert!(
            why.starts_with("spend cap reached: 12.00 of 10.00"),
            "{why}"
        );
    }
}
