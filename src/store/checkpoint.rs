//! Checkpoints an import's write-ahead log from a connection of its own.
//!
//! In WAL mode every page an import writes goes into the log first and is
//! copied into the database file by a checkpoint. SQLite's automatic
//! checkpoint runs inside the committing connection, so the writer would
//! stop after every few batches to copy them: about a seventh of a large
//! import's time. The import connection turns it off
//! (`wal_autocheckpoint = 0`) and this task checkpoints after each commit
//! instead, on its own connection and so on its own SQLite thread, in
//! parallel with the next batch.
//!
//! A `PASSIVE` checkpoint never waits for readers or writers, so it can
//! neither block the import nor a running daemon. It copies what was
//! committed when it began; the log restarts from its beginning only when a
//! write transaction starts with every frame copied. So that the log does not
//! grow with the file, the writer waits for the checkpoint of its last batch
//! every `RESTART_EVERY` batches (one batch's copy, a few milliseconds).

use sqlx::{ConnectOptions, Connection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::Store;

/// Batches between the writer's waits for the checkpointer to catch up.
pub const RESTART_EVERY: u64 = 8;

pub struct Checkpointer {
    committed: watch::Sender<u64>,
    done: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Opens the checkpointing connection.
    pub async fn start(store: &Store) -> sqlx::Result<Self> {
        let mut conn = store.pool().connect_options().connect().await?;
        let (committed, mut rounds) = watch::channel(0u64);
        let (done_tx, done) = watch::channel(0u64);
        let task = tokio::spawn(async move {
            // Ends once the writer is gone and its last commit is copied.
            while rounds.changed().await.is_ok() {
                let upto = *rounds.borrow_and_update();
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    // The frames stay in the log for the next checkpoint
                    // (this one's, or any connection's).
                    tracing::debug!(error = %e, "import checkpoint failed");
                }
                let _ = done_tx.send(upto);
            }
            let _ = conn.close().await;
        });
        Ok(Self {
            committed,
            done,
            task,
        })
    }

    /// Batch `n` (counted from 1) is committed: copy it.
    pub fn committed(&self, n: u64) {
        let _ = self.committed.send(n);
    }

    /// Before batch `n + 1` begins: every `RESTART_EVERY` batches, waits
    /// until the checkpoint that began after batch `n` committed is over.
    pub async fn pace(&mut self, n: u64) {
        if n > 0 && n.is_multiple_of(RESTART_EVERY) {
            let _ = self.done.wait_for(|d| *d >= n).await;
        }
    }

    /// Waits for the last checkpoint and closes the connection.
    pub async fn finish(self) {
        drop(self.committed);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sqlx::{ConnectOptions, Connection};

    use super::*;
    use crate::clock::SystemClock;

    /// The log restarts only if a write begins with every frame copied, so
    /// the writer's wait must not return before the last commit is copied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writers_wait_ends_only_once_its_last_commit_is_in_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path, Arc::new(SystemClock)).await.unwrap();
        let mut writer = store.pool().connect_options().connect().await.unwrap();
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut writer)
            .await
            .unwrap();
        let mut cp = Checkpointer::start(&store).await.unwrap();
        for n in 1..=RESTART_EVERY {
            cp.pace(n - 1).await;
            sqlx::query(
                "WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < 4000) \
                 INSERT INTO events (at, kind, detail) SELECT '2026-11-25T08:00:00Z', 'test', hex(randomblob(100)) FROM i",
            )
            .execute(&mut writer)
            .await
            .unwrap();
            cp.committed(n);
        }
        cp.pace(RESTART_EVERY).await;
        let logical: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
        )
        .fetch_one(&mut writer)
        .await
        .unwrap();
        let file = std::fs::metadata(&path).unwrap().len();
        assert!(
            file >= logical as u64,
            "after the wait the database file has {file} of {logical} bytes"
        );
        cp.finish().await;
        let _ = writer.close().await;
        store.close().await;
    }
}
