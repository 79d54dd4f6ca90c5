//! The OmniDimension call API as the daemon sees it: a [`Client`] that
//! dispatches calls and reads call logs, the tolerant [`CallLog`] view of the
//! API's loosely typed logs, status normalisation, and [`ProviderError`], the
//! one place where a failure is classified into what the caller must do
//! (retry, slow down, give up, stop everything, or leave it to the reconciler).

mod client;
mod error;
mod lenient;
mod logtime;
mod model;
mod status;
mod transcript;

#[cfg(test)]
mod tests;

pub use client::{Client, DEFAULT_MAX_RESPONSE_BYTES};
pub use error::{ErrorKind, ProviderError, parse_retry_after};
pub use logtime::{DateOrder, LogTime, WIDEST_EAST_MIN, WIDEST_WEST_MIN};
pub use model::{Accepted, CallLog, DispatchRequest, LogPage, LogQuery};
pub use status::{CallStatus, normalise_status};
pub use transcript::clean_transcript;

/// Parses a `GET /calls/logs` (or `/calls/logs/{id}`) response body. Each
/// element of `call_log_data` is read on its own; `Err` when the body has no
/// `call_log_data` list at all.
pub fn parse_log_page(body: &serde_json::Value) -> Result<LogPage, String> {
    model::parse_log_page(body)
}
