//! The request and response types of the call API. Responses are read
//! tolerantly: each typed field accepts `false`, `null`, a missing key or its
//! real type, and the whole JSON is kept in `raw`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::lenient;
use super::status::{CallStatus, normalise_status};
use super::transcript::clean_transcript;

/// The body of `POST /calls/dispatch`, as the official SDK sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchRequest {
    /// The agent that places the call.
    pub agent_id: i64,
    /// The callee, E.164 with a leading `+`.
    pub to_number: String,
    /// Free key/value context the agent sees.
    pub call_context: Map<String, Value>,
    /// An imported caller number; serialized as `null` when absent, like the SDK.
    pub from_number_id: Option<i64>,
}

/// A dispatch the API accepted: a call was (or will be) placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The API's `requestId`, as opaque text (it may come as a number or a string).
    pub request_id: String,
    /// The whole response body.
    pub raw: Value,
}

/// Parameters of `GET /calls/logs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// 1-based page number (`pageno`).
    pub page: u32,
    /// Logs per page (`pagesize`).
    pub page_size: u32,
    /// Only this agent's calls (`agentid`).
    pub agent_id: Option<i64>,
    /// Only calls with this raw status (`call_status`, e.g. `completed`, `no-answer`).
    pub call_status: Option<String>,
}

impl Default for LogQuery {
    /// Page 1 of 30, unfiltered: the API's defaults.
    fn default() -> Self {
        Self {
            page: 1,
            page_size: 30,
            agent_id: None,
            call_status: None,
        }
    }
}

/// One page of call logs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    /// The logs that could be read, in the server's order.
    pub logs: Vec<CallLog>,
    /// The size of the whole (filtered) set, when the server said.
    pub total_records: Option<u64>,
    /// Elements of `call_log_data` that were not JSON objects and were skipped.
    pub skipped: usize,
}

/// A call log: a tolerant typed view of the fields the daemon uses, and the
/// whole JSON object in `raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct CallLog {
    /// The call log id.
    pub id: Option<i64>,
    /// The dispatch's `requestId` (from `call_request_id`), when the call was
    /// placed through the API.
    pub request_id: Option<String>,
    /// The callee.
    pub to_number: Option<String>,
    /// The caller number.
    pub from_number: Option<String>,
    /// `call_status` as the API wrote it.
    pub call_status_raw: Option<String>,
    /// The normalised status.
    pub status: CallStatus,
    /// When the call was made, read as UTC (the API gives no zone): for
    /// display only; ordering uses [`CallLog::log_time`].
    pub time_of_call: Option<DateTime<Utc>>,
    /// `time_of_call` as far as it is known: an instant, or a wall time in an
    /// unknown zone with each date reading the text allows.
    pub log_time: Option<super::LogTime>,
    /// Call length in seconds.
    pub duration_secs: Option<f64>,
    /// The transcript, one turn per line, HTML removed.
    pub transcript: Option<String>,
    /// The recording, when there is one.
    pub recording_url: Option<String>,
    /// `call_cost`, else `aggregated_estimated_cost`.
    pub cost: Option<f64>,
    /// An answering machine took the call.
    pub is_voicemail: bool,
    /// The agent (`agent_id` or `bot_id`), when the log says.
    pub agent_id: Option<i64>,
    /// Variables the agent extracted from the conversation.
    pub extracted_variables: Option<Value>,
    /// The whole log object.
    pub raw: Value,
}

impl CallLog {
    /// Reads a log from one element of `call_log_data`. `None` only when the
    /// element is not a JSON object; any field of the wrong type is absent.
    pub fn from_value(v: &Value) -> Option<CallLog> {
        let o = v.as_object()?;
        let is_voicemail = lenient::flag(o.get("is_voicemail"));
        let call_status_raw = lenient::text(o.get("call_status"));
        Some(CallLog {
            id: lenient::int(o.get("id")),
            request_id: lenient::opaque_id(o.get("call_request_id")),
            to_number: lenient::text(o.get("to_number")),
            from_number: lenient::text(o.get("from_number")),
            status: normalise_status(call_status_raw.as_deref(), is_voicemail),
            call_status_raw,
            time_of_call: lenient::time(o.get("time_of_call")),
            log_time: lenient::text(o.get("time_of_call")).and_then(|t| super::LogTime::parse(&t)),
            duration_secs: duration(o),
            transcript: o
                .get("call_conversation")
                .and_then(Value::as_str)
                .and_then(clean_transcript),
            recording_url: lenient::text(o.get("recording_url")),
            cost: lenient::float(o.get("call_cost"))
                .or_else(|| lenient::float(o.get("aggregated_estimated_cost"))),
            is_voicemail,
            agent_id: ["agent_id", "bot_id", "agentid"]
                .iter()
                .find_map(|k| lenient::int(o.get(*k))),
            extracted_variables: o
                .get("extracted_variables")
                .filter(|x| match x {
                    Value::Object(_) | Value::Array(_) => true,
                    Value::String(s) => !s.trim().is_empty(),
                    _ => false,
                })
                .cloned(),
            raw: v.clone(),
        })
    }
}

/// `call_duration_in_seconds`, else minutes × 60, else the `M:S` display text.
fn duration(o: &Map<String, Value>) -> Option<f64> {
    lenient::float(o.get("call_duration_in_seconds"))
        .or_else(|| lenient::float(o.get("call_duration_in_minutes")).map(|m| m * 60.0))
        .or_else(|| lenient::clock_text_secs(o.get("call_duration")?.as_str()?))
        .filter(|d| d.is_finite() && *d >= 0.0)
}

/// Reads a page body `{"call_log_data": [...], "total_records": N}`. Each
/// element is read on its own: a bad one is skipped and counted, never fatal.
/// `Err` (with the reason) when `call_log_data` is missing or not a list, so a
/// page of an unknown shape is never mistaken for "no logs".
pub(crate) fn parse_log_page(body: &Value) -> Result<LogPage, String> {
    let data = body
        .get("call_log_data")
        .ok_or_else(|| "the response has no call_log_data".to_string())?;
    let items: &[Value] = match data {
        Value::Array(items) => items,
        // The API's way of writing "nothing".
        Value::Null | Value::Bool(false) => &[],
        other => {
            return Err(format!(
                "call_log_data is not a list but {}",
                kind_of(other)
            ));
        }
    };
    let mut logs = Vec::with_capacity(items.len());
    let mut skipped = 0;
    for item in items {
        match CallLog::from_value(item) {
            Some(log) => logs.push(log),
            None => skipped += 1,
        }
    }
    let total_records = lenient::int(body.get("total_records")).and_then(|n| u64::try_from(n).ok());
    Ok(LogPage {
        logs,
        total_records,
        skipped,
    })
}

/// Reads a dispatch answer: `Ok` with the request id, or `Err` with the
/// server's message when it did not accept the call.
/// `Err((refused, message))`: `refused` when the API said `success: false`
/// (a definite rejection); otherwise the answer had no request id, and the
/// call may have been placed all the same.
pub(crate) fn parse_dispatch(body: Value) -> Result<Accepted, (bool, String)> {
    let refused = matches!(body.get("success"), Some(Value::Bool(false)))
        || body
            .get("success")
            .and_then(Value::as_str)
            .is_some_and(|s| s.eq_ignore_ascii_case("false"));
    let request_id = lenient::opaque_id(body.get("requestId"));
    match request_id {
        Some(request_id) if !refused => Ok(Accepted {
            request_id,
            raw: body,
        }),
        _ => {
            let why = super::error::message_from_json(&body).unwrap_or_else(|| {
                if refused {
                    "success: false".to_string()
                } else {
                    "no requestId in the answer".to_string()
                }
            });
            Err((refused, super::error::truncate(&why)))
        }
    }
}

/// A JSON type's name, for messages.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
