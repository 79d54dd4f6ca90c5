//! Operations: systemd integration (readiness, status, watchdog and stop
//! notifications, each a no-op when the daemon does not run under systemd)
//! and the Prometheus endpoint (`metrics.listen`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
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

/// `STATUS=...`, with `WATCHDOG=1` when `pet`: sent from the heartbeat loop,
/// which pets only while the daemon makes progress (or waits by choice), so
/// systemd restarts a wedged daemon.
pub fn notify_status(line: &str, pet: bool) {
    if pet {
        notify(&[NotifyState::Status(line), NotifyState::Watchdog]);
    } else {
        notify(&[NotifyState::Status(line)]);
    }
}

/// How long one scheduler step may run before the daemon counts as wedged:
/// half the watchdog timeout (at least 10 s, above SQLite's busy timeout), or
/// a minute without a watchdog.
pub fn stall_limit() -> Duration {
    match sd_notify::watchdog_enabled() {
        Some(timeout) if !timeout.is_zero() => (timeout / 2).max(Duration::from_secs(10)),
        _ => Duration::from_secs(60),
    }
}

/// The heartbeat period: `every`, or a third of the watchdog timeout when
/// systemd set a shorter one.
pub fn watchdog_interval(every: Duration) -> Duration {
    match sd_notify::watchdog_enabled() {
        Some(timeout) if !timeout.is_zero() => every.min(timeout / 3),
        _ => every,
    }
}

/// Buckets of `dialerd_reconcile_lag_seconds`: from a few seconds (the
/// simulator) to the two hours of `reconcile.outcome_timeout_secs`.
const LAG_BUCKETS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// Serves `/metrics` (Prometheus text format) on `addr` and installs the
/// global recorder the engine's `metrics::counter!` calls feed. Needs a tokio
/// runtime; call it once per process. The endpoint has no authentication:
/// keep `addr` on loopback (the key is unset by default), since any other
/// address serves campaign names and dispatch counts to the network.
pub fn install_metrics(addr: SocketAddr) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the metrics endpoint listens on a non-loopback address: anyone who can reach it can read it");
    }
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("dialerd_reconcile_lag_seconds".into()),
            &LAG_BUCKETS,
        )
        .context("metrics buckets")?
        .install()
        .with_context(|| format!("cannot serve metrics on {addr} (metrics.listen)"))?;
    describe_metrics();
    tracing::info!(%addr, "metrics at http://{addr}/metrics");
    Ok(())
}

/// Describes every metric the engine records, and starts the unlabelled ones
/// at zero so a dashboard sees them before the first event.
fn describe_metrics() {
    metrics::describe_counter!(
        "dialerd_dispatches_total",
        Unit::Count,
        "Dispatch attempts finished, by result: accepted, uncertain, rejected, unauthorized, not_sent"
    );
    metrics::describe_gauge!(
        "dialerd_attempts_in_flight",
        Unit::Count,
        "Dispatch requests being sent right now"
    );
    metrics::describe_counter!(
        "dialerd_rate_limiter_waits_total",
        Unit::Count,
        "Requests that had to wait for the global rate limiter (dispatch.rate_per_second)"
    );
    metrics::describe_counter!(
        "dialerd_outcomes_total",
        Unit::Count,
        "Final call outcomes read from the call logs, by campaign and outcome"
    );
    metrics::describe_histogram!(
        "dialerd_reconcile_lag_seconds",
        Unit::Seconds,
        "Time from sending a dispatch to recording its final outcome"
    );
    metrics::describe_gauge!(
        "dialerd_uncertain_attempts",
        Unit::Count,
        "Attempts whose dispatch may or may not have placed a call, awaiting the call logs"
    );
    metrics::describe_counter!(
        "dialerd_reconcile_list_requests_total",
        Unit::Count,
        "Call-log pages requested by the reconciler"
    );
    metrics::counter!("dialerd_rate_limiter_waits_total").absolute(0);
    metrics::counter!("dialerd_reconcile_list_requests_total").absolute(0);
    metrics::gauge!("dialerd_attempts_in_flight").set(0.0);
    metrics::gauge!("dialerd_uncertain_attempts").set(0.0);
}
