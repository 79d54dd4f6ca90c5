//! SQL behind `dialerd explain`: what the database knows of one number
//! across every campaign (the DNC list, placed calls in the last 24 hours,
//! attempts still live, and its contacts).

use chrono::{DateTime, Utc};

use super::Store;
use crate::clock::to_db_text;

/// What the database holds about one number.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NumberFacts {
    /// The DNC entry's reason (`Some("")` when listed without one).
    pub dnc: Option<String>,
    /// Attempts sent to the number since the given instant, in any campaign,
    /// that may have rung it (`sending`, `accepted`, `uncertain`).
    pub calls_since: i64,
    /// Attempts `sending`, `uncertain`, or accepted without a final outcome.
    pub live_attempts: i64,
    /// Its contacts, in every campaign.
    pub contacts: Vec<NumberContact>,
}

/// One contact row of a number.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct NumberContact {
    pub campaign: String,
    pub state: String,
    pub attempts: i64,
    pub timezone: Option<String>,
    pub next_attempt_at: Option<String>,
}

impl Store {
    /// What the database holds about E.164 number `number`, counting calls
    /// sent at or after `since`.
    pub async fn number_facts(
        &self,
        number: &str,
        since: DateTime<Utc>,
    ) -> sqlx::Result<NumberFacts> {
        let pool = self.pool();
        let dnc: Option<Option<String>> =
            sqlx::query_scalar("SELECT reason FROM dnc WHERE phone_number = ?")
                .bind(number)
                .fetch_optional(pool)
                .await?;
        // The same definitions of a placed call and of a live attempt as
        // the claim's and the dial-time check's (by the number dialed, across
        // campaigns). julianday: sent_at carries milliseconds, `since` may
        // not; as text the two forms misorder within one second.
        let (calls_since, live_attempts): (i64, i64) = sqlx::query_as(concat!(
            "SELECT COALESCE(SUM(",
            crate::store::placed_call!("a."),
            " AND julianday(a.sent_at) >= julianday(?2)), 0), COALESCE(SUM(",
            crate::store::live_attempt!("a."),
            "), 0) FROM attempts a WHERE a.to_number = ?1"
        ))
        .bind(number)
        .bind(to_db_text(since))
        .fetch_one(pool)
        .await?;
        let contacts = sqlx::query_as::<_, NumberContact>(
            "SELECT p.name AS campaign, c.state, c.attempts, c.timezone, c.next_attempt_at \
             FROM contacts c JOIN campaigns p ON p.id = c.campaign_id \
             WHERE c.phone_number = ? ORDER BY p.name",
        )
        .bind(number)
        .fetch_all(pool)
        .await?;
        Ok(NumberFacts {
            dnc: dnc.map(|r| r.unwrap_or_default()),
            calls_since,
            live_attempts,
            contacts,
        })
    }
}
