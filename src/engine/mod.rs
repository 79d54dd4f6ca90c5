//! The engine: the scheduler starts sweeps on each campaign's cron schedule,
//! the dispatcher claims due contacts and sends their requests through a
//! rate-limited, bounded worker pool, and the reconciler reads the call logs
//! back into the database. Each part has a single-step function
//! ([`Engine::tick`], [`Engine::sweep_campaign`], [`Engine::reconcile_once`])
//! that tests drive directly, and [`crate::daemon`] loops around them. The
//! reconciler is a worker of its own ([`Reconciler`], one round per
//! [`Reconciler::step`]); the engine holds one and hands it reloaded settings.

mod dialcheck;
mod dispatcher;
pub mod evidence;
mod health;
pub mod limits;
pub mod optout;
pub mod policy;
pub mod pooling;
mod reconciler;
pub mod retry;
mod scheduler;
mod writer;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore, mpsc, watch};

pub use dispatcher::SweepReport;
pub use health::StorageFault;
pub use reconciler::{ReconcileReport, Reconciler};

use crate::clock::SharedClock;
use crate::config::{CampaignDefaults, Compliance, Settings};
use crate::provider::Client;
use crate::store::Store;
use retry::RetryGate;

/// The engine's tunables, from the configuration (replaced on reload).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub rate_per_second: f64,
    pub burst: u32,
    pub max_in_flight: u32,
    /// 0: no cap.
    pub max_live_calls_per_campaign: u32,
    pub retry_max_tries: u32,
    pub retry_min_delay: Duration,
    pub retry_max_delay: Duration,
    pub claim_batch: u32,
    /// Placed calls to one number in any rolling 24 h, all campaigns; 0 = no cap.
    pub max_calls_per_number_per_day: u32,
    /// A claimed attempt not sent within this long is released unsent.
    pub max_claim_wait: Duration,
    pub page_size: u32,
    pub max_pages_per_poll: u32,
    pub uncertain_grace: Duration,
    pub outcome_timeout: Duration,
    /// How far a log's `time_of_call` may be earlier than our own send time
    /// and still belong to the attempt (the API gives no zone, clocks differ).
    pub log_time_skew: Duration,
    pub defaults: CampaignDefaults,
    /// Quiet hours and region rules, applied to every call of every campaign.
    pub compliance: Compliance,
}

impl EngineConfig {
    /// The engine part of the configuration.
    pub fn from_settings(s: &Settings) -> Self {
        let (d, r) = (s.dispatch(), s.reconcile());
        Self {
            rate_per_second: d.rate_per_second,
            burst: d.burst,
            max_in_flight: d.max_in_flight,
            max_live_calls_per_campaign: d.max_live_calls_per_campaign,
            retry_max_tries: d.retry_max_tries,
            retry_min_delay: d.retry_min_delay,
            retry_max_delay: d.retry_max_delay,
            claim_batch: d.claim_batch,
            max_calls_per_number_per_day: d.max_calls_per_number_per_day,
            max_claim_wait: d.max_claim_wait,
            page_size: r.page_size,
            max_pages_per_poll: r.max_pages_per_poll,
            uncertain_grace: r.uncertain_grace,
            outcome_timeout: r.outcome_timeout,
            log_time_skew: r.log_time_skew,
            defaults: s.campaign_defaults.clone(),
            compliance: s.compliance.clone(),
        }
    }

    /// Contacts claimed in one transaction: `claim_batch`, but no more than
    /// about one second of the rate (plus the burst); with two batches
    /// claimed ahead, no `sending` row waits much over two seconds, and a
    /// pause, a DNC addition or a closing window reaches every contact not
    /// yet claimed.
    pub(crate) fn claim_size(&self) -> usize {
        (self.claim_batch as usize)
            .min(self.rate_per_second.ceil() as usize + self.burst as usize)
            .max(1)
    }

    /// Attempts that may be claimed and unfinished at once: the requests in
    /// flight and two claim batches, so the next batch is claimed while the
    /// previous one still queues for a slot and the senders never run dry.
    fn claim_budget(&self) -> usize {
        self.max_in_flight as usize + 2 * self.claim_size()
    }

    fn limiter(&self) -> DefaultDirectRateLimiter {
        // Validated: 0 < rate <= 10000, burst >= 1.
        let period = Duration::from_secs_f64(1.0 / self.rate_per_second);
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        RateLimiter::direct(quota)
    }
}

/// The running engine; share it as `Arc<Engine>`.
pub struct Engine {
    store: Store,
    client: RwLock<Client>,
    clock: SharedClock,
    cfg: RwLock<Arc<EngineConfig>>,
    limiter: RwLock<Arc<DefaultDirectRateLimiter>>,
    /// Woken when the tunables change, so rate waiters re-read the limiter.
    reconfigured: Notify,
    gate: RetryGate,
    /// Dispatch requests on the wire.
    in_flight: Pool,
    /// Attempts claimed (committed `sending`) and not finished: the requests
    /// in flight plus one claim batch waiting for its turn, so claiming the
    /// next batch overlaps with sending the last.
    claimed: Pool,
    sweeping: Mutex<HashSet<i64>>,
    /// Every running sweep holds a clone of this sender; once shutdown drops
    /// the engine's own, the receiver ends when the last sweep does.
    sweeps_done: Mutex<Option<mpsc::Sender<()>>>,
    sweeps_ended: tokio::sync::Mutex<mpsc::Receiver<()>>,
    /// Set after a 401/403 until the pause is cleared in the database.
    auth_paused: AtomicBool,
    /// Requests sent and outcomes written since start, for the status line.
    sent_total: std::sync::atomic::AtomicU64,
    finalised_total: std::sync::atomic::AtomicU64,
    /// The reconciler; a tokio Mutex because a round awaits while holding it.
    reconciler: tokio::sync::Mutex<Reconciler>,
    /// Consecutive rejections per campaign (a bad agent id rejects everything).
    rejections: Mutex<HashMap<i64, u32>>,
    writer: writer::ResultWriter,
    /// Reads for the dial-time check, batched.
    dial_reader: dialcheck::DialReader,
    /// Parsed campaign rules for the dial-time check.
    dial_rules: dialcheck::RulesCache,
    shutdown: watch::Receiver<bool>,
    /// Set while the database cannot be written (see [`health`]).
    storage_fault: Mutex<Option<StorageFault>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// A semaphore whose size can change while permits are out.
#[derive(Debug)]
pub(crate) struct Pool {
    sem: Arc<Semaphore>,
    size: Mutex<usize>,
}

impl Pool {
    fn new(size: usize) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
        }
    }

    /// The current size.
    pub(crate) fn size(&self) -> usize {
        *self.size.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Permits taken now.
    pub(crate) fn in_use(&self) -> usize {
        self.size().saturating_sub(self.sem.available_permits())
    }

    /// The semaphore itself.
    pub(crate) fn sem(&self) -> Arc<Semaphore> {
        self.sem.clone()
    }

    /// Grows at once; shrinks by retiring permits as they come back.
    fn resize(&self, new: usize) {
        let mut size = self.size.lock().unwrap_or_else(|p| p.into_inner());
        if new > *size {
            self.sem.add_permits(new - *size);
        } else if new < *size {
            let extra = u32::try_from(*size - new).unwrap_or(u32::MAX);
            let sem = self.sem.clone();
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(extra).await {
                    p.forget();
                }
            });
        }
        *size = new;
    }
}

impl Engine {
    /// An engine over `store`, talking to the API through `client`. It stops
    /// starting work once `shutdown` turns true.
    pub fn new(
        store: Store,
        client: Client,
        clock: SharedClock,
        cfg: EngineConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Self> {
        // Off the async threads; a claim that comes first waits for it.
        tokio::task::spawn_blocking(crate::phone::zones::warm_up);
        let limiter = Arc::new(cfg.limiter());
        let (sweeps_done, sweeps_ended) = mpsc::channel(1);
        let reconciler = Reconciler::new(
            store.clone(),
            client.clone(),
            clock.clone(),
            Arc::new(cfg.clone()),
        );
        Arc::new(Self {
            writer: writer::ResultWriter::spawn(store.clone()),
            dial_reader: dialcheck::DialReader::spawn(store.clone(), clock.clone()),
            dial_rules: dialcheck::RulesCache::default(),
            store,
            client: RwLock::new(client),
            clock,
            limiter: RwLock::new(limiter),
            reconfigured: Notify::new(),
            in_flight: Pool::new(cfg.max_in_flight as usize),
            claimed: Pool::new(cfg.claim_budget()),
            cfg: RwLock::new(Arc::new(cfg)),
            gate: RetryGate::default(),
            sweeping: Mutex::new(HashSet::new()),
            sweeps_done: Mutex::new(Some(sweeps_done)),
            sweeps_ended: tokio::sync::Mutex::new(sweeps_ended),
            auth_paused: AtomicBool::new(false),
            sent_total: Default::default(),
            finalised_total: Default::default(),
            reconciler: tokio::sync::Mutex::new(reconciler),
            rejections: Mutex::new(HashMap::new()),
            shutdown,
            storage_fault: Mutex::new(None),
        })
    }

    /// The current tunables.
    pub fn config(&self) -> Arc<EngineConfig> {
        self.cfg.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Applies new tunables (SIGHUP): rate and burst, in-flight size, retry
    /// and reconcile settings. Requests in flight are not disturbed.
    pub fn reconfigure(&self, cfg: EngineConfig) {
        *self.limiter.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg.limiter());
        self.in_flight.resize(cfg.max_in_flight as usize);
        self.claimed.resize(cfg.claim_budget());
        *self.cfg.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(cfg);
        self.reconfigured.notify_waiters();
    }

    /// One reconcile round ([`Reconciler::step`]) with the current client
    /// and tunables.
    pub async fn reconcile_once(&self) -> anyhow::Result<ReconcileReport> {
        let mut r = self.reconciler.lock().await;
        r.set_client(self.client());
        r.set_config(self.config());
        let report = r.step().await?;
        drop(r);
        // New costs may have reached a campaign's spend cap. The round's
        // work is recorded either way; a failed check is tried next round
        // (and every claim and try checks the cap too).
        if let Err(e) = self.enforce_spend_caps().await {
            tracing::error!(error = %e, "cannot check the campaigns' spend caps");
        }
        self.finalised_total
            .fetch_add(report.finalised + report.timed_out, Ordering::Relaxed);
        Ok(report)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether shutdown was requested.
    pub fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Campaigns with a sweep running now.
    pub fn sweeps_running(&self) -> usize {
        self.sweeping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// Waits until every sweep has ended, and lets no new one start: the
    /// engine drops its own completion sender, so the channel closes when
    /// the last running sweep drops its clone (call after shutdown was
    /// requested, under a deadline of the caller's).
    pub async fn sweeps_finished(&self) {
        drop(
            self.sweeps_done
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        let mut ended = self.sweeps_ended.lock().await;
        while ended.recv().await.is_some() {}
    }

    /// A completion token for a sweep starting now, or `None` once
    /// [`Engine::sweeps_finished`] was called.
    fn sweep_token(&self) -> Option<mpsc::Sender<()>> {
        self.sweeps_done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// When the Retry-After gate opens, while a `Retry-After` holds every request.
    pub fn dispatch_held_until(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.gate.closed_until(self.clock.now())
    }

    /// Dispatch requests in flight now.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.in_use()
    }

    /// A one-line summary for `STATUS=` and the heartbeat.
    pub fn status_line(&self) -> String {
        if let Some(f) = self.storage_fault() {
            return format!(
                "DATABASE NOT WRITABLE since {}: dispatching nothing ({})",
                crate::clock::to_db_text(f.since),
                f.error
            );
        }
        format!(
            "{} sweeps running, {} requests in flight; since start {} dispatched, {} outcomes recorded",
            self.sweeps_running(),
            self.requests_in_flight(),
            self.sent_total.load(Ordering::Relaxed),
            self.finalised_total.load(Ordering::Relaxed),
        )
    }

    /// Replaces the API client (a reloaded key or base URL); requests in
    /// flight finish on the old one.
    pub fn set_client(&self, client: Client) {
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = client;
    }

    /// The fingerprint of the API key in use.
    pub fn client_key_fingerprint(&self) -> String {
        self.client().key_fingerprint()
    }

    fn client(&self) -> Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn limiter(&self) -> Arc<DefaultDirectRateLimiter> {
        self.limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
