//! Configuration: built-in defaults, then the TOML file (`--config` or
//! `$DIALERD_CONFIG`), then `DIALERD_SECTION__KEY` environment variables.
//! Every key is validated at start-up into [`Settings`]; an error names the
//! file and the key. The API key is read from `DIALERD_API_KEY`,
//! `provider.api_key_file` or `$CREDENTIALS_DIRECTORY/api_key`, never from the
//! configuration file itself.

mod compliance;
mod raw;
mod sections;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Re-exported where they were first defined; they parse domain values.
pub use crate::domain::{parse_outcomes, parse_region};
use chrono_tz::Tz;
pub use compliance::{Compliance, OptOut, RegionRule};
pub use raw::*;
pub use sections::{
    DaemonSettings, DispatchSettings, InboxSettings, LogSettings, ReconcileSettings,
};

use crate::calendar::{Schedule, Window, parse_tz};
use crate::domain::Outcome;
use crate::secret::ApiKey;

/// A configuration problem; the command exits 78.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed, or has an unknown key or a wrong type.
    #[error("configuration {origin}: {message}")]
    Load {
        /// The file (or "environment").
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a value that is not allowed.
    #[error("configuration key {key}: {message}")]
    Invalid {
        /// The key, e.g. `dispatch.rate_per_second`.
        key: String,
        /// What is wrong with its value.
        message: String,
    },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Where the API key came from (printed by `check-config`, never the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `DIALERD_API_KEY`.
    Env,
    /// `provider.api_key_file`.
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/api_key` (systemd `LoadCredential=`).
    Credentials(PathBuf),
    /// No key was configured.
    None,
}

/// Defaults for new campaigns, typed.
#[derive(Debug, Clone)]
pub struct CampaignDefaults {
    pub agent_id: Option<i64>,
    pub from_number_id: Option<i64>,
    pub schedule: Schedule,
    pub timezone: Tz,
    pub window: Window,
    pub max_attempts: u32,
    pub retry_delay_secs: u64,
    pub region: Option<phonenumber::country::Id>,
    pub retry_outcomes: Vec<Outcome>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The merged configuration as written (for `check-config`).
    pub raw: RawConfig,
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
    pub database_path: PathBuf,
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    pub key_source: KeySource,
    pub request_timeout: Duration,
    pub campaign_defaults: CampaignDefaults,
    pub inbox_dir: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    /// Quiet hours and region rules, on top of every campaign's window.
    pub compliance: Compliance,
    /// `[webhooks]`, when `webhooks.url` is set.
    pub webhooks: Option<crate::webhooks::WebhookSettings>,
}

impl crate::store::NewCampaign {
    /// A campaign named `name` with the configured defaults.
    pub fn from_defaults(name: &str, d: &CampaignDefaults) -> Self {
        Self {
            name: name.trim().to_string(),
            agent_id: d.agent_id,
            from_number_id: d.from_number_id,
            schedule: d.schedule.clone(),
            timezone: d.timezone,
            window: d.window,
            max_attempts: d.max_attempts,
            retry_delay_secs: d.retry_delay_secs,
            retry_outcomes: d.retry_outcomes.clone(),
            region: d.region,
        }
    }
}

impl Settings {
    /// Loads the configuration the way the command line does: `file`, else
    /// `$DIALERD_CONFIG`, else defaults; then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(file, &env)
    }

    /// Loads with an explicit environment (tests pass their own).
    pub fn load_with_env(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.get("DIALERD_CONFIG")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        });
        let raw = merge(file.as_deref(), env)?;
        Self::from_raw(raw, file, env)
    }

    /// Validates a merged configuration.
    pub fn from_raw(
        raw: RawConfig,
        file: Option<PathBuf>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        validate_numbers(&raw)?;
        let d = &raw.campaign_defaults;
        let campaign_defaults = CampaignDefaults {
            agent_id: d.agent_id,
            from_number_id: d.from_number_id,
            schedule: Schedule::parse(&d.schedule)
                .map_err(|m| invalid("campaign_defaults.schedule", m))?,
            timezone: parse_tz(&d.timezone)
                .map_err(|m| invalid("campaign_defaults.timezone", m))?,
            window: Window::parse(&d.window).map_err(|m| invalid("campaign_defaults.window", m))?,
            max_attempts: d.max_attempts,
            retry_delay_secs: d.retry_delay_secs,
            region: d
                .region
                .as_deref()
                .map(parse_region)
                .transpose()
                .map_err(|m| invalid("campaign_defaults.region", m))?,
            retry_outcomes: parse_outcomes(&d.retry_outcomes)
                .map_err(|m| invalid("campaign_defaults.retry_outcomes", m))?,
        };
        let base_url = raw.provider.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                "provider.base_url",
                format!("{base_url:?} is not an http(s) URL"),
            ));
        }
        let metrics_listen = raw
            .metrics
            .listen
            .as_deref()
            .map(|s| s.parse::<SocketAddr>())
            .transpose()
            .map_err(|e| {
                invalid(
                    "metrics.listen",
                    format!("not an address like 127.0.0.1:9184: {e}"),
                )
            })?;
        if !["text", "json"].contains(&raw.log.format.as_str()) {
            return Err(invalid(
                "log.format",
                format!("{:?} is not text or json", raw.log.format),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log.level)
            .map_err(|e| invalid("log.level", format!("{:?}: {e}", raw.log.level)))?;
        let (api_key, key_source) = resolve_api_key(&raw, env)?;
        let compliance = Compliance::from_raw(&raw.compliance)?;
        let webhooks = crate::webhooks::WebhookSettings::from_raw(&raw.webhooks, env)?;
        Ok(Self {
            database_path: PathBuf::from(&raw.database.path),
            base_url,
            api_key,
            key_source,
            request_timeout: Duration::from_millis(raw.provider.request_timeout_ms),
            campaign_defaults,
            inbox_dir: raw.inbox.dir.as_ref().map(PathBuf::from),
            metrics_listen,
            compliance,
            webhooks,
            file,
            raw,
        })
    }

    /// What is allowed but unwise: an API key file that other users of the
    /// host may read.
    pub fn warnings(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut out = Vec::new();
        if let KeySource::File(path) = &self.key_source
            && let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            out.push(format!(
                "provider.api_key_file {} is readable by every user of this host (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ));
        }
        out
    }

    /// The effective configuration as TOML, with where the API key comes from
    /// but never the key.
    pub fn redacted_toml(&self) -> String {
        let body = toml::to_string_pretty(&self.raw)
            .unwrap_or_else(|e| format!("# (cannot render: {e})\n"));
        let key = match (&self.api_key, &self.key_source) {
            (Some(_), KeySource::Env) => "[redacted] (from DIALERD_API_KEY)".to_string(),
            (Some(_), KeySource::File(p)) => format!("[redacted] (from {})", p.display()),
            (Some(_), KeySource::Credentials(p)) => format!("[redacted] (from {})", p.display()),
            _ => "not set".to_string(),
        };
        let file = self
            .file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(none: built-in defaults)".into());
        format!("# configuration file: {file}\n# api key: {key}\n{body}")
    }
}

/// Layers defaults, the file and the environment into one [`RawConfig`].
fn merge(file: Option<&Path>, env: &HashMap<String, String>) -> Result<RawConfig, ConfigError> {
    let defaults =
        config::Config::try_from(&RawConfig::default()).map_err(|e| ConfigError::Load {
            origin: "defaults".into(),
            message: e.to_string(),
        })?;
    let mut builder = config::Config::builder().add_source(defaults);
    let origin = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Load {
                origin: format!("file {}", path.display()),
                message: format!("cannot read it: {e}"),
            })?;
            builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
            format!("file {}", path.display())
        }
        None => "defaults".into(),
    };
    // Only DIALERD_SECTION__KEY variables are configuration; DIALERD_CONFIG and
    // DIALERD_API_KEY are read on their own.
    let vars: config::Map<String, String> = env
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("DIALERD_")?;
            rest.contains("__").then(|| (k.clone(), v.clone()))
        })
        .collect();
    let env_names: Vec<String> = vars.keys().cloned().collect();
    builder = builder.add_source(
        config::Environment::with_prefix("DIALERD")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .with_list_parse_key("campaign_defaults.retry_outcomes")
            .with_list_parse_key("webhooks.events")
            .with_list_parse_key("compliance.opt_out.phrases")
            .source(Some(vars)),
    );
    let origin = if env_names.is_empty() {
        origin
    } else {
        format!("{origin} with environment {}", env_names.join(", "))
    };
    let merged = builder.build().map_err(|e| ConfigError::Load {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    merged
        .try_deserialize::<RawConfig>()
        .map_err(|e| ConfigError::Load {
            origin,
            message: explain(e.to_string()),
        })
}

/// Adds a hint to the most common mistake: an API key in the file.
fn explain(msg: String) -> String {
    if msg.contains("unknown field `api_key`") {
        format!(
            "{msg}; the API key is never read from the configuration file: set DIALERD_API_KEY, \
             provider.api_key_file, or a systemd credential named api_key"
        )
    } else {
        msg
    }
}

fn validate_numbers(raw: &RawConfig) -> Result<(), ConfigError> {
    let d = &raw.dispatch;
    if !(d.rate_per_second.is_finite() && d.rate_per_second > 0.0 && d.rate_per_second <= 10_000.0)
    {
        return Err(invalid(
            "dispatch.rate_per_second",
            "must be a number above 0 and at most 10000",
        ));
    }
    let positive: [(&str, u64); 10] = [
        ("dispatch.max_claim_wait_secs", d.max_claim_wait_secs),
        ("dispatch.burst", d.burst.into()),
        ("dispatch.max_in_flight", d.max_in_flight.into()),
        ("dispatch.retry_max_tries", d.retry_max_tries.into()),
        ("dispatch.claim_batch", d.claim_batch.into()),
        (
            "provider.request_timeout_ms",
            raw.provider.request_timeout_ms,
        ),
        ("reconcile.page_size", raw.reconcile.page_size.into()),
        (
            "reconcile.max_pages_per_poll",
            raw.reconcile.max_pages_per_poll.into(),
        ),
        (
            "campaign_defaults.max_attempts",
            raw.campaign_defaults.max_attempts.into(),
        ),
        ("daemon.heartbeat_secs", raw.daemon.heartbeat_secs),
    ];
    for (key, v) in positive {
        if v == 0 {
            return Err(invalid(key, "must be at least 1"));
        }
    }
    if !(1024..=1024 * 1024 * 1024).contains(&raw.provider.max_response_bytes) {
        return Err(invalid(
            "provider.max_response_bytes",
            "must be between 1024 and 1073741824 (1 GiB)",
        ));
    }
    if raw.reconcile.page_size > 1000 {
        return Err(invalid("reconcile.page_size", "must be at most 1000"));
    }
    for (key, v) in [
        (
            "reconcile.poll_interval_secs",
            raw.reconcile.poll_interval_secs,
        ),
        ("inbox.poll_interval_secs", raw.inbox.poll_interval_secs),
        (
            "daemon.campaign_refresh_secs",
            raw.daemon.campaign_refresh_secs,
        ),
    ] {
        if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
            return Err(invalid(key, "must be a number of seconds above 0"));
        }
    }
    if !(raw.inbox.settle_secs.is_finite() && raw.inbox.settle_secs >= 0.0) {
        return Err(invalid("inbox.settle_secs", "must be 0 or more"));
    }
    Ok(())
}

fn resolve_api_key(
    raw: &RawConfig,
    env: &HashMap<String, String>,
) -> Result<(Option<ApiKey>, KeySource), ConfigError> {
    if let Some(k) = env
        .get("DIALERD_API_KEY")
        .and_then(|v| ApiKey::new(v.as_str()))
    {
        return Ok((Some(k), KeySource::Env));
    }
    if let Some(path) = &raw.provider.api_key_file {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                "provider.api_key_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let key = ApiKey::new(text).ok_or_else(|| {
            invalid(
                "provider.api_key_file",
                format!("{} is empty", path.display()),
            )
        })?;
        return Ok((Some(key), KeySource::File(path)));
    }
    if let Some(dir) = env.get("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = Path::new(dir).join("api_key");
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Some(key) = ApiKey::new(text)
        {
            return Ok((Some(key), KeySource::Credentials(path)));
        }
    }
    Ok((None, KeySource::None))
}

#[cfg(test)]
mod tests;
