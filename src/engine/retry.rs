//! Waiting before a safe retry: backon's exponential backoff with jitter,
//! bounded, and a gate shared by every worker so that no request is sent
//! sooner than a `Retry-After` allowed.

use std::sync::Mutex;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};

use crate::clock::Clock;

/// The delays between safe retries inside one attempt.
pub fn backoff(
    min_delay: Duration,
    max_delay: Duration,
    max_tries: u32,
) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(min_delay)
        .with_max_delay(max_delay)
        .with_max_times(max_tries.saturating_sub(1) as usize)
        .build()
}

/// The earliest instant the next dispatch request may be sent, pushed later
/// by every 429 or 503 that carried a `Retry-After`.
#[derive(Debug, Default)]
pub struct RetryGate {
    // A std Mutex: nothing awaits while it is held.
    not_before: Mutex<Option<DateTime<Utc>>>,
}

impl RetryGate {
    /// Holds every sender until `until` (never moves the gate earlier).
    pub fn hold_until(&self, until: DateTime<Utc>) {
        let mut nb = self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        if nb.is_none_or(|t| t < until) {
            *nb = Some(until);
        }
    }

    /// When the gate opens, if it is closed at `now`.
    pub fn closed_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let nb = *self.not_before.lock().unwrap_or_else(|p| p.into_inner());
        nb.filter(|t| *t > now)
    }

    /// Waits until the gate is open.
    pub async fn wait(&self, clock: &dyn Clock) {
        while let Some(until) = self.closed_until(clock.now()) {
            clock.sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::TimeZone;

    #[test]
    fn backoff_is_bounded_in_count_and_size() {
        let delays: Vec<_> =
            backoff(Duration::from_millis(100), Duration::from_secs(2), 6).collect();
        assert_eq!(delays.len(), 5);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(4)),
            "{delays:?}"
        );
        assert!(delays[0] >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn the_gate_holds_senders_until_retry_after_has_passed() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let clock = ManualClock::new(start);
        let gate = std::sync::Arc::new(RetryGate::default());
        gate.hold_until(start + chrono::Duration::seconds(5));
        gate.hold_until(start + chrono::Duration::seconds(2)); // never moves earlier
        let (g, c) = (gate.clone(), clock.clone());
        let waiter = tokio::spawn(async move { g.wait(&c).await });
        clock.advance(Duration::from_secs(4));
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
