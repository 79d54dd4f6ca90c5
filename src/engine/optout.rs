//! Whether a call's log shows that the callee asked not to be called again
//! (`[compliance.opt_out]`): a truthy extracted variable, or one of the
//! configured phrases in what the callee said.
//!
//! Phrases are looked for in the callee's words only when the log says who
//! spoke: the agent's own lines ("tell me if you want us to stop calling")
//! must not opt anybody out. The callee's words are the `user_query` of each
//! entry of `interactions`, and the transcript lines spoken by the callee
//! (`user:`, `customer:`, `caller:`, `callee:`, `human:`, `client:`; a line
//! without a speaker continues the one before). A transcript in which no
//! line names a speaker is read whole, unless `interactions` already gave
//! the callee's words. Matching is case-insensitive on text with its
//! whitespace collapsed and typographic apostrophes made plain, and a phrase
//! must stand as whole words ("unsubscribed" does not match "unsubscribe").

use serde_json::Value;

use crate::config::OptOut;
use crate::provider::CallLog;

/// Why a log counts as an opt-out: the text stored as the DNC entry's reason.
pub fn opt_out_reason(cfg: &OptOut, log: &CallLog) -> Option<String> {
    if let Some(var) = &cfg.variable
        && let Some(v) = log.extracted_variables.as_ref().and_then(|e| e.get(var))
        && truthy(v)
    {
        return Some(format!("opt-out: extracted variable {var} = {v}"));
    }
    if cfg.phrases.is_empty() {
        return None;
    }
    let said = callee_text(log);
    cfg.phrases
        .iter()
        .find(|p| contains_words(&said, p))
        .map(|p| format!("opt-out: the callee said \"{p}\""))
}

/// Whether an extracted value means yes: `true`, a non-zero number, or text
/// such as `true`, `yes`, `y`, `1`, `on` (any case).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "y" | "1" | "on" | "opt_out" | "opt-out" | "opted_out" | "opted out"
        ),
        _ => false,
    }
}

/// Speaker labels of the callee, and of the agent, as transcripts write them.
const CALLEE: &[&str] = &["user", "customer", "caller", "callee", "human", "client"];
const AGENT: &[&str] = &["llm", "bot", "agent", "assistant", "ai", "system"];

/// What the callee said, normalised, turns separated by a newline (so no
/// phrase spans two turns).
fn callee_text(log: &CallLog) -> String {
    let mut turns: Vec<String> = Vec::new();
    if let Some(Value::Array(list)) = log.raw.get("interactions") {
        turns.extend(
            list.iter()
                .filter_map(|i| i.get("user_query")?.as_str())
                .map(OptOut::normalise),
        );
    }
    let from_interactions = !turns.is_empty();
    match log.transcript.as_deref().map(transcript_callee_lines) {
        Some(Some(lines)) => turns.extend(lines),
        // Nobody named in the transcript: read it whole only when nothing
        // else says what the callee said.
        Some(None) if !from_interactions => {
            turns.push(OptOut::normalise(
                log.transcript.as_deref().unwrap_or_default(),
            ));
        }
        _ => {}
    }
    turns.join("\n")
}

/// The callee's turns of a transcript; `None` when no line names a
/// speaker. A line without a label continues the turn before it.
fn transcript_callee_lines(transcript: &str) -> Option<Vec<String>> {
    let mut turns: Vec<(bool, String)> = Vec::new();
    let mut labelled = false;
    for line in transcript.lines() {
        let line = OptOut::normalise(line);
        match (speaker(&line), turns.last_mut()) {
            (Some((is_callee, rest)), _) => {
                labelled = true;
                turns.push((is_callee, rest.to_string()));
            }
            (None, Some((_, turn))) => {
                turn.push(' ');
                turn.push_str(&line);
            }
            (None, None) => turns.push((false, line)),
        }
    }
    labelled.then(|| {
        turns
            .into_iter()
            .filter_map(|(callee, text)| callee.then_some(text))
            .collect()
    })
}

/// `Some((is the callee, the words))` when a normalised line starts with a
/// known speaker label and a colon.
fn speaker(line: &str) -> Option<(bool, &str)> {
    let (label, rest) = line.split_once(':')?;
    let label = label.trim();
    if CALLEE.contains(&label) {
        Some((true, rest.trim()))
    } else if AGENT.contains(&label) {
        Some((false, rest.trim()))
    } else {
        None
    }
}

/// Whether `phrase` occurs in `text` with no letter or digit right before or after it.
fn contains_words(text: &str, phrase: &str) -> bool {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    text.match_indices(phrase).any(|(at, _)| {
        !word(text[..at].chars().next_back()) && !word(text[at + phrase.len()..].chars().next())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawOptOut;
    use serde_json::json;

    fn defaults() -> OptOut {
        OptOut::from_raw(&RawOptOut::default()).unwrap()
    }

    fn log(v: Value) -> CallLog {
        CallLog::from_value(&v).unwrap()
    }

    #[test]
    fn a_truthy_extracted_variable_opts_out_in_any_spelling() {
        for v in [
            json!(true),
            json!("TRUE"),
            json!("Yes"),
            json!(1),
            json!("1"),
        ] {
            let l = log(json!({"id": 1, "extracted_variables": {"opt_out": v}}));
            assert!(opt_out_reason(&defaults(), &l).is_some(), "{v}");
        }
        for v in [json!(false), json!("no"), json!(0), json!(null), json!("")] {
            let l = log(json!({"id": 1, "extracted_variables": {"opt_out": v}}));
            assert_eq!(opt_out_reason(&defaults(), &l), None, "{v}");
        }
    }

    #[test]
    fn a_phrase_of_the_callee_opts_out_whatever_its_case_and_spacing() {
        let l = log(json!({"id": 1, "call_conversation":
            " <br/> LLM: Hi Ann <br/> user: Please   STOP\n calling me <br/> LLM: Sorry <br/>"}));
        let why = opt_out_reason(&defaults(), &l).unwrap();
        assert!(why.contains("stop calling"), "{why}");
        let curly =
            log(json!({"id": 1, "call_conversation": " user: Don\u{2019}t call again <br/>"}));
        assert!(opt_out_reason(&defaults(), &curly).is_some());
    }

    #[test]
    fn the_agents_own_words_never_opt_anybody_out() {
        let l = log(json!({"id": 1, "call_conversation":
            " <br/> LLM: Say stop calling and we will do not call you again <br/> user: no, it is fine <br/>",
            "interactions": [{"user_query": "", "bot_response": "say unsubscribe to leave"}]}));
        assert_eq!(opt_out_reason(&defaults(), &l), None);
    }

    #[test]
    fn phrases_match_whole_words_and_an_unlabelled_transcript_is_read_whole() {
        let partial = log(json!({"id": 1, "call_conversation": "I unsubscribed last year"}));
        assert_eq!(opt_out_reason(&defaults(), &partial), None);
        let whole = log(json!({"id": 1, "call_conversation": "please unsubscribe me"}));
        assert!(opt_out_reason(&defaults(), &whole).is_some());
        let interaction =
            log(json!({"id": 1, "interactions": [{"user_query": "Take me off your list"}]}));
        assert!(opt_out_reason(&defaults(), &interaction).is_some());
        // The callee's words are known from the interactions: the agent's
        // in an unlabelled transcript are not read.
        let agent = log(
            json!({"id": 1, "call_conversation": "say stop calling to leave",
                                "interactions": [{"user_query": "fine, thanks"}]}),
        );
        assert_eq!(opt_out_reason(&defaults(), &agent), None);
    }

    #[test]
    fn an_empty_phrase_list_and_an_empty_variable_disable_each_check() {
        let off = OptOut::from_raw(&RawOptOut {
            variable: String::new(),
            phrases: vec![],
        })
        .unwrap();
        let l = log(json!({"id": 1, "extracted_variables": {"opt_out": true},
                           "call_conversation": "user: stop calling"}));
        assert_eq!(opt_out_reason(&off, &l), None);
    }

    #[test]
    fn a_phrase_without_words_is_refused_naming_its_key() {
        let err = OptOut::from_raw(&RawOptOut {
            variable: "opt_out".into(),
            phrases: vec!["stop calling".into(), "  ".into()],
        })
        .unwrap_err();
        assert!(
            err.to_string().contains("compliance.opt_out.phrases[1]"),
            "{err}"
        );
    }
}
