//! Simulator throughput: N dispatch requests (default 20,000; `SIM_BENCH_N`)
//! through reqwest with 32 in flight, against an in-process simulator with
//! no faults and no latency; then the cost of listing logs over all of them.
//! Client and server share the machine, so this is a floor for the server.
//!
//! `cargo bench --bench sim_throughput` (needs `harness = false`).

use std::time::{Duration, Instant};

use anyhow::Context;
use dialerd::sim::{self, SimOptions};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

const CONCURRENCY: usize = 32;

#[cfg_attr(test, allow(dead_code))]
fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("SIM_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(n))
}

async fn run(n: usize) -> anyhow::Result<()> {
    let sim = sim::spawn(SimOptions::default()).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .tcp_nodelay(true)
        .build()?;
    let url = format!("{}/calls/dispatch", sim.base_url());

    // Warm up the connection pool.
    dispatch_many(&http, &url, 500).await?;
    let start = Instant::now();
    dispatch_many(&http, &url, n).await?;
    let elapsed = start.elapsed();
    let stats = sim.stats();
    anyhow::ensure!(
        stats.calls_placed as usize == n + 500,
        "placed {} calls, expected {}",
        stats.calls_placed,
        n + 500
    );
    println!(
        "dispatch: {n} requests, concurrency {CONCURRENCY}, {:.2} s, {:.0} requests/s",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64()
    );

    for query in [
        "pagesize=30",
        "pagesize=30&agentid=7&call_status=busy",
        "pageno=300&pagesize=30&call_status=completed",
    ] {
        let per = time_gets(
            &http,
            &format!("{}/calls/logs?{query}", sim.base_url()),
            100,
        )
        .await?;
        println!(
            "list logs over {} calls ({query}): {:.2} ms/request",
            stats.calls_placed,
            per.as_secs_f64() * 1e3
        );
    }
    sim.shutdown().await
}

async fn dispatch_many(http: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<()> {
    futures::stream::iter(0..n)
        .map(|i| async move {
            let body = json!({
                "agent_id": 7,
                "to_number": format!("+1415{:07}", i % 10_000_000),
                "call_context": {"name": "Ann", "i": i},
                "from_number_id": null,
            });
            let resp = http
                .post(url)
                .bearer_auth("sim-key")
                .json(&body)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
            resp.bytes().await.context("reading the answer")?;
            Ok(())
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<()>()
        .await
}

async fn time_gets(http: &reqwest::Client, url: &str, times: u32) -> anyhow::Result<Duration> {
    let start = Instant::now();
    for _ in 0..times {
        let resp = http.get(url).bearer_auth("sim-key").send().await?;
        anyhow::ensure!(resp.status().is_success(), "status {}", resp.status());
        resp.bytes().await?;
    }
    Ok(start.elapsed() / times)
}
