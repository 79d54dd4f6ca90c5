//! SQL of the do-not-call list, shared by all campaigns.

use super::Store;
use crate::phone::PhoneNumber;

/// One entry of the do-not-call list.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DncEntry {
    pub phone_number: String,
    pub reason: Option<String>,
    pub added_at: String,
}

impl Store {
    /// Adds numbers to the list (already present ones keep their first reason);
    /// returns how many were new. Contacts not yet finished with these numbers
    /// become `suppressed` at once; a contact with a claimed attempt is
    /// suppressed by the dial-time check before its next try.
    pub async fn dnc_add(
        &self,
        numbers: &[PhoneNumber],
        reason: Option<&str>,
    ) -> sqlx::Result<u64> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for n in numbers {
            added += sqlx::query(
                "INSERT OR IGNORE INTO dnc (phone_number, reason, added_at) VALUES (?, ?, ?)",
            )
            .bind(n.as_str())
            .bind(reason)
            .bind(&now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "UPDATE contacts SET state = 'suppressed', next_attempt_at = NULL, hold_reason = 'dnc', updated_at = ? \
                 WHERE phone_number = ? AND state IN ('pending', 'retry_wait')",
            )
            .bind(&now)
            .bind(n.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes numbers from the list; returns how many were there. Suppressed
    /// contacts stay suppressed: an operator re-adds them on purpose.
    pub async fn dnc_remove(&self, numbers: &[PhoneNumber]) -> sqlx::Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut removed = 0;
        for n in numbers {
            removed += sqlx::query("DELETE FROM dnc WHERE phone_number = ?")
                .bind(n.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// The whole list, by number.
    pub async fn dnc_list(&self) -> sqlx::Result<Vec<DncEntry>> {
        sqlx::query_as("SELECT phone_number, reason, added_at FROM dnc ORDER BY phone_number")
            .fetch_all(&self.pool)
            .await
    }
}
