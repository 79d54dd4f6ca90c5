//! Dispatch throughput end to end, with durable state, against a raw reqwest
//! loop; then rate-limit accuracy; then the cost of the claim and record
//! transactions the dispatcher is made of.
//!
//! `cargo bench --bench dispatch` (`harness = false`). Every figure is printed
//! as one greppable line of `key=value` pairs:
//!
//! - `dispatch_throughput`: an [`Engine`] over a real SQLite file in a tempdir
//!   (WAL, `synchronous=FULL`, as `Store::open` sets it) and a [`Client`] to an
//!   in-process simulator (no latency, no rate limit, no faults), with the
//!   default `EngineConfig` but rate 100000/s, burst 1000, max_in_flight 32,
//!   the default claim_batch, sweeping one campaign of N contacts (inserted by SQL,
//!   `validated = 1`, window 00:00-24:00). The rate is N / (time from the first
//!   request the simulator received to the sweep's return, which is after the
//!   last result was committed). The reference is a reqwest loop with 32 in
//!   flight posting the same bodies to a fresh simulator. Target: ratio >= 0.5.
//! - `rate_accuracy`: the same engine at 40/s with burst 1 and burst 5, over
//!   10 s (more contacts than can be sent; stopped through the shutdown
//!   channel): the largest number of requests the simulator received in any
//!   1-second window (limit: rate + burst) and the mean rate (target: within
//!   2% of 40/s).
//! - `claim_cost`: one claim transaction (`claim_due`: the due read, the
//!   decisions and the writes) and one `record_results` transaction, at
//!   several batch sizes and table sizes, on the same kind of database
//!   (medians over the rounds).
//!
//! Environment: `DISPATCH_BENCH_N` (default 20000) sets N; `DISPATCH_BENCH_SIZES`
//! (default `2000,20000`) the campaign sizes the throughput is measured at;
//! `DISPATCH_BENCH_RUNS` (default 2) how many alternating engine/raw pairs per
//! size; `DISPATCH_BENCH_SKIP` (comma list of `throughput`, `raw`, `rate`,
//! `cost`) skips parts (`raw`: the reference loop, to profile the engine
//! alone); `DISPATCH_BENCH_IN_FLIGHT` / `DISPATCH_BENCH_CLAIM_BATCH` (default
//! 32 / the default) change the engine's max_in_flight / claim_batch for the throughput
//! part only (diagnosis; the reference keeps 32 in flight); `DISPATCH_BENCH_CLAIM_WAIT_SECS`
//! (default: the default `dispatch.max_claim_wait_secs`) how long a claim may wait
//! to be sent (raise it under valgrind, which slows everything ~50×); `DISPATCH_BENCH_WEBHOOKS`
//! (`off`, `on`, `none`) what the webhook triggers do (see `webhooks_mode`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use dialerd::clock::{SharedClock, SystemClock};
use dialerd::config::{Compliance, Settings};
use dialerd::engine::{Engine, EngineConfig};
use dialerd::provider::{Client, DispatchRequest};
use dialerd::secret::ApiKey;
use dialerd::sim::{self, SimOptions};
use dialerd::store::{AttemptResult, Campaign, ClaimDecision, SendResult, Store};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Map, json};
use tokio::sync::watch;

const CONCURRENCY: usize = 32;
const AGENT: i64 = 7;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let n: usize = env_or("DISPATCH_BENCH_N", 20_000);
    let sizes: Vec<usize> = std::env::var("DISPATCH_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![(n / 10).max(100), n]);
    let runs: usize = env_or("DISPATCH_BENCH_RUNS", 2);
    let skip = std::env::var("DISPATCH_BENCH_SKIP").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("load_at_start loadavg={}", loadavg());
        if !skip.contains("throughput") {
            for &size in &sizes {
                throughput(size, runs).await?;
            }
        }
        if !skip.contains("rate") {
            for burst in [1, 5] {
                rate_accuracy(40.0, burst, Duration::from_secs(10)).await?;
            }
        }
        if !skip.contains("cost") {
            for &size in &sizes {
                claim_cost(size).await?;
            }
        }
        println!("load_at_end loadavg={}", loadavg());
        Ok(())
    })
}

/// CPU seconds (user + system) this process has used so far, from
/// `/proc/self/stat` (clock ticks of 10 ms); NaN where it cannot be read.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    match (
        f.get(11).and_then(|v| v.parse::<f64>().ok()),
        f.get(12).and_then(|v| v.parse::<f64>().ok()),
    ) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

/// The 1-, 5- and 15-minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------- setup

async fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let clock: SharedClock = Arc::new(SystemClock);
    let store = Store::open(&dir.join("bench.db"), clock).await?;
    webhooks_mode(&store).await?;
    Ok(store)
}

/// `DISPATCH_BENCH_WEBHOOKS`: `off` (default: the triggers present, nothing
/// subscribed, as without `webhooks.url`), `on` (every event subscribed) or
/// `none` (the webhook triggers dropped: the schema before them).
async fn webhooks_mode(store: &Store) -> anyhow::Result<()> {
    match std::env::var("DISPATCH_BENCH_WEBHOOKS").as_deref() {
        Ok("on") => {
            store
                .webhook_set_subscriptions(&dialerd::webhooks::EVENTS)
                .await?
        }
        Ok("none") => {
            for t in [
                "attempt_outcome",
                "contact_final",
                "campaign_status",
                "dnc_opt_out",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER webhook_{t}")))
                    .execute(store.pool())
                    .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// One campaign (agent 7, UTC, the given window) with `n` validated contacts
/// `+14152NNNNNN` (valid San Francisco numbers) whose context is `{"name":"Ann","i":N}`, all by SQL.
async fn seed_campaign(store: &Store, n: usize, window: (&str, &str)) -> anyhow::Result<Campaign> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, agent_id, timezone, window_start, window_end, schedule) \
         VALUES ('bench', ?, 'UTC', ?, ?, '0 */5 * * * *') RETURNING id",
    )
    .bind(AGENT)
    .bind(window.0)
    .bind(window.1)
    .fetch_one(store.pool())
    .await?;
    if n > 0 {
        sqlx::query(
            "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1) \
             INSERT INTO contacts (campaign_id, phone_number, call_context, validated) \
             SELECT ?, printf('+14152%06d', i), json_object('name', 'Ann', 'i', i), 1 FROM s",
        )
        .bind(n as i64)
        .bind(id)
        .execute(store.pool())
        .await?;
    }
    store
        .campaign(id)
        .await?
        .context("the campaign just inserted")
}

/// The default engine tunables with the given rate and burst and 32 in flight.
fn engine_config(rate: f64, burst: u32) -> anyhow::Result<EngineConfig> {
    let settings = Settings::load_with_env(None, &HashMap::new())?;
    let mut cfg = EngineConfig::from_settings(&settings);
    cfg.rate_per_second = rate;
    cfg.burst = burst;
    cfg.max_in_flight = CONCURRENCY as u32;
    // Throughput, not calling hours: the quiet-hours floor would make the
    // result depend on the wall-clock hour (benches/zones.rs measures what
    // the hours rules cost per contact).
    cfg.compliance = Compliance::none();
    Ok(cfg)
}

fn client(base_url: &str) -> anyhow::Result<Client> {
    let key = ApiKey::new("sim-key").context("key")?;
    Ok(Client::new(base_url, key, Duration::from_secs(15))?)
}

fn parse_at(s: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("journal time {s:?}"))?
        .with_timezone(&Utc))
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    (b - a).num_microseconds().unwrap_or(0) as f64 / 1e6
}

// ---------------------------------------------------------------- throughput

struct EngineRun {
    cpu_us: f64,
    claim_batch: u32,
    rate: f64,
    secs: f64,
    sweep_secs: f64,
}

async fn engine_run(n: usize) -> anyhow::Result<EngineRun> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let campaign = seed_campaign(&store, n, ("00:00", "24:00")).await?;
    let sim = sim::spawn(every_call()).await?;
    let (_stop_tx, stop_rx) = watch::channel(false);
    let clock: SharedClock = Arc::new(SystemClock);
    let mut cfg = engine_config(100_000.0, 1000)?;
    cfg.max_in_flight = env_or("DISPATCH_BENCH_IN_FLIGHT", CONCURRENCY as u32);
    cfg.claim_batch = env_or("DISPATCH_BENCH_CLAIM_BATCH", cfg.claim_batch);
    // Under valgrind a claim can wait past the default and be released.
    cfg.max_claim_wait = Duration::from_secs(env_or(
        "DISPATCH_BENCH_CLAIM_WAIT_SECS",
        cfg.max_claim_wait.as_secs(),
    ));
    let claim_batch = cfg.claim_batch;
    let engine = Engine::new(store.clone(), client(&sim.base_url())?, clock, cfg, stop_rx);
    let t0 = Utc::now();
    let started = Instant::now();
    let cpu0 = cpu_secs();
    let report = engine.sweep_campaign(&campaign).await?;
    let cpu = cpu_secs() - cpu0;
    let sweep_secs = started.elapsed().as_secs_f64();
    let end = Utc::now();
    ensure!(
        report.dispatched == n as u64 && report.accepted == n as u64,
        "sweep report {report:?}, expected {n} accepted"
    );
    let stats = sim.stats();
    ensure!(
        stats.calls_placed == n as u64,
        "the simulator placed {} calls, expected {n}",
        stats.calls_placed
    );
    let recorded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM attempts WHERE state = 'accepted' AND request_id IS NOT NULL",
    )
    .fetch_one(store.pool())
    .await?;
    ensure!(
        recorded == n as i64,
        "{recorded} accepted attempts recorded, expected {n}"
    );
    let first = sim
        .journal()
        .iter()
        .map(|e| parse_at(&e.at))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .unwrap_or(t0);
    let secs = secs_between(first, end);
    store.close().await;
    sim.shutdown().await?;
    Ok(EngineRun {
        cpu_us: cpu / n as f64 * 1e6,
        claim_batch,
        rate: n as f64 / secs,
        secs,
        sweep_secs,
    })
}

/// The bodies the engine sends for contact `i`.
fn body(i: usize) -> DispatchRequest {
    let mut ctx = Map::new();
    ctx.insert("name".into(), json!("Ann"));
    ctx.insert("i".into(), json!(i));
    DispatchRequest {
        agent_id: AGENT,
        to_number: format!("+14152{i:06}"),
        call_context: ctx,
        from_number_id: None,
    }
}

/// The reference: reqwest, 32 in flight, the same bodies, a fresh simulator.
async fn raw_run(n: usize) -> anyhow::Result<(f64, f64, f64)> {
    let sim = sim::spawn(every_call()).await?;
    let http = reqwest::Client::builder()
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = format!("{}/calls/dispatch", sim.base_url());
    let bodies: Vec<DispatchRequest> = (0..n).map(body).collect();
    let started = Instant::now();
    let cpu0 = cpu_secs();
    futures::stream::iter(bodies.iter())
        .map(|b| {
            let (http, url) = (&http, &url);
            async move {
                let resp = http
                    .post(url)
                    .bearer_auth("sim-key")
                    .header("accept", "application/json")
                    .json(b)
                    .send()
                    .await?;
                ensure!(resp.status().is_success(), "status {}", resp.status());
                resp.bytes().await.context("reading the answer")?;
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await?;
    let secs = started.elapsed().as_secs_f64();
    let cpu_us = (cpu_secs() - cpu0) / n as f64 * 1e6;
    ensure!(
        sim.stats().calls_placed == n as u64,
        "the reference placed {} calls",
        sim.stats().calls_placed
    );
    sim.shutdown().await?;
    Ok((n as f64 / secs, secs, cpu_us))
}

async fn throughput(n: usize, runs: usize) -> anyhow::Result<()> {
    let (mut eng, mut raw) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let load = loadavg();
        let e = engine_run(n).await?;
        let (r, rsecs, rcpu) = if std::env::var("DISPATCH_BENCH_SKIP")
            .unwrap_or_default()
            .contains("raw")
        {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            raw_run(n).await?
        };
        println!(
            "dispatch_run n={n} run={run} in_flight={} claim_batch={} dialerd_per_s={:.0} dialerd_secs={:.3} sweep_secs={:.3} dialerd_cpu_us={:.1} raw_per_s={r:.0} raw_secs={rsecs:.3} raw_cpu_us={rcpu:.1} ratio={:.3} loadavg={load}",
            env_or("DISPATCH_BENCH_IN_FLIGHT", CONCURRENCY as u32),
            e.claim_batch,
            e.rate,
            e.secs,
            e.sweep_secs,
            e.cpu_us,
            e.rate / r
        );
        eng.push(e.rate);
        raw.push(r);
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let (e, r) = (median(&eng), median(&raw));
    let ratio = e / r;
    println!(
        "dispatch_throughput n={n} runs={runs} dialerd_per_s={e:.0} raw_per_s={r:.0} ratio={ratio:.3} best_dialerd_per_s={:.0} best_raw_per_s={:.0} target_ratio=0.5 met={} loadavg={}",
        best(&eng),
        best(&raw),
        if ratio >= 0.5 { "yes" } else { "no" },
        loadavg()
    );
    Ok(())
}

// ---------------------------------------------------------------- rate accuracy

async fn rate_accuracy(rate: f64, burst: u32, run_for: Duration) -> anyhow::Result<()> {
    let load = loadavg();
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    // More than can be sent in the time: the stop ends the run.
    let n = (rate * run_for.as_secs_f64() * 2.0) as usize + 100;
    let campaign = seed_campaign(&store, n, ("00:00", "24:00")).await?;
    let sim = sim::spawn(every_call()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = Engine::new(
        store.clone(),
        client(&sim.base_url())?,
        Arc::new(SystemClock),
        engine_config(rate, burst)?,
        stop_rx,
    );
    let sweep = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.sweep_campaign(&campaign).await })
    };
    tokio::time::sleep(run_for).await;
    stop_tx.send_replace(true);
    let report = sweep.await??;
    let mut at: Vec<DateTime<Utc>> = sim
        .journal()
        .iter()
        .map(|e| parse_at(&e.at))
        .collect::<anyhow::Result<_>>()?;
    at.sort();
    ensure!(at.len() > burst as usize + 1, "only {} requests", at.len());
    // Largest count in any window [t_i, t_i + 1 s).
    let mut max_window = 0usize;
    let mut j = 0usize;
    for i in 0..at.len() {
        while j < at.len() && at[j] < at[i] + chrono::Duration::seconds(1) {
            j += 1;
        }
        max_window = max_window.max(j - i);
    }
    let sent = at.len();
    let span = secs_between(at[0], at[sent - 1]);
    // Intervals between requests over the whole run (includes the burst).
    let mean = (sent - 1) as f64 / span;
    // After the initial burst: one request per 1/rate.
    let b = burst as usize;
    let steady = (sent - b) as f64 / secs_between(at[b - 1], at[sent - 1]);
    let limit = rate + f64::from(burst);
    let window_ok = max_window as f64 <= limit;
    let mean_ok = ((mean - rate) / rate).abs() <= 0.02;
    let steady_ok = ((steady - rate) / rate).abs() <= 0.02;
    println!(
        "rate_accuracy rate={rate} burst={burst} run_secs={:.0} sent={sent} recorded={} max_1s_window={max_window} limit={limit} window_met={} mean_per_s={mean:.3} mean_err_pct={:.2} mean_met={} steady_per_s={steady:.3} steady_err_pct={:.2} steady_met={} loadavg={load}",
        run_for.as_secs_f64(),
        report.dispatched,
        yes(window_ok),
        (mean - rate) / rate * 100.0,
        yes(mean_ok),
        (steady - rate) / rate * 100.0,
        yes(steady_ok),
    );
    store.close().await;
    sim.shutdown().await?;
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

// ---------------------------------------------------------------- transaction costs

/// One claim transaction (`claim_due`: the due read, the decisions and the
/// writes, the way the sweep makes it) and one `record_results` transaction,
/// per batch size, on a campaign of `size` pending contacts.
async fn claim_cost(size: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let campaign = seed_campaign(&store, size, ("00:00", "24:00")).await?;
    let mut budget = size;
    for batch in [1usize, 8, 32, 64, 256] {
        let load = loadavg();
        let rounds = (400 / batch).clamp(20, 100).min(budget / batch / 4).max(1);
        let (mut claim_t, mut record_t) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let t = Instant::now();
            let mut slots = batch;
            let round = store
                .claim_due(campaign.id, Utc::now(), batch.max(32) as i64, |_| {
                    (slots > 0).then(|| {
                        slots -= 1;
                        ClaimDecision::Dial { agent_id: AGENT }
                    })
                })
                .await?;
            claim_t.push(t.elapsed().as_secs_f64() * 1e3);
            let claimed = round.claimed;
            ensure!(
                claimed.len() == batch,
                "claimed {} of {batch}",
                claimed.len()
            );
            let results: Vec<AttemptResult> = claimed
                .iter()
                .enumerate()
                .map(|(k, c)| AttemptResult {
                    attempt_id: c.attempt_id,
                    contact_id: c.contact_id,
                    tries: 1,
                    first_try_at: Some(chrono::Utc::now()),
                    last_try_at: Some(chrono::Utc::now()),
                    result: SendResult::Accepted {
                        request_id: format!("{}", c.attempt_id * 1000 + k as i64),
                        raw_response: json!({"success": true, "requestId": c.attempt_id})
                            .to_string(),
                    },
                })
                .collect();
            let t = Instant::now();
            store.record_results(&results).await?;
            record_t.push(t.elapsed().as_secs_f64() * 1e3);
        }
        budget = budget.saturating_sub(rounds * batch);
        let per = |v: &[f64]| median(v);
        println!(
            "claim_cost contacts={size} batch={batch} rounds={rounds} claim_tx_ms={:.3} record_tx_ms={:.3} per_contact_ms={:.4} loadavg={load}",
            per(&claim_t),
            per(&record_t),
            (per(&claim_t) + per(&record_t)) / batch as f64,
        );
    }
    let sending: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE state <> 'accepted'")
            .fetch_one(store.pool())
            .await?;
    ensure!(sending == 0, "{sending} attempts left unrecorded");
    store.close().await;
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The simulator's defaults, keeping every call and journal entry: the
/// figures are computed from the whole journal, whatever the size.
fn every_call() -> SimOptions {
    SimOptions {
        max_calls: u64::MAX,
        ..SimOptions::default()
    }
}
