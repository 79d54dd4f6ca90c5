//! Logging: readable lines on a terminal, plain lines without colour when
//! stderr is not one, JSON with `log.format = "json"`. When stderr is the
//! journal (`$JOURNAL_STREAM` names it), each text line starts with its
//! sd-daemon priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug)
//! so `journalctl -p err` finds errors, and carries no timestamp of its own
//! (journald stamps every line). The level comes from `RUST_LOG`, else
//! `log.level`, and can be changed on reload.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogSettings;

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
pub fn init(log: &LogSettings) {
    if RELOAD.get().is_some() {
        set_level(&log.level);
        return;
    }
    let (filter, handle) = reload::Layer::new(filter_for(&log.level));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if log.json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else if stderr_is_journal() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(SdPriority(format))
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

/// Whether stderr is the journal: systemd sets `$JOURNAL_STREAM` to the
/// `device:inode` of the stream it connected, and a child whose stderr was
/// redirected elsewhere must not prefix, so both are compared.
pub fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// The sd-daemon priority of a level (`sd-daemon.h`: `SD_ERR` is 3).
pub fn sd_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// Starts each line with `<N>`, its sd-daemon priority, then formats it with
/// the inner format.
struct SdPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SdPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", sd_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Changes the level of the installed subscriber (SIGHUP reload).
pub fn set_level(level: &str) {
    if let Some(handle) = RELOAD.get() {
        let _ = handle.modify(|f| *f = filter_for(level));
    }
}
