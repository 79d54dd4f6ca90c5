//! The HTTP client for the call API: one pooled reqwest client, the key in a
//! sensitive default header, every failure classified by [`ProviderError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::error::ProviderError;
use super::model::{
    Accepted, CallLog, DispatchRequest, LogPage, LogQuery, parse_dispatch, parse_log_page,
};
use crate::clock::{SharedClock, SystemClock};
use crate::secret::ApiKey;

/// Longest time spent establishing a connection. Kept below the request
/// timeout so that a slow connect is reported as a connect error (nothing
/// sent, retryable) rather than as an ambiguous request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read by default (`provider.max_response_bytes`):
/// a page of 100 long call logs fits many times over, and a hostile or broken
/// server cannot make the daemon buffer more.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A client for the OmniDimension call API. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The base URL without a trailing slash, e.g. `https://backend.omnidim.io/api/v1`.
    base: Arc<str>,
    /// Kept only to scrub it from any text a server might echo back.
    key: ApiKey,
    clock: SharedClock,
    /// The largest response body read; a longer one is refused unread.
    max_body: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the API at `base_url` (e.g. `https://backend.omnidim.io/api/v1`),
    /// with `timeout` for each whole request. Reads time from the system clock;
    /// see [`Client::with_clock`].
    pub fn new(
        base_url: &str,
        api_key: ApiKey,
        timeout: Duration,
    ) -> Result<Client, ProviderError> {
        if timeout.is_zero() {
            return Err(ProviderError::Permanent {
                status: None,
                message: "the request timeout must be longer than zero".into(),
            });
        }
        let base = base_url.trim().trim_end_matches('/');
        if reqwest::Url::parse(base).is_err() {
            return Err(ProviderError::Permanent {
                status: None,
                message: format!("invalid API base URL {base:?}"),
            });
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", api_key.expose())).map_err(|_| {
                ProviderError::Permanent {
                    status: None,
                    message: "the API key contains characters not allowed in a header".into(),
                }
            })?;
        // Sensitive: never shown by the header map's Debug.
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .connect_timeout((timeout / 2).min(MAX_CONNECT_TIMEOUT))
            // A redirected POST could be replayed elsewhere: never follow.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| ProviderError::Permanent {
                status: None,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Client {
            http,
            base: base.into(),
            key: api_key,
            clock: Arc::new(SystemClock),
            max_body: DEFAULT_MAX_RESPONSE_BYTES,
        })
    }

    /// Reads response bodies up to `bytes` (at least 1 KiB). A success
    /// longer than that is treated as unreadable (for a dispatch: the call
    /// may have been placed, so it is uncertain); an error body is cut.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Client {
        self.max_body = bytes.max(1024);
        self
    }

    /// Uses `clock` for "now" (to turn an HTTP-date `Retry-After` into a delay).
    pub fn with_clock(mut self, clock: SharedClock) -> Client {
        self.clock = clock;
        self
    }

    /// The fingerprint of the key this client sends (see [`ApiKey::fingerprint`]).
    pub fn key_fingerprint(&self) -> String {
        self.key.fingerprint()
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `POST /calls/dispatch`. `Ok` only when the API returned a request id.
    ///
    /// An error of kind [`ProviderError::Ambiguous`] means the call may have
    /// been placed: it must never be retried blindly.
    pub async fn dispatch(&self, req: &DispatchRequest) -> Result<Accepted, ProviderError> {
        self.dispatch_with_key(req, None).await
    }

    /// [`Client::dispatch`] with an `Idempotency-Key` header. Dispatch is not
    /// documented to honour it, so it is never relied on; but every try of
    /// one attempt sends the same key, so a server that does honour it turns
    /// a repeated request into one call.
    pub async fn dispatch_with_key(
        &self,
        req: &DispatchRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Accepted, ProviderError> {
        let mut builder = self.request(Method::POST, "calls/dispatch").json(req);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let body = self.send(builder).await?;
        parse_dispatch(body).map_err(|(refused, message)| {
            if refused {
                ProviderError::Permanent {
                    status: None,
                    message: self.scrub(message),
                }
            } else {
                // A 2xx without a request id: the call may have been placed.
                ProviderError::Ambiguous {
                    reason: self.scrub(format!("accepted without a request id: {message}")),
                }
            }
        })
    }

    /// `GET /calls/logs`: one page of logs, newest first as far as the API says.
    pub async fn list_logs(&self, q: &LogQuery) -> Result<LogPage, ProviderError> {
        let mut url = self.url("calls/logs")?;
        {
            // reqwest's `query` needs a crate feature; the URL API does the same.
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("pageno", &q.page.to_string());
            pairs.append_pair("pagesize", &q.page_size.to_string());
            if let Some(agent) = q.agent_id {
                pairs.append_pair("agentid", &agent.to_string());
            }
            if let Some(status) = &q.call_status {
                pairs.append_pair("call_status", status);
            }
        }
        let body = self.send(self.http.get(url)).await?;
        parse_log_page(&body).map_err(|reason| ProviderError::Ambiguous { reason })
    }

    /// `GET /calls/logs/{id}`: the log, or `None` when the API does not know it (404).
    pub async fn get_log(&self, id: i64) -> Result<Option<CallLog>, ProviderError> {
        let path = format!("calls/logs/{id}");
        let body = match self.send(self.request(Method::GET, &path)).await {
            Err(ProviderError::Permanent {
                status: Some(404), ..
            }) => return Ok(None),
            other => other?,
        };
        let page = parse_log_page(&body).map_err(|reason| ProviderError::Ambiguous { reason })?;
        Ok(page.logs.into_iter().next())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}/{path}", self.base))
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, ProviderError> {
        reqwest::Url::parse(&format!("{}/{path}", self.base)).map_err(|e| {
            ProviderError::Permanent {
                status: None,
                message: format!("invalid URL for {path}: {e}"),
            }
        })
    }

    /// Sends a request and returns its 2xx JSON body, or the classified error.
    async fn send(&self, req: RequestBuilder) -> Result<Value, ProviderError> {
        let resp = req
            .send()
            .await
            .map_err(|e| self.scrub_err(ProviderError::from_transport(&e)))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let (bytes, complete) = self.read_body(resp).await?;
        if status.is_success() && !complete {
            return Err(ProviderError::Ambiguous {
                reason: format!(
                    "{} {} with a body longer than {} bytes (provider.max_response_bytes); not read",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    self.max_body
                ),
            });
        }
        if !status.is_success() {
            let err = ProviderError::from_status(
                status,
                retry_after.as_deref(),
                &bytes,
                self.clock.now(),
            );
            return Err(self.scrub_err(err));
        }
        serde_json::from_slice::<Value>(&bytes).map_err(|e| ProviderError::Ambiguous {
            reason: format!(
                "{} {} with a body that is not JSON ({e}): {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                self.scrub(super::error::truncate(&String::from_utf8_lossy(&bytes)))
            ),
        })
    }

    /// Reads the body up to the size limit; `false` when it was longer (the
    /// rest is never read, and the connection is dropped with it).
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
    ) -> Result<(Vec<u8>, bool), ProviderError> {
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_body as u64)
        {
            return Ok((Vec::new(), false));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.scrub_err(ProviderError::from_transport(&e)))?
        {
            let room = self.max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, false));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, true))
    }

    /// Removes the API key from text a server may have echoed back.
    fn scrub(&self, text: String) -> String {
        let key = self.key.expose();
        if !key.is_empty() && text.contains(key) {
            text.replace(key, "[redacted]")
        } else {
            text
        }
    }

    fn scrub_err(&self, err: ProviderError) -> ProviderError {
        match err {
            ProviderError::Retryable {
                reason,
                retry_after,
            } => ProviderError::Retryable {
                reason: self.scrub(reason),
                retry_after,
            },
            ProviderError::RateLimited {
                retry_after,
                reason,
            } => ProviderError::RateLimited {
                retry_after,
                reason: self.scrub(reason),
            },
            ProviderError::Permanent { status, message } => ProviderError::Permanent {
                status,
                message: self.scrub(message),
            },
            ProviderError::Unauthorized { status, message } => ProviderError::Unauthorized {
                status,
                message: self.scrub(message),
            },
            ProviderError::Ambiguous { reason } => ProviderError::Ambiguous {
                reason: self.scrub(reason),
            },
        }
    }
}
