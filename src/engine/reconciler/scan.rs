//! Reading a listing: one page at a time, knowing when it has ended (a page
//! shorter than the server honours, not than asked), and the deep scan that
//! proves an uncertain attempt placed no call.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    AgentWork, ReconcileReport, Reconciler, Wait, claimed_at, grace_base, uncertain_since,
};
use crate::engine::evidence::IdOrder;
use crate::provider::{CallLog, LogQuery};
use crate::store::{Campaign, FinalOutcome, Outstanding};

/// A pass through one agent's listing from page 1 towards its end; a deep
/// scan may take several rounds.
#[derive(Debug, Clone)]
pub(super) struct Scan {
    /// When it asked for page 1.
    pub started_at: DateTime<Utc>,
    /// The next page to read.
    pub next_page: u32,
    /// The page size it asks for; a scan never changes it midway.
    pub page_size: u32,
    /// The order of the ids it read.
    pub ids: IdOrder,
    /// A page shorter than the server honours was read: nothing comes after.
    pub ended: bool,
}

impl Scan {
    /// A scan about to read page 1.
    pub fn new(started_at: DateTime<Utc>, page_size: u32) -> Self {
        Self {
            started_at,
            next_page: 1,
            page_size: page_size.max(1),
            ids: IdOrder::default(),
            ended: false,
        }
    }
}

impl Reconciler {
    /// Reads `scan`'s next page of `agent`'s logs, applies every log that
    /// belongs to an outstanding attempt, and moves the scan on; page 1's
    /// highest log id becomes a mark.
    pub(super) async fn read_page(
        &mut self,
        agent: i64,
        scan: &mut Scan,
        work: &mut AgentWork<'_>,
        campaigns: &HashMap<i64, Campaign>,
        finals: &mut Vec<FinalOutcome>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let q = LogQuery {
            page: scan.next_page,
            page_size: scan.page_size,
            agent_id: Some(agent),
            call_status: None,
        };
        let page = self.client.list_logs(&q).await?;
        let answered_at = self.clock.now();
        report.list_requests += 1;
        metrics::counter!("dialerd_reconcile_list_requests_total").increment(1);
        let rows = page.logs.len() + page.skipped;
        self.note_page_length(scan, rows, page.total_records);
        let ids: Vec<Option<i64>> = page.logs.iter().map(|l| l.id).collect();
        scan.ids.page(&ids);
        if page.skipped > 0 {
            // Rows that are not logs: their ids are unknown, so is the order.
            scan.ids.page(&[None]);
        }
        if scan.next_page == 1
            && let Some(max) = ids.iter().flatten().max()
        {
            // Every log created after the answer came has a higher id.
            self.marks.entry(agent).or_default().note(answered_at, *max);
        }
        scan.next_page += 1;
        for log in &page.logs {
            self.take_log(log, answered_at, work, campaigns, finals, report)
                .await?;
        }
        Ok(())
    }

    /// Decides from a page's length whether the listing ended: only a page
    /// shorter than the most rows the server has put in one page for this
    /// size. A short page the first time may be the server's cap, so the
    /// next page is read; an empty page always ends it.
    fn note_page_length(&mut self, scan: &mut Scan, rows: usize, total: Option<u64>) {
        let asked = scan.page_size as usize;
        let honoured = self.honoured.entry(scan.page_size).or_insert(0);
        if rows == 0 {
            scan.ended = true;
            return;
        }
        let before = u64::from(scan.next_page.saturating_sub(1)) * rows as u64;
        let more_remain = total.is_some_and(|t| t > before + rows as u64);
        if rows < *honoured {
            if more_remain {
                // Shorter than before, yet the server counts more logs: it
                // lowered its cap (or cut this page). Read on; only a page
                // short of the new cap, or an empty one, ends the listing.
                tracing::debug!(
                    rows,
                    honoured = *honoured,
                    ?total,
                    "a shorter page with more logs counted; reading on"
                );
                *honoured = rows;
                return;
            }
            scan.ended = true;
            return;
        }
        if rows > *honoured {
            if rows < asked && *honoured > 0 {
                tracing::debug!(
                    asked,
                    rows,
                    "a page fuller than any before, still short of the size asked"
                );
            }
            *honoured = rows;
        }
        if rows < asked && more_remain {
            tracing::debug!(
                asked,
                rows,
                ?total,
                "the server caps pagesize; more logs remain"
            );
        }
    }

    /// Applies one log: to the accepted attempt with its request id or log
    /// id, else possibly to an uncertain attempt.
    async fn take_log<'a>(
        &mut self,
        log: &CallLog,
        answered_at: DateTime<Utc>,
        work: &mut AgentWork<'a>,
        campaigns: &HashMap<i64, Campaign>,
        finals: &mut Vec<FinalOutcome>,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let by_request = log
            .request_id
            .as_deref()
            .and_then(|r| work.by_request.remove(r));
        if let Some(a) = by_request
            && let Some(to) = log.to_number.as_deref()
            && !same_number(a.to_number.as_str(), to)
        {
            // The API answered this attempt with another call's request id.
            let why = format!(
                "request id {} names a call to another number; whether this request placed a call is left to the call logs",
                a.request_id.as_deref().unwrap_or_default()
            );
            tracing::warn!(attempt = a.id, %why, "accepted attempt is uncertain again");
            self.store.demote_to_uncertain(a.id, &why).await?;
            report.demoted += 1;
        } else if let Some(a) = by_request {
            if a.log_seen_at.is_none() && work.watching {
                work.seen.push(a.id);
                if let (Some(t), Some(sent)) =
                    (&log.log_time, crate::clock::from_db_text(&a.sent_at))
                {
                    self.zone.learn(t, sent, answered_at);
                }
            }
            return self.apply_log(a, log, campaigns, finals).await;
        }
        let matched = match log.id.and_then(|id| work.by_log_id.remove(&id)) {
            Some(a) => Some(a),
            None => self.link_uncertain(work, log, report).await?,
        };
        if let Some(a) = matched {
            // Not learned from: an uncertain attempt's send time says little
            // of when its log appeared.
            self.apply_log(a, log, campaigns, finals).await?;
        }
        Ok(())
    }

    /// Links `log` to the one uncertain attempt it could be: same number,
    /// same agent (the query filtered it), not older than the attempt's claim
    /// by what is known of the API's zone, a request id and a log id no
    /// attempt carries. When several could match, none is linked and each
    /// is left undecided.
    async fn link_uncertain<'a>(
        &self,
        work: &mut AgentWork<'a>,
        log: &CallLog,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<Option<&'a Outstanding>> {
        let Some(to) = log.to_number.as_deref() else {
            return Ok(None);
        };
        let latest = log.log_time.as_ref().and_then(|t| self.zone.latest(t));
        let candidates: Vec<usize> = work
            .uncertain
            .iter()
            .enumerate()
            .filter(|(_, a)| same_number(a.to_number.as_str(), to))
            .filter(|(_, a)| latest.is_none_or(|t| t >= claimed_at(a)))
            .map(|(i, _)| i)
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
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
        if candidates.len() > 1 {
            for &i in &candidates {
                work.ambiguous.insert(work.uncertain[i].id);
            }
            tracing::warn!(call_log = ?log.id, candidates = candidates.len(), "a call log could be the call of several uncertain attempts; linking none");
            return Ok(None);
        }
        let a = work.uncertain[candidates[0]];
        if work.ambiguous.contains(&a.id) {
            return Ok(None);
        }
        if !self
            .store
            .link_uncertain(a.id, log.request_id.as_deref(), log.id)
            .await?
        {
            return Ok(None);
        }
        work.uncertain.remove(candidates[0]);
        report.linked += 1;
        tracing::info!(attempt = a.id, request_id = ?log.request_id, call_log = ?log.id, "uncertain attempt linked to the call it placed");
        Ok(Some(a))
    }

    /// Reads on past the head scan when an uncertain attempt is old enough
    /// to be decided, or accepted calls lay beyond the head's page limit.
    /// A scan goes on across rounds (`reconcile.max_pages_per_poll` pages
    /// each); new logs only push older ones further back, so resuming never
    /// skips one. It is begun again if the page size changed.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn deep_scan(
        &mut self,
        agent: i64,
        head: Scan,
        head_hit_limit: bool,
        work: &mut AgentWork<'_>,
        campaigns: &HashMap<i64, Campaign>,
        wait: Wait,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        for a in &work.uncertain {
            let due = after_wait(a, wait);
            if due > now {
                report.next_decision_at = Some(report.next_decision_at.map_or(due, |t| t.min(due)));
            }
        }
        let due_now =
            |a: &&Outstanding| after_wait(a, wait) <= now && !work.ambiguous.contains(&a.id);
        let deciding = work.uncertain.iter().any(due_now);
        let unreached =
            head_hit_limit && !(work.by_request.is_empty() && work.by_log_id.is_empty());
        if !deciding && !unreached {
            self.scans.remove(&agent);
            return Ok(());
        }
        let mut scan = match self.scans.remove(&agent) {
            Some(s) if s.page_size == head.page_size => s,
            // A new scan goes on from the head scan, which just read the first pages.
            _ => head,
        };
        let mut finals = Vec::new();
        for _ in 0..self.cfg.max_pages_per_poll {
            if scan.ended || self.covered_all(agent, &scan, work, wait) {
                break;
            }
            self.read_page(agent, &mut scan, work, campaigns, &mut finals, report)
                .await?;
        }
        self.flush(work, finals, report).await?;
        if !(scan.ended || self.covered_all(agent, &scan, work, wait)) {
            if !scan.ids.descending {
                self.trust.entry(agent).or_default().note(&scan.ids);
            }
            self.scans.insert(agent, scan);
            return Ok(());
        }
        self.trust.entry(agent).or_default().note(&scan.ids);
        self.declare_not_placed(agent, &scan, work, wait, report)
            .await
    }

    /// Whether `scan` proves the absence of every uncertain attempt it may
    /// decide, by log ids alone.
    fn covered_all(&self, agent: i64, scan: &Scan, work: &AgentWork<'_>, wait: Wait) -> bool {
        let mut deciding = work
            .uncertain
            .iter()
            .filter(|a| may_decide(a, scan, wait) && !work.ambiguous.contains(&a.id))
            .peekable();
        deciding.peek().is_some() && deciding.all(|a| self.covers(agent, scan, a))
    }

    /// Whether `scan` has read every log that could be `a`'s call.
    fn covers(&self, agent: i64, scan: &Scan, a: &Outstanding) -> bool {
        scan.ended
            || self.ids_trusted(agent)
                && self
                    .marks
                    .get(&agent)
                    .and_then(|m| m.before(claimed_at(a)))
                    .is_some_and(|mark| scan.ids.reached(mark))
    }

    /// Declares not placed every uncertain attempt the finished `scan`
    /// proves absent.
    async fn declare_not_placed(
        &mut self,
        agent: i64,
        scan: &Scan,
        work: &AgentWork<'_>,
        wait: Wait,
        report: &mut ReconcileReport,
    ) -> anyhow::Result<()> {
        for a in &work.uncertain {
            if work.ambiguous.contains(&a.id)
                || !may_decide(a, scan, wait)
                || !self.covers(agent, scan, a)
            {
                continue;
            }
            let why = format!(
                "no call log appeared: the listing was read past the attempt by a scan that began {}s after its last try",
                (scan.started_at - grace_base(a)).num_seconds()
            );
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
}

/// Whether a scan that began at `scan.started_at` may prove `a` absent: it
/// began after `a` became uncertain and after `a`'s log would have appeared.
fn may_decide(a: &Outstanding, scan: &Scan, wait: Wait) -> bool {
    scan.started_at > uncertain_since(a) && scan.started_at >= after_wait(a, wait)
}

/// When `a`'s log must have appeared: its grace base plus the wait, saturating
/// (an unreadable time is the latest instant, and must not overflow).
fn after_wait(a: &Outstanding, wait: Wait) -> DateTime<Utc> {
    crate::clock::plus(grace_base(a), wait.wait.to_std().unwrap_or_default())
}

/// Compares an E.164 number with the API's, ignoring formatting.
fn same_number(ours: &str, theirs: &str) -> bool {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (a, b) = (digits(ours), digits(theirs));
    !a.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::clock::ManualClock;
    use crate::config::Settings;
    use crate::engine::EngineConfig;
    use crate::provider::Client;
    use crate::secret::ApiKey;
    use crate::store::Store;

    /// A reconciler whose client is never called (the page lengths are fed in).
    async fn reconciler(dir: &tempfile::TempDir) -> Reconciler {
        let clock: crate::clock::SharedClock = Arc::new(ManualClock::new(Utc::now()));
        let store = Store::open(&dir.path().join("d.db"), clock.clone())
            .await
            .unwrap();
        let client = Client::new(
            "http://127.0.0.1:9",
            ApiKey::new("k").unwrap(),
            Duration::from_secs(1),
        )
        .unwrap();
        let settings = Settings::load_with_env(None, &HashMap::new()).unwrap();
        let cfg = Arc::new(EngineConfig::from_settings(&settings));
        Reconciler::new(store, client, clock, cfg)
    }

    /// Reads one page of `rows` rows with `total` counted, as `read_page` does.
    fn page(r: &mut Reconciler, scan: &mut Scan, rows: usize, total: Option<u64>) {
        r.note_page_length(scan, rows, total);
        scan.next_page += 1;
    }

    #[tokio::test]
    async fn a_shorter_page_while_the_server_counts_more_logs_does_not_end_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = reconciler(&dir).await;
        let mut scan = Scan::new(Utc::now(), 100);
        page(&mut r, &mut scan, 100, Some(400));
        // The server lowered its cap to 50: two more pages are counted.
        page(&mut r, &mut scan, 50, Some(400));
        assert!(
            !scan.ended,
            "a short page ended a listing that counts more logs"
        );
        page(&mut r, &mut scan, 50, Some(400));
        assert!(!scan.ended);
        page(&mut r, &mut scan, 0, Some(400));
        assert!(scan.ended, "an empty page ends every listing");

        // Without a count, a page shorter than the server honours ends it.
        let mut scan = Scan::new(Utc::now(), 100);
        page(&mut r, &mut scan, 30, None);
        assert!(scan.ended);
    }
}
