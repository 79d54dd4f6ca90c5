//! Group commit of request results: every worker hands its result to one
//! writer task, which writes whatever has queued up in one transaction, so
//! `synchronous=FULL` costs one fsync per batch instead of one per call.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AttemptResult, Store};

/// Most results written in one transaction.
const MAX_BATCH: usize = 512;

type Job = (AttemptResult, oneshot::Sender<bool>);

/// A handle on the writer task.
#[derive(Debug, Clone)]
pub struct ResultWriter {
    tx: mpsc::Sender<Job>,
}

impl ResultWriter {
    /// Starts the writer task.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Writes `result` durably; true once committed. On false the attempt stays
    /// `sending`, which start-up recovery turns into `uncertain`: safe.
    pub async fn write(&self, result: AttemptResult) -> bool {
        let (ack, done) = oneshot::channel();
        if self.tx.send((result, ack)).await.is_err() {
            return false;
        }
        done.await.unwrap_or(false)
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let results: Vec<AttemptResult> = jobs.iter().map(|(r, _)| r.clone()).collect();
        let mut ok = false;
        for attempt in 1..=5u32 {
            match store.record_results(&results).await {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, attempt, batch = results.len(), "cannot record dispatch results; retrying");
                    // Real time: SQLite's own busy timeout runs on it too.
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                        .await;
                }
            }
        }
        for (_, ack) in jobs.drain(..) {
            let _ = ack.send(ok);
        }
    }
}
