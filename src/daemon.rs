//! `dialerd run`: opens the store under a single-instance lock, recovers what
//! a previous stop left `sending`, then runs the scheduler, reconciler, inbox
//! and heartbeat loops around the engine's single-step functions until a
//! shutdown signal (or, with `--until-idle`, until nothing is left to do).
//! SIGHUP reloads the configuration.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
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

/// An exclusive lock on the database file's identity, held for the daemon's
/// life: the kernel releases it when the process dies, so a restart after
/// `kill -9` is never blocked, and a second daemon on the same database
/// refuses to start whatever path reaches it (a symlink, `..`, a hard link
/// in the same directory).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    _identity: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Takes the lock for database `db`, or explains who holds it. Two lock
    /// files beside the real database file, both `flock`ed: `<canonical
    /// path>.lock`, which names the holder's pid, and `.dialerd-<dev>-<inode>.lock`,
    /// keyed by the file's identity. The database file itself is never held
    /// open here: closing a second descriptor of it would drop SQLite's own
    /// `fcntl` locks.
    pub fn acquire(db: &Path) -> anyhow::Result<Self> {
        // Created empty if missing (SQLite takes an empty file as a new
        // database), so it has an identity before the store opens it.
        // 0600 whatever the umask: the database (and the -wal and -shm
        // files SQLite derives from its mode) is private.
        drop(
            std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true),
                0o600,
            )
            .open(db)
            .with_context(|| format!("cannot open database {}", db.display()))?,
        );
        let canonical = std::fs::canonicalize(db)
            .with_context(|| format!("cannot resolve database path {}", db.display()))?;
        let id = std::fs::metadata(&canonical)
            .with_context(|| format!("cannot read database {}", canonical.display()))?;
        let mut name = canonical.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let identity = canonical.parent().unwrap_or(Path::new("/")).join(format!(
            ".dialerd-{}-{}.lock",
            id.dev(),
            id.ino()
        ));
        let file = open_lock_file(&path)?;
        let identity_file = open_lock_file(&identity)?;
        let locked = |f: &File| matches!(fs4::fs_std::FileExt::try_lock_exclusive(f), Ok(true));
        if !locked(&identity_file) || !locked(&file) {
            // The identity file names the holder whatever path it used.
            let holder = std::fs::read_to_string(&identity)
                .ok()
                .filter(|h| !h.trim().is_empty())
                .or_else(|| std::fs::read_to_string(&path).ok())
                .unwrap_or_default();
            anyhow::bail!(
                "another dialerd is already running on database {} (the file {}; lock {} held{}); refusing to start a second one",
                db.display(),
                canonical.display(),
                path.display(),
                if holder.trim().is_empty() {
                    String::new()
                } else {
                    format!(" by pid {}", holder.trim())
                }
            );
        }
        let _ = std::fs::write(&path, std::process::id().to_string());
        let _ = std::fs::write(&identity, std::process::id().to_string());
        Ok(Self {
            _file: file,
            _identity: identity_file,
            path,
        })
    }

    /// Whether a process holds the lock of database `db` now (without
    /// creating the lock file, and without taking the lock for long).
    pub fn is_held(db: &Path) -> bool {
        // The lock sits beside the real file, whatever path reaches it.
        let Ok(db) = std::fs::canonicalize(db) else {
            return false;
        };
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let Ok(file) = File::open(PathBuf::from(name)) else {
            return false;
        };
        match fs4::fs_std::FileExt::try_lock_shared(&file) {
            Ok(true) => {
                let _ = fs4::fs_std::FileExt::unlock(&file);
                false
            }
            Ok(false) | Err(_) => true,
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating) a lock file.
fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    std::os::unix::fs::OpenOptionsExt::mode(
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true),
        0o600,
    )
    .open(path)
    .with_context(|| format!("cannot open lock file {}", path.display()))
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
            .with_clock(clock)
            .with_max_response_bytes(
                usize::try_from(settings.raw.provider.max_response_bytes).unwrap_or(usize::MAX),
            ),
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
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
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
    clear_pause_for_new_key(&store, &client).await;
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
    let liveness = Arc::new(Liveness::default());
    tasks.spawn(scheduler_loop(
        engine.clone(),
        clock.clone(),
        settings.clone(),
        stop_rx.clone(),
        liveness.clone(),
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
        liveness,
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
        .inspect(|new| {
            for warning in new.warnings() {
                tracing::warn!("{warning}");
            }
        })
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
            let changed = client.key_fingerprint() != engine.client_key_fingerprint();
            engine.set_client(client.clone());
            *settings.write().unwrap_or_else(|p| p.into_inner()) = new;
            tracing::info!("configuration reloaded");
            if changed {
                let store = engine.store().clone();
                tokio::spawn(async move { clear_pause_for_new_key(&store, &client).await });
            }
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload refused; the previous configuration stays in force")
        }
    }
    crate::ops::notify_ready();
}

/// Clears a pause caused by a refused key when `client` sends another key:
/// the operator replaced it, and a restart (or reload) with the new key must
/// not also need `dialerd dispatch resume`. The scheduler sees the cleared
/// pause at its next step.
async fn clear_pause_for_new_key(store: &Store, client: &Client) {
    match store
        .clear_pause_if_key_changed(&client.key_fingerprint())
        .await
    {
        Ok(true) => tracing::warn!(
            "the API key differs from the one the API refused; dispatching resumed (a refusal of this key pauses it again)"
        ),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "cannot check whether the API key changed since the pause")
        }
    }
}

fn secs(v: f64) -> Duration {
    Duration::from_secs_f64(v.clamp(0.001, 86_400.0))
}

/// When the scheduler's current step began; `None` between steps. The
/// heartbeat reads it to tell a slow step from a wedged daemon.
#[derive(Debug, Default)]
pub struct Liveness {
    scheduler_step: std::sync::Mutex<Option<chrono::DateTime<chrono::Utc>>>,
}

impl Liveness {
    fn step(&self, started: Option<chrono::DateTime<chrono::Utc>>) {
        *self
            .scheduler_step
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = started;
    }

    /// How long the unfinished scheduler step has run, if one has run longer
    /// than `limit` at `now`.
    pub fn stalled(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        limit: Duration,
    ) -> Option<chrono::TimeDelta> {
        let started = (*self
            .scheduler_step
            .lock()
            .unwrap_or_else(|p| p.into_inner()))?;
        let ran = now - started;
        (ran.to_std().unwrap_or_default() > limit).then_some(ran)
    }
}

async fn scheduler_loop(
    engine: Arc<Engine>,
    clock: SharedClock,
    settings: Arc<std::sync::RwLock<Settings>>,
    mut stop: watch::Receiver<bool>,
    liveness: Arc<Liveness>,
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
        liveness.step(Some(clock.now()));
        let ticked = engine.tick().await;
        liveness.step(None);
        let wake = match ticked {
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
    liveness: Arc<Liveness>,
) {
    // Beats in a row on which the database was writable but the pool was not:
    // one can be a race with space coming and going, three are a wedge.
    let mut wedged = 0u32;
    loop {
        wedged = if beat(&engine).await { 0 } else { wedged + 1 };
        let mut pet = wedged < 3;
        if let Some(ran) = liveness.stalled(clock.now(), crate::ops::stall_limit()) {
            tracing::error!(
                running_secs = ran.num_seconds(),
                "a scheduler step has not finished; the watchdog is no longer petted, so systemd restarts dialerd"
            );
            pet = false;
        }
        crate::ops::notify_status(&engine.status_line(), pet);
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

/// Writes the heartbeat; when that fails, probes the database through a
/// connection of its own. Returns whether the watchdog may be petted: yes
/// when the write went through, or when the database itself cannot be
/// written (the daemon waits for it by choice, dispatching nothing, and
/// goes on by itself once it can); no when the database is writable and
/// only this process's connections fail, which a restart cures.
async fn beat(engine: &Engine) -> bool {
    let written = engine.store().heartbeat(&engine.status_line()).await;
    let Err(error) = written else {
        engine.note_storage(Ok(()));
        return true;
    };
    match engine.store().probe_write().await {
        Err(probe) => {
            engine.note_storage(Err(probe.to_string()));
            true
        }
        Ok(()) => {
            tracing::error!(%error, "the database is writable, but this process's connections cannot write it; after three such heartbeats the watchdog is no longer petted, so systemd restarts dialerd");
            false
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
    // A scan failing the same way every poll is logged once, not every 2 s.
    let mut last_error: Option<String> = None;
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
                if last_error.take().is_some() {
                    tracing::info!("the inbox can be scanned again");
                }
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
            Err(e) => {
                let error = format!("{e:#}");
                if last_error.as_deref() != Some(error.as_str()) {
                    tracing::error!(%error, "cannot scan the inbox; retrying every poll, logged again if the error changes");
                    last_error = Some(error);
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn a_scheduler_step_counts_as_stalled_only_past_the_limit_and_only_while_unfinished() {
        let live = Liveness::default();
        let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
        let limit = Duration::from_secs(15);
        assert_eq!(live.stalled(t0, limit), None, "no step running");
        live.step(Some(t0));
        assert_eq!(
            live.stalled(t0 + chrono::Duration::seconds(15), limit),
            None
        );
        assert_eq!(
            live.stalled(t0 + chrono::Duration::seconds(16), limit),
            Some(chrono::Duration::seconds(16))
        );
        live.step(None);
        assert_eq!(
            live.stalled(t0 + chrono::Duration::seconds(60), limit),
            None
        );
    }
}
