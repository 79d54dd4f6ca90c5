//! SQL of the webhook outbox. The rows themselves are written by the triggers
//! of migration 10, in the transaction of the change they report; this module
//! keeps the subscription list those triggers read, hands the delivery worker
//! the rows it may send, and records how each try went.

use chrono::{DateTime, Utc};

use super::Store;
use crate::clock::to_db_text;

/// One event waiting for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    /// The delivery id (`X-Dialerd-Delivery`), the same on every try.
    pub id: i64,
    pub event: String,
    pub contact_id: Option<i64>,
    pub campaign_id: Option<i64>,
    /// The event's data as JSON; bytes, because other writers may have
    /// stored text that is not UTF-8.
    pub payload: Vec<u8>,
    pub created_at: String,
    /// Tries made so far.
    pub attempts: i64,
}

/// How one try of an event went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx with this status.
    Delivered { status: u16 },
    /// It did not (`status` when it answered at all); try again at `next_at`.
    Failed {
        status: Option<u16>,
        error: String,
        next_at: DateTime<Utc>,
    },
}

/// The outbox at a glance, for `status`.
#[derive(Debug, Clone, Default, sqlx::FromRow, serde::Serialize)]
pub struct WebhookSummary {
    /// Not yet tried.
    pub pending: i64,
    /// Tried, failed, to be tried again.
    pub retrying: i64,
    /// Not delivered within `webhooks.max_age_secs`; kept with their error.
    pub gave_up: i64,
    pub delivered: i64,
    /// Creation time of the oldest event still being tried.
    pub oldest_undelivered_at: Option<String>,
    /// The error of the most recently failed try.
    pub last_error: Option<String>,
}

impl Store {
    /// Makes the triggers write exactly `events` from now on (none: webhooks off).
    pub async fn webhook_set_subscriptions(&self, events: &[&str]) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_subscriptions")
            .execute(&mut *tx)
            .await?;
        for e in events {
            sqlx::query("INSERT OR IGNORE INTO webhook_subscriptions (event) VALUES (?)")
                .bind(e)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// The events the triggers write now.
    pub async fn webhook_subscriptions(&self) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar("SELECT event FROM webhook_subscriptions ORDER BY event")
            .fetch_all(&self.pool)
            .await
    }

    /// Up to `limit` rows that may be sent at `now`, oldest first: due, still
    /// being tried, and with no older row of the same contact still being
    /// tried (so each contact's events arrive in order).
    pub async fn webhook_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> sqlx::Result<Vec<OutboxRow>> {
        sqlx::query_as(
            "SELECT o.id, o.event, o.contact_id, o.campaign_id, CAST(o.payload AS BLOB) AS payload, \
                    o.created_at, o.attempts \
             FROM webhook_outbox o \
             WHERE o.delivered_at IS NULL AND o.gave_up_at IS NULL \
               AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?1) \
               AND (o.contact_id IS NULL OR NOT EXISTS ( \
                    SELECT 1 FROM webhook_outbox p \
                    WHERE p.contact_id = o.contact_id AND p.id < o.id \
                      AND p.delivered_at IS NULL AND p.gave_up_at IS NULL)) \
             ORDER BY o.id LIMIT ?2",
        )
        .bind(to_db_text(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
    }

    /// The earliest time a row waiting for a retry becomes due.
    pub async fn webhook_next_retry(&self) -> sqlx::Result<Option<DateTime<Utc>>> {
        let t: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_outbox \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(super::parse_time(t.as_deref()))
    }

    /// Records how a step's tries went, all in one transaction (one sync to
    /// disk for the whole step, not one per event).
    pub async fn webhook_record(&self, results: &[(i64, DeliveryResult)]) -> sqlx::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        for (id, result) in results {
            match result {
                DeliveryResult::Delivered { status } => {
                    sqlx::query(
                        "UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1, \
                         last_status = ?, last_error = NULL, next_attempt_at = NULL WHERE id = ?",
                    )
                    .bind(&now)
                    .bind(i64::from(*status))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                DeliveryResult::Failed {
                    status,
                    error,
                    next_at,
                } => {
                    sqlx::query(
                        "UPDATE webhook_outbox SET attempts = attempts + 1, last_status = ?, \
                         last_error = ?, next_attempt_at = ? WHERE id = ? AND delivered_at IS NULL",
                    )
                    .bind(status.map(i64::from))
                    .bind(error)
                    .bind(to_db_text(*next_at))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await
    }

    /// Stops trying every undelivered row whose retry period began before
    /// `cutoff` (creation, or the last `webhooks retry`); returns how many.
    pub async fn webhook_give_up_before(&self, cutoff: DateTime<Utc>) -> sqlx::Result<u64> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_outbox SET gave_up_at = ?1, \
                 last_error = COALESCE(last_error || '; ', '') || 'not delivered within webhooks.max_age_secs' \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL \
               AND COALESCE(requeued_at, created_at) < ?2",
        )
        .bind(&now)
        .bind(to_db_text(cutoff))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Whether an event still being tried began its retry period before `cutoff`.
    pub async fn webhook_waiting_before(&self, cutoff: DateTime<Utc>) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM webhook_outbox WHERE delivered_at IS NULL \
             AND gave_up_at IS NULL AND COALESCE(requeued_at, created_at) < ?)",
        )
        .bind(to_db_text(cutoff))
        .fetch_one(&self.pool)
        .await
    }

    /// Events still being tried whose retry period began at or after `cutoff`.
    pub async fn webhook_waiting(&self, cutoff: DateTime<Utc>) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL \
             AND COALESCE(requeued_at, created_at) >= ?",
        )
        .bind(to_db_text(cutoff))
        .fetch_one(&self.pool)
        .await
    }

    /// Requeues undelivered events (one, or all with `None`): tried again at
    /// once, for a fresh `webhooks.max_age_secs`. Returns how many.
    pub async fn webhook_requeue(&self, id: Option<i64>) -> sqlx::Result<u64> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE webhook_outbox SET gave_up_at = NULL, next_attempt_at = NULL, requeued_at = ?1 \
             WHERE delivered_at IS NULL AND (?2 IS NULL OR id = ?2)",
        )
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Counts by delivery state, the oldest undelivered event and the last error.
    pub async fn webhook_summary(&self) -> sqlx::Result<WebhookSummary> {
        sqlx::query_as(
            "SELECT \
               COALESCE(SUM(delivered_at IS NULL AND gave_up_at IS NULL AND attempts = 0), 0) AS pending, \
               COALESCE(SUM(delivered_at IS NULL AND gave_up_at IS NULL AND attempts > 0), 0) AS retrying, \
               COALESCE(SUM(delivered_at IS NULL AND gave_up_at IS NOT NULL), 0) AS gave_up, \
               COALESCE(SUM(delivered_at IS NOT NULL), 0) AS delivered, \
               MIN(CASE WHEN delivered_at IS NULL AND gave_up_at IS NULL THEN created_at END) AS oldest_undelivered_at, \
               (SELECT last_error FROM webhook_outbox WHERE delivered_at IS NULL AND last_error IS NOT NULL \
                ORDER BY COALESCE(next_attempt_at, '') DESC, id DESC LIMIT 1) AS last_error \
             FROM webhook_outbox",
        )
        .fetch_one(&self.pool)
        .await
    }
}
