//! The provider client's classification of every way a call can go wrong,
//! against the simulator's faults (checking what the simulator really did)
//! and against scripted answers (wiremock).

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use dialerd::clock::ManualClock;
use dialerd::provider::{Client, DispatchRequest, ErrorKind, LogQuery, ProviderError};
use dialerd::secret::ApiKey;
use dialerd::sim::{self, DispatchResult, SimHandle, SimOptions};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sim-key";

fn client(base: &str, timeout: Duration) -> Client {
    Client::new(base, ApiKey::new(KEY).unwrap(), timeout).unwrap()
}

fn call() -> DispatchRequest {
    let ctx = json!({"name": "Ann", "plan": "gold"});
    DispatchRequest {
        agent_id: 7,
        to_number: "+14155552671".into(),
        call_context: ctx.as_object().unwrap().clone(),
        from_number_id: None,
    }
}

async fn sim_with(f: impl FnOnce(&mut SimOptions)) -> SimHandle {
    let mut opts = SimOptions::default();
    f(&mut opts);
    sim::spawn(opts).await.unwrap()
}

/// Dispatches once against a simulator and returns the error and the journal's one entry.
async fn dispatch_against(
    sim: &SimHandle,
    timeout: Duration,
) -> (Result<String, ProviderError>, sim::JournalEntry) {
    let res = client(&sim.base_url(), timeout)
        .dispatch(&call())
        .await
        .map(|a| a.request_id);
    let journal = sim.journal();
    assert_eq!(journal.len(), 1, "{journal:?}");
    (res, journal[0].clone())
}

// ---- against the simulator ----

#[tokio::test]
async fn an_accepted_dispatch_returns_the_request_id_the_simulator_journaled() {
    let sim = sim_with(|_| {}).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    let id = res.unwrap();
    assert_eq!(entry.result, DispatchResult::Dispatched);
    assert!(entry.placed);
    assert_eq!(entry.request_id.map(|i| i.to_string()), Some(id));
    assert_eq!(entry.to_number.as_deref(), Some("+14155552671"));
    assert_eq!(entry.agent_id, Some(7));
    assert_eq!(entry.call_context, json!({"name": "Ann", "plan": "gold"}));
    assert_eq!(sim.stats().calls_placed, 1);
}

#[tokio::test]
async fn a_simulated_429_is_rate_limited_and_no_call_was_placed() {
    let sim = sim_with(|o| o.fault_429 = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.is_safe_to_retry());
    assert_eq!(
        (entry.result, entry.placed, entry.request_id),
        (DispatchResult::Fault429, false, None)
    );
    assert_eq!(sim.stats().calls_placed, 0);
}

#[tokio::test]
async fn the_rate_limit_refuses_dispatches_past_n_per_second_without_placing_them() {
    let sim = sim_with(|o| o.rate_limit = 2).await;
    let c = client(&sim.base_url(), Duration::from_secs(5));
    assert!(c.dispatch(&call()).await.is_ok());
    assert!(c.dispatch(&call()).await.is_ok());
    let err = c.dispatch(&call()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let last = sim.journal().pop().unwrap();
    assert_eq!(
        (last.result, last.placed),
        (DispatchResult::RateLimited, false)
    );
    assert_eq!(sim.stats().calls_placed, 2);
}

#[tokio::test]
async fn a_500_before_placing_is_still_ambiguous_to_the_client_because_it_cannot_know() {
    let sim = sim_with(|o| o.fault_500 = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    assert_eq!(res.unwrap_err().kind(), ErrorKind::Ambiguous);
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::Fault500, false)
    );
}

#[tokio::test]
async fn a_500_after_placing_is_ambiguous_never_retryable_and_the_call_exists() {
    let sim = sim_with(|o| o.fault_500_placed = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous);
    assert!(!err.is_safe_to_retry());
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::Fault500Placed, true)
    );
    let page = client(&sim.base_url(), Duration::from_secs(5))
        .list_logs(&LogQuery::default())
        .await
        .unwrap();
    assert_eq!(page.logs.len(), 1);
    assert_eq!(
        page.logs[0].request_id,
        entry.request_id.map(|i| i.to_string())
    );
}

#[tokio::test]
async fn a_withheld_answer_times_out_as_ambiguous_and_the_call_exists() {
    let sim = sim_with(|o| o.fault_timeout = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_millis(300)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::FaultTimeout, true)
    );
    // Shutdown releases the withheld answer instead of waiting a minute.
    tokio::time::timeout(Duration::from_secs(5), sim.shutdown())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_dropped_connection_is_ambiguous_and_no_call_was_placed() {
    let sim = sim_with(|o| o.fault_drop = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert!(err.to_string().contains("connection"), "{err}");
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::FaultDrop, false)
    );
    assert_eq!(sim.stats().calls_placed, 0);
}

#[tokio::test]
async fn a_garbage_200_is_ambiguous_and_the_call_exists() {
    let sim = sim_with(|o| o.fault_garbage = 1.0).await;
    let (res, entry) = dispatch_against(&sim, Duration::from_secs(5)).await;
    let err = res.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
    assert!(err.to_string().contains("not JSON"), "{err}");
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::FaultGarbage, true)
    );
}

#[tokio::test]
async fn a_wrong_key_is_unauthorized_and_places_nothing() {
    let sim = sim_with(|_| {}).await;
    let c = Client::new(
        &sim.base_url(),
        ApiKey::new("not-the-key").unwrap(),
        Duration::from_secs(5),
    )
    .unwrap();
    let err = c.dispatch(&call()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(!err.to_string().contains("not-the-key"));
    let err = c.list_logs(&LogQuery::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    let entry = &sim.journal()[0];
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::Unauthorized, false)
    );
}

#[tokio::test]
async fn a_number_that_is_not_e164_is_a_permanent_rejection_with_the_servers_message() {
    let sim = sim_with(|_| {}).await;
    let mut req = call();
    req.to_number = "4155552671".into();
    let err = client(&sim.base_url(), Duration::from_secs(5))
        .dispatch(&req)
        .await
        .unwrap_err();
    match &err {
        ProviderError::Permanent {
            status: Some(422),
            message,
        } => assert!(message.contains("E.164"), "{message}"),
        other => panic!("expected a 422 rejection, got {other:?}"),
    }
    let entry = &sim.journal()[0];
    assert_eq!(
        (entry.result, entry.placed),
        (DispatchResult::Invalid, false)
    );
}

#[tokio::test]
async fn logs_are_read_back_by_id_and_an_unknown_id_is_none() {
    let sim = sim_with(|_| {}).await;
    let c = client(&sim.base_url(), Duration::from_secs(5));
    let accepted = c.dispatch(&call()).await.unwrap();
    let page = c
        .list_logs(&LogQuery {
            agent_id: Some(7),
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total_records, Some(1));
    let log = &page.logs[0];
    assert_eq!(
        log.request_id.as_deref(),
        Some(accepted.request_id.as_str())
    );
    assert_eq!(log.to_number.as_deref(), Some("+14155552671"));
    assert_eq!(log.agent_id, Some(7));
    assert!(
        !log.status.is_final(),
        "a fresh call is not final: {:?}",
        log.call_status_raw
    );
    let again = c.get_log(log.id.unwrap()).await.unwrap().unwrap();
    assert_eq!(again.request_id, log.request_id);
    assert_eq!(c.get_log(1).await.unwrap(), None);
}

// ---- against scripted answers ----

async fn scripted(resp: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/calls/dispatch"))
        .respond_with(resp)
        .mount(&server)
        .await;
    server
}

async fn dispatch_to(resp: ResponseTemplate) -> Result<String, ProviderError> {
    let server = scripted(resp).await;
    client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5))
        .dispatch(&call())
        .await
        .map(|a| a.request_id)
}

fn status(code: u16) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": "e", "error_description": format!("answer {code}")}))
}

#[tokio::test]
async fn a_200_with_a_request_id_is_accepted_and_the_sdk_headers_and_body_are_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/calls/dispatch"))
        .and(header("authorization", "Bearer sim-key"))
        .and(header("content-type", "application/json"))
        .and(header("accept", "application/json"))
        .and(wiremock::matchers::body_json(json!({
            "agent_id": 7, "to_number": "+14155552671",
            "call_context": {"name": "Ann", "plan": "gold"}, "from_number_id": null,
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(include_str!("../fixtures/dispatch_response.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let a = client(&format!("{}/api/v1/", server.uri()), Duration::from_secs(5))
        .dispatch(&call())
        .await
        .unwrap();
    assert_eq!(a.request_id, "3170021");
}

#[tokio::test]
async fn a_200_with_success_false_is_a_permanent_rejection_with_its_message() {
    let err = dispatch_to(
        ResponseTemplate::new(200)
            .set_body_json(json!({"success": false, "message": "agent is inactive"})),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        ProviderError::Permanent {
            status: None,
            message: "agent is inactive".into()
        }
    );
}

#[tokio::test]
async fn a_200_that_is_not_json_is_ambiguous_never_retryable() {
    let err = dispatch_to(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous);
}

#[tokio::test]
async fn definite_4xx_rejections_are_permanent_with_the_servers_message() {
    for code in [400, 404, 409, 422] {
        match dispatch_to(status(code)).await.unwrap_err() {
            ProviderError::Permanent { status, message } => {
                assert_eq!(status, Some(code));
                assert_eq!(message, format!("e: answer {code}"));
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_401_or_403_is_unauthorized() {
    for code in [401, 403] {
        let err = dispatch_to(status(code)).await.unwrap_err();
        assert_eq!(
            err,
            ProviderError::Unauthorized {
                status: code,
                message: format!("e: answer {code}")
            }
        );
    }
}

#[tokio::test]
async fn a_408_is_retryable() {
    assert_eq!(
        dispatch_to(status(408)).await.unwrap_err().kind(),
        ErrorKind::Retryable
    );
}

#[tokio::test]
async fn a_429_with_retry_after_seconds_is_rate_limited_for_that_long() {
    let err = dispatch_to(status(429).insert_header("Retry-After", "7"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_429_with_an_http_date_is_rate_limited_until_that_date_by_the_clients_clock() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
    let server =
        scripted(status(429).insert_header("Retry-After", "Wed, 25 Nov 2026 08:01:30 GMT")).await;
    let c = client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5))
        .with_clock(Arc::new(ManualClock::new(now)));
    let err = c.dispatch(&call()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(90)));
}

#[tokio::test]
async fn a_500_502_or_504_after_sending_is_ambiguous_never_retryable() {
    for code in [500, 502, 504] {
        let err = dispatch_to(status(code)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Ambiguous, "{code}");
        assert!(!err.is_safe_to_retry());
    }
}

#[tokio::test]
async fn a_503_is_retryable_only_with_retry_after() {
    let err = dispatch_to(status(503).insert_header("Retry-After", "3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    let err = dispatch_to(status(503)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous);
}

#[tokio::test]
async fn a_refused_connection_is_retryable_because_nothing_was_sent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{addr}/api/v1"), Duration::from_secs(5))
        .dispatch(&call())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Retryable, "{err}");
}

#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous_never_retryable() {
    let server = scripted(ResponseTemplate::new(200).set_delay(Duration::from_secs(3))).await;
    let err = client(
        &format!("{}/api/v1", server.uri()),
        Duration::from_millis(200),
    )
    .dispatch(&call())
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Ambiguous, "{err}");
}

#[tokio::test]
async fn the_key_never_appears_in_an_error_even_when_the_server_echoes_it() {
    let err = dispatch_to(
        ResponseTemplate::new(400).set_body_json(json!({"error": "bad key sim-key here"})),
    )
    .await
    .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("sim-key"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
}

#[tokio::test]
async fn list_logs_sends_the_sdk_query_and_reads_the_fixture_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/calls/logs"))
        .and(query_param("pageno", "2"))
        .and(query_param("pagesize", "50"))
        .and(query_param("agentid", "7"))
        .and(query_param("call_status", "no-answer"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(include_str!("../fixtures/call_logs_page.json")),
        )
        .expect(1)
        .mount(&server)
        .await;
    let q = LogQuery {
        page: 2,
        page_size: 50,
        agent_id: Some(7),
        call_status: Some("no-answer".into()),
    };
    let page = client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5))
        .list_logs(&q)
        .await
        .unwrap();
    assert_eq!(page.total_records, Some(2));
    assert_eq!(page.logs.len(), 2);
}

#[tokio::test]
async fn get_log_reads_one_log_and_a_404_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/calls/logs/7301442"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(include_str!("../fixtures/call_log_one.json")),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/calls/logs/9"))
        .respond_with(status(404))
        .mount(&server)
        .await;
    let c = client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5));
    let log = c.get_log(7301442).await.unwrap().unwrap();
    assert_eq!(log.request_id.as_deref(), Some("3170021"));
    assert_eq!(c.get_log(9).await.unwrap(), None);
}

#[tokio::test]
async fn a_log_page_with_a_malformed_element_still_yields_the_others() {
    let server = MockServer::start().await;
    let body: Value = json!({"call_log_data": [{"id": 1, "call_status": "busy"}, "junk", {"id": 2}], "total_records": 3});
    Mock::given(method("GET"))
        .and(path("/api/v1/calls/logs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let page = client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5))
        .list_logs(&LogQuery::default())
        .await
        .unwrap();
    assert_eq!(page.logs.len(), 2);
    assert_eq!(page.skipped, 1);
}

#[tokio::test]
async fn dispatch_with_a_key_sends_it_as_the_idempotency_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/calls/dispatch"))
        .and(header("Idempotency-Key", "dialerd-7-14155552671"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "requestId": 5})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let a = client(&format!("{}/api/v1", server.uri()), Duration::from_secs(5))
        .dispatch_with_key(&call(), Some("dialerd-7-14155552671"))
        .await
        .unwrap();
    assert_eq!(a.request_id, "5");
}
