//! SQL of the `contacts` table: claiming due contacts for dispatch (one short
//! transaction that also commits the `sending` attempt rows) and validating
//! rows that other programs inserted.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::Store;
use crate::clock::{to_db_text, to_db_text_ms};
use crate::domain::HoldReason;

/// A due contact as the claim query reads it.
#[derive(Debug, Clone)]
pub struct DueContact {
    pub id: i64,
    pub phone_number: String,
    pub timezone: Option<String>,
    pub agent_id: Option<i64>,
    pub call_context: String,
    pub state: String,
    pub attempts: i64,
    pub on_dnc: bool,
    /// When the number went on the do-not-call list (as stored), if it is on it.
    pub dnc_since: Option<String>,
    /// Why the row cannot be dialed as it stands (a column of the wrong
    /// type, written by another program); it is then marked invalid.
    pub problem: Option<String>,
    /// Calls placed (or possibly placed) to this number in the last 24 h,
    /// all campaigns together, counted from the attempts table.
    pub calls_last_24h: i64,
    /// The oldest of those calls: the cap lifts 24 h after it.
    pub oldest_call_last_24h: Option<DateTime<Utc>>,
    /// Whether another attempt to this number (any campaign) is live:
    /// sending, uncertain, or accepted without a final outcome.
    pub live_attempt_elsewhere: bool,
}

/// What the dispatch policy decided for one due contact.
#[derive(Debug, Clone)]
pub enum ClaimDecision {
    /// Dial now with this agent: an attempt row is committed in state `sending`.
    Dial { agent_id: i64 },
    /// Not now: wait until this time (the calling window opens).
    Defer(DateTime<Utc>),
    /// Not now for another reason (the per-number cap, another live
    /// attempt to the number): wait until this time.
    Hold {
        until: DateTime<Utc>,
        reason: crate::domain::HoldReason,
    },
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
    /// The contact as the claim read it (its `attempts` not counting this
    /// attempt, `call_context` left empty: it is above).
    pub reading: DueContact,
    /// The dial guard when the claim read it, `None` if it could not be
    /// read: every try then reads the whole state.
    pub guard: Option<ClaimGuard>,
    /// The contact's candidate zones as the claim's policy worked them out
    /// (filled in by the dispatcher, which decides), so that a try on the
    /// claim's reading does not work them out again.
    pub zones: Option<crate::phone::zones::Candidates>,
}

/// What a claim noted of the dial guard (migration 12), in its transaction.
#[derive(Debug, Clone)]
pub struct ClaimGuard {
    /// The stamp: a try that reads the same one (and finds its attempt
    /// still `sending`) knows that nothing its check reads has changed.
    pub stamp: i64,
    /// The campaign's rule columns, quoted as the dial-time read quotes
    /// them, so that a try finds the rules parsed for that version.
    pub rules_key: std::sync::Arc<str>,
}

/// What one claim round read and did.
#[derive(Debug, Default)]
pub struct ClaimRound {
    /// Due contacts read.
    pub read: usize,
    /// Whether the policy wanted to dial any of them.
    pub wanted_dial: bool,
    /// Attempts committed `sending`, ready to be sent.
    pub claimed: Vec<Claimed>,
    /// Contacts put off until their calling window opens (or, with
    /// [`ClaimDecision::Hold`], for another reason).
    pub deferred: u64,
    /// Contacts found on the do-not-call list (now `suppressed`).
    pub suppressed: u64,
}

impl ClaimDecision {
    /// Why a contact is held back by this decision, if it is.
    pub fn hold_reason(&self) -> Option<crate::domain::HoldReason> {
        use crate::domain::HoldReason;
        match self {
            ClaimDecision::Defer(_) => Some(HoldReason::Window),
            ClaimDecision::Hold { reason, .. } => Some(*reason),
            ClaimDecision::Suppress => Some(HoldReason::Dnc),
            _ => None,
        }
    }
}

/// Rows that one query packed into a JSON array (so they cross from the
/// SQLite thread as one message, not one each). Read as bytes: text that is
/// not UTF-8 (another program's bytes) is replaced, not fatal.
pub(super) fn parse_rows<T: serde::de::DeserializeOwned>(
    json: Option<&[u8]>,
) -> sqlx::Result<Vec<T>> {
    match json {
        None => Ok(Vec::new()),
        // from_utf8 checks valid text far faster than the lossy decoder
        // walks it; only another program's bytes take the slow path.
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_str(&String::from_utf8_lossy(bytes)),
        }
        .map_err(|e| sqlx::Error::Decode(Box::new(e))),
    }
}

/// The due contacts, read inside the claim transaction as one JSON array.
/// A column of the wrong type (another program's write: SQLite lets a text
/// or a blob into any column) does not fail the read: the contact carries a
/// `problem` and is marked invalid, and the rest of the campaign goes on.
pub(super) async fn due_in(
    conn: &mut sqlx::SqliteConnection,
    campaign_id: i64,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<DueContact>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        // Text columns as text (anything else quoted, so the check below
        // refuses it); integer columns as integers, their type alongside.
        let text = |c: &str| {
            format!("CASE WHEN typeof({c}) IN ('text', 'null') THEN {c} ELSE quote({c}) END")
        };
        let int = |c: &str| format!("CASE WHEN typeof({c}) = 'integer' THEN {c} END, typeof({c})");
        format!(
            "SELECT json_group_array(json_array(id, {}, {}, {}, {}, state, {}, dnc_since, calls_24h, oldest_24h, live_elsewhere, {}) \
                    ORDER BY branch, next_attempt_at, id) FROM ({})",
            text("phone_number"),
            text("timezone"),
            int("agent_id"),
            text("call_context"),
            int("attempts"),
            // NULL unless another program stored a due time in another
            // form; tested only when there is one, so the common row pays
            // one IS NULL (the deferring sweep reads every contact).
            "CASE WHEN next_attempt_at IS NULL THEN NULL \
                  WHEN typeof(next_attempt_at) = 'text' AND next_attempt_at GLOB \
                       '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]Z' THEN NULL \
                  ELSE quote(next_attempt_at) END",
            due_sql()
        )
    });
    let json: Option<Vec<u8>> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(campaign_id)
        .bind(to_db_text(now))
        .bind(limit)
        .bind(to_db_text_ms(day_before(now)))
        .fetch_one(conn)
        .await?;
    type Row = (
        i64,
        Option<String>,
        Option<String>,
        Option<i64>,
        String,
        Option<String>,
        String,
        Option<i64>,
        String,
        Option<String>,
        i64,
        Option<String>,
        i64,
        Option<String>,
    );
    let rows: Vec<Row> = parse_rows(json.as_deref())?;
    Ok(rows
        .into_iter()
        .map(
            |(id, phone, timezone, agent_id, agent_type, call_context, state, attempts, attempts_type, dnc_since, calls_24h, oldest_24h, live, bad_due)| {
                let phone_number = phone.unwrap_or_default();
                let problem = if !crate::phone::is_e164_form(&phone_number) {
                    Some(format!(
                        "phone_number {phone_number:?} is marked validated but is not an E.164 number"
                    ))
                } else if !matches!(agent_type.as_str(), "integer" | "null") {
                    Some(format!("agent_id is a {agent_type} value, not a whole number"))
                } else if attempts_type != "integer" {
                    Some(format!("attempts is a {attempts_type} value, not a whole number"))
                } else {
                    // Only another program's insert of a contact marked
                    // validated can leave a time in another form (validation
                    // and the update trigger make every other one canonical);
                    // compared as text, it may have looked due early.
                    bad_due.map(|due| {
                        format!("next_attempt_at {due} is not a UTC time written as 2026-11-25T08:00:00Z")
                    })
                };
                DueContact {
                    id,
                    phone_number,
                    timezone,
                    agent_id,
                    call_context: call_context.unwrap_or_else(|| "{}".into()),
                    state,
                    attempts: attempts.unwrap_or(0),
                    on_dnc: dnc_since.is_some(),
                    dnc_since,
                    problem,
                    calls_last_24h: calls_24h,
                    oldest_call_last_24h: super::parse_time(oldest_24h.as_deref()),
                    live_attempt_elsewhere: live != 0,
                }
            },
        )
        .collect())
}

/// Ids as a JSON array, for `json_each`.
fn id_list(ids: &[i64]) -> String {
    serde_json::Value::from(ids.to_vec()).to_string()
}

/// A contact another program inserted, not yet validated.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnvalidatedContact {
    pub id: i64,
    pub phone_number: String,
    pub timezone: Option<String>,
}

/// The start of the rolling 24 h before `now` that the per-number cap counts.
pub(crate) fn day_before(now: DateTime<Utc>) -> DateTime<Utc> {
    now - chrono::Duration::hours(24)
}

/// An attempt that placed, or may have placed, a call, with the column
/// prefix given: what the per-number cap counts.
macro_rules! placed_call {
    ($p:literal) => {
        concat!(
            "(",
            $p,
            "state = 'accepted' OR ",
            $p,
            "state = 'uncertain' OR ",
            $p,
            "state = 'sending')"
        )
    };
}
pub(crate) use placed_call;

/// The columns that the rules on a number across campaigns read, for the
/// number `$number` (an SQL expression), other than attempt `$not`, with
/// the cap's window starting after `$since`: when it went on the DNC list,
/// its calls in the window and the oldest of them, and whether any attempt
/// to it is live. Each walks `attempts_by_number` (or the DNC key).
macro_rules! number_columns {
    ($number:literal, $not:literal, $since:literal) => {
        concat!(
            "(SELECT COALESCE(CAST(d.added_at AS TEXT), '') FROM dnc d WHERE d.phone_number = ",
            $number,
            ") AS dnc_since, ",
            "(SELECT COUNT(*) FROM attempts n WHERE n.to_number = ",
            $number,
            " AND n.sent_at > ",
            $since,
            " AND n.id <> ",
            $not,
            " AND ",
            crate::store::placed_call!("n."),
            ") AS calls_24h, ",
            "(SELECT MIN(n.sent_at) FROM attempts n WHERE n.to_number = ",
            $number,
            " AND n.sent_at > ",
            $since,
            " AND n.id <> ",
            $not,
            " AND ",
            crate::store::placed_call!("n."),
            ") AS oldest_24h, ",
            "EXISTS (SELECT 1 FROM attempts n WHERE n.to_number = ",
            $number,
            " AND n.id <> ",
            $not,
            " AND ",
            crate::store::live_attempt!("n."),
            ") AS live_elsewhere"
        )
    };
}

/// The same facts as [`number_columns`], for a query that LEFT JOINs the
/// number's other attempts as `n` and groups by the attempt (or contact)
/// it asks about: one walk of `attempts_by_number` instead of three.
/// `$number` is the number (an SQL expression), `$since` the start of the
/// cap's 24 h.
macro_rules! number_facts {
    ($number:literal, $since:literal) => {
        concat!(
            "(SELECT COALESCE(CAST(d.added_at AS TEXT), '') FROM dnc d WHERE d.phone_number = ",
            $number,
            ") AS dnc_since, ",
            "COALESCE(SUM(n.sent_at > ",
            $since,
            " AND ",
            crate::store::placed_call!("n."),
            "), 0) AS calls_24h, ",
            "MIN(CASE WHEN n.sent_at > ",
            $since,
            " AND ",
            crate::store::placed_call!("n."),
            " THEN n.sent_at END) AS oldest_24h, ",
            "COALESCE(MAX(",
            crate::store::live_attempt!("n."),
            "), 0) AS live_elsewhere"
        )
    };
}
pub(crate) use number_facts;

/// The due-contacts query: parameters ?1 campaign, ?2 now, ?3 limit, ?4
/// the start of the per-number cap's 24 h.
pub(crate) fn due_sql() -> String {
    // Six branches, each an equality-then-range walk of `contacts_due`
    // already in the order wanted, so each stops after `limit` rows: with
    // an OR, or one ORDER BY over both states, SQLite would read (and
    // sort) every due or deferred contact of the campaign. Retries due
    // now come first, then new contacts.
    //
    // The limit is `CAST(?3 AS INTEGER)`, not `?3`: SQLite plans a bare
    // parameter in LIMIT by its bound value, so every claim whose limit
    // differed from the last compiled this whole statement again (about
    // 2.7 M instructions, once per claim batch).
    const LIMIT: &str = "CAST(?3 AS INTEGER)";
    const COLS: &str = concat!(
        "c.id, c.phone_number, c.timezone, c.agent_id, c.call_context, c.state, c.attempts, ",
        number_columns!("c.phone_number", "0", "?4"),
        ", c.next_attempt_at FROM contacts c"
    );
    let branch = |n: usize, state: &str, due: &str| {
        format!(
            "SELECT * FROM (SELECT {n} AS branch, {COLS} WHERE c.campaign_id = ?1 AND c.state = '{state}' AND {due} AND c.validated = 1 \
             ORDER BY c.next_attempt_at, c.id LIMIT {LIMIT})"
        )
    };
    [
        // A due time that is not a time at all and sorts after every real
        // one ('now', 'tomorrow', a blob: another program's insert of a row
        // marked validated) would never come due: read it so that it is
        // refused with a reason, not left pending for ever. Usually empty.
        branch(0, "retry_wait", "c.next_attempt_at >= ':'"),
        branch(1, "pending", "c.next_attempt_at >= ':'"),
        branch(2, "retry_wait", "c.next_attempt_at <= ?2"),
        branch(3, "pending", "c.next_attempt_at <= ?2"),
        branch(4, "pending", "c.next_attempt_at IS NULL"),
        branch(5, "retry_wait", "c.next_attempt_at IS NULL"),
    ]
    .join(" UNION ALL ")
        + " LIMIT "
        + LIMIT
}

/// One claim round's decisions, grouped so that each group is one
/// statement over a list of ids.
#[derive(Default)]
struct Groups {
    /// Contacts to dial, by agent.
    dial: BTreeMap<i64, Vec<i64>>,
    /// Contacts put off, by due time and hold reason.
    defer: BTreeMap<(DateTime<Utc>, &'static str), Vec<i64>>,
    /// Contacts closed, by final state and reason.
    close: BTreeMap<(&'static str, Option<String>), Vec<i64>>,
    /// Each contact to dial, as read.
    dialed: HashMap<i64, DueContact>,
}

impl Groups {
    /// Asks `decide` about each due contact (`None` leaves it untouched)
    /// and counts the outcome in `round`.
    fn of<F>(due: Vec<DueContact>, mut decide: F, round: &mut ClaimRound) -> Self
    where
        F: FnMut(&DueContact) -> Option<ClaimDecision>,
    {
        let mut g = Groups::default();
        for c in due {
            let Some(decision) = decide(&c) else { continue };
            match decision {
                ClaimDecision::Dial { agent_id } => {
                    round.wanted_dial = true;
                    g.dial.entry(agent_id).or_default().push(c.id);
                    g.dialed.insert(c.id, c);
                }
                ClaimDecision::Defer(until) | ClaimDecision::Hold { until, .. } => {
                    round.deferred += 1;
                    let reason = decision.hold_reason().map_or("window", HoldReason::as_str);
                    g.defer.entry((until, reason)).or_default().push(c.id);
                }
                ClaimDecision::Suppress => {
                    round.suppressed += 1;
                    g.close.entry(("suppressed", None)).or_default().push(c.id);
                }
                ClaimDecision::Exhaust => {
                    g.close.entry(("exhausted", None)).or_default().push(c.id)
                }
                ClaimDecision::Invalid(r) => {
                    g.close.entry(("invalid", Some(r))).or_default().push(c.id)
                }
            }
        }
        g
    }
}

/// Puts contacts `ids` off until `until`, held back for `reason`.
async fn defer_contacts(
    tx: &mut sqlx::SqliteConnection,
    stamp: &str,
    until: DateTime<Utc>,
    reason: &str,
    ids: &[i64],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contacts SET next_attempt_at = ?1, hold_reason = ?4, updated_at = ?2 \
         WHERE id IN (SELECT value FROM json_each(?3))",
    )
    .bind(to_db_text(until))
    .bind(stamp)
    .bind(id_list(ids))
    .bind(reason)
    .execute(tx)
    .await?;
    Ok(())
}

/// Moves contacts `ids` to the final `state` (with `reason` when invalid).
async fn close_contacts(
    tx: &mut sqlx::SqliteConnection,
    stamp: &str,
    state: &str,
    reason: Option<&str>,
    ids: &[i64],
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE contacts SET state = ?1, invalid_reason = COALESCE(?2, invalid_reason), \
                next_attempt_at = NULL, updated_at = ?3, \
                hold_reason = CASE WHEN ?1 = 'suppressed' THEN 'dnc' ELSE hold_reason END \
         WHERE id IN (SELECT value FROM json_each(?4))",
    )
    .bind(state)
    .bind(reason)
    .bind(stamp)
    .bind(id_list(ids))
    .execute(tx)
    .await?;
    Ok(())
}

/// A contact the claim did not keep a reading of: empty context.
fn unread(contact_id: i64, to_number: &str) -> DueContact {
    DueContact {
        id: contact_id,
        phone_number: to_number.to_string(),
        timezone: None,
        agent_id: None,
        call_context: "{}".into(),
        state: String::new(),
        attempts: 0,
        on_dnc: false,
        dnc_since: None,
        problem: None,
        calls_last_24h: 0,
        oldest_call_last_24h: None,
        live_attempt_elsewhere: false,
    }
}

/// Whether campaign `campaign_id` is active and dispatching is not paused,
/// as the claim's transaction sees it: `None` if not, else the dial guard
/// as it sees it (`None` inside if its row is gone). Read before the
/// claim's writes: a stamp they moved only sends the tries to the full read.
async fn may_dial(
    tx: &mut sqlx::SqliteConnection,
    campaign_id: i64,
) -> sqlx::Result<Option<Option<ClaimGuard>>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT EXISTS (SELECT 1 FROM campaigns WHERE id = ?1 AND status = 'active') \
                AND EXISTS (SELECT 1 FROM daemon WHERE id = 1 AND dispatch_paused IS NULL), \
             (SELECT stamp FROM dial_guard WHERE id = 1), \
             (SELECT {} FROM campaigns cp WHERE cp.id = ?1)",
            super::dial::RULES_KEY
        )
    });
    let (may, stamp, key): (bool, Option<i64>, Option<String>) =
        sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(campaign_id)
            .fetch_one(tx)
            .await?;
    Ok(may.then(|| {
        stamp.zip(key).map(|(stamp, key)| ClaimGuard {
            stamp,
            rules_key: key.into(),
        })
    }))
}

/// The `sending` attempts a claim commits for one agent's contacts.
struct NewAttempts<'a> {
    campaign_id: i64,
    agent_id: i64,
    ids: &'a [i64],
    /// The claim time: `sent_at` until the first try, and `claimed_at`.
    stamp: &'a str,
}

impl NewAttempts<'_> {
    /// Marks the contacts `in_progress` and inserts their attempts; returns
    /// them, each with its contact's call context (taken from `context`).
    async fn insert(
        &self,
        tx: &mut sqlx::SqliteConnection,
        dialed: &mut HashMap<i64, DueContact>,
        guard: &Option<ClaimGuard>,
    ) -> sqlx::Result<Vec<Claimed>> {
        let ids = id_list(self.ids);
        sqlx::query(
            "UPDATE contacts SET state = 'in_progress', attempts = attempts + 1, hold_reason = NULL, updated_at = ?1 \
             WHERE id IN (SELECT value FROM json_each(?2))",
        )
        .bind(self.stamp)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        // claimed_at is written here, not by the trigger of migration 8
        // (kept for other writers): one write of each new row, not two.
        sqlx::query(
            "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at, claimed_at) \
             SELECT c.id, ?1, (SELECT COALESCE(MAX(a.attempt_no), 0) + 1 FROM attempts a WHERE a.contact_id = c.id), \
                    'sending', ?2, c.phone_number, ?3, ?3 \
             FROM json_each(?4) j JOIN contacts c ON c.id = j.value",
        )
        .bind(self.campaign_id)
        .bind(self.agent_id)
        .bind(self.stamp)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        // Each contact's newest attempt is the one just inserted (its
        // attempt_no is one above any other); one message back instead of
        // one per row.
        let rows: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT json_group_array(json_array(a.id, a.contact_id, a.attempt_no, a.to_number) ORDER BY a.id) \
             FROM json_each(?1) j JOIN attempts a ON a.contact_id = j.value \
              AND a.attempt_no = (SELECT MAX(b.attempt_no) FROM attempts b WHERE b.contact_id = j.value)",
        )
        .bind(&ids)
        .fetch_one(&mut *tx)
        .await?;
        let rows: Vec<(i64, i64, i64, String)> = parse_rows(rows.as_deref())?;
        Ok(rows
            .into_iter()
            .map(|(attempt_id, contact_id, attempt_no, to_number)| {
                // Every row is one of `dialed`; were one not, its tries
                // would read the whole state (no guard), and it is sent
                // with an empty context rather than lost after its commit.
                let (reading, guard) = match dialed.remove(&contact_id) {
                    Some(r) => (r, guard.clone()),
                    None => (unread(contact_id, &to_number), None),
                };
                Claimed {
                    attempt_id,
                    contact_id,
                    campaign_id: self.campaign_id,
                    attempt_no,
                    agent_id: self.agent_id,
                    to_number,
                    call_context: reading.call_context.clone(),
                    reading: DueContact {
                        call_context: String::new(),
                        ..reading
                    },
                    guard,
                    zones: None,
                }
            })
            .collect())
    }
}

impl Store {
    /// One claim round of campaign `campaign_id`, in one write transaction:
    /// reads up to `limit` contacts due at `now`, asks `decide` about each
    /// (`None` leaves a contact untouched, e.g. when no dial slot is left),
    /// and applies the decisions. Dialed contacts become `in_progress` with
    /// a `sending` attempt row, committed before any request is sent. As the
    /// read and the writes share the transaction, a concurrent pause, cancel
    /// or DNC addition either happened before the read (and is seen) or waits
    /// for the commit; nothing is re-checked. When the campaign is no longer
    /// active or dispatching is paused, nobody is dialed (deferrals and
    /// closures still apply).
    pub async fn claim_due<F>(
        &self,
        campaign_id: i64,
        now: DateTime<Utc>,
        limit: i64,
        decide: F,
    ) -> sqlx::Result<ClaimRound>
    where
        F: FnMut(&DueContact) -> Option<ClaimDecision>,
    {
        let stamp = self.now_text();
        let mut tx = self.begin_write().await?;
        let due = due_in(&mut tx, campaign_id, now, limit).await?;
        let mut round = ClaimRound {
            read: due.len(),
            ..ClaimRound::default()
        };
        let mut groups = Groups::of(due, decide, &mut round);
        for ((until, reason), ids) in &groups.defer {
            defer_contacts(&mut tx, &stamp, *until, reason, ids).await?;
        }
        for ((state, reason), ids) in &groups.close {
            close_contacts(&mut tx, &stamp, state, reason.as_deref(), ids).await?;
        }
        let may = match groups.dial.is_empty() {
            true => None,
            false => may_dial(&mut tx, campaign_id).await?,
        };
        if let Some(guard) = may {
            for (agent_id, ids) in &groups.dial {
                let claim = NewAttempts {
                    campaign_id,
                    agent_id: *agent_id,
                    ids,
                    stamp: &stamp,
                };
                let claimed = claim.insert(&mut tx, &mut groups.dialed, &guard).await?;
                round.claimed.extend(claimed);
            }
        }
        tx.commit().await?;
        Ok(round)
    }

    /// Calls of a campaign that are live: sending, uncertain, or accepted without an outcome.
    pub async fn live_calls(&self, campaign_id: i64) -> sqlx::Result<i64> {
        sqlx::query_scalar(concat!(
            "SELECT COUNT(*) FROM attempts WHERE campaign_id = ? AND ",
            super::live_attempt!("")
        ))
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
            // A blob (or a number) where text belongs is quoted, so that
            // validation refuses it with a reason instead of failing the read.
            "SELECT id, CASE WHEN typeof(phone_number) = 'text' THEN phone_number ELSE quote(phone_number) END AS phone_number, \
                    CASE WHEN typeof(timezone) IN ('text', 'null') THEN timezone ELSE quote(timezone) END AS timezone FROM contacts \
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
        let mut tx = self.begin_write().await?;
        for (id, result) in results {
            let outcome = match result {
                Ok(e164) => {
                    // Writing next_attempt_at runs the update trigger of
                    // migration 2: another program's '2026-11-25 08:00:00',
                    // offset or fractions become the canonical form the due
                    // query compares, and text that is not a time makes the
                    // contact invalid with the reason.
                    sqlx::query("UPDATE contacts SET phone_number = ?, validated = 1, updated_at = ?, next_attempt_at = next_attempt_at \
                                 WHERE id = ? AND validated = 0")
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
        let row = sqlx::query(concat!(
            "SELECT EXISTS (SELECT 1 FROM contacts c JOIN campaigns cp ON cp.id = c.campaign_id \
                            WHERE cp.status = 'active' AND c.state IN ('pending', 'retry_wait', 'in_progress')) \
                 OR EXISTS (SELECT 1 FROM attempts WHERE ",
            super::live_attempt!(""),
            ")"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get::<i64, _>(0)? != 0)
    }
}
