//! The one place where a failed API call is classified into what the caller
//! must do next (design.md, "The safety rule"). Callers match on
//! [`ProviderError`] or [`ErrorKind`], never on status codes.
//!
//! | what happened | class |
//! |---|---|
//! | connection refused, DNS, TLS or connect timeout (nothing sent) | [`ProviderError::Retryable`] |
//! | 408, 503 *with* `Retry-After` | [`ProviderError::Retryable`] |
//! | 429 | [`ProviderError::RateLimited`] |
//! | 401, 403 | [`ProviderError::Unauthorized`] |
//! | 400, 404, 422, other 4xx, `success: false` | [`ProviderError::Permanent`] |
//! | timeout or reset after sending, 500/502/504, 503 without `Retry-After`, a 2xx body that cannot be read | [`ProviderError::Ambiguous`] |

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;

/// Longest server message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Why an API call failed, classified by what the caller may do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The server certainly did not act on the request: safe to send again
    /// (after `retry_after`, when the server gave one).
    #[error("retryable: {reason}")]
    Retryable {
        /// What happened.
        reason: String,
        /// The server's `Retry-After`, when it sent one (503).
        retry_after: Option<Duration>,
    },
    /// 429: the server refused the request to slow us down; safe to send
    /// again, no sooner than `retry_after` when given.
    #[error("rate limited (retry after {retry_after:?}): {reason}")]
    RateLimited {
        /// The parsed `Retry-After` header (seconds or an HTTP date).
        retry_after: Option<Duration>,
        /// What happened.
        reason: String,
    },
    /// A definite rejection of this request (400, 404, 422, other 4xx,
    /// `success: false`): sending it again would fail the same way.
    #[error("rejected{}: {message}", status.map(|s| format!(" ({s})")).unwrap_or_default())]
    Permanent {
        /// The HTTP status, `None` when the rejection was in a 2xx body or the
        /// request could not even be built.
        status: Option<u16>,
        /// The server's message.
        message: String,
    },
    /// 401 or 403: the API key is wrong or lacks rights; dispatching must stop
    /// for everyone until an operator fixes it.
    #[error("unauthorized ({status}): {message}")]
    Unauthorized {
        /// 401 or 403.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The request may have reached the server and been acted on (timeout or
    /// reset after sending, 500/502/504, an unreadable 2xx body). A dispatch
    /// that ends here must never be retried blindly.
    #[error("ambiguous: {reason}")]
    Ambiguous {
        /// What happened.
        reason: String,
    },
}

/// The class of a [`ProviderError`], for callers that only need the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// See [`ProviderError::Retryable`].
    Retryable,
    /// See [`ProviderError::RateLimited`].
    RateLimited,
    /// See [`ProviderError::Permanent`].
    Permanent,
    /// See [`ProviderError::Unauthorized`].
    Unauthorized,
    /// See [`ProviderError::Ambiguous`].
    Ambiguous,
}

impl ProviderError {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Retryable { .. } => ErrorKind::Retryable,
            Self::RateLimited { .. } => ErrorKind::RateLimited,
            Self::Permanent { .. } => ErrorKind::Permanent,
            Self::Unauthorized { .. } => ErrorKind::Unauthorized,
            Self::Ambiguous { .. } => ErrorKind::Ambiguous,
        }
    }

    /// True when the server certainly did not act on the request, so the same
    /// request may be sent again (after [`ProviderError::retry_after`]).
    pub fn is_safe_to_retry(&self) -> bool {
        matches!(self.kind(), ErrorKind::Retryable | ErrorKind::RateLimited)
    }

    /// The delay the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Retryable { retry_after, .. } | Self::RateLimited { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Classifies a transport error from reqwest.
    pub(crate) fn from_transport(err: &reqwest::Error) -> Self {
        let reason = error_chain(err);
        if err.is_builder() {
            // The request could not even be built (a bad base URL): nothing was
            // sent, and sending again would fail the same way.
            return Self::Permanent {
                status: None,
                message: truncate(&reason),
            };
        }
        // A connect error (refused, DNS, TLS handshake, connect timeout) happens
        // before a single byte of the request is written.
        if err.is_connect() {
            return Self::Retryable {
                reason,
                retry_after: None,
            };
        }
        // Everything else (a timeout while waiting for the answer, a reset or a
        // close mid-request, a body that broke off) may follow a request the
        // server already acted on.
        let what = if err.is_timeout() {
            "timed out after the request may have been sent"
        } else if err.is_body() || err.is_decode() {
            "the response body could not be read"
        } else {
            "the connection failed after the request may have been sent"
        };
        Self::Ambiguous {
            reason: format!("{what}: {reason}"),
        }
    }

    /// Classifies a non-2xx response.
    pub(crate) fn from_status(
        status: StatusCode,
        retry_after_header: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Self {
        let code = status.as_u16();
        let message = error_message(body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {code}"))
        });
        let retry_after = retry_after_header.and_then(|v| parse_retry_after(v, now));
        match code {
            401 | 403 => Self::Unauthorized {
                status: code,
                message,
            },
            408 => Self::Retryable {
                reason: format!("408 request timeout: {message}"),
                retry_after,
            },
            429 => Self::RateLimited {
                retry_after,
                reason: format!("429 too many requests: {message}"),
            },
            // A 503 that says when to come back is a server refusing work; one
            // that does not may come from a proxy after the backend acted.
            503 if retry_after_header.is_some() => Self::Retryable {
                reason: format!("503 service unavailable: {message}"),
                retry_after,
            },
            400..=499 => Self::Permanent {
                status: Some(code),
                message,
            },
            _ => Self::Ambiguous {
                reason: format!("HTTP {code}: {message}"),
            },
        }
    }
}

/// Parses a `Retry-After` value: delay seconds (`120`, also `1.5`) or an HTTP
/// date, which is measured from `now`. A date in the past is zero.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(v).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The server's message from a JSON error body (`error`, `error_description`,
/// `message`, `detail`), or the body's text when it is not JSON; truncated.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    if let Ok(v) = serde_json::from_slice::<Value>(body)
        && let Some(m) = message_from_json(&v)
    {
        return Some(truncate(&m));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| truncate(text))
}

/// `error: error_description`, or the first of `message`, `detail`, `msg`.
pub(crate) fn message_from_json(v: &Value) -> Option<String> {
    let field = |k: &str| -> Option<String> {
        match v.get(k)? {
            Value::Null | Value::Bool(false) => None,
            Value::String(s) if s.trim().is_empty() => None,
            Value::String(s) => Some(s.trim().to_string()),
            other => Some(other.to_string()),
        }
    };
    match (field("error"), field("error_description")) {
        (Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (Some(e), None) => Some(e),
        (None, Some(d)) => Some(d),
        (None, None) => field("message")
            .or_else(|| field("detail"))
            .or_else(|| field("msg")),
    }
}

/// Cuts a message to [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap()
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(
            parse_retry_after("120", now()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(" 2 ", now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 08:01:30 GMT", now()),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 07:00:00 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-3", now()), None);
    }

    #[test]
    fn messages_come_from_the_json_error_fields_and_are_truncated() {
        let m = error_message(br#"{"error":"invalid_agent","error_description":"no agent 7"}"#);
        assert_eq!(m.as_deref(), Some("invalid_agent: no agent 7"));
        let m = error_message(br#"{"message":"bad number"}"#);
        assert_eq!(m.as_deref(), Some("bad number"));
        let m = error_message(b"<html>Bad Gateway</html>");
        assert_eq!(m.as_deref(), Some("<html>Bad Gateway</html>"));
        assert_eq!(error_message(b"  "), None);
        let long = "é".repeat(1000);
        let m = error_message(format!(r#"{{"error":"{long}"}}"#).as_bytes()).unwrap();
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn statuses_are_classified_by_the_safety_rule() {
        let k = |code: u16, ra: Option<&str>| {
            ProviderError::from_status(StatusCode::from_u16(code).unwrap(), ra, b"", now()).kind()
        };
        assert_eq!(k(400, None), ErrorKind::Permanent);
        assert_eq!(k(401, None), ErrorKind::Unauthorized);
        assert_eq!(k(403, None), ErrorKind::Unauthorized);
        assert_eq!(k(404, None), ErrorKind::Permanent);
        assert_eq!(k(408, None), ErrorKind::Retryable);
        assert_eq!(k(422, None), ErrorKind::Permanent);
        assert_eq!(k(429, None), ErrorKind::RateLimited);
        assert_eq!(k(500, None), ErrorKind::Ambiguous);
        assert_eq!(k(502, None), ErrorKind::Ambiguous);
        assert_eq!(k(503, None), ErrorKind::Ambiguous);
        assert_eq!(k(503, Some("5")), ErrorKind::Retryable);
        assert_eq!(k(504, None), ErrorKind::Ambiguous);
        assert_eq!(k(302, None), ErrorKind::Ambiguous);
    }
}
