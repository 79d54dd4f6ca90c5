//! A simulated call as the API's call-log JSON, as it stands at a given
//! instant, in the shape of the fixtures (`false` for empty values).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::{Value, json};

use super::state::{Phase, SimCall};
use super::transcript::{self, Turn};
use crate::domain::Outcome;

/// The call's log at `now`.
pub(crate) fn render(c: &SimCall, now: DateTime<Utc>) -> Value {
    let done = c.phase(now) == Phase::Final;
    let outcome = done.then_some(c.outcome);
    let answered = matches!(outcome, Some(Outcome::Completed | Outcome::Voicemail));
    let voicemail = outcome == Some(Outcome::Voicemail);
    let talk = if answered { c.talk_secs } else { 0 };
    let turns: Vec<Turn> = match outcome {
        Some(Outcome::Completed) if c.opted_out => transcript::opt_out(&c.call_context, c.variant),
        Some(Outcome::Completed) => transcript::conversation(&c.call_context, c.variant),
        Some(Outcome::Voicemail) => transcript::voicemail(&c.call_context),
        _ => Vec::new(),
    };
    let (per_min, per_call) = c.rates;
    let cost = if done {
        round(f64::from(talk) / 60.0 * per_min + per_call, 4)
    } else {
        0.0
    };
    let (hangup_source, hangup_reason) = match outcome {
        None => (Value::Null, Value::Null),
        Some(Outcome::Completed) => (
            json!(if c.variant.is_multiple_of(2) {
                "agent"
            } else {
                "user"
            }),
            json!("conversation_complete"),
        ),
        Some(Outcome::Voicemail) => (json!("agent"), json!("voicemail_detected")),
        Some(Outcome::NoAnswer) => (Value::Null, json!("no_answer")),
        Some(Outcome::Busy) => (json!("carrier"), json!("busy")),
        Some(Outcome::Failed) => (json!("carrier"), json!("call_failed")),
        Some(Outcome::Cancelled | Outcome::Unknown) => (json!("system"), json!("cancelled")),
    };
    let from_number = match c.from_number_id {
        Some(id) => format!("+1650555{:04}", id.rem_euclid(10_000)),
        None => "+16505550100".to_string(),
    };
    json!({
        "id": c.id,
        "call_request_id": {"id": c.request_id, "type_of_request": "api"},
        "bot_name": format!("Sim Agent {}", c.agent_id),
        "agent_id": c.agent_id,
        "time_of_call": c.time_style.write(c.dispatched_at),
        "from_number": from_number,
        "to_number": c.to_number,
        "call_direction": "outbound",
        "call_status": c.status_text(now),
        "channel_type": "Voice",
        "call_duration": format!("{}:{:02}", talk / 60, talk % 60),
        "call_duration_in_seconds": talk,
        "call_duration_in_minutes": round(f64::from(talk) / 60.0, 2),
        "call_conversation": if turns.is_empty() { json!("") } else { json!(transcript::to_html(&turns)) },
        "interactions": interactions(c, &turns),
        "recording_url": if answered { json!(format!("https://recordings.sim.invalid/{}.mp3", c.id)) } else { json!(false) },
        "call_cost": cost,
        "aggregated_estimated_cost": round(cost * 0.8, 4),
        "sentiment_score": match outcome {
            Some(Outcome::Completed) => json!(if c.variant.is_multiple_of(3) { "Neutral" } else { "Positive" }),
            _ => json!(false),
        },
        "extracted_variables": match outcome {
            Some(Outcome::Completed) if c.opted_out => json!({"call_outcome": "opted_out", "opt_out": true}),
            Some(Outcome::Completed) => json!({"call_outcome": "reached", "confirmed": "yes"}),
            Some(Outcome::Voicemail) => json!({"call_outcome": "voicemail"}),
            _ => json!({}),
        },
        "is_voicemail": voicemail,
        "amd_detected": voicemail,
        "hangup_source": hangup_source,
        "hangup_reason": hangup_reason,
        "model_name": "sim-llm",
        "call_context": c.call_context,
    })
}

/// The `interactions` list: one entry per turn, timed from the dispatch.
fn interactions(c: &SimCall, turns: &[Turn]) -> Value {
    let step = i64::from(c.talk_secs) / (turns.len() as i64 + 1).max(1);
    let list: Vec<Value> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let seq = i as i64 + 1;
            let at = c.dispatched_at + ChronoDuration::seconds(step * seq);
            json!({
                "id": c.id * 10 + seq,
                "interaction_sequence": seq,
                "user_query": t.user,
                "bot_response": t.bot,
                "customer_phone_number": false,
                "time_of_call": c.time_style.write(at),
                "total_tokens": 1700 + 40 * seq,
            })
        })
        .collect();
    Value::Array(list)
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}
