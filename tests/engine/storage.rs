//! While the database cannot be written, nothing is dialed, and dialing
//! resumes by itself once it can.

use std::time::Duration;

use crate::helpers::*;

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
