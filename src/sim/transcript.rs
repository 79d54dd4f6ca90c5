//! Plausible conversations for simulated calls, built from the dispatch's
//! `call_context`, in the API's shapes: `call_conversation` as HTML turns
//! separated by `<br/>`, and the `interactions` list.

use serde_json::{Map, Value};

/// One exchange: what the person said (empty for the opening) and the agent's answer.
pub(crate) struct Turn {
    pub user: String,
    pub bot: String,
}

const AGREEMENTS: [&str; 4] = [
    "yes, go ahead",
    "sure",
    "okay, I have a minute",
    "yes, this is fine",
];
const CONFIRMATIONS: [&str; 3] = ["yes, that's right", "correct", "yes please"];

/// The turns of an answered call.
pub(crate) fn conversation(context: &Map<String, Value>, variant: u32) -> Vec<Turn> {
    let name = first_text(
        context,
        &["name", "customer_name", "first_name", "user_name"],
    )
    .unwrap_or_else(|| "there".to_string());
    let details: Vec<String> = context
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "name" | "customer_name" | "first_name" | "user_name"
            )
        })
        .filter_map(|(k, v)| Some(format!("{} is {}", k.replace('_', " "), value_text(v)?)))
        .take(4)
        .collect();
    let pick = |list: &[&str], salt: u32| {
        list[(variant.wrapping_add(salt) as usize) % list.len()].to_string()
    };
    let about = if details.is_empty() {
        "your account".to_string()
    } else {
        details.join(", ")
    };
    vec![
        Turn {
            user: String::new(),
            bot: format!(
                "Hi {name}, this is Maya, an assistant calling about your account. Is now a good time?"
            ),
        },
        Turn {
            user: pick(&AGREEMENTS, 0),
            bot: format!("Thanks. I have here that {about}. Is that right?"),
        },
        Turn {
            user: pick(&CONFIRMATIONS, 1),
            bot: format!("Done. Thank you, {name}, and have a good day."),
        },
    ]
}

const OPT_OUTS: [&str; 3] = [
    "no. Please stop calling me.",
    "take me off your list, and do not call this number again",
    "I'm not interested. Don't call me again.",
];

/// The turns of an answered call whose callee asks not to be called again.
pub(crate) fn opt_out(context: &Map<String, Value>, variant: u32) -> Vec<Turn> {
    let mut turns = conversation(context, variant);
    turns.truncate(1);
    turns.push(Turn {
        user: OPT_OUTS[variant as usize % OPT_OUTS.len()].to_string(),
        bot: "Understood. We will not call you again. Goodbye.".to_string(),
    });
    turns
}

/// The message an agent leaves on an answering machine.
pub(crate) fn voicemail(context: &Map<String, Value>) -> Vec<Turn> {
    let name = first_text(context, &["name", "customer_name", "first_name"])
        .unwrap_or_else(|| "there".to_string());
    vec![Turn {
        user: String::new(),
        bot: format!(
            "Hi {name}, this is Maya. Sorry I missed you; please call us back when you can."
        ),
    }]
}

/// The turns as `call_conversation` writes them: ` <br/> LLM: ... <br/> user: ... <br/>`,
/// with text HTML-escaped.
pub(crate) fn to_html(turns: &[Turn]) -> String {
    let mut out = String::from(" <br/>");
    for t in turns {
        if !t.user.is_empty() {
            out.push_str(" user: ");
            out.push_str(&escape(&t.user));
            out.push_str(" <br/>");
        }
        out.push_str(" LLM: ");
        out.push_str(&escape(&t.bot));
        out.push_str(" <br/>");
    }
    out
}

fn first_text(context: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| value_text(context.get(*k)?))
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_conversation_uses_the_context_and_reads_back_through_the_client_cleaner() {
        let ctx = json!({"name": "Ann", "plan": "gold & silver"});
        let turns = conversation(ctx.as_object().unwrap(), 7);
        let html = to_html(&turns);
        assert!(html.starts_with(" <br/> LLM: Hi Ann"), "{html}");
        assert!(html.contains("gold &amp; silver"));
        let clean = crate::provider::clean_transcript(&html).unwrap();
        assert_eq!(clean.lines().count(), 5);
        assert!(clean.contains("plan is gold & silver"));
    }

    #[test]
    fn every_opt_out_conversation_is_read_as_an_opt_out_by_the_shipped_phrases() {
        let ctx = json!({"name": "Ann"});
        let cfg = crate::config::OptOut::from_raw(&crate::config::RawOptOut::default()).unwrap();
        for variant in 0..OPT_OUTS.len() as u32 {
            let html = to_html(&opt_out(ctx.as_object().unwrap(), variant));
            let log =
                crate::provider::CallLog::from_value(&json!({"id": 1, "call_conversation": html}))
                    .unwrap();
            assert!(
                crate::engine::optout::opt_out_reason(&cfg, &log).is_some(),
                "{html}"
            );
        }
        for variant in 0..12 {
            let html = to_html(&conversation(ctx.as_object().unwrap(), variant));
            let log =
                crate::provider::CallLog::from_value(&json!({"id": 1, "call_conversation": html}))
                    .unwrap();
            assert_eq!(
                crate::engine::optout::opt_out_reason(&cfg, &log),
                None,
                "{html}"
            );
        }
    }
}
