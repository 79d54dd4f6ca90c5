//! `dialerd plan CAMPAIGN [--json]`: without dialing and without writing,
//! what a sweep of the campaign would do at the clock's now: how many
//! contacts it would dial, the others counted by reason and when they may
//! be called, when the next sweep fires, and when the campaign could finish
//! at `dispatch.rate_per_second` within its calling hours.
//!
//! Every due contact is read by the claim's own query and decided by the
//! claim's own [`policy::decide`], with the same per-number facts and the
//! same settings the engine passes, so a sweep at the same instant on the
//! same database dials exactly the contacts counted callable and records
//! the hold reasons shown.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PlanArgs;
use crate::clock::{from_db_text, to_db_text};
use crate::config::Settings;
use crate::domain::{CampaignStatus, HoldReason};
use crate::engine::EngineConfig;
use crate::engine::policy::{self, Closed};
use crate::error::{CliError, Exit};
use crate::store::{
    Campaign, CampaignRules, ClaimDecision, DueContact, PlanFacts, Store, WaitingContact,
};

mod estimate;
mod render;

use estimate::Callee;
pub use estimate::Estimate;
use render::render;

/// The plan of one campaign at one instant (the `--json` form).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub campaign: String,
    pub status: String,
    pub status_reason: Option<String>,
    /// The instant planned for.
    pub now: String,
    /// Why nobody is dialed now although some contacts would be (the
    /// campaign is not active, dispatching is paused, no agent id).
    pub blocked: Option<String>,
    /// Contacts the next sweep dials (0 while blocked).
    pub callable_now: u64,
    /// Contacts not callable now, by reason.
    pub held: Vec<Group>,
    /// Rows another program inserted that the next sweep validates first.
    pub unvalidated: i64,
    /// Contacts per state.
    pub states: BTreeMap<String, i64>,
    /// Attempts of the campaign still live.
    pub live_calls: i64,
    /// The campaign's live-call cap (`max_live_calls`, else
    /// `dispatch.max_live_calls_per_campaign`); 0: none.
    pub max_live_calls: i64,
    /// When the next sweep starts (now, when one is due).
    pub next_sweep_at: Option<String>,
    pub estimate: Estimate,
}

/// Contacts held back for one reason.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// A stable name: a hold reason (`window`, `quiet_hours`, `region`,
    /// `cap`, `live_attempt`, `dnc`, `paused`, ...), `no_attempts_left`,
    /// `invalid`, or for contacts not due yet `retry_delay` / `scheduled`.
    pub reason: String,
    /// Decided now (true: due, the sweep records this reason), or waiting
    /// for a due time still to come (false).
    pub due_now: bool,
    pub count: u64,
    /// The earliest time one of them may be called; `None`: never (DNC,
    /// invalid, no attempts left) or not within three days.
    pub earliest_at: Option<String>,
    /// Counts by detail (the rule and zone that closed, the reason text).
    pub detail: BTreeMap<String, u64>,
}

/// Runs `plan`.
pub async fn run(store: &Store, settings: &Settings, args: PlanArgs) -> Result<(), CliError> {
    let cfg = EngineConfig::from_settings(settings);
    let plan = build(store, &cfg, &args.campaign).await?;
    if args.json {
        let text = serde_json::to_string_pretty(&plan).map_err(anyhow::Error::from)?;
        outln!("{text}");
    } else {
        out!("{}", render(&plan));
    }
    Ok(())
}

/// The plan of campaign `name` at the store clock's now, under the engine settings `cfg`.
pub async fn build(store: &Store, cfg: &EngineConfig, name: &str) -> Result<Plan, CliError> {
    let (campaign, rules) = load(store, cfg, name).await?;
    let now = store.clock().now();
    let facts = store
        .plan_facts(campaign.id, now)
        .await
        .map_err(anyhow::Error::from)?;
    let agent = campaign.agent_id.or(cfg.defaults.agent_id);
    let blocked = blocker(&campaign, &facts, agent);
    let open = |s: &str| facts.states.iter().any(|(st, n)| st == s && *n > 0);
    let idle =
        campaign.status() == CampaignStatus::Completed && !open("pending") && !open("retry_wait");
    // A completed campaign without work is not swept until contacts arrive.
    let first = (!idle)
        .then(|| next_sweep(&campaign, &rules, now))
        .flatten();
    let frame = Frame {
        rules: &rules,
        cfg,
        agent,
        now,
        first,
        blocked: blocked.as_deref(),
    };
    let mut tally = Tally::default();
    for c in &facts.due {
        tally.due(c, &frame);
    }
    for w in &facts.waiting {
        tally.waiting(w, now);
    }
    let estimate = estimate::estimate(&rules, cfg, first, blocked.is_some(), &tally.callees);
    Ok(Plan {
        campaign: campaign.name.clone(),
        status: campaign.status.clone(),
        status_reason: campaign.status_reason.clone(),
        now: to_db_text(now),
        callable_now: if blocked.is_some() { 0 } else { tally.callable },
        blocked,
        held: tally.groups.into_vec(),
        unvalidated: facts.unvalidated,
        states: facts.states.iter().cloned().collect(),
        live_calls: facts.live_calls,
        max_live_calls: campaign
            .max_live_calls
            .unwrap_or(i64::from(cfg.max_live_calls_per_campaign)),
        next_sweep_at: first.map(to_db_text),
        estimate,
    })
}

/// The campaign named `name` and its rules as a sweep reads them.
async fn load(
    store: &Store,
    cfg: &EngineConfig,
    name: &str,
) -> Result<(Campaign, CampaignRules), CliError> {
    let found = super::campaigns::find(store, name).await?;
    let campaign = store
        .campaign(found.id)
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| CliError::msg(Exit::Failure, format!("campaign {name:?} vanished")))?;
    let mut rules = campaign
        .rules()
        .map_err(|m| CliError::msg(Exit::Failure, format!("{m}; the next sweep pauses it")))?;
    // As the sweep does: the cap is the configuration's, not a column.
    rules.max_calls_per_number_per_day = cfg.max_calls_per_number_per_day;
    Ok((campaign, rules))
}

/// What every decision of one plan shares.
struct Frame<'a> {
    rules: &'a CampaignRules,
    cfg: &'a EngineConfig,
    agent: Option<i64>,
    now: DateTime<Utc>,
    /// The next sweep.
    first: Option<DateTime<Utc>>,
    blocked: Option<&'a str>,
}

/// The decisions added up: callable contacts, the others by reason, and
/// every contact still to be called, for the estimate.
#[derive(Default)]
struct Tally<'a> {
    groups: Groups,
    callable: u64,
    callees: Vec<Callee<'a>>,
}

impl<'a> Tally<'a> {
    /// A due contact, decided exactly as the claim decides it.
    fn due(&mut self, c: &'a DueContact, f: &Frame<'_>) {
        let decision = policy::decide(c, f.rules, &f.cfg.compliance, f.agent, f.now);
        let ready = match &decision {
            ClaimDecision::Dial { .. } => {
                self.callable += 1;
                if let Some(why) = f.blocked {
                    let paused = HoldReason::Paused.as_str();
                    self.groups.add(paused, true, None, Some(why.to_string()));
                }
                Some(f.first.unwrap_or(f.now))
            }
            ClaimDecision::Defer(until) | ClaimDecision::Hold { until, .. } => Some(*until),
            _ => None,
        };
        if let Some(ready) = ready {
            let (number, timezone) = (c.phone_number.as_str(), c.timezone.as_deref());
            self.callees.push(Callee {
                number,
                timezone,
                ready,
            });
        }
        if !matches!(decision, ClaimDecision::Dial { .. }) {
            let (reason, at, detail) = why(&decision, c, f.rules, f.cfg, f.now);
            self.groups.add(&reason, true, at, Some(detail));
        }
    }

    /// A contact whose due time is still to come.
    fn waiting(&mut self, w: &'a WaitingContact, now: DateTime<Utc>) {
        let reason = match (w.hold_reason.as_deref(), w.state.as_str()) {
            (Some(r), _) => r,
            (None, "retry_wait") => "retry_delay",
            (None, _) => "scheduled",
        };
        let at = from_db_text(&w.next_attempt_at);
        self.groups.add(reason, false, at, None);
        let (number, timezone) = (w.phone_number.as_str(), w.timezone.as_deref());
        self.callees.push(Callee {
            number,
            timezone,
            ready: at.unwrap_or(now),
        });
    }
}

/// Why the next sweep would dial nobody, whatever its contacts allow.
fn blocker(c: &Campaign, facts: &PlanFacts, agent: Option<i64>) -> Option<String> {
    let status = c.status();
    // A completed campaign that gets new contacts is made active again by
    // the scheduler before its sweep; without any it has nothing to dial.
    if status != CampaignStatus::Active && status != CampaignStatus::Completed {
        let why = c
            .status_reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Some(format!("the campaign is {status}{why}"));
    }
    if let Some(why) = &facts.dispatch_paused {
        return Some(format!(
            "dispatching is paused for everyone ({why}); `dialerd dispatch resume` clears it"
        ));
    }
    agent.is_none().then(|| {
        "no agent_id for the campaign or campaign_defaults: the next sweep pauses it".to_string()
    })
}

/// A decision other than `Dial`: its reason name, when the contact may be
/// called, and a detail line (which rule closed where, the invalid reason).
fn why(
    d: &ClaimDecision,
    c: &DueContact,
    rules: &CampaignRules,
    cfg: &EngineConfig,
    now: DateTime<Utc>,
) -> (String, Option<DateTime<Utc>>, String) {
    let name = |r: HoldReason| r.as_str().to_string();
    match d {
        ClaimDecision::Dial { .. } => ("callable".into(), None, String::new()),
        ClaimDecision::Defer(until) => (
            name(HoldReason::Window),
            Some(*until),
            closed_where(c, rules, cfg, now),
        ),
        ClaimDecision::Hold { until, reason } => {
            let detail = match reason {
                HoldReason::QuietHours | HoldReason::Region => closed_where(c, rules, cfg, now),
                HoldReason::Cap => format!(
                    "limit {} calls per number per 24 h",
                    policy::number_limit(rules, &cfg.compliance, &c.phone_number)
                ),
                HoldReason::LiveAttempt => "another campaign's call to the number is live".into(),
                other => other.as_str().to_string(),
            };
            (name(*reason), Some(*until), detail)
        }
        ClaimDecision::Suppress => (
            name(HoldReason::Dnc),
            None,
            "on the do-not-call list".into(),
        ),
        ClaimDecision::Exhaust => (
            "no_attempts_left".into(),
            None,
            format!("{} attempts made", c.attempts),
        ),
        ClaimDecision::Invalid(r) => ("invalid".into(), None, r.clone()),
    }
}

/// Which calling-hours rule is closed at `now` for `c`, and in which zone.
fn closed_where(
    c: &DueContact,
    rules: &CampaignRules,
    cfg: &EngineConfig,
    now: DateTime<Utc>,
) -> String {
    let Ok(zones) = policy::contact_zones(c.timezone.as_deref(), &c.phone_number, rules.timezone)
    else {
        return "no usable zone".into();
    };
    let hours = policy::hours_rules(rules.window, &cfg.compliance, &c.phone_number);
    match policy::check_hours(&hours, zones.zones(), now) {
        Ok(()) => "open now".into(),
        Err(Closed {
            rule, window, zone, ..
        }) => {
            format!("{rule} {window} closed in {}", zone.name())
        }
    }
}

/// When the next sweep starts, as the scheduler decides it: the stored fire
/// time (now, if it has passed), or the schedule's next fire.
fn next_sweep(c: &Campaign, rules: &CampaignRules, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let after_now = rules.schedule.next_after(now, rules.timezone);
    match c.next_sweep_at.as_deref().and_then(from_db_text) {
        Some(t) if t <= now => Some(now),
        Some(t) => Some(after_now.map_or(t, |n| n.min(t))),
        None => after_now,
    }
}

/// Groups under construction, keyed by (reason, due now).
#[derive(Default)]
struct Groups(BTreeMap<(bool, String), Group>);

impl Groups {
    fn add(
        &mut self,
        reason: &str,
        due_now: bool,
        at: Option<DateTime<Utc>>,
        detail: Option<String>,
    ) {
        let g = self
            .0
            .entry((!due_now, reason.to_string()))
            .or_insert_with(|| Group {
                reason: reason.to_string(),
                due_now,
                count: 0,
                earliest_at: None,
                detail: BTreeMap::new(),
            });
        g.count += 1;
        if let Some(at) = at.map(to_db_text)
            && g.earliest_at.as_ref().is_none_or(|e| at < *e)
        {
            g.earliest_at = Some(at);
        }
        if let Some(d) = detail.filter(|d| !d.is_empty()) {
            *g.detail.entry(d).or_insert(0) += 1;
        }
    }

    fn into_vec(self) -> Vec<Group> {
        self.0.into_values().collect()
    }
}
