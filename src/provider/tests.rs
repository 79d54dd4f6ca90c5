//! Parser tests against the documented fixtures and every `false`/`null` variant.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::model::parse_dispatch;
use super::*;
use crate::domain::Outcome;

const PAGE: &str = include_str!("../../tests/fixtures/call_logs_page.json");
const ONE: &str = include_str!("../../tests/fixtures/call_log_one.json");
const DISPATCH: &str = include_str!("../../tests/fixtures/dispatch_response.json");

fn page(body: Value) -> LogPage {
    parse_log_page(&body).expect("a page")
}

#[test]
fn the_fixture_page_yields_both_logs_with_every_field() {
    let p = page(serde_json::from_str(PAGE).unwrap());
    assert_eq!(p.total_records, Some(2));
    assert_eq!(p.skipped, 0);
    assert_eq!(p.logs.len(), 2);

    let missed = &p.logs[0];
    assert_eq!(missed.id, Some(7301443));
    assert_eq!(missed.request_id.as_deref(), Some("3170022"));
    assert_eq!(missed.to_number.as_deref(), Some("+12125550199"));
    assert_eq!(missed.call_status_raw.as_deref(), Some("no-answer"));
    assert_eq!(missed.status, CallStatus::Final(Outcome::NoAnswer));
    assert_eq!(missed.duration_secs, Some(0.0));
    assert_eq!(missed.transcript, None);
    assert_eq!(missed.recording_url, None);
    assert_eq!(missed.cost, Some(0.0));
    assert!(!missed.is_voicemail);

    let done = &p.logs[1];
    assert_eq!(done.id, Some(7301442));
    assert_eq!(done.request_id.as_deref(), Some("3170021"));
    assert_eq!(done.from_number.as_deref(), Some("+16505550101"));
    assert_eq!(done.status, CallStatus::Final(Outcome::Completed));
    assert_eq!(
        done.time_of_call,
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 15, 2, 41).unwrap())
    );
    assert_eq!(done.duration_secs, Some(67.0));
    assert_eq!(done.cost, Some(0.09));
    assert_eq!(
        done.recording_url.as_deref(),
        Some("https://recordings.example.invalid/7301442.mp3")
    );
    let transcript = done.transcript.as_deref().unwrap();
    assert_eq!(transcript.lines().count(), 5);
    assert!(transcript.starts_with("LLM: Hi Ann, this is Maya"));
    assert!(transcript.ends_with("LLM: Done. Thanks, and have a good day."));
    assert_eq!(
        done.extracted_variables,
        Some(json!({"renewal_confirmed": "yes", "auto_renew": "on"}))
    );
    assert_eq!(done.raw["bot_name"], "Renewal Reminder");
}

#[test]
fn the_single_log_fixture_parses_like_a_page_of_one() {
    let p = page(serde_json::from_str(ONE).unwrap());
    assert_eq!(p.total_records, None);
    assert_eq!(p.logs.len(), 1);
    assert_eq!(p.logs[0].id, Some(7301442));
}

#[test]
fn the_dispatch_fixture_is_accepted_with_its_request_id() {
    let a = parse_dispatch(serde_json::from_str(DISPATCH).unwrap()).unwrap();
    assert_eq!(a.request_id, "3170021");
    assert_eq!(a.raw["custom_variables_count"], 2);
}

#[test]
fn a_dispatch_answer_without_a_request_id_or_with_success_false_is_refused() {
    for body in [
        json!({"success": false, "requestId": 5, "message": "agent busy"}),
        json!({"success": false, "error": "invalid_agent", "error_description": "no agent 7"}),
        json!({"success": true}),
        json!({"success": true, "requestId": false}),
        json!({"success": true, "requestId": null}),
        json!({"success": true, "requestId": 0}),
        json!({"success": true, "requestId": ""}),
        json!("ok"),
        json!([]),
    ] {
        assert!(parse_dispatch(body.clone()).is_err(), "{body}");
    }
    let why = parse_dispatch(json!({"success": false, "message": "agent busy"})).unwrap_err();
    assert_eq!(why, (true, "agent busy".to_string()));
    let (refused, _) = parse_dispatch(json!({"success": true})).unwrap_err();
    assert!(
        !refused,
        "an answer without a request id is not a refusal: the call may be placed"
    );
    let a = parse_dispatch(json!({"success": true, "requestId": "req-9"})).unwrap();
    assert_eq!(a.request_id, "req-9");
}

#[test]
fn every_optional_field_accepts_false_null_and_missing() {
    let fields = [
        "id",
        "call_request_id",
        "to_number",
        "from_number",
        "call_status",
        "time_of_call",
        "call_duration_in_seconds",
        "call_duration_in_minutes",
        "call_duration",
        "call_conversation",
        "recording_url",
        "call_cost",
        "aggregated_estimated_cost",
        "is_voicemail",
        "agent_id",
        "bot_id",
        "extracted_variables",
    ];
    for empty in [json!(false), json!(null), json!("")] {
        let obj: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.to_string(), empty.clone()))
            .collect();
        let log = CallLog::from_value(&Value::Object(obj)).expect("an object is a log");
        assert_eq!(log.request_id, None, "{empty}");
        assert_eq!(log.to_number, None);
        assert_eq!(log.recording_url, None);
        assert_eq!(log.transcript, None);
        assert_eq!(log.time_of_call, None);
        assert_eq!(log.status, CallStatus::NotFinal);
        assert!(!log.is_voicemail);
        assert_eq!(log.extracted_variables, None);
    }
    let bare = CallLog::from_value(&json!({})).unwrap();
    assert_eq!(bare.id, None);
    assert_eq!(bare.duration_secs, None);
    assert_eq!(bare.cost, None);
    assert_eq!(bare.agent_id, None);
}

#[test]
fn fields_of_the_wrong_type_are_absent_not_fatal() {
    let log = CallLog::from_value(&json!({
        "id": "7301442",
        "call_request_id": {"id": "3170021", "type_of_request": "api"},
        "to_number": ["+1"],
        "call_status": {"x": 1},
        "time_of_call": 12,
        "call_duration_in_seconds": "n/a",
        "call_duration_in_minutes": "1.5",
        "call_conversation": 7,
        "recording_url": true,
        "call_cost": "0.05",
        "is_voicemail": "true",
        "bot_id": "42",
    }))
    .unwrap();
    assert_eq!(log.id, Some(7301442));
    assert_eq!(log.request_id.as_deref(), Some("3170021"));
    assert_eq!(log.to_number, None);
    assert_eq!(log.call_status_raw, None);
    assert_eq!(log.time_of_call, None);
    assert_eq!(log.duration_secs, Some(90.0));
    assert_eq!(log.transcript, None);
    assert_eq!(log.recording_url, None);
    assert_eq!(log.cost, Some(0.05));
    assert!(log.is_voicemail);
    assert_eq!(log.agent_id, Some(42));
}

#[test]
fn both_call_request_id_shapes_give_the_same_request_id() {
    for shape in [
        json!({"id": 3170021, "type_of_request": "api"}),
        json!(3170021),
        json!("3170021"),
    ] {
        let log = CallLog::from_value(&json!({"call_request_id": shape})).unwrap();
        assert_eq!(log.request_id.as_deref(), Some("3170021"), "{shape}");
    }
    let web =
        CallLog::from_value(&json!({"call_request_id": {"id": false, "type_of_request": "web"}}))
            .unwrap();
    assert_eq!(web.request_id, None);
}

#[test]
fn duration_falls_back_to_minutes_then_display_text() {
    let d = |v: Value| CallLog::from_value(&v).unwrap().duration_secs;
    assert_eq!(
        d(json!({"call_duration_in_seconds": 67, "call_duration_in_minutes": 9})),
        Some(67.0)
    );
    assert_eq!(
        d(json!({"call_duration_in_seconds": false, "call_duration_in_minutes": 2})),
        Some(120.0)
    );
    assert_eq!(
        d(json!({"call_duration_in_seconds": null, "call_duration": "1:07"})),
        Some(67.0)
    );
    assert_eq!(d(json!({"call_duration": false})), None);
}

#[test]
fn a_voicemail_flag_on_a_completed_log_is_a_voicemail_outcome() {
    let log =
        CallLog::from_value(&json!({"call_status": "completed", "is_voicemail": true})).unwrap();
    assert_eq!(log.status, CallStatus::Final(Outcome::Voicemail));
    let log =
        CallLog::from_value(&json!({"call_status": "ringing", "is_voicemail": true})).unwrap();
    assert_eq!(log.status, CallStatus::NotFinal);
}

#[test]
fn a_malformed_element_is_skipped_and_the_rest_of_the_page_survives() {
    let p = page(json!({
        "call_log_data": [{"id": 1}, 42, "junk", null, false, [], {"id": 2}],
        "total_records": "7",
    }));
    assert_eq!(
        p.logs.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![Some(1), Some(2)]
    );
    assert_eq!(p.skipped, 5);
    assert_eq!(p.total_records, Some(7));
}

#[test]
fn a_page_of_unknown_shape_is_an_error_not_an_empty_page() {
    assert!(parse_log_page(&json!({"data": []})).is_err());
    assert!(parse_log_page(&json!({"call_log_data": "none"})).is_err());
    assert!(parse_log_page(&json!([])).is_err());
    let empty = page(json!({"call_log_data": false, "total_records": false}));
    assert!(empty.logs.is_empty());
    assert_eq!(empty.total_records, None);
    let negative = page(json!({"call_log_data": [], "total_records": -1}));
    assert_eq!(negative.total_records, None);
}

#[test]
fn dispatch_requests_serialize_like_the_sdk() {
    let req = DispatchRequest {
        agent_id: 7,
        to_number: "+14155552671".into(),
        call_context: serde_json::Map::new(),
        from_number_id: None,
    };
    assert_eq!(
        serde_json::to_value(&req).unwrap(),
        json!({"agent_id": 7, "to_number": "+14155552671", "call_context": {}, "from_number_id": null})
    );
}

#[test]
fn the_client_never_prints_its_key() {
    let key = crate::secret::ApiKey::new("sk-live-very-secret").unwrap();
    let c = Client::new(
        "http://127.0.0.1:9/api/v1/",
        key,
        std::time::Duration::from_secs(1),
    )
    .unwrap();
    let dbg = format!("{c:?} {c:#?}");
    assert!(!dbg.contains("very-secret"), "{dbg}");
    assert_eq!(c.base_url(), "http://127.0.0.1:9/api/v1");
}

#[test]
fn a_bad_base_url_is_refused_up_front() {
    let key = crate::secret::ApiKey::new("k").unwrap();
    let err = Client::new("not a url", key, std::time::Duration::from_secs(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
}
