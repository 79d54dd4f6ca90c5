//! `dialerd run`: opens the store under a single-instance lock, recovers what
//! a previous stop left `sending`, then runs the scheduler, reconciler, inbox
//! and heartbeat loops around the engine's single-step functions until a
//! shutdown signal (or, with `--until-idle`, until nothing is left to do).
//! SIGHUP reloads the configuration.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::clock::SharedClock;
use crate::config::{ConfigError, Settings};
use crate::engine::{Engine, EngineConfig};
use crate::provider::Client;
use crate::store::Store;

/// How the daemon runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Exit once no work is left (see `run --until-idle`).
    pub until_idle: bool,
    /// Where to re-read the configuration from on SIGHUP.
    pub config_file: Option<PathBuf>,
}

/// What a signal asks of the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop cleanly (SIGTERM, SIGINT).
    Stop,
    /// Reload the configuration (SIGHUP).
    Reload,
}

/// An exclusive lock next to the database, held for the daemon's life: the
/// kernel releases it when the process dies, so a restart after `kill -9` is
/// never blocked, and a second daemon on the same database refuses to start.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock for database `db`, or explains who holds it.
    pub fn acquire(db: &Path) -> anyhow::Result<Self> {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match fs4::fs_std::FileExt::try_lock_exclusive(&file) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                anyhow::bail!(
                    "another dialerd is already running on database {} (lock {} held{}); refusing to start a second one",
                    db.display(),
                    path.display(),
                    if holder.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" by pid {}", holder.trim())
                    }
                );
            }
        }
        let _ = std::fs::write(&path, std::process::id().to_string());
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Builds the API client from the configuration.
pub fn client_for(settings: &Settings, clock: SharedClock) -> anyhow::Result<Client> {
    let key = settings.api_key.clone().ok_or_else(|| ConfigError::Invalid {
        key: "provider.api_key_file".into(),
        message: "no API key: set DIALERD_API_KEY, provider.api_key_file, or a systemd credential named api_key".into(),
    })?;
    Ok(
        Client::new(&settings.base_url, key, settings.request_timeout)
            .map_err(|e| ConfigError::Invalid {
                key: "provider.base_url".into(),
                message: e.to_string(),
            })?
            .with_clock(clock),
    )
}

/// Runs the daemon until `control` says stop (or until idle).
pub async fn run(
    settings: Settings,
    clock: SharedClock,
    opts: RunOptions,
    mut control: tokio::sync::mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let client = client_for(&settings, clock.clone())?;
    let lock = InstanceLock::acquire(&settings.database_path)?;
    if let Some(addr) = settings.metrics_listen {
        crate::ops::install_metrics(addr)?;
    }
    let store = Store::open(&settings.database_path, clock.clone()).await?;
    let recovered = store
        .recover_sending("the daemon stopped while this request may have been in flight")
        .await?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "attempts left `sending` by the last stop are now uncertain; the reconciler will resolve them"
        );
    }
    if let Some(reason) = store.dispatch_paused().await? {
        tracing::error!(%reason, "DISPATCH IS PAUSED for every campaign; after fixing the key run `dialerd dispatch resume`");
    }
    // ProcSubset=pid hides /proc/sys under the systemd unit.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    store
        .daemon_started(std::process::id(), host.trim())
        .await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = Engine::new(
        store.clone(),
        client,
        clock.clone(),
        EngineConfig::from_settings(&settings),
        stop_rx.clone(),
    );
    let mut webhooks = crate::webhooks::WebhookService::start(
        store.clone(),
        clock.clone(),
        settings.webhooks.as_ref(),
        stop_rx.clone(),
    )
    .await?;
    let settings = Arc::new(std::sync::RwLock::new(settings));
    crate::ops::notify_ready();
    tracing::info!(database = %store_path(&settings), "dialerd running");

    let mut tasks = JoinSet::new();
    tasks.spawn(scheduler_loop(
        engine.clone(),
        clock.clone(),
        settings.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(reconciler_loop(
        engine.clone(),
        clock.clone(),
        settings.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(heartbeat_loop(
        engine.clone(),
        clock.clone(),
        settings.clone(),
        stop_rx.clone(),
    ));
    tasks.spawn(inbox_loop(
        store.clone(),
        clock.clone(),
        settings.clone(),
        stop_rx.clone(),
    ));
    if opts.until_idle {
        tasks.spawn(idle_loop(
            engine.clone(),
            clock.clone(),
            settings.clone(),
            stop_tx.clone(),
            stop_rx.clone(),
        ));
    }

    let mut stopped = stop_rx.clone();
    loop {
        tokio::select! {
            msg = control.recv() => match msg {
                Some(Control::Reload) => {
                    reload(&engine, &settings, &opts, clock.clone());
                    let hooks = settings.read().unwrap_or_else(|p| p.into_inner()).webhooks.clone();
                    if let Err(e) = webhooks.apply(hooks.as_ref()).await {
                        tracing::error!(error = %format!("{e:#}"), "cannot apply the webhooks configuration");
                    }
                }
                Some(Control::Stop) | None => break,
            },
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
    let grace = Duration::from_secs(
        settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .raw
            .daemon
            .shutdown_grace_secs,
    );
    shutdown(&engine, &store, stop_tx, grace).await;
    webhooks.shutdown(grace).await;
    tasks.shutdown().await;
    drop(lock);
    Ok(())
}

/// Stops new work, lets requests in flight finish within `grace`, and records
/// anything still unfinished per the safety rule.
async fn shutdown(
    engine: &Arc<Engine>,
    store: &Store,
    stop_tx: watch::Sender<bool>,
    grace: Duration,
) {
    crate::ops::notify_stopping();
    let _ = stop_tx.send(true);
    tracing::info!(
        in_flight = engine.requests_in_flight(),
        "stopping: no new sweeps; waiting for requests in flight"
    );
    // Real time, not the engine's clock: this deadline races systemd's
    // TimeoutStopSec, which is wall time whatever clock the engine reads.
    let deadline = tokio::time::Instant::now() + grace;
    while engine.sweeps_running() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match store
        .recover_sending("the daemon stopped before this request's answer was recorded")
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            n,
            "requests still unanswered at the deadline are now uncertain"
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot mark unfinished attempts uncertain; the next start will")
        }
    }
    if let Err(e) = store.daemon_stopped().await {
        tracing::warn!(error = %e, "cannot record the stop");
    }
    tracing::info!("stopped");
}

fn reload(
    engine: &Arc<Engine>,
    settings: &Arc<std::sync::RwLock<Settings>>,
    opts: &RunOptions,
    clock: SharedClock,
) {
    crate::ops::notify_reloading();
    let result = Settings::load(opts.config_file.as_deref())
        .map_err(anyhow::Error::from)
        .and_then(|new| {
            let client = client_for(&new, clock.clone())?;
            Ok((new, client))
        });
    match result {
        Ok((new, client)) => {
            let old_db = settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .database_path
                .clone();
            if new.database_path != old_db {
                tracing::warn!("database.path changed; it takes effect only after a restart");
            }
            crate::telemetry::set_level(&new.raw.log.level);
            engine.reconfigure(EngineConfig::from_settings(&new));
            engine.set_client(client);
            *settings.write().unwrap_or_else(|p| p.into_inner()) = new;
            tracing::info!("configuration reloaded");
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload refused; the previous configuration stays in force")
        }
    }
    crate::ops::notify_ready();
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(v.clamp(0.001, 86_400.0))
}

async fn scheduler_loop(
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let refresh = secs(
            settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .raw
                .daemon
                .campaign_refresh_secs,
        );
        let wake = match engine.tick().await {
            Ok((_, Some(next))) => next.min(crate::clock::plus(clock.now(), refresh)),
            Ok((_, None)) => crate::clock::plus(clock.now(), refresh),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "scheduler step failed");
                crate::clock::plus(clock.now(), refresh)
            }
        };
        tokio::select! {
            _ = clock.sleep_until(wake) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn reconciler_loop(
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match engine.reconcile_once().await {
            Ok(r) if r.finalised + r.linked + r.not_placed + r.timed_out > 0 => {
                tracing::info!(?r, "reconciled")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reconcile round failed; will retry")
            }
        }
        let every = secs(
            settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .raw
                .reconcile
                .poll_interval_secs,
        );
        tokio::select! {
            _ = clock.sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn heartbeat_loop(
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let line = engine.status_line();
        if let Err(e) = engine.store().heartbeat(&line).await {
            tracing::warn!(error = %e, "cannot write the heartbeat");
        }
        crate::ops::notify_status(&line);
        let every = Duration::from_secs(
            settings
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .raw
                .daemon
                .heartbeat_secs,
        );
        tokio::select! {
            _ = clock.sleep(crate::ops::watchdog_interval(every)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn inbox_loop(
    store: Store,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    mut stop: watch::Receiver<bool>,
) {
    let (dir, settle) = {
        let s = settings.read().unwrap_or_else(|p| p.into_inner());
        (s.inbox_dir.clone(), secs(s.raw.inbox.settle_secs.max(0.0)))
    };
    let Some(dir) = dir else { return };
    tracing::info!(dir = %dir.display(), "watching the inbox for CSV campaigns");
    let mut watcher = crate::import::InboxWatcher::new(dir, settle);
    loop {
        let (defaults, every) = {
            let s = settings.read().unwrap_or_else(|p| p.into_inner());
            (
                s.campaign_defaults.clone(),
                secs(s.raw.inbox.poll_interval_secs),
            )
        };
        match watcher.scan_once(&store, &defaults).await {
            Ok(outcomes) => {
                for o in outcomes {
                    match o {
                        crate::import::InboxOutcome::Imported { file, report, .. } => {
                            tracing::info!(file = %file.display(), summary = %report.summary(), "inbox file imported")
                        }
                        crate::import::InboxOutcome::Failed { file, error, .. } => {
                            tracing::error!(file = %file.display(), %error, "inbox file refused; moved to failed/")
                        }
                        crate::import::InboxOutcome::Deferred { file, error } => {
                            tracing::warn!(file = %file.display(), %error, "inbox file left for the next scan")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot scan the inbox"),
        }
        tokio::select! {
            _ = clock.sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn idle_loop(
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    stop_tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = clock.sleep(Duration::from_millis(200)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if engine.sweeps_running() > 0 || engine.requests_in_flight() > 0 {
            continue;
        }
        let hooks = settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .webhooks
            .clone();
        match engine.store().has_open_work().await {
            Ok(false) => {
                match crate::webhooks::waiting(engine.store(), hooks.as_ref(), &clock).await {
                    Ok(0) => {}
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot check for undelivered webhook events");
                        continue;
                    }
                }
                tracing::info!(
                    "nothing left to do: every contact is final and no call is outstanding"
                );
                let _ = stop_tx.send(true);
                return;
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "cannot check for open work"),
        }
    }
}

fn store_path(settings: &Arc<std::sync::RwLock<Settings>>) -> String {
    settings
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .database_path
        .display()
        .to_string()
}
