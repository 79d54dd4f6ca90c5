//! The simulator as a server on loopback: the API shapes, pagination and
//! filters, status progression, seeded determinism, and an exact journal.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dialerd::clock::ManualClock;
use dialerd::sim::{self, DispatchResult, JournalEntry, SimHandle, SimOptions, SimStats};
use serde_json::{Value, json};

const KEY: &str = "sim-key";

/// A running simulator on a manual clock, and one HTTP client for it (a
/// client per request would spend its time loading TLS roots).
struct Sim {
    handle: SimHandle,
    clock: ManualClock,
    http: reqwest::Client,
}

impl std::ops::Deref for Sim {
    type Target = SimHandle;
    fn deref(&self) -> &SimHandle {
        &self.handle
    }
}

async fn sim_with(f: impl FnOnce(&mut SimOptions)) -> Sim {
    let mut opts = SimOptions::default();
    f(&mut opts);
    let clock = ManualClock::new(Utc::now());
    Sim {
        handle: sim::spawn_with_clock(opts, Arc::new(clock.clone()))
            .await
            .unwrap(),
        clock,
        http: reqwest::Client::new(),
    }
}

async fn dispatch(sim: &Sim, agent_id: i64, to: &str) -> (u16, Value) {
    let resp = sim
        .http
        .post(format!("{}/calls/dispatch", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"agent_id": agent_id, "to_number": to, "call_context": {"name": "Ann", "plan": "gold"}, "from_number_id": null}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(sim: &Sim, path_and_query: &str) -> (u16, Value) {
    let resp = sim
        .http
        .get(format!("{}/{path_and_query}", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn ids(page: &Value) -> Vec<i64> {
    page["call_log_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_dispatch_answers_like_the_api_and_counts_the_context_variables() {
    let sim = sim_with(|_| {}).await;
    let (status, body) = dispatch(&sim, 7, "+14155552671").await;
    assert_eq!(status, 200);
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "dispatched");
    assert!(body["requestId"].is_i64());
    assert_eq!(body["custom_variables_count"], 2);
}

#[tokio::test]
async fn logs_are_listed_newest_first_and_paginated_with_the_total_of_the_filtered_set() {
    let sim = sim_with(|_| {}).await;
    for agent in [7, 7, 8, 7, 8] {
        assert_eq!(dispatch(&sim, agent, "+14155552671").await.0, 200);
    }
    let (_, p1) = get(&sim, "calls/logs?pageno=1&pagesize=2").await;
    let (_, p3) = get(&sim, "calls/logs?pageno=3&pagesize=2").await;
    let (_, p4) = get(&sim, "calls/logs?pageno=4&pagesize=2").await;
    assert_eq!(p1["total_records"], 5);
    let first = ids(&p1);
    assert_eq!(first.len(), 2);
    assert!(first[0] > first[1], "newest first: {first:?}");
    assert_eq!(ids(&p3).len(), 1);
    assert!(ids(&p3)[0] < first[1]);
    assert!(ids(&p4).is_empty());
    assert_eq!(p4["total_records"], 5);

    let (_, agent8) = get(&sim, "calls/logs?pagesize=30&agentid=8").await;
    assert_eq!(agent8["total_records"], 2);
    for log in agent8["call_log_data"].as_array().unwrap() {
        assert_eq!(log["agent_id"], 8);
    }
    let (_, one) = get(&sim, "calls/logs?pagesize=1&agentid=7").await;
    assert_eq!(one["total_records"], 3);
    assert_eq!(ids(&one).len(), 1);
    let (status, _) = get(&sim, "calls/logs?pagesize=5000").await;
    assert_eq!(status, 200, "an oversized page is capped, not refused");
    let (status, _) = get(&sim, "calls/logs?pageno=abc").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_call_status_filter_selects_by_the_current_raw_status() {
    let sim = sim_with(|o| {
        o.outcomes = "busy=1".parse().unwrap();
        o.call_secs = "0".parse().unwrap();
    })
    .await;
    for _ in 0..3 {
        dispatch(&sim, 7, "+14155552671").await;
    }
    let (_, busy) = get(&sim, "calls/logs?call_status=busy").await;
    assert_eq!(busy["total_records"], 3);
    let (_, done) = get(&sim, "calls/logs?call_status=completed").await;
    assert_eq!(done["total_records"], 0);

    let slow = sim_with(|o| o.call_secs = "30".parse().unwrap()).await;
    dispatch(&slow, 7, "+14155552671").await;
    let (_, queued) = get(&slow, "calls/logs?call_status=queued").await;
    assert_eq!(queued["total_records"], 1);
}

#[tokio::test]
async fn every_dispatch_is_given_the_weighted_outcome_when_only_one_has_weight() {
    let sim = sim_with(|o| {
        o.outcomes = "no_answer=1".parse().unwrap();
        o.call_secs = "0".parse().unwrap();
    })
    .await;
    for _ in 0..20 {
        dispatch(&sim, 7, "+14155552671").await;
    }
    let (_, page) = get(&sim, "calls/logs?pagesize=100").await;
    for log in page["call_log_data"].as_array().unwrap() {
        assert_eq!(log["call_status"], "no-answer");
        assert_eq!(log["recording_url"], false);
        assert_eq!(log["call_duration_in_seconds"], 0);
    }
}

#[tokio::test]
async fn a_call_moves_from_queued_to_a_final_completed_log_after_its_call_secs() {
    let sim = sim_with(|o| {
        o.outcomes = "completed=1".parse().unwrap();
        o.call_secs = "0.05-0.1".parse().unwrap();
    })
    .await;
    dispatch(&sim, 7, "+14155552671").await;
    let (_, page) = get(&sim, "calls/logs").await;
    let id = ids(&page)[0];
    assert_eq!(page["call_log_data"][0]["call_status"], "queued");
    assert_eq!(page["call_log_data"][0]["recording_url"], false);

    sim.clock.advance(Duration::from_millis(49));
    let (_, early) = get(&sim, &format!("calls/logs/{id}")).await;
    assert_ne!(
        early["call_log_data"][0]["call_status"], "completed",
        "final before its call length passed on the clock"
    );
    sim.clock.advance(Duration::from_millis(51));
    let (status, one) = get(&sim, &format!("calls/logs/{id}")).await;
    assert_eq!(status, 200);
    let log = &one["call_log_data"][0];
    assert_eq!(log["call_status"], "completed");
    assert_eq!(log["is_voicemail"], false);
    assert_eq!(log["call_request_id"]["type_of_request"], "api");
    assert_eq!(
        log["recording_url"],
        format!("https://recordings.sim.invalid/{id}.mp3")
    );
    assert!(
        log["call_conversation"]
            .as_str()
            .unwrap()
            .contains("<br/> LLM: Hi Ann")
    );
    assert!(log["call_duration_in_seconds"].as_u64().unwrap() >= 15);
    assert!(!log["interactions"].as_array().unwrap().is_empty());
    for key in [
        "id",
        "time_of_call",
        "to_number",
        "from_number",
        "call_direction",
        "call_duration",
        "call_duration_in_minutes",
        "call_cost",
        "aggregated_estimated_cost",
        "sentiment_score",
        "extracted_variables",
        "amd_detected",
        "hangup_source",
        "hangup_reason",
        "bot_name",
    ] {
        assert!(log.get(key).is_some(), "missing {key}");
    }
    let parsed = dialerd::provider::CallLog::from_value(log).unwrap();
    assert_eq!(
        parsed.status.outcome(),
        Some(dialerd::domain::Outcome::Completed)
    );
    assert!(parsed.time_of_call.is_some());
}

#[tokio::test]
async fn past_max_calls_the_oldest_calls_and_journal_entries_are_forgotten() {
    let sim = sim_with(|o| o.max_calls = 3).await;
    let mut placed = Vec::new();
    for i in 0..5 {
        let (status, body) = dispatch(&sim, 7, &format!("+1415555267{i}")).await;
        assert_eq!(status, 200);
        placed.push(body["requestId"].as_i64().unwrap());
    }
    let (_, page) = get(&sim, "calls/logs?pagesize=30").await;
    assert_eq!(page["total_records"], 3);
    let kept = ids(&page);
    assert_eq!(kept.len(), 3);
    let (_, newest) = get(&sim, &format!("calls/logs/{}", kept[0])).await;
    assert_eq!(
        newest["call_log_data"][0]["to_number"], "+14155552674",
        "ids keep counting: {kept:?}"
    );
    let oldest_kept = *kept.last().unwrap();
    let (status, _) = get(&sim, &format!("calls/logs/{oldest_kept}")).await;
    assert_eq!(status, 200);
    for gone in [oldest_kept - 1, oldest_kept - 2] {
        let (status, body) = get(&sim, &format!("calls/logs/{gone}")).await;
        assert_eq!(status, 404, "call log {gone} was forgotten");
        assert_eq!(body["error"], "not_found");
    }
    let journal: Vec<Option<String>> = sim.journal().into_iter().map(|e| e.to_number).collect();
    assert_eq!(
        journal,
        ["+14155552672", "+14155552673", "+14155552674"].map(|n| Some(n.to_string()))
    );
    assert_eq!(sim.stats().calls_placed, 5, "the counters count every call");
}

#[tokio::test]
async fn an_unknown_log_id_is_a_404_with_a_json_error() {
    let sim = sim_with(|_| {}).await;
    for path in ["calls/logs/123", "calls/logs/abc"] {
        let (status, body) = get(&sim, path).await;
        assert_eq!(status, 404);
        assert_eq!(body["error"], "not_found");
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_refused_with_401_on_every_endpoint() {
    let sim = sim_with(|_| {}).await;
    let base = sim.base_url();
    let c = sim.http.clone();
    let requests = [
        c.post(format!("{base}/calls/dispatch"))
            .bearer_auth("wrong")
            .json(&json!({"agent_id": 1, "to_number": "+14155552671"})),
        c.post(format!("{base}/calls/dispatch"))
            .json(&json!({"agent_id": 1, "to_number": "+14155552671"})),
        c.get(format!("{base}/calls/logs")).bearer_auth("wrong"),
        c.get(format!("{base}/calls/logs/1"))
            .header("authorization", KEY),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
        assert!(body["error_description"].is_string());
    }
    assert_eq!(sim.stats().calls_placed, 0);
}

#[tokio::test]
async fn invalid_dispatch_bodies_are_refused_and_journaled_as_invalid() {
    let sim = sim_with(|_| {}).await;
    let c = sim.http.clone();
    for (body, want) in [
        (json!({"agent_id": "7", "to_number": "+14155552671"}), 400),
        (json!({"to_number": "+14155552671"}), 400),
        (json!({"agent_id": 7, "to_number": "+1415"}), 422),
        (
            json!({"agent_id": 7, "to_number": "+14155552671", "call_context": [1]}),
            400,
        ),
    ] {
        let resp = c
            .post(format!("{}/calls/dispatch", sim.base_url()))
            .bearer_auth(KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want, "{body}");
    }
    assert!(
        sim.journal()
            .iter()
            .all(|e| e.result == DispatchResult::Invalid && !e.placed)
    );
}

/// The outcomes (status, voicemail flag, duration) of `n` sequential dispatches.
async fn outcome_sequence(seed: u64, n: usize) -> Vec<(String, bool, u64)> {
    let sim = sim_with(|o| {
        o.seed = seed;
        o.call_secs = "0".parse().unwrap();
    })
    .await;
    for _ in 0..n {
        dispatch(&sim, 7, "+14155552671").await;
    }
    let (_, page) = get(&sim, "calls/logs?pagesize=1000").await;
    page["call_log_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["call_status"].as_str().unwrap().to_string(),
                l["is_voicemail"].as_bool().unwrap(),
                l["call_duration_in_seconds"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_outcomes() {
    let a = outcome_sequence(42, 40).await;
    let b = outcome_sequence(42, 40).await;
    let c = outcome_sequence(43, 40).await;
    assert_eq!(a, b);
    assert_ne!(a, c, "another seed gives another sequence");
    let distinct: HashSet<&str> = a.iter().map(|(s, _, _)| s.as_str()).collect();
    assert!(
        distinct.len() >= 2,
        "default weights mix outcomes: {distinct:?}"
    );
}

#[tokio::test]
async fn the_journal_has_exactly_one_line_per_request_under_200_concurrent_dispatches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let sim = sim_with(|o| {
        o.journal = Some(path.clone());
        o.fault_500 = 0.2;
        o.fault_garbage = 0.2;
        o.fault_429 = 0.1;
    })
    .await;
    let c = sim.http.clone();
    let base = sim.base_url();
    let sends = (0..200).map(|i| {
        let c = c.clone();
        let base = base.clone();
        async move {
            c.post(format!("{base}/calls/dispatch"))
                .bearer_auth(KEY)
                .json(&json!({"agent_id": 7, "to_number": format!("+1415555{i:04}"), "call_context": {"i": i}}))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures::future::join_all(sends).await;
    assert_eq!(statuses.len(), 200);

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<JournalEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 200);
    assert_eq!(
        lines,
        sim.journal(),
        "the file and the in-memory copy agree"
    );
    let numbers: HashSet<&str> = lines
        .iter()
        .filter_map(|e| e.to_number.as_deref())
        .collect();
    assert_eq!(numbers.len(), 200, "each request journaled once");

    let placed: Vec<i64> = lines
        .iter()
        .filter(|e| e.placed)
        .map(|e| e.request_id.unwrap())
        .collect();
    let unique: HashSet<i64> = placed.iter().copied().collect();
    assert_eq!(unique.len(), placed.len(), "request ids are unique");
    assert!(
        lines
            .iter()
            .filter(|e| !e.placed)
            .all(|e| e.request_id.is_none())
    );
    assert!(lines.iter().all(|e| e.placed == e.result.placed()));
    for e in &lines {
        assert!(e.at.ends_with('Z') && e.at.len() == 24, "{}", e.at);
        assert!(chrono::DateTime::parse_from_rfc3339(&e.at).is_ok());
    }
    let raw: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let keys: HashSet<&str> = raw
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from([
            "at",
            "to_number",
            "agent_id",
            "call_context",
            "result",
            "placed",
            "request_id",
            "from_number_id"
        ])
    );

    let stats = sim.stats();
    assert_eq!(stats.dispatch_requests, 200);
    assert_eq!(stats.calls_placed as usize, placed.len());
    let (_, page) = get(&sim, "calls/logs?pagesize=1").await;
    assert_eq!(
        page["total_records"].as_u64().unwrap() as usize,
        placed.len()
    );
}

#[tokio::test]
async fn the_stats_count_every_kind_of_request() {
    let sim = sim_with(|_| {}).await;
    dispatch(&sim, 7, "+14155552671").await;
    dispatch(&sim, 7, "bad").await;
    get(&sim, "calls/logs").await;
    get(&sim, "calls/logs").await;
    get(&sim, "calls/logs/1").await;
    let served: SimStats = sim
        .http
        .get(format!("http://{}/_sim/stats", sim.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served, sim.stats());
    assert_eq!(served.dispatch_requests, 2);
    assert_eq!(served.calls_placed, 1);
    assert_eq!(served.log_list_requests, 2);
    assert_eq!(served.log_get_requests, 1);
    assert_eq!(served.results.get("dispatched"), Some(&1));
    assert_eq!(served.results.get("invalid"), Some(&1));
}
