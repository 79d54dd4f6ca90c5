//! The in-process test world: a fresh database in a temporary directory, the simulator
//! on loopback, and an engine talking to it, plus a driver that steps the
//! engine (sweep, let the simulated calls end, reconcile, move the clock)
//! until nothing is left to do, and the checks every safety test shares.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use clap::Parser;
use dialerd::calendar::{Schedule, Window, parse_tz};
use dialerd::clock::{Clock, ManualClock, SharedClock, SystemClock, from_db_text, to_db_text};
use dialerd::config::Settings;
use dialerd::engine::{Engine, EngineConfig, SweepReport};
use dialerd::phone::PhoneNumber;
use dialerd::phone::zones::{ZoneSource, zone_source};
use dialerd::provider::{Client, LogQuery};
use dialerd::secret::ApiKey;
use dialerd::sim::{self, JournalEntry, SimHandle, SimOptions};
use dialerd::store::{Campaign, NewCampaign, Store};
use tempfile::TempDir;
use tokio::sync::watch;

/// The agent every test campaign dials with.
pub const AGENT: i64 = 7;
/// The key the simulator accepts by default.
pub const KEY: &str = "sim-key";
/// The client's whole-request timeout: short, so `--fault-timeout` (which
/// withholds the answer for a minute) resolves quickly.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
/// No test may run longer than this.
pub const TEST_BUDGET: Duration = Duration::from_secs(60);
/// The longest [`World::run_to_idle`] may take before it reports what is stuck.
pub const IDLE_BUDGET: Duration = Duration::from_secs(40);
/// The longest one sweep or reconcile round may take in the driver.
pub const STEP_BUDGET: Duration = Duration::from_secs(15);
/// The uncertain grace of worlds on a manual clock (advanced by the driver).
pub const MANUAL_GRACE: Duration = Duration::from_secs(30);
/// The uncertain grace of worlds on the system clock (really waited for).
pub const SYSTEM_GRACE: Duration = Duration::from_secs(1);

/// Runs a test body under [`TEST_BUDGET`], so no test can hang.
pub async fn within<F: Future>(body: F) -> F::Output {
    match tokio::time::timeout(TEST_BUDGET, body).await {
        Ok(out) => out,
        Err(_) => panic!("the test did not finish within {TEST_BUDGET:?}"),
    }
}

/// Simulator options from command-line words, as `dialerd simulate` reads them.
pub fn sim_options(args: &[&str]) -> SimOptions {
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        sim: SimOptions,
    }
    let mut words = vec!["simulate"];
    if !args.contains(&"--call-secs") {
        words.extend(["--call-secs", "0.05-0.15"]);
    }
    words.extend_from_slice(args);
    Args::try_parse_from(words)
        .unwrap_or_else(|e| panic!("bad simulator options {args:?}: {e}"))
        .sim
}

/// A client for `sim`, reading time from `clock`.
pub fn client_for(sim: &SimHandle, clock: SharedClock) -> Client {
    Client::new(&sim.base_url(), ApiKey::new(KEY).unwrap(), REQUEST_TIMEOUT)
        .expect("a client for the simulator")
        .with_clock(clock)
}

/// A London drama number (`+44 20 7946 0000` to `0999`): valid, and in the
/// single zone of its country (Europe/London).
pub fn uk(i: usize) -> String {
    assert!(i < 1000, "only 1000 drama numbers");
    checked(format!("+442079460{i:03}"))
}

/// A number from which no zone can be derived (an international freephone
/// number: the zone map knows no place for +800), so the campaign's zone applies.
pub fn zoneless(i: usize) -> String {
    assert!(i < 100);
    let n = checked(format!("+8006420{:04}", 2400 + i));
    assert_eq!(
        zone_source(false, &n),
        ZoneSource::Campaign,
        "{n} must not imply a zone"
    );
    n
}

fn checked(n: String) -> String {
    let p = PhoneNumber::parse(&n, None).unwrap_or_else(|e| panic!("{n}: {e}"));
    assert_eq!(p.as_str(), n, "{n} is not in E.164 form");
    n
}

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The clock a world runs on.
#[derive(Debug, Clone)]
pub enum TestClock {
    /// Wall-clock time: waits really wait.
    System,
    /// Only moves when the test (or the driver) moves it.
    Manual(ManualClock),
}

impl TestClock {
    /// The clock as the engine takes it.
    pub fn shared(&self) -> SharedClock {
        match self {
            TestClock::System => Arc::new(SystemClock),
            TestClock::Manual(c) => Arc::new(c.clone()),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            TestClock::System => SystemClock.now(),
            TestClock::Manual(c) => c.now(),
        }
    }

    /// The manual clock; panics on the system clock.
    pub fn manual(&self) -> &ManualClock {
        match self {
            TestClock::Manual(c) => c,
            TestClock::System => panic!("this world runs on the system clock"),
        }
    }
}

/// A campaign to create (the defaults: all day, every second, 3 attempts,
/// redial at once).
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    pub name: String,
    pub timezone: String,
    pub window: String,
    pub schedule: String,
    pub max_attempts: u32,
    pub retry_delay_secs: u64,
}

impl Default for CampaignSpec {
    fn default() -> Self {
        Self {
            name: "campaign".into(),
            timezone: "UTC".into(),
            window: "00:00-24:00".into(),
            schedule: "* * * * * *".into(),
            max_attempts: 3,
            retry_delay_secs: 0,
        }
    }
}

pub use super::{ATTEMPT_COLUMNS, AttemptRow, CONTACT_COLUMNS, ContactRow};

/// A database, a simulator and an engine, wired together.
pub struct World {
    pub dir: TempDir,
    pub store: Store,
    pub sim: SimHandle,
    pub engine: Arc<Engine>,
    pub clock: TestClock,
    pub stop_tx: watch::Sender<bool>,
    pub cfg: EngineConfig,
    pub client: Client,
    /// Whether sweeps run the manual clock forward while they wait (so a
    /// `Retry-After` or a backoff on the engine's clock ends). Off for tests
    /// that check exact times.
    pub drive: bool,
    /// When the last reconcile round said an uncertain attempt may next be decided.
    pub next_decision: std::sync::Mutex<Option<DateTime<Utc>>>,
}

impl World {
    /// A world on the system clock.
    pub async fn new(sim_args: &[&str], tweak: impl FnOnce(&mut EngineConfig)) -> World {
        Self::build(TestClock::System, false, sim_args, tweak).await
    }

    /// A world on a manual clock standing a few minutes before the real
    /// time, driven forward during sweeps; the simulator runs on it too.
    pub async fn manual_now(sim_args: &[&str], tweak: impl FnOnce(&mut EngineConfig)) -> World {
        let start = Utc::now().trunc_subsecs(0) - chrono::Duration::minutes(5);
        Self::build(
            TestClock::Manual(ManualClock::new(start)),
            true,
            sim_args,
            tweak,
        )
        .await
    }

    /// A world on a manual clock standing at `start`, never moved but by the test.
    pub async fn manual_at(
        start: DateTime<Utc>,
        sim_args: &[&str],
        tweak: impl FnOnce(&mut EngineConfig),
    ) -> World {
        Self::build(
            TestClock::Manual(ManualClock::new(start)),
            false,
            sim_args,
            tweak,
        )
        .await
    }

    async fn build(
        clock: TestClock,
        drive: bool,
        sim_args: &[&str],
        tweak: impl FnOnce(&mut EngineConfig),
    ) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("dialerd.db"), clock.shared())
            .await
            .unwrap();
        let sim = sim::spawn_with_clock(sim_options(sim_args), clock.shared())
            .await
            .unwrap();
        let settings = Settings::load_with_env(None, &HashMap::new()).unwrap();
        let mut cfg = EngineConfig::from_settings(&settings);
        // Quiet hours and region rules are tested on their own (tweak sets
        // them); the engine's other tests dial at any hour of the test clock.
        cfg.compliance = dialerd::config::Compliance::none();
        cfg.rate_per_second = 2000.0;
        cfg.burst = 50;
        cfg.max_in_flight = 16;
        cfg.retry_min_delay = Duration::from_millis(1);
        cfg.retry_max_delay = Duration::from_millis(20);
        cfg.uncertain_grace = match clock {
            TestClock::System => SYSTEM_GRACE,
            TestClock::Manual(_) => MANUAL_GRACE,
        };
        cfg.outcome_timeout = Duration::from_secs(7200);
        cfg.page_size = 100;
        tweak(&mut cfg);
        let client = client_for(&sim, clock.shared());
        let (stop_tx, stop_rx) = watch::channel(false);
        let engine = Engine::new(
            store.clone(),
            client.clone(),
            clock.shared(),
            cfg.clone(),
            stop_rx,
        );
        World {
            dir,
            store,
            sim,
            engine,
            clock,
            stop_tx,
            cfg,
            client,
            drive,
            next_decision: Default::default(),
        }
    }

    /// A crash and a restart: the old engine is dropped (its sweeps were
    /// already cut by the caller), the database is opened again, every
    /// attempt left `sending` becomes `uncertain`, and a new engine runs on
    /// the same database and simulator. Returns how many were recovered.
    pub async fn restart(&mut self) -> u64 {
        let (stop_tx, stop_rx) = watch::channel(false);
        let _ = self.stop_tx.send(true);
        self.stop_tx = stop_tx;
        // Requests the dead process had on the wire reach the simulator (or
        // not) before the new one looks: wait until the simulator has
        // answered every request it received.
        let sim = &self.sim;
        let drained =
            super::wait_until_async(STEP_BUDGET, || async { sim.dispatches_in_progress() == 0 })
                .await;
        assert!(
            drained,
            "the simulator still handles requests after {STEP_BUDGET:?}"
        );
        self.store = Store::open(&self.dir.path().join("dialerd.db"), self.clock.shared())
            .await
            .unwrap();
        let recovered = self
            .store
            .recover_sending("test: the engine crashed")
            .await
            .unwrap();
        self.engine = Engine::new(
            self.store.clone(),
            self.client.clone(),
            self.clock.shared(),
            self.cfg.clone(),
            stop_rx,
        );
        recovered
    }

    /// Creates a campaign through the store, with agent [`AGENT`].
    pub async fn campaign(&self, spec: CampaignSpec) -> i64 {
        let mut c = NewCampaign::from_defaults(&spec.name, &self.cfg.defaults);
        c.agent_id = Some(AGENT);
        c.schedule = Schedule::parse(&spec.schedule).unwrap();
        c.timezone = parse_tz(&spec.timezone).unwrap();
        c.window = Window::parse(&spec.window).unwrap();
        c.max_attempts = spec.max_attempts;
        c.retry_delay_secs = spec.retry_delay_secs;
        let mut conn = self.store.pool().acquire().await.unwrap();
        self.store.insert_campaign_tx(&mut conn, &c).await.unwrap()
    }

    /// A campaign with the default spec.
    pub async fn default_campaign(&self) -> i64 {
        self.campaign(CampaignSpec::default()).await
    }

    /// Inserts a contact as another program would; `validated` says whether
    /// the number is already known to be E.164.
    pub async fn insert_contact(
        &self,
        campaign_id: i64,
        number: &str,
        timezone: Option<&str>,
        validated: bool,
    ) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO contacts (campaign_id, phone_number, call_context, timezone, validated) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(campaign_id)
        .bind(number)
        .bind(serde_json::json!({"number": number}).to_string())
        .bind(timezone)
        .bind(i64::from(validated))
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }

    /// Inserts validated contacts for `numbers`.
    pub async fn add_contacts(&self, campaign_id: i64, numbers: &[String]) {
        for n in numbers {
            self.insert_contact(campaign_id, n, None, true).await;
        }
    }

    /// Inserts `n` validated UK contacts and returns their numbers.
    pub async fn add_uk_contacts(&self, campaign_id: i64, n: usize) -> Vec<String> {
        let numbers: Vec<String> = (0..n).map(uk).collect();
        self.add_contacts(campaign_id, &numbers).await;
        numbers
    }

    /// Runs SQL against the database (for settings the store has no call for).
    pub async fn sql(&self, sql: &str) {
        sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(self.store.pool())
            .await
            .unwrap();
    }

    /// The campaign row.
    pub async fn campaign_row(&self, id: i64) -> Campaign {
        self.store
            .campaign(id)
            .await
            .unwrap()
            .expect("campaign exists")
    }

    /// Sweeps one campaign (read afresh) to the end.
    pub async fn sweep(&self, campaign_id: i64) -> SweepReport {
        let c = self.campaign_row(campaign_id).await;
        self.driven(self.engine.sweep_campaign(&c)).await.unwrap()
    }

    /// Sweeps every active campaign once.
    pub async fn sweep_all(&self) {
        for c in self.store.campaigns().await.unwrap() {
            if c.status == "active" {
                self.driven(self.engine.sweep_campaign(&c)).await.unwrap();
            }
        }
    }

    /// Awaits `fut`; on a driven manual clock, moves the clock on by 50 ms
    /// every 2 ms of real time meanwhile, so waits on the engine's clock
    /// (Retry-After, backoff) end about 25 times faster than real time.
    pub async fn driven<F: Future>(&self, fut: F) -> F::Output {
        let clock = match (&self.clock, self.drive) {
            (TestClock::Manual(c), true) => c.clone(),
            _ => return fut.await,
        };
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tokio::time::sleep(Duration::from_millis(2)) => clock.advance(Duration::from_millis(50)),
            }
        }
    }

    /// Lets every call accepted so far reach its final status, calls longer
    /// than 1.2 s excepted (they are left running, as a real wait would
    /// leave them): on a manual clock the clock (the simulator's too) moves
    /// to when they end; on the system clock this waits until then.
    pub async fn settle_calls(&self) {
        let Some(end) = self.calls_end_at(Some(1.2)).await else {
            return;
        };
        match &self.clock {
            TestClock::Manual(clock) => {
                if end > clock.now() {
                    clock.set(end);
                }
            }
            TestClock::System => {
                if let Ok(left) = (end - Utc::now()).to_std() {
                    tokio::time::sleep(left).await;
                }
            }
        }
    }

    /// When every accepted call still awaiting its outcome will have reached
    /// its final status on the simulator's clock: the latest of their
    /// dispatch instants in the journal plus the longest call (at most
    /// `cap_secs`), and 30 ms to spare; `None` when no call awaits.
    pub async fn calls_end_at(&self, cap_secs: Option<f64>) -> Option<DateTime<Utc>> {
        let waiting: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT request_id FROM attempts WHERE state = 'accepted' AND outcome IS NULL",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        if waiting.is_empty() {
            return None;
        }
        let max = self.sim.options().call_secs.max;
        let secs = cap_secs.map_or(max, |cap| max.min(cap));
        let longest = chrono::Duration::milliseconds((secs * 1000.0) as i64 + 30);
        let journal = self.journal();
        let placed_at = |rid: &str| {
            journal
                .iter()
                .find(|e| e.request_id.is_some_and(|r| r.to_string() == rid))
                .map(|e| at(&e.at))
        };
        // A call whose request id is not in this simulator's journal: from now.
        let now = self.clock.now();
        waiting
            .iter()
            .map(|rid| rid.as_deref().and_then(placed_at).unwrap_or(now))
            .max()
            .map(|latest| latest + longest)
    }

    /// Steps the engine until no work is left: sweep every active campaign,
    /// let the calls end, reconcile, and when nothing is due move time on
    /// (the manual clock to the next due time or past the uncertain grace;
    /// on the system clock, a short real wait). Panics after `max_rounds`.
    pub async fn run_to_idle(&self, max_rounds: usize) -> usize {
        let started = std::time::Instant::now();
        for round in 0..max_rounds {
            if !self.store.has_open_work().await.unwrap() {
                return round;
            }
            if started.elapsed() > IDLE_BUDGET {
                self.stuck(&format!("not idle after {IDLE_BUDGET:?} ({round} rounds)"))
                    .await;
            }
            let last = format!("round {round}: sweep");
            if tokio::time::timeout(STEP_BUDGET, self.sweep_all())
                .await
                .is_err()
            {
                self.stuck(&format!("{last} took over {STEP_BUDGET:?}"))
                    .await;
            }
            self.settle_calls().await;
            match tokio::time::timeout(STEP_BUDGET, self.engine.reconcile_once()).await {
                Ok(report) => {
                    *self.next_decision.lock().unwrap() = report.unwrap().next_decision_at;
                }
                Err(_) => {
                    self.stuck(&format!(
                        "round {round}: reconcile took over {STEP_BUDGET:?}"
                    ))
                    .await
                }
            }
            if !self.store.has_open_work().await.unwrap() {
                return round + 1;
            }
            self.advance_when_nothing_is_due().await;
        }
        self.stuck(&format!("not idle after {max_rounds} rounds"))
            .await
    }

    /// Panics with what the world looks like, for a driver that cannot finish.
    pub async fn stuck(&self, what: &str) -> ! {
        let mut results: BTreeMap<&str, usize> = BTreeMap::new();
        let journal = self.journal();
        for e in &journal {
            *results.entry(e.result.as_str()).or_insert(0) += 1;
        }
        panic!(
            "{what}; now {}; contacts per state {:?}; contacts {:?}; attempts {:?}; simulator results {results:?}; \
             requests in flight {}; dispatch paused {:?}",
            self.clock.now(),
            self.contact_states().await,
            self.contacts()
                .await
                .iter()
                .map(|c| (c.id, c.state.clone(), c.attempts, c.next_attempt_at.clone()))
                .collect::<Vec<_>>(),
            self.attempts()
                .await
                .iter()
                .map(|a| (
                    a.id,
                    a.contact_id,
                    a.state.clone(),
                    a.outcome.clone(),
                    a.error.clone()
                ))
                .collect::<Vec<_>>(),
            self.engine.requests_in_flight(),
            self.store.dispatch_paused().await,
        )
    }

    /// When nothing is due, moves time on: the manual clock to the next due
    /// time or past the uncertain grace; on the system clock, a short real wait.
    pub async fn advance_when_nothing_is_due(&self) {
        let now = self.clock.now();
        let now_text = to_db_text(now);
        let due_now: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM contacts c JOIN campaigns cp ON cp.id = c.campaign_id \
             WHERE cp.status = 'active' AND c.state IN ('pending', 'retry_wait') \
               AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= ?))",
        )
        .bind(&now_text)
        .fetch_one(self.store.pool())
        .await
        .unwrap();
        if due_now {
            return;
        }
        match &self.clock {
            TestClock::System => tokio::time::sleep(Duration::from_millis(100)).await,
            TestClock::Manual(clock) => {
                let next_due: Option<String> = sqlx::query_scalar(
                    "SELECT MIN(c.next_attempt_at) FROM contacts c JOIN campaigns cp ON cp.id = c.campaign_id \
                     WHERE cp.status = 'active' AND c.state IN ('pending', 'retry_wait')",
                )
                .fetch_one(self.store.pool())
                .await
                .unwrap();
                let oldest_uncertain: Option<String> = sqlx::query_scalar(
                    "SELECT MIN(sent_at) FROM attempts WHERE state = 'uncertain'",
                )
                .fetch_one(self.store.pool())
                .await
                .unwrap();
                let grace = chrono::Duration::from_std(self.cfg.uncertain_grace).unwrap();
                let next_decision = *self.next_decision.lock().unwrap();
                let targets = [
                    next_due.as_deref().and_then(from_db_text),
                    oldest_uncertain
                        .as_deref()
                        .and_then(from_db_text)
                        .map(|t| t + grace)
                        .filter(|t| *t >= now)
                        .or(next_decision),
                ];
                match targets.into_iter().flatten().min() {
                    Some(t) if t >= now => clock.set(t + chrono::Duration::seconds(1)),
                    Some(_) => {}
                    // Only calls in progress are left: move on to their end.
                    None => {
                        if let Some(end) = self.calls_end_at(None).await
                            && end > clock.now()
                        {
                            clock.set(end);
                        }
                    }
                }
            }
        }
    }

    /// Every contact.
    pub async fn contacts(&self) -> Vec<ContactRow> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts ORDER BY id"
        )))
        .fetch_all(self.store.pool())
        .await
        .unwrap()
    }

    /// The contact with `number` (in any campaign; tests use each number once).
    pub async fn contact(&self, number: &str) -> ContactRow {
        self.contacts()
            .await
            .into_iter()
            .find(|c| c.phone_number == number)
            .unwrap_or_else(|| panic!("no contact {number}"))
    }

    /// Every attempt.
    pub async fn attempts(&self) -> Vec<AttemptRow> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts ORDER BY id"
        )))
        .fetch_all(self.store.pool())
        .await
        .unwrap()
    }

    /// Contacts per state.
    pub async fn contact_states(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in self.contacts().await {
            *out.entry(c.state).or_insert(0) += 1;
        }
        out
    }

    /// The simulator's journal.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.sim.journal()
    }

    /// Calls the simulator placed, per number.
    pub fn placed_per_number(&self) -> BTreeMap<String, usize> {
        placed_per_number(&self.journal())
    }

    /// Asserts every contact ended in one of `states`.
    pub async fn assert_every_contact_ends_in(&self, states: &[&str]) {
        for c in self.contacts().await {
            assert!(
                states.contains(&c.state.as_str()),
                "contact {} ({}) ended {} (attempts {}), not one of {states:?}",
                c.id,
                c.phone_number,
                c.state,
                c.attempts
            );
        }
    }

    /// The safety rule, checked against the simulator's journal: for every
    /// number, the calls placed equal the attempts the database holds as
    /// `accepted` (no call lost), with the same request ids, and never more
    /// than `max_attempts` (no duplicate).
    pub async fn assert_every_placed_call_is_known_once(&self, max_attempts: usize) {
        let journal = self.journal();
        let placed = placed_per_number(&journal);
        let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for a in self.attempts().await {
            if a.state == "accepted" {
                let rid = a
                    .request_id
                    .clone()
                    .unwrap_or_else(|| panic!("accepted attempt {} has no request id", a.id));
                accepted.entry(a.to_number.clone()).or_default().push(rid);
            }
        }
        for (number, n) in &placed {
            assert!(
                *n <= max_attempts,
                "{number} was called {n} times; at most {max_attempts} were planned"
            );
        }
        let accepted_counts: BTreeMap<String, usize> =
            accepted.iter().map(|(k, v)| (k.clone(), v.len())).collect();
        assert_eq!(
            accepted_counts, placed,
            "calls placed per number (simulator journal, right) differ from accepted attempts (database, left)"
        );
        for (number, rids) in &accepted {
            let mut ours = rids.clone();
            ours.sort();
            let mut theirs: Vec<String> = journal
                .iter()
                .filter(|e| e.placed && e.to_number.as_deref() == Some(number))
                .map(|e| {
                    e.request_id
                        .expect("a placed call has a request id")
                        .to_string()
                })
                .collect();
            theirs.sort();
            assert_eq!(ours, theirs, "request ids of {number}");
        }
    }

    /// Every accepted attempt with an outcome has the simulator's final
    /// status for its request id.
    pub async fn assert_outcomes_match_the_simulator(&self) {
        let mut sim_outcome: HashMap<String, String> = HashMap::new();
        let mut page = 1;
        loop {
            let q = LogQuery {
                page,
                page_size: 1000,
                agent_id: Some(AGENT),
                call_status: None,
            };
            let logs = self.client.list_logs(&q).await.unwrap();
            if logs.logs.is_empty() {
                break;
            }
            for log in logs.logs {
                if let (Some(rid), Some(o)) = (log.request_id, log.status.outcome()) {
                    sim_outcome.insert(rid, o.as_str().to_string());
                }
            }
            page += 1;
        }
        let mut compared = 0;
        for a in self.attempts().await {
            if a.state != "accepted" {
                continue;
            }
            let rid = a.request_id.clone().unwrap();
            let ours = a
                .outcome
                .clone()
                .unwrap_or_else(|| panic!("accepted attempt {} ({rid}) has no outcome", a.id));
            let theirs = sim_outcome
                .get(&rid)
                .unwrap_or_else(|| panic!("the simulator has no final log for request {rid}"));
            assert_eq!(&ours, theirs, "outcome of attempt {} (request {rid})", a.id);
            compared += 1;
        }
        assert!(compared > 0, "no accepted attempt to compare");
    }
}

/// Calls placed per number in a journal.
pub fn placed_per_number(journal: &[JournalEntry]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in journal.iter().filter(|e| e.placed) {
        *out.entry(e.to_number.clone().unwrap_or_default())
            .or_insert(0) += 1;
    }
    out
}
