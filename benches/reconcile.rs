//! Reconciliation cost and lag: list requests per reconciled call, and the
//! time from a call's final status being available in the simulator to its
//! outcome being written.
//!
//! `cargo bench --bench reconcile` (`harness = false`). Figures are printed as
//! greppable `key=value` lines:
//!
//! - `reconcile_burst`: N contacts (default 1000 and 10000) dispatched as fast
//!   as the engine goes (rate 100000/s, burst 1000, 32 in flight) to a
//!   simulator with `--call-secs 1-3` and no faults, while `reconcile_once()`
//!   runs every 0.5 s (page_size 100, the other reconcile settings at their
//!   defaults) until every call has its outcome, or until no outcome was
//!   written for 15 s after the sweep ended (`stalled=yes`). A stalled case is
//!   repeated with `max_pages_per_poll` raised to cover every call.
//! - `reconcile_steady`: dispatch at 50/s (burst 1) for 60 s with a round every
//!   5 s, then until all are reconciled. `steady_list_per_call` counts only the
//!   rounds from 10 s into the run until the sweep ended. Target <= 0.05.
//!
//! Lag: the simulator makes a call final `final_after` seconds after it
//! received the request, drawn from its seeded generator, which is not
//! exposed; the bench replays the same draws (`rand::StdRng` from the seed,
//! in the simulator's order) and checks that every replayed outcome equals
//! the outcome written (`replay_mismatches` must be 0, else the lag figures
//! are void). Available time = journal `at` + `final_after`; written time =
//! the end of the round that committed it. Lag = written - available.
//! `list_per_call` = the reports' `list_requests` / outcomes written; the
//! simulator's `log_list_requests` is printed beside it as a cross-check.
//!
//! Environment: `RECONCILE_BENCH_SIZES` (default `1000,10000`),
//! `RECONCILE_BENCH_STEADY_SECS` (default 60, 0 skips the steady case),
//! `RECONCILE_BENCH_STEADY_RATE` (default 50).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use dialerd::clock::{SharedClock, SystemClock};
use dialerd::config::Settings;
use dialerd::domain::Outcome;
use dialerd::engine::{Engine, EngineConfig, ReconcileReport};
use dialerd::provider::Client;
use dialerd::secret::ApiKey;
use dialerd::sim::{self, SimOptions};
use dialerd::store::{Campaign, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

const AGENT: i64 = 7;
const SEED: u64 = 1;
/// The simulator's first `requestId` (src/sim/state.rs).
const FIRST_REQUEST_ID: i64 = 3_200_001;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(",")
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("RECONCILE_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000]);
    let steady_secs: u64 = env_or("RECONCILE_BENCH_STEADY_SECS", 60);
    let steady_rate: f64 = env_or("RECONCILE_BENCH_STEADY_RATE", 50.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        for &n in &sizes {
            let r = run(Case::burst(n, None)).await?;
            if r.stalled {
                let pages = (n as u32).div_ceil(100) + 10;
                run(Case::burst(n, Some(pages))).await?;
            }
        }
        if steady_secs > 0 {
            let n = (steady_rate * steady_secs as f64).round() as usize;
            run(Case {
                name: "reconcile_steady",
                n,
                rate: steady_rate,
                burst: 1,
                interval: Duration::from_secs(5),
                max_pages: None,
            })
            .await?;
        }
        Ok(())
    })
}

struct Case {
    name: &'static str,
    n: usize,
    rate: f64,
    burst: u32,
    interval: Duration,
    max_pages: Option<u32>,
}

impl Case {
    fn burst(n: usize, max_pages: Option<u32>) -> Case {
        Case {
            name: "reconcile_burst",
            n,
            rate: 100_000.0,
            burst: 1000,
            interval: Duration::from_millis(500),
            max_pages,
        }
    }
}

struct RunResult {
    stalled: bool,
}

async fn open_store(dir: &Path) -> anyhow::Result<Store> {
    let clock: SharedClock = Arc::new(SystemClock);
    Ok(Store::open(&dir.join("bench.db"), clock).await?)
}

async fn seed_campaign(store: &Store, n: usize) -> anyhow::Result<Campaign> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (name, agent_id, timezone, window_start, window_end, schedule) \
         VALUES ('bench', ?, 'UTC', '00:00', '24:00', '0 */5 * * * *') RETURNING id",
    )
    .bind(AGENT)
    .fetch_one(store.pool())
    .await?;
    sqlx::query(
        "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ? - 1) \
         INSERT INTO contacts (campaign_id, phone_number, call_context, validated) \
         SELECT ?, printf('+1415%07d', i), json_object('name', 'Ann', 'i', i), 1 FROM s",
    )
    .bind(n as i64)
    .bind(id)
    .execute(store.pool())
    .await?;
    store
        .campaign(id)
        .await?
        .context("the campaign just inserted")
}

/// The simulator's draws for its first `count` calls: (outcome, final_after
/// in seconds), replayed in the order of src/sim/state.rs `decide` with no
/// fault enabled (no fault draw is made then).
fn replay(opts: &SimOptions, count: usize) -> Vec<(Outcome, f64)> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    (0..count)
        .map(|_| {
            let outcome = opts.outcomes.pick(rng.random::<f64>());
            let final_after = opts.call_secs.at(rng.random::<f64>());
            match outcome {
                Outcome::Completed => {
                    let _: u32 = rng.random_range(15..=240);
                }
                Outcome::Voicemail => {
                    let _: u32 = rng.random_range(8..=40);
                }
                _ => {}
            }
            let _: u32 = rng.random();
            (outcome, final_after)
        })
        .collect()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(case: Case) -> anyhow::Result<RunResult> {
    let load = loadavg();
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let campaign = seed_campaign(&store, case.n).await?;
    let opts = SimOptions {
        seed: SEED,
        call_secs: "1-3".parse().map_err(anyhow::Error::msg)?,
        // The lag is computed from the whole journal.
        max_calls: u64::MAX,
        ..SimOptions::default()
    };
    let sim = sim::spawn(opts.clone()).await?;
    let settings = Settings::load_with_env(None, &HashMap::new())?;
    let mut cfg = EngineConfig::from_settings(&settings);
    // Reconciliation, not calling hours: no quiet-hours floor, so the result
    // does not depend on the wall-clock hour.
    cfg.compliance = dialerd::config::Compliance::none();
    cfg.rate_per_second = case.rate;
    cfg.burst = case.burst;
    cfg.max_in_flight = 32;
    cfg.claim_batch = 64;
    cfg.page_size = 100;
    if let Some(p) = case.max_pages {
        cfg.max_pages_per_poll = p;
    }
    let max_pages = cfg.max_pages_per_poll;
    let (_stop_tx, stop_rx) = watch::channel(false);
    let client = Client::new(
        &sim.base_url(),
        ApiKey::new("sim-key").context("key")?,
        Duration::from_secs(15),
    )?;
    let engine = Engine::new(store.clone(), client, Arc::new(SystemClock), cfg, stop_rx);

    let started = Instant::now();
    let sweep = {
        let (engine, campaign) = (engine.clone(), campaign.clone());
        tokio::spawn(async move {
            let r = engine.sweep_campaign(&campaign).await;
            (r, Instant::now())
        })
    };
    let mut sweep = Some(sweep);
    let mut sweep_done_at: Option<Instant> = None;
    let mut written: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut total = ReconcileReport::default();
    let mut steady = ReconcileReport::default();
    let mut rounds = 0u64;
    let mut round_ms: Vec<f64> = Vec::new();
    let mut last_progress = Instant::now();
    let mut stalled = false;
    let mut max_outstanding = 0usize;
    let mut tick = tokio::time::interval(case.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(s) = sweep.as_ref()
            && s.is_finished()
        {
            let (r, at) = sweep.take().expect("checked").await?;
            let r = r?;
            ensure!(r.accepted == case.n as u64, "sweep report {r:?}");
            sweep_done_at = Some(at);
        }
        let round_start = Instant::now();
        let since = Utc::now() - chrono::Duration::seconds(2);
        let r = engine.reconcile_once().await?;
        let end = Utc::now();
        round_ms.push(round_start.elapsed().as_secs_f64() * 1e3);
        rounds += 1;
        max_outstanding = max_outstanding.max(r.outstanding);
        add(&mut total, &r);
        if sweep_done_at.is_none() && started.elapsed() >= Duration::from_secs(10) {
            add(&mut steady, &r);
        }
        // Outcomes committed by this round (finished_at has whole seconds).
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT request_id FROM attempts WHERE outcome IS NOT NULL AND request_id IS NOT NULL AND finished_at >= ?",
        )
        .bind(since.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .fetch_all(store.pool())
        .await?;
        for (rid,) in rows {
            if seen.insert(rid.clone()) {
                written.insert(rid, end);
            }
        }
        if r.finalised > 0 {
            last_progress = Instant::now();
        }
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM attempts WHERE outcome IS NULL")
            .fetch_one(store.pool())
            .await?;
        if let Some(done) = sweep_done_at {
            if left == 0 {
                break;
            }
            if last_progress.elapsed() >= Duration::from_secs(15)
                && done.elapsed() >= Duration::from_secs(15)
            {
                stalled = true;
                break;
            }
        }
    }
    let total_secs = started.elapsed().as_secs_f64();
    let dispatch_secs = sweep_done_at.map_or(f64::NAN, |d| (d - started).as_secs_f64());

    // Lag, from the replayed draws.
    let stats = sim.stats();
    let placed = stats.calls_placed as usize;
    let draws = replay(&opts, placed);
    let received: HashMap<i64, DateTime<Utc>> = sim
        .journal()
        .into_iter()
        .filter_map(|e| {
            let at = DateTime::parse_from_rfc3339(&e.at)
                .ok()?
                .with_timezone(&Utc);
            Some((e.request_id?, at))
        })
        .collect();
    let outcomes: Vec<(String, String)> =
        sqlx::query_as("SELECT request_id, outcome FROM attempts WHERE outcome IS NOT NULL AND request_id IS NOT NULL")
            .fetch_all(store.pool())
            .await?;
    let mut mismatches = 0usize;
    let mut lags = Vec::with_capacity(outcomes.len());
    for (rid, outcome) in &outcomes {
        let Ok(id) = rid.parse::<i64>() else {
            mismatches += 1;
            continue;
        };
        let Some(&(drawn, final_after)) = usize::try_from(id - FIRST_REQUEST_ID)
            .ok()
            .and_then(|i| draws.get(i))
        else {
            mismatches += 1;
            continue;
        };
        if drawn.as_str() != outcome {
            mismatches += 1;
            continue;
        }
        if let (Some(at), Some(w)) = (received.get(&id), written.get(rid)) {
            let available = *at + chrono::Duration::microseconds((final_after * 1e6) as i64);
            lags.push((*w - available).num_microseconds().unwrap_or(0) as f64 / 1e6);
        }
    }
    lags.sort_by(f64::total_cmp);
    round_ms.sort_by(f64::total_cmp);
    let per = |r: &ReconcileReport| r.list_requests as f64 / r.finalised.max(1) as f64;
    let left = case.n as u64 - total.finalised;
    println!(
        "{} n={} rate={} interval_ms={} page_size=100 max_pages_per_poll={max_pages} rounds={rounds} reconciled={} left={left} stalled={} \
         list_requests={} sim_list_requests={} list_per_call={:.4} steady_list_per_call={:.4} steady_rounds_finalised={} max_outstanding={max_outstanding} \
         lag_p50_s={:.3} lag_p95_s={:.3} lag_max_s={:.3} lag_n={} replay_mismatches={mismatches} round_ms_p50={:.1} round_ms_max={:.1} \
         dispatch_secs={dispatch_secs:.2} total_secs={total_secs:.2} target_list_per_call=0.05 loadavg={load}",
        case.name,
        case.n,
        case.rate,
        case.interval.as_millis(),
        total.finalised,
        if stalled { "yes" } else { "no" },
        total.list_requests,
        stats.log_list_requests,
        per(&total),
        if steady.finalised > 0 {
            per(&steady)
        } else {
            f64::NAN
        },
        steady.finalised,
        pct(&lags, 0.5),
        pct(&lags, 0.95),
        lags.last().copied().unwrap_or(f64::NAN),
        lags.len(),
        pct(&round_ms, 0.5),
        round_ms.last().copied().unwrap_or(f64::NAN),
    );
    store.close().await;
    sim.shutdown().await?;
    Ok(RunResult { stalled })
}

fn add(acc: &mut ReconcileReport, r: &ReconcileReport) {
    acc.list_requests += r.list_requests;
    acc.finalised += r.finalised;
    acc.linked += r.linked;
    acc.not_placed += r.not_placed;
    acc.timed_out += r.timed_out;
    acc.errors += r.errors;
}
