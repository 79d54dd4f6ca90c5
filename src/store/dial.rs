//! SQL of the dial-time check: the state of one claimed attempt at the
//! instant of a try (its contact, campaign, the DNC list, the number's other
//! attempts, the global pause), read in one statement, so that the policy
//! decides on the database as it is, not as it was at the claim.

use chrono::{DateTime, Utc};

use super::{Campaign, DueContact, Store};
use crate::clock::to_db_text;
use crate::domain::CampaignStatus;

/// One claimed attempt's state at the instant of a try.
#[derive(Debug, Clone)]
pub struct DialState {
    /// The contact as the claim would read it now; its `attempts` does not
    /// count this attempt.
    pub contact: DueContact,
    /// Whether the attempt is still `sending` and its contact's newest.
    pub owns_attempt: bool,
    /// The contact's state now (`in_progress` while it owns the attempt).
    pub contact_state: String,
    /// The campaign's status now.
    pub campaign: CampaignStatus,
    /// The campaign row now (its rules may have changed).
    pub campaign_row: Campaign,
    /// Why dispatching is paused for everyone, if it is.
    pub dispatch_paused: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    attempt_state: String,
    latest_attempt: Option<i64>,
    contact_id: i64,
    phone_number: String,
    contact_timezone: Option<String>,
    contact_agent_id: Option<i64>,
    call_context: Option<String>,
    contact_state: String,
    contact_attempts: i64,
    dnc_since: Option<String>,
    calls_24h: i64,
    oldest_24h: Option<String>,
    live_elsewhere: bool,
    dispatch_paused: Option<String>,
    #[sqlx(flatten)]
    campaign: Campaign,
}

/// Parameters: ?1 the attempt, ?2 the start of the cap's 24 h.
const SQL: &str = concat!(
    "SELECT a.state AS attempt_state, \
            (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = a.contact_id) AS latest_attempt, \
            c.id AS contact_id, a.to_number AS phone_number, \
            CASE WHEN typeof(c.timezone) IN ('text', 'null') THEN c.timezone ELSE quote(c.timezone) END AS contact_timezone, \
            CASE WHEN typeof(c.agent_id) = 'integer' THEN c.agent_id END AS contact_agent_id, \
            CASE WHEN typeof(c.call_context) IN ('text', 'null') THEN c.call_context END AS call_context, \
            c.state AS contact_state, \
            CASE WHEN typeof(c.attempts) = 'integer' THEN c.attempts ELSE 0 END AS contact_attempts, ",
    crate::store::number_columns!("a.to_number", "a.id", "?2"),
    ", (SELECT dispatch_paused FROM daemon WHERE id = 1) AS dispatch_paused, cp.* \
     FROM attempts a JOIN contacts c ON c.id = a.contact_id JOIN campaigns cp ON cp.id = a.campaign_id \
     WHERE a.id = ?1"
);

impl Store {
    /// The state of attempt `attempt_id` at `now`, for the dial-time check;
    /// `None` when the attempt (or its contact) is gone.
    pub async fn dial_state(
        &self,
        attempt_id: i64,
        now: DateTime<Utc>,
    ) -> sqlx::Result<Option<DialState>> {
        let row: Option<Row> = sqlx::query_as(SQL)
            .bind(attempt_id)
            .bind(to_db_text(super::contacts::day_before(now)))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| {
            let owns = r.attempt_state == "sending" && r.latest_attempt == Some(attempt_id);
            // The claim counted this attempt; the policy judges the contact
            // as it was before it.
            let attempts = if owns {
                (r.contact_attempts - 1).max(0)
            } else {
                r.contact_attempts
            };
            DialState {
                contact: DueContact {
                    id: r.contact_id,
                    phone_number: r.phone_number,
                    timezone: r.contact_timezone,
                    agent_id: r.contact_agent_id,
                    call_context: r.call_context.unwrap_or_else(|| "{}".into()),
                    state: r.contact_state.clone(),
                    attempts,
                    on_dnc: r.dnc_since.is_some(),
                    dnc_since: r.dnc_since,
                    problem: None,
                    calls_last_24h: r.calls_24h,
                    oldest_call_last_24h: super::parse_time(r.oldest_24h.as_deref()),
                    live_attempt_elsewhere: r.live_elsewhere,
                },
                owns_attempt: owns,
                contact_state: r.contact_state,
                campaign: r.campaign.status(),
                campaign_row: r.campaign,
                dispatch_paused: r.dispatch_paused,
            }
        }))
    }
}
