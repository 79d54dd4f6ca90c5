//! Logging: readable lines on a terminal, plain lines without colour when
//! stderr is not one (journald), JSON with `log.format = "json"`. The level
//! comes from `RUST_LOG`, else `log.level`, and can be changed on reload.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::RawLog;

/// Noisy dependencies kept at `warn` unless `RUST_LOG` says otherwise.
const QUIET: &str = "sqlx=warn,hyper=warn,reqwest=warn,h2=warn,rustls=warn,tower=warn,axum=warn";

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

fn filter_for(level: &str) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => {
            EnvFilter::try_new(v).unwrap_or_else(|_| EnvFilter::new("info"))
        }
        _ => EnvFilter::try_new(format!("{level},{QUIET}"))
            .unwrap_or_else(|_| EnvFilter::new("info")),
    }
}

/// Installs the global subscriber once; later calls only change the level.
pub fn init(log: &RawLog) {
    if RELOAD.get().is_some() {
        set_level(&log.level);
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(&log.level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if log.format == "json" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        let ansi = std::io::stderr().is_terminal();
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_target(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    if result.is_ok() {
        let _ = RELOAD.set(handle);
    }
}

/// Changes the level of the installed subscriber (SIGHUP reload).
pub fn set_level(level: &str) {
    if let Some(handle) = RELOAD.get() {
        let _ = handle.modify(|f| *f = filter_for(level));
    }
}
