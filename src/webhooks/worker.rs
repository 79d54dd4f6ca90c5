//! The delivery worker: one [`Deliverer::step`] sends what is due (at most
//! `webhooks.max_in_flight` requests at once, each contact's events in
//! order) and records each answer in its row; [`Deliverer::run`] drives it
//! as a [`Worker`](crate::worker::Worker) until the daemon stops. All of its state is in the database, so a
//! restart resends what was not recorded as delivered, with the same
//! delivery id (at least once). It has its own HTTP client and task: a slow
//! receiver holds up nothing but its own events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use tokio::sync::watch;

use super::{WebhookSettings, sign};
use crate::clock::{SharedClock, plus};
use crate::store::{DeliveryResult, OutboxRow, Store};

/// The first retry comes this long after a failure; each next one twice as
/// long after, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Rows one step reads, per request slot (`webhooks.max_in_flight`); they
/// are sent `max_in_flight` at a time, each group's answers recorded before
/// the next group goes out.
const STEP_ROWS_PER_SLOT: u32 = 16;
/// How much of a receiver's error answer is kept in `last_error`.
const ERROR_BODY_BYTES: usize = 300;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Sent this many events (delivered or not).
    Worked(usize),
    /// Nothing is waiting.
    Idle,
    /// Events are waiting for a retry; the first is due after this long.
    Backoff(Duration),
}

/// How one request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// Another answer, or none; try again later.
    Failed {
        status: Option<u16>,
        error: String,
        /// The receiver's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
}

/// Signs and POSTs bodies to `webhooks.url` with a client of its own (the
/// settings' timeout, no redirects).
#[derive(Debug, Clone)]
pub struct Sender {
    clock: SharedClock,
    settings: WebhookSettings,
    http: reqwest::Client,
}

/// Delivers the outbox to `webhooks.url`.
#[derive(Debug, Clone)]
pub struct Deliverer {
    store: Store,
    clock: SharedClock,
    settings: WebhookSettings,
    sender: Sender,
}

impl Deliverer {
    /// A deliverer of `store`'s outbox.
    pub fn new(
        store: Store,
        clock: SharedClock,
        settings: WebhookSettings,
    ) -> anyhow::Result<Self> {
        let sender = Sender::new(clock.clone(), settings.clone())?;
        Ok(Self {
            store,
            clock,
            settings,
            sender,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    /// Gives up on events past `webhooks.max_age_secs`, then sends what is
    /// due and records each answer.
    pub async fn step(&self) -> sqlx::Result<Step> {
        let now = self.clock.now();
        let cutoff = crate::clock::minus(
            now,
            chrono::Duration::from_std(self.settings.max_age).unwrap_or(chrono::TimeDelta::MAX),
        );
        // Read first: most steps find nothing expired and need no write.
        if self.store.webhook_waiting_before(cutoff).await? > 0 {
            let n = self.store.webhook_give_up_before(cutoff).await?;
            tracing::error!(
                events = n,
                "webhook events not delivered within webhooks.max_age_secs are no longer tried; \
                 see the webhook_backlog view, and `dialerd webhooks retry` to requeue them"
            );
        }
        let rows = self
            .store
            .webhook_due(
                now,
                self.settings
                    .max_in_flight
                    .saturating_mul(STEP_ROWS_PER_SLOT),
            )
            .await?;
        if rows.is_empty() {
            return Ok(match self.store.webhook_next_retry().await? {
                Some(t) => Step::Backoff((t - now).to_std().unwrap_or(Duration::ZERO)),
                None => Step::Idle,
            });
        }
        // At most one row per contact is due, so any order of sending
        // keeps each contact's events in order.
        // Each chunk's answers are recorded before the next chunk is sent: a
        // step cut short (a stop, a reload) re-sends at most the chunk that
        // was on the wire, never events already delivered and recorded.
        for chunk in rows.chunks(self.settings.max_in_flight.max(1) as usize) {
            let sent = futures::future::join_all(chunk.iter().map(|r| self.send_row(r))).await;
            let results: Vec<_> = chunk
                .iter()
                .zip(sent)
                .map(|(r, s)| (r.id, self.outcome(r, s)))
                .collect();
            self.store.webhook_record(&results).await?;
        }
        Ok(Step::Worked(rows.len()))
    }

    async fn send_row(&self, row: &OutboxRow) -> Sent {
        let body = body_for(row.id, &row.event, &row.created_at, &row.payload);
        self.sender.send(row.id, &row.event, body).await
    }

    /// What to record for a try: delivered, or when to try again.
    fn outcome(&self, row: &OutboxRow, sent: Sent) -> DeliveryResult {
        match sent {
            Sent::Delivered { status } => {
                tracing::debug!(id = row.id, event = %row.event, status, "webhook delivered");
                DeliveryResult::Delivered { status }
            }
            Sent::Failed {
                status,
                error,
                retry_after,
            } => {
                let delay = retry_delay(row.attempts + 1, retry_after, self.settings.max_age);
                tracing::warn!(
                    id = row.id,
                    event = %row.event,
                    status,
                    %error,
                    tries = row.attempts + 1,
                    retry_in_secs = delay.as_secs(),
                    "webhook not delivered; will retry"
                );
                DeliveryResult::Failed {
                    status,
                    error,
                    next_at: plus(self.clock.now(), delay),
                }
            }
        }
    }

    /// Steps until `stop` turns true; a step in progress is abandoned then
    /// (what it had not recorded is sent again after the restart).
    pub async fn run(self, stop: watch::Receiver<bool>) {
        tracing::info!(
            host = self.settings.url.host_str().unwrap_or(""),
            events = ?self.settings.events,
            "delivering webhooks"
        );
        let clock = self.clock.clone();
        crate::worker::run_until_stopped(self, clock, stop).await;
    }
}

impl Sender {
    /// A sender for `settings`.
    pub fn new(clock: SharedClock, settings: WebhookSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // A redirected POST would carry the event somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dialerd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            clock,
            settings,
            http,
        })
    }

    /// POSTs one signed body and classifies the answer.
    pub async fn send(&self, id: i64, event: &str, body: String) -> Sent {
        let timestamp = self.clock.now().timestamp().to_string();
        let signature = sign(&self.settings.secret, &timestamp, body.as_bytes());
        let request = self
            .http
            .post(self.settings.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Dialerd-Event", event)
            .header("X-Dialerd-Delivery", id.to_string())
            .header("X-Dialerd-Timestamp", &timestamp)
            .header("X-Dialerd-Signature", signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Sent::Failed {
                    status: None,
                    // The URL may carry a token: never in the stored error.
                    error: error_chain(&e.without_url()),
                    retry_after: None,
                };
            }
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Sent::Delivered { status };
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock.now()));
        let mut snippet = Vec::new();
        while snippet.len() < ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(c)) => snippet.extend_from_slice(&c),
                _ => break,
            }
        }
        snippet.truncate(ERROR_BODY_BYTES);
        let text = String::from_utf8_lossy(&snippet);
        let error = match text.trim() {
            "" => format!("HTTP {status}"),
            t => format!("HTTP {status}: {t}"),
        };
        Sent::Failed {
            status: Some(status),
            error,
            retry_after,
        }
    }
}

/// The body sent for an outbox row: `{"id", "event", "created_at", "data"}`,
/// the same bytes on every try. A payload that is not JSON (another writer's)
/// is sent as a string rather than not at all.
pub fn body_for(id: i64, event: &str, created_at: &str, payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    let data = serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|_| serde_json::Value::String(text.into_owned()));
    serde_json::json!({
        "id": id,
        "event": event,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
}

/// The wait before try `tries + 1`: exponential from [`FIRST_BACKOFF`] up to
/// [`MAX_BACKOFF`], with jitter (half of it random) so that many failed
/// events do not come back at the same instant; never less than the
/// receiver's `Retry-After` (itself bounded by `max_age`).
fn retry_delay(tries: i64, retry_after: Option<Duration>, max_age: Duration) -> Duration {
    let exp = u32::try_from(tries.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    let full = FIRST_BACKOFF.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let half = full / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    let backoff = half + Duration::from_millis(jitter);
    backoff.max(retry_after.unwrap_or(Duration::ZERO).min(max_age))
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(v).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_each_try_and_respects_retry_after() {
        let day = Duration::from_secs(86_400);
        for _ in 0..50 {
            let first = retry_delay(1, None, day);
            assert!(first >= Duration::from_millis(2500) && first <= FIRST_BACKOFF);
            let fourth = retry_delay(4, None, day);
            assert!(fourth >= Duration::from_secs(20) && fourth <= Duration::from_secs(40));
            assert!(retry_delay(60, None, day) <= MAX_BACKOFF);
            let told = retry_delay(1, Some(Duration::from_secs(120)), day);
            assert_eq!(told, Duration::from_secs(120));
            let absurd = retry_delay(1, Some(Duration::from_secs(u64::MAX / 4)), day);
            assert_eq!(absurd, day);
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after("Tue, 01 Dec 2026 10:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn a_body_is_the_envelope_around_the_payload_and_survives_garbage() {
        let b = body_for(7, "attempt.outcome", "2026-12-01T10:00:00Z", br#"{"x":1}"#);
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["id"], 7);
        assert_eq!(v["data"]["x"], 1);
        let g = body_for(8, "contact.final", "t", b"\xff not json");
        let v: serde_json::Value = serde_json::from_str(&g).unwrap();
        assert!(v["data"].as_str().unwrap().contains("not json"));
    }
}
