//! SQL of the dial-time check: the state of claimed attempts at the instant
//! of a try (contact, campaign status, the DNC list, the number's other
//! attempts, the global pause), read for a batch of attempts in one
//! statement, so that the policy decides on the database as it is, not as
//! it was at the claim, at the price of one read per batch of tries.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{DueContact, Store, contacts::parse_rows};
use crate::clock::to_db_text_ms;
use crate::domain::CampaignStatus;

/// One claimed attempt's state at the instant of a try.
#[derive(Debug, Clone)]
pub struct DialState {
    /// The contact as the claim would read it now; its `attempts` does not
    /// count this attempt.
    pub contact: DueContact,
    /// Whether the attempt is still `sending` and its contact's newest.
    pub owns_attempt: bool,
    /// The contact's state now (`in_progress` while it owns the attempt).
    pub contact_state: String,
    /// The campaign's id.
    pub campaign_id: i64,
    /// The campaign's status now.
    pub campaign: CampaignStatus,
    /// The campaign's rule columns now, as one text: equal texts, equal
    /// rules (so parsed rules can be kept until it changes).
    pub rules_key: String,
    /// Why dispatching is paused for everyone, if it is.
    pub dispatch_paused: Option<String>,
}

/// The columns [`crate::store::Campaign::rules`] reads, quoted into one text
/// (of the campaign row `cp`); the claim notes it too, so that a try on an
/// unchanged dial guard ([`Store::dial_guard`]) can find the rules parsed
/// for it.
pub(super) const RULES_KEY: &str = "quote(cp.agent_id) || ',' || quote(cp.schedule) || ',' || quote(cp.timezone) || ',' || \
     quote(cp.window_start) || ',' || quote(cp.window_end) || ',' || quote(cp.max_attempts) || ',' || \
     quote(cp.retry_delay_secs) || ',' || quote(cp.retry_outcomes) || ',' || quote(cp.retry_delays) || ',' || \
     quote(cp.region)";

/// Parameters: ?1 the attempt ids as a JSON array, ?2 the start of the
/// cap's 24 h. One row: the global pause, the campaigns of those attempts
/// (their rule columns quoted once per campaign, not once per attempt), and
/// the attempts, each packed as JSON (one message from the SQLite thread
/// however many they are). The number's other attempts are read in one
/// walk of `attempts_by_number` per attempt (a grouped join), not one walk
/// per fact.
pub(super) fn batch_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (SELECT dispatch_paused FROM daemon WHERE id = 1), \
                    (SELECT json_group_array(json_array(cp.id, cp.status, {RULES_KEY})) FROM campaigns cp \
                      WHERE cp.id IN (SELECT a.campaign_id FROM json_each(?1) j JOIN attempts a ON a.id = j.value)), \
                    json_group_array(json_array(id, attempt_state, latest_attempt, contact_id, phone_number, \
                        timezone, agent_id, contact_state, attempts, dnc_since, calls_24h, oldest_24h, \
                        live_elsewhere, campaign_id)) \
             FROM (SELECT a.id, a.state AS attempt_state, \
                     (SELECT MAX(b.id) FROM attempts b WHERE b.contact_id = a.contact_id) AS latest_attempt, \
                     c.id AS contact_id, a.to_number AS phone_number, \
                     CASE WHEN typeof(c.timezone) IN ('text', 'null') THEN c.timezone ELSE quote(c.timezone) END AS timezone, \
                     CASE WHEN typeof(c.agent_id) = 'integer' THEN c.agent_id END AS agent_id, \
                     c.state AS contact_state, \
                     CASE WHEN typeof(c.attempts) = 'integer' THEN c.attempts ELSE 0 END AS attempts, \
                     {}, a.campaign_id AS campaign_id \
                   FROM json_each(?1) j JOIN attempts a ON a.id = j.value \
                   JOIN contacts c ON c.id = a.contact_id \
                   LEFT JOIN attempts n ON n.to_number = a.to_number AND n.id <> a.id \
                   GROUP BY a.id)",
            crate::store::number_facts!("a.to_number", "?2"),
        )
    })
}

type Row = (
    i64,
    String,
    Option<i64>,
    i64,
    String,
    Option<String>,
    Option<i64>,
    String,
    i64,
    Option<String>,
    i64,
    Option<String>,
    i64,
    i64,
);

/// A campaign's status and rule columns (as [`RULES_KEY`] quotes them).
type CampaignRow = (i64, String, String);

fn dial_state(
    row: Row,
    dispatch_paused: &Option<String>,
    campaigns: &HashMap<i64, (String, String)>,
) -> Option<(i64, DialState)> {
    let (id, attempt_state, latest, contact_id, phone, timezone, agent_id, contact_state) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    let (attempts, dnc_since, calls_24h, oldest_24h, live) = (row.8, row.9, row.10, row.11, row.12);
    let campaign_id = row.13;
    // An attempt whose campaign is gone is gone too.
    let (status, rules_key) = campaigns.get(&campaign_id)?;
    let owns = attempt_state == "sending" && latest == Some(id);
    // The claim counted this attempt; the policy judges the contact as it
    // was before it.
    let attempts = if owns {
        (attempts - 1).max(0)
    } else {
        attempts
    };
    let state = DialState {
        contact: DueContact {
            id: contact_id,
            phone_number: phone,
            timezone,
            agent_id,
            call_context: "{}".into(),
            state: contact_state.clone(),
            attempts,
            on_dnc: dnc_since.is_some(),
            dnc_since,
            problem: None,
            calls_last_24h: calls_24h,
            oldest_call_last_24h: super::parse_time(oldest_24h.as_deref()),
            live_attempt_elsewhere: live != 0,
        },
        owns_attempt: owns,
        contact_state,
        campaign_id,
        // The CHECK constraint admits only known statuses; anything else
        // is not `active`, so nothing is sent.
        campaign: status.parse().unwrap_or(CampaignStatus::Paused),
        rules_key: rules_key.clone(),
        dispatch_paused: dispatch_paused.clone(),
    };
    Some((id, state))
}

/// The facts of an attempt and its contact that the guard compares with
/// what the claim left (as the due query reads them), for the attempt `a`
/// and its contact `c`: contact, number, timezone, agent, attempt count.
pub(super) const GUARD_FACTS: &str = "a.contact_id, a.to_number, \
     CASE WHEN typeof(c.timezone) IN ('text', 'null') THEN c.timezone ELSE quote(c.timezone) END, \
     CASE WHEN typeof(c.agent_id) = 'integer' THEN c.agent_id END, \
     CASE WHEN typeof(c.attempts) = 'integer' THEN c.attempts END";

/// Parameter ?1: attempt ids as a JSON array. One row: the dial guard's
/// stamp (NULL if its row is gone), and the attempts still `sending` whose
/// contact is still `in_progress`, each with [`GUARD_FACTS`], as a JSON
/// array of arrays. (A contact replaced by another program, through its id
/// or a unique key, fires no trigger that could move the stamp: it is seen
/// here, gone or with other facts.)
fn guard_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT (SELECT stamp FROM dial_guard WHERE id = 1), \
                (SELECT json_group_array(json_array(a.id, {GUARD_FACTS})) \
                   FROM json_each(?1) j JOIN attempts a ON a.id = j.value \
                   JOIN contacts c ON c.id = a.contact_id \
                  WHERE a.state = 'sending' AND c.state = 'in_progress' \
                    AND typeof(a.contact_id) = 'integer' AND typeof(a.to_number) = 'text')"
        )
    })
}

/// What the guard compares of a `sending` attempt and its contact with
/// what its claim left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardFacts {
    pub contact_id: i64,
    pub to_number: String,
    /// The contact's timezone column, as the due query reads it.
    pub timezone: Option<String>,
    pub agent_id: Option<i64>,
    /// The contact's attempt count (the claim's attempt counted).
    pub attempts: Option<i64>,
}

impl GuardFacts {
    /// What claim `c` left: its attempt's contact and number, and its
    /// contact as it read it, with this attempt counted.
    pub fn of(c: &super::Claimed) -> Self {
        Self {
            contact_id: c.contact_id,
            to_number: c.to_number.clone(),
            timezone: c.reading.timezone.clone(),
            agent_id: c.reading.agent_id,
            attempts: Some(c.reading.attempts + 1),
        }
    }
}

/// The dial guard at one instant (migration 12).
#[derive(Debug, Clone, Default)]
pub struct GuardReading {
    /// The stamp, `None` if its row is gone (then nothing counts as unchanged).
    pub stamp: Option<i64>,
    /// Of the attempts asked about, those still `sending` (and their
    /// contacts `in_progress`), with the
    /// contact and the number each has now (another program could rewrite
    /// a row, even replace it whole, without moving the stamp).
    pub sending: std::collections::HashMap<i64, GuardFacts>,
}

impl GuardReading {
    /// Whether attempt `attempt_id`, claimed when the stamp was `claimed`,
    /// is still `sending` and nothing a try's check reads has changed since.
    pub fn unchanged(&self, attempt_id: i64, claimed: Option<i64>) -> bool {
        claimed.is_some() && self.stamp == claimed && self.sending.contains_key(&attempt_id)
    }

    /// [`Self::unchanged`], and the attempt and its contact still as its
    /// claim left them (`expected`).
    pub fn unchanged_as(
        &self,
        attempt_id: i64,
        claimed: Option<i64>,
        expected: &GuardFacts,
    ) -> bool {
        self.unchanged(attempt_id, claimed) && self.sending.get(&attempt_id) == Some(expected)
    }
}

impl Store {
    /// The dial guard's stamp and attempt `attempt_id` (its contact and
    /// number, if it is still `sending` and its contact `in_progress`), read
    /// now on the calling thread through the guard's own connection: no
    /// hand-off to a pool connection's thread. `None` when that connection
    /// is not there or the read fails; [`Store::dial_guard`] reads the same
    /// through the pool.
    pub fn dial_guard_now(&self, attempt_id: i64) -> Option<super::guard_conn::GuardRow> {
        self.guard.as_ref()?.read(attempt_id)
    }

    /// The dial guard's stamp and which of `attempt_ids` are still
    /// `sending`, read now: the cheap part of the dial-time check.
    pub async fn dial_guard(&self, attempt_ids: &[i64]) -> sqlx::Result<GuardReading> {
        let ids = serde_json::Value::from(attempt_ids.to_vec()).to_string();
        let (stamp, json): (Option<i64>, Option<Vec<u8>>) =
            sqlx::query_as(sqlx::AssertSqlSafe(guard_sql()))
                .bind(ids)
                .fetch_one(&self.pool)
                .await?;
        type Row = (i64, i64, String, Option<String>, Option<i64>, Option<i64>);
        let sending: Vec<Row> = parse_rows(json.as_deref())?;
        Ok(GuardReading {
            stamp,
            sending: sending
                .into_iter()
                .map(
                    |(id, contact_id, to_number, timezone, agent_id, attempts)| {
                        let facts = GuardFacts {
                            contact_id,
                            to_number,
                            timezone,
                            agent_id,
                            attempts,
                        };
                        (id, facts)
                    },
                )
                .collect(),
        })
    }

    /// Campaign `id` and its rule columns quoted as [`RULES_KEY`] quotes
    /// them, read together, so that rules parsed from the row can be kept
    /// under the key of that very row.
    pub async fn campaign_with_rules_key(
        &self,
        id: i64,
    ) -> sqlx::Result<Option<(super::Campaign, String)>> {
        use sqlx::{FromRow, Row};
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "SELECT cp.*, {RULES_KEY} AS dialerd_rules_key FROM campaigns cp WHERE cp.id = ?"
            )
        });
        let Some(row) = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some((
            super::Campaign::from_row(&row)?,
            row.try_get("dialerd_rules_key")?,
        )))
    }

    /// The state at `now` of each attempt in `attempt_ids`, for the
    /// dial-time check, by attempt id; an attempt that is gone (or whose
    /// contact is) is missing.
    pub async fn dial_states(
        &self,
        attempt_ids: &[i64],
        now: DateTime<Utc>,
    ) -> sqlx::Result<HashMap<i64, DialState>> {
        let ids = serde_json::Value::from(attempt_ids.to_vec()).to_string();
        let (paused, campaigns, json): (Option<String>, Option<Vec<u8>>, Option<Vec<u8>>) =
            sqlx::query_as(sqlx::AssertSqlSafe(batch_sql()))
                .bind(ids)
                .bind(to_db_text_ms(super::contacts::day_before(now)))
                .fetch_one(&self.pool)
                .await?;
        let campaigns: HashMap<i64, (String, String)> =
            parse_rows::<CampaignRow>(campaigns.as_deref())?
                .into_iter()
                .map(|(id, status, key)| (id, (status, key)))
                .collect();
        let rows: Vec<Row> = parse_rows(json.as_deref())?;
        Ok(rows
            .into_iter()
            .filter_map(|r| dial_state(r, &paused, &campaigns))
            .collect())
    }
}
