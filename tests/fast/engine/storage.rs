//! While the database cannot be written, nothing is dialed, and dialing
//! resumes by itself once it can.

use std::time::Duration;

use crate::harness::world::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_dialed_while_the_database_cannot_be_written_and_dialing_resumes_after() {
    within(async {
        let w = World::manual_at(at("2026-11-25T12:00:00Z"), &[], |_| {}).await;
        let c = w.campaign(CampaignSpec::default()).await;
        let numbers = w.add_uk_contacts(c, 3).await;
        // The first tick records the first fire time; the next second it is due.
        w.engine.tick().await.unwrap();
        w.clock.manual().set(at("2026-11-25T12:00:05Z"));

        w.engine
            .note_storage(Err("database or disk is full".into()));
        assert!(
            w.engine.status_line().contains("DATABASE NOT WRITABLE"),
            "{}",
            w.engine.status_line()
        );
        let (started, _) = w.engine.tick().await.unwrap();
        assert!(
            started.is_empty(),
            "a sweep started while the database was unwritable"
        );
        let report = w.sweep(c).await;
        assert_eq!(report.dispatched, 0, "{report:?}");
        assert!(w.journal().is_empty(), "a request reached the API");

        w.engine.note_storage(Ok(()));
        assert!(w.engine.storage_fault().is_none());
        let (started, _) = w.engine.tick().await.unwrap();
        assert_eq!(started, vec![c], "dialing did not resume by itself");
        for _ in 0..500 {
            if w.engine.sweeps_running() == 0 && w.journal().len() == numbers.len() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            w.journal().len(),
            numbers.len(),
            "every contact dialed once after"
        );
    })
    .await
}

/// A listing that never ends: every page full, `total_records` huge, no log
/// ours. Each round reads a bounded number of pages, one at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_log_listing_that_never_ends_is_read_a_bounded_number_of_pages_per_round() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use wiremock::{Mock, MockServer, Request, ResponseTemplate};
    within(async {
        let w = World::new(&["--call-secs", "30-40"], |_| {}).await;
        let c = w.campaign(CampaignSpec::default()).await;
        w.add_uk_contacts(c, 2).await;
        w.sweep(c).await;
        let server = MockServer::start().await;
        let served = Arc::new(AtomicU64::new(0));
        let counter = served.clone();
        Mock::given(wiremock::matchers::method("GET"))
            .respond_with(move |req: &Request| {
                counter.fetch_add(1, Ordering::SeqCst);
                let size: usize = req
                    .url
                    .query_pairs()
                    .find(|(k, _)| k == "pagesize")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(30);
                let logs: Vec<serde_json::Value> = (0..size)
                    .map(|i| {
                        serde_json::json!({"id": 10_000_000 + i, "call_status": "completed",
                        "call_request_id": {"id": 999_000_000 + i}, "to_number": "+15555550100"})
                    })
                    .collect();
                ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"call_log_data": logs, "total_records": 1_000_000_000u64}),
                )
            })
            .mount(&server)
            .await;
        let mut cfg = w.cfg.clone();
        cfg.max_pages_per_poll = 5;
        let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let hostile = dialerd::engine::Engine::new(
            w.store.clone(),
            dialerd::provider::Client::new(
                &format!("{}/api/v1", server.uri()),
                dialerd::secret::ApiKey::new(KEY).unwrap(),
                Duration::from_secs(5),
            )
            .unwrap(),
            w.clock.shared(),
            cfg,
            stop_rx,
        );
        for round in 0..3 {
            let before = served.load(Ordering::SeqCst);
            let report = hostile.reconcile_once().await.unwrap();
            let pages = served.load(Ordering::SeqCst) - before;
            assert!(pages <= 2 * 5, "round {round} read {pages} pages");
            assert_eq!(report.finalised + report.linked + report.not_placed, 0);
        }
        // Nothing of ours was in the listing: the calls are still awaited.
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM attempts WHERE state = 'accepted' AND outcome IS NULL",
        )
        .fetch_one(w.store.pool())
        .await
        .unwrap();
        assert_eq!(open, 2);
    })
    .await
}
