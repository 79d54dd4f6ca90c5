//! Reconciliation: pages the call logs of every agent with outstanding
//! attempts, matches each log to its attempt by request id, writes final
//! outcomes and moves contacts on; links uncertain attempts to the call they
//! placed, or declares them not placed once the logs have been read back past
//! them and the grace period is over.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Engine, policy};
use crate::clock::{from_db_text, minus};
use crate::domain::{CampaignStatus, Outcome};
use crate::provider::{CallLog, LogQuery};
use crate::store::{Campaign, CampaignRules, ContactNext, FinalLog, Outstanding};

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
}

/// The outstanding attempts of one agent, as a round works through them.
struct AgentWork<'a> {
    by_request: HashMap<&'a str, &'a Outstanding>,
    uncertain: Vec<&'a Outstanding>,
    /// Accepted attempts not matched by request id (linked from an uncertain state).
    by_log_id: HashMap<i64, &'a Outstanding>,
    /// When the oldest accepted attempt was sent.
    accepted_oldest: Option<DateTime<Utc>>,
}

/// What one page of logs showed.
struct PageFacts {
    /// Its logs were in newest-first order.
    newest_first: bool,
    /// Its oldest `time_of_call`.
    oldest: Option<DateTime<Utc>>,
    /// No page comes after it.
    last: bool,
}

/// A scan for uncertain attempts that goes on across rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeepScan {
    /// When it read page 1.
    started_at: DateTime<Utc>,
    /// The next page to read.
    next_page: u32,
    /// Every page so far was newest first.
    newest_first: bool,
}

impl Engine {
    /// One reconcile round over every outstanding attempt.
    pub async fn reconcile_once(self: &Arc<Self>) -> anyhow::Result<ReconcileReport> {
        let outstanding = self.store.outstanding_attempts().await?;
        let mut report = ReconcileReport {
            outstanding: outstanding.len(),
            ..Default::default()
        };
        metrics::gauge!("dialerd_uncertain_attempts").set(
            outstanding
                .iter()
                .filter(|a| a.state == "uncertain")
                .count() as f64,
        );
        if outstanding.is_empty() {
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
        let mut agents: Vec<i64> = outstanding.iter().map(|a| a.agent_id).collect();
        agents.dedup();
        for agent in agents {
            let mine: Vec<&Outstanding> =
                outstanding.iter().filter(|a| a.agent_id == agent).collect();
            if let Err(e) = self
                .reconcile_agent(agent, &mine, &campaigns, &mut report)
                .await
            {
                report.errors += 1;
                tracing::warn!(agent, error = %format!("{e:#}"), "cannot reconcile this agent's calls now; will retry");
            }
        }
        self.store.complete_finished_campaigns().await?;
        self.finalised_total.fetch_add(
            report.finalised + report.timed_out,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(report)
    }

    async fn reconcile_agent(
        &self,
        agent: i64,
        mine: &[&Outstanding],
        campaigns: &HashMap<i64, Campaign>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let cfg = self.config();
        let skew = chrono::Duration::from_std(cfg.log_time_skew).unwrap_or_default();
        let mut work = AgentWork {
            by_request: HashMap::new(),
            uncertain: Vec::new(),
            by_log_id: HashMap::new(),
            accepted_oldest: None,
        };
        for a in mine {
            if a.state != "uncertain" {
                let sent = from_db_text(&a.sent_at).unwrap_or(DateTime::<Utc>::MIN_UTC);
                work.accepted_oldest = Some(work.accepted_oldest.map_or(sent, |o| o.min(sent)));
            }
            match (a.state.as_str(), a.request_id.as_deref(), a.call_log_id) {
                ("uncertain", _, _) => work.uncertain.push(a),
                (_, Some(rid), _) => {
                    work.by_request.insert(rid, a);
                }
                (_, None, Some(log_id)) => {
                    work.by_log_id.insert(log_id, a);
                }
                _ => {}
            }
        }
        let round_start = self.clock.now();
        let mut finals = Vec::new();
        // Head scan: from the newest page until every accepted call is found.
        // Uncertain attempts are linked on the way when their call shows up.
        let mut page = 1u32;
        let mut newest_first = true;
        let mut hit_limit = false;
        let accepted_oldest = work.accepted_oldest;
        loop {
            let facts = self
                .read_page(agent, page, &mut work, campaigns, &mut finals, skew, report)
                .await?;
            newest_first &= facts.newest_first;
            let past = newest_first
                && facts
                    .oldest
                    .is_some_and(|t| accepted_oldest.is_none_or(|o| t < minus(o, skew)));
            if facts.last || past || (work.by_request.is_empty() && work.by_log_id.is_empty()) {
                break;
            }
            if page >= cfg.max_pages_per_poll {
                tracing::debug!(
                    agent,
                    page,
                    "page limit reached before every accepted call was found"
                );
                hit_limit = true;
                break;
            }
            page += 1;
        }
        report.finalised += finals.len() as u64;
        self.store.record_outcomes(&finals).await?;
        let head = DeepScan {
            started_at: round_start,
            next_page: page + 1,
            newest_first,
        };
        self.deep_scan(agent, head, hit_limit, &mut work, campaigns, report)
            .await?;
        self.expire_accepted(&work, campaigns, report).await
    }

    /// Reads one page of `agent`'s logs and applies every log that belongs to
    /// an outstanding attempt.
    #[allow(clippy::too_many_arguments)]
    async fn read_page<'a>(
        &self,
        agent: i64,
        page: u32,
        work: &mut AgentWork<'a>,
        campaigns: &HashMap<i64, Campaign>,
        finals: &mut Vec<(i64, i64, FinalLog, ContactNext)>,
        skew: chrono::Duration,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<PageFacts> {
        let page_size = self.config().page_size;
        let q = LogQuery {
            page,
            page_size,
            agent_id: Some(agent),
            call_status: None,
        };
        let logs = self.client().list_logs(&q).await?;
        report.list_requests += 1;
        metrics::counter!("dialerd_reconcile_list_requests_total").increment(1);
        let mut facts = PageFacts {
            newest_first: true,
            oldest: None,
            last: logs.logs.is_empty(),
        };
        if logs
            .total_records
            .is_some_and(|t| u64::from(page) * u64::from(page_size) >= t)
        {
            facts.last = true;
        }
        let mut prev: Option<DateTime<Utc>> = None;
        for log in &logs.logs {
            if let Some(t) = log.time_of_call {
                if prev.is_some_and(|p| t > p) {
                    facts.newest_first = false;
                }
                prev = Some(t);
                facts.oldest = Some(facts.oldest.map_or(t, |o: DateTime<Utc>| o.min(t)));
            }
            let matched = match log
                .request_id
                .as_deref()
                .and_then(|r| work.by_request.remove(r))
            {
                Some(a) => Some(a),
                None => match log.id.and_then(|id| work.by_log_id.remove(&id)) {
                    Some(a) => Some(a),
                    None => self.link_uncertain(work, log, skew, report).await?,
                },
            };
            if let Some(a) = matched {
                self.apply_log(a, log, campaigns, finals).await?;
            }
        }
        Ok(facts)
    }

    /// Reads further back than the head scan: for accepted calls it could not
    /// reach within its page limit (`head_hit_limit`), and to resolve
    /// uncertain attempts past their grace period. An uncertain call, if it
    /// was placed, has a log that existed when the attempt became uncertain;
    /// a scan that started after that and read the logs back past the
    /// attempt without finding it proves it was not placed. The scan may take
    /// several rounds (`reconcile.max_pages_per_poll` pages each): its
    /// position is kept between rounds, and since new logs only push older
    /// ones further back, resuming never skips one.
    async fn deep_scan<'a>(
        &self,
        agent: i64,
        head: DeepScan,
        head_hit_limit: bool,
        work: &mut AgentWork<'a>,
        campaigns: &HashMap<i64, Campaign>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let cfg = self.config();
        let now = self.clock.now();
        let skew = chrono::Duration::from_std(cfg.log_time_skew).unwrap_or_default();
        let grace = chrono::Duration::from_std(cfg.uncertain_grace).unwrap_or_default();
        let expired = |a: &Outstanding| now - from_db_text(&a.sent_at).unwrap_or(now) >= grace;
        let unreached = work
            .by_request
            .values()
            .chain(work.by_log_id.values())
            .filter(|_| head_hit_limit);
        let Some(oldest) = work
            .uncertain
            .iter()
            .filter(|a| expired(a))
            .chain(unreached)
            .map(|a| from_db_text(&a.sent_at).unwrap_or(chrono::DateTime::<Utc>::MIN_UTC))
            .min()
        else {
            self.scans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&agent);
            return Ok(());
        };
        let scan = self
            .scans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&agent)
            .copied();
        // A new scan goes on from the head scan, which just read the first pages.
        let mut scan = scan.unwrap_or(head);
        let mut finals = Vec::new();
        let mut covered = false;
        for _ in 0..cfg.max_pages_per_poll {
            let facts = self
                .read_page(
                    agent,
                    scan.next_page,
                    work,
                    campaigns,
                    &mut finals,
                    skew,
                    report,
                )
                .await?;
            scan.newest_first &= facts.newest_first;
            scan.next_page += 1;
            if facts.last
                || (scan.newest_first && facts.oldest.is_some_and(|t| t < minus(oldest, skew)))
            {
                covered = true;
                break;
            }
        }
        report.finalised += finals.len() as u64;
        self.store.record_outcomes(&finals).await?;
        if !covered {
            self.scans
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(agent, scan);
            return Ok(());
        }
        self.scans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&agent);
        for a in work.uncertain.iter().filter(|a| expired(a)) {
            let since = a
                .uncertain_at
                .as_deref()
                .and_then(from_db_text)
                .or_else(|| from_db_text(&a.sent_at));
            if since.is_none_or(|t| t > scan.started_at) {
                // It became uncertain after this scan began: the next scan decides.
                continue;
            }
            let why = format!("no call log appeared within {}s", grace.num_seconds());
            if self
                .store
                .resolve_not_placed(a.id, a.contact_id, &why)
                .await?
            {
                report.not_placed += 1;
                tracing::info!(
                    attempt = a.id,
                    "uncertain attempt was not placed; the contact is due again"
                );
            }
        }
        Ok(())
    }

    /// Tries to link `log` to an uncertain attempt: same number, same agent
    /// (the query filtered it), a request id no attempt of ours carries, a call
    /// log no attempt is linked to, and not older than the attempt.
    async fn link_uncertain<'a>(
        &self,
        work: &mut AgentWork<'a>,
        log: &CallLog,
        skew: chrono::Duration,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<Option<&'a Outstanding>> {
        let Some(to) = log.to_number.as_deref() else {
            return Ok(None);
        };
        let candidates: Vec<usize> = work
            .uncertain
            .iter()
            .enumerate()
            .filter(|(_, a)| same_number(&a.to_number, to))
            .filter(|(_, a)| {
                let sent = from_db_text(&a.sent_at).unwrap_or(DateTime::<Utc>::MIN_UTC);
                log.time_of_call.is_none_or(|t| t >= minus(sent, skew))
            })
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = candidates.first() else {
            return Ok(None);
        };
        if let Some(rid) = log.request_id.as_deref()
            && self.store.request_id_known(rid).await?
        {
            return Ok(None);
        }
        if let Some(id) = log.id
            && self.store.call_log_linked(id).await?
        {
            return Ok(None);
        }
        let a = work.uncertain.remove(first);
        if self
            .store
            .link_uncertain(a.id, log.request_id.as_deref(), log.id)
            .await?
        {
            report.linked += 1;
            tracing::info!(attempt = a.id, request_id = ?log.request_id, call_log = ?log.id, "uncertain attempt linked to the call it placed");
            Ok(Some(a))
        } else {
            Ok(None)
        }
    }

    /// Writes a log's facts: a final status ends the attempt; another one is noted.
    async fn apply_log(
        &self,
        a: &Outstanding,
        log: &CallLog,
        campaigns: &HashMap<i64, Campaign>,
        finals: &mut Vec<(i64, i64, FinalLog, ContactNext)>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let Some(outcome) = log.status.outcome() else {
            let raw = log.call_status_raw.clone().unwrap_or_default();
            if self.timed_out(a, now) {
                // Seen, but never final (stuck queued or ringing): unknown.
                let mut unknown = self.unknown_final(a, campaigns, now);
                unknown.2.provider_status = log.call_status_raw.clone();
                unknown.2.call_log_id = log.id;
                unknown.2.raw_log = Some(log.raw.to_string());
                finals.push(unknown);
            } else if a.provider_status.as_deref() != Some(raw.as_str()) {
                self.store.note_provider_status(a.id, &raw, log.id).await?;
            }
            return Ok(());
        };
        if let Some(sent) = from_db_text(&a.sent_at) {
            let lag = (now - sent).num_milliseconds().max(0) as f64 / 1000.0;
            metrics::histogram!("dialerd_reconcile_lag_seconds").record(lag);
        }
        let next = self.next_for(a, outcome, campaigns, now);
        if let Some(c) = campaigns.get(&a.campaign_id) {
            metrics::counter!("dialerd_outcomes_total", "campaign" => c.name.clone(), "outcome" => outcome.as_str()).increment(1);
        }
        finals.push((
            a.id,
            a.contact_id,
            FinalLog {
                outcome,
                provider_status: log.call_status_raw.clone(),
                call_log_id: log.id,
                duration_secs: log.duration_secs,
                transcript: log.transcript.clone(),
                recording_url: log.recording_url.clone(),
                cost: log.cost,
                raw_log: Some(log.raw.to_string()),
            },
            next,
        ));
        Ok(())
    }

    fn next_for(
        &self,
        a: &Outstanding,
        outcome: Outcome,
        campaigns: &HashMap<i64, Campaign>,
        now: DateTime<Utc>,
    ) -> ContactNext {
        let campaign = campaigns.get(&a.campaign_id);
        let status = campaign
            .map(|c| c.status())
            .unwrap_or(CampaignStatus::Active);
        let rules: Option<CampaignRules> = campaign.and_then(|c| c.rules().ok());
        match rules {
            Some(r) => policy::after_outcome(outcome, &r, a.contact_attempts, status, now),
            // Unreadable rules: never redial on a guess.
            None if outcome == Outcome::Completed => {
                ContactNext::Final(crate::domain::ContactState::Done)
            }
            None => ContactNext::Final(crate::domain::ContactState::Exhausted),
        }
    }

    /// Gives outcome `unknown` to accepted attempts whose log was not found
    /// and that have waited past the outcome timeout.
    async fn expire_accepted(
        &self,
        work: &AgentWork<'_>,
        campaigns: &HashMap<i64, Campaign>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let unknown: Vec<_> = work
            .by_request
            .values()
            .chain(work.by_log_id.values())
            .filter(|a| self.timed_out(a, now))
            .map(|a| self.unknown_final(a, campaigns, now))
            .collect();
        report.timed_out += unknown.len() as u64;
        self.store.record_outcomes(&unknown).await?;
        Ok(())
    }
}

impl Engine {
    /// Whether an accepted attempt has waited past `reconcile.outcome_timeout_secs`.
    fn timed_out(&self, a: &Outstanding, now: DateTime<Utc>) -> bool {
        let timeout = chrono::Duration::from_std(self.config().outcome_timeout).unwrap_or_default();
        let since = a
            .accepted_at
            .as_deref()
            .and_then(from_db_text)
            .or_else(|| from_db_text(&a.sent_at))
            .unwrap_or(now);
        now - since >= timeout
    }

    /// Outcome `unknown` for an attempt whose call never showed a final log.
    fn unknown_final(
        &self,
        a: &Outstanding,
        campaigns: &HashMap<i64, Campaign>,
        now: DateTime<Utc>,
    ) -> (i64, i64, FinalLog, ContactNext) {
        let log = FinalLog {
            outcome: Outcome::Unknown,
            provider_status: a.provider_status.clone(),
            call_log_id: a.call_log_id,
            duration_secs: None,
            transcript: None,
            recording_url: None,
            cost: None,
            raw_log: None,
        };
        (
            a.id,
            a.contact_id,
            log,
            self.next_for(a, Outcome::Unknown, campaigns, now),
        )
    }
}

/// Compares an E.164 number with the API's, ignoring formatting.
fn same_number(ours: &str, theirs: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(ours), digits(theirs));
    !a.is_empty() && a == b
}
