//! What webhooks cost the daemon's own writes, and how fast the worker
//! delivers (`cargo bench --bench webhooks`; `harness = false`).
//!
//! On a real SQLite file (WAL, `synchronous=FULL`, as `Store::open` sets it)
//! with one campaign of N contacts (default 20000), each with an accepted
//! attempt, three schemas are compared, each on a fresh database:
//! `none` (migration 10's triggers dropped: the schema before webhooks),
//! `off` (triggers present, no subscriptions: webhooks not configured) and
//! `on` (every event subscribed). Figures, as greppable `key=value` lines:
//!
//! - `claim_update`: `UPDATE contacts SET state = 'in_progress'` for every
//!   contact, 256 per transaction (the dispatcher's claim writes this column,
//!   which the contact trigger watches); microseconds per contact.
//! - `record_outcomes`: `Store::record_outcomes` for every attempt, 100 per
//!   transaction as the reconciler writes a page, with the 4 KB raw call log
//!   of `tests/fixtures/call_log_one.json` (each writes `attempt.outcome` and,
//!   with webhooks on, `contact.final`); microseconds per outcome.
//! - `deliver` (`on` only): the worker's steps against an axum receiver on
//!   loopback answering 200 at once, `max_in_flight` 4; events per second.
//!
//! `WEBHOOK_BENCH_N` changes N.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dialerd::clock::{SharedClock, SystemClock};
use dialerd::domain::{ContactState, Outcome};
use dialerd::store::{ContactNext, FinalLog, FinalOutcome, Store};
use dialerd::webhooks::{Deliverer, EVENTS, Secret, Step, WebhookSettings};

const TRIGGERS: [&str; 4] = [
    "webhook_attempt_outcome",
    "webhook_contact_final",
    "webhook_campaign_status",
    "webhook_dnc_opt_out",
];

fn main() -> anyhow::Result<()> {
    let n: i64 = std::env::var("WEBHOOK_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        for mode in ["none", "off", "on"] {
            let dir = tempfile::tempdir()?;
            let store = setup(dir.path(), n, mode).await?;
            let claim = claim_update(&store, n).await?;
            let record = record_outcomes(&store, n).await?;
            let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_outbox")
                .fetch_one(store.pool())
                .await?;
            println!(
                "webhooks={mode} n={n} claim_update_us_per_contact={claim:.1} \
                 record_outcomes_us_per_outcome={record:.1} events_written={events}"
            );
            if mode == "on" {
                let (secs, sent) = deliver(&store).await?;
                println!(
                    "webhooks=on deliver events={sent} secs={secs:.2} events_per_sec={:.0}",
                    sent as f64 / secs
                );
            }
            store.close().await;
        }
        Ok(())
    })
}

async fn setup(dir: &Path, n: i64, mode: &str) -> anyhow::Result<Store> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.join("bench.db"), clock).await?;
    let pool = store.pool();
    match mode {
        "none" => {
            for t in TRIGGERS {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}")))
                    .execute(pool)
                    .await?;
            }
        }
        "on" => store.webhook_set_subscriptions(&EVENTS).await?,
        _ => {}
    }
    sqlx::query("INSERT INTO campaigns (id, name, agent_id) VALUES (1, 'bench', 7)")
        .execute(pool)
        .await?;
    let mut tx = pool.begin().await?;
    for i in 1..=n {
        let number = format!("+447700{i:06}");
        sqlx::query(
            "INSERT INTO contacts (id, campaign_id, phone_number, call_context, validated) \
             VALUES (?, 1, ?, '{\"name\": \"Ann\", \"plan\": \"gold\"}', 1)",
        )
        .bind(i)
        .bind(&number)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO attempts (id, contact_id, campaign_id, attempt_no, state, agent_id, to_number, sent_at) \
             VALUES (?, ?, 1, 1, 'accepted', 7, ?, '2026-12-01T10:00:00.000Z')",
        )
        .bind(i)
        .bind(i)
        .bind(&number)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(store)
}

async fn claim_update(store: &Store, n: i64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut id = 1;
    while id <= n {
        let mut tx = store.pool().begin().await?;
        for i in id..(id + 256).min(n + 1) {
            sqlx::query("UPDATE contacts SET state = 'in_progress', attempts = 1 WHERE id = ?")
                .bind(i)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        id += 256;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

async fn record_outcomes(store: &Store, n: i64) -> anyhow::Result<f64> {
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/call_log_one.json"),
    )?;
    let doc: serde_json::Value = serde_json::from_str(&fixture)?;
    let raw = doc["call_log_data"][0].to_string();
    let log = FinalLog {
        outcome: Outcome::Completed,
        provider_status: Some("completed".into()),
        call_log_id: None,
        duration_secs: Some(67.0),
        transcript: Some("LLM: Hi Ann, this is Maya calling about your renewal.".into()),
        recording_url: Some("https://recordings.example.invalid/1.mp3".into()),
        cost: Some(0.09),
        raw_log: Some(raw),
    };
    let start = Instant::now();
    let mut id = 1;
    while id <= n {
        let items: Vec<_> = (id..(id + 100).min(n + 1))
            .map(|i| FinalOutcome {
                attempt_id: i,
                contact_id: i,
                log: log.clone(),
                next: ContactNext::Final(ContactState::Done),
                opt_out: None,
            })
            .collect();
        store.record_outcomes(&items).await?;
        id += 100;
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / n as f64)
}

async fn deliver(store: &Store) -> anyhow::Result<(f64, i64)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let settings = WebhookSettings {
        url: url.parse()?,
        secret: Secret::new("bench-secret").ok_or_else(|| anyhow::anyhow!("no secret"))?,
        secret_source: "bench".into(),
        events: EVENTS.to_vec(),
        max_age: Duration::from_secs(86_400),
        timeout: Duration::from_secs(10),
        max_in_flight: 4,
        poll_interval: Duration::from_millis(100),
    };
    let d = Deliverer::new(store.clone(), Arc::new(SystemClock), settings)?;
    let start = Instant::now();
    let mut sent = 0i64;
    while let Step::Worked(k) = d.step().await? {
        sent += k as i64;
    }
    Ok((start.elapsed().as_secs_f64(), sent))
}
