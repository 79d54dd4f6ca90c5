//! SQL of the do-not-call list, shared by all campaigns.

use super::Store;
use super::daemon::insert_event;
use crate::phone::PhoneNumber;

/// One entry of the do-not-call list.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct DncEntry {
    pub phone_number: String,
    pub reason: Option<String>,
    pub added_at: String,
    /// `operator`, `import` or `opt-out`.
    pub source: String,
    /// For an opt-out, the attempt on which the callee asked.
    pub attempt_id: Option<i64>,
}

/// Who put a number on the list (`dnc.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DncSource {
    /// `dnc add`, or an operator's SQL (the column's default).
    Operator,
    /// `dnc import FILE`.
    Import,
    /// The callee asked on a call (`dnc.attempt_id` names it); the
    /// `dnc.opt_out` webhook event reports it.
    OptOut,
}

impl DncSource {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Import => "import",
            Self::OptOut => "opt-out",
        }
    }
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
        self.dnc_add_from(numbers, reason, DncSource::Operator, None)
            .await
    }

    /// [`Store::dnc_add`], recording who added the numbers and, for an
    /// opt-out, the attempt on which the callee asked.
    pub async fn dnc_add_from(
        &self,
        numbers: &[PhoneNumber],
        reason: Option<&str>,
        source: DncSource,
        attempt_id: Option<i64>,
    ) -> sqlx::Result<u64> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let mut added = 0;
        for n in numbers {
            added += sqlx::query(
                "INSERT OR IGNORE INTO dnc (phone_number, reason, added_at, source, attempt_id) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(n.as_str())
            .bind(reason)
            .bind(&now)
            .bind(source.as_str())
            .bind(attempt_id)
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
        sqlx::query_as(
            "SELECT phone_number, reason, added_at, source, attempt_id FROM dnc ORDER BY phone_number",
        )
        .fetch_all(&self.pool)
        .await
    }
}

/// A callee asked, on attempt `attempt_id`, not to be called again: its
/// number goes on the list (`source = 'opt-out'`, with the attempt), unless
/// it is there already, whose entry (an operator's, say) is kept as it is;
/// every contact of the number still waiting, in every campaign, becomes
/// `suppressed`; and `events` records it (`dnc_opt_out`). Runs in the
/// caller's transaction, the one that writes the attempt's outcome.
pub(super) async fn record_opt_out(
    tx: &mut sqlx::SqliteConnection,
    attempt_id: i64,
    reason: &str,
    now: &str,
) -> sqlx::Result<()> {
    // The number dialed; the contact's, for a row written without one.
    let found: Option<(Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT COALESCE(a.to_number, c.phone_number), a.campaign_id, a.contact_id \
         FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE a.id = ?",
    )
    .bind(attempt_id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((Some(number), campaign_id, contact_id)) = found else {
        return Ok(());
    };
    let added = sqlx::query(
        "INSERT INTO dnc (phone_number, reason, added_at, source, attempt_id) \
         VALUES (?, ?, ?, 'opt-out', ?) ON CONFLICT (phone_number) DO NOTHING",
    )
    .bind(&number)
    .bind(reason)
    .bind(now)
    .bind(attempt_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let suppressed = sqlx::query(
        "UPDATE contacts SET state = 'suppressed', next_attempt_at = NULL, hold_reason = 'dnc', updated_at = ? \
         WHERE phone_number = ? AND state IN ('pending', 'retry_wait')",
    )
    .bind(now)
    .bind(&number)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let detail = if added > 0 {
        format!(
            "{number} added to the DNC list: {reason}; {suppressed} waiting contacts suppressed"
        )
    } else {
        format!(
            "{number} was already on the DNC list (entry kept): {reason}; {suppressed} waiting contacts suppressed"
        )
    };
    insert_event(
        tx,
        now,
        "dnc_opt_out",
        Some(campaign_id),
        Some(contact_id),
        Some(attempt_id),
        Some(&detail),
    )
    .await
}
