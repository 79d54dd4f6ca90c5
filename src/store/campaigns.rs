//! SQL of the `campaigns` table.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::Store;
use crate::calendar::{Schedule, Window, parse_tz};
use crate::domain::{CampaignStatus, Outcome, parse_outcomes, parse_region};

/// A campaign row as stored. Text columns are kept as written, because other
/// programs may insert campaigns; [`Campaign::rules`] parses them.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub agent_id: Option<i64>,
    pub from_number_id: Option<i64>,
    pub status: String,
    pub status_reason: Option<String>,
    pub schedule: String,
    pub timezone: String,
    pub window_start: String,
    pub window_end: String,
    pub max_attempts: i64,
    pub retry_delay_secs: i64,
    pub retry_outcomes: String,
    pub retry_delays: Option<String>,
    pub region: Option<String>,
    pub max_live_calls: Option<i64>,
    pub last_sweep_at: Option<String>,
    pub next_sweep_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A campaign's rules, parsed and validated.
#[derive(Debug, Clone)]
pub struct CampaignRules {
    pub schedule: Schedule,
    pub timezone: chrono_tz::Tz,
    pub window: Window,
    pub max_attempts: u32,
    pub retry_delay_secs: u64,
    pub retry_outcomes: Vec<Outcome>,
    /// Per-outcome overrides of `retry_delay_secs`.
    pub retry_delays: Vec<(Outcome, u64)>,
    pub region: Option<phonenumber::country::Id>,
    /// Placed calls to one number in any rolling 24 h, all campaigns
    /// together; 0 = no cap. Not a campaign column: the engine sets it from
    /// `dispatch.max_calls_per_number_per_day` ([`Campaign::rules`] gives
    /// the default, 3, so a caller that forgets is still bounded).
    pub max_calls_per_number_per_day: u32,
}

/// The default of `dispatch.max_calls_per_number_per_day`.
pub const DEFAULT_MAX_CALLS_PER_NUMBER_PER_DAY: u32 = 3;

impl CampaignRules {
    /// The delay before redialing after `outcome`, or `None` when it is not retried.
    pub fn retry_delay(&self, outcome: Outcome) -> Option<u64> {
        if !self.retry_outcomes.contains(&outcome) {
            return None;
        }
        Some(
            self.retry_delays
                .iter()
                .find(|(o, _)| *o == outcome)
                .map(|(_, d)| *d)
                .unwrap_or(self.retry_delay_secs),
        )
    }
}

impl Campaign {
    /// The status, if it is one dialerd knows (the CHECK constraint makes it so).
    pub fn status(&self) -> CampaignStatus {
        self.status.parse().unwrap_or(CampaignStatus::Paused)
    }

    /// Parses the campaign's schedule, zone, window and retry rules; the error
    /// names the column, so a campaign inserted by hand with a typo can be
    /// paused with a reason an operator understands.
    pub fn rules(&self) -> Result<CampaignRules, String> {
        let col = |c: &str, m: String| format!("campaign {:?} column {c}: {m}", self.name);
        let schedule = Schedule::parse(&self.schedule).map_err(|m| col("schedule", m))?;
        let timezone = parse_tz(&self.timezone).map_err(|m| col("timezone", m))?;
        let window = Window::parse(&format!("{}-{}", self.window_start, self.window_end))
            .map_err(|m| col("window_start/window_end", m))?;
        let max_attempts = u32::try_from(self.max_attempts)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| col("max_attempts", "must be at least 1".into()))?;
        let retry_delay_secs = u64::try_from(self.retry_delay_secs)
            .map_err(|_| col("retry_delay_secs", "must not be negative".into()))?;
        let retry_outcomes = parse_outcomes(std::slice::from_ref(&self.retry_outcomes))
            .map_err(|m| col("retry_outcomes", m))?;
        let mut retry_delays = Vec::new();
        if let Some(text) = self
            .retry_delays
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| col("retry_delays", format!("not a JSON object: {e}")))?;
            for (k, v) in map {
                let o: Outcome = k.parse().map_err(|e: crate::domain::UnknownVariant| {
                    col("retry_delays", e.to_string())
                })?;
                let secs = v.as_u64().ok_or_else(|| {
                    col(
                        "retry_delays",
                        format!("{k}: {v} is not a number of seconds"),
                    )
                })?;
                retry_delays.push((o, secs));
            }
        }
        let region = self
            .region
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(parse_region)
            .transpose()
            .map_err(|m| col("region", m))?;
        Ok(CampaignRules {
            schedule,
            timezone,
            window,
            max_attempts,
            retry_delay_secs,
            retry_outcomes,
            retry_delays,
            region,
            max_calls_per_number_per_day: DEFAULT_MAX_CALLS_PER_NUMBER_PER_DAY,
        })
    }
}

/// Settings for a new campaign: the defaults, overridden by command-line
/// flags or an inbox sidecar.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub agent_id: Option<i64>,
    pub from_number_id: Option<i64>,
    pub schedule: Schedule,
    pub timezone: chrono_tz::Tz,
    pub window: Window,
    pub max_attempts: u32,
    pub retry_delay_secs: u64,
    pub retry_outcomes: Vec<Outcome>,
    pub region: Option<phonenumber::country::Id>,
}

fn join_outcomes(o: &[Outcome]) -> String {
    o.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(",")
}

fn region_text(r: Option<phonenumber::country::Id>) -> Option<String> {
    r.map(|id| format!("{id:?}"))
}

impl Store {
    /// Inserts a campaign inside an open transaction and returns its id.
    pub async fn insert_campaign_tx(
        &self,
        conn: &mut sqlx::SqliteConnection,
        c: &NewCampaign,
    ) -> sqlx::Result<i64> {
        let now = self.now_text();
        let row = sqlx::query(
            "INSERT INTO campaigns (name, agent_id, from_number_id, status, schedule, timezone, \
             window_start, window_end, max_attempts, retry_delay_secs, retry_outcomes, region, \
             created_at, updated_at) \
             VALUES (?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&c.name)
        .bind(c.agent_id)
        .bind(c.from_number_id)
        .bind(c.schedule.as_str())
        .bind(c.timezone.name())
        .bind(c.window.start_text())
        .bind(c.window.end_text())
        .bind(i64::from(c.max_attempts))
        .bind(i64::try_from(c.retry_delay_secs).unwrap_or(i64::MAX))
        .bind(join_outcomes(&c.retry_outcomes))
        .bind(region_text(c.region))
        .bind(&now)
        .bind(&now)
        .fetch_one(&mut *conn)
        .await?;
        row.try_get(0)
    }

    /// Every campaign, by id.
    pub async fn campaigns(&self) -> sqlx::Result<Vec<Campaign>> {
        sqlx::query_as("SELECT * FROM campaigns ORDER BY id")
            .fetch_all(&self.pool)
            .await
    }

    /// The campaign named `name`.
    pub async fn campaign_by_name(&self, name: &str) -> sqlx::Result<Option<Campaign>> {
        sqlx::query_as("SELECT * FROM campaigns WHERE name = ?")
            .bind(name.trim())
            .fetch_optional(&self.pool)
            .await
    }

    /// The campaign with id `id`.
    pub async fn campaign(&self, id: i64) -> sqlx::Result<Option<Campaign>> {
        sqlx::query_as("SELECT * FROM campaigns WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Sets a campaign's status (and the reason shown by `status`), recording
    /// an event. Cancelling also cancels every contact that has not finished
    /// and has no call in flight. Returns false when no such campaign exists.
    pub async fn set_campaign_status(
        &self,
        id: i64,
        status: CampaignStatus,
        reason: Option<&str>,
    ) -> sqlx::Result<bool> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE campaigns SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        if status == CampaignStatus::Cancelled {
            sqlx::query(
                "UPDATE contacts SET state = 'cancelled', next_attempt_at = NULL, updated_at = ? \
                 WHERE campaign_id = ? AND state IN ('pending', 'retry_wait')",
            )
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        super::daemon::insert_event(
            &mut tx,
            &now,
            &format!("campaign_{status}"),
            Some(id),
            None,
            None,
            reason,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records that a sweep of campaign `id` started now, and when the next is due.
    pub async fn record_sweep(&self, id: i64, next: Option<DateTime<Utc>>) -> sqlx::Result<()> {
        let now = self.now_text();
        sqlx::query("UPDATE campaigns SET last_sweep_at = ?, next_sweep_at = ? WHERE id = ?")
            .bind(&now)
            .bind(next.map(crate::clock::to_db_text))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a campaign's next fire time without a sweep (a new campaign).
    pub async fn record_next_sweep(
        &self,
        id: i64,
        next: Option<DateTime<Utc>>,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE campaigns SET next_sweep_at = ? WHERE id = ?")
            .bind(next.map(crate::clock::to_db_text))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks every active campaign whose contacts have all reached a final
    /// state (and that has at least one contact) `completed`; returns their ids.
    pub async fn complete_finished_campaigns(&self) -> sqlx::Result<Vec<i64>> {
        let now = self.now_text();
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'completed', status_reason = NULL, updated_at = ? \
             WHERE status = 'active' \
               AND EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = campaigns.id) \
               AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = campaigns.id \
                               AND c.state IN ('pending', 'in_progress', 'retry_wait')) \
             RETURNING id",
        )
        .bind(&now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Re-opens completed campaigns that received new contacts (for example
    /// rows another program inserted); returns their ids.
    pub async fn reopen_campaigns_with_work(&self) -> sqlx::Result<Vec<i64>> {
        let rows = sqlx::query(
            "UPDATE campaigns SET status = 'active', updated_at = ? WHERE status = 'completed' \
             AND EXISTS (SELECT 1 FROM contacts c WHERE c.campaign_id = campaigns.id \
                         AND c.state IN ('pending', 'retry_wait')) RETURNING id",
        )
        .bind(self.now_text())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| r.try_get(0)).collect()
    }

    /// Re-opens a completed campaign that received new contacts.
    pub async fn reopen_campaign_tx(
        &self,
        conn: &mut sqlx::SqliteConnection,
        id: i64,
    ) -> sqlx::Result<()> {
        sqlx::query("UPDATE campaigns SET status = 'active', updated_at = ? WHERE id = ? AND status = 'completed'")
            .bind(self.now_text())
            .bind(id)
            .execute(conn)
            .await?;
        Ok(())
    }
}
