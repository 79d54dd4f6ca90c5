//! SQL behind `dialerd plan`: one campaign's contacts as the claim would
//! read them now, read in one snapshot and never written. The due contacts
//! come from the claim's own query ([`super::contacts`]'s `due_in`), with
//! the same per-number facts (DNC, calls in the last 24 h, live attempts),
//! so that the plan decides exactly what a sweep at the same instant would.

use chrono::{DateTime, Utc};

use super::Store;
use super::contacts::{DueContact, due_in};
use crate::clock::to_db_text;

/// A contact not due yet: waiting for its retry delay or its hold to end.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WaitingContact {
    pub phone_number: String,
    pub timezone: Option<String>,
    pub state: String,
    pub hold_reason: Option<String>,
    pub next_attempt_at: String,
}

/// What `plan` reads about one campaign at one instant.
#[derive(Debug, Clone, Default)]
pub struct PlanFacts {
    /// The contacts due now, as the claim reads them.
    pub due: Vec<DueContact>,
    /// Validated contacts waiting (pending or retry_wait) with a due time after now.
    pub waiting: Vec<WaitingContact>,
    /// Pending rows another program inserted, validated by the next sweep.
    pub unvalidated: i64,
    /// Contacts per state (every state present), by state name.
    pub states: Vec<(String, i64)>,
    /// Attempts of the campaign still live (sending, uncertain, or awaiting their outcome).
    pub live_calls: i64,
    /// Why dispatching is paused for everyone, if it is.
    pub dispatch_paused: Option<String>,
}

impl Store {
    /// Reads [`PlanFacts`] of campaign `campaign_id` at `now`, in one read
    /// transaction (a consistent snapshot), writing nothing.
    pub async fn plan_facts(
        &self,
        campaign_id: i64,
        now: DateTime<Utc>,
    ) -> sqlx::Result<PlanFacts> {
        let mut tx = self.pool().begin().await?;
        let due = due_in(&mut tx, campaign_id, now, i64::MAX).await?;
        let waiting = sqlx::query_as::<_, WaitingContact>(
            "SELECT CAST(phone_number AS TEXT) AS phone_number, \
                    CASE WHEN typeof(timezone) = 'text' THEN timezone END AS timezone, \
                    state, hold_reason, CAST(next_attempt_at AS TEXT) AS next_attempt_at \
             FROM contacts WHERE campaign_id = ?1 AND validated = 1 \
               AND state IN ('pending', 'retry_wait') AND next_attempt_at > ?2 AND next_attempt_at < ':' \
             ORDER BY next_attempt_at",
        )
        .bind(campaign_id)
        .bind(to_db_text(now))
        .fetch_all(&mut *tx)
        .await?;
        let unvalidated: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contacts WHERE campaign_id = ? AND validated = 0 AND state = 'pending'",
        )
        .bind(campaign_id)
        .fetch_one(&mut *tx)
        .await?;
        let states = sqlx::query_as(
            "SELECT CAST(state AS TEXT), COUNT(*) FROM contacts WHERE campaign_id = ? GROUP BY 1 ORDER BY 1",
        )
        .bind(campaign_id)
        .fetch_all(&mut *tx)
        .await?;
        let live_calls = sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM attempts WHERE campaign_id = ? AND ",
            super::live_attempt!("")
        ))
        .bind(campaign_id)
        .fetch_one(&mut *tx)
        .await?;
        let dispatch_paused = sqlx::query_scalar::<_, Option<String>>(
            "SELECT dispatch_paused FROM daemon WHERE id = 1",
        )
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        tx.rollback().await?;
        Ok(PlanFacts {
            due,
            waiting,
            unvalidated,
            states,
            live_calls,
            dispatch_paused,
        })
    }
}
