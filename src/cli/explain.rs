//! `dialerd explain NUMBER... [--campaign NAME] [--json]`: why a number may
//! or may not be called now, rule by rule, and when it next may. Operators
//! use it to answer "why was this person not called" and "why was this
//! person called at that hour"; it reads the same rules the dispatcher does.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::ExplainArgs;
use crate::calendar::Window;
use crate::config::Settings;
use crate::engine::policy::{self, Closed, HoursRule};
use crate::error::{CliError, Exit};
use crate::phone::PhoneNumber;
use crate::phone::regions::area_code_of;
use crate::phone::zones::{Candidates, ZoneSource, candidate_zones};
use crate::store::{NumberFacts, Store};

/// The campaign settings a number is explained under.
struct Frame {
    /// `campaign "spring"` or `campaign defaults`.
    label: String,
    campaign: Option<String>,
    window: Window,
    timezone: Tz,
    region: Option<phonenumber::country::Id>,
}

/// One number explained (the `--json` form, one object per number).
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub input: String,
    pub number: String,
    pub zones: Vec<ZoneNow>,
    pub zone_source: ZoneSource,
    pub regions: Vec<String>,
    pub area_code_name: Option<String>,
    pub rules: Vec<RuleNow>,
    pub dnc: Option<String>,
    pub calls_last_24h: i64,
    pub daily_limit: Option<u32>,
    pub daily_limit_from: Option<String>,
    pub live_attempts: i64,
    pub callable_now: bool,
    pub reasons: Vec<String>,
    pub next_callable_at: Option<String>,
    pub contacts: Vec<crate::store::NumberContact>,
}

/// A candidate zone and its local time now.
#[derive(Debug, Serialize)]
pub struct ZoneNow {
    pub zone: String,
    pub local_time: String,
}

/// One calling-hours rule now.
#[derive(Debug, Serialize)]
pub struct RuleNow {
    #[serde(flatten)]
    pub rule: HoursRule,
    pub window: String,
    pub open_now: bool,
    /// The first candidate zone it is closed in.
    pub closed_in: Option<String>,
    /// When this rule alone is next open in every candidate zone.
    pub next_open: Option<String>,
}

/// Runs `explain`.
pub async fn run(store: &Store, settings: &Settings, args: ExplainArgs) -> Result<(), CliError> {
    let frame = frame(store, settings, args.campaign.as_deref()).await?;
    let now = store.clock().now();
    let mut out = Vec::new();
    let mut unusable = 0;
    for raw in &args.numbers {
        match PhoneNumber::parse(raw, frame.region) {
            Ok(number) => out.push(explain(store, settings, &frame, raw, &number, now).await?),
            Err(e) => {
                unusable += 1;
                errln!("{raw}: {e}");
            }
        }
    }
    if args.json {
        let text = serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?;
        outln!("{text}");
    } else {
        for e in &out {
            out!("{}", render(e, &frame));
        }
    }
    if unusable == args.numbers.len() {
        return Err(CliError::msg(
            Exit::DataErr,
            "no number given could be read",
        ));
    }
    Ok(())
}

/// The named campaign's settings, or the configured defaults.
async fn frame(store: &Store, settings: &Settings, name: Option<&str>) -> Result<Frame, CliError> {
    let d = &settings.campaign_defaults;
    let Some(name) = name else {
        return Ok(Frame {
            label: "campaign defaults".into(),
            campaign: None,
            window: d.window,
            timezone: d.timezone,
            region: d.region,
        });
    };
    let found = super::campaigns::find(store, name).await?;
    let campaign = store
        .campaign(found.id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| CliError::msg(Exit::Failure, format!("campaign {name:?} vanished")))?;
    let rules = campaign
        .rules()
        .map_err(|m| CliError::msg(Exit::Failure, m))?;
    Ok(Frame {
        label: format!("campaign {name:?}"),
        campaign: Some(campaign.name.clone()),
        window: rules.window,
        timezone: rules.timezone,
        region: rules.region.or(d.region),
    })
}

async fn explain(
    store: &Store,
    settings: &Settings,
    frame: &Frame,
    raw: &str,
    number: &PhoneNumber,
    now: DateTime<Utc>,
) -> Result<Explanation, CliError> {
    let e164 = number.as_str();
    let since = now - chrono::Duration::hours(24);
    let facts: NumberFacts = store
        .number_facts(e164, since)
        .await
        .map_err(anyhow::Error::from)?;
    // The contact's own timezone column, when it is in the campaign asked about.
    let column = frame.campaign.as_ref().and_then(|name| {
        facts
            .contacts
            .iter()
            .find(|c| &c.campaign == name)
            .and_then(|c| c.timezone.clone())
    });
    let compliance = &settings.compliance;
    let mut reasons = Vec::new();
    let candidates = match candidate_zones(column.as_deref(), e164, frame.timezone) {
        Ok(c) => c,
        Err(why) => {
            reasons.push(why);
            candidate_zones(None, e164, frame.timezone).map_err(anyhow::Error::msg)?
        }
    };
    let zones = candidates.zones();
    let hours = policy::hours_rules(frame.window, compliance, e164);
    let rules = hours.iter().map(|r| rule_now(r, zones, now)).collect();
    let mut next = closed_now(&hours, &candidates, now, &mut reasons);
    let region_limit = policy::region_limit(compliance, e164);
    let global_cap = settings.dispatch().max_calls_per_number_per_day;
    let limit = policy::daily_limit(region_limit.as_ref().map(|(_, n)| *n), global_cap);
    if number_refused(&facts, limit, &mut reasons) {
        next = None;
    }
    let area = area_code_of(e164);
    Ok(Explanation {
        input: raw.to_string(),
        number: e164.to_string(),
        zones: zones.iter().map(|z| zone_now(*z, now)).collect(),
        zone_source: candidates.source,
        regions: area
            .map(|a| a.regions.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default(),
        area_code_name: area.map(|a| a.name.clone()).filter(|n| !n.is_empty()),
        rules,
        callable_now: reasons.is_empty(),
        next_callable_at: next.filter(|_| !reasons.is_empty()).map(iso),
        reasons,
        dnc: facts.dnc.clone(),
        calls_last_24h: facts.calls_since,
        daily_limit: limit,
        daily_limit_from: region_limit.map(|(r, _)| r.to_string()),
        live_attempts: facts.live_attempts,
        contacts: facts.contacts,
    })
}

/// Adds why the calling hours are closed now, if they are, to `reasons`,
/// and returns when they open next.
fn closed_now(
    hours: &[(HoursRule, Window)],
    candidates: &Candidates,
    now: DateTime<Utc>,
    reasons: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let Err(Closed {
        rule,
        zone,
        next_open,
        ..
    }) = policy::check_hours(hours, candidates.zones(), now)
    else {
        return None;
    };
    reasons.push(format!("{rule} is closed in {}", zone.name()));
    if next_open.is_none() {
        reasons.push(policy::never_open(hours, candidates));
    }
    next_open
}

/// Adds what the number's own record refuses (the daily limit, the DNC
/// list, a live attempt) to `reasons`; true when it is on the DNC list,
/// which no time cures.
fn number_refused(facts: &NumberFacts, limit: Option<u32>, reasons: &mut Vec<String>) -> bool {
    if !policy::under_limit(facts.calls_since, limit) {
        reasons.push(format!(
            "{} calls placed in the last 24 h reach the limit of {}",
            facts.calls_since,
            limit.unwrap_or_default()
        ));
    }
    if let Some(reason) = &facts.dnc {
        reasons.push(format!("on the do-not-call list ({})", or_none(reason)));
    }
    if facts.live_attempts > 0 {
        reasons.push("an earlier attempt to this number is still live".into());
    }
    facts.dnc.is_some()
}

fn rule_now(rule: &(HoursRule, Window), zones: &[Tz], now: DateTime<Utc>) -> RuleNow {
    let one = std::slice::from_ref(rule);
    let closed = policy::first_closed(one, zones, now).map(|(_, z)| z);
    RuleNow {
        rule: rule.0.clone(),
        window: rule.1.to_string(),
        open_now: closed.is_none(),
        closed_in: closed.map(|z| z.name().to_string()),
        next_open: closed
            .and_then(|_| policy::next_open_all(one, zones, now))
            .map(iso),
    }
}

fn zone_now(zone: Tz, now: DateTime<Utc>) -> ZoneNow {
    ZoneNow {
        zone: zone.name().to_string(),
        local_time: now
            .with_timezone(&zone)
            .format("%Y-%m-%d %H:%M %Z (%:z)")
            .to_string(),
    }
}

fn iso(t: DateTime<Utc>) -> String {
    crate::clock::to_db_text(t)
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "no reason given" } else { s }
}

/// The text form of one explanation.
fn render(e: &Explanation, frame: &Frame) -> String {
    let mut s = format!("{} ({})\n", e.number, e.input);
    let source = match e.zone_source {
        ZoneSource::Column => "the contact's timezone column",
        ZoneSource::Number => "the zone map's entry for its prefix",
        ZoneSource::Country => "every zone of its country (the number names no place)",
        ZoneSource::Campaign => "the campaign's zone (the zone map does not know its country)",
    };
    s.push_str(&format!("  zones, from {source}:\n"));
    for z in &e.zones {
        s.push_str(&format!("    {:<32} now {}\n", z.zone, z.local_time));
    }
    let region = match (e.regions.is_empty(), &e.area_code_name) {
        (false, Some(name)) => format!("{} ({name})", e.regions.join(", ")),
        (false, None) => e.regions.join(", "),
        (true, Some(name)) => format!("none with rules ({name})"),
        (true, None) => "none".into(),
    };
    s.push_str(&format!(
        "  region: {region}\n  calling hours ({}):\n",
        frame.label
    ));
    for r in &e.rules {
        let state = match (&r.closed_in, &r.next_open) {
            (None, _) => "open now".to_string(),
            (Some(z), Some(t)) => format!("closed in {z}; next open in every zone {t}"),
            (Some(z), None) => format!("closed in {z}; never open in every zone at once"),
        };
        s.push_str(&format!(
            "    {:<28} {:<12} {state}\n",
            r.rule.to_string(),
            r.window
        ));
    }
    let dnc = match &e.dnc {
        Some(reason) => format!("LISTED ({})", or_none(reason)),
        None => "not listed".into(),
    };
    let limit = match (e.daily_limit, &e.daily_limit_from) {
        (Some(n), Some(from)) => format!("{n} per 24 h ({from})"),
        (Some(n), None) => format!("{n} per 24 h"),
        (None, _) => "none".into(),
    };
    s.push_str(&format!(
        "  do-not-call list: {dnc}\n  calls placed in the last 24 h: {} (limit: {limit})\n  live attempts: {}\n",
        e.calls_last_24h, e.live_attempts
    ));
    for c in &e.contacts {
        s.push_str(&format!(
            "  contact in campaign {:?}: {}, {} attempts{}\n",
            c.campaign,
            c.state,
            c.attempts,
            c.next_attempt_at
                .as_deref()
                .map(|t| format!(", next attempt at {t}"))
                .unwrap_or_default()
        ));
    }
    if e.callable_now {
        s.push_str("  may be called now: yes\n\n");
    } else {
        s.push_str(&format!(
            "  may be called now: no: {}\n",
            e.reasons.join("; ")
        ));
        match &e.next_callable_at {
            Some(t) => s.push_str(&format!("  next callable by calling hours: {t}\n\n")),
            None => s.push('\n'),
        }
    }
    s
}
