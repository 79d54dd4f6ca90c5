//! SQL of the `attempts` table: the outcome of each dispatch request (written
//! in batches), start-up recovery, and what the reconciler reads and writes.

use chrono::{DateTime, Utc};

use super::Store;
use super::daemon::insert_event;
use crate::clock::{to_db_text, to_db_text_ms};
use crate::domain::{AttemptState, ContactState, HoldReason, Outcome};
use crate::phone::PhoneNumber;

/// What became of one dispatch request, as the dispatcher reports it.
#[derive(Debug, Clone)]
pub enum SendResult {
    /// The API accepted it and returned a request id.
    Accepted {
        request_id: String,
        raw_response: String,
    },
    /// The request may have reached the API: resolved later by the reconciler.
    Uncertain { error: String },
    /// The API refused it for this contact (4xx, `success: false`): the
    /// contact becomes `invalid` with the server's message.
    Rejected { error: String },
    /// The API refused the key (401/403); the contact is handed back unchanged.
    Unauthorized { error: String },
    /// The request was certainly not acted on (safe retries used up, or the
    /// daemon stopping before it was sent); the contact is due again at `retry_at`.
    NotSent {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// Nothing was sent because the dial-time check refused it (or the claim
    /// waited too long): the attempt ends `not_placed` with `error`, and the
    /// contact, its attempt given back, goes where `release` says.
    Refused { error: String, release: Release },
}

/// Where the contact of an attempt refused at the instant of dialing goes;
/// in every case the attempt is not spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Left alone: it no longer owns the attempt.
    Untouched,
    /// Due again at `due` (`None`: its old due time), held back for `reason`.
    HandBack {
        due: Option<DateTime<Utc>>,
        reason: HoldReason,
    },
    /// A final state (`suppressed`, `exhausted`, `invalid` with the reason, `cancelled`).
    Close {
        state: ContactState,
        reason: Option<String>,
    },
}

/// One finished request: which attempt, after how many HTTP tries, when
/// they were sent, and what happened.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub attempt_id: i64,
    pub contact_id: i64,
    pub tries: u32,
    /// When the first try's request was handed to the HTTP client (`None`:
    /// never sent); stored as `sent_at`.
    pub first_try_at: Option<DateTime<Utc>>,
    /// When the last try's request was handed over; grace counts from it.
    pub last_try_at: Option<DateTime<Utc>>,
    pub result: SendResult,
}

impl AttemptResult {
    /// `sent_at` and `last_try_at` as stored text.
    fn instants(&self) -> (Option<String>, Option<String>) {
        (
            self.first_try_at.map(to_db_text_ms),
            self.last_try_at.or(self.first_try_at).map(to_db_text_ms),
        )
    }
}

/// An attempt waiting for the reconciler.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Outstanding {
    pub id: i64,
    pub contact_id: i64,
    pub campaign_id: i64,
    pub agent_id: i64,
    pub to_number: PhoneNumber,
    pub state: AttemptState,
    pub request_id: Option<String>,
    pub provider_status: Option<String>,
    pub sent_at: String,
    pub accepted_at: Option<String>,
    pub call_log_id: Option<i64>,
    /// When it became uncertain.
    pub uncertain_at: Option<String>,
    /// When it was claimed (before any request).
    pub claimed_at: Option<String>,
    /// When the last try's request was handed to the HTTP client.
    pub last_try_at: Option<String>,
    /// When its call log was first seen in a listing.
    pub log_seen_at: Option<String>,
    /// The contact's count of placed (or possibly placed) attempts.
    pub contact_attempts: i64,
}

/// The final facts of a call, from its log.
#[derive(Debug, Clone)]
pub struct FinalLog {
    pub outcome: Outcome,
    pub provider_status: Option<String>,
    pub call_log_id: Option<i64>,
    pub duration_secs: Option<f64>,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    pub cost: Option<f64>,
    pub raw_log: Option<String>,
}

/// An attempt's final outcome and what then happens to its contact.
#[derive(Debug, Clone)]
pub struct FinalOutcome {
    pub attempt_id: i64,
    pub contact_id: i64,
    pub log: FinalLog,
    pub next: ContactNext,
    /// The callee asked not to be called again (the reason, for the DNC
    /// entry): the number goes on the list in the outcome's transaction.
    pub opt_out: Option<String>,
}

/// What happens to the contact after its attempt's final outcome.
#[derive(Debug, Clone, Copy)]
pub enum ContactNext {
    /// `done`, `exhausted` or `cancelled`.
    Final(crate::domain::ContactState),
    /// `retry_wait` until this time.
    RetryAt(DateTime<Utc>),
}

/// Accepted results written by one statement.
const ACCEPT_CHUNK: usize = 32;

/// Marks up to [`ACCEPT_CHUNK`] attempts accepted: `ACCEPT_CHUNK` rows of
/// (attempt id, request id, raw response, tries, first try, last try), then the time.
fn accept_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; ACCEPT_CHUNK].join(", ");
        format!(
            "WITH v(id, request_id, raw, tries, sent, last) AS (VALUES {rows}) \
             UPDATE attempts SET state = 'accepted', request_id = v.request_id, raw_response = v.raw, \
                    tries = v.tries, sent_at = COALESCE(v.sent, attempts.sent_at), last_try_at = v.last, \
                    accepted_at = ? \
             FROM v WHERE attempts.id = v.id AND attempts.state = 'sending'"
        )
    })
}

/// Turns an accepted result whose request id another attempt already
/// carries (or an earlier result of the same batch) into an uncertain one
/// with the reason: the API repeated an id, so which call it names is not
/// known, and the unique index must not fail the whole batch.
async fn screen_request_ids(
    tx: &mut sqlx::SqliteConnection,
    results: &[AttemptResult],
) -> sqlx::Result<Vec<AttemptResult>> {
    let ids: Vec<&str> = results
        .iter()
        .filter_map(|r| match &r.result {
            SendResult::Accepted { request_id, .. } => Some(request_id.as_str()),
            _ => None,
        })
        .collect();
    let mut taken: std::collections::HashMap<String, i64> = if ids.is_empty() {
        Default::default()
    } else {
        let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        sqlx::query_as::<_, (String, i64)>(
            "SELECT a.request_id, a.id FROM attempts a JOIN json_each(?) j ON a.request_id = j.value",
        )
        .bind(list)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let mut out = Vec::with_capacity(results.len());
    for r in results {
        let mut r = r.clone();
        if let SendResult::Accepted { request_id, .. } = &r.result {
            match taken.get(request_id.as_str()) {
                Some(&other) if other != r.attempt_id => {
                    r.result = SendResult::Uncertain {
                        error: format!(
                            "the API answered with request id {request_id}, which attempt {other} already carries; \
                             whether this request placed a call is left to the call logs"
                        ),
                    };
                }
                _ => {
                    taken.insert(request_id.clone(), r.attempt_id);
                }
            }
        }
        out.push(r);
    }
    Ok(out)
}

impl Store {
    /// Writes a batch of request results in one transaction (so many workers
    /// share one `synchronous=FULL` commit) and moves each contact on.
    pub async fn record_results(&self, results: &[AttemptResult]) -> sqlx::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let now = self.now_text();
        let now_ms = self.now_text_ms();
        let mut tx = self.begin_write().await?;
        let results = screen_request_ids(&mut tx, results).await?;
        record_accepted(&mut tx, &results, &now).await?;
        for r in &results {
            record_other(&mut tx, r, &now, &now_ms).await?;
        }
        tx.commit().await
    }

    /// Start-up recovery: an attempt still `sending` may have reached the API
    /// before the last stop, so it becomes `uncertain` (never retried blindly).
    /// Returns how many were recovered.
    pub async fn recover_sending(&self, why: &str) -> sqlx::Result<u64> {
        let now = self.now_text_ms();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE attempts SET state = 'uncertain', uncertain_at = ?, error = ? WHERE state = 'sending'")
            .bind(&now)
            .bind(why)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            insert_event(
                &mut tx,
                &now,
                "recovered_sending",
                None,
                None,
                None,
                Some(&format!("{n} attempts: {why}")),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Attempts waiting for the reconciler (accepted without an outcome, or uncertain).
    pub async fn outstanding_attempts(&self) -> sqlx::Result<Vec<Outstanding>> {
        sqlx::query_as(concat!(
            "SELECT a.id, a.contact_id, a.campaign_id, a.agent_id, a.to_number, a.state, a.request_id, \
                    a.provider_status, a.sent_at, a.accepted_at, a.call_log_id, a.uncertain_at, \
                    a.claimed_at, a.last_try_at, a.log_seen_at, c.attempts AS contact_attempts \
             FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE ",
            super::live_attempt!("a."),
            " ORDER BY a.agent_id, a.sent_at"
        ))
        .fetch_all(&self.pool)
        .await
        .map(|v: Vec<Outstanding>| v.into_iter().filter(|a| a.state != AttemptState::Sending).collect())
    }

    /// Whether some attempt already carries `request_id` (so a log with it is
    /// not an unknown call that could belong to an uncertain attempt).
    pub async fn request_id_known(&self, request_id: &str) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM attempts WHERE request_id = ?)")
            .bind(request_id)
            .fetch_one(&self.pool)
            .await
    }

    /// Whether some attempt is already linked to call log `id`.
    pub async fn call_log_linked(&self, id: i64) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM attempts WHERE call_log_id = ?)")
            .bind(id)
            .fetch_one(&self.pool)
            .await
    }

    /// Links an uncertain attempt to the call its log shows: it was placed.
    /// Nothing is linked (false) when another attempt already carries the
    /// request id or the log: such a log is no proof for this one.
    pub async fn link_uncertain(
        &self,
        attempt_id: i64,
        request_id: Option<&str>,
        call_log_id: Option<i64>,
    ) -> sqlx::Result<bool> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE attempts SET state = 'accepted', request_id = COALESCE(?1, request_id), call_log_id = ?2, accepted_at = ?3 \
             WHERE id = ?4 AND state = 'uncertain' \
               AND NOT EXISTS (SELECT 1 FROM attempts o WHERE o.id <> ?4 \
                               AND ((?1 IS NOT NULL AND o.request_id = ?1) OR (?2 IS NOT NULL AND o.call_log_id = ?2)))",
        )
        .bind(request_id)
        .bind(call_log_id)
        .bind(&now)
        .bind(attempt_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            insert_event(
                &mut tx,
                &now,
                "uncertain_linked",
                None,
                None,
                Some(attempt_id),
                request_id,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// An uncertain attempt that never appeared in the logs within the grace
    /// period: not placed; its contact is due again at once.
    pub async fn resolve_not_placed(
        &self,
        attempt_id: i64,
        contact_id: i64,
        why: &str,
    ) -> sqlx::Result<bool> {
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE attempts SET state = 'not_placed', error = COALESCE(error || '; ', '') || ?, finished_at = ? \
             WHERE id = ? AND state = 'uncertain'",
        )
        .bind(why)
        .bind(&now)
        .bind(attempt_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            hand_back(&mut tx, contact_id, Some(now.clone()), None, &now).await?;
            insert_event(
                &mut tx,
                &now,
                "uncertain_not_placed",
                None,
                Some(contact_id),
                Some(attempt_id),
                Some(why),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Updates the raw status of a call that is not final yet.
    pub async fn note_provider_status(
        &self,
        attempt_id: i64,
        status: &str,
        call_log_id: Option<i64>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE attempts SET provider_status = ?1, \
             call_log_id = CASE WHEN EXISTS (SELECT 1 FROM attempts o WHERE o.call_log_id = ?2 AND o.id <> ?3) \
                                THEN call_log_id ELSE COALESCE(call_log_id, ?2) END \
             WHERE id = ?3 AND outcome IS NULL",
        )
        .bind(status)
        .bind(call_log_id)
        .bind(attempt_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes a batch of final outcomes and moves each contact on, in one transaction.
    /// A call log id another attempt already carries (the API repeated a
    /// log id) is not stored on this one, so the unique index never fails
    /// the batch; the outcome is still written.
    pub async fn record_outcomes(&self, items: &[FinalOutcome]) -> sqlx::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let now = self.now_text();
        let mut tx = self.begin_write().await?;
        for FinalOutcome {
            attempt_id,
            contact_id,
            log,
            next,
            opt_out,
        } in items
        {
            let n = sqlx::query(
                "UPDATE attempts SET outcome = ?1, provider_status = COALESCE(?2, provider_status), \
                 call_log_id = CASE WHEN EXISTS (SELECT 1 FROM attempts o WHERE o.call_log_id = ?3 AND o.id <> ?10) \
                                    THEN call_log_id ELSE COALESCE(?3, call_log_id) END, \
                 duration_secs = ?4, transcript = ?5, recording_url = ?6, \
                 cost = ?7, raw_log = ?8, finished_at = ?9 WHERE id = ?10 AND outcome IS NULL",
            )
            .bind(log.outcome.as_str())
            .bind(&log.provider_status)
            .bind(log.call_log_id)
            .bind(log.duration_secs)
            .bind(&log.transcript)
            .bind(&log.recording_url)
            .bind(log.cost)
            .bind(&log.raw_log)
            .bind(&now)
            .bind(attempt_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                continue;
            }
            let (state, next_at) = match next {
                ContactNext::Final(s) => (s.as_str(), None),
                ContactNext::RetryAt(t) => ("retry_wait", Some(to_db_text(*t))),
            };
            sqlx::query("UPDATE contacts SET state = ?, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'in_progress'")
                .bind(state)
                .bind(next_at)
                .bind(&now)
                .bind(contact_id)
                .execute(&mut *tx)
                .await?;
            if let Some(reason) = opt_out {
                // After the contact moved on, so a retry it was given is
                // suppressed with every other contact of the number.
                super::dnc::record_opt_out(&mut tx, *attempt_id, reason, &now).await?;
            }
        }
        tx.commit().await
    }
}

impl Store {
    /// Notes when the call logs of `attempt_ids` were first seen in a
    /// listing (kept once: the first sight is what teaches the delay).
    pub async fn mark_logs_seen(&self, attempt_ids: &[i64], at: DateTime<Utc>) -> sqlx::Result<()> {
        if attempt_ids.is_empty() {
            return Ok(());
        }
        let ids = serde_json::to_string(attempt_ids).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "UPDATE attempts SET log_seen_at = ? WHERE log_seen_at IS NULL AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(to_db_text_ms(at))
        .bind(ids)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The longest delay, in seconds, from a request's first try to the first
    /// sight of its call's log, over attempts sent since `since`.
    pub async fn longest_log_delay(&self, since: DateTime<Utc>) -> sqlx::Result<Option<f64>> {
        sqlx::query_scalar(
            "SELECT MAX((julianday(log_seen_at) - julianday(sent_at)) * 86400.0) FROM attempts \
             WHERE log_seen_at IS NOT NULL AND log_seen_at >= ?",
        )
        .bind(to_db_text_ms(since))
        .fetch_one(&self.pool)
        .await
    }

    /// An accepted attempt whose request id turned out to name another
    /// number's call (the API repeated an id): whether its own request placed
    /// a call is not known, so it becomes `uncertain` again, without the id.
    pub async fn demote_to_uncertain(&self, attempt_id: i64, why: &str) -> sqlx::Result<bool> {
        let now = self.now_text_ms();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE attempts SET state = 'uncertain', request_id = NULL, accepted_at = NULL, uncertain_at = ?, \
             error = COALESCE(error || '; ', '') || ? WHERE id = ? AND state = 'accepted' AND outcome IS NULL",
        )
        .bind(&now)
        .bind(why)
        .bind(attempt_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            insert_event(
                &mut tx,
                &now,
                "attempt_uncertain",
                None,
                None,
                Some(attempt_id),
                Some(why),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Adds `why` to an uncertain attempt's error, once: why it is not resolved.
    pub async fn note_unresolved(&self, attempt_id: i64, why: &str) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE attempts SET error = COALESCE(error || '; ', '') || ?1 \
             WHERE id = ?2 AND state = 'uncertain' AND instr(COALESCE(error, ''), ?1) = 0",
        )
        .bind(why)
        .bind(attempt_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Writes every accepted result in fixed-size chunks (padded with rows of
/// NULLs, which match nothing), so one prepared statement serves every batch.
async fn record_accepted(
    tx: &mut sqlx::SqliteConnection,
    results: &[AttemptResult],
    now: &str,
) -> sqlx::Result<()> {
    let accepted: Vec<(&AttemptResult, &str, &str)> = results
        .iter()
        .filter_map(|r| match &r.result {
            SendResult::Accepted {
                request_id,
                raw_response,
            } => Some((r, request_id.as_str(), raw_response.as_str())),
            _ => None,
        })
        .collect();
    for chunk in accepted.chunks(ACCEPT_CHUNK) {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(accept_sql()));
        for (r, request_id, raw) in chunk {
            let (sent, last) = r.instants();
            q = q
                .bind(r.attempt_id)
                .bind(*request_id)
                .bind(*raw)
                .bind(i64::from(r.tries))
                .bind(sent)
                .bind(last);
        }
        for _ in chunk.len()..ACCEPT_CHUNK {
            q = q
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<&str>);
        }
        q.bind(now).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Writes one result that is not an acceptance (those went in
/// [`record_accepted`]): its send instants, then what the result means for
/// the attempt and its contact.
async fn record_other(
    tx: &mut sqlx::SqliteConnection,
    r: &AttemptResult,
    now: &str,
    now_ms: &str,
) -> sqlx::Result<()> {
    let tries = i64::from(r.tries);
    // The instants are formatted only when they are written.
    if let (false, (Some(sent), last)) = (
        matches!(r.result, SendResult::Accepted { .. }),
        r.instants(),
    ) {
        sqlx::query(
            "UPDATE attempts SET sent_at = ?, last_try_at = ? WHERE id = ? AND state = 'sending'",
        )
        .bind(&sent)
        .bind(&last)
        .bind(r.attempt_id)
        .execute(&mut *tx)
        .await?;
    }
    match &r.result {
        SendResult::Accepted { .. } => {}
        SendResult::Uncertain { error } => {
            sqlx::query(
                "UPDATE attempts SET state = 'uncertain', uncertain_at = ?, error = ?, tries = ? WHERE id = ? AND state = 'sending'",
            )
            .bind(now_ms)
            .bind(error)
            .bind(tries)
            .bind(r.attempt_id)
            .execute(&mut *tx)
            .await?;
            insert_event(
                tx,
                now,
                "attempt_uncertain",
                None,
                Some(r.contact_id),
                Some(r.attempt_id),
                Some(error),
            )
            .await?;
        }
        SendResult::Rejected { error } => {
            end_unplaced(tx, r.attempt_id, "rejected", error, tries, now).await?;
            sqlx::query(
                "UPDATE contacts SET state = 'invalid', invalid_reason = ?, attempts = MAX(attempts - 1, 0), \
                 next_attempt_at = NULL, updated_at = ? WHERE id = ?",
            )
            .bind(format!("rejected by the API: {error}"))
            .bind(now)
            .bind(r.contact_id)
            .execute(&mut *tx)
            .await?;
        }
        SendResult::Unauthorized { error } => {
            end_unplaced(tx, r.attempt_id, "rejected", error, tries, now).await?;
            hand_back(tx, r.contact_id, None, None, now).await?;
        }
        SendResult::NotSent { error, retry_at } => {
            end_unplaced(tx, r.attempt_id, "not_placed", error, tries, now).await?;
            hand_back(tx, r.contact_id, Some(to_db_text(*retry_at)), None, now).await?;
        }
        SendResult::Refused { error, release } => {
            end_unplaced(tx, r.attempt_id, "not_placed", error, tries, now).await?;
            release_contact(tx, r.contact_id, release, now).await?;
        }
    }
    Ok(())
}

/// Ends an attempt that certainly placed no call.
async fn end_unplaced(
    tx: &mut sqlx::SqliteConnection,
    attempt_id: i64,
    state: &str,
    error: &str,
    tries: i64,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE attempts SET state = ?, error = ?, tries = ?, finished_at = ? WHERE id = ? AND state IN ('sending', 'uncertain')")
        .bind(state)
        .bind(error)
        .bind(tries)
        .bind(now)
        .bind(attempt_id)
        .execute(tx)
        .await?;
    Ok(())
}

/// Gives a contact whose attempt placed no call its attempt back: it is due
/// again (at `due`, or keeping its old due time), `pending` if it never had a
/// placed attempt, else `retry_wait`; `hold` says why it waits, if it does.
async fn hand_back(
    tx: &mut sqlx::SqliteConnection,
    contact_id: i64,
    due: Option<String>,
    hold: Option<HoldReason>,
    now: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contacts SET attempts = MAX(attempts - 1, 0), \
         state = CASE WHEN attempts - 1 <= 0 THEN 'pending' ELSE 'retry_wait' END, \
         next_attempt_at = COALESCE(?, next_attempt_at), hold_reason = COALESCE(?, hold_reason), updated_at = ? \
         WHERE id = ? AND state = 'in_progress'",
    )
    .bind(due)
    .bind(hold.map(HoldReason::as_str))
    .bind(now)
    .bind(contact_id)
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves the contact of an attempt refused at the instant of dialing where
/// `release` says, giving its attempt back.
async fn release_contact(
    tx: &mut sqlx::SqliteConnection,
    contact_id: i64,
    release: &Release,
    now: &str,
) -> sqlx::Result<()> {
    match release {
        Release::Untouched => Ok(()),
        Release::HandBack { due, reason } => {
            hand_back(tx, contact_id, due.map(to_db_text), Some(*reason), now).await
        }
        Release::Close { state, reason } => {
            let hold = (*state == ContactState::Suppressed).then_some(HoldReason::Dnc);
            sqlx::query(
                "UPDATE contacts SET attempts = MAX(attempts - 1, 0), state = ?, \
                 invalid_reason = COALESCE(?, invalid_reason), hold_reason = COALESCE(?, hold_reason), \
                 next_attempt_at = NULL, updated_at = ? WHERE id = ? AND state = 'in_progress'",
            )
            .bind(state.as_str())
            .bind(reason.as_deref())
            .bind(hold.map(HoldReason::as_str))
            .bind(now)
            .bind(contact_id)
            .execute(tx)
            .await?;
            Ok(())
        }
    }
}
