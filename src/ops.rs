//! systemd integration: readiness, status, watchdog and stop notifications.
//! Each call is a no-op when the daemon does not run under systemd.

use std::time::Duration;

use sd_notify::NotifyState;

fn notify(state: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some()
        && let Err(e) = sd_notify::notify(state)
    {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// `READY=1`: migrations and start-up recovery are done.
pub fn notify_ready() {
    notify(&[NotifyState::Ready]);
}

/// `STOPPING=1`.
pub fn notify_stopping() {
    notify(&[NotifyState::Stopping]);
}

/// `RELOADING=1` with `MONOTONIC_USEC`, which systemd 253 and newer require.
pub fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// `STATUS=...` and `WATCHDOG=1`: sent from the heartbeat loop, so a wedged
/// daemon stops petting the watchdog and systemd restarts it.
pub fn notify_status(line: &str) {
    notify(&[NotifyState::Status(line), NotifyState::Watchdog]);
}

/// The heartbeat period: `every`, or less than half the watchdog timeout when
/// systemd set one.
pub fn watchdog_interval(every: Duration) -> Duration {
    match sd_notify::watchdog_enabled() {
        Some(timeout) if !timeout.is_zero() => every.min(timeout / 3),
        _ => every,
    }
}
