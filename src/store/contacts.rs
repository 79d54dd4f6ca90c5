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

/// The due-contacts query: parameters ?1 campaign, ?2 now, ?3 limit.
pub(crate) fn due_sql() -> String {
    // Four branches, each an equality-then-range walk of `contacts_due`
    // already in the order wanted, so each stops after `limit` rows: with
    // an OR, or one ORDER BY over both states, SQLite would read (and
    // sort) every due or deferred contact of the campaign. Retries due
    // now come first, then new contacts.
    const COLS: &str = "SELECT c.id, c.phone_number, c.timezone, c.agent_id, c.call_context, c.state, c.attempts, \
         EXISTS (SELECT 1 FROM dnc d WHERE d.phone_number = c.phone_number) AS on_dnc FROM contacts c";
    let branch = |state: &str, due: &str| {
        format!(
            "SELECT * FROM ({COLS} WHERE c.campaign_id = ?1 AND c.state = '{state}' AND {due} AND c.validated = 1 \
             ORDER BY c.next_attempt_at, c.id LIMIT ?3)"
        )
    };
    [
        branch("retry_wait", "c.next_attempt_at <= ?2"),
        branch("pending", "c.next_attempt_at <= ?2"),
        branch("pending", "c.next_attempt_at IS NULL"),
        branch("retry_wait", "c.next_attempt_at IS NULL"),
    ]
    .join(" UNION ALL ")
        + " LIMIT ?3"
}

impl Store {
    /// Reads up to `limit` contacts of `campaign_id` that are due at `now`.
    pub async fn due_contacts(
        &self,
        campaign_id: i64,
        now: DateTime<Utc>,
        limit: i64,
    ) -> sqlx::Result<Vec<DueContact>> {
        sqlx::query_as(sqlx::AssertSqlSafe(due_sql()))
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
        use serde_json::json;
        let now = self.now_text();
        // Each decision's contact as read: [id, state, attempts, ...], so every
        // statement below touches a contact only if it is still exactly so.
        let mut dial = Vec::new();
        let mut defer = Vec::new();
        let mut close = Vec::new();
        for (c, d) in decisions {
            match d {
                ClaimDecision::Dial { agent_id } => {
                    dial.push(json!([c.id, c.state, c.attempts, agent_id]))
                }
                ClaimDecision::Defer(until) => {
                    defer.push(json!([c.id, c.state, c.attempts, to_db_text(*until)]))
                }
                ClaimDecision::Suppress => {
                    close.push(json!([c.id, c.state, c.attempts, "suppressed", null]))
                }
                ClaimDecision::Exhaust => {
                    close.push(json!([c.id, c.state, c.attempts, "exhausted", null]))
                }
                ClaimDecision::Invalid(r) => {
                    close.push(json!([c.id, c.state, c.attempts, "invalid", r]))
                }
            }
        }
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        if !defer.is_empty() {
            sqlx::query(
                "UPDATE contacts SET next_attempt_at = json_extract(j.value, '$[3]'), updated_at = ?1 \
                 FROM json_each(?2) j \
                 WHERE contacts.id = json_extract(j.value, '$[0]') AND contacts.state = json_extract(j.value, '$[1]') \
                   AND contacts.attempts = json_extract(j.value, '$[2]')",
            )
            .bind(&now)
            .bind(serde_json::Value::Array(defer).to_string())
            .execute(&mut *tx)
            .await?;
        }
        if !close.is_empty() {
            sqlx::query(
                "UPDATE contacts SET state = json_extract(j.value, '$[3]'), \
                        invalid_reason = COALESCE(json_extract(j.value, '$[4]'), invalid_reason), \
                        next_attempt_at = NULL, updated_at = ?1 \
                 FROM json_each(?2) j \
                 WHERE contacts.id = json_extract(j.value, '$[0]') AND contacts.state = json_extract(j.value, '$[1]') \
                   AND contacts.attempts = json_extract(j.value, '$[2]')",
            )
            .bind(&now)
            .bind(serde_json::Value::Array(close).to_string())
            .execute(&mut *tx)
            .await?;
        }
        let mut claimed = Vec::new();
        let may_dial: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = ? AND status = 'active') \
                AND EXISTS (SELECT 1 FROM daemon WHERE id = 1 AND dispatch_paused IS NULL)",
        )
        .bind(campaign_id)
        .fetch_one(&mut *tx)
        .await?;
        if may_dial && !dial.is_empty() {
            let dial = serde_json::Value::Array(dial).to_string();
            // Still as read, and (re-checked here) not on the do-not-call list.
            let ids: Vec<i64> = sqlx::query_scalar(
                "UPDATE contacts SET state = 'in_progress', attempts = attempts + 1, updated_at = ?1 \
                 FROM json_each(?2) j \
                 WHERE contacts.id = json_extract(j.value, '$[0]') AND contacts.state = json_extract(j.value, '$[1]') \
                   AND contacts.attempts = json_extract(j.value, '$[2]') \
                   AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.phone_number = contacts.phone_number) \
                 RETURNING contacts.id",
            )
            .bind(&now)
            .bind(&dial)
            .fetch_all(&mut *tx)
            .await?;
            if !ids.is_empty() {
                let rows: Vec<(i64, i64, i64, i64, String)> = sqlx::query_as(
                    "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                     SELECT c.id, ?1, (SELECT COALESCE(MAX(a.attempt_no), 0) + 1 FROM attempts a WHERE a.contact_id = c.id), \
                            'sending', json_extract(j.value, '$[3]'), c.phone_number, ?2 \
                     FROM json_each(?3) j JOIN contacts c ON c.id = json_extract(j.value, '$[0]') \
                     WHERE c.id IN (SELECT value FROM json_each(?4)) \
                     RETURNING id, contact_id, attempt_no, agent_id, to_number",
                )
                .bind(campaign_id)
                .bind(&now)
                .bind(&dial)
                .bind(serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into()))
                .fetch_all(&mut *tx)
                .await?;
                let context: std::collections::HashMap<i64, &str> = decisions
                    .iter()
                    .map(|(c, _)| (c.id, c.call_context.as_str()))
                    .collect();
                claimed = rows
                    .into_iter()
                    .map(
                        |(attempt_id, contact_id, attempt_no, agent_id, to_number)| Claimed {
                            attempt_id,
                            contact_id,
                            campaign_id,
                            attempt_no,
                            agent_id,
                            to_number,
                            call_context: context
                                .get(&contact_id)
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "{}".into()),
                        },
                    )
                    .collect();
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
    pub async fn unvalidated_contacts(
        &self,
        campaign_id: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<UnvalidatedContact>> {
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
    pub async fn store_validations(
        &self,
        results: &[(i64, Result<String, String>)],
    ) -> sqlx::Result<()> {
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
