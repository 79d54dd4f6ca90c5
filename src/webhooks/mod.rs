//! Webhooks: events pushed to the operator's systems as they happen.
//!
//! The events are rows of `webhook_outbox`, written by SQLite triggers in the
//! transaction of the change they report (migration 10), so an event exists
//! if and only if its change was committed, whoever wrote it. The
//! [`Deliverer`] POSTs them, signed (see [`sign`]), at least once and in
//! order per contact, with its retry state in the rows: a restart or a
//! `kill -9` loses nothing. This module also holds the `webhooks` section of
//! the configuration.

mod service;
mod sign;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use service::{WebhookService, waiting};
pub use sign::{Secret, sign, verify};
pub use worker::{Deliverer, Sender, Sent, Step, body_for};

use crate::config::ConfigError;

/// Every event dialerd sends, by the name `webhooks.events` uses.
pub const EVENTS: [&str; 5] = [
    "attempt.outcome",
    "contact.final",
    "campaign.completed",
    "campaign.paused",
    "dnc.opt_out",
];

/// The `[webhooks]` section as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawWebhooks {
    /// Where events are POSTed; unset: no webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// File holding the HMAC secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// Which events are sent.
    pub events: Vec<String>,
    /// How long an undelivered event is retried.
    pub max_age_secs: u64,
    /// Per request.
    pub timeout_ms: u64,
    /// Requests in flight at once.
    pub max_in_flight: u32,
    /// How often the outbox is looked at when it was empty.
    pub poll_interval_secs: f64,
}

impl Default for RawWebhooks {
    fn default() -> Self {
        Self {
            url: None,
            secret_file: None,
            events: EVENTS.map(String::from).to_vec(),
            max_age_secs: 259_200,
            timeout_ms: 10_000,
            max_in_flight: 4,
            poll_interval_secs: 1.0,
        }
    }
}

/// The validated `[webhooks]` section; present only when `webhooks.url` is set.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: reqwest::Url,
    pub secret: Secret,
    /// Where the secret was read from (printed, never the secret).
    pub secret_source: PathBuf,
    pub events: Vec<&'static str>,
    pub max_age: Duration,
    pub timeout: Duration,
    pub max_in_flight: u32,
    pub poll_interval: Duration,
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

impl WebhookSettings {
    /// Validates the section; `None` when webhooks are off (no `url`). The
    /// secret comes from `secret_file`, else `$CREDENTIALS_DIRECTORY/webhook_secret`;
    /// a URL without a secret is refused, since nothing unsigned is sent.
    pub fn from_raw(
        raw: &RawWebhooks,
        env: &HashMap<String, String>,
    ) -> Result<Option<Self>, ConfigError> {
        let events = parse_events(&raw.events).map_err(|m| invalid("webhooks.events", m))?;
        if raw.max_age_secs == 0 {
            return Err(invalid("webhooks.max_age_secs", "must be at least 1"));
        }
        if raw.timeout_ms == 0 {
            return Err(invalid("webhooks.timeout_ms", "must be at least 1"));
        }
        if raw.max_in_flight == 0 || raw.max_in_flight > 256 {
            return Err(invalid("webhooks.max_in_flight", "must be 1 to 256"));
        }
        let p = raw.poll_interval_secs;
        if !(p.is_finite() && p > 0.0 && p <= 3600.0) {
            return Err(invalid(
                "webhooks.poll_interval_secs",
                "must be a number of seconds above 0 and at most 3600",
            ));
        }
        let Some(url) = raw.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(url)
            .map_err(|e| invalid("webhooks.url", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("webhooks.url", "must be an http(s) URL"));
        }
        let (secret, secret_source) = resolve_secret(raw, env)?;
        Ok(Some(Self {
            url,
            secret,
            secret_source,
            events,
            max_age: Duration::from_secs(raw.max_age_secs),
            timeout: Duration::from_millis(raw.timeout_ms),
            max_in_flight: raw.max_in_flight,
            poll_interval: Duration::from_secs_f64(p),
        }))
    }
}

/// Parses event names (a list, each item possibly comma-separated).
fn parse_events(items: &[String]) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for item in items.iter().flat_map(|s| s.split(',')) {
        let t = item.trim();
        if t.is_empty() {
            continue;
        }
        let known = EVENTS
            .iter()
            .find(|e| **e == t)
            .ok_or_else(|| format!("{t:?} is not an event; known: {}", EVENTS.join(", ")))?;
        if !out.contains(known) {
            out.push(*known);
        }
    }
    Ok(out)
}

fn resolve_secret(
    raw: &RawWebhooks,
    env: &HashMap<String, String>,
) -> Result<(Secret, PathBuf), ConfigError> {
    let read = |path: &Path, key: &str| -> Result<Secret, ConfigError> {
        let bytes = std::fs::read(path)
            .map_err(|e| invalid(key, format!("cannot read {}: {e}", path.display())))?;
        Secret::new(bytes).ok_or_else(|| invalid(key, format!("{} is empty", path.display())))
    };
    if let Some(file) = &raw.secret_file {
        let path = PathBuf::from(file);
        return Ok((read(&path, "webhooks.secret_file")?, path));
    }
    if let Some(dir) = env.get("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        let path = Path::new(dir).join("webhook_secret");
        if path.exists() {
            return Ok((read(&path, "webhooks.secret_file")?, path));
        }
    }
    Err(invalid(
        "webhooks.secret_file",
        "webhooks.url is set but there is no secret to sign with: set webhooks.secret_file \
         or a systemd credential named webhook_secret",
    ))
}

#[cfg(test)]
mod tests;
