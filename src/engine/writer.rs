//! Group commit of request results: every worker hands its result to one
//! writer task, which writes whatever has queued up in one transaction, so
//! `synchronous=FULL` costs one fsync per batch instead of one per call.

use tokio::sync::{mpsc, oneshot};

use crate::store::{AttemptResult, SendResult, Store};

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
        let written = write_batch(&store, &results).await;
        for ((_, ack), ok) in jobs.drain(..).zip(written) {
            let _ = ack.send(ok);
        }
    }
}

/// Writes a batch in one transaction; if that fails, each result on its
/// own, so one result the database refuses never takes the others with it.
async fn write_batch(store: &Store, results: &[AttemptResult]) -> Vec<bool> {
    match store.record_results(results).await {
        Ok(()) => vec![true; results.len()],
        Err(e) => {
            tracing::error!(error = %e, batch = results.len(), "cannot record dispatch results together; recording each alone");
            let mut out = Vec::with_capacity(results.len());
            for r in results {
                out.push(write_one(store, r.clone()).await);
            }
            out
        }
    }
}

/// Tries before a result is given up (about 40 s of waiting); it then stays
/// `sending`, which start-up recovery turns into `uncertain`.
const TRIES_ALONE: u32 = 10;

/// Writes one result. A result the database refuses as data (a constraint)
/// is written instead as `uncertain` with the reason, so the attempt never
/// stays `sending` and its contact is never redialed on a guess; a passing
/// fault (a busy or full disk) is retried with a growing wait.
async fn write_one(store: &Store, mut r: AttemptResult) -> bool {
    let mut wait = std::time::Duration::from_millis(200);
    for attempt in 1..=TRIES_ALONE {
        match store.record_results(std::slice::from_ref(&r)).await {
            Ok(()) => return true,
            Err(sqlx::Error::PoolClosed) => return false,
            Err(e) if is_constraint(&e) && !matches!(r.result, SendResult::Uncertain { .. }) => {
                tracing::error!(error = %e, attempt = r.attempt_id, "the result breaks a constraint; recording the attempt as uncertain");
                r.result = SendResult::Uncertain {
                    error: format!("the result could not be stored ({e}); left to the call logs"),
                };
            }
            Err(e) => {
                tracing::error!(error = %e, attempt, "cannot record a dispatch result; retrying");
                // Real time: SQLite's own busy timeout runs on it too.
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
    false
}

fn is_constraint(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() != sqlx::error::ErrorKind::Other)
}
