//! The triggers: an event exists iff its change was committed, whoever made
//! it, carries what a receiver needs, and never fails the change it reports.

use dialerd::webhooks::EVENTS;
use sqlx::Row;

use super::{campaign_with_calls, finish, store_in};

async fn events(
    store: &dialerd::store::Store,
) -> Vec<(i64, String, Option<i64>, serde_json::Value)> {
    sqlx::query("SELECT id, event, contact_id, payload FROM webhook_outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let payload: String = r.get(3);
            (
                r.get(0),
                r.get(1),
                r.get(2),
                serde_json::from_str(&payload).expect("the payload is JSON"),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_reported_change_writes_its_event_with_what_a_receiver_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = store_in(dir.path()).await;
    store.webhook_set_subscriptions(&EVENTS).await.unwrap();
    let campaign = campaign_with_calls(&store, "renewals", 2).await;
    finish(&store, 1, "completed", "done").await;
    sqlx::query("UPDATE campaigns SET status = 'paused', status_reason = 'operator' WHERE id = ?")
        .bind(campaign)
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO dnc (phone_number, reason, source, attempt_id) VALUES ('+14155551001', 'asked', 'opt-out', 2)")
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("INSERT INTO dnc (phone_number, reason) VALUES ('+14155559999', 'operator entry')")
        .execute(store.pool())
        .await
        .unwrap();
    let got = events(&store).await;
    let kinds: Vec<&str> = got.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "attempt.outcome",
            "contact.final",
            "campaign.paused",
            "dnc.opt_out"
        ]
    );
    let a = &got[0].3;
    assert_eq!(a["campaign"]["name"], "renewals");
    assert_eq!(a["campaign"]["id"], campaign);
    assert_eq!(a["contact"]["id"], 1);
    assert_eq!(a["contact"]["external_id"], "crm-0");
    assert_eq!(a["contact"]["phone_number"], "+14155551000");
    assert_eq!(a["contact"]["call_context"]["name"], "n0");
    assert_eq!(a["attempt"]["attempt_no"], 1);
    assert_eq!(a["attempt"]["outcome"], "completed");
    assert_eq!(a["attempt"]["provider_status"], "completed");
    assert_eq!(a["attempt"]["duration_secs"], 61.5);
    assert_eq!(a["attempt"]["cost"], 0.09);
    assert_eq!(a["attempt"]["transcript"], "LLM: hello");
    assert_eq!(
        a["attempt"]["recording_url"],
        "https://rec.example.invalid/1.mp3"
    );
    assert_eq!(a["attempt"]["extracted_variables"]["renewal"], "yes");
    assert_eq!(a["attempt"]["finished_at"], "2026-12-01T10:01:05Z");
    let c = &got[1].3;
    assert_eq!(c["contact"]["state"], "done");
    assert_eq!(c["previous_state"], "in_progress");
    assert_eq!(c["last_attempt"]["outcome"], "completed");
    let p = &got[2].3;
    assert_eq!(p["campaign"]["status_reason"], "operator");
    assert_eq!(p["progress"]["done"], 1);
    assert_eq!(p["progress"]["in_progress"], 1);
    let d = &got[3];
    assert_eq!(
        d.2,
        Some(2),
        "an opt-out is ordered with its contact's events"
    );
    assert_eq!(d.3["phone_number"], "+14155551001");
    assert_eq!(d.3["attempt"]["id"], 2);
    let created: String = sqlx::query_scalar("SELECT created_at FROM webhook_outbox WHERE id = 1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(dialerd::clock::from_db_text(&created).is_some() && created.ends_with('Z'));
}

#[tokio::test]
async fn an_event_exists_only_if_its_change_was_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = store_in(dir.path()).await;
    store.webhook_set_subscriptions(&EVENTS).await.unwrap();
    campaign_with_calls(&store, "c", 1).await;
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query("UPDATE attempts SET outcome = 'busy' WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    let inside: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(inside, 1);
    tx.rollback().await.unwrap();
    assert!(events(&store).await.is_empty());
}

#[tokio::test]
async fn nothing_is_written_when_webhooks_are_off_and_only_chosen_events_when_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = store_in(dir.path()).await;
    campaign_with_calls(&store, "c", 3).await;
    finish(&store, 1, "completed", "done").await;
    assert!(events(&store).await.is_empty(), "webhooks off: no events");
    store
        .webhook_set_subscriptions(&["contact.final"])
        .await
        .unwrap();
    finish(&store, 2, "no_answer", "exhausted").await;
    // Not final: no contact event.
    finish(&store, 3, "busy", "retry_wait").await;
    let got = events(&store).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "contact.final");
    assert_eq!(got[0].3["contact"]["state"], "exhausted");
}

#[tokio::test]
async fn hostile_values_never_fail_the_state_change_they_report() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = store_in(dir.path()).await;
    store.webhook_set_subscriptions(&EVENTS).await.unwrap();
    let n = 8;
    campaign_with_calls(&store, "hostile", n).await;
    let deep = format!("{}1{}", "[".repeat(900), "]".repeat(900));
    let raw_logs = [
        r#""just a string""#.to_string(),
        "[1, 2, 3]".to_string(),
        r#"{"extracted_variables": "not an object"}"#.to_string(),
        r#"{"extracted_variables": [1, 2]}"#.to_string(),
        r#"{"extracted_variables": null}"#.to_string(),
        format!(r#"{{"extracted_variables": {{"deep": {deep}}}}}"#),
        "null".to_string(),
        r#"{"extracted_variables": {"k": "\u0000\ud83d\ude00"}}"#.to_string(),
    ];
    for (i, raw) in raw_logs.iter().enumerate() {
        let id = i as i64 + 1;
        // Blobs and invalid UTF-8 where text belongs, text where numbers belong.
        sqlx::query(
            "UPDATE attempts SET outcome = 'completed', raw_log = ?, transcript = CAST(x'ff00fe' AS TEXT), \
             recording_url = x'00ff', cost = 'free', duration_secs = x'01', provider_status = x'', \
             finished_at = x'ff' WHERE id = ?",
        )
        .bind(raw)
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("raw log {raw:.60} failed the outcome write: {e}"));
        sqlx::query(
            "UPDATE contacts SET external_id = x'c0', timezone = 5, invalid_reason = x'ff', state = 'done' WHERE id = ?",
        )
        .bind(id)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("the contact write failed: {e}"));
    }
    sqlx::query("UPDATE campaigns SET status_reason = x'ff', status = 'completed'")
        .execute(store.pool())
        .await
        .expect("the campaign write");
    sqlx::query("INSERT INTO dnc (phone_number, reason, source, attempt_id) VALUES ('+1', x'00', 'opt-out', 'nonsense')")
        .execute(store.pool())
        .await
        .expect("the DNC write");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count, 2 * n + 2);
    // Every payload is something the worker can send.
    let rows =
        sqlx::query("SELECT id, event, created_at, CAST(payload AS BLOB) FROM webhook_outbox")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for r in rows {
        let payload: Vec<u8> = r.get(3);
        let body = dialerd::webhooks::body_for(r.get(0), r.get(1), r.get(2), &payload);
        serde_json::from_str::<serde_json::Value>(&body).expect("a JSON body");
    }
}

#[tokio::test]
async fn an_opt_out_is_reported_with_its_call_and_an_operators_entry_is_not() {
    use dialerd::phone::PhoneNumber;
    use dialerd::store::DncSource;
    let dir = tempfile::tempdir().unwrap();
    let (store, _clock) = store_in(dir.path()).await;
    store.webhook_set_subscriptions(&EVENTS).await.unwrap();
    campaign_with_calls(&store, "c", 2).await;
    let first = PhoneNumber::parse("+14155551000", None).unwrap();
    let second = PhoneNumber::parse("+14155551001", None).unwrap();
    store
        .dnc_add_from(&[first], Some("said stop"), DncSource::OptOut, Some(1))
        .await
        .unwrap();
    store
        .dnc_add_from(&[second], None, DncSource::Import, None)
        .await
        .unwrap();
    let got = events(&store).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "dnc.opt_out");
    assert_eq!(got[0].2, Some(1));
    assert_eq!(got[0].3["reason"], "said stop");
    assert_eq!(got[0].3["contact"]["external_id"], "crm-0");
    let sources: Vec<String> = store
        .dnc_list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.source)
        .collect();
    assert_eq!(sources, ["opt-out", "import"]);
}
