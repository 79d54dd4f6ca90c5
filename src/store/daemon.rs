//! SQL of the `daemon` row (heartbeat, global dispatch pause) and the `events`
//! audit trail.

use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use super::{Store, parse_time};

/// The daemon row, as `status` shows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DaemonRow {
    pub pid: Option<i64>,
    pub host: Option<String>,
    pub version: Option<String>,
    pub started_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub stopped_at: Option<String>,
    pub dispatch_paused: Option<String>,
    pub status_line: Option<String>,
}

impl DaemonRow {
    /// The last heartbeat.
    pub fn heartbeat(&self) -> Option<DateTime<Utc>> {
        parse_time(self.heartbeat_at.as_deref())
    }
}

/// One audit event.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Event {
    pub id: i64,
    pub at: String,
    pub kind: String,
    pub campaign_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub attempt_id: Option<i64>,
    pub detail: Option<String>,
}

/// Appends an event inside an open transaction.
pub(crate) async fn insert_event(
    conn: &mut SqliteConnection,
    at: &str,
    kind: &str,
    campaign_id: Option<i64>,
    contact_id: Option<i64>,
    attempt_id: Option<i64>,
    detail: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO events (at, kind, campaign_id, contact_id, attempt_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(at)
    .bind(kind)
    .bind(campaign_id)
    .bind(contact_id)
    .bind(attempt_id)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

impl Store {
    /// The daemon row.
    pub async fn daemon_row(&self) -> sqlx::Result<DaemonRow> {
        sqlx::query_as(
            "SELECT pid, host, version, started_at, heartbeat_at, stopped_at, dispatch_paused, status_line \
             FROM daemon WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await
    }

    /// Records that a daemon started in process `pid`.
    pub async fn daemon_started(&self, pid: u32, host: &str) -> sqlx::Result<()> {
        let now = self.now_text();
        sqlx::query(
            "UPDATE daemon SET pid = ?, host = ?, version = ?, started_at = ?, heartbeat_at = ?, \
             stopped_at = NULL, status_line = 'starting' WHERE id = 1",
        )
        .bind(i64::from(pid))
        .bind(host)
        .bind(env!("CARGO_PKG_VERSION"))
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Refreshes the heartbeat with a one-line summary of what the daemon is
    /// doing. A write transaction like every other write, so a heartbeat
    /// that goes through shows that the daemon's writes go through.
    pub async fn heartbeat(&self, status_line: &str) -> sqlx::Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE daemon SET heartbeat_at = ?, status_line = ? WHERE id = 1")
            .bind(self.now_text())
            .bind(status_line)
            .execute(&mut *tx)
            .await?;
        tx.commit().await
    }

    /// Records a clean stop.
    pub async fn daemon_stopped(&self) -> sqlx::Result<()> {
        sqlx::query("UPDATE daemon SET stopped_at = ?, status_line = 'stopped' WHERE id = 1")
            .bind(self.now_text())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pauses all dispatching (a 401/403 from the API) until an operator
    /// resumes it; `reason` is shown by `status`.
    pub async fn pause_dispatch(&self, reason: &str) -> sqlx::Result<()> {
        self.pause_dispatch_for_key(reason, None).await
    }

    /// [`Store::pause_dispatch`] for a key the API refused, remembered by
    /// its fingerprint so that a start or reload with another key clears
    /// the pause (see [`Store::clear_pause_if_key_changed`]).
    pub async fn pause_dispatch_for_key(
        &self,
        reason: &str,
        key_fingerprint: Option<&str>,
    ) -> sqlx::Result<()> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE daemon SET dispatch_paused = ?, dispatch_paused_key = ? WHERE id = 1")
            .bind(format!("{now}: {reason}"))
            .bind(key_fingerprint)
            .execute(&mut *tx)
            .await?;
        insert_event(
            &mut tx,
            &now,
            "dispatch_paused",
            None,
            None,
            None,
            Some(reason),
        )
        .await?;
        tx.commit().await
    }

    /// Clears a global dispatch pause.
    pub async fn resume_dispatch(&self) -> sqlx::Result<bool> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE daemon SET dispatch_paused = NULL, dispatch_paused_key = NULL \
             WHERE id = 1 AND dispatch_paused IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            insert_event(&mut tx, &now, "dispatch_resumed", None, None, None, None).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Clears a pause a refused key caused when `key_fingerprint` names
    /// another key (the operator replaced it); a pause without a recorded
    /// key, or caused by this very key, stays. Returns whether it cleared.
    pub async fn clear_pause_if_key_changed(&self, key_fingerprint: &str) -> sqlx::Result<bool> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE daemon SET dispatch_paused = NULL, dispatch_paused_key = NULL \
             WHERE id = 1 AND dispatch_paused IS NOT NULL \
             AND dispatch_paused_key IS NOT NULL AND dispatch_paused_key <> ?",
        )
        .bind(key_fingerprint)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            insert_event(
                &mut tx,
                &now,
                "dispatch_resumed",
                None,
                None,
                None,
                Some("the API key changed since the key that caused the pause"),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Why dispatching is paused for everyone, if it is.
    pub async fn dispatch_paused(&self) -> sqlx::Result<Option<String>> {
        sqlx::query_scalar("SELECT dispatch_paused FROM daemon WHERE id = 1")
            .fetch_one(&self.pool)
            .await
    }
}
