//! The cost of a contact's calling zones and hours (`cargo bench --bench
//! zones`; `harness = false`): what `import` adds per row (counting the
//! zone source) and what the claim path adds per due contact
//! (`policy::decide` with the shipped compliance rules), on numbers like
//! `import_1m`'s (UK mobiles), US landlines, Florida numbers and
//! Australian mobiles. `ZONES_BENCH_N` sets the numbers per kind.

use std::hint::black_box;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use dialerd::calendar::{Schedule, Window};
use dialerd::config::Compliance;
use dialerd::engine::policy::decide;
use dialerd::phone::zones::{number_zones, zone_source};
use dialerd::store::{CampaignRules, DueContact};

/// Builds the i-th number of a kind.
type MakeNumber = fn(usize) -> String;

fn main() {
    let n: usize = std::env::var("ZONES_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let kinds: [(&str, MakeNumber); 4] = [
        ("UK mobile", |i| format!("+4474{:08}", i % 100_000_000)),
        ("US landline (NY)", |i| {
            format!("+1212{:07}", 2_000_000 + i % 8_000_000)
        }),
        ("Florida", |i| {
            format!("+1305{:07}", 2_000_000 + i % 8_000_000)
        }),
        ("AU mobile", |i| format!("+614{:08}", i % 100_000_000)),
    ];
    // The first lookup builds the map and the number metadata: timed apart.
    let t = Instant::now();
    black_box(number_zones("+442079460958"));
    println!(
        "first lookup (reads the embedded map, compiles metadata): {:.2?}",
        t.elapsed()
    );
    let rules = CampaignRules {
        schedule: Schedule::parse("* * * * *").expect("cron"),
        timezone: chrono_tz::UTC,
        window: Window::parse("09:00-20:00").expect("window"),
        max_attempts: 3,
        retry_delay_secs: 3600,
        retry_outcomes: vec![],
        retry_delays: vec![],
        region: None,
        max_calls_per_number_per_day: 3,
    };
    let compliance = Compliance::default();
    let now = Utc
        .with_ymd_and_hms(2026, 7, 1, 16, 0, 0)
        .single()
        .expect("time");
    for (name, make) in kinds {
        let numbers: Vec<String> = (0..n).map(make).collect();
        let t = Instant::now();
        for num in &numbers {
            black_box(zone_source(false, num));
        }
        let per_import = t.elapsed().as_nanos() as f64 / n as f64;
        let contacts: Vec<DueContact> = numbers
            .iter()
            .map(|num| DueContact {
                id: 1,
                phone_number: num.clone(),
                timezone: None,
                agent_id: Some(7),
                call_context: "{}".into(),
                state: "pending".into(),
                attempts: 0,
                on_dnc: false,
                dnc_since: None,
                problem: None,
                calls_last_24h: 0,
                oldest_call_last_24h: None,
                live_attempt_elsewhere: false,
            })
            .collect();
        let t = Instant::now();
        for c in &contacts {
            black_box(decide(c, &rules, &compliance, Some(7), now));
        }
        let per_decide = t.elapsed().as_nanos() as f64 / n as f64;
        println!(
            "{name:<18} zone source (import, per row): {per_import:>7.0} ns   \
             decide (claim, per contact): {per_decide:>7.0} ns   ({n} numbers)"
        );
    }
}
