//! The delivery worker, one step at a time, through the test clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use dialerd::clock::{Clock, ManualClock};
use dialerd::store::Store;
use dialerd::webhooks::{Deliverer, EVENTS, Secret, Step, verify};
use sqlx::Row;

use super::receiver::{Mode, Receiver};
use super::{SECRET, campaign_with_calls, finish, settings, store_in};

async fn outbox_ids(store: &Store) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM webhook_outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Steps until the worker has nothing due; returns the steps taken.
async fn drain(d: &Deliverer) -> usize {
    for n in 0..100 {
        match d.step().await.unwrap() {
            Step::Worked(_) => {}
            _ => return n,
        }
    }
    panic!("the worker never ran out of work");
}

async fn setup(contacts: i64) -> (tempfile::TempDir, Store, ManualClock, Receiver, Deliverer) {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = store_in(dir.path()).await;
    store.webhook_set_subscriptions(&EVENTS).await.unwrap();
    campaign_with_calls(&store, "c", contacts).await;
    for id in 1..=contacts {
        finish(&store, id, "completed", "done").await;
    }
    let receiver = Receiver::start();
    let d = Deliverer::new(
        store.clone(),
        Arc::new(clock.clone()),
        settings(&receiver.url),
    )
    .unwrap();
    (dir, store, clock, receiver, d)
}

#[tokio::test]
async fn every_event_arrives_exactly_once_signed_with_the_secret_when_the_receiver_is_up() {
    let (_dir, store, _clock, receiver, d) = setup(5).await;
    // One event per contact per step: each contact's second waits for its first.
    assert_eq!(d.step().await.unwrap(), Step::Worked(5));
    assert!(receiver.got().iter().all(|r| r.event == "attempt.outcome"));
    drain(&d).await;
    let got = receiver.got();
    let mut by_id: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &got {
        *by_id.entry(r.delivery).or_default() += 1;
        let body = r.json();
        assert_eq!(body["id"], r.delivery, "the body names its delivery id");
        assert_eq!(body["event"], r.event.as_str());
        assert!(verify(
            &Secret::new(SECRET).unwrap(),
            &r.timestamp,
            &r.body,
            &r.signature
        ));
        assert!(!verify(
            &Secret::new("another").unwrap(),
            &r.timestamp,
            &r.body,
            &r.signature
        ));
    }
    let ids = outbox_ids(&store).await;
    assert_eq!(ids.len(), 10);
    assert_eq!(by_id.keys().copied().collect::<Vec<_>>(), ids);
    assert!(
        by_id.values().all(|&n| n == 1),
        "each event exactly once: {by_id:?}"
    );
    let undelivered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL OR last_status <> 200",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(undelivered, 0);
    assert_eq!(d.step().await.unwrap(), Step::Idle);
}

#[tokio::test]
async fn events_sent_while_the_receiver_was_down_all_arrive_in_order_once_it_is_back() {
    let (_dir, store, clock, receiver, d) = setup(3).await;
    receiver.set(Mode::Unavailable);
    assert_eq!(d.step().await.unwrap(), Step::Worked(3));
    // Only each contact's first event was tried: the second waits for it.
    assert!(receiver.got().iter().all(|r| r.event == "attempt.outcome"));
    match d.step().await.unwrap() {
        Step::Backoff(wait) => assert!(wait <= Duration::from_secs(5), "{wait:?}"),
        other => panic!("expected a backoff, got {other:?}"),
    }
    // Down for hours: tries keep failing and back off further each time.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(3600));
        drain(&d).await;
    }
    let tries: i64 = sqlx::query_scalar(
        "SELECT MIN(attempts) FROM webhook_outbox WHERE event = 'attempt.outcome'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(tries, 7);
    assert!(receiver.delivered().is_empty());
    receiver.set(Mode::Ok);
    clock.advance(Duration::from_secs(3600));
    drain(&d).await;
    let delivered = receiver.delivered();
    let mut ids: Vec<i64> = delivered.iter().map(|r| r.delivery).collect();
    ids.sort();
    assert_eq!(ids, outbox_ids(&store).await, "every event, each once");
    // Per contact, in the order the events were written.
    let mut per_contact: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in &delivered {
        let body = r.json();
        let contact = body["data"]["contact"]["id"].as_i64().unwrap();
        per_contact.entry(contact).or_default().push(r.delivery);
    }
    for (c, seq) in per_contact {
        assert!(seq.windows(2).all(|w| w[0] < w[1]), "contact {c}: {seq:?}");
    }
}

#[tokio::test]
async fn retry_after_is_honoured_through_the_clock() {
    let (_dir, store, clock, receiver, d) = setup(1).await;
    receiver.set(Mode::RateLimited);
    assert_eq!(d.step().await.unwrap(), Step::Worked(1));
    let row = sqlx::query(
        "SELECT next_attempt_at, last_status, last_error FROM webhook_outbox WHERE id = 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let next = dialerd::clock::from_db_text(&row.get::<String, _>(0)).unwrap();
    let wait = (next - clock.now()).num_seconds();
    assert!((118..=120).contains(&wait), "next try in {wait} s");
    assert_eq!(row.get::<i64, _>(1), 429);
    assert!(row.get::<String, _>(2).contains("slow down"));
    receiver.set(Mode::Ok);
    clock.advance(Duration::from_secs(60));
    assert!(matches!(d.step().await.unwrap(), Step::Backoff(_)));
    assert!(receiver.delivered().is_empty());
    clock.advance(Duration::from_secs(61));
    drain(&d).await;
    assert_eq!(receiver.delivered().len(), 2);
}

#[tokio::test]
async fn an_event_past_max_age_is_kept_with_its_error_until_requeued() {
    let dir = tempfile::tempdir().unwrap();
    let (store, clock) = store_in(dir.path()).await;
    store
        .webhook_set_subscriptions(&["contact.final"])
        .await
        .unwrap();
    campaign_with_calls(&store, "c", 1).await;
    finish(&store, 1, "completed", "done").await;
    let receiver = Receiver::start();
    receiver.set(Mode::Unavailable);
    let mut s = settings(&receiver.url);
    s.max_age = Duration::from_secs(60);
    let d = Deliverer::new(store.clone(), Arc::new(clock.clone()), s).unwrap();
    drain(&d).await;
    clock.advance(Duration::from_secs(61));
    assert_eq!(d.step().await.unwrap(), Step::Idle);
    let row = sqlx::query("SELECT state, last_status, last_error FROM webhook_backlog")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(row.get::<String, _>(0), "gave_up");
    assert_eq!(row.get::<i64, _>(1), 503);
    assert!(row.get::<String, _>(2).contains("max_age"));
    let summary = store.webhook_summary().await.unwrap();
    assert_eq!(
        (summary.gave_up, summary.pending + summary.retrying),
        (1, 0)
    );
    receiver.set(Mode::Ok);
    assert_eq!(store.webhook_requeue(None).await.unwrap(), 1);
    drain(&d).await;
    assert_eq!(receiver.delivered().len(), 1);
    assert_eq!(store.webhook_summary().await.unwrap().delivered, 1);
}
