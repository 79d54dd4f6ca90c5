//! The dial guard (migration 12) on a real SQLite file: every write that
//! changes something the dial-time check reads, made as another program
//! would make it (plain SQL, with or without foreign keys) or through the
//! store's own calls, moves the stamp (or takes the attempt out of
//! `sending`), so a try never judges a stale reading; and dialerd's own
//! writes on its normal path leave it alone, so the cheap check keeps
//! answering "unchanged".

use std::sync::Arc;

use chrono::{Duration, Utc};
use sqlx::Connection;

use super::*;
use crate::clock::{SystemClock, to_db_text_ms};
use crate::domain::{CampaignStatus, ContactState, HoldReason, Outcome};
use crate::phone::PhoneNumber;

/// The claimed contact's number.
const N: &str = "+14155550100";

/// A database with one claimed attempt (contact 10 of campaign 1, to [`N`])
/// and around it what the check reads or must ignore:
/// - campaign 1 `alpha` (the claim's) and campaign 2 `beta`;
/// - attempt 4, contact 10's first, `not_placed` an hour ago;
/// - contact 11 of campaign 1, `done`, no attempt;
/// - contact 20 of campaign 2, to [`N`] too, waiting until 2099 for a retry
///   after attempt 1, `not_placed` an hour ago;
/// - contacts 21 and 22 of campaign 2, due, other numbers;
/// - contact 23 of campaign 2, `in_progress` with attempt 2 `accepted` and
///   no outcome yet (another number);
/// - a DNC entry for another number.
struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    store: Store,
    /// The claimed attempt.
    attempt: i64,
    /// The stamp its claim noted.
    stamp: i64,
    /// The attempt's and its contact's facts as the claim left them.
    expect: GuardFacts,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path, Arc::new(SystemClock)).await.unwrap();
        let now = Utc::now();
        let hour_ago = to_db_text_ms(now - Duration::hours(1));
        let minutes_ago = to_db_text_ms(now - Duration::minutes(10));
        for sql in [
            "INSERT INTO campaigns (id, name, agent_id) VALUES (1, 'alpha', 7), (2, 'beta', 7)"
                .to_string(),
            format!(
                "INSERT INTO contacts (id, campaign_id, phone_number, state, attempts, next_attempt_at, validated) VALUES \
                 (10, 1, '{N}', 'pending', 0, NULL, 1), \
                 (11, 1, '+14155550111', 'done', 1, NULL, 1), \
                 (20, 2, '{N}', 'retry_wait', 0, '2099-01-01T00:00:00Z', 1), \
                 (21, 2, '+14155550121', 'pending', 0, NULL, 1), \
                 (22, 2, '+14155550122', 'pending', 0, NULL, 1), \
                 (23, 2, '+14155550123', 'in_progress', 1, NULL, 1)"
            ),
            format!(
                "INSERT INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, request_id, sent_at, accepted_at) VALUES \
                 (1, 20, 2, 1, 'not_placed', 7, '{N}', NULL, '{hour_ago}', NULL), \
                 (2, 23, 2, 1, 'accepted', 7, '+14155550123', 'req-2', '{minutes_ago}', '{minutes_ago}'), \
                 (4, 10, 1, 1, 'not_placed', 7, '{N}', NULL, '{hour_ago}', NULL)"
            ),
            "INSERT INTO dnc (phone_number, reason) VALUES ('+14155550998', 'asked')".to_string(),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(store.pool())
                .await
                .unwrap();
        }
        let round = store
            .claim_due(1, now, 10, |_| Some(ClaimDecision::Dial { agent_id: 7 }))
            .await
            .unwrap();
        assert_eq!(round.claimed.len(), 1, "contact 10 is claimed: {round:?}");
        let claimed = &round.claimed[0];
        assert_eq!((claimed.contact_id, claimed.to_number.as_str()), (10, N));
        let stamp = claimed
            .guard
            .as_ref()
            .expect("the claim notes the dial guard")
            .stamp;
        let f = Fixture {
            _dir: dir,
            path,
            store,
            attempt: claimed.attempt_id,
            stamp,
            expect: GuardFacts::of(claimed),
        };
        assert!(
            f.unchanged().await,
            "right after the claim, nothing has changed"
        );
        f
    }

    /// Whether a try now would take the claim's reading as still true; the
    /// read on the try's own thread (the guard's own connection) and the
    /// batched read through the pool must agree.
    async fn unchanged(&self) -> bool {
        let pooled = self
            .store
            .dial_guard(&[self.attempt])
            .await
            .unwrap()
            .unchanged_as(self.attempt, Some(self.stamp), &self.expect);
        let row = self
            .store
            .dial_guard_now(self.attempt)
            .expect("the dial guard's own connection reads");
        let now = row.stamp == Some(self.stamp) && row.attempt.as_ref() == Some(&self.expect);
        assert_eq!(
            pooled, now,
            "the two reads of the guard disagree: pool {pooled}, own connection {row:?}"
        );
        pooled
    }

    /// The guard as a try reads it now.
    async fn reading(&self) -> GuardReading {
        self.store.dial_guard(&[self.attempt]).await.unwrap()
    }

    /// `sql` (with `$A` standing for the claimed attempt's id) on a
    /// connection of dialerd's pool: foreign keys on.
    async fn sql(&self, sql: &str) {
        let sql = sql.replace("$A", &self.attempt.to_string());
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// `sql` (with `$A` standing for the claimed attempt's id) as the
    /// `sqlite3` shell runs it: its own connection, foreign keys off (its
    /// default), so no cascade does the triggers' work.
    async fn sql_outside(&self, sql: &str) {
        let sql = sql.replace("$A", &self.attempt.to_string());
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&self.path)
            .foreign_keys(false);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
    }

    /// Asserts a try now reads the whole state again, after `what`.
    async fn assert_read_again(&self, what: &str) {
        let r = self.reading().await;
        assert!(
            !self.unchanged().await,
            "after {what}, a try on its own thread still takes the claim's reading as true"
        );
        assert!(
            !r.unchanged_as(self.attempt, Some(self.stamp), &self.expect),
            "after {what}, a try still takes the claim's reading as true \
             (stamp {:?}, claimed at {}; attempt {} sending: {})",
            r.stamp,
            self.stamp,
            self.attempt,
            r.sending.contains_key(&self.attempt)
        );
    }

    /// Asserts a try now still takes the claim's reading as true, after `what`.
    async fn assert_still_unchanged(&self, what: &str) {
        let r = self.reading().await;
        assert!(
            self.unchanged().await,
            "after {what}, a try on its own thread would read the whole state again"
        );
        assert!(
            r.unchanged_as(self.attempt, Some(self.stamp), &self.expect),
            "after {what}, every try would read the whole state again \
             (stamp {:?}, claimed at {}; attempt {} sending: {})",
            r.stamp,
            self.stamp,
            self.attempt,
            r.sending.contains_key(&self.attempt)
        );
    }
}

fn phone(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n, None).unwrap()
}

/// How a write reaches the database.
#[derive(Clone, Copy)]
enum Via {
    /// dialerd's own pool (foreign keys on: deletes cascade).
    Pool,
    /// Another program's connection (foreign keys off).
    Outside,
}

/// Runs each `(what, via, sql)` on a fresh fixture and asserts that a try
/// afterwards reads the whole state again.
async fn each_moves_the_guard(cases: &[(&str, Via, &str)]) {
    for (what, via, sql) in cases {
        let f = Fixture::new().await;
        match via {
            Via::Pool => f.sql(sql).await,
            Via::Outside => f.sql_outside(sql).await,
        }
        let sql = sql.replace("$A", &f.attempt.to_string());
        f.assert_read_again(&format!("{what} ({sql})")).await;
    }
}

#[tokio::test]
async fn any_change_to_the_dnc_list_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the claimed number added to the DNC list",
            Via::Pool,
            "INSERT INTO dnc (phone_number, reason) VALUES ('+14155550100', 'asked')",
        ),
        (
            "the claimed number added to the DNC list by another program",
            Via::Outside,
            "INSERT INTO dnc (phone_number, reason) VALUES ('+14155550100', 'asked')",
        ),
        (
            "a DNC entry rewritten to the claimed number",
            Via::Outside,
            "UPDATE dnc SET phone_number = '+14155550100' WHERE phone_number = '+14155550998'",
        ),
        (
            "a DNC entry's reason edited",
            Via::Pool,
            "UPDATE dnc SET reason = 'asked twice' WHERE phone_number = '+14155550998'",
        ),
        (
            "a DNC entry removed",
            Via::Outside,
            "DELETE FROM dnc WHERE phone_number = '+14155550998'",
        ),
        (
            "the claimed number put on the list by REPLACE",
            Via::Outside,
            "REPLACE INTO dnc (phone_number, reason) VALUES ('+14155550100', 'asked')",
        ),
    ])
    .await;
    let f = Fixture::new().await;
    f.store.dnc_add(&[phone(N)], Some("asked")).await.unwrap();
    f.assert_read_again("Store::dnc_add of the claimed number")
        .await;
    let f = Fixture::new().await;
    f.store.dnc_remove(&[phone("+14155550998")]).await.unwrap();
    f.assert_read_again("Store::dnc_remove of another number")
        .await;
}

#[tokio::test]
async fn pausing_dispatching_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "dispatching paused",
            Via::Outside,
            "UPDATE daemon SET dispatch_paused = 'operator: maintenance' WHERE id = 1",
        ),
        (
            "the daemon row replaced with a paused one",
            Via::Outside,
            "INSERT OR REPLACE INTO daemon (id, dispatch_paused) VALUES (1, 'operator: maintenance')",
        ),
        (
            "the daemon row deleted",
            Via::Outside,
            "DELETE FROM daemon",
        ),
    ])
    .await;
    let f = Fixture::new().await;
    f.store
        .pause_dispatch("the API refused the key")
        .await
        .unwrap();
    f.assert_read_again("Store::pause_dispatch").await;
    let f = Fixture::new().await;
    f.store
        .pause_dispatch_for_key("the API refused the key", Some("fp"))
        .await
        .unwrap();
    f.assert_read_again("Store::pause_dispatch_for_key").await;
}

#[tokio::test]
async fn pausing_cancelling_or_deleting_the_campaign_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the campaign paused",
            Via::Outside,
            "UPDATE campaigns SET status = 'paused' WHERE id = 1",
        ),
        (
            "the campaign cancelled",
            Via::Outside,
            "UPDATE campaigns SET status = 'cancelled' WHERE id = 1",
        ),
        (
            "the campaign completed",
            Via::Outside,
            "UPDATE campaigns SET status = 'completed' WHERE id = 1",
        ),
        (
            "the campaign deleted (its contacts and attempts cascade)",
            Via::Pool,
            "DELETE FROM campaigns WHERE id = 1",
        ),
        (
            "the campaign deleted with foreign keys off (nothing cascades)",
            Via::Outside,
            "DELETE FROM campaigns WHERE id = 1",
        ),
        (
            "the campaign's id rewritten with foreign keys off",
            Via::Outside,
            "UPDATE campaigns SET id = 9 WHERE id = 1",
        ),
    ])
    .await;
    for status in [
        CampaignStatus::Paused,
        CampaignStatus::Cancelled,
        CampaignStatus::Completed,
    ] {
        let f = Fixture::new().await;
        f.store
            .set_campaign_status(1, status, Some("operator"))
            .await
            .unwrap();
        f.assert_read_again(&format!("Store::set_campaign_status({status})"))
            .await;
    }
}

#[tokio::test]
async fn changing_any_rule_column_of_the_campaign_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        ("agent_id changed", Via::Outside, "UPDATE campaigns SET agent_id = 8 WHERE id = 1"),
        ("agent_id cleared", Via::Outside, "UPDATE campaigns SET agent_id = NULL WHERE id = 1"),
        ("schedule changed", Via::Outside, "UPDATE campaigns SET schedule = '0 0 9 * * *' WHERE id = 1"),
        ("timezone changed", Via::Outside, "UPDATE campaigns SET timezone = 'America/New_York' WHERE id = 1"),
        ("window_start changed", Via::Outside, "UPDATE campaigns SET window_start = '10:00' WHERE id = 1"),
        ("window_end changed", Via::Outside, "UPDATE campaigns SET window_end = '11:00' WHERE id = 1"),
        ("max_attempts changed", Via::Outside, "UPDATE campaigns SET max_attempts = 1 WHERE id = 1"),
        ("retry_delay_secs changed", Via::Outside, "UPDATE campaigns SET retry_delay_secs = 60 WHERE id = 1"),
        ("retry_outcomes changed", Via::Outside, "UPDATE campaigns SET retry_outcomes = 'busy' WHERE id = 1"),
        ("retry_delays set", Via::Outside, "UPDATE campaigns SET retry_delays = '{\"busy\": 60}' WHERE id = 1"),
        ("region set", Via::Outside, "UPDATE campaigns SET region = 'GB' WHERE id = 1"),
        (
            "every rule column rewritten by dialerd's pool",
            Via::Pool,
            "UPDATE campaigns SET window_start = '08:00', window_end = '09:00', max_attempts = 2 WHERE id = 1",
        ),
    ])
    .await;
}

#[tokio::test]
async fn editing_or_deleting_the_claimed_contact_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the contact cancelled",
            Via::Outside,
            "UPDATE contacts SET state = 'cancelled' WHERE id = 10",
        ),
        (
            "the contact marked done",
            Via::Pool,
            "UPDATE contacts SET state = 'done' WHERE id = 10",
        ),
        (
            "the contact's timezone changed",
            Via::Outside,
            "UPDATE contacts SET timezone = 'America/New_York' WHERE id = 10",
        ),
        (
            "the contact's agent_id changed",
            Via::Outside,
            "UPDATE contacts SET agent_id = 8 WHERE id = 10",
        ),
        (
            "the contact's attempts raised",
            Via::Outside,
            "UPDATE contacts SET attempts = 3 WHERE id = 10",
        ),
        (
            "the contact's attempts lowered",
            Via::Outside,
            "UPDATE contacts SET attempts = 0 WHERE id = 10",
        ),
        (
            "the contact deleted (its attempts cascade)",
            Via::Pool,
            "DELETE FROM contacts WHERE id = 10",
        ),
        (
            "the contact deleted with foreign keys off (its attempt stays sending)",
            Via::Outside,
            "DELETE FROM contacts WHERE id = 10",
        ),
        (
            "the contact's id rewritten with foreign keys off",
            Via::Outside,
            "UPDATE contacts SET id = 99 WHERE id = 10",
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_new_attempt_to_the_number_or_of_the_contact_makes_a_claimed_try_read_everything_again() {
    let now = to_db_text_ms(Utc::now());
    each_moves_the_guard(&[
        (
            "an attempt to the same number inserted for another contact in another campaign",
            Via::Outside,
            &format!(
                "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                 VALUES (20, 2, 2, 'accepted', 7, '{N}', '{now}')"
            ),
        ),
        (
            "an attempt of the claimed contact inserted, to another number",
            Via::Outside,
            &format!(
                "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                 VALUES (10, 1, 9, 'not_placed', 7, '+14155550177', '{now}')"
            ),
        ),
        (
            "an attempt of the claimed contact inserted, to its number, by dialerd's pool",
            Via::Pool,
            &format!(
                "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
                 VALUES (10, 1, 9, 'sending', 7, '{N}', '{now}')"
            ),
        ),
    ])
    .await;
}

/// The reconciler's late finding: a call declared not placed was placed
/// after all, so the number's cap (and live attempt) may now forbid this one.
#[tokio::test]
async fn another_attempt_to_the_number_found_placed_late_or_rewritten_makes_a_claimed_try_read_everything_again()
 {
    let now = to_db_text_ms(Utc::now());
    each_moves_the_guard(&[
        (
            "the number's earlier not_placed attempt found accepted",
            Via::Outside,
            &format!(
                "UPDATE attempts SET state = 'accepted', request_id = 'req-late', accepted_at = '{now}' WHERE id = 1"
            ),
        ),
        (
            "the number's earlier attempt given an outcome",
            Via::Outside,
            "UPDATE attempts SET outcome = 'completed' WHERE id = 1",
        ),
        (
            "the number's earlier attempt's send time moved",
            Via::Outside,
            &format!("UPDATE attempts SET sent_at = '{now}' WHERE id = 1"),
        ),
        (
            "another number's attempt rewritten to the claimed number",
            Via::Outside,
            &format!("UPDATE attempts SET to_number = '{N}' WHERE id = 2"),
        ),
        (
            "the number's earlier attempt rewritten to another number",
            Via::Outside,
            "UPDATE attempts SET to_number = '+14155550177' WHERE id = 1",
        ),
        (
            "the claimed contact's earlier attempt renumbered above the claimed one",
            Via::Outside,
            "UPDATE attempts SET id = 999 WHERE id = 4",
        ),
    ])
    .await;
}

/// The claimed attempt leaving `sending` is caught by the try's own read of
/// its state, not by the stamp: the stamp stays, the attempt drops out of
/// the `sending` set, and the try reads everything again.
#[tokio::test]
async fn the_claimed_attempt_leaving_sending_is_caught_by_its_own_state_not_the_stamp() {
    for (what, sql) in [
        (
            "the attempt ended not_placed by SQL",
            "UPDATE attempts SET state = 'not_placed' WHERE id = $A",
        ),
        (
            "the attempt ended uncertain by SQL",
            "UPDATE attempts SET state = 'uncertain' WHERE id = $A",
        ),
        ("the attempt deleted", "DELETE FROM attempts WHERE id = $A"),
    ] {
        let f = Fixture::new().await;
        f.sql_outside(sql).await;
        let r = f.reading().await;
        assert_eq!(
            r.stamp,
            Some(f.stamp),
            "after {what}, the stamp is left alone (the try's own read catches it)"
        );
        assert!(
            !r.sending.contains_key(&f.attempt),
            "after {what}, the attempt is not in the sending set: {:?}",
            r.sending
        );
        f.assert_read_again(what).await;
    }
}

#[tokio::test]
async fn rewriting_the_claimed_attempts_identity_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the attempt's to_number changed",
            Via::Outside,
            "UPDATE attempts SET to_number = '+14155550177' WHERE id = $A",
        ),
        (
            "the attempt's contact_id changed",
            Via::Pool,
            "UPDATE attempts SET contact_id = 11 WHERE id = $A",
        ),
        (
            "the attempt's campaign_id changed",
            Via::Pool,
            "UPDATE attempts SET campaign_id = 2 WHERE id = $A",
        ),
        (
            "the attempt's id changed",
            Via::Outside,
            "UPDATE attempts SET id = 999 WHERE id = $A",
        ),
    ])
    .await;
}

/// Claims of other contacts, and the results of their requests, are
/// dialerd's normal path: were they to move the stamp, every try would
/// read the whole state and the guard would save nothing.
#[tokio::test]
async fn claiming_other_contacts_and_recording_their_results_leave_the_guard_alone() {
    let f = Fixture::new().await;
    let now = Utc::now();
    let round = f
        .store
        .claim_due(2, now, 10, |_| Some(ClaimDecision::Dial { agent_id: 7 }))
        .await
        .unwrap();
    let ids: Vec<(i64, i64)> = round
        .claimed
        .iter()
        .map(|c| (c.contact_id, c.attempt_id))
        .collect();
    assert_eq!(
        ids.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![21, 22],
        "contacts 21 and 22 are claimed"
    );
    f.assert_still_unchanged("claiming contacts 21 and 22 of another campaign")
        .await;
    let result = |i: usize, result: SendResult| AttemptResult {
        attempt_id: ids[i].1,
        contact_id: ids[i].0,
        tries: 1,
        first_try_at: Some(now),
        last_try_at: Some(now),
        result,
    };
    f.store
        .record_results(&[result(
            0,
            SendResult::Accepted {
                request_id: "req-21".into(),
                raw_response: "{}".into(),
            },
        )])
        .await
        .unwrap();
    f.assert_still_unchanged("record_results: another attempt accepted")
        .await;
    f.store
        .record_results(&[result(
            1,
            SendResult::Refused {
                error: "not sent: campaign paused".into(),
                release: Release::HandBack {
                    due: None,
                    reason: HoldReason::Paused,
                },
            },
        )])
        .await
        .unwrap();
    f.assert_still_unchanged("record_results: another attempt refused (not_placed)")
        .await;
    // Contact 22 is pending again: claimed a second time, then not sent.
    let round = f
        .store
        .claim_due(2, now, 10, |_| Some(ClaimDecision::Dial { agent_id: 7 }))
        .await
        .unwrap();
    assert_eq!(round.claimed.len(), 1, "{round:?}");
    f.assert_still_unchanged("claiming contact 22 again").await;
    let again = &round.claimed[0];
    f.store
        .record_results(&[AttemptResult {
            attempt_id: again.attempt_id,
            contact_id: again.contact_id,
            tries: 3,
            first_try_at: Some(now),
            last_try_at: Some(now),
            result: SendResult::NotSent {
                error: "not sent after 3 tries".into(),
                retry_at: now,
            },
        }])
        .await
        .unwrap();
    f.assert_still_unchanged("record_results: another attempt not sent (not_placed)")
        .await;
}

/// The reconciler's work on calls of other numbers (statuses, logs seen,
/// final outcomes moving their contacts on) is dialerd's normal path too.
#[tokio::test]
async fn a_reconciler_outcome_on_another_numbers_accepted_attempt_leaves_the_guard_alone() {
    let f = Fixture::new().await;
    f.store
        .note_provider_status(2, "in-progress", Some(5002))
        .await
        .unwrap();
    f.assert_still_unchanged("note_provider_status on attempt 2")
        .await;
    f.store.mark_logs_seen(&[2], Utc::now()).await.unwrap();
    f.assert_still_unchanged("mark_logs_seen on attempt 2")
        .await;
    f.store
        .record_outcomes(&[FinalOutcome {
            attempt_id: 2,
            contact_id: 23,
            log: FinalLog {
                outcome: Outcome::Completed,
                provider_status: Some("completed".into()),
                call_log_id: Some(5002),
                duration_secs: Some(42.0),
                transcript: Some("hello".into()),
                recording_url: None,
                cost: Some(0.12),
                raw_log: Some("{}".into()),
            },
            next: ContactNext::Final(ContactState::Done),
            opt_out: None,
        }])
        .await
        .unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM contacts WHERE id = 23")
        .fetch_one(f.store.pool())
        .await
        .unwrap();
    assert_eq!(state, "done", "the outcome moved contact 23 on");
    f.assert_still_unchanged("record_outcomes: attempt 2 completed, contact 23 done")
        .await;
}

#[tokio::test]
async fn editing_contacts_without_a_sending_attempt_leaves_the_guard_alone() {
    let f = Fixture::new().await;
    for (what, sql) in [
        (
            "contact 11 (no attempt) cancelled, re-zoned, re-agented",
            "UPDATE contacts SET state = 'cancelled', timezone = 'America/New_York', agent_id = 8, attempts = 0 WHERE id = 11",
        ),
        (
            "contact 20 (the same number, another campaign, no sending attempt) cancelled",
            "UPDATE contacts SET state = 'cancelled', attempts = 2 WHERE id = 20",
        ),
        (
            "contact 21 (due) given a timezone",
            "UPDATE contacts SET timezone = 'Europe/London' WHERE id = 21",
        ),
        ("contact 22 deleted", "DELETE FROM contacts WHERE id = 22"),
        (
            "the claimed contact's call context edited",
            "UPDATE contacts SET call_context = '{\"note\": 1}', updated_at = '2026-01-01T00:00:00Z' WHERE id = 10",
        ),
    ] {
        f.sql_outside(sql).await;
        f.assert_still_unchanged(&format!("{what} ({sql})")).await;
    }
}

#[tokio::test]
async fn non_rule_columns_of_the_campaign_and_the_heartbeat_leave_the_guard_alone() {
    let f = Fixture::new().await;
    for (what, sql) in [
        (
            "the campaign's status_reason",
            "UPDATE campaigns SET status_reason = 'note' WHERE id = 1",
        ),
        (
            "the campaign's name and updated_at",
            "UPDATE campaigns SET name = 'alpha2', updated_at = '2026-01-01T00:00:00Z' WHERE id = 1",
        ),
        (
            "the campaign's live-call cap",
            "UPDATE campaigns SET max_live_calls = 4 WHERE id = 1",
        ),
    ] {
        f.sql_outside(sql).await;
        f.assert_still_unchanged(&format!("{what} ({sql})")).await;
    }
    f.store
        .record_sweep(1, Some(Utc::now() + Duration::minutes(5)))
        .await
        .unwrap();
    f.assert_still_unchanged("Store::record_sweep").await;
    f.store.daemon_started(1234, "host").await.unwrap();
    f.assert_still_unchanged("Store::daemon_started").await;
    f.store.heartbeat("dispatching").await.unwrap();
    f.assert_still_unchanged("Store::heartbeat").await;
    assert!(!f.store.resume_dispatch().await.unwrap());
    f.assert_still_unchanged("Store::resume_dispatch with nothing paused")
        .await;
}

// `INSERT OR REPLACE` (and `REPLACE`) deletes the row it replaces (by its
// id or any UNIQUE key) without firing delete triggers (SQLite fires them
// only with `recursive_triggers` on) and, with foreign keys off (the
// `sqlite3` shell's default), without cascading: the insert is the only
// event. A campaign's insert moves the stamp; a contact's does when the
// contact has an attempt `sending`, and a contact replaced under a new id
// leaves its attempt's contact gone, which the try's guard read sees (it
// joins the contact, `in_progress`); an attempt replaced whole is seen by
// the try's read of its own attempt (state, contact and number).

#[tokio::test]
async fn replacing_the_campaign_row_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the campaign row replaced by a paused one, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO campaigns (id, name, agent_id, status) VALUES (1, 'alpha', 7, 'paused')",
        ),
        (
            "the campaign row replaced through its name by a new id, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO campaigns (id, name, agent_id, status) VALUES (5, 'alpha', 7, 'active')",
        ),
    ])
    .await;
}

#[tokio::test]
async fn replacing_the_claimed_contacts_row_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the claimed contact replaced by a cancelled one, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO contacts (id, campaign_id, phone_number, state, validated) \
             VALUES (10, 1, '+14155550100', 'cancelled', 1)",
        ),
        (
            "the claimed contact replaced, still in progress, with another timezone, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO contacts (id, campaign_id, phone_number, state, attempts, timezone, validated) \
             VALUES (10, 1, '+14155550100', 'in_progress', 1, 'Asia/Tokyo', 1)",
        ),
        (
            "the claimed contact replaced, still in progress, with another agent, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO contacts (id, campaign_id, phone_number, state, attempts, agent_id, validated) \
             VALUES (10, 1, '+14155550100', 'in_progress', 1, 99, 1)",
        ),
        (
            "the claimed contact replaced through (number, campaign) by a new id, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO contacts (id, campaign_id, phone_number, state, validated) \
             VALUES (77, 1, '+14155550100', 'pending', 1)",
        ),
    ])
    .await;
}

#[tokio::test]
async fn replacing_the_claimed_attempts_row_makes_a_claimed_try_read_everything_again() {
    each_moves_the_guard(&[
        (
            "the claimed attempt replaced by one to another number, foreign keys off",
            Via::Outside,
            "INSERT OR REPLACE INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
             VALUES ($A, 10, 1, 2, 'sending', 7, '+14155550177', '2026-01-01T00:00:00Z')",
        ),
        (
            "the claimed attempt replaced by one to another number, foreign keys on",
            Via::Pool,
            "INSERT OR REPLACE INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
             VALUES ($A, 10, 1, 2, 'sending', 7, '+14155550177', '2026-01-01T00:00:00Z')",
        ),
    ])
    .await;
}
