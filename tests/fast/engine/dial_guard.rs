//! The dial guard (migration 12) through the engine, on a manual clock and a
//! scripted API on loopback: claims whose campaign's rules are already
//! parsed (so a try may judge on the claim's reading) are held at a 429
//! Retry-After gate; ONE change is made per run, on a fresh world, so that a
//! single trigger missing from the migration lets exactly one request
//! through and fails exactly one test. A control campaign, untouched, is
//! called once in the same run: the fast path still sends.

use std::time::Duration;

use super::recording_api::{RecordingApi, spawn_sweep, too_many, until};
use crate::harness::world::*;
use dialerd::clock::to_db_text_ms;
use dialerd::domain::CampaignStatus;
use dialerd::phone::PhoneNumber;

/// The Retry-After the gate's first request is answered with (seconds):
/// within the default `dispatch.max_claim_wait_secs` (5), so the held
/// claims are tried, not released, when it opens.
const RETRY_AFTER: u64 = 4;

/// An API that answers the first request to `gate` with a 429
/// Retry-After and accepts every other one.
async fn gate_api(gate: &str) -> RecordingApi {
    let gate = gate.to_string();
    RecordingApi::start(Box::new(move |number, before| {
        (number == gate && !before.contains(&gate)).then(|| too_many(RETRY_AFTER))
    }))
    .await
}

async fn sending(w: &World) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE state = 'sending'")
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

/// The one change made while the claims wait at the gate.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// The target's number goes on the DNC list (`Store::dnc_add`).
    NumberOnDnc,
    /// The target campaign is paused (`Store::set_campaign_status`).
    CampaignPaused,
    /// The target campaign is cancelled (`Store::set_campaign_status`).
    CampaignCancelled,
    /// Dispatching is paused for everyone (`Store::pause_dispatch`).
    DispatchPaused,
    /// The target contact is cancelled by plain SQL.
    ContactCancelledBySql,
    /// The target campaign's `window_end` is set, by plain SQL, to the
    /// current minute: its window is closed when the gate opens.
    WindowEndSetToNow,
    /// The target number's earlier attempt in another campaign, declared
    /// not placed, is found placed after all (plain SQL, as the reconciler's
    /// late finding), with the per-number cap at 1.
    OtherAttemptFoundPlaced,
}

/// What became of the target after the gate opened.
struct Target {
    state: String,
    attempts: i64,
    hold_reason: Option<String>,
    next_attempt_at: Option<String>,
    /// Its attempt: state and error.
    attempt: (String, String),
}

/// The world of one run: January (London on UTC), the clock at 12:00:00,
/// every campaign open all day, the per-number cap at 1.
struct Run {
    w: World,
    api: RecordingApi,
    gate: i64,
    target: i64,
    control: i64,
    /// The target number's earlier `not_placed` attempt (another campaign).
    earlier: i64,
}

const GATE: usize = 0;
const TARGET: usize = 1;
const CONTROL: usize = 2;

impl Run {
    /// Creates the campaigns and warms the dial-time rules of `target` and
    /// `control` with one call each (the rules are cached by the first try's
    /// full read), so their next tries may judge on the claim's reading.
    async fn new(target_window: &str, start: &str) -> Run {
        let w = World::manual_at(at(start), &[], |cfg| cfg.max_calls_per_number_per_day = 1).await;
        let api = gate_api(&uk(GATE)).await;
        api.serve(&w);
        let spec = |name: &str, window: &str| CampaignSpec {
            name: name.into(),
            window: window.into(),
            ..Default::default()
        };
        let gate = w.campaign(spec("gate", "00:00-24:00")).await;
        let target = w.campaign(spec("target", target_window)).await;
        let control = w.campaign(spec("control", "00:00-24:00")).await;
        let other = w.campaign(spec("other", "00:00-24:00")).await;
        for (c, warm) in [(target, 10), (control, 11)] {
            w.add_contacts(c, &[uk(warm)]).await;
            let report = w.sweep(c).await;
            assert_eq!(report.accepted, 1, "warm-up of campaign {c}: {report:?}");
            assert_eq!(api.for_number(&uk(warm)), 1);
        }
        // The target number's earlier attempt in `other`: not placed an hour
        // ago; its contact waits for a retry far ahead (never swept here).
        let hour_ago = to_db_text_ms(w.clock.now() - chrono::Duration::hours(1));
        let contact: i64 = sqlx::query_scalar(
            "INSERT INTO contacts (campaign_id, phone_number, state, next_attempt_at, validated) \
             VALUES (?, ?, 'retry_wait', '2099-01-01T00:00:00Z', 1) RETURNING id",
        )
        .bind(other)
        .bind(uk(TARGET))
        .fetch_one(w.store.pool())
        .await
        .unwrap();
        let earlier: i64 = sqlx::query_scalar(
            "INSERT INTO attempts (contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at, error) \
             VALUES (?, ?, 1, 'not_placed', ?, ?, ?, 'declared not placed') RETURNING id",
        )
        .bind(contact)
        .bind(other)
        .bind(AGENT)
        .bind(uk(TARGET))
        .bind(hour_ago)
        .fetch_one(w.store.pool())
        .await
        .unwrap();
        w.add_contacts(gate, &[uk(GATE)]).await;
        w.add_contacts(target, &[uk(TARGET)]).await;
        w.add_contacts(control, &[uk(CONTROL)]).await;
        Run {
            w,
            api,
            gate,
            target,
            control,
            earlier,
        }
    }

    /// Holds the gate's, the target's and the control's claims at the
    /// Retry-After gate, runs `during`, opens the gate by advancing the
    /// clock, and waits for every sweep to end.
    async fn hold_then_open<F: std::future::Future<Output = ()>>(
        &self,
        during: impl FnOnce() -> F,
    ) {
        let w = &self.w;
        let first = spawn_sweep(w, self.gate);
        until("the gate closes", || async {
            w.engine.dispatch_held_until().is_some()
        })
        .await;
        let others = [spawn_sweep(w, self.target), spawn_sweep(w, self.control)];
        until(
            "the target and the control are claimed and waiting",
            || async { sending(w).await == 3 },
        )
        .await;
        assert_eq!(self.api.for_number(&uk(TARGET)), 0);
        assert_eq!(self.api.for_number(&uk(CONTROL)), 0);
        during().await;
        w.clock.manual().advance(Duration::from_secs(RETRY_AFTER));
        first.await.unwrap();
        for s in others {
            s.await.unwrap();
        }
    }

    /// The target contact (of the target campaign) and its attempt.
    async fn target(&self) -> Target {
        let (state, attempts, hold_reason, next_attempt_at): (
            String,
            i64,
            Option<String>,
            Option<String>,
        ) = sqlx::query_as(
            "SELECT state, attempts, hold_reason, next_attempt_at FROM contacts \
                 WHERE campaign_id = ? AND phone_number = ?",
        )
        .bind(self.target)
        .bind(uk(TARGET))
        .fetch_one(self.w.store.pool())
        .await
        .unwrap();
        let attempt: (String, Option<String>) = sqlx::query_as(
            "SELECT state, error FROM attempts WHERE campaign_id = ? AND to_number = ?",
        )
        .bind(self.target)
        .bind(uk(TARGET))
        .fetch_one(self.w.store.pool())
        .await
        .unwrap();
        Target {
            state,
            attempts,
            hold_reason,
            next_attempt_at,
            attempt: (attempt.0, attempt.1.unwrap_or_default()),
        }
    }

    /// Makes `change`.
    async fn make(&self, change: Change) {
        let w = &self.w;
        let target = PhoneNumber::parse(&uk(TARGET), None).unwrap();
        match change {
            Change::NumberOnDnc => {
                w.store.dnc_add(&[target], Some("asked")).await.unwrap();
            }
            Change::CampaignPaused => {
                w.store
                    .set_campaign_status(self.target, CampaignStatus::Paused, Some("operator"))
                    .await
                    .unwrap();
            }
            Change::CampaignCancelled => {
                w.store
                    .set_campaign_status(self.target, CampaignStatus::Cancelled, Some("operator"))
                    .await
                    .unwrap();
            }
            Change::DispatchPaused => w.store.pause_dispatch("operator").await.unwrap(),
            Change::ContactCancelledBySql => {
                w.sql(&format!(
                    "UPDATE contacts SET state = 'cancelled' WHERE campaign_id = {} AND phone_number = '{}'",
                    self.target,
                    uk(TARGET)
                ))
                .await
            }
            Change::WindowEndSetToNow => {
                let minute = w.clock.now().format("%H:%M");
                w.sql(&format!(
                    "UPDATE campaigns SET window_end = '{minute}' WHERE id = {}",
                    self.target
                ))
                .await
            }
            Change::OtherAttemptFoundPlaced => {
                let now = to_db_text_ms(w.clock.now());
                w.sql(&format!(
                    "UPDATE attempts SET state = 'accepted', outcome = 'completed', request_id = 'late-1', \
                     accepted_at = '{now}', finished_at = '{now}' WHERE id = {}",
                    self.earlier
                ))
                .await
            }
        }
    }
}

/// One run: `change` made during the hold; zero requests to the target
/// number, its attempt `not_placed` with `reason`, its contact `state`
/// (with its attempt not spent, unless it no longer owns it); the control
/// called once (unless dispatching is paused for everyone).
async fn one_change_stops_the_request(change: Change, reason: &str, state: &str) -> Target {
    let run = Run::new("00:00-24:00", "2026-01-15T12:00:00Z").await;
    run.hold_then_open(|| run.make(change)).await;
    let api = &run.api;
    assert_eq!(
        api.for_number(&uk(TARGET)),
        0,
        "{change:?}: the target number was called"
    );
    let t = run.target().await;
    assert_eq!(t.attempt.0, "not_placed", "{change:?}: {:?}", t.attempt);
    assert!(
        t.attempt.1.contains(reason),
        "{change:?}: the attempt's error {:?} does not say {reason:?}",
        t.attempt.1
    );
    assert_eq!(t.state, state, "{change:?}: the target contact's state");
    // A contact that no longer owns the attempt is left as it was written
    // (its count included); every other one gets its attempt back.
    if !matches!(change, Change::ContactCancelledBySql) {
        assert_eq!(t.attempts, 0, "{change:?}: the attempt was spent");
    }
    let everyone = matches!(change, Change::DispatchPaused);
    let (control, gate) = if everyone { (0, 1) } else { (1, 2) };
    assert_eq!(
        api.for_number(&uk(CONTROL)),
        control,
        "{change:?}: calls to the untouched control"
    );
    assert_eq!(
        api.for_number(&uk(GATE)),
        gate,
        "{change:?}: calls to the gate's number (the 429'd one retried)"
    );
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_added_to_the_dnc_list_while_its_claim_waits_is_never_called() {
    within(async {
        let t = one_change_stops_the_request(
            Change::NumberOnDnc,
            "not sent: on the DNC list since",
            "suppressed",
        )
        .await;
        assert_eq!(t.hold_reason.as_deref(), Some("dnc"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_paused_while_its_claim_waits_is_not_called() {
    within(async {
        let t = one_change_stops_the_request(
            Change::CampaignPaused,
            "not sent: campaign paused",
            "pending",
        )
        .await;
        assert_eq!(t.hold_reason.as_deref(), Some("paused"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_cancelled_while_its_claim_waits_is_not_called() {
    within(async {
        one_change_stops_the_request(
            Change::CampaignCancelled,
            "not sent: campaign cancelled",
            "cancelled",
        )
        .await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatching_paused_while_claims_wait_stops_every_request() {
    within(async {
        let t = one_change_stops_the_request(
            Change::DispatchPaused,
            "not sent: dispatching is paused",
            "pending",
        )
        .await;
        assert_eq!(t.hold_reason.as_deref(), Some("paused"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contact_cancelled_by_sql_while_its_claim_waits_is_not_called() {
    within(async {
        one_change_stops_the_request(
            Change::ContactCancelledBySql,
            "not sent: the contact (cancelled) no longer owns this attempt",
            "cancelled",
        )
        .await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_window_closed_by_editing_the_campaign_while_its_claim_waits_stops_the_request() {
    within(async {
        let t = one_change_stops_the_request(
            Change::WindowEndSetToNow,
            "not sent: outside calling hours: the campaign window 00:00-12:00",
            "pending",
        )
        .await;
        assert_eq!(t.hold_reason.as_deref(), Some("window"));
        assert_eq!(t.next_attempt_at.as_deref(), Some("2026-01-16T00:00:00Z"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_late_finding_that_the_numbers_other_call_was_placed_holds_the_waiting_claim_at_the_cap()
{
    within(async {
        let t = one_change_stops_the_request(
            Change::OtherAttemptFoundPlaced,
            "not sent: 1 calls to this number in the last 24 h (its limit is 1",
            "pending",
        )
        .await;
        assert_eq!(t.hold_reason.as_deref(), Some("cap"));
    })
    .await
}

/// No write at all: the clock passes the window's end while the claim
/// waits. The stamp has not moved, so the try judges the claim's reading,
/// with the time of the try: the window is closed, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_window_closing_while_a_claim_waits_stops_its_request_without_any_write() {
    within(async {
        // The window closes at 12:00:00, the gate opens at 12:00:01.
        let run = Run::new("00:00-12:00", "2026-01-15T11:59:57Z").await;
        let stamp = || async {
            sqlx::query_scalar::<_, i64>("SELECT stamp FROM dial_guard")
                .fetch_one(run.w.store.pool())
                .await
                .unwrap()
        };
        let before = stamp().await;
        run.hold_then_open(|| async {}).await;
        assert_eq!(
            stamp().await,
            before,
            "nothing moved the dial guard: the claim's reading was judged"
        );
        assert_eq!(run.api.for_number(&uk(TARGET)), 0, "the target was called");
        assert_eq!(run.api.for_number(&uk(CONTROL)), 1, "the control is called");
        let t = run.target().await;
        assert_eq!(t.attempt.0, "not_placed");
        assert!(
            t.attempt
                .1
                .contains("not sent: outside calling hours: the campaign window 00:00-12:00"),
            "{:?}",
            t.attempt.1
        );
        assert_eq!((t.state.as_str(), t.attempts), ("pending", 0));
        assert_eq!(t.hold_reason.as_deref(), Some("window"));
        assert_eq!(t.next_attempt_at.as_deref(), Some("2026-01-16T00:00:00Z"));
    })
    .await
}
