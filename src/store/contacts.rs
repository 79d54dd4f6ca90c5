//! SQL of the `contacts` table: claiming due contacts for dispatch (one short
//! transaction that also commits the `sending` attempt rows) and validating
//! rows that other programs inserted.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::Store;
use crate::clock::to_db_text;

/// A due contact as the claim query reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueContact {
    pub id: i64,
    pub phone_number: String,
    pub timezone: Option<String>,
    pub agent_id: Option<i64>,
    pub call_context: String,
    pub state: String,
    pub attempts: i64,
    pub on_dnc: bool,
}

/// What the dispatch policy decided for one due contact.
#[derive(Debug, Clone)]
pub enum ClaimDecision {
    /// Dial now with this agent: an attempt row is committed in state `sending`.
    Dial { agent_id: i64 },
    /// Not now: wait until this time (the calling window opens).
    Defer(DateTime<Utc>),
    /// On the do-not-call list: never dialed.
    Suppress,
    /// No attempts left.
    Exhaust,
    /// The row cannot be dialed (e.g. no agent id); the reason is stored.
    Invalid(String),
}

/// An attempt that was claimed and committed `sending`; its request may now be sent.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub attempt_id: i64,
    pub contact_id: i64,
    pub campaign_id: i64,
    pub attempt_no: i64,
    pub agent_id: i64,
    pub to_number: String,
    pub call_context: String,
}

/// A contact another program inserted, not yet validated.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnvalidatedContact {
    pub id: i64,
    pub phone_number: String,
    pub timezone: Option<String>,
}

impl Store {
    /// Reads up to `limit` contacts of `campaign_id` that are due at `now`.
    pub async fn due_contacts(
        &self,
        campaign_id: i64,
        now: DateTime<Utc>,
        limit: i64,
    ) -> sqlx::Result<Vec<DueContact>> {
        sqlx::query_as(
            "SELECT c.id, c.phone_number, c.timezone, c.agent_id, c.call_context, c.state, c.attempts, \
                    EXISTS (SELECT 1 FROM dnc d WHERE d.phone_number = c.phone_number) AS on_dnc \
             FROM contacts c \
             WHERE c.campaign_id = ? AND c.state IN ('pending', 'retry_wait') AND c.validated = 1 \
               AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= ?) \
             ORDER BY c.next_attempt_at, c.id LIMIT ?",
        )
        .bind(campaign_id)
        .bind(to_db_text(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Applies the policy's decisions in one transaction. Each contact is
    /// re-checked inside it (still due, still in the state that was read), so
    /// a concurrent pause, cancel or DNC addition is never overtaken; dialed
    /// contacts become `in_progress` and get a `sending` attempt row, all
    /// committed before any request is sent.
    pub async fn apply_claims(
        &self,
        campaign_id: i64,
        decisions: &[(DueContact, ClaimDecision)],
    ) -> sqlx::Result<Vec<Claimed>> {
        let now = self.now_text();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let active: Option<String> = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = ?")
            .bind(campaign_id)
            .fetch_optional(&mut *tx)
            .await?;
        let paused: Option<String> = sqlx::query_scalar("SELECT dispatch_paused FROM daemon WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?
            .flatten();
        let may_dial = active.as_deref() == Some("active") && paused.is_none();
        let mut claimed = Vec::new();
        for (c, decision) in decisions {
            // The contact must still be exactly as read: same state, same attempt count.
            let guard = "WHERE id = ? AND state = ? AND attempts = ?";
            match decision {
                ClaimDecision::Dial { agent_id } => {
                    if !may_dial {
                        continue;
                    }
                    let on_dnc: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM dnc WHERE phone_number = ?)")
                        .bind(&c.phone_number)
                        .fetch_one(&mut *tx)
                        .await?;
                    if on_dnc {
                        continue;
                    }
                    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE contacts SET state = 'in_progress', attempts = attempts + 1, updated_at = ? {guard}"
                    )))
                    .bind(&now)
                    .bind(c.id)
                    .bind(&c.state)
                    .bind(c.attempts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        continue;
                    }
                    let row = sqlx::query(
                        "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                         VALUES (?, ?, (SELECT COALESCE(MAX(attempt_no), 0) + 1 FROM attempts WHERE contact_id = ?), \
                                 'sending', ?, ?, ?) RETURNING id, attempt_no",
                    )
                    .bind(c.id)
                    .bind(campaign_id)
                    .bind(c.id)
                    .bind(agent_id)
                    .bind(&c.phone_number)
                    .bind(&now)
                    .fetch_one(&mut *tx)
                    .await?;
                    claimed.push(Claimed {
                        attempt_id: row.try_get(0)?,
                        attempt_no: row.try_get(1)?,
                        contact_id: c.id,
                        campaign_id,
                        agent_id: *agent_id,
                        to_number: c.phone_number.clone(),
                        call_context: c.call_context.clone(),
                    });
                }
                ClaimDecision::Defer(until) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE contacts SET next_attempt_at = ?, updated_at = ? {guard}")))
                        .bind(to_db_text(*until))
                        .bind(&now)
                        .bind(c.id)
                        .bind(&c.state)
                        .bind(c.attempts)
                        .execute(&mut *tx)
                        .await?;
                }
                ClaimDecision::Suppress | ClaimDecision::Exhaust | ClaimDecision::Invalid(_) => {
                    let (state, reason) = match decision {
                        ClaimDecision::Suppress => ("suppressed", None),
                        ClaimDecision::Exhaust => ("exhausted", None),
                        ClaimDecision::Invalid(r) => ("invalid", Some(r.as_str())),
                        _ => unreachable!("matched above"),
                    };
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE contacts SET state = ?, invalid_reason = COALESCE(?, invalid_reason), \
                         next_attempt_at = NULL, updated_at = ? {guard}"
                    )))
                    .bind(state)
                    .bind(reason)
                    .bind(&now)
                    .bind(c.id)
                    .bind(&c.state)
                    .bind(c.attempts)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// Calls of a campaign that are live: sending, uncertain, or accepted without an outcome.
    pub async fn live_calls(&self, campaign_id: i64) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM attempts WHERE campaign_id = ? AND outcome IS NULL \
             AND state IN ('sending', 'accepted', 'uncertain')",
        )
        .bind(campaign_id)
        .fetch_one(&self.pool)
        .await
    }

    /// Pending contacts of `campaign_id` that another program inserted and
    /// that have not been validated yet.
    pub async fn unvalidated_contacts(&self, campaign_id: i64, limit: i64) -> sqlx::Result<Vec<UnvalidatedContact>> {
        sqlx::query_as(
            "SELECT id, phone_number, timezone FROM contacts \
             WHERE campaign_id = ? AND validated = 0 AND state = 'pending' ORDER BY id LIMIT ?",
        )
        .bind(campaign_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    /// Stores the validation of directly inserted contacts: `Ok(e164)` rewrites
    /// the number and marks it validated; `Err(reason)` marks it `invalid`. A
    /// number that normalises to one already in the campaign is invalid as a duplicate.
    pub async fn store_validations(&self, results: &[(i64, Result<String, String>)]) -> sqlx::Result<()> {
        let now = self.now_text();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (id, result) in results {
            let outcome = match result {
                Ok(e164) => {
                    sqlx::query("UPDATE contacts SET phone_number = ?, validated = 1, updated_at = ? WHERE id = ? AND validated = 0")
                        .bind(e164)
                        .bind(&now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                }
                Err(_) => Ok(Default::default()),
            };
            let reason = match (result, outcome) {
                (Err(reason), _) => reason.clone(),
                (Ok(_), Ok(_)) => continue,
                (Ok(e164), Err(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    format!("duplicate: {e164} is already a contact of this campaign")
                }
                (Ok(_), Err(e)) => return Err(e),
            };
            sqlx::query(
                "UPDATE contacts SET state = 'invalid', invalid_reason = ?, validated = 1, updated_at = ? WHERE id = ?",
            )
            .bind(reason)
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    /// Whether any contact of an active campaign still needs work (pending,
    /// waiting for a retry, or in progress); used by `run --until-idle`.
    pub async fn has_open_work(&self) -> sqlx::Result<bool> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM contacts c JOIN campaigns cp ON cp.id = c.campaign_id \
                            WHERE cp.status = 'active' AND c.state IN ('pending', 'retry_wait', 'in_progress')) \
                 OR EXISTS (SELECT 1 FROM attempts WHERE outcome IS NULL AND state IN ('sending', 'accepted', 'uncertain'))",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? != 0)
    }
}
