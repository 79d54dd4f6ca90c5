//! Each component's section of the configuration, typed: durations already
//! converted, numbers already validated. A component reads its own section
//! ([`Settings::daemon`], [`Settings::inbox`], ...) and never the raw form.

use std::path::PathBuf;
use std::time::Duration;

use super::Settings;

/// `[daemon]`: the loops' own periods.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// How long a stop waits for requests in flight.
    pub shutdown_grace: Duration,
    /// How often the heartbeat is written (and the watchdog petted).
    pub heartbeat: Duration,
    /// The longest the scheduler sleeps before it looks at the campaigns again.
    pub campaign_refresh: Duration,
}

/// `[inbox]`: the watched directory and its periods.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxSettings {
    /// The directory, when the inbox is on.
    pub dir: Option<PathBuf>,
    /// How often it is scanned.
    pub poll_interval: Duration,
    /// How long a file must stay unchanged before it is imported.
    pub settle: Duration,
}

/// `[dispatch]`: rate, concurrency, retries and caps.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchSettings {
    pub rate_per_second: f64,
    pub burst: u32,
    pub max_in_flight: u32,
    /// 0: no cap.
    pub max_live_calls_per_campaign: u32,
    pub retry_max_tries: u32,
    pub retry_min_delay: Duration,
    pub retry_max_delay: Duration,
    pub claim_batch: u32,
    /// Placed calls to one number in any rolling 24 h, all campaigns; 0 = no cap.
    pub max_calls_per_number_per_day: u32,
    /// A claimed attempt not sent within this long is released unsent.
    pub max_claim_wait: Duration,
}

/// `[reconcile]`: how call logs are read back.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcileSettings {
    /// How often a reconcile round runs.
    pub poll_interval: Duration,
    pub page_size: u32,
    pub max_pages_per_poll: u32,
    pub uncertain_grace: Duration,
    pub outcome_timeout: Duration,
    pub log_time_skew: Duration,
}

/// `[log]`: validated level filter and format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// A `tracing` filter directive, such as `info` or `dialerd=debug`.
    pub level: String,
    /// One JSON object a line instead of text.
    pub json: bool,
}

/// Seconds written as a float (validated above 0 and at most a day) as a
/// duration, clamped so a hand-built [`Settings`] cannot make a loop spin.
fn secs_f64(v: f64) -> Duration {
    if v.is_finite() {
        Duration::from_secs_f64(v.clamp(0.001, 86_400.0))
    } else {
        Duration::from_secs(1)
    }
}

impl Settings {
    /// The `[daemon]` section.
    pub fn daemon(&self) -> DaemonSettings {
        let d = &self.raw.daemon;
        DaemonSettings {
            shutdown_grace: Duration::from_secs(d.shutdown_grace_secs),
            heartbeat: Duration::from_secs(d.heartbeat_secs),
            campaign_refresh: secs_f64(d.campaign_refresh_secs),
        }
    }

    /// The `[inbox]` section.
    pub fn inbox(&self) -> InboxSettings {
        let i = &self.raw.inbox;
        InboxSettings {
            dir: self.inbox_dir.clone(),
            poll_interval: secs_f64(i.poll_interval_secs),
            settle: secs_f64(i.settle_secs.max(0.0)),
        }
    }

    /// The `[dispatch]` section.
    pub fn dispatch(&self) -> DispatchSettings {
        let d = &self.raw.dispatch;
        DispatchSettings {
            rate_per_second: d.rate_per_second,
            burst: d.burst,
            max_in_flight: d.max_in_flight,
            max_live_calls_per_campaign: d.max_live_calls_per_campaign,
            retry_max_tries: d.retry_max_tries,
            retry_min_delay: Duration::from_millis(d.retry_min_delay_ms),
            retry_max_delay: Duration::from_secs(d.retry_max_delay_secs),
            claim_batch: d.claim_batch,
            max_calls_per_number_per_day: d.max_calls_per_number_per_day,
            max_claim_wait: Duration::from_secs(d.max_claim_wait_secs),
        }
    }

    /// The `[reconcile]` section.
    pub fn reconcile(&self) -> ReconcileSettings {
        let r = &self.raw.reconcile;
        ReconcileSettings {
            poll_interval: secs_f64(r.poll_interval_secs),
            page_size: r.page_size,
            max_pages_per_poll: r.max_pages_per_poll,
            uncertain_grace: Duration::from_secs(r.uncertain_grace_secs),
            outcome_timeout: Duration::from_secs(r.outcome_timeout_secs),
            log_time_skew: Duration::from_secs(r.log_time_skew_secs),
        }
    }

    /// The `[log]` section.
    pub fn log(&self) -> LogSettings {
        LogSettings {
            level: self.raw.log.level.clone(),
            json: self.raw.log.format == "json",
        }
    }

    /// `provider.max_response_bytes`, as a size in memory.
    pub fn max_response_bytes(&self) -> usize {
        usize::try_from(self.raw.provider.max_response_bytes).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::super::Settings;

    fn load(toml: &str) -> Settings {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dialerd.toml");
        std::fs::write(&file, toml).unwrap();
        Settings::load_with_env(Some(&file), &HashMap::new()).unwrap()
    }

    #[test]
    fn each_section_carries_the_files_numbers_as_durations_in_their_units() {
        let s = load(
            "[daemon]\nshutdown_grace_secs = 7\nheartbeat_secs = 3\ncampaign_refresh_secs = 0.25\n\
             [inbox]\ndir = \"/tmp/in\"\npoll_interval_secs = 1.5\nsettle_secs = 0\n\
             [dispatch]\nretry_min_delay_ms = 250\nretry_max_delay_secs = 9\nmax_claim_wait_secs = 4\n\
             [reconcile]\npoll_interval_secs = 12.5\nuncertain_grace_secs = 60\n\
             [log]\nformat = \"json\"\nlevel = \"debug\"\n",
        );
        let d = s.daemon();
        assert_eq!(d.shutdown_grace, Duration::from_secs(7));
        assert_eq!(d.heartbeat, Duration::from_secs(3));
        assert_eq!(d.campaign_refresh, Duration::from_millis(250));
        let i = s.inbox();
        assert_eq!(i.dir.as_deref(), Some(std::path::Path::new("/tmp/in")));
        assert_eq!(i.poll_interval, Duration::from_millis(1500));
        // Zero settle is allowed, but never a zero wait: the floor is 1 ms.
        assert_eq!(i.settle, Duration::from_millis(1));
        let p = s.dispatch();
        assert_eq!(p.retry_min_delay, Duration::from_millis(250));
        assert_eq!(p.retry_max_delay, Duration::from_secs(9));
        assert_eq!(p.max_claim_wait, Duration::from_secs(4));
        let r = s.reconcile();
        assert_eq!(r.poll_interval, Duration::from_millis(12_500));
        assert_eq!(r.uncertain_grace, Duration::from_secs(60));
        let l = s.log();
        assert!(l.json);
        assert_eq!(l.level, "debug");
    }
}
