//! `dialerd simulate`: an OmniDimension-compatible call API on loopback, for
//! tests, demos and benchmarks. It serves the three call endpoints in the
//! shapes of the real API (so the official SDK works against it unchanged),
//! places simulated calls whose logs move `queued` → `ringing` →
//! `in-progress` → a final status drawn from `--outcomes`, injects the faults
//! of interface.md on request, and journals every dispatch request it
//! receives so a test can prove how many calls were really placed.
//!
//! Voicemails are reported as the API reports answering machines:
//! `call_status: "completed"` with `is_voicemail: true` and `amd_detected: true`.
//! The `call_status=voicemail` filter selects them.
//!
//! The simulator reads time from the clock abstraction (`crate::clock`):
//! `dialerd simulate` runs on the system clock; tests hand
//! [`spawn_with_clock`] their manual clock, and calls progress as they move it.

mod handlers;
mod journal;
mod listener;
mod options;
mod render;
mod state;
mod transcript;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use journal::{DispatchResult, JournalEntry};
pub use options::{DEFAULT_API_KEY, LEGACY_API_KEY, OutcomeWeights, SecsRange, SimOptions};
pub use state::SimStats;

use listener::{ConnKill, SimListener};
use state::SimState;

/// Serves the simulator on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    opts: SimOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = SimState::new(opts, Arc::new(crate::clock::SystemClock))?;
    run(listener, state, shutdown).await
}

async fn run(
    listener: TcpListener,
    state: Arc<SimState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = handlers::router(state.clone());
    let stopping = async move {
        shutdown.await;
        // Release the answers withheld by `--fault-timeout`, so the graceful
        // shutdown does not wait for them.
        state.stopping.send_replace(true);
    };
    axum::serve(
        SimListener(listener),
        app.into_make_service_with_connect_info::<ConnKill>(),
    )
    .with_graceful_shutdown(stopping)
    .await
    .context("the simulator's server failed")
}

/// Starts a simulator on `127.0.0.1:0` in a background task.
pub async fn spawn(opts: SimOptions) -> anyhow::Result<SimHandle> {
    spawn_with_clock(opts, Arc::new(crate::clock::SystemClock)).await
}

/// [`spawn`] on `clock` (a test's clock): `time_of_call`, the journal, the
/// rate-limit window and each call's progress follow it, so a test moves
/// calls to their final status by moving the clock instead of sleeping.
pub async fn spawn_with_clock(
    opts: SimOptions,
    clock: crate::clock::SharedClock,
) -> anyhow::Result<SimHandle> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind the simulator to 127.0.0.1")?;
    let addr = listener.local_addr().context("the simulator's address")?;
    let state = SimState::new(opts, clock)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, state.clone(), async move {
        // A dropped handle stops the server too.
        let _ = stopped.await;
    }));
    Ok(SimHandle {
        addr,
        state,
        stop: Some(stop),
        task: Some(task),
    })
}

/// A simulator running in the background (see [`spawn`]). Dropping it stops
/// the server.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// The options the simulator runs with.
    pub fn options(&self) -> &SimOptions {
        &self.state.opts
    }

    /// The counters, as `/_sim/stats` serves them.
    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Dispatch requests received and not yet answered (or dropped).
    pub fn dispatches_in_progress(&self) -> u64 {
        self.state
            .counters
            .dispatches_in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every journal entry so far (the same as the `--journal` file's lines).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state.journal.entries()
    }

    /// Stops the server (releasing withheld answers) and waits for it to end.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.context("the simulator's task panicked")?,
            None => Ok(()),
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
