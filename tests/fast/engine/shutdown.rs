//! Stopping the engine: a stop waits for the sweeps already running (learned
//! when the last of them drops its completion sender, not by polling) and
//! starts no new one.

use std::time::Duration;

use crate::harness::world::*;

async fn count(w: &World, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(w.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stop_waits_for_the_running_sweep_and_its_request_in_flight_then_starts_no_new_sweep() {
    within(async {
        let w = World::new(&["--latency-ms", "400"], |_| {}).await;
        let c = w.default_campaign().await;
        w.add_uk_contacts(c, 3).await;
        w.sql("UPDATE campaigns SET next_sweep_at = '2000-01-01T00:00:00Z'")
            .await;
        let (started, _) = w.engine.tick().await.unwrap();
        assert_eq!(started, vec![c]);
        // A request is on the wire (the simulator answers after 400 ms).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while count(&w, "SELECT COUNT(*) FROM attempts WHERE state = 'sending'").await == 0 {
            assert!(tokio::time::Instant::now() < deadline, "nothing was sent");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        w.stop_tx.send_replace(true);
        w.engine.sweeps_finished().await;
        assert_eq!(w.engine.sweeps_running(), 0, "a sweep outlived the wait");
        assert_eq!(
            count(&w, "SELECT COUNT(*) FROM attempts WHERE state = 'sending'").await,
            0,
            "the stop did not wait for the request in flight"
        );
        w.sql("UPDATE campaigns SET next_sweep_at = '2000-01-01T00:00:00Z'")
            .await;
        let (started, _) = w.engine.tick().await.unwrap();
        assert!(started.is_empty(), "a sweep started after the stop");
    })
    .await
}
