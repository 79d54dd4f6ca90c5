//! Webhooks: the outbox the triggers write, the delivery worker driven one
//! step at a time through the test clock against a receiver on loopback, and
//! the real daemon binary end to end (see `daemon.rs`).

mod daemon;
mod outbox;
mod receiver;
mod worker;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dialerd::clock::ManualClock;
use dialerd::store::Store;
use dialerd::webhooks::{EVENTS, Secret, WebhookSettings};

/// The secret every test signs with.
pub const SECRET: &str = "test-webhook-secret";

/// A store on a fresh file in `dir` with a clock standing at the real time
/// now (the triggers stamp `created_at` with SQLite's own clock).
pub async fn store_in(dir: &Path) -> (Store, ManualClock) {
    let clock = ManualClock::new(Utc::now());
    let store = Store::open(&dir.join("d.db"), Arc::new(clock.clone()))
        .await
        .expect("open the store");
    (store, clock)
}

/// Settings that send every event to `url`.
pub fn settings(url: &str) -> WebhookSettings {
    WebhookSettings {
        url: url.parse().expect("a URL"),
        secret: Secret::new(SECRET).expect("a secret"),
        secret_source: "test".into(),
        events: EVENTS.to_vec(),
        max_age: Duration::from_secs(86_400),
        timeout: Duration::from_secs(5),
        max_in_flight: 4,
        poll_interval: Duration::from_millis(50),
    }
}

/// A campaign with `contacts` contacts, each with one accepted attempt
/// awaiting its outcome (attempt id = contact id). Returns the campaign id.
pub async fn campaign_with_calls(store: &Store, name: &str, contacts: i64) -> i64 {
    let pool = store.pool();
    let id: i64 =
        sqlx::query_scalar("INSERT INTO campaigns (name, agent_id) VALUES (?, 7) RETURNING id")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
    for i in 0..contacts {
        let number = format!("+1415555{:04}", 1000 + i);
        let contact: i64 = sqlx::query_scalar(
            "INSERT INTO contacts (campaign_id, phone_number, call_context, external_id, state, attempts, validated) \
             VALUES (?, ?, ?, ?, 'in_progress', 1, 1) RETURNING id",
        )
        .bind(id)
        .bind(&number)
        .bind(format!(r#"{{"name": "n{i}"}}"#))
        .bind(format!("crm-{i}"))
        .fetch_one(pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, request_id, sent_at) \
             VALUES (?, ?, ?, 1, 'accepted', 7, ?, ?, '2026-12-01T10:00:00.000Z')",
        )
        .bind(contact)
        .bind(contact)
        .bind(id)
        .bind(&number)
        .bind(format!("req-{contact}"))
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

/// The final outcome of attempt `id` and its contact, as the reconciler writes them.
pub async fn finish(store: &Store, id: i64, outcome: &str, contact_state: &str) {
    let raw = r#"{"call_status": "completed", "extracted_variables": {"renewal": "yes"}}"#;
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(
        "UPDATE attempts SET outcome = ?, provider_status = ?, duration_secs = 61.5, cost = 0.09, \
         transcript = 'LLM: hello', recording_url = 'https://rec.example.invalid/1.mp3', raw_log = ?, \
         finished_at = '2026-12-01T10:01:05Z' WHERE id = ?",
    )
    .bind(outcome)
    .bind(outcome)
    .bind(raw)
    .bind(id)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE contacts SET state = ? WHERE id = ?")
        .bind(contact_state)
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
