//! The configuration as written: every key of `config/dialerd.toml` with its
//! default. Unknown keys are refused so a typo never silently falls back to a
//! default. [`super::Settings`] is the validated, typed form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub database: RawDatabase,
    pub provider: RawProvider,
    pub dispatch: RawDispatch,
    pub reconcile: RawReconcile,
    pub inbox: RawInbox,
    pub campaign_defaults: RawCampaignDefaults,
    pub log: RawLog,
    pub metrics: RawMetrics,
    pub daemon: RawDaemon,
    pub compliance: RawCompliance,
    pub webhooks: crate::webhooks::RawWebhooks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDatabase {
    pub path: String,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            path: "dialerd.db".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProvider {
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
    pub request_timeout_ms: u64,
    /// The largest API response body read, in bytes.
    pub max_response_bytes: u64,
}

impl Default for RawProvider {
    fn default() -> Self {
        Self {
            base_url: "https://backend.omnidim.io/api/v1".into(),
            api_key_file: None,
            request_timeout_ms: 15_000,
            max_response_bytes: crate::provider::DEFAULT_MAX_RESPONSE_BYTES as u64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDispatch {
    pub rate_per_second: f64,
    pub burst: u32,
    pub max_in_flight: u32,
    pub max_live_calls_per_campaign: u32,
    pub retry_max_tries: u32,
    pub retry_min_delay_ms: u64,
    pub retry_max_delay_secs: u64,
    pub claim_batch: u32,
    /// Placed calls to one number in any rolling 24 h, all campaigns together; 0 = no cap.
    pub max_calls_per_number_per_day: u32,
    /// A claimed attempt not sent within this many seconds is released unsent.
    pub max_claim_wait_secs: u64,
}

impl Default for RawDispatch {
    fn default() -> Self {
        Self {
            rate_per_second: 1.0,
            burst: 1,
            max_in_flight: 8,
            max_live_calls_per_campaign: 0,
            retry_max_tries: 6,
            retry_min_delay_ms: 500,
            retry_max_delay_secs: 60,
            claim_batch: 256,
            max_calls_per_number_per_day: 3,
            max_claim_wait_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawReconcile {
    pub poll_interval_secs: f64,
    pub page_size: u32,
    pub uncertain_grace_secs: u64,
    pub outcome_timeout_secs: u64,
    pub max_pages_per_poll: u32,
    pub log_time_skew_secs: u64,
}

impl Default for RawReconcile {
    fn default() -> Self {
        Self {
            poll_interval_secs: 30.0,
            page_size: 100,
            uncertain_grace_secs: 600,
            outcome_timeout_secs: 7200,
            max_pages_per_poll: 50,
            log_time_skew_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawInbox {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    pub poll_interval_secs: f64,
    pub settle_secs: f64,
}

impl Default for RawInbox {
    fn default() -> Self {
        Self {
            dir: None,
            poll_interval_secs: 2.0,
            settle_secs: 2.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCampaignDefaults {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_number_id: Option<i64>,
    pub schedule: String,
    pub timezone: String,
    pub window: String,
    pub max_attempts: u32,
    pub retry_delay_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub retry_outcomes: Vec<String>,
}

impl Default for RawCampaignDefaults {
    fn default() -> Self {
        Self {
            agent_id: None,
            from_number_id: None,
            schedule: "0 */5 * * * *".into(),
            timezone: "UTC".into(),
            window: "09:00-20:00".into(),
            max_attempts: 3,
            retry_delay_secs: 3600,
            region: None,
            retry_outcomes: ["no_answer", "busy", "failed", "voicemail"]
                .map(String::from)
                .to_vec(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub level: String,
    pub format: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawMetrics {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDaemon {
    pub shutdown_grace_secs: u64,
    pub heartbeat_secs: u64,
    pub campaign_refresh_secs: f64,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            shutdown_grace_secs: 20,
            heartbeat_secs: 5,
            campaign_refresh_secs: 2.0,
        }
    }
}

/// `[compliance]`: rules that hold whatever a campaign says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCompliance {
    /// Callee-local `HH:MM-HH:MM` outside which nobody is called, or `off`.
    pub quiet_hours: String,
    /// Rules per state or province (`"US-FL"`), merged over the shipped ones.
    pub regions: BTreeMap<String, RawRegionRule>,
    /// `[compliance.opt_out]`: what in a call's log puts its number on the DNC list.
    pub opt_out: RawOptOut,
}

impl Default for RawCompliance {
    fn default() -> Self {
        // Fla. Stat. §501.616(6) and 15 O.S. §775C.4: 8 a.m. to 8 p.m. and
        // three calls per 24 hours on the same subject.
        let statute = || RawRegionRule {
            window: Some("08:00-20:00".into()),
            max_calls_per_day: Some(3),
        };
        Self {
            quiet_hours: "08:00-21:00".into(),
            regions: [
                ("US-FL".to_string(), statute()),
                ("US-OK".to_string(), statute()),
            ]
            .into_iter()
            .collect(),
            opt_out: RawOptOut::default(),
        }
    }
}

/// `[compliance.opt_out]`: a callee who asks not to be called again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOptOut {
    /// The extracted variable that, when truthy, opts the callee out (`""`: none).
    pub variable: String,
    /// Phrases of the callee's that opt them out (empty: none).
    pub phrases: Vec<String>,
}

impl Default for RawOptOut {
    fn default() -> Self {
        Self {
            variable: "opt_out".into(),
            phrases: [
                "stop calling",
                "do not call",
                "don't call",
                "dont call",
                "never call",
                "remove me from your list",
                "take me off your list",
                "put me on your do not call list",
                "unsubscribe",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// `[compliance.regions."US-FL"]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRegionRule {
    /// Callee-local calling hours, `HH:MM-HH:MM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Calls placed to one number in any 24 hours, all campaigns together (0: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_day: Option<u32>,
}
