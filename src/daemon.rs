//! `dialerd run`: opens the store under a single-instance lock, recovers what
//! a previous stop left `sending`, then wires the [`crate::worker`]s
//! (scheduler, reconciler, inbox, heartbeat, webhooks) to one shutdown
//! signal and runs them until a stop (or, with `--until-idle`, until nothing
//! is left to do). SIGHUP reloads the configuration.

mod lock;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

pub use lock::InstanceLock;

use crate::clock::SharedClock;
use crate::config::{ConfigError, Settings};
use crate::engine::{Engine, EngineConfig};
use crate::provider::Client;
use crate::store::Store;
use crate::webhooks::WebhookService;
use crate::worker::{
    Heartbeat, IdleWatch, InboxWorker, Liveness, ReconcileWorker, Scheduler, SettingsFeed,
    run_until_stopped,
};

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
            .with_max_response_bytes(settings.max_response_bytes()),
    )
}

/// Runs the daemon until `control` says stop (or until idle).
pub async fn run(
    settings: Settings,
    clock: SharedClock,
    opts: RunOptions,
    control: mpsc::Receiver<Control>,
) -> anyhow::Result<()> {
    let client = client_for(&settings, clock.clone())?;
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let lock = InstanceLock::acquire(&settings.database_path)?;
    if let Some(addr) = settings.metrics_listen {
        crate::ops::install_metrics(addr)?;
    }
    let store = open_store(&settings, &client, clock.clone()).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let engine = Engine::new(
        store.clone(),
        client,
        clock.clone(),
        EngineConfig::from_settings(&settings),
        stop_rx.clone(),
    );
    let webhooks = WebhookService::start(
        store.clone(),
        clock.clone(),
        settings.webhooks.as_ref(),
        stop_rx,
    )
    .await?;
    let mut daemon = Daemon {
        feed: SettingsFeed::new(&settings),
        database_path: settings.database_path.clone(),
        engine,
        store,
        clock,
        opts,
        webhooks,
        stop: stop_tx,
        workers: JoinSet::new(),
    };
    crate::ops::notify_ready();
    tracing::info!(database = %daemon.database_path.display(), "dialerd running");
    daemon.spawn_workers();
    daemon.serve(control).await;
    daemon.shutdown().await;
    drop(lock);
    Ok(())
}

/// Opens the store and readies it for a run: attempts a previous stop left
/// `sending` become uncertain, a pause for a key since replaced is cleared,
/// and the daemon row records this start.
async fn open_store(
    settings: &Settings,
    client: &Client,
    clock: SharedClock,
) -> anyhow::Result<Store> {
    let store = Store::open(&settings.database_path, clock).await?;
    let recovered = store
        .recover_sending("the daemon stopped while this request may have been in flight")
        .await?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "attempts left `sending` by the last stop are now uncertain; the reconciler will resolve them"
        );
    }
    clear_pause_for_new_key(&store, client).await;
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
    Ok(store)
}

/// The running daemon: what the workers share, and what a reload or a
/// stop acts on.
struct Daemon {
    engine: Arc<Engine>,
    store: Store,
    clock: SharedClock,
    opts: RunOptions,
    feed: SettingsFeed,
    /// Fixed for the daemon's life (the lock is on it).
    database_path: PathBuf,
    webhooks: WebhookService,
    /// `true` stops every worker; the idle watch sends it too.
    stop: watch::Sender<bool>,
    /// One task per worker; each finishes when it sees the stop.
    workers: JoinSet<()>,
}

impl Daemon {
    /// Starts one task per worker, each under [`run_until_stopped`].
    fn spawn_workers(&mut self) {
        let (engine, clock, feed) = (&self.engine, &self.clock, &self.feed);
        let liveness = Arc::new(Liveness::default());
        let stop = || self.stop.subscribe();
        self.workers.spawn(run_until_stopped(
            Scheduler::new(
                engine.clone(),
                clock.clone(),
                feed.daemon(),
                liveness.clone(),
            ),
            clock.clone(),
            stop(),
        ));
        self.workers.spawn(run_until_stopped(
            ReconcileWorker::new(engine.clone(), feed.reconcile()),
            clock.clone(),
            stop(),
        ));
        self.workers.spawn(run_until_stopped(
            Heartbeat::new(engine.clone(), clock.clone(), feed.daemon(), liveness),
            clock.clone(),
            stop(),
        ));
        if let Some(inbox) = InboxWorker::new(self.store.clone(), feed.inbox(), feed.defaults()) {
            self.workers
                .spawn(run_until_stopped(inbox, clock.clone(), stop()));
        }
        if self.opts.until_idle {
            let idle = IdleWatch::new(
                engine.clone(),
                clock.clone(),
                feed.webhooks(),
                self.stop.clone(),
            );
            self.workers
                .spawn(run_until_stopped(idle, clock.clone(), stop()));
        }
    }

    /// Serves signals until a stop is asked for (or the idle watch sends it).
    async fn serve(&mut self, mut control: mpsc::Receiver<Control>) {
        let mut stopped = self.stop.subscribe();
        loop {
            tokio::select! {
                msg = control.recv() => match msg {
                    Some(Control::Reload) => self.reload().await,
                    Some(Control::Stop) | None => return,
                },
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// Re-reads the configuration and hands each part its new section; an
    /// invalid one is refused whole and the running one stays.
    async fn reload(&mut self) {
        crate::ops::notify_reloading();
        match load_reload(&self.opts, self.clock.clone()) {
            Ok((new, client)) => {
                if new.database_path != self.database_path {
                    tracing::warn!("database.path changed; it takes effect only after a restart");
                }
                crate::telemetry::set_level(&new.log().level);
                let engine = &self.engine;
                engine.reconfigure(EngineConfig::from_settings(&new));
                let changed = client.key_fingerprint() != engine.client_key_fingerprint();
                engine.set_client(client.clone());
                self.feed.publish(&new);
                tracing::info!("configuration reloaded");
                if changed {
                    let store = self.store.clone();
                    tokio::spawn(async move { clear_pause_for_new_key(&store, &client).await });
                }
                if let Err(e) = self.webhooks.apply(new.webhooks.as_ref()).await {
                    tracing::error!(error = %format!("{e:#}"), "cannot apply the webhooks configuration");
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reload refused; the previous configuration stays in force")
            }
        }
        crate::ops::notify_ready();
    }

    /// Stops new work, lets sweeps (and their requests in flight) finish
    /// within `daemon.shutdown_grace_secs`, records anything still
    /// unfinished per the safety rule, then waits for the workers' tasks.
    async fn shutdown(self) {
        let grace = self.feed.daemon().borrow().shutdown_grace;
        crate::ops::notify_stopping();
        self.stop.send_replace(true);
        tracing::info!(
            in_flight = self.engine.requests_in_flight(),
            "stopping: no new sweeps; waiting for requests in flight"
        );
        // Real time, not the engine's clock: this deadline races systemd's
        // TimeoutStopSec, which is wall time whatever clock the engine reads.
        let now = tokio::time::Instant::now();
        // A grace too large to add (a huge daemon.shutdown_grace_secs) is no
        // deadline at all: a year stands in for it rather than a panic.
        let deadline = now
            .checked_add(grace)
            .unwrap_or(now + std::time::Duration::from_secs(365 * 24 * 3600));
        let _ = tokio::time::timeout_at(deadline, self.engine.sweeps_finished()).await;
        record_stop(&self.store).await;
        self.webhooks.shutdown(grace).await;
        let mut workers = self.workers;
        let all_ended = async { while workers.join_next().await.is_some() {} };
        if tokio::time::timeout_at(deadline, all_ended).await.is_err() {
            tracing::warn!("a worker was still in its step at the deadline; it is cut short");
        }
        workers.shutdown().await;
        tracing::info!("stopped");
    }
}

/// The configuration for a reload and a client built from it.
fn load_reload(opts: &RunOptions, clock: SharedClock) -> anyhow::Result<(Settings, Client)> {
    let new = Settings::load(opts.config_file.as_deref())?;
    for warning in new.warnings() {
        tracing::warn!("{warning}");
    }
    let client = client_for(&new, clock)?;
    Ok((new, client))
}

/// Marks attempts still `sending` uncertain and records the stop.
async fn record_stop(store: &Store) {
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
