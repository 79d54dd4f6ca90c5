//! The calling policy as the engine applies it through the store: calling
//! windows in the contact's own zone, the per-campaign live-call cap, the
//! validation of rows other programs insert, and the global rate limit.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use dialerd::phone::zones::number_zones;

use crate::harness::world::*;

fn journal_numbers(w: &World) -> Vec<String> {
    w.journal()
        .into_iter()
        .filter_map(|e| e.to_number)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_window_dials_nobody_and_defers_to_the_opening() {
    within(async {
        // 02:00 UTC on 1 July is 03:00 in London (BST, UTC+1).
        let w = World::manual_at(at("2026-07-01T02:00:00Z"), &[], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                timezone: "Europe/London".into(),
                window: "09:00-20:00".into(),
                ..Default::default()
            })
            .await;
        let numbers = w.add_uk_contacts(c, 5).await;
        let report = w.sweep(c).await;
        assert_eq!(report.deferred, 5);
        assert!(
            w.journal().is_empty(),
            "dialed at 03:00 local: {:?}",
            w.journal()
        );
        for c in w.contacts().await {
            assert_eq!(c.state, "pending");
            // The next 09:00 in London, in UTC.
            assert_eq!(
                c.next_attempt_at.as_deref(),
                Some("2026-07-01T08:00:00Z"),
                "{}",
                c.phone_number
            );
        }
        w.clock.manual().set(at("2026-07-01T07:59:59Z"));
        w.sweep(c).await;
        assert!(w.journal().is_empty(), "dialed before the window opened");
        w.clock.manual().set(at("2026-07-01T08:00:00Z"));
        w.sweep(c).await;
        let mut dialed = journal_numbers(&w);
        dialed.sort();
        assert_eq!(
            dialed, numbers,
            "every contact is dialed once the window opens"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_contact_timezone_column_decides_the_window() {
    within(async {
        // 12:00 UTC: 14:00 in Berlin, 21:00 in Tokyo, 13:00 in London.
        let w = World::manual_at(at("2026-07-01T12:00:00Z"), &[], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                window: "09:00-20:00".into(),
                ..Default::default()
            })
            .await;
        let (day, night) = (uk(0), uk(1));
        w.insert_contact(c, &day, Some("Europe/Berlin"), true).await;
        // The number's own zone (London) would be open: the column wins.
        w.insert_contact(c, &night, Some("Asia/Tokyo"), true).await;
        w.sweep(c).await;
        assert_eq!(journal_numbers(&w), vec![day.clone()]);
        let deferred = w.contact(&night).await;
        assert_eq!((deferred.state.as_str(), deferred.attempts), ("pending", 0));
        assert_eq!(
            deferred.next_attempt_at.as_deref(),
            Some("2026-07-02T00:00:00Z"),
            "the next 09:00 in Tokyo"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_without_a_zone_column_uses_its_country_zone() {
    within(async {
        let london = uk(0);
        let zone = number_zones(&london).map(|(zones, _)| zones);
        assert_eq!(
            zone,
            Some(&[chrono_tz::Europe::London][..]),
            "a +44 number implies London"
        );
        // 12:00 UTC: 13:00 in London (open), 21:00 in Tokyo, the campaign's zone (closed).
        let w = World::manual_at(at("2026-07-01T12:00:00Z"), &[], |_| {}).await;
        let c = w
            .campaign(CampaignSpec {
                timezone: "Asia/Tokyo".into(),
                window: "09:00-20:00".into(),
                ..Default::default()
            })
            .await;
        let unknown = zoneless(0);
        w.add_contacts(c, &[london.clone(), unknown.clone()]).await;
        w.sweep(c).await;
        assert_eq!(
            journal_numbers(&w),
            vec![london],
            "the London number is dialed in London's daytime"
        );
        // A number that implies no zone falls back to the campaign's.
        assert_eq!(
            w.contact(&unknown).await.next_attempt_at.as_deref(),
            Some("2026-07-02T00:00:00Z")
        );
    })
    .await
}

/// The instants at which the simulator received the dispatch requests.
fn request_times(w: &World) -> Vec<DateTime<Utc>> {
    let mut t: Vec<_> = w.journal().iter().map(|e| at(&e.at)).collect();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_live_calls_caps_calls_in_progress_per_campaign() {
    within(async {
        // The engine and the simulator share a manual clock: calls last one
        // second of it, and the test moves it instead of waiting.
        let w = World::manual_at(
            Utc::now().trunc_subsecs(0),
            &["--call-secs", "1-1", "--outcomes", "completed=1"],
            |_| {},
        )
        .await;
        let c = w.default_campaign().await;
        w.sql(&format!(
            "UPDATE campaigns SET max_live_calls = 2 WHERE id = {c}"
        ))
        .await;
        w.add_uk_contacts(c, 6).await;
        w.sweep(c).await;
        w.sweep(c).await;
        let live =
            |attempts: &[AttemptRow]| attempts.iter().filter(|a| a.outcome.is_none()).count();
        let attempts = w.attempts().await;
        assert_eq!(attempts.len(), 2, "two calls at most while they last");
        assert!(
            attempts
                .iter()
                .all(|a| a.state == "accepted" && a.outcome.is_none())
        );
        for _ in 0..10 {
            if !w.store.has_open_work().await.unwrap() {
                break;
            }
            w.clock.manual().advance(Duration::from_millis(1050));
            w.engine.reconcile_once().await.unwrap();
            w.sweep(c).await;
            let attempts = w.attempts().await;
            assert!(
                live(&attempts) <= 2,
                "{} calls live at once",
                live(&attempts)
            );
        }
        assert_eq!(w.journal().len(), 6);
        w.assert_every_contact_ends_in(&["done"]).await;
        // Calls last one second: no three requests within one second.
        let times = request_times(&w);
        for trio in times.windows(3) {
            assert!(
                trio[2] - trio[0] >= chrono::Duration::milliseconds(990),
                "three calls live at once: {trio:?}"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn direct_inserts_are_validated_before_the_first_dial() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
        let c = w.default_campaign().await;
        w.sql(&format!(
            "UPDATE campaigns SET region = 'US' WHERE id = {c}"
        ))
        .await;
        let national = w.insert_contact(c, "(415) 555-2671", None, false).await;
        let same_again = w.insert_contact(c, "415.555.2671", None, false).await;
        let garbage = w.insert_contact(c, "garbage", None, false).await;
        w.run_to_idle(20).await;

        assert_eq!(
            journal_numbers(&w),
            vec!["+14155552671".to_string()],
            "dialed once, in E.164"
        );
        let contacts = w.contacts().await;
        let row = |id: i64| contacts.iter().find(|c| c.id == id).unwrap().clone();
        assert_eq!(row(national).phone_number, "+14155552671");
        assert_eq!(row(national).state, "done");
        assert!(
            contacts.iter().all(|c| c.validated == 1),
            "every direct insert was validated"
        );
        for (id, why) in [(same_again, "duplicate"), (garbage, "garbage")] {
            let r = row(id);
            assert_eq!(r.state, "invalid", "{r:?}");
            let reason = r.invalid_reason.unwrap_or_default();
            assert!(
                reason.contains(why),
                "reason {reason:?} should mention {why:?}"
            );
        }
    })
    .await
}

/// Another program may write a column of the wrong type (SQLite lets a
/// text into an INTEGER column): that contact is marked invalid with the
/// reason, and the rest of the campaign is dialed as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrongly_typed_column_makes_its_contact_invalid_not_the_sweep_fail() {
    within(async {
        let w = World::manual_now(&["--outcomes", "completed=1"], |_| {}).await;
        let c = w.default_campaign().await;
        let good = w.insert_contact(c, "+442079460001", None, true).await;
        let bad_agent = w.insert_contact(c, "+442079460002", None, true).await;
        let bad_attempts = w.insert_contact(c, "+442079460003", None, true).await;
        let blob_agent = w.insert_contact(c, "+442079460004", None, true).await;
        let huge_attempts = w.insert_contact(c, "+442079460005", None, true).await;
        // Claimed to be validated, but not E.164 (and not ASCII).
        let not_e164 = w.insert_contact(c, "+123\u{e9}456789", None, true).await;
        // Not validated, and not even text.
        let blob_number = w.insert_contact(c, "+442079460007", None, false).await;
        // Due times in SQLite's own form: validation makes a direct
        // insert's canonical (and so due); a row claiming to be validated
        // with one is refused rather than compared as text.
        w.sql(&format!(
            "INSERT INTO contacts (id, campaign_id, phone_number, next_attempt_at, validated) VALUES \
             (901, {c}, '+442079460008', '2020-01-01 00:00:00', 0), \
             (902, {c}, '+442079460009', 'tomorrow', 0), \
             (903, {c}, '+442079460010', '2020-01-01 00:00:00', 1), \
             (904, {c}, '+442079460011', 'now', 1)"
        ))
        .await;
        w.sql(&format!(
            "UPDATE contacts SET agent_id = 'seven' WHERE id = {bad_agent}; \
             UPDATE contacts SET attempts = 'none' WHERE id = {bad_attempts}; \
             UPDATE contacts SET agent_id = X'07' WHERE id = {blob_agent}; \
             UPDATE contacts SET attempts = 9e999 WHERE id = {huge_attempts}; \
             UPDATE contacts SET phone_number = X'2B3434' WHERE id = {blob_number}"
        ))
        .await;
        w.run_to_idle(20).await;

        let mut dialed = journal_numbers(&w);
        dialed.sort();
        assert_eq!(dialed, vec!["+442079460001", "+442079460008"]);
        let pool = w.store.pool().clone();
        let row = |id: i64| {
            let pool = pool.clone();
            async move {
                sqlx::query_as::<_, (String, Option<String>)>(
                    "SELECT state, invalid_reason FROM contacts WHERE id = ?",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        };
        assert_eq!(row(good).await.0, "done");
        assert_eq!(row(901).await.0, "done");
        for (id, why) in [
            (bad_agent, "agent_id"),
            (bad_attempts, "attempts"),
            (blob_agent, "agent_id"),
            (huge_attempts, "attempts"),
            (not_e164, "E.164"),
            (blob_number, "X'2B3434'"),
            (902, "'tomorrow' is not a time"),
            (903, "next_attempt_at '2020-01-01 00:00:00' is not"),
            // Sorts after every time, so it would never have come due.
            (904, "next_attempt_at 'now' is not"),
        ] {
            let (state, reason) = row(id).await;
            assert_eq!(state, "invalid", "{id}: {reason:?}");
            let reason = reason.unwrap_or_default();
            assert!(
                reason.contains(why),
                "reason {reason:?} should name {why:?}"
            );
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_up_to_the_configured_burst_goes_out_at_once() {
    within(async {
        let w = World::new(&["--outcomes", "completed=1"], |cfg| {
            cfg.rate_per_second = 1.0;
            cfg.burst = 8;
        })
        .await;
        let c = w.default_campaign().await;
        w.add_uk_contacts(c, 8).await;
        w.sweep(c).await;
        let times = request_times(&w);
        assert_eq!(times.len(), 8);
        let spread = *times.last().unwrap() - times[0];
        assert!(
            spread < chrono::Duration::milliseconds(900),
            "8 requests with a burst of 8 took {spread}: the limiter let through fewer than its burst"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dispatches_beyond_the_burst_keep_to_the_configured_rate() {
    within(async {
        let w = World::new(&["--outcomes", "completed=1"], |cfg| {
            cfg.rate_per_second = 10.0;
            cfg.burst = 1;
        })
        .await;
        let c = w.default_campaign().await;
        w.add_uk_contacts(c, 11).await;
        w.sweep(c).await;
        let times = request_times(&w);
        assert_eq!(times.len(), 11);
        let spread = *times.last().unwrap() - times[0];
        assert!(
            spread >= chrono::Duration::milliseconds(900),
            "11 requests at 10/s took only {spread}"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_time_another_program_wrote_in_sqlite_format_is_not_dialed_early() {
    within(async {
        let w = World::manual_at(at("2026-07-01T12:00:00Z"), &[], |_| {}).await;
        let c = w.default_campaign().await;
        // `datetime('now', '+8 hours')` writes `YYYY-MM-DD HH:MM:SS`, which the
        // store reads as UTC (clock::from_db_text).
        let later = uk(0);
        w.insert_contact(c, &later, None, true).await;
        w.sql("UPDATE contacts SET next_attempt_at = '2026-07-01 20:00:00'")
            .await;
        w.sweep(c).await;
        assert!(
            w.journal().is_empty(),
            "dialed at 12:00 a contact due at 20:00"
        );
        w.clock.manual().set(at("2026-07-01T20:00:00Z"));
        w.sweep(c).await;
        assert_eq!(journal_numbers(&w), vec![later]);
    })
    .await
}

/// Through the engine on the test clock, with the shipped compliance
/// rules: an all-day campaign in UTC dials a Miami number neither before
/// 08:00 (quiet hours and Florida) nor at 20:00 (Florida) Miami time, and a
/// Sydney landline not at night in Sydney.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_engine_holds_all_day_campaigns_to_quiet_hours_and_florida_hours() {
    within(async {
        // 12:00 UTC on 15 January: 07:00 in Miami (EST), 23:00 in Sydney (AEDT).
        let w = World::manual_at(at("2026-01-15T12:00:00Z"), &[], |cfg| {
            cfg.compliance = dialerd::config::Compliance::default();
        })
        .await;
        let c = w
            .campaign(CampaignSpec {
                timezone: "UTC".into(),
                window: "00:00-24:00".into(),
                ..Default::default()
            })
            .await;
        let (miami, sydney) = ("+13055550123".to_string(), "+61293744000".to_string());
        w.add_contacts(c, &[miami.clone(), sydney.clone()]).await;
        w.sweep(c).await;
        assert!(w.journal().is_empty(), "dialed at night: {:?}", w.journal());
        assert_eq!(
            w.contact(&miami).await.next_attempt_at.as_deref(),
            Some("2026-01-15T13:00:00Z"),
            "08:00 in Miami"
        );
        assert_eq!(
            w.contact(&sydney).await.next_attempt_at.as_deref(),
            Some("2026-01-15T21:00:00Z"),
            "08:00 in Sydney"
        );
        w.clock.manual().set(at("2026-01-15T13:00:00Z"));
        w.sweep(c).await;
        assert_eq!(journal_numbers(&w), vec![miami.clone()]);
    })
    .await
}
