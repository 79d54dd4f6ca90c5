//! What a log means for its attempt: a final status ends it (and moves the
//! contact on by the campaign's rules); another status is noted; an accepted
//! call whose log never turns final ends `unknown` after the timeout.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{AgentWork, ReconcileReport, Reconciler};
use crate::clock::from_db_text;
use crate::domain::{CampaignStatus, ContactState, Outcome};
use crate::engine::policy;
use crate::provider::CallLog;
use crate::store::{Campaign, CampaignRules, ContactNext, FinalLog, FinalOutcome, Outstanding};

impl Reconciler {
    /// Writes a log's facts: a final status ends the attempt; another one is noted.
    pub(super) async fn apply_log(
        &self,
        a: &Outstanding,
        log: &CallLog,
        campaigns: &HashMap<i64, Campaign>,
        finals: &mut Vec<FinalOutcome>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        let Some(outcome) = log.status.outcome() else {
            let raw = log.call_status_raw.clone().unwrap_or_default();
            if self.timed_out(a, now) {
                // Seen, but never final (stuck queued or ringing): unknown.
                let mut unknown = self.unknown_final(a, campaigns, now);
                unknown.log.provider_status = log.call_status_raw.clone();
                unknown.log.call_log_id = log.id;
                unknown.log.raw_log = Some(log.raw.to_string());
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
        if let Some(c) = campaigns.get(&a.campaign_id) {
            metrics::counter!("dialerd_outcomes_total", "campaign" => c.name.clone(), "outcome" => outcome.as_str()).increment(1);
        }
        let opt_out = super::super::optout::opt_out_reason(&self.cfg.compliance.opt_out, log);
        if let Some(why) = &opt_out {
            tracing::info!(attempt = a.id, contact = a.contact_id, reason = %why, "callee opted out: number goes on the DNC list");
            metrics::counter!("dialerd_opt_outs_total").increment(1);
        }
        finals.push(FinalOutcome {
            attempt_id: a.id,
            contact_id: a.contact_id,
            opt_out,
            log: FinalLog {
                outcome,
                provider_status: log.call_status_raw.clone(),
                call_log_id: log.id,
                duration_secs: log.duration_secs,
                transcript: log.transcript.clone(),
                recording_url: log.recording_url.clone(),
                cost: log.cost,
                raw_log: Some(log.raw.to_string()),
            },
            next: next_for(a, outcome, campaigns, now),
        });
        Ok(())
    }

    /// Gives outcome `unknown` to accepted attempts whose log was not found
    /// and that have waited past the outcome timeout.
    pub(super) async fn expire_accepted(
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

    /// Whether an accepted attempt has waited past `reconcile.outcome_timeout_secs`.
    fn timed_out(&self, a: &Outstanding, now: DateTime<Utc>) -> bool {
        let timeout = chrono::Duration::from_std(self.cfg.outcome_timeout).unwrap_or_default();
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
    ) -> FinalOutcome {
        FinalOutcome {
            attempt_id: a.id,
            contact_id: a.contact_id,
            opt_out: None,
            log: FinalLog {
                outcome: Outcome::Unknown,
                provider_status: a.provider_status.clone(),
                call_log_id: a.call_log_id,
                duration_secs: None,
                transcript: None,
                recording_url: None,
                cost: None,
                raw_log: None,
            },
            next: next_for(a, Outcome::Unknown, campaigns, now),
        }
    }
}

/// Where the contact goes after `outcome`, by its campaign's rules.
fn next_for(
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
        None if outcome == Outcome::Completed => ContactNext::Final(ContactState::Done),
        None => ContactNext::Final(ContactState::Exhausted),
    }
}
