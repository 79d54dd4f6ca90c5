//! The plan as a person reads it: a headline, a table of the contacts not
//! callable now by reason, a table of those not due yet, the contact states
//! and the estimate.

use std::fmt::Write as _;

use super::{Group, Plan};
use crate::cli::status::{Table, clean};

/// Details shown per reason before "and N more".
const DETAILS_SHOWN: usize = 3;

/// The whole text form, ending in a newline.
pub(super) fn render(p: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "campaign {:?} ({}{}) planned at {}",
        clean(&p.campaign),
        p.status,
        p.status_reason
            .as_deref()
            .map(|r| format!(": {}", clean(r)))
            .unwrap_or_default(),
        p.now
    );
    let sweep = p
        .next_sweep_at
        .as_deref()
        .unwrap_or("none: the schedule has no next fire, or the campaign has nothing left");
    match &p.blocked {
        Some(why) => {
            let _ = writeln!(out, "callable now: 0 — NOTHING IS DIALED: {}", clean(why));
        }
        None => {
            let _ = writeln!(out, "callable now: {} (next sweep {sweep})", p.callable_now);
            let room = (p.max_live_calls - p.live_calls).max(0) as u64;
            if p.max_live_calls > 0 && p.callable_now > room {
                let _ = writeln!(
                    out,
                    "  the campaign's live-call cap ({}, {} live) lets {room} be dialed now, the rest as calls end",
                    p.max_live_calls, p.live_calls
                );
            }
        }
    }
    let due: Vec<&Group> = p.held.iter().filter(|g| g.due_now).collect();
    if !due.is_empty() {
        out.push('\n');
        out.push_str(&table("NOT CALLABLE NOW", "MAY BE CALLED FROM", &due));
    }
    let waiting: Vec<&Group> = p.held.iter().filter(|g| !g.due_now).collect();
    if !waiting.is_empty() {
        out.push('\n');
        out.push_str(&table("NOT DUE YET", "DUE FROM", &waiting));
    }
    out.push('\n');
    let _ = writeln!(out, "{}", states_line(p));
    if p.unvalidated > 0 {
        let _ = writeln!(
            out,
            "{} rows inserted by another program are validated by the next sweep, then decided",
            p.unvalidated
        );
    }
    let _ = writeln!(out, "{}", estimate_line(p));
    out
}

fn table(title: &str, when: &str, groups: &[&Group]) -> String {
    let mut t = Table::new(&[title, "CONTACTS", when, "WHY"]);
    for g in groups {
        t.push(vec![
            g.reason.clone(),
            g.count.to_string(),
            match (&g.earliest_at, g.reason.as_str()) {
                (Some(at), _) => at.clone(),
                (None, "paused") => "once unblocked".into(),
                (None, _) => "never".into(),
            },
            details(g),
        ]);
    }
    t.render()
}

fn details(g: &Group) -> String {
    let mut items: Vec<(&String, &u64)> = g.detail.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut parts: Vec<String> = items
        .iter()
        .take(DETAILS_SHOWN)
        .map(|(d, n)| format!("{d} ({n})"))
        .collect();
    if items.len() > DETAILS_SHOWN {
        parts.push(format!("and {} more", items.len() - DETAILS_SHOWN));
    }
    parts.join("; ")
}

fn states_line(p: &Plan) -> String {
    let total: i64 = p.states.values().sum();
    let states = p
        .states
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let cap = match p.max_live_calls {
        0 => "no cap".to_string(),
        n => format!("cap {n}"),
    };
    format!(
        "contacts: {total} ({states}); live calls {} ({cap})",
        p.live_calls
    )
}

fn estimate_line(p: &Plan) -> String {
    let e = &p.estimate;
    let mut line = match (&e.finish_at, &p.blocked) {
        (_, Some(_)) => format!(
            "estimate: {} calls left; none is placed while blocked",
            e.calls_left
        ),
        (None, None) if e.calls_left == 0 => "estimate: nothing left to call".to_string(),
        (None, None) => format!("estimate: {} calls left; none can be placed", e.calls_left),
        (Some(at), None) => format!(
            "estimate: {} calls left at {}/s; the last could be placed about {at}",
            e.calls_left, e.rate_per_second
        ),
    };
    if e.never_open > 0 {
        let _ = write!(
            line,
            "; {} of them never have their calling hours open",
            e.never_open
        );
    }
    let _ = write!(line, "\n  (assuming {})", e.assumes);
    line
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cli::plan::Estimate;

    fn group(
        reason: &str,
        due_now: bool,
        count: u64,
        at: Option<&str>,
        detail: &[(&str, u64)],
    ) -> Group {
        Group {
            reason: reason.into(),
            due_now,
            count,
            earliest_at: at.map(String::from),
            detail: detail.iter().map(|(d, n)| (d.to_string(), *n)).collect(),
        }
    }

    #[test]
    fn the_text_form_reads_at_a_glance() {
        let p = Plan {
            campaign: "spring".into(),
            status: "active".into(),
            status_reason: None,
            now: "2026-07-01T12:30:00Z".into(),
            blocked: None,
            callable_now: 120,
            held: vec![
                group(
                    "window",
                    true,
                    30,
                    Some("2026-07-01T15:00:00Z"),
                    &[(
                        "the campaign window 09:00-20:00 closed in America/Los_Angeles",
                        30,
                    )],
                ),
                group("dnc", true, 2, None, &[("on the do-not-call list", 2)]),
                group("retry_delay", false, 10, Some("2026-07-01T13:30:00Z"), &[]),
            ],
            unvalidated: 0,
            states: BTreeMap::from([("pending".to_string(), 152), ("done".to_string(), 40)]),
            live_calls: 3,
            max_live_calls: 0,
            next_sweep_at: Some("2026-07-01T12:35:00Z".into()),
            estimate: Estimate {
                calls_left: 160,
                rate_per_second: 1.0,
                finish_at: Some("2026-07-01T15:02:40Z".into()),
                never_open: 0,
                assumes: "one call per contact".into(),
            },
        };
        let text = render(&p);
        assert!(
            text.contains("callable now: 120 (next sweep 2026-07-01T12:35:00Z)"),
            "{text}"
        );
        let window = text.lines().find(|l| l.starts_with("window")).unwrap();
        assert!(
            window.contains(" 30 ")
                && window.contains("2026-07-01T15:00:00Z")
                && window.contains("America/Los_Angeles (30)"),
            "{window}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("dnc") && l.contains("never")),
            "{text}"
        );
        assert!(text.contains("NOT DUE YET"), "{text}");
        assert!(
            text.contains("contacts: 192 (done 40, pending 152); live calls 3 (no cap)"),
            "{text}"
        );
        assert!(
            text.contains(
                "160 calls left at 1/s; the last could be placed about 2026-07-01T15:02:40Z"
            ),
            "{text}"
        );
    }
}
