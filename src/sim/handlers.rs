//! The simulator's HTTP endpoints: dispatch (with its faults), the two log
//! reads, and the stats.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Map, Value, json};

use super::journal::{DispatchResult, JournalEntry, journal_time};
use super::listener::ConnKill;
use super::render::render;
use super::state::{Decision, NewCall, SimCall, SimState};

/// Largest accepted `pagesize`.
const MAX_PAGE_SIZE: usize = 1000;

type St = State<Arc<SimState>>;

/// All routes of the simulator.
pub(crate) fn router(state: Arc<SimState>) -> Router {
    Router::new()
        .route("/api/v1/calls/dispatch", post(dispatch))
        .route("/api/v1/calls/logs", get(list_logs))
        .route("/api/v1/calls/logs/{id}", get(get_log))
        .route("/_sim/stats", get(stats))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(state)
}

/// An API error answer, `{"error": code, "error_description": ...}`.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    fn bad_request(description: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request",
            description: description.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.status, self.code, &self.description)
    }
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn authorized(st: &SimState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|k| st.opts.accepts_key(k))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "invalid or missing API key",
    )
}

/// Counts a dispatch request from arrival until its handler ends (answered,
/// or dropped with its connection), so a test can wait for the requests a
/// stopped client left on the wire instead of sleeping.
struct InProgress<'a>(&'a SimState);

impl<'a> InProgress<'a> {
    fn enter(st: &'a SimState) -> InProgress<'a> {
        st.counters
            .dispatches_in_progress
            .fetch_add(1, Ordering::SeqCst);
        InProgress(st)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0
            .counters
            .dispatches_in_progress
            .fetch_sub(1, Ordering::SeqCst);
    }
}

/// `--latency-ms`: stands for the network, so it waits in real time.
async fn latency(st: &SimState) {
    if st.opts.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(st.opts.latency_ms)).await;
    }
}

/// `POST /api/v1/calls/dispatch`.
async fn dispatch(
    State(st): St,
    ConnectInfo(conn): ConnectInfo<ConnKill>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Stamped on the simulator's clock (the test's clock when given): the
    // journal, `time_of_call` and the call's progress share one time line.
    let received_at = st.clock.now();
    st.counters
        .dispatch_requests
        .fetch_add(1, Ordering::Relaxed);
    let _in_progress = InProgress::enter(&st);
    latency(&st).await;
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |k: &str| parsed.as_ref().and_then(|v| v.get(k));
    let mut entry = JournalEntry {
        at: journal_time(received_at),
        to_number: field("to_number")
            .and_then(Value::as_str)
            .map(str::to_string),
        agent_id: field("agent_id").and_then(Value::as_i64),
        call_context: field("call_context").cloned().unwrap_or(Value::Null),
        result: DispatchResult::Invalid,
        placed: false,
        request_id: None,
        from_number_id: field("from_number_id").and_then(Value::as_i64),
    };
    let record = |entry: JournalEntry| {
        st.counters.results[entry.result as usize].fetch_add(1, Ordering::Relaxed);
        st.journal.record(entry);
    };

    if !authorized(&st, &headers) {
        entry.result = DispatchResult::Unauthorized;
        record(entry);
        return unauthorized();
    }
    let req = match validate(parsed.as_ref(), received_at) {
        Ok(req) => req,
        Err(err) => {
            record(entry);
            return err.into_response();
        }
    };
    let context_len = req.call_context.len();
    match st.decide(req) {
        Decision::NotPlaced(result) => {
            entry.result = result;
            record(entry);
            not_placed_response(result, &conn)
        }
        Decision::Placed(call, result) => {
            st.counters.calls_placed.fetch_add(1, Ordering::Relaxed);
            entry.result = result;
            entry.placed = true;
            entry.request_id = Some(call.request_id);
            record(entry);
            placed_response(&st, &call, result, context_len).await
        }
    }
}

/// The answer to a request that placed no call: a dropped connection, a
/// 500, or a 429 with `Retry-After`.
fn not_placed_response(result: DispatchResult, conn: &ConnKill) -> Response {
    match result {
        DispatchResult::FaultDrop => {
            conn.kill();
            error(StatusCode::INTERNAL_SERVER_ERROR, "dropped", "never sent")
        }
        DispatchResult::Fault500 => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "simulated failure (call not placed)",
        ),
        _ => {
            let mut resp = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            resp
        }
    }
}

/// The answer to a request that placed `call`: the API's success body, or
/// the fault drawn for it (a 500, a body that is not JSON, a withheld answer).
async fn placed_response(
    st: &SimState,
    call: &SimCall,
    result: DispatchResult,
    context_len: usize,
) -> Response {
    let ok = json!({
        "success": true,
        "status": "dispatched",
        "requestId": call.answered_request_id,
        "custom_variables_count": context_len,
    });
    match result {
        DispatchResult::Fault500Placed => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "simulated failure after placing the call",
        ),
        DispatchResult::FaultGarbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            format!(
                "<html><body>upstream hiccup</body></html>{{\"success\": true, \"requestId\": {}",
                call.request_id
            ),
        )
            .into_response(),
        DispatchResult::FaultTimeout => {
            withhold(st).await;
            axum::Json(ok).into_response()
        }
        _ => axum::Json(ok).into_response(),
    }
}

/// Waits `--timeout-hold-secs`, or until the server stops. Real time: the
/// hold stands for a hung server and must outlast the client's own timeout,
/// which is real time too.
async fn withhold(st: &SimState) {
    let mut stopping = st.stopping.subscribe();
    let hold =
        Duration::try_from_secs_f64(st.opts.timeout_hold_secs).unwrap_or(Duration::from_secs(60));
    tokio::select! {
        _ = tokio::time::sleep(hold) => {}
        _ = stopping.wait_for(|s| *s) => {}
    }
}

/// Checks a dispatch body: `agent_id` integer, `to_number` E.164, optional
/// object `call_context`, optional integer `from_number_id`.
fn validate(body: Option<&Value>, received_at: chrono::DateTime<Utc>) -> Result<NewCall, ApiError> {
    let bad = ApiError::bad_request;
    let body = body
        .and_then(Value::as_object)
        .ok_or_else(|| bad("the body must be a JSON object"))?;
    let agent_id = body
        .get("agent_id")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("agent_id is required and must be an integer"))?;
    let to_number = body
        .get("to_number")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("to_number is required"))?;
    if !is_e164(to_number) {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "invalid_phone_number",
            description: "to_number must be E.164: + and 8 to 15 digits".into(),
        });
    }
    let call_context = match body.get("call_context") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("call_context must be an object")),
    };
    let from_number_id = match body.get("from_number_id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| bad("from_number_id must be an integer"))?,
        ),
    };
    Ok(NewCall {
        agent_id,
        to_number: to_number.to_string(),
        from_number_id,
        call_context,
        received_at,
    })
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `GET /api/v1/calls/logs?pageno&pagesize&agentid&call_status`.
async fn list_logs(
    State(st): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.counters
        .log_list_requests
        .fetch_add(1, Ordering::Relaxed);
    latency(&st).await;
    if !authorized(&st, &headers) {
        return unauthorized();
    }
    let q = match ListQuery::parse(&q) {
        Ok(q) => q,
        Err(err) => return err.into_response(),
    };
    let now = st.clock.now();
    let size = st
        .opts
        .max_page_size
        .map_or(q.size, |cap| q.size.min(cap as usize));
    let (calls, total) = st.list(q.agent, q.status.as_deref(), q.page, size, now);
    let logs: Vec<Value> = calls.iter().map(|c| render(c, now)).collect();
    axum::Json(json!({"call_log_data": logs, "total_records": total})).into_response()
}

/// The parameters of a list request.
struct ListQuery {
    page: usize,
    size: usize,
    agent: Option<i64>,
    status: Option<String>,
}

impl ListQuery {
    /// Reads `pageno` (default 1), `pagesize` (default 30, at most 1000),
    /// `agentid` and `call_status`; empty values count as absent.
    fn parse(q: &HashMap<String, String>) -> Result<ListQuery, ApiError> {
        let param = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let number = |k: &str| -> Result<Option<i64>, ApiError> {
            param(k)
                .map(|v| v.parse::<i64>())
                .transpose()
                .map_err(|_| ApiError::bad_request(format!("{k} must be an integer")))
        };
        let page = number("pageno")?.unwrap_or(1).max(1);
        let size = number("pagesize")?
            .unwrap_or(30)
            .clamp(1, MAX_PAGE_SIZE as i64);
        Ok(ListQuery {
            page: usize::try_from(page).unwrap_or(1),
            size: usize::try_from(size).unwrap_or(30),
            agent: number("agentid")?,
            status: param("call_status").map(str::to_string),
        })
    }
}

/// `GET /api/v1/calls/logs/{id}`.
async fn get_log(State(st): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    st.counters.log_get_requests.fetch_add(1, Ordering::Relaxed);
    latency(&st).await;
    if !authorized(&st, &headers) {
        return unauthorized();
    }
    match id.trim().parse::<i64>().ok().and_then(|id| st.get(id)) {
        Some(call) => {
            axum::Json(json!({"call_log_data": [render(&call, st.clock.now())]})).into_response()
        }
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("call log {id:?} not found"),
        ),
    }
}

/// `GET /_sim/stats` (no key needed).
async fn stats(State(st): St) -> Response {
    axum::Json(st.stats()).into_response()
}

#[cfg(test)]
mod tests {
    use super::is_e164;

    #[test]
    fn e164_is_a_plus_and_8_to_15_digits() {
        assert!(is_e164("+14155552671"));
        assert!(is_e164("+12345678"));
        assert!(!is_e164("+1234567"));
        assert!(!is_e164("14155552671"));
        assert!(!is_e164("+1415555267a"));
        assert!(!is_e164("+1234567890123456"));
    }
}
