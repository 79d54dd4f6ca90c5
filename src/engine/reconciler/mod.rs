//! Reconciliation, a worker of its own: pages the call logs of every agent
//! with outstanding attempts, matches each log to its attempt by request id,
//! writes final outcomes and moves contacts on; links uncertain attempts to
//! the call they placed, or declares them not placed only on proof.
//!
//! Proof that an uncertain attempt placed no call (README, "Resolving an
//! uncertain attempt"): a scan of its agent's listing that
//! - began after the attempt became uncertain, and after its log would have
//!   appeared had it been placed: the grace and the longest delay from send
//!   to first sight seen recently (with a margin), both counted from the
//!   last try;
//! - read every log that could be newer than the attempt: to the listing's
//!   end (a page shorter than the server honours), or, in a listing ordered
//!   by descending log id, down to an id the listing showed before the
//!   attempt was claimed;
//! - found no log that could be its call, and no log that could belong to it
//!   and to another open attempt alike.

mod apply;
mod scan;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::EngineConfig;
use super::evidence::{IdMarks, ListingTrust, ZoneEvidence};
use crate::clock::{SharedClock, from_db_text, minus};
use crate::domain::AttemptState;
use crate::provider::Client;
use crate::store::{Campaign, Outstanding, Store};
use scan::Scan;

/// What one reconcile round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Attempts waiting at the start of the round.
    pub outstanding: usize,
    /// `GET /calls/logs` requests made.
    pub list_requests: u64,
    /// Final outcomes written.
    pub finalised: u64,
    /// Uncertain attempts linked to the call they placed.
    pub linked: u64,
    /// Uncertain attempts declared not placed.
    pub not_placed: u64,
    /// Accepted attempts given outcome `unknown` after the timeout.
    pub timed_out: u64,
    /// Agents whose logs could not be read this round.
    pub errors: u64,
    /// Uncertain attempts left undecided because a log could belong to
    /// more than one open attempt.
    pub ambiguous: u64,
    /// Accepted attempts found to carry another call's request id, made
    /// uncertain again.
    pub demoted: u64,
    /// The earliest time an uncertain attempt not yet old enough to be
    /// decided may be (its grace and the appearance delay both over).
    pub next_decision_at: Option<DateTime<Utc>>,
}

/// How long after its last try an uncertain attempt's log must have
/// appeared: the grace, and the longest appearance delay seen with a margin.
#[derive(Debug, Clone, Copy)]
struct Wait {
    wait: chrono::Duration,
}

/// The margin on the longest appearance delay: half as long again, plus this.
const DELAY_MARGIN: chrono::Duration = chrono::Duration::seconds(2);

/// A first sight teaches the appearance delay only if the listing was read
/// this recently before (after a stop, a first sight says little).
const WATCHING: chrono::Duration = chrono::Duration::minutes(5);

/// How far back appearance delays are learned from.
const DELAY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// The reconciler: owns its client, store handle, clock, configuration and
/// what it has learned (scans in progress, the API's zone, log-id marks,
/// honoured page sizes). [`Reconciler::step`] is one round.
#[derive(Debug)]
pub struct Reconciler {
    store: Store,
    client: Client,
    clock: SharedClock,
    cfg: Arc<EngineConfig>,
    /// Scans for uncertain attempts in progress, per agent.
    scans: HashMap<i64, Scan>,
    zone: ZoneEvidence,
    marks: HashMap<i64, IdMarks>,
    /// When each agent's listing was last read.
    last_read: HashMap<i64, DateTime<Utc>>,
    /// Whether each agent's listing has shown itself in descending id order.
    trust: HashMap<i64, ListingTrust>,
    /// The most rows a page has held, per page size asked.
    honoured: HashMap<u32, usize>,
    /// Uncertain attempts a log could match together with another one: kept
    /// until they leave `uncertain`, since a resumed scan does not re-read it.
    ambiguous: HashSet<i64>,
}

/// The outstanding attempts of one agent, as a round works through them.
struct AgentWork<'a> {
    by_request: HashMap<&'a str, &'a Outstanding>,
    /// Accepted attempts not matched by request id (linked from an uncertain state).
    by_log_id: HashMap<i64, &'a Outstanding>,
    uncertain: Vec<&'a Outstanding>,
    /// Uncertain attempts a log could match together with another one.
    ambiguous: HashSet<i64>,
    /// Attempts whose log was seen for the first time this round.
    seen: Vec<i64>,
    /// The agent's listing was read recently, so a log seen now for the
    /// first time appeared since then: first sights teach the delay.
    watching: bool,
}

impl Reconciler {
    /// A reconciler over `store`, reading logs through `client`.
    pub fn new(store: Store, client: Client, clock: SharedClock, cfg: Arc<EngineConfig>) -> Self {
        let skew = chrono::Duration::from_std(cfg.log_time_skew).unwrap_or_default();
        Self {
            store,
            client,
            clock,
            zone: ZoneEvidence::new(skew),
            cfg,
            scans: HashMap::new(),
            marks: HashMap::new(),
            trust: HashMap::new(),
            last_read: HashMap::new(),
            honoured: HashMap::new(),
            ambiguous: HashSet::new(),
        }
    }

    /// Uses `client` from the next request on (a reloaded key or base URL).
    pub fn set_client(&mut self, client: Client) {
        self.client = client;
    }

    /// Applies reloaded tunables. A scan asked for another page size is
    /// begun again on its next round, so a new `page_size` never skips logs.
    pub fn set_config(&mut self, cfg: Arc<EngineConfig>) {
        self.cfg = cfg;
    }

    /// What has been learned of the API's zone.
    pub fn zone_evidence(&self) -> &ZoneEvidence {
        &self.zone
    }

    /// One reconcile round over every outstanding attempt.
    pub async fn step(&mut self) -> anyhow::Result<ReconcileReport> {
        let outstanding = self.store.outstanding_attempts().await?;
        let mut report = ReconcileReport {
            outstanding: outstanding.len(),
            ..Default::default()
        };
        metrics::gauge!("dialerd_uncertain_attempts").set(
            outstanding
                .iter()
                .filter(|a| a.state == AttemptState::Uncertain)
                .count() as f64,
        );
        if outstanding.is_empty() {
            self.scans.clear();
            self.store.complete_finished_campaigns().await?;
            return Ok(report);
        }
        let campaigns: HashMap<i64, Campaign> = self
            .store
            .campaigns()
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let wait = self.appearance_wait(&outstanding).await?;
        let mut agents: Vec<i64> = outstanding.iter().map(|a| a.agent_id).collect();
        agents.sort_unstable();
        agents.dedup();
        self.scans.retain(|agent, _| agents.contains(agent));
        self.ambiguous.retain(|id| {
            outstanding
                .iter()
                .any(|a| a.id == *id && a.state == AttemptState::Uncertain)
        });
        for agent in agents {
            let mine: Vec<&Outstanding> =
                outstanding.iter().filter(|a| a.agent_id == agent).collect();
            if let Err(e) = self
                .reconcile_agent(agent, &mine, &campaigns, wait, &mut report)
                .await
            {
                report.errors += 1;
                tracing::warn!(agent, error = %format!("{e:#}"), "cannot reconcile this agent's calls now; will retry");
            }
        }
        self.store.complete_finished_campaigns().await?;
        Ok(report)
    }

    /// The wait before absence proves anything: the grace, and the longest
    /// appearance delay seen (learned from logs first seen in the last day,
    /// and from accepted calls still not listed, which have waited at least
    /// that long), half as long again plus a margin.
    async fn appearance_wait(&self, outstanding: &[Outstanding]) -> anyhow::Result<Wait> {
        let now = self.clock.now();
        let grace = chrono::Duration::from_std(self.cfg.uncertain_grace).unwrap_or_default();
        let learned = self
            .store
            .longest_log_delay(minus(now, DELAY_WINDOW))
            .await?
            .filter(|s| s.is_finite())
            .map(|s| chrono::Duration::milliseconds((s * 1000.0) as i64));
        let unseen = outstanding
            .iter()
            .filter(|a| {
                a.state == AttemptState::Accepted
                    && a.log_seen_at.is_none()
                    && a.call_log_id.is_none()
            })
            .filter_map(|a| from_db_text(&a.sent_at))
            .map(|sent| now - sent)
            .max();
        let longest = learned.max(unseen).unwrap_or_default();
        let with_margin = longest + longest / 2 + DELAY_MARGIN;
        Ok(Wait {
            wait: grace.max(if longest > chrono::Duration::zero() {
                with_margin
            } else {
                chrono::Duration::zero()
            }),
        })
    }

    async fn reconcile_agent(
        &mut self,
        agent: i64,
        mine: &[&Outstanding],
        campaigns: &HashMap<i64, Campaign>,
        wait: Wait,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let mut work = AgentWork {
            by_request: HashMap::new(),
            by_log_id: HashMap::new(),
            uncertain: Vec::new(),
            ambiguous: mine
                .iter()
                .map(|a| a.id)
                .filter(|id| self.ambiguous.contains(id))
                .collect(),
            seen: Vec::new(),
            watching: self
                .last_read
                .get(&agent)
                .is_some_and(|t| self.clock.now() - *t <= WATCHING),
        };
        self.last_read.insert(agent, self.clock.now());
        for a in mine {
            match (a.state, a.request_id.as_deref(), a.call_log_id) {
                (AttemptState::Uncertain, _, _) => work.uncertain.push(a),
                (_, Some(rid), _) => {
                    work.by_request.insert(rid, a);
                }
                (_, None, Some(log_id)) => {
                    work.by_log_id.insert(log_id, a);
                }
                _ => {}
            }
        }
        let (head, head_hit_limit) = self.head_scan(agent, &mut work, campaigns, report).await?;
        self.deep_scan(
            agent,
            head,
            head_hit_limit,
            &mut work,
            campaigns,
            wait,
            report,
        )
        .await?;
        self.ambiguous.extend(work.ambiguous.iter().copied());
        for &id in &work.ambiguous {
            self.store
                .note_unresolved(
                    id,
                    "a call log could belong to this and another open attempt: left uncertain",
                )
                .await?;
        }
        report.ambiguous += work.ambiguous.len() as u64;
        self.expire_accepted(&work, campaigns, report).await
    }

    /// Reads from the newest page until every accepted call is found, the
    /// listing ends, the listing (in descending id order) reaches logs older
    /// than every accepted attempt, or the page limit. Uncertain attempts are
    /// linked on the way. Returns the scan it made, and whether it stopped at
    /// the page limit with accepted calls still unfound.
    async fn head_scan(
        &mut self,
        agent: i64,
        work: &mut AgentWork<'_>,
        campaigns: &HashMap<i64, Campaign>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<(Scan, bool)> {
        let mut head = Scan::new(self.clock.now(), self.cfg.page_size);
        let mut finals = Vec::new();
        let mut hit_limit = false;
        loop {
            self.read_page(agent, &mut head, work, campaigns, &mut finals, report)
                .await?;
            if head.ended || self.accepted_all_read(agent, &head, work) {
                break;
            }
            if head.next_page > self.cfg.max_pages_per_poll {
                tracing::debug!(
                    agent,
                    "page limit reached before every accepted call was found"
                );
                hit_limit = true;
                break;
            }
        }
        self.flush(work, finals, report).await?;
        self.trust.entry(agent).or_default().note(&head.ids);
        Ok((head, hit_limit))
    }

    /// Whether no accepted call is left that `scan` could still find.
    fn accepted_all_read(&self, agent: i64, scan: &Scan, work: &AgentWork<'_>) -> bool {
        if !self.ids_trusted(agent) {
            return work.by_request.is_empty() && work.by_log_id.is_empty();
        }
        let marks = self.marks.get(&agent);
        work.by_request
            .values()
            .chain(work.by_log_id.values())
            .all(|a| {
                marks
                    .and_then(|m| m.before(claimed_at(a)))
                    .is_some_and(|mark| scan.ids.reached(mark))
            })
    }

    /// Whether `agent`'s listing has shown enough rows in descending id
    /// order (and never one out of it) for ids to count as its order.
    fn ids_trusted(&self, agent: i64) -> bool {
        self.trust.get(&agent).is_some_and(ListingTrust::trusted)
    }

    /// Writes what a run of pages found.
    async fn flush(
        &self,
        work: &mut AgentWork<'_>,
        finals: Vec<crate::store::FinalOutcome>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        report.finalised += finals.len() as u64;
        self.store
            .mark_logs_seen(&work.seen, self.clock.now())
            .await?;
        work.seen.clear();
        self.store.record_outcomes(&finals).await?;
        Ok(())
    }
}

/// When an attempt was claimed: no request of it went out before.
fn claimed_at(a: &Outstanding) -> DateTime<Utc> {
    a.claimed_at
        .as_deref()
        .and_then(from_db_text)
        .or_else(|| from_db_text(&a.sent_at))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What grace counts from: the last try; for an attempt recovered at start
/// (no try recorded) the moment it became uncertain, which is after any try.
fn grace_base(a: &Outstanding) -> DateTime<Utc> {
    a.last_try_at
        .as_deref()
        .and_then(from_db_text)
        .or_else(|| a.uncertain_at.as_deref().and_then(from_db_text))
        .or_else(|| from_db_text(&a.sent_at))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When it became uncertain (rows from before that was recorded: the send
/// time; unreadable: the latest possible, so no scan counts).
fn uncertain_since(a: &Outstanding) -> DateTime<Utc> {
    a.uncertain_at
        .as_deref()
        .and_then(from_db_text)
        .or_else(|| from_db_text(&a.sent_at))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
